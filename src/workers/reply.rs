//! The reply worker: for each inbound message the bot should answer, it marks the message
//! read (with "typing…") and hands it to the conversation engine, which answers or hands
//! off through the send ledger. It is silent when a person owns the conversation.

use std::sync::Arc;
use tracing::Instrument;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::error::Result;
use crate::queue::{ClaimedJob, JobOutcome};
use crate::store::conversations;

/// The queue of reply jobs (payload: the inbound wamid).
pub const REPLY_QUEUE: &str = "reply";

/// Runs one reply worker until shutdown.
pub async fn run(app: Arc<App>, worker: usize, shutdown: CancellationToken) {
    super::claim_loop(&app.queue, REPLY_QUEUE, 8, &shutdown, |jobs| {
        let app = app.clone();
        async move {
            let held: Vec<(u64, u64)> = jobs.iter().map(|j| (j.id, j.lease_token)).collect();
            // A reply with a slow model outlasts a lease: the batch's leases are renewed
            // until its outcomes are recorded.
            let outcomes = super::with_heartbeat(&app.queue, &held, reply_to_all(&app, worker, jobs)).await;
            if let Err(e) = app.queue.finish_many(outcomes).await {
                tracing::error!(error = %e, "could not record reply outcomes; they will re-run (idempotent)");
            }
        }
    })
    .await;
}

/// Answers the claimed jobs one after another; returns their outcomes.
async fn reply_to_all(app: &App, worker: usize, jobs: Vec<ClaimedJob>) -> Vec<(u64, u64, JobOutcome)> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let span = tracing::info_span!(
            "reply",
            worker,
            job = job.id,
            conversation = tracing::field::Empty,
            route = tracing::field::Empty,
            model = tracing::field::Empty,
            outcome = tracing::field::Empty,
            cost_usd = tracing::field::Empty,
        );
        let outcome = match reply_to(app, &job).instrument(span).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(worker, job = job.id, error = %e, "reply failed; will retry");
                super::retry_or_wait(app, job.attempt, e.to_string())
            }
        };
        outcomes.push((job.id, job.lease_token, outcome));
    }
    outcomes
}

async fn reply_to(app: &App, job: &ClaimedJob) -> Result<JobOutcome> {
    let wamid = String::from_utf8_lossy(&job.payload).to_string();
    let w = wamid.clone();
    // One read transaction: the texts and the media states are of the same moment (a media
    // job updates its row and the message's text in one write), so a text read before a
    // transcript landed is never paired with a "done" seen after it.
    let found = app
        .store
        .read(move |c| {
            let tx = c.unchecked_transaction()?;
            Ok(conversations::inbound_for_reply(&tx, &w)?.zip(conversations::burst(&tx, &w)?))
        })
        .await?;
    let Some((inbound, burst)) = found else {
        tracing::warn!(%wamid, "reply: message not found; nothing to answer");
        return Ok(JobOutcome::Done);
    };
    // Bursts: a newer message's job answers this one too, unless the burst already
    // waited as long as it may.
    let waited = crate::domain::now_ms() - burst.oldest_at;
    if burst.newer_exists && waited < app.config.engine.debounce_max_ms as i64 {
        tracing::debug!(%wamid, "reply: a newer message will be answered with this one");
        return Ok(JobOutcome::Done);
    }
    // The media of the burst is read first (bounded), so the answer can use it.
    if burst.parts.iter().any(|p| p.media_status.as_deref() == Some("pending"))
        && waited < app.config.media.reply_wait_ms as i64
    {
        return Ok(JobOutcome::Defer { delay_ms: 250 });
    }
    // One reply at a time per conversation.
    let Some(_turn) = ConversationTurn::take(app, inbound.conversation_id) else {
        return Ok(JobOutcome::Defer { delay_ms: 200 });
    };
    if inbound.owner.bot_answers()
        && app.config.send.read_receipts
        && app.send_pause.reason().is_none()
        && let Err(e) = app.graph.mark_read(&inbound.phone_number_id, &wamid, true).await
    {
        tracing::warn!(%wamid, error = %e, "reply: could not mark the message read");
    }
    let interrupted = last_chance(job);
    if interrupted {
        tracing::warn!(%wamid, crashes = job.crashes, "reply: interrupted twice while answering; a person takes over");
    }
    match crate::engine::respond_unless_interrupted(&app.engine(), &wamid, &inbound, Some(&burst), interrupted).await? {
        crate::engine::ReplyOutcome::Silent => {
            tracing::debug!(%wamid, "reply: the bot stays silent (a person owns it, or the contact opted out)")
        }
        outcome => tracing::debug!(%wamid, ?outcome, "reply: done"),
    }
    Ok(JobOutcome::Done)
}

/// Whether this is the reply job's last run before the crash limit sets it aside: the
/// process stopped while holding it on every run but this one.
fn last_chance(job: &ClaimedJob) -> bool {
    job.crashes > 0 && job.crashes + 1 >= super::crash_limit(REPLY_QUEUE)
}

/// Holds a conversation for one reply; released on drop.
struct ConversationTurn<'a> {
    app: &'a App,
    conversation_id: i64,
}

impl<'a> ConversationTurn<'a> {
    fn take(app: &'a App, conversation_id: i64) -> Option<ConversationTurn<'a>> {
        let mut busy = app.replying.lock().unwrap_or_else(|e| e.into_inner());
        // Lazily: a turn built and dropped here would release someone else's hold.
        busy.insert(conversation_id)
            .then(|| ConversationTurn { app, conversation_id })
    }
}

impl Drop for ConversationTurn<'_> {
    fn drop(&mut self) {
        self.app
            .replying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.conversation_id);
    }
}
