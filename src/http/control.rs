//! The local control API: what the CLI calls while the server holds the journal open.
//! Every route needs the bearer token from `data_dir/control.json` (an owner-only file).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::Error;

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/queue/stats", get(stats))
        .route("/queue/dead", get(dead))
        .route("/queue/retry/{id}", post(retry))
        .route("/kb/search", get(kb_search))
        .route("/kb/status", get(kb_status))
        .route("/settings", get(settings_list))
        .route(
            "/settings/{key}",
            axum::routing::put(settings_set).delete(settings_unset),
        )
        .route("/traces/{wamid}", get(trace))
        .route("/conversations/{id}/handoffs", get(handoffs))
        .route("/conversations/{id}/handback", post(handback))
        .route("/audit", get(audit))
        .route("/backup", post(backup))
        .route_layer(middleware::from_fn_with_state(app, require_token))
}

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(app.control_token.expose().as_bytes())) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "missing or wrong control token" })),
        )
            .into_response()
    }
}

/// The JSON error answer for a crate error.
pub(crate) fn error_response(e: Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    match app.queue.stats() {
        Ok(s) => Json(s).into_response(),
        Err(e) => error_response(e),
    }
}

async fn dead(State(app): State<Arc<App>>) -> Response {
    match app.queue.dead(10_000) {
        Ok(d) => Json(d).into_response(),
        Err(e) => error_response(e),
    }
}

async fn retry(State(app): State<Arc<App>>, Path(id): Path<u64>) -> Response {
    match app.queue.retry_dead(id).await {
        Ok(()) => Json(serde_json::json!({ "retried": id })).into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(serde::Deserialize)]
struct SearchParams {
    q: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    mode: Option<String>,
}

fn default_k() -> usize {
    5
}

/// `GET /kb/search?q=…&k=5&mode=hybrid`: the same search the engine and the CLI use.
async fn kb_search(State(app): State<Arc<App>>, Query(p): Query<SearchParams>) -> Response {
    if p.q.trim().is_empty() || p.k == 0 || p.k > 100 {
        return error_response(Error::Invalid("q must be non-empty and k between 1 and 100".into()));
    }
    let mode = match p.mode.as_deref().unwrap_or("hybrid").parse() {
        Ok(m) => m,
        Err(e) => return error_response(Error::Invalid(format!("mode: {e}"))),
    };
    match app.knowledge.search(&p.q, p.k, mode).await {
        Ok(hits) => Json(serde_json::json!({ "hits": hits })).into_response(),
        Err(e) => error_response(e),
    }
}

/// `GET /kb/status`: documents, chunks, the embedder, and warnings for the UI.
async fn kb_status(State(app): State<Arc<App>>) -> Response {
    match app.knowledge.status().await {
        Ok(s) => Json(s).into_response(),
        Err(e) => error_response(e),
    }
}

/// `GET /settings`: every live setting with value, source and help.
async fn settings_list(State(app): State<Arc<App>>) -> Response {
    match crate::settings::current(&app.store, &app.config).await {
        Ok(e) => Json(crate::settings::to_json(&e)).into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(serde::Deserialize)]
struct SettingValue {
    value: serde_json::Value,
}

/// `PUT /settings/{key}` with `{"value": …}`: validated, stored, audited; applies to the
/// next message.
async fn settings_set(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Json(body): Json<SettingValue>,
) -> Response {
    let value = match body.value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Bool(b) => if b { "on" } else { "off" }.to_string(),
        other => other.to_string(),
    };
    let (k, providers) = (key.clone(), app.config.llm.provider_names());
    match app
        .store
        .write(move |c| crate::store::settings::set_checked(c, &k, &value, "api:control", &providers))
        .await
    {
        Ok(v) => Json(serde_json::json!({ "key": key, "value": v, "source": "live" })).into_response(),
        Err(e) => error_response(e),
    }
}

/// `DELETE /settings/{key}`: back to the config file's value.
async fn settings_unset(State(app): State<Arc<App>>, Path(key): Path<String>) -> Response {
    let k = key.clone();
    match app
        .store
        .write(move |c| crate::store::settings::unset_checked(c, &k, "api:control"))
        .await
    {
        Ok(removed) => Json(serde_json::json!({ "key": key, "removed": removed })).into_response(),
        Err(e) => error_response(e),
    }
}

/// `GET /traces/{wamid}`: what the engine did with one customer message.
async fn trace(State(app): State<Arc<App>>, Path(wamid): Path<String>) -> Response {
    match app
        .store
        .read(move |c| crate::store::handoffs::trace_for(c, &wamid))
        .await
    {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error_response(Error::NotFound(
            "no trace for that message (not answered yet, or erased)".into(),
        )),
        Err(e) => error_response(e),
    }
}

/// `GET /conversations/{id}/handoffs`: the handoff packets of a conversation.
async fn handoffs(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    match app
        .store
        .read(move |c| crate::store::handoffs::handoffs_for(c, id))
        .await
    {
        Ok(h) => Json(h).into_response(),
        Err(e) => error_response(e),
    }
}

/// `GET /audit`: the latest 200 audit entries, newest first.
async fn audit(State(app): State<Arc<App>>) -> Response {
    match app.store.read(|c| crate::store::settings::audit_entries(c, 200)).await {
        Ok(a) => Json(a).into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(serde::Deserialize, Default)]
struct HandbackBody {
    #[serde(default)]
    note: String,
}

/// `POST /conversations/{id}/handback` with `{"note": …}`: the bot resumes, with the note in its context.
async fn handback(State(app): State<Arc<App>>, Path(id): Path<i64>, body: Option<Json<HandbackBody>>) -> Response {
    let note = body.map(|b| b.0.note).unwrap_or_default();
    match crate::engine::hand_back(&app.store, id, "api:control", &note).await {
        Ok(true) => Json(serde_json::json!({ "conversation": id, "owner": crate::domain::owner::Owner::Bot.as_str() }))
            .into_response(),
        Ok(false) => error_response(Error::Conflict(format!(
            "conversation {id} is not owned by a person (or does not exist)"
        ))),
        Err(e) => error_response(e),
    }
}

#[derive(serde::Deserialize)]
struct BackupRequest {
    out: std::path::PathBuf,
}

/// `POST /backup {"out": DIR}`: a consistent backup of both stores, taken by the server
/// (which holds the journal open) into a new directory; answers with its manifest.
async fn backup(State(app): State<Arc<App>>, Json(req): Json<BackupRequest>) -> Response {
    match crate::backup::snapshot(&app.store, &app.queue, &req.out).await {
        Ok(m) => Json(m).into_response(),
        Err(e) => error_response(e),
    }
}
