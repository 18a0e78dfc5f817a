//! Running gp serve as one replica of many: one configuration file (`config`), readiness
//! that means "my required plugins serve" and metrics a cluster can scrape (`readiness`).

mod config;
mod image;
mod manifests;
mod readiness;
mod rollout;
