//! `/api/events`: server-sent events. On connect, the last probe's status
//! (when there is one) and the events of the run in progress so far; then
//! each event as it is journaled (`data:` the event JSON exactly as `lab
//! deploy --json` prints a line) and, after each probe, `event: status`
//! with the `/api/status` JSON.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::state::{Message, Shared};

/// The event stream.
pub async fn events(State(shared): State<Arc<Shared>>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (so_far, receiver) = shared.subscribe();
    let status = shared
        .snapshot()
        .probed_at_ms
        .map(|_| SseEvent::default().event("status").data(shared.status_json().to_string()));
    let replay = stream::iter(
        status
            .into_iter()
            .chain(so_far.into_iter().map(|e| SseEvent::default().data(serde_json::to_string(&e).unwrap_or_default())))
            .map(Ok),
    );
    let live = stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(Message::Event(json)) => return Some((Ok(SseEvent::default().data(json)), receiver)),
                Ok(Message::Status(json)) => {
                    return Some((Ok(SseEvent::default().event("status").data(json)), receiver))
                }
                // A client too slow for the stream misses what it lagged behind.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let stopped = async move { shared.stopped().await };
    Sse::new(replay.chain(live).take_until(stopped)).keep_alive(KeepAlive::default())
}
