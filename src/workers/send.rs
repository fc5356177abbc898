//! The send worker: turns ledger rows into Graph API sends. Per batch: decide what may go
//! now (window, order, rate limits, pause), mark those `sending` in one durable write,
//! send them concurrently, record every outcome in one write (a retry waits at least the
//! answer's `Retry-After`, capped). A row Meta may already
//! have (crash or timeout mid-request) is never resent blindly: the worker waits
//! `send.reconcile_grace_ms` for a status webhook to reconcile it first.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::domain::ledger::{LedgerState, callback_data};
use crate::domain::outbound::{MediaSource, OutboundBody};
use crate::domain::window;
use crate::metrics::Metrics;
use crate::outbound::SEND_QUEUE;
use crate::queue::{ClaimedJob, JobOutcome};
use crate::store::ledger::{self, OutboundRow, SendOutcome};
use crate::whatsapp::error_codes::{ErrorAction, action_for, describe};
use crate::whatsapp::graph::GraphError;

/// Jobs one send worker takes at a time.
const BATCH: usize = 16;
/// How long a message waits behind an earlier one of the same conversation.
const ORDER_WAIT_MS: u64 = 100;
/// Rate-limit waits shorter than this are slept; longer ones give the job back.
const SLEEP_LIMIT_MS: u64 = 250;
/// The longest a `Retry-After` header may hold a send back.
const RETRY_AFTER_CAP_MS: u64 = 5 * 60 * 1_000;

/// Runs one send worker until shutdown.
pub async fn run(app: Arc<App>, worker: usize, shutdown: CancellationToken) {
    super::claim_loop(&app.queue, SEND_QUEUE, BATCH, &shutdown, |jobs| {
        let span = tracing::info_span!("send_batch", worker, jobs = jobs.len());
        process_batch(app.clone(), jobs).instrument(span)
    })
    .await;
}

/// What to do with one claimed job after looking at its row.
// A plan lives for one job; boxing the row would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Plan {
    Finish(JobOutcome),
    Send(OutboundRow),
    Fail {
        code: Option<i64>,
        reason: String,
        needs_template: bool,
    },
}

async fn process_batch(app: Arc<App>, jobs: Vec<ClaimedJob>) {
    let ids: Vec<i64> = jobs
        .iter()
        .map(|j| String::from_utf8_lossy(&j.payload).parse().unwrap_or(-1))
        .collect();
    let loaded = {
        let ids = ids.clone();
        app.store
            .read(move |c| {
                Ok(ids
                    .iter()
                    .map(|&id| {
                        // A missing row is a job with nothing to send; any other read
                        // error is kept for this job alone, which retries (and is
                        // dead-lettered, visibly, if it never reads).
                        let row = match ledger::get(c, id) {
                            Ok(r) => Ok(Some(r)),
                            Err(crate::Error::NotFound(_)) => Ok(None),
                            Err(e) => Err(e),
                        };
                        let earlier = match &row {
                            Ok(Some(r)) => ledger::earlier_pending(c, r.conversation_id, id).unwrap_or(true),
                            _ => false,
                        };
                        (row, earlier)
                    })
                    .collect::<Vec<_>>())
            })
            .await
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return retry_batch(&app, &jobs, "read", e).await,
    };
    let now = crate::domain::now_ms();
    let mut plans = Vec::with_capacity(jobs.len());
    for (job, (row, earlier)) in jobs.iter().zip(loaded) {
        plans.push(plan(&app, job, row, earlier, now).await);
    }

    // Mark everything about to go out as `sending`, durably, before any request.
    let to_send: Vec<i64> = plans
        .iter()
        .filter_map(|p| if let Plan::Send(r) = p { Some(r.id) } else { None })
        .collect();
    let fails: Vec<(i64, Option<i64>, String, bool)> = plans
        .iter()
        .zip(&ids)
        .filter_map(|(p, id)| {
            if let Plan::Fail {
                code,
                reason,
                needs_template,
            } = p
            {
                Some((*id, *code, reason.clone(), *needs_template))
            } else {
                None
            }
        })
        .collect();
    let bridge_template = crate::outbound::bridge_template(&app.config);
    let template = bridge_template.clone();
    let marked = app
        .store
        .write(move |tx| {
            let mut marked = Vec::new();
            for id in to_send {
                if ledger::mark_sending(tx, id, now)? {
                    marked.push(id);
                }
            }
            let mut closed = Vec::new();
            for (id, code, reason, nt) in fails {
                ledger::mark_failed(tx, id, code, &reason, nt, now)?;
                if nt {
                    closed.push(id);
                }
            }
            let fallbacks = ledger::bridge_fallbacks(tx, &closed, template.as_ref(), now)?;
            Ok((marked, fallbacks))
        })
        .await;
    let marked = match marked {
        Ok((m, fallbacks)) => {
            queue_fallbacks(&app, fallbacks).await;
            m
        }
        Err(e) => return retry_batch(&app, &jobs, "write", e).await,
    };

    // Send concurrently.
    let mut inflight = JoinSet::new();
    for (i, p) in plans.iter().enumerate() {
        if let Plan::Send(row) = p {
            if !marked.contains(&row.id) {
                continue;
            }
            let app = app.clone();
            let row = row.clone();
            inflight.spawn(async move {
                let body = match with_uploaded_media(&app, &row).await {
                    Ok(b) => b,
                    Err(e) => return (i, Err(e)),
                };
                let body = body.to_graph_json(&row.to, row.reply_to.as_deref(), Some(&callback_data(row.id)));
                (i, app.graph.send(&row.phone_number_id, &body).await)
            });
        }
    }
    let mut results: Vec<Option<Result<String, GraphError>>> = vec![None; plans.len()];
    while let Some(done) = inflight.join_next().await {
        if let Ok((i, r)) = done {
            results[i] = Some(r);
        }
    }

    // Record outcomes in one write (each in its own savepoint), then tell the queue.
    let mut updates = Vec::new();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for ((job, p), result) in jobs.iter().zip(plans).zip(results) {
        let outcome = match (p, result) {
            (Plan::Finish(o), _) => o,
            (Plan::Fail { .. }, _) => {
                Metrics::add(&app.metrics.sends_failed_total, 1);
                app.labeled.send_failures.add(&[("code", "refused")], 1.0);
                JobOutcome::Done
            }
            (Plan::Send(_), None) => JobOutcome::Defer {
                delay_ms: ORDER_WAIT_MS,
            },
            (Plan::Send(row), Some(Ok(wamid))) => {
                Metrics::add(&app.metrics.sends_accepted_total, 1);
                updates.push(SendOutcome::Accepted(row.id, wamid));
                JobOutcome::Done
            }
            (Plan::Send(row), Some(Err(e))) => on_error(&app, job, &row, e, &mut updates),
        };
        outcomes.push((job.id, job.lease_token, outcome));
    }
    let now = crate::domain::now_ms();
    let touched: Vec<i64> = updates.iter().map(SendOutcome::ledger_id).collect();
    let closed: Vec<i64> = updates
        .iter()
        .filter_map(|u| match u {
            SendOutcome::Failed(id, _, _, true) => Some(*id),
            _ => None,
        })
        .collect();
    match app
        .store
        .write(move |tx| {
            let unrecorded = ledger::record_outcomes(tx, updates, now)?;
            let fallbacks = ledger::bridge_fallbacks(tx, &closed, bridge_template.as_ref(), now)?;
            Ok((unrecorded, fallbacks))
        })
        .await
    {
        Ok((unrecorded, fallbacks)) => {
            queue_fallbacks(&app, fallbacks).await;
            for (id, e) in &unrecorded {
                tracing::error!(ledger = id, error = %e, "send: could not record the outcome; the row is marked failed with the reason");
                failed(&app, None);
            }
        }
        Err(e) => {
            // Not even the fallback could be written: the jobs come back (the rows stay
            // `sending` and reconcile by status webhook or after the grace period).
            tracing::error!(error = %e, "send: could not record outcomes; their jobs retry");
            for ((job, (_, _, outcome)), row) in jobs.iter().zip(outcomes.iter_mut()).zip(&ids) {
                if touched.contains(row) && matches!(outcome, JobOutcome::Done) {
                    *outcome = super::retry_or_wait(&app, job.attempt, format!("recording the send outcome: {e}"));
                }
            }
        }
    }
    if let Err(e) = app.queue.finish_many(outcomes).await {
        tracing::error!(error = %e, "send: could not record job outcomes; they will re-run (no resend: the ledger decides)");
    }
}

/// Queues the bridge templates that replace bridge texts refused for a closed window (a
/// job that cannot be queued now is queued at the next start, from the ledger).
async fn queue_fallbacks(app: &App, fallbacks: Vec<(i64, i64)>) {
    for (id, created_at) in fallbacks {
        tracing::info!(
            ledger = id,
            "the 24-hour window closed before the bridge went out: the bridge template goes instead"
        );
        if let Err(e) = crate::outbound::queue_send(&app.queue, id, created_at).await {
            tracing::error!(ledger = id, error = %e, "send: could not queue the bridge template; it is queued at the next start");
        }
    }
}

/// The ledger could not be read or written: every job of the batch retries with backoff.
async fn retry_batch(app: &App, jobs: &[ClaimedJob], doing: &str, e: crate::Error) {
    tracing::error!(error = %e, "send: cannot {doing} the ledger; retrying the batch");
    let outcomes = jobs
        .iter()
        .map(|j| (j.id, j.lease_token, super::retry_or_wait(app, j.attempt, e.to_string())))
        .collect();
    let _ = app.queue.finish_many(outcomes).await;
}

async fn plan(
    app: &App,
    job: &ClaimedJob,
    row: crate::Result<Option<OutboundRow>>,
    earlier_pending: bool,
    now: i64,
) -> Plan {
    let row = match row {
        Ok(row) => row,
        Err(e) => {
            tracing::error!(job = job.id, error = %e, "send: cannot read the ledger row; retrying the job");
            return Plan::Finish(
                app.queue
                    .retry_later(job.attempt, format!("cannot read the ledger row: {e}")),
            );
        }
    };
    let Some(row) = row else {
        tracing::warn!(job = job.id, "send: no ledger row for this job");
        return Plan::Finish(JobOutcome::Done);
    };
    if row.state.is_final() {
        return Plan::Finish(JobOutcome::Done);
    }
    if app.send_pause.reason().is_some() {
        return Plan::Finish(JobOutcome::Defer {
            delay_ms: app.config.send.token_probe_interval_ms.clamp(100, 5_000),
        });
    }
    let grace = app.config.send.reconcile_grace_ms as i64;
    if row.state == LedgerState::Sending {
        // A previous attempt's outcome is unknown: Meta may have it. Wait for its status.
        let waited = now - row.sending_at.unwrap_or(now);
        if waited < grace {
            return Plan::Finish(JobOutcome::Defer {
                delay_ms: (grace - waited) as u64,
            });
        }
        tracing::warn!(
            ledger = row.id,
            "send: no status arrived within the grace period; sending again"
        );
    }
    if row.attempts >= i64::from(job.max_attempts) {
        let last = row
            .error_reason
            .clone()
            .unwrap_or_else(|| "no answer from the Graph API".into());
        return Plan::Fail {
            code: None,
            reason: format!("gave up after {} attempts: {last}", row.attempts),
            needs_template: false,
        };
    }
    if !row.body.allowed_outside_window() && !window::is_open(row.last_inbound_at, now) {
        return Plan::Fail {
            code: Some(131047),
            reason: ledger::WINDOW_CLOSED_REASON.into(),
            needs_template: true,
        };
    }
    if earlier_pending {
        return Plan::Finish(JobOutcome::Defer {
            delay_ms: ORDER_WAIT_MS,
        });
    }
    loop {
        let wait = app.limiter.lock().expect("limiter lock").try_acquire(
            &row.phone_number_id,
            row.to.id(),
            crate::domain::now_ms(),
        );
        match wait {
            Ok(()) => return Plan::Send(row),
            Err(ms) if ms <= SLEEP_LIMIT_MS => tokio::time::sleep(Duration::from_millis(ms)).await,
            Err(ms) => return Plan::Finish(JobOutcome::Defer { delay_ms: ms }),
        }
    }
}

/// Counts a send that failed for good, with its Graph error code.
fn failed(app: &App, code: Option<i64>) {
    Metrics::add(&app.metrics.sends_failed_total, 1);
    app.labeled.send_failures.add(
        &[("code", &code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()))],
        1.0,
    );
}

fn on_error(
    app: &App,
    job: &ClaimedJob,
    row: &OutboundRow,
    e: GraphError,
    updates: &mut Vec<SendOutcome>,
) -> JobOutcome {
    let retry = |updates: &mut Vec<SendOutcome>, code: Option<i64>, reason: String, retry_after_ms: Option<u64>| {
        Metrics::add(&app.metrics.sends_retried_total, 1);
        if job.attempt >= job.max_attempts {
            updates.push(SendOutcome::Failed(
                row.id,
                code,
                format!("gave up after {} attempts: {reason}", job.attempt),
                false,
            ));
            failed(app, code);
            JobOutcome::Done
        } else {
            updates.push(SendOutcome::Retrying(row.id, code, reason.clone()));
            honour_retry_after(app.queue.retry_later(job.attempt, reason), retry_after_ms)
        }
    };
    match e {
        GraphError::Transport {
            detail,
            maybe_delivered: true,
        } => {
            // Meta may have it: leave the row `sending` and let a status reconcile it.
            tracing::warn!(ledger = row.id, %detail, "send: outcome unknown; waiting for a status webhook before any resend");
            JobOutcome::Defer {
                delay_ms: app.config.send.reconcile_grace_ms,
            }
        }
        GraphError::Transport {
            detail,
            maybe_delivered: false,
        } => retry(updates, None, format!("Graph API unreachable: {detail}"), None),
        GraphError::Refused(why) => {
            failed(app, None);
            updates.push(SendOutcome::Failed(row.id, None, format!("not sent: {why}"), false));
            JobOutcome::Done
        }
        GraphError::Api {
            http_status,
            code,
            title,
            retry_after_ms,
            ..
        } => {
            let reason = describe(code, &title);
            match action_for(code, http_status) {
                ErrorAction::Retry => retry(updates, code, reason, retry_after_ms),
                ErrorAction::NeedsTemplate => {
                    failed(app, code);
                    updates.push(SendOutcome::Failed(row.id, code, reason, true));
                    JobOutcome::Done
                }
                ErrorAction::Fail => {
                    failed(app, code);
                    updates.push(SendOutcome::Failed(row.id, code, reason, false));
                    JobOutcome::Done
                }
                ErrorAction::PauseToken => {
                    if app
                        .send_pause
                        .pause(format!("{reason} (business number {})", row.phone_number_id))
                    {
                        tracing::error!(alert = "sending_paused", %reason, "SENDING PAUSED: the Graph API refused the access token; fix whatsapp.access_token — nothing is dropped, messages wait");
                    }
                    *app.probe_number.lock().expect("probe lock") = Some(row.phone_number_id.clone());
                    updates.push(SendOutcome::Retrying(row.id, code, reason));
                    JobOutcome::Defer {
                        delay_ms: app.config.send.token_probe_interval_ms.clamp(100, 60_000),
                    }
                }
            }
        }
    }
}

/// A retry waits at least as long as Meta's `Retry-After` asked (capped at
/// `RETRY_AFTER_CAP_MS`, so a wild header cannot park a reply for hours), and never less
/// than the queue's own backoff.
fn honour_retry_after(outcome: JobOutcome, retry_after_ms: Option<u64>) -> JobOutcome {
    match (outcome, retry_after_ms) {
        (JobOutcome::Failed { error, retry_in_ms }, Some(asked)) => JobOutcome::Failed {
            error,
            retry_in_ms: retry_in_ms.map(|backoff| backoff.max(asked.min(RETRY_AFTER_CAP_MS))),
        },
        (outcome, _) => outcome,
    }
}

/// While sending is paused, re-reads the token (from the config file, if there is one)
/// and checks it against the Graph API; resumes when it works.
pub async fn probe_while_paused(app: Arc<App>, shutdown: CancellationToken) {
    let every = Duration::from_millis(app.config.send.token_probe_interval_ms.max(50));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if app.send_pause.reason().is_none() {
            continue;
        }
        let mut have_token = !app.config.whatsapp.access_token.is_empty();
        if let Some(path) = &app.config_path {
            match crate::config::Config::load(Some(path)) {
                Ok(c) => {
                    have_token = !c.whatsapp.access_token.is_empty();
                    app.graph.set_token(c.whatsapp.access_token);
                }
                Err(e) => tracing::warn!(error = %e, "send: cannot re-read the config for a new token"),
            }
        }
        if !have_token {
            continue;
        }
        let number = app.probe_number.lock().expect("probe lock").clone();
        let Some(number) = number else {
            // Paused only because no token was set: a token is there now; sends will tell.
            if app.send_pause.resume() {
                tracing::warn!("sending resumed: an access token is configured now");
            }
            continue;
        };
        match app.graph.check_token(&number).await {
            Ok(()) => {
                if app.send_pause.resume() {
                    tracing::warn!("sending resumed: the access token works again");
                }
            }
            Err(e) => {
                tracing::error!(alert = "sending_paused", error = %e, "sending still paused: the access token is still refused")
            }
        }
    }
}

/// The body to send: an attachment kept in our media store is uploaded to the Graph API
/// first and sent by its new media id (an upload cannot have delivered anything, so a
/// failure here is retried or failed like a send that never left).
async fn with_uploaded_media(app: &App, row: &OutboundRow) -> Result<OutboundBody, GraphError> {
    let OutboundBody::Media {
        media_type,
        source: MediaSource::Stored {
            sha256,
            mime_type,
            file_name,
        },
        caption,
        filename,
    } = &row.body
    else {
        return Ok(row.body.clone());
    };
    let (files, sha) = (app.media.files.clone(), sha256.clone());
    let bytes = tokio::task::spawn_blocking(move || files.read(&sha))
        .await
        .map_err(|e| GraphError::Transport {
            detail: format!("reading the attachment: {e}"),
            maybe_delivered: false,
        })?
        .map_err(|e| GraphError::Api {
            retry_after_ms: None,
            http_status: 400,
            code: None,
            subcode: None,
            title: format!("the attached file is gone: {e}"),
        })?;
    let id = app
        .graph
        .upload_media(&row.phone_number_id, bytes, mime_type, file_name)
        .await?;
    Ok(OutboundBody::Media {
        media_type: media_type.clone(),
        source: MediaSource::Id(id),
        caption: caption.clone(),
        filename: filename.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(retry_in_ms: Option<u64>) -> JobOutcome {
        JobOutcome::Failed {
            error: "429".into(),
            retry_in_ms,
        }
    }

    #[test]
    fn retry_after_sets_the_least_wait_within_the_cap() {
        let wait = |o: JobOutcome| match o {
            JobOutcome::Failed { retry_in_ms, .. } => retry_in_ms,
            _ => panic!("not a failure"),
        };
        assert_eq!(wait(honour_retry_after(failed(Some(20)), Some(1_000))), Some(1_000));
        assert_eq!(wait(honour_retry_after(failed(Some(5_000)), Some(1_000))), Some(5_000));
        assert_eq!(wait(honour_retry_after(failed(Some(20)), None)), Some(20));
        assert_eq!(
            wait(honour_retry_after(failed(Some(20)), Some(86_400_000))),
            Some(RETRY_AFTER_CAP_MS)
        );
        assert_eq!(
            wait(honour_retry_after(failed(None), Some(1_000))),
            None,
            "a final failure stays final"
        );
    }
}
