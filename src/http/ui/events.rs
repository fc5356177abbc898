//! Live updates for open inbox pages: a Server-Sent Events stream of what changed
//! (`handoff`, `message`, `status`, `note`, each with its conversation id). Each event
//! carries the store's cursor as its id, so a browser that reconnects (EventSource sends
//! `Last-Event-ID`) gets what it missed. Two kinds carry no id (they are not in the
//! cursor): `snooze`, a snooze whose time came (looked up in the range since the last
//! poll), and, for a conversation page (`?conversation=ID`), `presence`, who else is on
//! it whenever that changes (read from `App::presence`, memory only). The stream checks
//! the store every 250 ms (four indexed MAX lookups and a range of the snooze index), so
//! a new message shows within a second of its webhook.
//! Each check also looks the session up again (by its primary key): the stream ends when
//! the session does — logout, a password change elsewhere, the user removed, expiry —
//! and when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
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

/// `?conversation=ID`: a conversation page also wants its `presence` events.
#[derive(serde::Deserialize)]
pub struct StreamQuery {
    conversation: Option<i64>,
}

pub async fn stream(
    State(app): State<Arc<App>>,
    Extension(session): Extension<Session>,
    Query(q): Query<StreamQuery>,
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
    let tail = Tail {
        app,
        token_hash: session.token_hash,
        cursor: start,
        ready: Vec::new(),
        woke_through: crate::domain::now_ms(),
        watch: q.conversation.map(|conversation| Watch {
            conversation,
            user: session.user.id,
            last: None,
        }),
    };
    Sse::new(events(tail))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One stream's state between polls.
struct Tail {
    app: Arc<App>,
    /// The session it belongs to (the stream ends with it).
    token_hash: String,
    cursor: Cursor,
    /// Events ready to send, popped from the end.
    ready: Vec<Event>,
    /// Snoozes ending up to this time (ms) were announced.
    woke_through: i64,
    /// The conversation whose presence the page shows, if any.
    watch: Option<Watch>,
}

/// A conversation page's presence: who else is there, as last sent.
struct Watch {
    conversation: i64,
    user: i64,
    last: Option<Vec<crate::domain::presence::Viewer>>,
}

fn events(tail: Tail) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(e) = tail.ready.pop() {
                return Some((Ok(e), tail));
            }
            tokio::select! {
                _ = tail.app.stopping.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
            let app = tail.app.clone();
            let (since, h, idle, max) = (
                tail.cursor,
                tail.token_hash.clone(),
                app.config.auth.idle_ms(),
                app.config.auth.max_ms(),
            );
            let (wake_from, clock) = (tail.woke_through, crate::domain::now_ms());
            let found = app
                .store
                .read(move |c| {
                    if !users::session_alive(c, &h, crate::domain::now_ms(), idle, max)? {
                        return Ok(None);
                    }
                    // Snoozes whose time came since the last look (a range of a small index).
                    let woken = crate::store::snooze::woken(c, wake_from, clock)?;
                    let now = inbox::cursor(c)?;
                    if now == since {
                        return Ok(Some((now, Vec::new(), woken)));
                    }
                    Ok(Some((now, inbox::changes(c, &since, &now)?, woken)))
                })
                .await;
            match found {
                Ok(None) => return None,
                Ok(Some((now, changes, woken))) => {
                    tail.woke_through = clock;
                    if now != tail.cursor {
                        tail.cursor = now;
                        let id = now.to_string();
                        // Sent in order: `ready` is popped from the end.
                        tail.ready = changes
                            .into_iter()
                            .rev()
                            .map(|(kind, conv)| {
                                Event::default()
                                    .event(kind)
                                    .id(id.clone())
                                    .data(format!("{{\"conversation_id\":{conv}}}"))
                            })
                            .collect();
                        if tail.ready.is_empty() {
                            tail.ready.push(Event::default().event("sync").id(id).data("{}"));
                        }
                    }
                    // Not part of the cursor (no id): a snooze that ended, and who else is
                    // on the watched conversation when that changed.
                    let mut extra: Vec<Event> = woken
                        .into_iter()
                        .map(|conv| {
                            Event::default()
                                .event("snooze")
                                .data(format!("{{\"conversation_id\":{conv}}}"))
                        })
                        .collect();
                    extra.extend(presence_change(&app, tail.watch.as_mut(), clock));
                    extra.reverse();
                    tail.ready.splice(0..0, extra);
                }
                Err(e) => tracing::warn!(error = %e, "event stream: reading changes failed"),
            }
        }
    })
}

/// A `presence` event when who else is on the watched conversation changed since the
/// last one (the first look always sends one).
fn presence_change(app: &App, watch: Option<&mut Watch>, now: i64) -> Option<Event> {
    let w = watch?;
    let others = app
        .presence
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .others(w.conversation, w.user, now);
    if w.last.as_ref() == Some(&others) {
        return None;
    }
    let data = serde_json::json!({ "conversation_id": w.conversation, "others": others }).to_string();
    w.last = Some(others);
    Some(Event::default().event("presence").data(data))
}
