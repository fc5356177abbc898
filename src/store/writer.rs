//! The SQLite writer: one thread owns the write connection. Writes queue on a channel;
//! the thread takes everything waiting, runs each in its own savepoint inside one
//! transaction, and commits once (`synchronous=FULL`: one fsync for the whole batch).
//! A write that fails rolls back its savepoint only; the others still commit.

use rusqlite::{Connection, Savepoint};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

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
    pub(super) fn start(mut conn: Connection) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<dyn Op>>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    let committed = run_batch(&mut conn, &mut batch);
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

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Op>]) -> Result<()> {
    let mut tx = conn.transaction()?;
    for op in batch.iter_mut() {
        let mut sp = tx.savepoint()?;
        if op.apply(&mut sp) {
            sp.commit()?;
        } else {
            sp.rollback()?;
        }
    }
    tx.commit().map_err(|e| {
        tracing::error!(error = %e, "SQLite commit failed");
        Error::from(e)
    })
}
