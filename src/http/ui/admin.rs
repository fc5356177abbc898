//! Admin pages: the live settings (kill switch and its static text, bridge text, model
//! chains per tier, routing rules, thresholds, budgets, debounce — the same validated,
//! audited store the CLI and the control API write, applied to the next message).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Session, pages};
use crate::app::App;
use crate::error::Error;

use pages::internal;

#[derive(Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

pub async fn settings(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    // Only a known key is echoed back.
    let saved = q
        .saved
        .as_deref()
        .and_then(|k| crate::domain::settings::spec(k).ok())
        .map(|s| s.key);
    render(
        &app,
        &s,
        saved
            .map(|k| format!("Saved {k}; it applies to the next message."))
            .as_deref(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(app: &App, s: &Session, notice: Option<&str>, problem: Option<&str>, status: StatusCode) -> Response {
    match crate::settings::current(&app.store, &app.config).await {
        Ok(effective) => (status, pages::settings(s, &effective, notice, problem)).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct SetForm {
    key: String,
    #[serde(default)]
    value: String,
    /// `unset` returns to the config file's value.
    #[serde(default)]
    action: String,
}

pub async fn set(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Form(f): Form<SetForm>) -> Response {
    let actor = s.actor();
    let (key, value, unset) = (f.key.clone(), f.value.replace("\r\n", "\n"), f.action == "unset");
    let providers = app.config.llm.provider_names();
    let done = app
        .store
        .write(move |c| {
            if unset {
                crate::store::settings::unset_checked(c, &key, &actor).map(|_| ())
            } else {
                crate::store::settings::set_checked(c, &key, &value, &actor, &providers).map(|_| ())
            }
        })
        .await;
    match done {
        Ok(()) => Redirect::to(&format!(
            "/admin/settings?saved={}",
            crate::domain::settings::spec(&f.key).map(|s| s.key).unwrap_or("")
        ))
        .into_response(),
        Err(Error::Invalid(p)) => render(&app, &s, None, Some(&p), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct KbQuery {
    q: Option<String>,
    notice: Option<String>,
}

/// Largest upload the knowledge page accepts in one request.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;

pub async fn kb(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Query(q): Query<KbQuery>) -> Response {
    let notice = match q.notice.as_deref() {
        Some("removed") => Some("Document removed.".to_string()),
        _ => None,
    };
    kb_page(&app, &s, q.q.as_deref(), notice.as_deref(), None, StatusCode::OK).await
}

async fn kb_page(
    app: &App,
    s: &Session,
    query: Option<&str>,
    notice: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let docs = match app.knowledge.store.read(crate::store::knowledge::list_documents).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let kb_status = match app.knowledge.status().await {
        Ok(st) => st,
        Err(e) => return internal(e),
    };
    let query = query
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(500).collect::<String>());
    let hits = match &query {
        Some(q) => match app.knowledge.search(q, 5, crate::knowledge::Mode::Hybrid).await {
            Ok(h) => Some(h),
            Err(e) => return internal(e),
        },
        None => None,
    };
    (
        status,
        pages::knowledge(s, &docs, &kb_status, query.as_deref(), hits.as_deref(), notice, problem),
    )
        .into_response()
}

/// `POST /admin/kb/upload` (multipart, field `files`): each file parsed by its extension
/// and added like `kb add`; problems are listed, nothing half-added. Files are read in
/// the sandbox (`extract`): a hostile file is one problem in the list, never a crash.
pub async fn upload(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    mut form: axum::extract::Multipart,
) -> Response {
    use crate::knowledge::parse::{CsvColumns, Format};
    let mut docs = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut files = 0;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return kb_page(
                    &app,
                    &s,
                    None,
                    None,
                    Some(&format!(
                        "The upload failed: {e}. Files can be at most {} MB in total.",
                        UPLOAD_LIMIT / 1024 / 1024
                    )),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        };
        if field.name() != Some("files") {
            continue;
        }
        // Only the file's own name, never a path from the browser.
        let name: String = field
            .file_name()
            .unwrap_or("upload")
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("upload")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return kb_page(
                    &app,
                    &s,
                    None,
                    None,
                    Some(&format!("Reading {name} failed: {e}")),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        };
        if name.is_empty() || bytes.is_empty() {
            continue;
        }
        files += 1;
        let Some(format) = Format::from_path(std::path::Path::new(&name)) else {
            problems.push(format!(
                "{name}: not a supported file (use .md, .txt, .html, .csv, .jsonl or .pdf)"
            ));
            continue;
        };
        let id = name.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(&name).to_string();
        let (d, p) = app
            .media
            .extractor
            .knowledge(
                format,
                &format!("upload:{name}"),
                &id,
                bytes.to_vec(),
                &CsvColumns::default(),
            )
            .await;
        problems.extend(p.iter().map(|p| p.to_string()));
        docs.extend(d);
    }
    if files == 0 {
        return kb_page(
            &app,
            &s,
            None,
            None,
            Some("Choose at least one file."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let mut report = crate::knowledge::ingest::IngestReport::default();
    if !docs.is_empty()
        && let Err(e) = app.knowledge.add_documents(docs, &mut report).await
    {
        return internal(e);
    }
    problems.extend(report.problems.iter().cloned());
    let (actor, now, detail) = (
        s.actor(),
        crate::domain::now_ms(),
        format!("{{\"added\":{},\"updated\":{}}}", report.added, report.updated),
    );
    let written = app
        .store
        .write(move |c| crate::store::settings::audit(c, now, &actor, "kb.upload", "knowledge", &detail))
        .await;
    super::handlers::audit_written(&app, "kb.upload", written);
    let notice = format!(
        "{} added, {} updated, {} unchanged ({} chunks).",
        report.added, report.updated, report.unchanged, report.chunks
    );
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    kb_page(
        &app,
        &s,
        None,
        Some(&notice),
        (!problems.is_empty()).then(|| problems.join("\n")).as_deref(),
        status,
    )
    .await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    doc: String,
}

pub async fn remove(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Form(f): Form<RemoveForm>,
) -> Response {
    let (id, actor, now) = (f.doc.clone(), s.actor(), crate::domain::now_ms());
    let removed = app
        .knowledge
        .store
        .write(move |c| {
            let removed = crate::store::knowledge::delete_document(c, &id)?;
            if removed {
                crate::store::settings::audit(c, now, &actor, "kb.remove", &id, "{}")?;
            }
            Ok(removed)
        })
        .await;
    match removed {
        Ok(true) => Redirect::to("/admin/kb?notice=removed").into_response(),
        Ok(false) => {
            kb_page(
                &app,
                &s,
                None,
                None,
                Some("No such document (already removed?)."),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => internal(e),
    }
}

pub async fn dashboard(State(app): State<Arc<App>>, Extension(s): Extension<Session>) -> Response {
    let now = crate::domain::now_ms();
    match app
        .store
        .read(move |c| crate::store::dashboard::dashboard(c, now, 14))
        .await
    {
        Ok(d) => pages::dashboard(&s, &d, app.send_pause.reason().as_deref()).into_response(),
        Err(e) => internal(e),
    }
}

/// `GET /admin/health`: the account health Meta reported — each number's quality rating
/// and messaging limit tier, restrictions, templates and their status, recent changes.
pub async fn health(State(app): State<Arc<App>>, Extension(s): Extension<Session>) -> Response {
    match app.store.read(|c| crate::store::health::snapshot(c, 50)).await {
        Ok(h) => pages::health(&s, &h, &app.config.whatsapp.templates, crate::domain::now_ms()).into_response(),
        Err(e) => internal(e),
    }
}
