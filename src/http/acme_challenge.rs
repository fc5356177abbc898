//! The plain-HTTP listener HTTP-01 challenges need (reachable on port 80): answers
//! `/.well-known/acme-challenge/{token}` for the order in progress and redirects every
//! other request to the HTTPS address (`server.public_url`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use tokio_util::sync::CancellationToken;

use crate::tls::Certificates;

struct Challenge {
    certs: Arc<Certificates>,
    public_url: String,
}

/// Serves challenge answers on `listener` until `stop` (within the server's connection
/// slots and header timeout).
pub async fn serve(
    listener: crate::http::serve::Plain,
    header_timeout: Duration,
    certs: Arc<Certificates>,
    public_url: String,
    stop: CancellationToken,
) {
    let state = Arc::new(Challenge {
        certs,
        public_url: public_url.trim_end_matches('/').to_string(),
    });
    let router = Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .fallback(redirect)
        .with_state(state);
    crate::http::serve::serve(listener, router, header_timeout, async move { stop.cancelled().await }).await;
}

async fn answer(State(c): State<Arc<Challenge>>, Path(token): Path<String>) -> Response {
    match c.certs.http_answer(&token) {
        Some(a) => ([(header::CONTENT_TYPE, "application/octet-stream")], a).into_response(),
        None => (StatusCode::NOT_FOUND, "no such ACME challenge\n").into_response(),
    }
}

async fn redirect(State(c): State<Arc<Challenge>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{}{path}", c.public_url))],
    )
        .into_response()
}
