//! `GET /events`: the manager's lifecycle events as server-sent events, the recent ones
//! first.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};

use super::AdminShared;
use crate::util::lock;

/// Server-sent events: the recent events first, then each one as it happens. A browser's
/// `EventSource` cannot send a token, so the GUI reads this with a streaming `fetch`.
/// With `?history=true`, each new sample of `GET /history` comes too (`"event": "history"`).
pub(super) async fn stream(
    State(shared): State<Arc<AdminShared>>,
    Query(query): Query<EventsQuery>,
) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let recent: Vec<serde_json::Value> = lock(&shared.recent).iter().cloned().collect();
    let backlog = futures_util::stream::iter(recent);
    let live = received(shared.events.subscribe());
    let samples = received(shared.history.live.subscribe());
    use futures_util::StreamExt;
    let live = if query.history {
        futures_util::stream::select(live, samples).boxed()
    } else {
        live.boxed()
    };
    let stream = backlog
        .chain(live)
        .map(|event| Ok::<_, std::convert::Infallible>(Sse::default().data(event.to_string())));
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The query of `GET /events`.
#[derive(serde::Deserialize)]
pub(super) struct EventsQuery {
    #[serde(default)]
    history: bool,
}

/// What `receiver` receives, as a stream (a lagging reader skips what it missed).
fn received(
    receiver: tokio::sync::broadcast::Receiver<serde_json::Value>,
) -> impl futures_util::Stream<Item = serde_json::Value> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
