//! The reply worker: for each inbound message the bot should answer, it marks the message
//! read (with "typing…") and hands it to the conversation engine, which answers or hands
//! off through the send ledger. It is silent when a person owns the conversation.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::error::Result;
use crate::queue::{ClaimedJob, Outcome};
use crate::store::conversations;

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
    if inbound.owner == "bot" && app.config.send.read_receipts && app.send_pause.reason().is_none() {
        if let Err(e) = app.graph.mark_read(&inbound.phone_number_id, &wamid, true).await {
            tracing::warn!(%wamid, error = %e, "reply: could not mark the message read");
        }
    }
    match crate::engine::respond(app, &wamid, &inbound).await? {
        crate::engine::Outcome::Silent => tracing::debug!(%wamid, "reply: a person owns this conversation; the bot stays silent"),
        outcome => tracing::debug!(%wamid, ?outcome, "reply: done"),
    }
    Ok(())
}
