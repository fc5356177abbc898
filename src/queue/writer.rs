//! The single writer: one OS thread that owns every redb write. Operations queue on a
//! channel; the thread takes everything waiting (up to a batch limit), applies it in
//! one transaction and commits once, durably. Many webhooks, one fsync: group commit.
//! A batch that changed nothing is abandoned instead of committed: an idle worker's empty
//! claim costs no fsync and wakes nobody.

use std::collections::BTreeSet;
use std::sync::Arc;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// What a batch's operations did, beyond their return values: whether anything was
/// written (else the batch is not committed) and which queues got a job ready to run
/// (only their workers are woken).
#[derive(Debug, Default)]
pub struct Effects {
    pub(super) wrote: bool,
    pub(super) ready: BTreeSet<String>,
}

impl Effects {
    /// Records a change that must be committed.
    pub(super) fn wrote(&mut self) {
        self.wrote = true;
    }

    /// Records a job put in line on `queue` (a change, and a reason to wake its workers).
    pub(super) fn made_ready(&mut self, queue: &str) {
        self.wrote = true;
        if !self.ready.contains(queue) {
            self.ready.insert(queue.to_string());
        }
    }

    /// The queues that got work in this batch.
    pub fn ready_queues(&self) -> impl Iterator<Item = &str> {
        self.ready.iter().map(String::as_str)
    }
}

/// One queued operation: applied inside the batch transaction, told the outcome after.
pub(super) trait Op: Send {
    /// Runs inside the shared transaction. A storage error aborts the whole batch.
    fn apply(&mut self, txn: &WriteTransaction, fx: &mut Effects) -> Result<(), redb::Error>;
    /// Called once the batch committed (`Ok`) or was abandoned (`Err`).
    fn finish(self: Box<Self>, committed: Result<()>);
}

struct FnOp<T, F> {
    f: Option<F>,
    out: Option<T>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Op for FnOp<T, F>
where
    T: Send,
    F: FnOnce(&WriteTransaction, &mut Effects) -> Result<T, redb::Error> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction, fx: &mut Effects) -> Result<(), redb::Error> {
        let f = self.f.take().expect("an op is applied once");
        self.out = Some(f(txn, fx)?);
        Ok(())
    }

    fn finish(self: Box<Self>, committed: Result<()>) {
        let this = *self;
        let result = committed.and_then(|()| {
            this.out
                .ok_or_else(|| Error::Internal("queue op finished without running".into()))
        });
        let _ = this.tx.send(result);
    }
}

/// The writer thread's handle. Dropping it closes the channel and waits for the thread
/// to finish what is queued and release the database file.
pub(super) struct Writer {
    tx: Option<mpsc::UnboundedSender<Box<dyn Op>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the writer thread did, for benches, tests and metrics.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Durable commits (each one fsync of the journal).
    pub commits: std::sync::atomic::AtomicU64,
    /// Operations carried by those commits and by abandoned empty batches.
    pub ops: std::sync::atomic::AtomicU64,
    /// Batches that changed nothing and were abandoned without a commit.
    pub empty_batches: std::sync::atomic::AtomicU64,
    /// Read-only looks for due work by idle workers.
    pub ready_checks: std::sync::atomic::AtomicU64,
}

impl Writer {
    /// Starts the writer thread. It stops when every `Writer` handle is dropped, after
    /// finishing what is queued.
    pub(super) fn start(
        db: Arc<Database>,
        max_batch: usize,
        stats: Arc<CommitStats>,
        on_commit: impl Fn(&Effects) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<dyn Op>>();
        let thread = std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    let mut fx = Effects::default();
                    let outcome = run_batch(&db, &mut batch, &mut fx);
                    let counter = if fx.wrote { &stats.commits } else { &stats.empty_batches };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    stats
                        .ops
                        .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    if outcome.is_ok() && fx.wrote {
                        on_commit(&fx);
                    }
                    for op in batch {
                        op.finish(outcome.clone());
                    }
                }
            })
            .expect("spawn the queue writer thread");
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Runs `f` in the next batch and returns its value once the batch is durable.
    pub(super) async fn submit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &mut Effects) -> Result<T, redb::Error> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| Error::Unavailable("the queue is shutting down".into()))?
            .send(Box::new(FnOp {
                f: Some(f),
                out: None,
                tx,
            }))
            .map_err(|_| Error::Unavailable("the queue is shutting down".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the queue writer stopped".into()))?
    }
}

/// Applies the batch in one transaction; commits durably if anything changed, else
/// abandons it (no write, no fsync).
fn run_batch(db: &Database, batch: &mut [Box<dyn Op>], fx: &mut Effects) -> Result<()> {
    let mut txn = db
        .begin_write()
        .map_err(|e| Error::unavailable("starting a queue transaction", e))?;
    txn.set_durability(Durability::Immediate);
    for op in batch.iter_mut() {
        if let Err(e) = op.apply(&txn, fx) {
            let _ = txn.abort();
            fx.wrote = false;
            tracing::error!(error = %e, "queue batch aborted");
            return Err(Error::unavailable("writing to the queue", e));
        }
    }
    if !fx.wrote {
        return txn
            .abort()
            .map_err(|e| Error::unavailable("ending an empty queue transaction", e));
    }
    txn.commit().map_err(|e| {
        tracing::error!(error = %e, "queue commit failed");
        Error::unavailable("committing the queue", e)
    })
}
