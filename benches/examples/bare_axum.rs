//! The bare axum baseline `benches/compare-axum.sh` loads: the `sample` plugin's route and JSON
//! (`GET /api/plugin/sample/{id}`), answered by a plain axum handler, served as `gp serve`
//! serves (multi-thread runtime with tokio's default workers, connect info).
//!
//! `cargo run --release -p gp-benches --example bare_axum -- 127.0.0.1:PORT`

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};

/// With `--features mimalloc`: the allocator of the `gp` binary.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn sample(Path(id): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "id": id,
        "greeting": format!("sample plugin says: hello, sample {id}"),
    }))
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into())
        .parse()
        .expect("an address to listen on, such as 127.0.0.1:8081");
    let app = Router::new().route("/api/plugin/sample/{id}", get(sample));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the address");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serve");
}
