//! Handoff notifications: an optional Slack incoming webhook gets one message per handoff
//! with a link to the conversation. Best effort, after the bridge is queued (so the
//! customer never waits on Slack), with a short timeout: a failure is logged and counted
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
    {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build();
        let result = match client {
            Ok(c) => c
                .post(url.expose())
                .json(&serde_json::json!({ "text": text }))
                .send()
                .await
                .map(|r| r.status()),
            Err(e) => Err(e),
        };
        match result {
            Ok(s) if s.is_success() => tracing::debug!(handoff_id, "handoff notified on Slack"),
            Ok(s) => {
                crate::metrics::Metrics::add(&deps.metrics.notify_failed_total, 1);
                tracing::warn!(handoff_id, status = %s, "Slack refused the handoff notification");
            }
            Err(e) => {
                crate::metrics::Metrics::add(&deps.metrics.notify_failed_total, 1);
                // The webhook URL is the secret: never log it.
                let e = e.without_url();
                tracing::warn!(handoff_id, error = %e, "could not notify Slack of a handoff");
            }
        }
    }
}
