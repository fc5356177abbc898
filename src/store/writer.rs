//! The SQLite writer: one thread owns the write connection. Writes queue on a channel;
//! the thread takes everything waiting, runs each in its own savepoint inside one
//! transaction, and commits once (`synchronous=FULL`: one fsync for the whole batch).
//! A write that fails rolls back its savepoint only; the others still commit.
//! A batch that fails for want of space is recorded in the store's `StorageHealth` (SQLite
//! rolls it back and the connection stays usable: the next batch retries once space is
//! back); after any other I/O error the connection is closed and opened again.

use std::sync::Arc;

use rusqlite::{Connection, Savepoint};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::storage_health::{FaultKind, StorageHealth};

/// Opens the write connection again (the same file, or in tests the same simulated disk).
pub(super) type Reopen = Box<dyn Fn() -> Result<Connection> + Send>;

/// Most writes folded into one transaction.
const MAX_BATCH: usize = 256;

trait Op: Send {
    /// Runs in its own savepoint; returns whether it succeeded (else it is rolled back).
    fn apply(&mut self, sp: &mut Savepoint<'_>) -> bool;
    /// Delivers the result once the batch committed (or failed to).
    fn finish(self: Box<Self>, committed: Result<()>);
}

struct FnOp<T, F> {
    f: Option<F>,
    out: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Op for FnOp<T, F>
where
    T: Send,
    F: FnOnce(&mut Savepoint<'_>) -> Result<T> + Send,
{
    fn apply(&mut self, sp: &mut Savepoint<'_>) -> bool {
        let f = self.f.take().expect("a write runs once");
        let r = f(sp);
        let ok = r.is_ok();
        self.out = Some(r);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<()>) {
        let this = *self;
        let out = this
            .out
            .unwrap_or_else(|| Err(Error::Internal("write never ran".into())));
        let result = match (committed, out) {
            (_, Err(e)) => Err(e),
            (Ok(()), Ok(v)) => Ok(v),
            (Err(e), Ok(_)) => Err(e),
        };
        let _ = this.tx.send(result);
    }
}

/// Handle to the writer thread; dropping the last one stops it after the queued writes.
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

impl Writer {
    /// Starts the writer thread on `conn`; `reopen` opens the write connection again.
    /// `outbox` is bumped to the newest webhook delivery id after a commit that wrote one
    /// (looked up only while someone listens: the webhook worker).
    pub(super) fn start(
        conn: Connection,
        reopen: Reopen,
        health: Arc<StorageHealth>,
        outbox: Arc<watch::Sender<i64>>,
    ) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<dyn Op>>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = Some(conn);
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    if conn.is_none() {
                        conn = reconnect(&reopen, &health);
                    }
                    let committed = match conn.as_mut() {
                        None => Err(health.unavailable()),
                        Some(c) => match run_batch(c, &mut batch) {
                            Ok(()) => {
                                health.committed();
                                if outbox.receiver_count() > 0 {
                                    signal_outbox(c, &outbox);
                                }
                                Ok(())
                            }
                            Err(e) => match storage_fault(&e) {
                                Some(kind) => {
                                    health.failed(kind, &e.to_string());
                                    if kind == FaultKind::Io {
                                        // Opened again before the next batch.
                                        conn = None;
                                    }
                                    Err(health.unavailable())
                                }
                                None => {
                                    tracing::error!(error = %e, "SQLite commit failed");
                                    Err(Error::from(e))
                                }
                            },
                        },
                    };
                    for op in batch {
                        op.finish(committed.clone());
                    }
                }
            })
            .expect("spawn the SQLite writer thread");
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Savepoint<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| Error::Unavailable("the database is closing".into()))?
            .send(Box::new(FnOp {
                f: Some(f),
                out: None,
                tx,
            }))
            .map_err(|_| Error::Unavailable("the database is closing".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the SQLite writer stopped".into()))?
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Op>]) -> rusqlite::Result<()> {
    // IMMEDIATE: the write lock is taken (waiting out the busy timeout) before any op reads.
    // A deferred transaction that reads first and writes second fails at once as busy when
    // another process (a CLI command, the server) committed in between, busy timeout or not.
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for op in batch.iter_mut() {
        let mut sp = tx.savepoint()?;
        if op.apply(&mut sp) {
            sp.commit()?;
        } else {
            sp.rollback()?;
        }
    }
    // A failed COMMIT leaves nothing behind: SQLite rolled back, or dropping `tx` does.
    tx.commit()
}

/// Tells the webhook worker when a commit wrote new deliveries (one indexed lookup).
fn signal_outbox(conn: &Connection, outbox: &watch::Sender<i64>) {
    match conn.query_row("SELECT COALESCE(MAX(id), 0) FROM webhook_deliveries", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(newest) => {
            outbox.send_if_modified(|seen| {
                let new = newest > *seen;
                *seen = (*seen).max(newest);
                new
            });
        }
        Err(e) => tracing::debug!(error = %e, "SQLite: reading the newest webhook delivery failed"),
    }
}

/// Whether a failed batch is the storage's fault, and of which kind.
fn storage_fault(e: &rusqlite::Error) -> Option<FaultKind> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            rusqlite::ErrorCode::DiskFull => Some(FaultKind::DiskFull),
            rusqlite::ErrorCode::SystemIoFailure => Some(FaultKind::Io),
            _ => None,
        },
        _ => None,
    }
}

/// Opens the write connection again after an I/O error; `None` (and the next batch tries
/// again) while that fails.
fn reconnect(reopen: &Reopen, health: &StorageHealth) -> Option<Connection> {
    match reopen() {
        Ok(c) => {
            health.reopened();
            tracing::info!("SQLite write connection reopened after an I/O error");
            Some(c)
        }
        Err(e) => {
            tracing::debug!(error = %e, "SQLite: reopening the write connection failed");
            None
        }
    }
}
