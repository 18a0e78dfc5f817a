//! Running gp serve as one replica of many: one configuration file (`config`), readiness
//! that means "my required plugins serve" and metrics a cluster can scrape (`readiness`), the
//! container image (`image`), the Kubernetes manifests (`manifests`), and a fleet rolled out
//! through a registry behind a load balancer (`rollout`).

mod config;
mod image;
mod manifests;
mod readiness;
mod rollout;

use std::io::BufRead;
use std::process::Child;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A `gp serve --log-format json`, its standard output read as log events (one JSON object a
/// line) on a thread of its own; killed when dropped.
pub struct JsonServer {
    pub child: Child,
    events: Receiver<serde_json::Value>,
    /// Every event read so far.
    pub seen: Vec<serde_json::Value>,
}

impl JsonServer {
    /// Reads `child`'s standard output (piped) as events.
    pub fn new(mut child: Child) -> JsonServer {
        let stdout = child.stdout.take().expect("standard output piped");
        let (send, events) = channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line.unwrap_or_default();
                let event = serde_json::from_str(&line).unwrap_or_else(
                    |e| serde_json::json!({"not JSON": line, "why": e.to_string()}),
                );
                if send.send(event).is_err() {
                    return;
                }
            }
        });
        JsonServer {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// The first event (from now on) whose message starts with `prefix`, within 60 s.
    pub fn event(&mut self, prefix: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no event `{prefix}…` within 60 s; seen: {:#?}", self.seen)
            });
            assert!(
                event.get("not JSON").is_none(),
                "a line that is not JSON: {event}"
            );
            self.seen.push(event.clone());
            if event["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix))
            {
                return event;
            }
        }
    }

    /// The address in the `serving plugin routes on http://ADDR/` event.
    pub fn plugins_addr(&mut self) -> std::net::SocketAddr {
        let event = self.event("serving plugin routes on http://");
        let message = event["fields"]["message"].as_str().unwrap();
        message["serving plugin routes on http://".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Sends it SIGTERM, as a service manager or a container runtime does, and waits (30 s at
    /// most, else fails with `still_running`) for how it ended.
    pub fn terminate(&mut self, still_running: &str) -> std::process::ExitStatus {
        crate::harness::send_sigterm(&self.child);
        crate::harness::exit_status(
            &mut self.child,
            Instant::now() + Duration::from_secs(30),
            still_running,
        )
    }

    /// Every event up to the end of its output, after the process exited.
    pub fn rest(&mut self) -> &[serde_json::Value] {
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(event);
        }
        &self.seen
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
