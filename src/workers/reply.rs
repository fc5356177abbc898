//! The reply worker with the built-in responder: for each inbound message the bot should
//! answer, it marks the message read (with "typing…"), composes a reply and sends it
//! through the ledger. It is silent when a human owns the conversation. The conversation
//! engine replaces the composer; the rules around it stay.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::domain::outbound::OutboundBody;
use crate::error::Result;
use crate::queue::{ClaimedJob, Outcome};
use crate::store::conversations::{self, InboundForReply};
use crate::store::ledger::NewOutbound;

/// The queue of reply jobs (payload: the inbound wamid).
pub const REPLY_QUEUE: &str = "reply";

/// Runs one reply worker until shutdown.
pub async fn run(app: Arc<App>, worker: usize, shutdown: CancellationToken) {
    super::claim_loop(&app.queue, REPLY_QUEUE, 8, &shutdown, Duration::from_millis(500), |jobs| {
        let app = app.clone();
        async move {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                let outcome = match reply_to(&app, &job).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => {
                        tracing::warn!(worker, job = job.id, error = %e, "reply failed; will retry");
                        app.queue.retry_later(job.attempt, e.to_string())
                    }
                };
                outcomes.push((job.id, job.lease_token, outcome));
            }
            if let Err(e) = app.queue.finish_many(outcomes).await {
                tracing::error!(error = %e, "could not record reply outcomes; they will re-run (idempotent)");
            }
        }
    })
    .await;
}

async fn reply_to(app: &App, job: &ClaimedJob) -> Result<()> {
    let wamid = String::from_utf8_lossy(&job.payload).to_string();
    let w = wamid.clone();
    let inbound = app.store.read(move |c| conversations::inbound_for_reply(c, &w)).await?;
    let Some(inbound) = inbound else {
        tracing::warn!(%wamid, "reply: message not found; nothing to answer");
        return Ok(());
    };
    if inbound.owner != "bot" {
        tracing::debug!(%wamid, "reply: a human owns this conversation; the bot stays silent");
        return Ok(());
    }
    if app.config.send.read_receipts && app.send_pause.reason().is_none() {
        if let Err(e) = app.graph.mark_read(&inbound.phone_number_id, &wamid, true).await {
            tracing::warn!(%wamid, error = %e, "reply: could not mark the message read");
        }
    }
    let body = OutboundBody::Text { body: compose(&app.config.bot.business_name, &inbound), preview_url: false };
    let req = NewOutbound {
        conversation_id: inbound.conversation_id,
        author: "bot".into(),
        body,
        reply_to: None,
        idempotency_key: format!("reply:{wamid}"),
    };
    match crate::outbound::enqueue(app, req).await {
        Ok(_) => Ok(()),
        // Outside the window or otherwise unsendable: nothing a retry would fix.
        Err(crate::Error::Invalid(e)) => {
            tracing::warn!(%wamid, reason = %e, "reply: not sent");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The built-in responder's answer: an honest acknowledgement.
fn compose(business: &str, inbound: &InboundForReply) -> String {
    let name = inbound.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
    let snippet: String = inbound.text.chars().take(80).collect();
    format!(
        "Hi{name}! Thanks for your message to {business}. I'm an automated assistant: I've noted \"{snippet}\" \
         and a teammate will follow up here."
    )
}
