//! `/healthz` (the process answers), `/readyz` (both stores take writes) and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::storage_health::StorageHealth;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when both stores take a write now. When one does not, its entry says why, cause
/// first ("journal: disk full (…)"), from the store's health when it knows the cause.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let limit = Duration::from_secs(2);
    let sqlite = match tokio::time::timeout(limit, app.store.heartbeat()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => why(app.store.health(), e),
        Err(_) => "timed out".to_string(),
    };
    let queue = match tokio::time::timeout(limit, app.queue.heartbeat()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => why(app.queue.health(), e),
        Err(_) => "timed out".to_string(),
    };
    let ready = sqlite == "ok" && queue == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // A paused sender is an alert, not unreadiness: webhooks must keep being accepted.
    let sending = match app.send_pause.reason() {
        None => "ok".to_string(),
        Some(r) => format!("paused: {r}"),
    };
    (
        status,
        Json(json!({ "ready": ready, "sqlite": sqlite, "queue": queue, "sending": sending })),
    )
        .into_response()
}

fn why(health: &StorageHealth, e: crate::error::Error) -> String {
    match health.fault() {
        Some(_) => health.unavailable().to_string(),
        None => e.to_string(),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut body = app.metrics.render();
    if let Ok(stats) = app.queue.stats() {
        body.push_str("# HELP frontdesk_queue_ready Jobs waiting, by queue.\n# TYPE frontdesk_queue_ready gauge\n");
        for q in &stats.queues {
            body.push_str(&format!("frontdesk_queue_ready{{queue=\"{}\"}} {}\n", q.queue, q.ready));
        }
        body.push_str("# HELP frontdesk_queue_oldest_ready_age_seconds Age of the oldest waiting job, by queue.\n# TYPE frontdesk_queue_oldest_ready_age_seconds gauge\n");
        for q in &stats.queues {
            body.push_str(&format!(
                "frontdesk_queue_oldest_ready_age_seconds{{queue=\"{}\"}} {}\n",
                q.queue,
                q.oldest_ready_age_ms as f64 / 1000.0
            ));
        }
        body.push_str(&format!(
            "# HELP frontdesk_queue_dead Dead-lettered jobs.\n# TYPE frontdesk_queue_dead gauge\nfrontdesk_queue_dead {}\n",
            stats.dead
        ));
    }
    body.push_str(&format!(
        "# HELP frontdesk_sending_paused 1 while sending is paused (e.g. access token refused).\n# TYPE frontdesk_sending_paused gauge\nfrontdesk_sending_paused {}\n",
        u8::from(app.send_pause.reason().is_some())
    ));
    body.push_str(&crate::storage_health::render(&[
        app.queue.health(),
        app.store.health(),
    ]));
    if let Ok(health) = app.store.read(|c| crate::store::health::snapshot(c, 0)).await {
        body.push_str(&render_account_health(&health));
    }
    body.push_str(&app.reply_stages.render());
    body.push_str(&app.labeled.render());
    body.push_str(&app.models.usage.render());
    body.push_str(&format!(
        "# HELP frontdesk_llm_retries_total Model calls tried again after a failure (429, 5xx, a dropped connection; a timeout only with retry_on_timeout).\n# TYPE frontdesk_llm_retries_total counter\nfrontdesk_llm_retries_total {}\n",
        app.models.retries.load(std::sync::atomic::Ordering::Relaxed)
    ));
    body.push_str("# HELP frontdesk_model_circuit_open 1 while a provider's circuit breaker is open (calls skip it).\n# TYPE frontdesk_model_circuit_open gauge\n");
    for (provider, open) in app.models.circuits(crate::domain::now_ms()) {
        body.push_str(&format!(
            "frontdesk_model_circuit_open{{provider=\"{provider}\"}} {}\n",
            u8::from(open)
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The account-health gauges: quality rating per number, restriction per account,
/// templates that cannot be used.
fn render_account_health(h: &crate::store::health::HealthSnapshot) -> String {
    let mut out = String::from(
        "# HELP frontdesk_number_quality_rating Quality rating Meta reported per business number (0 unknown, 1 green, 2 yellow, 3 red).\n# TYPE frontdesk_number_quality_rating gauge\n",
    );
    for n in &h.numbers {
        out.push_str(&format!(
            "frontdesk_number_quality_rating{{number=\"{}\",limit_tier=\"{}\"}} {}\n",
            label(&n.display_phone_number),
            label(n.limit_tier.as_deref().unwrap_or("")),
            n.rating.gauge()
        ));
    }
    out.push_str("# HELP frontdesk_account_restricted 1 while Meta restricts or bans the WhatsApp Business Account.\n# TYPE frontdesk_account_restricted gauge\n");
    for a in &h.accounts {
        out.push_str(&format!(
            "frontdesk_account_restricted{{waba_id=\"{}\"}} {}\n",
            label(&a.waba_id),
            u8::from(a.restricted)
        ));
    }
    out.push_str(&format!(
        "# HELP frontdesk_templates_blocked Templates Meta rejected, paused or disabled (not offered, not used).\n# TYPE frontdesk_templates_blocked gauge\nfrontdesk_templates_blocked {}\n",
        h.templates.iter().filter(|t| t.is_blocked()).count()
    ));
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
