//! Media workers: one job per inbound media message (payload: its wamid), queued by
//! ingest. Each attempt downloads and reads the file (`media::process`); a failure that
//! may pass (Graph or a service down) is retried with backoff until `media.max_attempts`,
//! then recorded as final like any other — the reply waiting for it then falls back.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::App;
use crate::media::Step;
use crate::metrics::Metrics;
use crate::queue::JobOutcome;

/// The queue of media jobs.
pub const MEDIA_QUEUE: &str = "media";

/// Runs one media worker until shutdown. A stop does not wait for a file being read: the
/// read is dropped (its sandbox child killed) and the job given back untouched, to run
/// again at the next start — a stop is not a crash.
pub async fn run(app: Arc<App>, worker: usize, shutdown: CancellationToken) {
    let stop = shutdown.clone();
    super::claim_loop(&app.queue, MEDIA_QUEUE, 4, &shutdown, |jobs| {
        let (app, stop) = (app.clone(), stop.clone());
        let span = tracing::info_span!("media_batch", worker, jobs = jobs.len());
        async move {
            // Transcription and description can outlast a lease: the batch's leases are
            // renewed until its outcomes are recorded.
            let held: Vec<(u64, u64)> = jobs.iter().map(|j| (j.id, j.lease_token)).collect();
            let (outcomes, unfinished) = super::with_heartbeat(&app.queue, &held, read_all(&app, &stop, jobs)).await;
            if let Err(e) = app.queue.finish_many(outcomes).await {
                tracing::error!(error = %e, "could not record media job outcomes; they will re-run (idempotent)");
            }
            if !unfinished.is_empty()
                && let Err(e) = app.queue.release(unfinished).await
            {
                tracing::error!(error = %e, "could not give back media jobs at the stop; they count as interrupted");
            }
        }
        .instrument(span)
    })
    .await;
}

/// Reads the claimed jobs' media one after another; returns their outcomes and the jobs
/// a stop left unread (to give back).
async fn read_all(
    app: &App,
    stop: &CancellationToken,
    jobs: Vec<crate::queue::ClaimedJob>,
) -> (Vec<(u64, u64, JobOutcome)>, Vec<(u64, u64)>) {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut unfinished = Vec::new();
    for job in jobs {
        if stop.is_cancelled() {
            unfinished.push((job.id, job.lease_token));
            continue;
        }
        let wamid = String::from_utf8_lossy(&job.payload).to_string();
        let last = job.attempt >= job.max_attempts.min(app.config.media.max_attempts);
        let deps = app.media_deps();
        let step = tokio::select! {
            step = crate::media::process(&deps, &wamid, last) => step,
            _ = stop.cancelled() => {
                unfinished.push((job.id, job.lease_token));
                continue;
            }
        };
        let outcome = match step {
            Ok(Step::Settled | Step::Failed(_)) => JobOutcome::Done,
            Ok(Step::Retry(problem)) => {
                Metrics::add(&app.metrics.media_retried_total, 1);
                tracing::info!(%wamid, attempt = job.attempt, %problem, "media: will retry");
                app.queue.retry_later(job.attempt, problem.to_string())
            }
            Err(e) => {
                tracing::warn!(%wamid, error = %e, "media job failed; will retry");
                super::retry_or_wait(app, job.attempt, e.to_string())
            }
        };
        outcomes.push((job.id, job.lease_token, outcome));
    }
    (outcomes, unfinished)
}
