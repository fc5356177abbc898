//! Slack notifications: an optional Slack incoming webhook gets one message per handoff
//! with a link to the conversation, and one per batch of account-health changes. Best
//! effort, after the bridge is queued (so the customer never waits on Slack), with a short timeout: a failure is logged and counted
//! (`frontdesk_notify_failed_total`), never retried into a duplicate.

use std::time::Duration;

use super::Deps;

/// Posts the handoff to Slack when `engine.slack_webhook_url` is set.
pub async fn handoff(deps: &Deps<'_>, conversation_id: i64, handoff_id: i64, trigger: &str) {
    let url = deps.config.engine.slack_webhook_url.clone();
    if url.is_empty() {
        return;
    }
    // The inbox's conversation page (`/app/c/{id}` in `http::ui::PAGES`).
    let link = format!(
        "{}/app/c/{conversation_id}",
        deps.config.server.public_url.trim_end_matches('/')
    );
    let text = format!(
        "{}: a conversation needs a person ({}). <{link}|Open conversation {conversation_id}> (handoff {handoff_id})",
        deps.config.bot.business_name,
        trigger.replace('_', " ")
    );
    post(url.expose(), &text, &deps.metrics.notify_failed_total, "handoff").await;
}

/// Posts account-health changes (one message for the batch) to Slack when
/// `engine.slack_webhook_url` is set: a number's quality or limit, a restriction, a
/// template paused or rejected. Only changes seen for the first time come here, so a
/// re-run job notifies nothing twice.
pub async fn health_changes(
    config: &crate::config::Config,
    metrics: &crate::metrics::Metrics,
    changes: &[crate::domain::health::HealthEvent],
) {
    let url = &config.engine.slack_webhook_url;
    if url.is_empty() || changes.is_empty() {
        return;
    }
    // The admin health panel (`/admin/health` in `http::ui::PAGES`).
    let link = format!("{}/admin/health", config.server.public_url.trim_end_matches('/'));
    let mut text = format!("{}: WhatsApp account health changed.", config.bot.business_name);
    for c in changes {
        text.push_str(&format!("\n• {}", c.summary()));
    }
    text.push_str(&format!("\n<{link}|Open the health panel>"));
    post(url.expose(), &text, &metrics.notify_failed_total, "health change").await;
}

/// One best-effort Slack post with a short timeout; a failure is logged (never the URL,
/// which is the secret) and counted in `failed`.
async fn post(url: &str, text: &str, failed: &std::sync::atomic::AtomicU64, what: &str) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build();
    let result = match client {
        Ok(c) => c
            .post(url)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map(|r| r.status()),
        Err(e) => Err(e),
    };
    match result {
        Ok(s) if s.is_success() => tracing::debug!(what, "notified on Slack"),
        Ok(s) => {
            crate::metrics::Metrics::add(failed, 1);
            tracing::warn!(what, status = %s, "Slack refused the notification");
        }
        Err(e) => {
            crate::metrics::Metrics::add(failed, 1);
            let e = e.without_url();
            tracing::warn!(what, error = %e, "could not notify Slack");
        }
    }
}
