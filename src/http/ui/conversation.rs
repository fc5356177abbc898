//! The conversation page and its actions: reply as the agent (the real send path: ledger,
//! 24-hour window, rate limits), send a template when the window is closed, take over,
//! hand back to the bot with a note, assign (to any teammate), priority and labels, private notes, and retry a message that
//! failed to send (snooze and the collision check of a reply: `teamwork.rs`). Each action is audited
//! and answers with a redirect back to the page (so a reload does not repeat it); the
//! composer's one-time key makes a double submit one message.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Session, pages};
use crate::app::App;
use crate::domain::outbound::OutboundBody;
use crate::error::Error;
use crate::store::ledger::NewOutbound;
use crate::store::{handoffs, inbox};

use pages::internal;

/// Notices a redirect can carry (never free text from the request).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "sent" => "Sent. The ticks show when WhatsApp delivers it.",
        "taken" => "You are handling this conversation; the bot stays silent.",
        "handed_back" => "Handed back to the bot.",
        "assigned" => "Assignment changed.",
        "prioritised" => "Priority set.",
        "labelled" => "Labels changed.",
        "noted" => "Note added.",
        "closed" => "Closed. The bot answers if the customer writes again.",
        "retried" => "Sent again. The ticks show when WhatsApp delivers it.",
        other => return super::teamwork::notice(other),
    })
}

#[derive(Deserialize)]
pub struct ShowQuery {
    notice: Option<String>,
    /// Show the page of the thread written before this time (ms): "Earlier messages".
    before: Option<i64>,
    /// Open on the page holding this customer message (a search result links here).
    m: Option<i64>,
}

pub async fn show(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Query(q): Query<ShowQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let user = s.user.id;
    if let Err(e) = app
        .store
        .write(move |c| {
            if inbox::head(c, id)?.is_some() {
                inbox::mark_read(c, id, user)
            } else {
                Ok(())
            }
        })
        .await
    {
        return internal(e);
    }
    let before = match (q.before, q.m) {
        (None, Some(m)) => match super::search::page_of(&app, id, m).await {
            Ok(b) => b,
            Err(e) => return internal(e),
        },
        (before, _) => before,
    };
    let page = Page {
        notice: q.notice.as_deref().and_then(notice),
        before,
        held: None,
        view: Some(super::split::tab_of(&headers)),
    };
    render_page(&app, &s, id, page, None, StatusCode::OK).await
}

/// Which page of the thread, and the notice a redirect carried.
#[derive(Default)]
struct Page<'a> {
    notice: Option<&'a str>,
    before: Option<i64>,
    /// A reply the collision check held back (its text goes back into the composer).
    held: Option<super::teamwork::Held>,
    /// The inbox tab of the left column (`None`: the default tab).
    view: Option<inbox::View>,
}

/// The newest page with a problem (a refused action).
async fn render(
    app: &App,
    s: &Session,
    id: i64,
    notice: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = Page {
        notice,
        ..Page::default()
    };
    render_page(app, s, id, page, problem, status).await
}

async fn render_page(
    app: &App,
    s: &Session,
    id: i64,
    page: Page<'_>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let before = page.before;
    let (view, user) = (page.view.unwrap_or(super::split::DEFAULT_VIEW), s.user.id);
    let loaded = app
        .store
        .read(move |c| {
            let Some(head) = inbox::head(c, id)? else {
                return Ok(None);
            };
            let open = handoffs::handoffs_for(c, id)?
                .into_iter()
                .rev()
                .find(|h| h.resolved_at.is_none());
            let health = crate::store::health::snapshot(c, 0)?;
            let team = crate::store::users::list(c)?;
            // The left column: the tab's newest conversations (capped).
            let column = inbox::list(c, view, user, None, None, super::split::COLUMN_LIMIT)?;
            Ok(Some((
                head,
                inbox::thread(c, id, before, inbox::THREAD_PAGE)?,
                open,
                health,
                team,
                column,
            )))
        })
        .await;
    let (head, thread, handoff, health, team, column) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => {
            return pages::error(StatusCode::NOT_FOUND, "No such conversation (it may have been erased).")
                .into_response();
        }
        Err(e) => return internal(e),
    };
    // The contact panel (its own read: who the customer is across their conversations).
    let contact = match super::contact::load(app, id).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let teamwork = match super::teamwork::load(app, s, id, page.held).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    // The canned replies, read per page: an admin's change shows on the next one.
    let canned = match super::canned::choices(app).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let (key, attach_key) = (crate::config::random_token(), crate::config::random_token());
    let now = crate::domain::now_ms();
    let column = super::split::column(view, &column, id, now);
    let view = pages::ConversationView {
        contact: contact.as_ref(),
        head: &head,
        thread: &thread.items,
        earlier: thread.earlier,
        before,
        handoff: handoff.as_ref(),
        team: &team,
        templates: &app.config.whatsapp.templates,
        health: &health,
        canned: &canned,
        now,
        send_key: &key,
        attach_key: &attach_key,
        notice: page.notice,
        problem,
        teamwork: &teamwork,
        column,
    };
    (status, pages::conversation(s, &view)).into_response()
}

/// 404 unless conversation `id` exists.
async fn missing(app: &App, id: i64) -> Option<Response> {
    match app.store.read(move |c| inbox::head(c, id)).await {
        Ok(Some(_)) => None,
        Ok(None) => {
            Some(pages::error(StatusCode::NOT_FOUND, "No such conversation (it may have been erased).").into_response())
        }
        Err(e) => Some(internal(e)),
    }
}

fn back(id: i64, code: &str) -> Response {
    Redirect::to(&format!("/app/c/{id}?notice={code}")).into_response()
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    text: String,
    /// A canned reply's key (`canned::Choice`), used when the text is empty (no script needed).
    #[serde(default)]
    canned: String,
    key: String,
    /// The newest ledger row when the page was made (the collision check).
    #[serde(default)]
    seen: Option<i64>,
    /// Set once a reply was held back: send it anyway.
    #[serde(default)]
    confirm: String,
}

/// Sends `body` as the agent: a person now owns the conversation (the bot stays silent).
async fn send_as_agent(app: &Arc<App>, s: &Session, id: i64, key: &str, body: OutboundBody) -> Response {
    if let Some(r) = missing(app, id).await {
        return r;
    }
    if key.len() != 64 {
        return pages::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The form is incomplete; reload the page.",
        )
        .into_response();
    }
    let (who, now) = (s.actor(), crate::domain::now_ms());
    if let Err(e) = app
        .store
        .write(move |c| {
            inbox::take_over(c, id, &who, now)?;
            // An agent answering deals with a conversation woken from a snooze.
            crate::store::snooze::handled(c, id, now)
        })
        .await
    {
        return internal(e);
    }
    super::teamwork::sent(app, s, id);
    let req = NewOutbound {
        conversation_id: id,
        author: format!("agent:{}", s.user.email),
        body,
        reply_to: None,
        idempotency_key: format!("agent:{key}"),
    };
    match app.outbound.enqueue(req).await {
        Ok(_) => back(id, "sent"),
        Err(Error::Invalid(p)) => render(app, s, id, None, Some(&p), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}

pub async fn reply(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<ReplyForm>,
) -> Response {
    let mut text = f.text.trim().to_string();
    if text.is_empty() {
        match super::canned::text_of(&app, &f.canned).await {
            Ok(Some(t)) => text = t,
            Ok(None) => {}
            Err(e) => return internal(e),
        }
    }
    if text.is_empty() {
        return render(
            &app,
            &s,
            id,
            None,
            Some("Write something to send."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if f.confirm.is_empty() {
        match super::teamwork::collision(&app, &s, id, f.seen).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                let page = Page {
                    held: Some(super::teamwork::Held { text, why }),
                    ..Page::default()
                };
                return render_page(&app, &s, id, page, None, StatusCode::CONFLICT).await;
            }
            Err(e) => return internal(e),
        }
    }
    send_as_agent(
        &app,
        &s,
        id,
        &f.key,
        OutboundBody::Text {
            body: text,
            preview_url: false,
        },
    )
    .await
}

/// Largest file an agent can attach (WhatsApp takes documents up to 100 MB; the inbox
/// keeps uploads smaller).
pub const ATTACH_LIMIT: usize = 32 * 1024 * 1024;

/// `POST /app/c/{id}/attach` (multipart: `file`, optional `caption`, the one-time `key`):
/// the file is kept in the media store and queued like a typed reply, as an image
/// (JPEG/PNG) or a document; the send worker uploads it to the Graph API's media endpoint
/// and sends it by the media id it gets.
pub async fn attach(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    mut form: axum::extract::Multipart,
) -> Response {
    use crate::domain::outbound::MediaSource;
    let (mut file, mut name, mut declared, mut caption, mut key) =
        (None, String::new(), String::new(), String::new(), String::new());
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return render(
                    &app,
                    &s,
                    id,
                    None,
                    Some(&format!(
                        "The upload failed: {e}. Files can be at most {} MB.",
                        ATTACH_LIMIT / 1024 / 1024
                    )),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        };
        match field.name().unwrap_or_default() {
            "file" => {
                name = field
                    .file_name()
                    .unwrap_or("file")
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or("file")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(120)
                    .collect();
                declared = field.content_type().unwrap_or_default().to_string();
                match field.bytes().await {
                    Ok(b) => file = Some(b.to_vec()),
                    Err(e) => {
                        return render(
                            &app,
                            &s,
                            id,
                            None,
                            Some(&format!("Reading the file failed: {e}")),
                            StatusCode::BAD_REQUEST,
                        )
                        .await;
                    }
                }
            }
            "caption" => caption = field.text().await.unwrap_or_default().trim().to_string(),
            "key" => key = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        return render(
            &app,
            &s,
            id,
            None,
            Some("Choose a file to send."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    // WhatsApp shows JPEG and PNG as images (up to 5 MB); everything else goes as a document.
    let sniffed = crate::domain::media::sniff(&bytes);
    let (media_type, mime) = match sniffed {
        Some(m @ ("image/jpeg" | "image/png")) if bytes.len() <= 5 * 1024 * 1024 => ("image", m.to_string()),
        Some("application/pdf") => ("document", "application/pdf".to_string()),
        _ if declared.is_empty() || declared.starts_with("image/") => {
            ("document", "application/octet-stream".to_string())
        }
        _ => ("document", declared.clone()),
    };
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let files = app.media.files.clone();
    let sha256 = match tokio::task::spawn_blocking(move || files.put(&bytes)).await {
        Ok(Ok(sha)) => sha,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(Error::internal("storing the attachment", e)),
    };
    let body = OutboundBody::Media {
        media_type: media_type.into(),
        source: MediaSource::Stored {
            sha256,
            mime_type: mime,
            file_name: name.clone(),
        },
        caption: (!caption.is_empty()).then_some(caption),
        filename: (media_type == "document").then_some(name),
    };
    send_as_agent(&app, &s, id, &key, body).await
}

#[derive(Deserialize)]
pub struct TemplateForm {
    template: String,
    #[serde(default)]
    params: String,
    key: String,
}

pub async fn template(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<TemplateForm>,
) -> Response {
    let Some((name, language)) = f.template.split_once('|') else {
        return render(
            &app,
            &s,
            id,
            None,
            Some("Pick a template."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let (n, l) = (name.to_string(), language.to_string());
    match app
        .store
        .read(move |c| crate::store::health::blocked_template(c, &n, &l))
        .await
    {
        Ok(None) => {}
        Ok(Some(t)) => {
            let problem = format!("Template {name} ({language}) was not sent: Meta has it {}.", t.why());
            return render(&app, &s, id, None, Some(&problem), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) => return internal(e),
    }
    let params: Vec<String> = f
        .params
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let body = OutboundBody::Template {
        name: name.to_string(),
        language: language.to_string(),
        params,
    };
    send_as_agent(&app, &s, id, &f.key, body).await
}

#[derive(Deserialize)]
pub struct RetryForm {
    ledger: i64,
    key: String,
}

/// `POST /app/c/{id}/retry`: a message that failed to send (the bot's or an agent's) goes
/// out again as a new ledger row with the same body and author (the failed row stays, as
/// history), once: a second retry of the same row is refused (409, the page says why) and
/// sends nothing. The 24-hour window and the limits are checked again by `enqueue`.
pub async fn retry(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<RetryForm>,
) -> Response {
    if f.key.len() != 64 {
        return pages::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The form is incomplete; reload the page.",
        )
        .into_response();
    }
    let ledger_id = f.ledger;
    let found = app
        .store
        .read(move |c| {
            Ok((
                crate::store::ledger::get(c, ledger_id)?,
                crate::store::ledger::retry_of(c, ledger_id)?,
            ))
        })
        .await;
    let row = match found {
        Ok((r, None)) if r.conversation_id == id && r.state == crate::domain::ledger::LedgerState::Failed => r,
        Ok((r, Some(_))) if r.conversation_id == id => {
            let problem = "This message was already sent again (once is the limit); its ticks show in the thread. \
                           If that copy fails too, retry it instead.";
            return render(&app, &s, id, None, Some(problem), StatusCode::CONFLICT).await;
        }
        Ok(_) | Err(Error::NotFound(_)) => {
            return pages::error(StatusCode::NOT_FOUND, "No failed message to retry here.").into_response();
        }
        Err(e) => return internal(e),
    };
    // One retry per failed row, whatever the form's key: a second click, a second tab or
    // a resubmitted form finds the same key and sends nothing more.
    let req = NewOutbound {
        conversation_id: id,
        author: row.author.clone(),
        body: row.body.clone(),
        reply_to: row.reply_to.clone(),
        idempotency_key: crate::domain::ledger::retry_key(ledger_id),
    };
    match app.outbound.enqueue(req).await {
        Ok(new_id) => {
            let (who, now) = (s.actor(), crate::domain::now_ms());
            let detail = format!("{{\"retry_of\":{ledger_id},\"outbound\":{new_id}}}");
            if let Err(e) = app
                .store
                .write(move |c| crate::store::settings::audit_conversation(c, now, &who, "message.retry", id, &detail))
                .await
            {
                return internal(e);
            }
            back(id, "retried")
        }
        Err(Error::Invalid(p)) => render(&app, &s, id, None, Some(&p), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}

pub async fn take_over(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Path(id): Path<i64>) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let (who, now) = (s.actor(), crate::domain::now_ms());
    match app.store.write(move |c| inbox::take_over(c, id, &who, now)).await {
        Ok(_) => back(id, "taken"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct HandBackForm {
    #[serde(default)]
    note: String,
}

pub async fn hand_back(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<HandBackForm>,
) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let note: String = f.note.trim().chars().take(1000).collect();
    match crate::engine::hand_back(&app.store, id, &s.actor(), &note).await {
        Ok(_) => back(id, "handed_back"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct AssignForm {
    to: String,
}

pub async fn assign(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let user = match f.to.as_str() {
        "me" => Some(s.user.id),
        "nobody" => None,
        other => match other.parse::<i64>() {
            // Any teammate: a user of this desk (the audit log records who, by id).
            Ok(teammate) => match app.store.read(move |c| crate::store::users::by_id(c, teammate)).await {
                Ok(Some(_)) => Some(teammate),
                Ok(None) => {
                    return render(
                        &app,
                        &s,
                        id,
                        None,
                        Some("No such teammate (they may have been removed); pick another."),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
                Err(e) => return internal(e),
            },
            Err(_) => {
                return pages::error(StatusCode::UNPROCESSABLE_ENTITY, "Assign to a teammate or to nobody.")
                    .into_response();
            }
        },
    };
    let (who, now) = (s.actor(), crate::domain::now_ms());
    match app.store.write(move |c| inbox::assign(c, id, user, &who, now)).await {
        Ok(()) => back(id, "assigned"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    text: String,
}

pub async fn note(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<NoteForm>,
) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let text: String = f.text.trim().chars().take(4096).collect();
    if text.is_empty() {
        return render(
            &app,
            &s,
            id,
            None,
            Some("The note is empty."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (email, now) = (s.user.email.clone(), crate::domain::now_ms());
    match app
        .store
        .write(move |c| inbox::add_note(c, id, &email, &text, now))
        .await
    {
        Ok(_) => back(id, "noted"),
        Err(e) => internal(e),
    }
}

pub async fn close(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Path(id): Path<i64>) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let (who, now) = (s.actor(), crate::domain::now_ms());
    match app.store.write(move |c| inbox::close(c, id, &who, now)).await {
        Ok(()) => back(id, "closed"),
        Err(e) => internal(e),
    }
}

/// `GET /app/c/{id}/media/{message_id}`: a customer's file from the media store (the
/// media job downloaded it; handlers never call the Graph API). Only plain media types
/// are served as themselves, so a hostile file (HTML, SVG) never runs in the app's origin.
pub async fn media(State(app): State<Arc<App>>, Path((id, message_id)): Path<(i64, i64)>) -> Response {
    use axum::http::header;
    let found = app
        .store
        .read(move |c| {
            Ok(inbox::media_of(c, id, message_id)?.map(|m| (m, crate::store::media::for_message(c, message_id))))
        })
        .await;
    let (media, row) = match found {
        Ok(Some((m, row))) => (m, row.ok().flatten()),
        Ok(None) => return pages::error(StatusCode::NOT_FOUND, "No such file in this conversation.").into_response(),
        Err(e) => return internal(e),
    };
    let stored = match row.as_ref().and_then(|r| r.sha256.clone().zip(r.mime_type.clone())) {
        Some((sha, mime)) => {
            let files = app.media.files.clone();
            tokio::task::spawn_blocking(move || files.read(&sha))
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|b| (mime, b))
        }
        None => None,
    };
    let Some((declared, bytes)) = stored else {
        let why = match row.as_ref().map(|r| (r.status.as_str(), r.error.as_deref())) {
            Some(("pending", _)) => "The file is still being downloaded; reload in a moment.".to_string(),
            Some((_, Some(e))) => format!("The file could not be kept: {e}."),
            _ => {
                "The file is no longer kept (past media.retention_days); ask the customer to send it again.".to_string()
            }
        };
        return pages::error(StatusCode::NOT_FOUND, &why).into_response();
    };
    // Only plain media types are served as themselves; anything else is a download.
    let safe = [
        "image/jpeg",
        "image/png",
        "image/webp",
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/amr",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
    ];
    let content_type = if safe.contains(&declared.split(';').next().unwrap_or("").trim()) {
        declared.clone()
    } else {
        "application/octet-stream".into()
    };
    let name: String = media
        .filename
        .unwrap_or_else(|| format!("{}-{message_id}", media.media_type.as_str()))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    let disposition = if content_type.starts_with("image/")
        || content_type.starts_with("audio/")
        || content_type.starts_with("video/")
    {
        "inline"
    } else {
        "attachment"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PriorityForm {
    priority: String,
}

/// `POST /app/c/{id}/priority`: none, low, high or urgent (audited).
pub async fn priority(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<PriorityForm>,
) -> Response {
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let Some(p) = crate::domain::labels::Priority::parse(&f.priority) else {
        return pages::error(StatusCode::UNPROCESSABLE_ENTITY, "Pick none, low, high or urgent.").into_response();
    };
    let (who, now) = (s.actor(), crate::domain::now_ms());
    match app.store.write(move |c| inbox::set_priority(c, id, p, &who, now)).await {
        Ok(()) => back(id, "prioritised"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    add: String,
    #[serde(default)]
    remove: String,
}

/// `POST /app/c/{id}/labels`: adds the label typed in `add` (normalised; refused with
/// the reason when odd or one too many) or removes `remove` (audited).
pub async fn labels(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(f): Form<LabelForm>,
) -> Response {
    use crate::domain::labels::{LABEL_MAX_CHARS, LABELS_PER_CONVERSATION, label};
    if let Some(r) = missing(&app, id).await {
        return r;
    }
    let (who, now) = (s.actor(), crate::domain::now_ms());
    if !f.remove.is_empty() {
        let gone = f.remove.clone();
        return match app
            .store
            .write(move |c| inbox::remove_label(c, id, &gone, &who, now))
            .await
        {
            Ok(()) => back(id, "labelled"),
            Err(e) => internal(e),
        };
    }
    let Some(new) = label(&f.add) else {
        let problem =
            format!("A label is one or a few words of letters, digits, - or _ (at most {LABEL_MAX_CHARS} characters).");
        return render(&app, &s, id, None, Some(&problem), StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match app.store.write(move |c| inbox::add_label(c, id, &new, &who, now)).await {
        Ok(true) => back(id, "labelled"),
        Ok(false) => {
            let problem = format!("A conversation carries at most {LABELS_PER_CONVERSATION} labels; remove one first.");
            render(&app, &s, id, None, Some(&problem), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => internal(e),
    }
}
