//! SQLite (`frontdesk.db`): WAL, busy timeout, sqlite-vec and FTS5, migrations at open.
//! One aggregate per file; every function here takes a `&Connection`. Writes go through
//! `Store::write` (one writer thread, group commit, a savepoint per write); reads through
//! `Store::read` on a separate connection, so they never wait behind an fsync.

pub mod backup;
pub mod canned;
pub mod contact_panel;
pub mod contacts;
pub mod conversations;
pub mod dashboard;
pub mod handoffs;
pub mod health;
pub mod inbox;
pub mod journal_marker;
pub mod knowledge;
pub mod ledger;
pub mod media;
mod messages;
mod migrations;
pub mod reply;
pub mod retention;
pub mod search;
pub mod settings;
pub mod snooze;
pub mod summaries;
pub mod unread;
pub mod users;
mod webhook_events;
pub mod webhooks;
mod writer;

pub use messages::{MessageRow, list_contact_messages, list_messages};
pub use webhook_events::{IngestReport, apply_events};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::storage_health::StorageHealth;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: Arc<writer::Writer>,
    health: Arc<StorageHealth>,
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
    calls: Arc<Calls>,
    /// The newest webhook delivery id seen committed (`webhook_signal`).
    outbox: Arc<tokio::sync::watch::Sender<i64>>,
}

/// Reads and writes through a store (all its clones), counted for measurements.
#[derive(Debug, Default)]
struct Calls {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// How many `read`s and `write`s went through a store: each is one round trip to
/// SQLite's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundTrips {
    pub reads: u64,
    pub writes: u64,
}

impl RoundTrips {
    pub fn total(self) -> u64 {
        self.reads + self.writes
    }

    /// The round trips since `before` was taken.
    pub fn since(self, before: RoundTrips) -> RoundTrips {
        RoundTrips {
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
        }
    }
}

static SQLITE_VEC: Once = Once::new();

/// Registers sqlite-vec for every connection this process opens.
fn register_sqlite_vec() {
    SQLITE_VEC.call_once(|| {
        // SAFETY: sqlite3_vec_init has the signature SQLite expects of an extension entry
        // point; sqlite3_auto_extension stores the pointer and calls it per connection.
        unsafe {
            #[allow(clippy::missing_transmute_annotations)]
            rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ())));
        }
    });
}

/// Opens a connection with frontdesk's settings (no migrations).
pub fn connect(path: &Path) -> Result<Connection> {
    register_sqlite_vec();
    let conn = Connection::open(path).map_err(|e| open_error(path, &e.to_string()))?;
    configure(conn, path)
}

fn configure(conn: Connection, path: &Path) -> Result<Connection> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| open_error(path, &e.to_string()))?;
    // FULL: a job is marked done in the journal only after its rows are on disk here.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn open_error(path: &Path, detail: &str) -> Error {
    if detail.contains("not a database") || detail.contains("malformed") {
        Error::Invalid(format!(
            "{} is not a valid SQLite database ({detail}); restore it from a backup \
             (`frontdesk restore`) or move it aside to start empty",
            path.display()
        ))
    } else {
        Error::Unavailable(format!("cannot open {}: {detail}", path.display()))
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        // Owner-only before SQLite opens it: its -wal and -shm files take the same mode.
        crate::private_fs::precreate(path)
            .map_err(|e| Error::unavailable(&format!("creating {}", path.display()), e))?;
        let mut conn = connect(path)?;
        migrations::migrate(&mut conn).map_err(|e| match e {
            Error::Internal(msg) if msg.contains("not a database") || msg.contains("malformed") => {
                open_error(path, &msg)
            }
            other => other,
        })?;
        let reader = connect(path)?;
        let beside = |suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        crate::private_fs::restrict_existing(&[path.to_path_buf(), beside("-wal"), beside("-shm")])
            .map_err(|e| Error::unavailable(&format!("making {} owner-only", path.display()), e))?;
        // SQLite syncs the directory for its WAL, not for the database file it created.
        crate::durable_fs::sync_parent(path)
            .map_err(|e| Error::unavailable(&format!("syncing the directory of {}", path.display()), e))?;
        let health = Arc::new(StorageHealth::new("sqlite"));
        let again = path.to_path_buf();
        let reopen = Box::new(move || connect(&again));
        let outbox = Arc::new(tokio::sync::watch::channel(0).0);
        Ok(Store {
            writer: Arc::new(writer::Writer::start(conn, reopen, health.clone(), outbox.clone())),
            health,
            reader: Arc::new(Mutex::new(reader)),
            path: path.to_path_buf(),
            calls: Default::default(),
            outbox,
        })
    }

    /// Whether the database takes writes, with the cause when it does not, and its error
    /// counters (for `/readyz` and `/metrics`).
    pub fn health(&self) -> &StorageHealth {
        &self.health
    }

    /// A database on a test VFS (the power-loss tests' simulated disk): `name` opened with
    /// `vfs`, migrated, the writer's connection set to `synchronous` (`FULL` as in
    /// production; `OFF` plants the lost-commit bug those tests must catch).
    #[cfg(test)]
    pub(crate) fn open_in_vfs(name: &str, vfs: &str, synchronous: &'static str) -> Result<Store> {
        register_sqlite_vec();
        let (name, vfs) = (name.to_string(), vfs.to_string());
        let open = move || -> Result<Connection> {
            let c = Connection::open_with_flags_and_vfs(&name, rusqlite::OpenFlags::default(), vfs.as_str())?;
            configure(c, Path::new(&name))
        };
        let mut conn = open()?;
        migrations::migrate(&mut conn)?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        let reader = open()?;
        let reopen = Box::new(move || {
            let c = open()?;
            c.pragma_update(None, "synchronous", synchronous)?;
            Ok(c)
        });
        let health = Arc::new(StorageHealth::new("sqlite"));
        let outbox = Arc::new(tokio::sync::watch::channel(0).0);
        Ok(Store {
            writer: Arc::new(writer::Writer::start(conn, reopen, health.clone(), outbox.clone())),
            health,
            reader: Arc::new(Mutex::new(reader)),
            path: PathBuf::new(),
            calls: Default::default(),
            outbox,
        })
    }

    /// A receiver that changes after every commit that wrote outbound-webhook deliveries
    /// (the webhook worker waits on it instead of polling).
    pub fn webhook_signal(&self) -> tokio::sync::watch::Receiver<i64> {
        self.outbox.subscribe()
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reads and writes made so far (by every clone of this store).
    pub fn round_trips(&self) -> RoundTrips {
        RoundTrips {
            reads: self.calls.reads.load(Ordering::Relaxed),
            writes: self.calls.writes.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` in the next write batch (its own savepoint) and returns once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Savepoint<'_>) -> Result<T> + Send + 'static,
    {
        self.calls.writes.fetch_add(1, Ordering::Relaxed);
        self.writer.write(f).await
    }

    /// Runs a read-only `f` on the read connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.calls.reads.fetch_add(1, Ordering::Relaxed);
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| Error::Internal("SQLite connection lock poisoned".into()))?;
            f(&guard)
        })
        .await
        .map_err(|e| Error::internal("SQLite task", e))?
    }

    /// Runs `f` on the second connection on the current thread (CLI and tests; it may
    /// write too, waiting on SQLite's lock).
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self
            .reader
            .lock()
            .map_err(|_| Error::Internal("SQLite connection lock poisoned".into()))?;
        f(&mut guard)
    }

    /// Runs `f` in one IMMEDIATE transaction on the second connection, on the current
    /// thread (the CLI beside a running server): the write lock is taken up front,
    /// waiting for the server's writer, so it cannot fail midway as busy; all of `f`
    /// commits or none of it.
    pub fn transaction_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.call_blocking(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Proves the database can be written (used by `/readyz`).
    pub async fn heartbeat(&self) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO heartbeat (id, at) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET at = excluded.at",
                [crate::domain::now_ms()],
            )?;
            Ok(())
        })
        .await
    }
}

// The conversion lives with the only module that uses rusqlite.
impl From<rusqlite::Error> for crate::Error {
    fn from(err: rusqlite::Error) -> Self {
        match err {
            rusqlite::Error::QueryReturnedNoRows => crate::Error::NotFound("no matching row".into()),
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                crate::Error::Unavailable(format!("the SQLite database is busy: {err}"))
            }
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                crate::Error::Unavailable(format!("the SQLite database cannot be written: {err}"))
            }
            other => crate::Error::Internal(format!("SQLite: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_vec_and_fts5() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .call_blocking(|c| {
                let v: String = c.query_row("SELECT vec_version()", [], |r| r.get(0))?;
                assert!(v.starts_with('v'), "{v}");
                c.execute_batch("CREATE VIRTUAL TABLE f USING fts5(body, tokenize='porter unicode61'); DROP TABLE f;")?;
                let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                assert_eq!(mode, "wal");
                Ok(())
            })
            .unwrap();
        // Opening again applies nothing and succeeds.
        drop(store);
        Store::open(&dir.path().join("t.db")).unwrap();
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.db");
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&p).err().expect("must fail").to_string();
        assert!(err.contains("not a valid SQLite database"), "{err}");
    }

    /// A write that reads before it writes, while another process holds the write lock
    /// and commits: it waits and succeeds. (With a deferred transaction it failed at once
    /// as busy, which is how a `frontdesk user add` beside a busy server failed.)
    #[test]
    fn a_read_then_write_waits_out_another_writer_instead_of_failing_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let mut other = connect(&path).unwrap();
        let held = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        held.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (1, 'other', 'a', 's', '')",
            [],
        )
        .unwrap();
        let (read, after_read) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(store.write(move |c| {
                let n: i64 = c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
                let _ = read.send(());
                c.execute(
                    "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (2, 'store', 'a', 's', ?1)",
                    [n],
                )?;
                Ok(())
            }))
        });
        // The other process commits once this write has read (deferred), or once the write
        // is seen waiting for the lock (immediate: it cannot read before the commit).
        let _ = after_read.recv_timeout(std::time::Duration::from_millis(500));
        held.commit().unwrap();
        writer
            .join()
            .unwrap()
            .expect("the write waited for the lock instead of failing busy");
    }
}
