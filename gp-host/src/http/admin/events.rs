//! `GET /events`: the manager's lifecycle events as server-sent events, the recent ones
//! first.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AdminShared;
use crate::util::lock;

/// Server-sent events: the recent events first, then each one as it happens. A browser's
/// `EventSource` cannot send a token, so the GUI reads this with a streaming `fetch`.
pub(super) async fn stream(State(shared): State<Arc<AdminShared>>) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let recent: Vec<serde_json::Value> = lock(&shared.recent).iter().cloned().collect();
    let receiver = shared.events.subscribe();
    let backlog = futures_util::stream::iter(recent);
    let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    let stream = backlog
        .chain(live)
        .map(|event| Ok::<_, std::convert::Infallible>(Sse::default().data(event.to_string())));
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
