//! `/webhook`: Meta's GET handshake and the signed POST. A POST is answered 200 only
//! after its dedupe keys and job are durable in the journal; nothing is parsed or
//! stored before the signature checks out.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::metrics::Metrics;
use crate::queue::Ingress;
use crate::whatsapp::dedupe_keys::dedupe_keys;
use crate::whatsapp::signature;

/// GET handshake: echo `hub.challenge` when the mode is subscribe and the token matches.
pub async fn handshake(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or("");
    let expected = app.config.whatsapp.verify_token.expose();
    let token_ok = !expected.is_empty() && bool::from(token.as_bytes().ct_eq(expected.as_bytes()));
    if mode != Some("subscribe") || !token_ok {
        tracing::warn!(mode = ?mode, "webhook handshake refused");
        return (StatusCode::FORBIDDEN, "forbidden").into_response();
    }
    match q.get("hub.challenge") {
        Some(challenge) => ([(header::CONTENT_TYPE, "text/plain")], challenge.clone()).into_response(),
        None => (StatusCode::BAD_REQUEST, "hub.challenge is missing").into_response(),
    }
}

/// POST: verify, journal durably, acknowledge.
#[tracing::instrument(name = "webhook", skip_all)]
pub async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let m = &app.metrics;
    Metrics::add(&m.webhooks_received_total, 1);
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            Metrics::add(&m.webhooks_rejected_body_total, 1);
            tracing::warn!(status = %rejection.status(), "webhook body refused: {}", rejection.body_text());
            return (rejection.status(), rejection.body_text()).into_response();
        }
    };
    let sig = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if let Err(reason) = signature::verify(app.config.whatsapp.app_secret.expose().as_bytes(), &body, sig) {
        Metrics::add(&m.webhooks_rejected_signature_total, 1);
        tracing::warn!(%reason, bytes = body.len(), "webhook refused: bad signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    let keys = dedupe_keys(&body);
    match app.queue.ingress(keys, body.to_vec()).await {
        Ok(Ingress::Enqueued(job)) => {
            Metrics::add(&m.webhooks_accepted_total, 1);
            tracing::debug!(job, "webhook journaled");
            (StatusCode::OK, "OK").into_response()
        }
        Ok(Ingress::Duplicate) => {
            Metrics::add(&m.webhooks_duplicate_total, 1);
            tracing::debug!("webhook duplicate acknowledged");
            (StatusCode::OK, "OK").into_response()
        }
        Err(e) => {
            Metrics::add(&m.webhooks_unavailable_total, 1);
            // A storage fault (a full disk) is logged by the journal once, not per request.
            if app.queue.health().fault().is_some() {
                tracing::debug!(error = %e, "webhook not journaled; answering 503 so Meta retries");
            } else {
                tracing::error!(error = %e, "webhook not journaled; answering 503 so Meta retries");
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "10")],
                "temporarily unavailable",
            )
                .into_response()
        }
    }
}
