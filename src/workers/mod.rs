//! Background workers: they claim jobs from the queue and do the slow work that
//! handlers never wait for. Each stops when the shutdown token is cancelled.

pub mod hooks;
pub mod ingest;
pub mod maintenance;
pub mod media;
pub mod reply;
pub mod send;

#[cfg(test)]
mod power_loss;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::{ClaimedJob, JobOutcome, Queue};

/// How many times the process may die while running a job of `queue` before the job is
/// set aside in dead letters as a possible poison pill. Media jobs handle customers'
/// files, the one input that could take a process down: one death is enough. Other jobs
/// get one more run, so work caught in flight by a kill or a power cut still completes.
/// A reply job gets a third run, which hands the conversation to a person instead of
/// asking a model again (`reply::last_chance`): a customer is never left in silence by a
/// reply that dead-lettered.
pub fn crash_limit(queue: &str) -> u32 {
    match queue {
        media::MEDIA_QUEUE => 1,
        reply::REPLY_QUEUE => 3,
        _ => 2,
    }
}

/// How long a job waits while a store cannot be written (a full disk) before it runs again.
const STORAGE_WAIT_MS: u64 = 1_000;

/// The outcome of an attempt that failed with `error`. While either store cannot be
/// written (a full disk, an I/O error) the failure is not the job's: the attempt is not
/// counted and the job waits, so a long outage cannot use up its attempts and
/// dead-letter it. Otherwise it is retried with backoff (or dead-lettered when out of
/// attempts).
pub(crate) fn retry_or_wait(app: &crate::app::App, attempt: u32, error: impl Into<String>) -> JobOutcome {
    if app.store.health().fault().is_some() || app.queue.health().fault().is_some() {
        JobOutcome::Defer {
            delay_ms: STORAGE_WAIT_MS,
        }
    } else {
        app.queue.retry_later(attempt, error)
    }
}

/// Claims up to `batch` jobs of `queue_name` and hands them to `handle`, until shutdown.
/// An idle worker writes nothing and polls nothing: it looks (read-only) for the earliest
/// waiting job, then sleeps until that job is due or until a commit puts a new job of its
/// queue in line, whichever comes first.
pub(crate) async fn claim_loop<F, Fut>(
    queue: &Queue,
    queue_name: &str,
    batch: usize,
    shutdown: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(Vec<ClaimedJob>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ready = queue.ready_signal(queue_name);
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        ready.borrow_and_update();
        let wait = match queue.next_due(queue_name) {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(crate::domain::now_ms() as u64)),
            Ok(None) => Duration::MAX,
            Err(e) => {
                log_queue_error(queue, queue_name, &e, "cannot read the queue; retrying in 1 s");
                Duration::from_secs(1)
            }
        };
        if !wait.is_zero() {
            if !wait_for_work(&mut ready, shutdown, wait).await {
                break;
            }
            continue;
        }
        match queue.claim(queue_name, batch).await {
            // Another worker took it first: look again.
            Ok(jobs) if jobs.is_empty() => {}
            Ok(jobs) => handle(jobs).await,
            Err(e) => {
                log_queue_error(queue, queue_name, &e, "cannot claim jobs; retrying in 1 s");
                if !wait_for_work(&mut ready, shutdown, Duration::from_secs(1)).await {
                    break;
                }
            }
        }
    }
}

/// Runs `work` while keeping the leases of `jobs` (id, lease token): renewed every third
/// of a lease, so a job that takes longer than a lease (a slow local model) is never
/// reaped and run a second time while its worker is alive. A lease found lost is logged
/// (the job is another worker's now; its outcome here will not be recorded).
pub(crate) async fn with_heartbeat<T>(queue: &Queue, jobs: &[(u64, u64)], work: impl Future<Output = T>) -> T {
    let every = Duration::from_millis((queue.lease_ms() / 3).max(10));
    let beat = async {
        let mut held: Vec<(u64, u64)> = jobs.to_vec();
        loop {
            tokio::time::sleep(every).await;
            if held.is_empty() {
                continue;
            }
            match queue.renew_many(held.clone()).await {
                Ok(kept) => {
                    let mut kept = kept.into_iter();
                    held.retain(|(id, _)| {
                        let still = kept.next().unwrap_or(false);
                        if !still {
                            tracing::warn!(job = id, "lease lost while the job was running");
                        }
                        still
                    });
                }
                Err(e) => log_queue_error(queue, "heartbeat", &e, "cannot renew leases; trying again"),
            }
        }
    };
    tokio::select! {
        out = work => out,
        never = beat => never,
    }
}

/// Logs a worker's queue error, quietly while the journal has a known storage fault (the
/// journal logs that itself, once, instead of every worker every second).
fn log_queue_error(queue: &Queue, queue_name: &str, e: &crate::error::Error, what: &str) {
    if queue.health().fault().is_some() {
        tracing::debug!(queue = queue_name, error = %e, "{what}");
    } else {
        tracing::error!(queue = queue_name, error = %e, "{what}");
    }
}

/// Waits until a job of the queue is put in line, `max` passes, or shutdown begins.
/// Returns `false` on shutdown.
async fn wait_for_work(
    ready: &mut tokio::sync::watch::Receiver<u64>,
    shutdown: &CancellationToken,
    max: Duration,
) -> bool {
    let timer = async {
        match max {
            Duration::MAX => std::future::pending().await,
            d => tokio::time::sleep(d).await,
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = ready.changed() => true,
        _ = timer => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::config::QueueConfig;
    use crate::queue::NewJob;

    /// A job scheduled 2 s ahead runs at its time, woken by a timer: between the enqueue
    /// and the run the idle worker commits nothing and looks at the queue only when woken.
    #[tokio::test]
    async fn a_job_due_later_runs_on_time_without_polling() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("q.redb"), &QueueConfig::default()).unwrap();
        let stop = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let worker = {
            let (q, stop) = (q.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tx = Some(tx);
                claim_loop(&q, "later", 1, &stop, |jobs| {
                    let now = crate::domain::now_ms() as u64;
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((now, jobs.len()));
                    }
                    std::future::ready(())
                })
                .await;
            })
        };
        // Let the worker find the queue empty and go to sleep.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = q.commit_stats();
        let (commits0, empty0, checks0) = (
            stats.commits.load(Relaxed),
            stats.empty_batches.load(Relaxed),
            stats.ready_checks.load(Relaxed),
        );
        let due = crate::domain::now_ms() as u64 + 2_000;
        q.enqueue(NewJob {
            queue: "later".into(),
            payload: Vec::new(),
            max_attempts: 1,
            run_at_ms: due,
        })
        .await
        .unwrap();
        let (ran_at, n) = rx.await.unwrap();
        let late = ran_at.saturating_sub(due);
        eprintln!("ran {late} ms after its due time");
        assert_eq!(n, 1);
        assert!(ran_at >= due, "ran {} ms early", due - ran_at);
        // ~100 ms is the goal; the bound leaves room for a loaded CI machine.
        assert!(late < 500, "ran {late} ms late");
        let checks = stats.ready_checks.load(Relaxed) - checks0;
        assert!(
            checks <= 3,
            "the idle worker looked at the queue {checks} times in 2 s (polling?)"
        );
        assert_eq!(
            stats.empty_batches.load(Relaxed) - empty0,
            0,
            "no empty claim went to the writer"
        );
        // The enqueue and the claim: nothing else was committed while waiting.
        assert_eq!(stats.commits.load(Relaxed) - commits0, 2);
        stop.cancel();
        worker.await.unwrap();
    }

    #[test]
    fn customer_files_are_set_aside_after_one_crash_other_jobs_after_two() {
        assert_eq!(crash_limit(media::MEDIA_QUEUE), 1);
        assert_eq!(crash_limit(crate::queue::WEBHOOK_QUEUE), 2);
        assert_eq!(crash_limit(reply::REPLY_QUEUE), 3);
    }
}
