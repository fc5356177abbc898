//! Working as a team on one conversation.
//!
//! Snooze: `POST /app/c/{id}/snooze` takes it out of the working tabs until a time (1 hour,
//! tomorrow 09:00, next Monday 09:00 — in the agent's own clock, see `domain::snooze` — or
//! a picked date and time) or wakes it now; audited. It wakes by itself when the time
//! passes (the list compares with the clock; the event stream announces it) or the
//! customer writes, and stays marked "woke from snooze" until an agent replies, closes it
//! or wakes it.
//!
//! Collision warning: the conversation page beats `POST /app/c/{id}/presence` (viewing,
//! typing, gone) into `App::presence`; the page shows who else is there, kept current by
//! the event stream (`presence` events of `/app/events?conversation=`). A reply is held
//! back once (409, the text kept, "Send anyway") when another agent replied since the page
//! was made (the form's `seen`: the newest ledger row then) or is typing in it right now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Session, pages};
use crate::app::App;
use crate::domain::calendar;
use crate::domain::presence::{Activity, Refused, Viewer};
use crate::domain::snooze::{Preset, SnoozeState};
use crate::error::Result;

/// Notices of this module's redirects.
pub fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "snoozed" => "Snoozed: it leaves the working tabs until its time, or until the customer writes.",
        "woken" => "Awake: back in the working tabs.",
        _ => return None,
    })
}

/// A reply held back by the collision check: the text, and why.
#[derive(Debug, Clone)]
pub struct Held {
    pub text: String,
    pub why: String,
}

/// What the conversation page shows of the team's work on it.
#[derive(Debug, Clone)]
pub struct Teamwork {
    pub snooze: SnoozeState,
    /// The newest ledger row when the page was made (the reply form's `seen`).
    pub seen: i64,
    /// Other agents on the conversation now.
    pub others: Vec<Viewer>,
    /// The presence time to live (the page beats every third of it).
    pub ttl_ms: u64,
    pub held: Option<Held>,
}

impl Teamwork {
    /// What the composer starts with: a held reply's text.
    pub fn draft(&self) -> &str {
        self.held.as_ref().map_or("", |h| h.text.as_str())
    }
}

/// Reads the page's team facts (one store read; the presence board is memory).
pub async fn load(app: &App, s: &Session, id: i64, held: Option<Held>) -> Result<Teamwork> {
    let now = crate::domain::now_ms();
    let (snooze, seen) = app
        .store
        .read(move |c| {
            Ok((
                crate::store::snooze::state(c, id, now)?,
                crate::store::ledger::newest_in(c, id)?,
            ))
        })
        .await?;
    Ok(Teamwork {
        snooze,
        seen,
        others: board(app).others(id, s.user.id, now),
        ttl_ms: app.config.inbox.presence_ttl_ms,
        held,
    })
}

fn board(app: &App) -> std::sync::MutexGuard<'_, crate::domain::presence::Board> {
    app.presence.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a reply should wait for a second press, if it should: another agent replied since
/// the page was made (`seen`), or is typing in the conversation now.
pub async fn collision(app: &App, s: &Session, id: i64, seen: Option<i64>) -> Result<Option<String>> {
    let typing: Vec<String> = board(app)
        .others(id, s.user.id, crate::domain::now_ms())
        .into_iter()
        .filter(|v| v.typing)
        .map(|v| v.name)
        .collect();
    let landed = match seen {
        Some(seen) => {
            let me = format!("agent:{}", s.user.email);
            app.store
                .read(move |c| crate::store::ledger::agent_reply_since(c, id, seen, &me))
                .await?
        }
        None => None,
    };
    let mut why = Vec::new();
    if let Some((who, text)) = landed {
        let short: String = text.chars().take(140).collect();
        let cut = if short.len() < text.len() { "…" } else { "" };
        why.push(format!(
            "{who} replied since you opened this conversation: “{short}{cut}”."
        ));
    }
    if !typing.is_empty() {
        why.push(format!("{} is typing a reply here right now.", typing.join(" and ")));
    }
    Ok((!why.is_empty()).then(|| {
        format!(
            "{} Your reply was not sent; it is below. Send it anyway, or change it first.",
            why.join(" ")
        )
    }))
}

/// After an agent's message went into the ledger: they are no longer typing, and a
/// woken conversation's mark is dealt with (in the caller's write).
pub fn sent(app: &App, s: &Session, id: i64) {
    board(app).sent(id, s.user.id);
}

#[derive(Deserialize)]
pub struct SnoozeForm {
    preset: String,
    #[serde(default)]
    at: String,
    /// The browser's offset from UTC in minutes (east positive); UTC when missing.
    #[serde(default)]
    tz: String,
}

/// `POST /app/c/{id}/snooze`: `preset` = hour, tomorrow, next_week, custom (with `at`, a
/// `datetime-local` value) or wake ("Wake now" / clear the woken mark).
pub async fn snooze(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<SnoozeForm>,
) -> Response {
    match app.store.read(move |c| crate::store::inbox::head(c, id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return pages::error(StatusCode::NOT_FOUND, "No such conversation (it may have been erased).")
                .into_response();
        }
        Err(e) => return pages::internal(e),
    }
    let (who, now) = (s.actor(), crate::domain::now_ms());
    if f.preset == "wake" {
        return match app
            .store
            .write(move |c| crate::store::snooze::wake(c, id, &who, now))
            .await
        {
            Ok(()) => Redirect::to(&format!("/app/c/{id}?notice=woken")).into_response(),
            Err(e) => pages::internal(e),
        };
    }
    let Some(preset) = Preset::parse(&f.preset, &f.at) else {
        let why = if f.preset == "custom" {
            "Pick a date and a time to snooze until."
        } else {
            "Pick how long to snooze."
        };
        return pages::error(StatusCode::UNPROCESSABLE_ENTITY, why).into_response();
    };
    let offset = f.tz.trim().parse::<i64>().unwrap_or(0);
    let until = match crate::domain::snooze::wake_time(preset, now, offset) {
        Ok(t) => t,
        Err(refused) => return pages::error(StatusCode::UNPROCESSABLE_ENTITY, refused.words()).into_response(),
    };
    match app
        .store
        .write(move |c| crate::store::snooze::snooze(c, id, until, &who, now))
        .await
    {
        Ok(()) => Redirect::to(&format!("/app/c/{id}?notice=snoozed")).into_response(),
        Err(e) => pages::internal(e),
    }
}

#[derive(Deserialize)]
pub struct PresenceForm {
    state: String,
}

/// `POST /app/c/{id}/presence` (`state` = viewing, typing or gone): a heartbeat of the
/// conversation page. Answers with who else is there, as JSON (`accepted`, `others`);
/// a heartbeat too soon after the last one is not taken (`accepted: false`, with
/// `retry_after_ms`) and changes nothing, so nothing is pushed to the other pages. (It is
/// not a 429: a page whose beats a slow network bunched up has done nothing wrong, and a
/// browser logs every 4xx as an error.)
pub async fn presence(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<PresenceForm>,
) -> Response {
    let Some(activity) = Activity::parse(&f.state) else {
        return pages::error(StatusCode::UNPROCESSABLE_ENTITY, "state is viewing, typing or gone.").into_response();
    };
    let now = crate::domain::now_ms();
    let (result, others) = {
        let mut b = board(&app);
        let result = b.beat(id, s.user.id, &s.user.email, activity, now);
        (result, b.others(id, s.user.id, now))
    };
    let retry_after_ms = match result {
        Err(Refused::TooSoon(ms)) => Some(ms),
        Ok(()) | Err(Refused::Full) => None,
    };
    let body = serde_json::json!({ "accepted": result.is_ok(), "retry_after_ms": retry_after_ms, "others": others });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// "Tue 8 Dec, 09:00 UTC" in a `<time class="local">` the page's script relabels in the
/// viewer's time zone.
fn when(ms: i64) -> Markup {
    let words = calendar::day_words(calendar::utc_day(ms));
    let short: Vec<&str> = words.split(' ').collect();
    let label = match short[..] {
        [weekday, day, month, _] => format!(
            "{} {day} {}, {} UTC",
            weekday.get(..3).unwrap_or(weekday),
            month.get(..3).unwrap_or(month),
            calendar::hh_mm(ms)
        ),
        _ => format!("{words}, {} UTC", calendar::hh_mm(ms)),
    };
    html! { time.local datetime=(calendar::iso(ms)) { (label) } }
}

/// The list row's mark: snoozed until when, or woken and why.
pub fn list_mark(state: SnoozeState) -> Markup {
    html! {
        @match state {
            SnoozeState::Snoozed { until } => div.reason.snoozed { "Snoozed until " (when(until)) },
            SnoozeState::Woke { .. } => div.reason.woke { (state.woke_words().unwrap_or_default()) },
            SnoozeState::Awake => {},
        }
    }
}

/// The conversation page's snooze block: the presets and a picked time, or the snooze in
/// force (or the woken mark) with "Wake now".
pub fn snooze_block(session: &Session, id: i64, t: &Teamwork) -> Markup {
    let action = format!("/app/c/{id}/snooze");
    html! {
        div.snooze {
            @match t.snooze {
                SnoozeState::Snoozed { until } => {
                    p.snoozed role="status" { "Snoozed until " (when(until)) ": out of the working tabs until then, or until the customer writes." }
                    form.inline method="post" action=(action) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.secondary type="submit" name="preset" value="wake" { "Wake now" }
                    }
                }
                _ => {
                    @if let Some(words) = t.snooze.woke_words() {
                        div.woke role="status" {
                            (capitalised(words)) "."
                            form.inline method="post" action=(action) {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button.secondary type="submit" name="preset" value="wake" { "Clear the mark" }
                            }
                        }
                    }
                    form.snooze method="post" action=(action) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="tz" value="0";
                        fieldset {
                            legend { "Snooze until" }
                            button.secondary type="submit" name="preset" value="hour" { "In 1 hour" }
                            button.secondary type="submit" name="preset" value="tomorrow" { "Tomorrow 9:00" }
                            button.secondary type="submit" name="preset" value="next_week" { "Monday 9:00" }
                            span.custom {
                                label { "Date and time" input type="datetime-local" name="at"; }
                                button.secondary type="submit" name="preset" value="custom" { "Snooze until then" }
                            }
                        }
                        p.hint.tz-rule { "Times are in your browser's time zone (UTC without script). It wakes at that time or when the customer writes." }
                    }
                }
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Who else is on the conversation, in words ("" when nobody).
pub fn presence_words(others: &[Viewer]) -> String {
    others
        .iter()
        .map(|v| {
            if v.typing {
                format!("{} is typing…", v.name)
            } else {
                format!("{} is also viewing", v.name)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The line above the composer naming who else is there; the script keeps it current.
pub fn presence_line(t: &Teamwork) -> Markup {
    let words = presence_words(&t.others);
    html! {
        p.presence role="status" aria-live="polite" data-ttl=(t.ttl_ms) hidden[words.is_empty()] { (words) }
    }
}

/// The reply form's collision fields (`seen`; `confirm` once a reply was held back) and
/// the warning of a held reply.
pub fn composer_fields(t: &Teamwork) -> Markup {
    html! {
        input type="hidden" name="seen" value=(t.seen);
        @if let Some(h) = &t.held {
            input type="hidden" name="confirm" value="1";
            div.collision role="alert" {
                p { (h.why) }
                button type="submit" { "Send anyway" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_and_wake_times_in_words() {
        let others = [
            Viewer {
                name: "dana@shop.example".into(),
                typing: true,
            },
            Viewer {
                name: "sam@shop.example".into(),
                typing: false,
            },
        ];
        assert_eq!(
            presence_words(&others),
            "dana@shop.example is typing…; sam@shop.example is also viewing"
        );
        assert_eq!(presence_words(&[]), "");
        // 2026-12-07 14:05 UTC, a Monday.
        let html = when(1_796_652_309_500).into_string();
        assert_eq!(
            html,
            "<time class=\"local\" datetime=\"2026-12-07T14:05:09Z\">Mon 7 Dec, 14:05 UTC</time>"
        );
        assert_eq!(capitalised("woke from snooze"), "Woke from snooze");
    }
}
