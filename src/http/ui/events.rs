//! Live updates for open inbox pages: a Server-Sent Events stream of what changed
//! (`handoff`, `message`, `status`, `note`, each with its conversation id). Each event
//! carries the store's cursor as its id, so a browser that reconnects (EventSource sends
//! `Last-Event-ID`) gets what it missed. The stream checks the store every 250 ms
//! (three indexed MAX lookups), so a new message shows within a second of its webhook,
//! and ends when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use crate::app::App;
use crate::store::inbox::{self, Cursor};

/// How often the stream looks for changes.
const POLL: Duration = Duration::from_millis(250);

pub async fn stream(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(Cursor::parse);
    let start = match resume {
        Some(c) => c,
        None => match app.store.read(inbox::cursor).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "starting an event stream failed");
                return super::pages::error(axum::http::StatusCode::SERVICE_UNAVAILABLE, "Live updates are unavailable; reload later.").into_response();
            }
        },
    };
    Sse::new(events(app, start)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

fn events(app: Arc<App>, start: Cursor) -> impl Stream<Item = Result<Event, Infallible>> {
    // State: (app, cursor, events ready to send).
    stream::unfold((app, start, Vec::<Event>::new()), |(app, mut cursor, mut ready)| async move {
        loop {
            if let Some(e) = ready.pop() {
                return Some((Ok(e), (app, cursor, ready)));
            }
            tokio::select! {
                _ = app.stopping.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
            let since = cursor;
            let found = app
                .store
                .read(move |c| {
                    let now = inbox::cursor(c)?;
                    if now == since {
                        return Ok((now, Vec::new()));
                    }
                    Ok((now, inbox::changes(c, &since, &now)?))
                })
                .await;
            match found {
                Ok((now, changes)) if now != cursor => {
                    cursor = now;
                    let id = now.to_string();
                    // Sent in order: `ready` is popped from the end.
                    ready = changes
                        .into_iter()
                        .rev()
                        .map(|(kind, conv)| Event::default().event(kind).id(id.clone()).data(format!("{{\"conversation_id\":{conv}}}")))
                        .collect();
                    if ready.is_empty() {
                        ready.push(Event::default().event("sync").id(id).data("{}"));
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event stream: reading changes failed"),
            }
        }
    })
}
