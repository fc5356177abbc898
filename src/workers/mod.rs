//! Background workers: they claim jobs from the queue and do the slow work that
//! handlers never wait for. Each stops when the shutdown token is cancelled.

pub mod ingest;
pub mod maintenance;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::Queue;

/// Waits until the queue commits something, `max` passes, or shutdown begins.
/// Returns `false` on shutdown.
pub(crate) async fn wait_for_work(
    commits: &mut tokio::sync::watch::Receiver<u64>,
    shutdown: &CancellationToken,
    max: Duration,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = commits.changed() => true,
        _ = tokio::time::sleep(max) => true,
    }
}

/// A fresh commit receiver with the current value marked seen.
pub(crate) fn commit_watch(queue: &Queue) -> tokio::sync::watch::Receiver<u64> {
    let mut rx = queue.commits();
    rx.borrow_and_update();
    rx
}
