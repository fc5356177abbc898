//! The single writer: one OS thread that owns every redb write. Operations queue on a
//! channel; the thread takes everything waiting (up to a batch limit), applies it in
//! one transaction and commits once, durably. Many webhooks, one fsync: group commit.
//! A batch that changed nothing is abandoned instead of committed: an idle worker's empty
//! claim costs no fsync and wakes nobody.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::slot::{DbSlot, Opener};
use crate::error::{Error, Result};
use crate::storage_health::FaultKind;

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
    tx: Option<mpsc::Sender<Box<dyn Op>>>,
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

/// How the writer commits.
pub(super) struct WriterOptions {
    pub(super) max_batch: usize,
    /// `Immediate` in production: a commit returns once it is on disk. Tests of the
    /// power-loss harness plant a lost-ACK bug with `None`.
    pub(super) durability: Durability,
}

/// When to try opening the journal again after an I/O error: soon at first, then less
/// often while the cause lasts (a full disk stays full until someone frees space).
struct Reopen {
    delay: Duration,
    at: Instant,
}

impl Reopen {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    fn new() -> Self {
        Reopen {
            delay: Self::FIRST,
            at: Instant::now(),
        }
    }

    /// Schedules the next attempt after the current delay, then doubles it.
    fn schedule(&mut self) {
        self.at = Instant::now() + self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
    }

    fn reset(&mut self) {
        self.delay = Self::FIRST;
    }
}

impl Writer {
    /// Starts the writer thread. It stops when every `Writer` handle is dropped, after
    /// finishing what is queued. After a storage error it closes the database and opens
    /// it again with `reopen` (retrying with backoff); operations that arrive meanwhile
    /// fail at once with the cause, so a webhook gets a quick 503.
    pub(super) fn start(
        slot: Arc<DbSlot>,
        reopen: Opener,
        options: WriterOptions,
        stats: Arc<CommitStats>,
        on_commit: impl Fn(&Effects) + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Box<dyn Op>>();
        let thread = std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || serve(&rx, &slot, &reopen, &options, &stats, &on_commit))
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

/// The writer thread: takes everything waiting, runs it as one batch, tells each
/// operation the outcome; while the journal is closed after a storage error, wakes up to
/// open it again when the backoff says so.
fn serve(
    rx: &mpsc::Receiver<Box<dyn Op>>,
    slot: &DbSlot,
    reopen: &Opener,
    options: &WriterOptions,
    stats: &CommitStats,
    on_commit: &impl Fn(&Effects),
) {
    let mut next = Reopen::new();
    loop {
        let first = if slot.is_open() {
            match rx.recv() {
                Ok(op) => Some(op),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(next.at.saturating_duration_since(Instant::now())) {
                Ok(op) => Some(op),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        if !slot.is_open() && Instant::now() >= next.at {
            match reopen() {
                Ok(db) => {
                    slot.put(db);
                    slot.health.reopened();
                    tracing::info!("queue journal reopened after a storage error");
                }
                Err(e) => {
                    next.schedule();
                    tracing::debug!(error = %e, "queue journal: reopening failed; retrying");
                }
            }
        }
        let Some(first) = first else { continue };
        let mut batch = vec![first];
        while batch.len() < options.max_batch {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut fx = Effects::default();
        let outcome = match slot.get() {
            Ok(db) => {
                let outcome = run_batch(&db, &mut batch, &mut fx, options.durability);
                let counter = if fx.wrote { &stats.commits } else { &stats.empty_batches };
                counter.fetch_add(1, Ordering::Relaxed);
                outcome
            }
            // Closed after a storage error and not open again yet.
            Err(e) => Err(Failure { error: e, fault: None }),
        };
        stats.ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let outcome = match outcome {
            Ok(()) => {
                if fx.wrote {
                    slot.health.committed();
                    next.reset();
                    on_commit(&fx);
                }
                Ok(())
            }
            Err(Failure {
                error,
                fault: Some((kind, detail)),
            }) => {
                // redb refuses every later transaction of this handle; only a fresh
                // open (which rolls back to the last commit) recovers.
                let kind = match (kind, slot.health.fault()) {
                    (None, Some(f)) => f.kind,
                    (kind, _) => kind.unwrap_or(FaultKind::Io),
                };
                slot.health.failed(kind, &detail);
                slot.close();
                next.schedule();
                tracing::debug!(%error, "queue journal closed after a storage error");
                Err(slot.health.unavailable())
            }
            Err(Failure { error, fault: None }) => {
                if slot.is_open() {
                    tracing::error!(%error, "queue batch failed");
                }
                Err(error)
            }
        };
        for op in batch {
            op.finish(outcome.clone());
        }
    }
}

/// Why a batch failed, and whether the cause was storage (then the database is closed
/// and opened again): `Some(None)` means "a storage error of no particular kind"
/// (redb's "previous I/O error", whose cause was recorded when it happened).
struct Failure {
    error: Error,
    fault: Option<(Option<FaultKind>, String)>,
}

impl Failure {
    fn new(doing: &str, e: impl Into<redb::Error>) -> Self {
        let e: redb::Error = e.into();
        let fault = match &e {
            redb::Error::Io(io) => Some((Some(FaultKind::of_io(io)), e.to_string())),
            redb::Error::PreviousIo => Some((None, e.to_string())),
            _ => None,
        };
        Failure {
            error: Error::unavailable(doing, &e),
            fault,
        }
    }
}

/// Applies the batch in one transaction; commits with `durability` if anything changed,
/// else abandons it (no write, no fsync).
fn run_batch(
    db: &Database,
    batch: &mut [Box<dyn Op>],
    fx: &mut Effects,
    durability: Durability,
) -> Result<(), Failure> {
    let mut txn = db
        .begin_write()
        .map_err(|e| Failure::new("starting a queue transaction", e))?;
    txn.set_durability(durability);
    for op in batch.iter_mut() {
        if let Err(e) = op.apply(&txn, fx) {
            let _ = txn.abort();
            fx.wrote = false;
            tracing::debug!(error = %e, "queue batch aborted");
            return Err(Failure::new("writing to the queue", e));
        }
    }
    if !fx.wrote {
        return txn
            .abort()
            .map_err(|e| Failure::new("ending an empty queue transaction", e));
    }
    txn.commit().map_err(|e| {
        tracing::debug!(error = %e, "queue commit failed");
        Failure::new("committing the queue", e)
    })
}
