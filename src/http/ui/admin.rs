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

fn internal(e: Error) -> Response {
    tracing::error!(error = %e, "an admin page failed");
    pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; try again.")
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

pub async fn settings(State(app): State<Arc<App>>, Extension(s): Extension<Session>, Query(q): Query<SettingsQuery>) -> Response {
    // Only a known key is echoed back.
    let saved = q.saved.as_deref().and_then(|k| crate::domain::settings::spec(k).ok()).map(|s| s.key);
    render(&app, &s, saved.map(|k| format!("Saved {k}; it applies to the next message.")).as_deref(), None, StatusCode::OK).await
}

async fn render(app: &App, s: &Session, notice: Option<&str>, problem: Option<&str>, status: StatusCode) -> Response {
    match crate::settings::current(app).await {
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
    let actor = format!("user:{}", s.user.email);
    let (key, value, unset) = (f.key.clone(), f.value.replace("\r\n", "\n"), f.action == "unset");
    let done = app
        .store
        .write(move |c| if unset { crate::settings::unset(c, &key, &actor).map(|_| ()) } else { crate::settings::set(c, &key, &value, &actor).map(|_| ()) })
        .await;
    match done {
        Ok(()) => Redirect::to(&format!("/admin/settings?saved={}", crate::domain::settings::spec(&f.key).map(|s| s.key).unwrap_or(""))).into_response(),
        Err(Error::Invalid(p)) => render(&app, &s, None, Some(&p), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}
