//! Canned replies: the admin page that adds, edits and removes them (`/admin/canned`,
//! stored in SQLite, audited, live for the next page an agent opens) and the list the
//! composer offers — the config file's `[[inbox.canned_replies]]` first, read-only, then
//! the stored ones. A reply names its choice by a stable key (`c<index>` for the config
//! file's, `s<id>` for a stored one), so an edit elsewhere never swaps the text sent.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Session, pages};
use crate::app::App;
use crate::domain::canned::{MAX_STORED, TEXT_MAX_CHARS, TITLE_MAX_CHARS};
use crate::error::{Error, Result};
use crate::store::canned::{self, Stored};

use pages::internal;

/// One canned reply the composer offers.
#[derive(Debug, Clone)]
pub struct Choice {
    /// `c<index>` (the config file's) or `s<id>` (stored).
    pub key: String,
    pub title: String,
    pub text: String,
}

/// Every canned reply for the composer: the config file's, then the stored ones by title.
pub async fn choices(app: &App) -> Result<Vec<Choice>> {
    let stored = app.store.read(canned::list).await?;
    let from_config = app.config.inbox.canned_replies.iter().enumerate().map(|(i, c)| Choice {
        key: format!("c{i}"),
        title: c.title.clone(),
        text: c.text.clone(),
    });
    Ok(from_config
        .chain(stored.into_iter().map(|s| Choice {
            key: format!("s{}", s.id),
            title: s.title,
            text: s.text,
        }))
        .collect())
}

/// The text of the canned reply a composer named by its key, if it (still) exists.
pub async fn text_of(app: &App, key: &str) -> Result<Option<String>> {
    // A bare number is the config file's index, as pages rendered before stored replies
    // existed sent it.
    if let Ok(i) = key.strip_prefix('c').unwrap_or(key).parse::<usize>() {
        return Ok(app.config.inbox.canned_replies.get(i).map(|c| c.text.clone()));
    }
    match key.strip_prefix('s').and_then(|i| i.parse::<i64>().ok()) {
        Some(id) => app.store.read(move |c| canned::text(c, id)).await,
        None => Ok(None),
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

/// What a redirect back to the page says (a fixed text per code, never the request's).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "Canned reply added. Agents see it in the composer's picker now.",
        "saved" => "Canned reply saved.",
        "removed" => "Canned reply removed.",
        _ => return None,
    })
}

/// A form sent back with a problem: which reply it was (`None`: the new one) and what
/// was typed, shown again.
struct Draft<'a> {
    id: Option<i64>,
    title: &'a str,
    text: &'a str,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Query(q): Query<PageQuery>,
) -> Response {
    render(
        &app,
        &s,
        q.notice.as_deref().and_then(notice),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(
    app: &App,
    s: &Session,
    notice: Option<&str>,
    problem: Option<&str>,
    draft: Option<Draft<'_>>,
    status: StatusCode,
) -> Response {
    match app.store.read(canned::list).await {
        Ok(stored) => (
            status,
            markup(s, &app.config.inbox.canned_replies, &stored, notice, problem, draft),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct ReplyForm {
    /// Present when editing a stored reply.
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

/// `POST /admin/canned`: adds one.
pub async fn add(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Form(f): Form<ReplyForm>) -> Response {
    let (title, text, actor, now) = (f.title.clone(), f.text.clone(), s.actor(), crate::domain::now_ms());
    let done = app
        .store
        .write(move |c| canned::add(c, &title, &text, &actor, now))
        .await;
    answer(&app, &s, done.map(|_| true), "added", &f, None).await
}

/// The answer to an edit or removal that names no canned reply (a stale or forged form).
async fn no_reply_named(app: &App, s: &Session) -> Response {
    render(
        app,
        s,
        None,
        Some("Which canned reply? Reload the page."),
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `POST /admin/canned/edit`: changes one.
pub async fn edit(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Form(f): Form<ReplyForm>) -> Response {
    let Some(id) = f.id else {
        return no_reply_named(&app, &s).await;
    };
    let (title, text, actor, now) = (f.title.clone(), f.text.clone(), s.actor(), crate::domain::now_ms());
    let done = app
        .store
        .write(move |c| canned::edit(c, id, &title, &text, &actor, now))
        .await;
    answer(&app, &s, done, "saved", &f, Some(id)).await
}

/// `POST /admin/canned/remove`: removes one.
pub async fn remove(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Form(f): Form<ReplyForm>,
) -> Response {
    let Some(id) = f.id else {
        return no_reply_named(&app, &s).await;
    };
    let (actor, now) = (s.actor(), crate::domain::now_ms());
    let done = app.store.write(move |c| canned::remove(c, id, &actor, now)).await;
    answer(&app, &s, done, "removed", &f, None).await
}

async fn answer(app: &App, s: &Session, done: Result<bool>, code: &str, f: &ReplyForm, id: Option<i64>) -> Response {
    match done {
        Ok(true) => Redirect::to(&format!("/admin/canned?notice={code}")).into_response(),
        Ok(false) => {
            render(
                app,
                s,
                None,
                Some("No such canned reply (someone removed it?)."),
                None,
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(Error::Invalid(p)) => {
            let draft = Draft {
                id,
                title: &f.title,
                text: &f.text,
            };
            render(app, s, None, Some(&p), Some(draft), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => internal(e),
    }
}

/// The title and text fields of a form, filled with `title` and `text`.
fn fields(title: &str, text: &str) -> Markup {
    html! {
        label { "Title (at most " (TITLE_MAX_CHARS) " characters)"
            input type="text" name="title" value=(title) maxlength=(TITLE_MAX_CHARS) required;
        }
        label { "Text (at most " (TEXT_MAX_CHARS) " characters)"
            textarea name="text" rows="4" maxlength=(TEXT_MAX_CHARS) dir="auto" required { (text) }
        }
    }
}

fn markup(
    s: &Session,
    from_config: &[crate::config::CannedReply],
    stored: &[Stored],
    notice: Option<&str>,
    problem: Option<&str>,
    draft: Option<Draft<'_>>,
) -> Markup {
    let (new_title, new_text) = match &draft {
        Some(d) if d.id.is_none() => (d.title, d.text),
        _ => ("", ""),
    };
    pages::layout(
        "Canned replies",
        Some(s),
        html! {
            section.card.canned-admin {
                h1 { "Canned replies" }
                p.hint { "Agents type / in an empty reply (or use the picker above it) to put one of these in the composer, then send it as it is or edit it first. Changes apply to the next page an agent opens." }
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                @if let Some(p) = problem { p.problem role="alert" { (p) } }
                h2 { "Add a canned reply" }
                @if stored.len() >= MAX_STORED {
                    p.hint { "The inbox keeps at most " (MAX_STORED) " canned replies; remove one to add another." }
                } @else {
                    form.canned-new method="post" action="/admin/canned" {
                        input type="hidden" name="csrf" value=(s.csrf);
                        (fields(new_title, new_text))
                        button type="submit" { "Add canned reply" }
                    }
                }
                h2 { "Canned replies (" (stored.len()) " of at most " (MAX_STORED) ")" }
                @if stored.is_empty() { p.empty { "None yet." } }
                ul.canned-list {
                    @for r in stored {
                        @let (title, text) = match &draft {
                            Some(d) if d.id == Some(r.id) => (d.title, d.text),
                            _ => (r.title.as_str(), r.text.as_str()),
                        };
                        li data-canned=(r.id) {
                            form.canned-edit method="post" action="/admin/canned/edit" aria-label={ "Edit " (r.title) } {
                                input type="hidden" name="csrf" value=(s.csrf);
                                input type="hidden" name="id" value=(r.id);
                                (fields(title, text))
                                button type="submit" { "Save" }
                            }
                            form.inline method="post" action="/admin/canned/remove" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                input type="hidden" name="id" value=(r.id);
                                button.secondary type="submit" aria-label={ "Remove " (r.title) } { "Remove" }
                            }
                            p.hint { "Changed by " (r.updated_by.strip_prefix("user:").unwrap_or(&r.updated_by)) ", " (crate::domain::calendar::iso(r.updated_at)) }
                        }
                    }
                }
                @if !from_config.is_empty() {
                    h2 { "From the config file" }
                    p.hint { "Read-only here: change them in the config file's " code { "[[inbox.canned_replies]]" } " and restart. Agents see them first." }
                    ul.canned-list.from-config {
                        @for c in from_config {
                            li { strong { (c.title) } p.canned-text dir="auto" { (c.text) } }
                        }
                    }
                }
            }
        },
    )
}
