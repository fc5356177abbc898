//! The conversation page's contact panel and its one action: who the customer is (name,
//! number or BSUID, first seen), their conversations, the labels and the agents' notes
//! across them, and, for admins, **Erase this contact** (`POST /app/c/{id}/erase`, an
//! `Admin` route): the admin types the customer's number (or BSUID) back to confirm, then
//! `store::contacts::erase_contact` deletes everything stored about them in one write
//! (audited there), their media files no other message uses are deleted, and the inbox
//! opens with a notice. Every value is escaped by maud; the panel is a `<details>`,
//! collapsible without script (`nav.js` opens it on a wide screen).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Session, pages};
use crate::app::App;
use crate::domain::auth::Role;
use crate::domain::calendar;
use crate::domain::owner::Owner;
use crate::store::contact_panel::{self, ContactPanel};

/// The panel of conversation `id`'s contact (`None`: no such conversation).
pub async fn load(app: &App, id: i64) -> crate::error::Result<Option<ContactPanel>> {
    app.store.read(move |c| contact_panel::for_conversation(c, id)).await
}

/// "Monday 7 December 2026, 14:05 UTC" in a `<time>`.
fn when(at: i64) -> Markup {
    html! {
        time datetime=(calendar::iso(at)) { (calendar::day_words(calendar::utc_day(at))) ", " (calendar::hh_mm(at)) " UTC" }
    }
}

/// A shorter date: "Today", "Yesterday" or the day in words.
fn day(at: i64, now: i64) -> Markup {
    html! {
        time datetime=(calendar::iso(at)) title={ (calendar::day_words(calendar::utc_day(at))) ", " (calendar::hh_mm(at)) " UTC" } {
            (calendar::day_label(calendar::utc_day(at), calendar::utc_day(now)))
        }
    }
}

/// What the erase form asks to be typed back: the number, else the BSUID.
fn confirm_word(p: &ContactPanel) -> &str {
    p.key().unwrap_or("erase")
}

/// The panel on the conversation page of conversation `current`.
pub fn panel(session: &Session, p: &ContactPanel, current: i64, now: i64) -> Markup {
    let admin = session.user.role == Role::Admin;
    let name = p.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("(no name)");
    let number = p.wa_id.as_deref().filter(|w| !w.is_empty());
    let bsuid = p.user_id.as_deref().filter(|u| !u.is_empty());
    html! {
        details.card.contact-panel #contact {
            summary { h2 { "Contact" } " " span.hint.contact-name dir="auto" { (name) } }
            div.contact-grid {
                div.contact-facts {
                    h3 { "Details" }
                    dl {
                        dt { "Name" } dd dir="auto" { (name) }
                        @if let Some(n) = number {
                            dt { "Number" } dd.contact-number { "+" (n) }
                        } @else if let Some(u) = bsuid {
                            dt { "WhatsApp user id (BSUID)" } dd.contact-number { (u) }
                        }
                        @if let Some(u) = p.username.as_deref().filter(|u| !u.is_empty()) {
                            dt { "Username" } dd dir="auto" { "@" (u) }
                        }
                        dt { "First seen" } dd.first-seen { (when(p.first_seen)) }
                        @if p.opted_out { dt { "Bot messages" } dd { "Opted out (STOP)" } }
                    }
                }
                div {
                    h3 { "Conversations" }
                    ul.contact-conversations {
                        @for c in &p.conversations {
                            li data-conversation=(c.id) {
                                @if c.id == current {
                                    span aria-current="page" { "This conversation" }
                                } @else {
                                    a href={ "/app/c/" (c.id) } { "Conversation " (c.id) }
                                }
                                " · " span.status { (if c.closed { "closed" } else if c.owner == Owner::Human { "with a person" } else { "bot" }) }
                                " · " (day(c.last_message_at.unwrap_or(c.created_at), now))
                                @if p.conversations.iter().any(|o| o.phone_number_id != c.phone_number_id) {
                                    " · " span.hint { "on " (c.phone_number_id) }
                                }
                            }
                        }
                    }
                }
                div {
                    h3 { "Labels" }
                    @if p.labels.is_empty() {
                        p.hint { "None yet." }
                    } @else {
                        div.tags.contact-labels {
                            @for l in &p.labels {
                                a.label href={ "/app?view=all&label=" (l) } aria-label={ "Every conversation labelled " (l) } { (l) }
                            }
                        }
                    }
                }
                div {
                    h3 { "Notes" }
                    @if p.notes.is_empty() {
                        p.hint { "None yet." }
                    } @else {
                        ol.contact-notes {
                            @for n in &p.notes {
                                li {
                                    p dir="auto" { (n.text) }
                                    span.hint {
                                        (n.author) " · " (day(n.created_at, now))
                                        @if n.conversation_id != current {
                                            " · " a href={ "/app/c/" (n.conversation_id) } { "conversation " (n.conversation_id) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if admin { (erase_form(session, p, current, false)) }
            }
        }
    }
}

/// The admin's erase step: a typed confirmation, no script needed (in the panel, folded
/// under "Erase this contact"; `open` on the erase page).
fn erase_form(session: &Session, p: &ContactPanel, current: i64, open: bool) -> Markup {
    let word = confirm_word(p);
    html! {
        details.erase open[open] {
            summary { "Erase this contact" }
            form method="post" action={ "/app/c/" (current) "/erase" } {
                input type="hidden" name="csrf" value=(session.csrf);
                p.problem {
                    "This deletes everything stored about this customer: "
                    (p.conversations.len()) " conversation(s) with their messages, files, notes and labels. "
                    "It cannot be undone. The audit log keeps a record that names a hash, never the number."
                }
                label {
                    "To confirm, type " code { (word) }
                    input type="text" name="confirm" autocomplete="off" spellcheck="false" required;
                }
                button.danger type="submit" { "Erase this contact" }
            }
        }
    }
}

/// The erase step on a page of its own (`GET /app/c/{id}/erase`, admins; also where a
/// wrong confirmation lands, so a reload shows the form again rather than posting it).
fn erase_page(session: &Session, p: &ContactPanel, id: i64, problem: Option<&str>) -> Markup {
    let name = p.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("(no name)");
    pages::layout(
        "Erase a contact",
        Some(session),
        html! {
            p { a href={ "/app/c/" (id) } { "← Back to the conversation" } }
            section.card.erase-step {
                h1 { "Erase " span dir="auto" { (name) } }
                @if let Some(pr) = problem { p.problem role="alert" { (pr) } }
                (erase_form(session, p, id, true))
            }
        },
    )
}

/// `GET /app/c/{id}/erase` (admins): the erase step as a page.
pub async fn erase_step(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    match load(&app, id).await {
        Ok(Some(p)) => erase_page(&s, &p, id, None).into_response(),
        Ok(None) => {
            pages::error(StatusCode::NOT_FOUND, "No such conversation (it may have been erased).").into_response()
        }
        Err(e) => pages::internal(e),
    }
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    confirm: String,
}

/// What was typed, compared without spaces, dashes, dots or a leading `+` (a number) —
/// a BSUID keeps its dots.
fn matches(typed: &str, word: &str) -> bool {
    let digits = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '+' | '(' | ')'))
            .collect()
    };
    let typed = typed.trim();
    typed == word || (word.chars().all(|c| c.is_ascii_digit()) && digits(typed) == word)
}

/// `POST /app/c/{id}/erase` (admins): erases the conversation's contact once the
/// confirmation matches, deletes their media files no other message uses, and opens the
/// inbox with a notice. A wrong confirmation shows the page again with the reason (422).
pub async fn erase(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<EraseForm>,
) -> Response {
    let panel = match load(&app, id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return pages::error(StatusCode::NOT_FOUND, "No such conversation (it may have been erased).")
                .into_response();
        }
        Err(e) => return pages::internal(e),
    };
    let word = confirm_word(&panel).to_string();
    if !matches(&f.confirm, &word) {
        let problem = format!("Nothing was erased: type {word} in the confirmation box to erase this contact.");
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            erase_page(&s, &panel, id, Some(&problem)),
        )
            .into_response();
    }
    let (contact, who, now) = (panel.contact_id, s.actor(), crate::domain::now_ms());
    let erased = match app
        .store
        .write(move |c| crate::store::contacts::erase_contact(c, contact, &who, now))
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) => {
            return pages::error(StatusCode::NOT_FOUND, "This contact was already erased.").into_response();
        }
        Err(e) => return pages::internal(e),
    };
    // Their stored media files go now, unless another message uses the same file.
    for sha in erased.media_files {
        let name = sha.clone();
        match app
            .store
            .read(move |c| crate::store::media::file_in_use(c, &name))
            .await
        {
            Ok(false) => {
                if let Err(e) = app.media.files.delete(&sha) {
                    // The maintenance sweep removes what is left over.
                    tracing::warn!(error = %e, "deleting an erased contact's media file failed");
                }
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "checking an erased contact's media file failed"),
        }
    }
    Redirect::to("/app?notice=erased").into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_confirmation_takes_a_number_as_people_type_it() {
        assert!(super::matches("31612345678", "31612345678"));
        assert!(super::matches(" +31 6-1234 5678 ", "31612345678"));
        assert!(!super::matches("3161234567", "31612345678"));
        assert!(!super::matches("", "31612345678"));
        assert!(super::matches("US.123", "US.123"));
        assert!(!super::matches("US123", "US.123"));
    }
}
