//! Background workers: they claim jobs from the queue and do the slow work that
//! handlers never wait for. Each stops when the shutdown token is cancelled.

pub mod ingest;
pub mod maintenance;
pub mod media;
pub mod reply;
pub mod send;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::{ClaimedJob, Queue};

/// Claims up to `batch` jobs of `queue_name` and hands them to `handle`, until shutdown.
/// Idle workers sleep until the queue commits something (or `idle` passes, for jobs
/// scheduled in the future).
pub(crate) async fn claim_loop<F, Fut>(queue: &Queue, queue_name: &str, batch: usize, shutdown: &CancellationToken, idle: Duration, mut handle: F)
where
    F: FnMut(Vec<ClaimedJob>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let mut commits = queue.commits();
        commits.borrow_and_update();
        let jobs = match queue.claim(queue_name, batch).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(queue = queue_name, error = %e, "cannot claim jobs; retrying in 1 s");
                if !wait_for_work(&mut commits, shutdown, Duration::from_secs(1)).await {
                    break;
                }
                continue;
            }
        };
        if jobs.is_empty() {
            if !wait_for_work(&mut commits, shutdown, idle).await {
                break;
            }
            continue;
        }
        handle(jobs).await;
    }
}

/// Waits until the queue commits something, `max` passes, or shutdown begins.
/// Returns `false` on shutdown.
async fn wait_for_work(commits: &mut tokio::sync::watch::Receiver<u64>, shutdown: &CancellationToken, max: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = commits.changed() => true,
        _ = tokio::time::sleep(max) => true,
    }
}
