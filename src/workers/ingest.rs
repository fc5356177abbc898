//! The ingest worker: claims webhook jobs, parses them into domain events and writes
//! them to SQLite — a batch of jobs per transaction, a savepoint per job so one bad
//! job cannot spoil the others — then marks the jobs done in the journal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::App;
use crate::metrics::Metrics;
use crate::queue::{ClaimedJob, JobOutcome, WEBHOOK_QUEUE};
use crate::store::{IngestReport, apply_events};
use crate::whatsapp::parse::parse_webhook;

/// Runs one ingest worker until shutdown.
pub async fn run(app: Arc<App>, worker: usize, shutdown: CancellationToken) {
    let batch = app.config.workers.ingest_batch;
    super::claim_loop(&app.queue, WEBHOOK_QUEUE, batch, &shutdown, |jobs| {
        let span = tracing::info_span!("ingest_batch", worker, jobs = jobs.len());
        process_batch(&app, jobs).instrument(span)
    })
    .await;
    tracing::debug!(worker, "ingest worker stopped");
}

/// Parses and stores a batch of claimed jobs, then records their outcomes.
pub async fn process_batch(app: &Arc<App>, jobs: Vec<ClaimedJob>) {
    let served = app.config.whatsapp.phone_number_ids.clone();
    let bridge_template = crate::outbound::bridge_template(&app.config);
    // The live soft-launch share, read fresh per batch; on a failed read the batch waits.
    let launch = match crate::settings::current(&app.store, &app.config).await {
        Ok(e) => crate::domain::soft_launch::SoftLaunch::from_settings(&e),
        Err(e) => {
            tracing::warn!(error = %e, "ingest: could not read the live settings; jobs will retry");
            let outcomes = jobs
                .iter()
                .map(|j| (j.id, j.lease_token, super::retry_or_wait(app, j.attempt, e.to_string())))
                .collect();
            return finish(app, outcomes).await;
        }
    };
    let parsed: Vec<(u64, u64, u32, Vec<_>)> = jobs
        .iter()
        .map(|j| (j.id, j.lease_token, j.attempt, parse_webhook(&j.payload)))
        .collect();
    let result = app
        .store
        .write(move |tx| {
            let mut results = Vec::with_capacity(parsed.len());
            for (id, token, attempt, events) in &parsed {
                let mut sp = tx.savepoint()?;
                let r = apply_events(&sp, *id, events, &served, &launch, bridge_template.as_ref());
                if r.is_ok() {
                    sp.commit()?;
                } else {
                    sp.rollback()?;
                }
                results.push((*id, *token, *attempt, r));
            }
            Ok(results)
        })
        .await;
    let mut outcomes = Vec::with_capacity(jobs.len());
    match result {
        Ok(results) => {
            for (id, token, attempt, r) in results {
                match r {
                    Ok(report) => {
                        record(&app.metrics, &report, id);
                        record_health(app, &report).await;
                        // Queued before the job is marked done, keyed by wamid: a re-run
                        // after a crash queues nothing twice.
                        match queue_replies(app, &report).await {
                            Ok(()) => outcomes.push((id, token, JobOutcome::Done)),
                            Err(e) => outcomes.push((id, token, super::retry_or_wait(app, attempt, e.to_string()))),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = id, attempt, error = %e, "ingest: job failed; will retry");
                        Metrics::add(&app.metrics.jobs_failed_total, 1);
                        outcomes.push((id, token, super::retry_or_wait(app, attempt, e.to_string())));
                    }
                }
            }
        }
        Err(e) => {
            // A full disk is logged by the store, once; the jobs wait without spending attempts.
            if app.store.health().fault().is_some() {
                tracing::debug!(error = %e, jobs = jobs.len(), "ingest: SQLite cannot be written; jobs wait");
            } else {
                tracing::error!(error = %e, jobs = jobs.len(), "ingest: SQLite write failed; jobs will retry");
            }
            for j in &jobs {
                Metrics::add(&app.metrics.jobs_failed_total, 1);
                outcomes.push((j.id, j.lease_token, super::retry_or_wait(app, j.attempt, e.to_string())));
            }
        }
    }
    finish(app, outcomes).await;
}

/// Records the jobs' outcomes in the journal.
async fn finish(app: &App, outcomes: Vec<(u64, u64, JobOutcome)>) {
    let done = outcomes
        .iter()
        .filter(|(_, _, o)| matches!(o, JobOutcome::Done))
        .count();
    match app.queue.finish_many(outcomes).await {
        Ok(_) => Metrics::add(&app.metrics.jobs_done_total, done as u64),
        Err(e) => {
            tracing::error!(error = %e, "ingest: could not record job outcomes; the jobs will be re-run (idempotent)")
        }
    }
}

async fn queue_replies(app: &App, report: &IngestReport) -> crate::error::Result<()> {
    for &(id, created_at) in &report.sends {
        crate::outbound::queue_send(&app.queue, id, created_at).await?;
    }
    // Media is read whether or not the bot answers: agents see transcripts too.
    for wamid in &report.media {
        let mut job = app.queue.job(super::media::MEDIA_QUEUE, wamid.as_bytes().to_vec());
        job.max_attempts = app.config.media.max_attempts;
        app.queue.enqueue_unique(format!("media:{wamid}"), job).await?;
    }
    if !app.config.bot.enabled {
        return Ok(());
    }
    if report.answerable.is_empty() {
        return Ok(());
    }
    // Debounce: answer after a pause, so a burst of messages gets one reply.
    let settings = crate::settings::current(&app.store, &app.config).await?;
    let delay = settings.number("debounce_ms").max(0.0) as u64;
    for wamid in &report.answerable {
        let mut job = app.queue.job(super::reply::REPLY_QUEUE, wamid.as_bytes().to_vec());
        job.run_at_ms += delay;
        app.queue.enqueue_unique(format!("reply:{wamid}"), job).await?;
    }
    Ok(())
}

/// Counts and announces (Slack) the health changes a job recorded for the first time.
async fn record_health(app: &App, report: &IngestReport) {
    for change in &report.health_changes {
        app.labeled.health_changes.add(&[("kind", change.kind())], 1.0);
        tracing::warn!(change = %change.summary(), "account health changed");
    }
    crate::engine::notify::health_changes(&app.config, &app.metrics, &report.health_changes).await;
}

fn record(metrics: &Metrics, report: &IngestReport, job: u64) {
    Metrics::add(&metrics.ingest_messages_total, report.messages_new as u64);
    Metrics::add(&metrics.ingest_statuses_total, report.statuses_applied as u64);
    if report.raw_events > 0 {
        tracing::warn!(
            job,
            raw_events = report.raw_events,
            "ingest: kept webhook parts raw (not understood or not handled)"
        );
        Metrics::add(&metrics.ingest_raw_events_total, report.raw_events as u64);
    }
}
