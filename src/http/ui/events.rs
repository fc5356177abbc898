//! Live updates for open inbox pages: a Server-Sent Events stream of what changed
//! (`handoff`, `message`, `status`, `note`, each with its conversation id). Each event
//! carries the store's cursor as its id, so a browser that reconnects (EventSource sends
//! `Last-Event-ID`) gets what it missed. The stream checks the store every 250 ms
//! (three indexed MAX lookups), so a new message shows within a second of its webhook.
//! Each check also looks the session up again (by its primary key): the stream ends when
//! the session does — logout, a password change elsewhere, the user removed, expiry —
//! and when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use super::Session;
use crate::app::App;
use crate::store::inbox::{self, Cursor};
use crate::store::users;

/// How often the stream looks for changes.
const POLL: Duration = Duration::from_millis(250);

pub async fn stream(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Cursor::parse);
    let start = match resume {
        Some(c) => c,
        None => match app.store.read(inbox::cursor).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "starting an event stream failed");
                return super::pages::error(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Live updates are unavailable; reload later.",
                )
                .into_response();
            }
        },
    };
    Sse::new(events(app, session.token_hash, start))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(app: Arc<App>, token_hash: String, start: Cursor) -> impl Stream<Item = Result<Event, Infallible>> {
    // State: (app, session token hash, cursor, events ready to send).
    stream::unfold(
        (app, token_hash, start, Vec::<Event>::new()),
        |(app, token_hash, mut cursor, mut ready)| async move {
            loop {
                if let Some(e) = ready.pop() {
                    return Some((Ok(e), (app, token_hash, cursor, ready)));
                }
                tokio::select! {
                    _ = app.stopping.cancelled() => return None,
                    _ = tokio::time::sleep(POLL) => {}
                }
                let (since, h, idle, max) = (
                    cursor,
                    token_hash.clone(),
                    app.config.auth.idle_ms(),
                    app.config.auth.max_ms(),
                );
                let found = app
                    .store
                    .read(move |c| {
                        if !users::session_alive(c, &h, crate::domain::now_ms(), idle, max)? {
                            return Ok(None);
                        }
                        let now = inbox::cursor(c)?;
                        if now == since {
                            return Ok(Some((now, Vec::new())));
                        }
                        Ok(Some((now, inbox::changes(c, &since, &now)?)))
                    })
                    .await;
                match found {
                    Ok(None) => return None,
                    Ok(Some((now, changes))) if now != cursor => {
                        cursor = now;
                        let id = now.to_string();
                        // Sent in order: `ready` is popped from the end.
                        ready = changes
                            .into_iter()
                            .rev()
                            .map(|(kind, conv)| {
                                Event::default()
                                    .event(kind)
                                    .id(id.clone())
                                    .data(format!("{{\"conversation_id\":{conv}}}"))
                            })
                            .collect();
                        if ready.is_empty() {
                            ready.push(Event::default().event("sync").id(id).data("{}"));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event stream: reading changes failed"),
                }
            }
        },
    )
}
