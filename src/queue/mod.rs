//! The ingress journal and job queue in one redb file (`queue.redb`). All writes go
//! through one writer thread that group-commits; reads open their own snapshot.
//! A webhook is acknowledged only after `ingress` returns, i.e. after a durable commit.

// redb::Error is large (160 bytes); inside the queue it is returned once per batch and
// converted at the boundary, so boxing it would only add allocations.
#![allow(clippy::result_large_err)]

pub mod damage;
mod inspect;
mod ops;
mod slot;
pub mod snapshot;
mod tables;
mod writer;

#[cfg(test)]
pub(crate) mod power_loss;

pub use inspect::{DeadJob, QueueStats, QueueStatsRow};
pub use ops::{ClaimedJob, Ingress, JobOutcome, NewJob};
pub use tables::JobMeta;
pub use writer::CommitStats;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::Database;
use tokio::sync::watch;

use crate::config::QueueConfig;
use crate::domain::backoff::backoff_ms;
use crate::error::{Error, Result};
use crate::storage_health::StorageHealth;
use slot::{DbSlot, Opener};
use writer::{Writer, WriterOptions};

/// The name of the queue holding raw webhook deliveries.
pub const WEBHOOK_QUEUE: &str = "webhook";

/// A handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    /// The open journal; the writer replaces it when it reopens after an I/O error.
    db: Arc<DbSlot>,
    writer: Arc<Writer>,
    config: QueueConfig,
    /// One signal per queue, bumped after a commit that put a job of that queue in line,
    /// so idle workers wake without polling (and only the workers with work).
    wakers: Arc<Wakers>,
    next_token: Arc<AtomicU64>,
    stats: Arc<CommitStats>,
}

impl Queue {
    /// Opens the journal at `path` (creating it when there is no file) and starts its
    /// writer thread. A damaged or empty file is refused, never replaced
    /// (`damage::open_database`).
    pub fn open(path: &Path, config: &QueueConfig) -> Result<Queue> {
        let db = damage::open_database(path)?;
        crate::private_fs::restrict(path)
            .map_err(|e| Error::unavailable(&format!("making {} owner-only", path.display()), e))?;
        // The journal's name must be durable before anything in it is acknowledged.
        crate::durable_fs::sync_parent(path)
            .map_err(|e| Error::unavailable(&format!("syncing the directory of {}", path.display()), e))?;
        let path = path.to_path_buf();
        Ok(Self::start(
            db,
            Box::new(move || damage::open_database(&path)),
            config,
            redb::Durability::Immediate,
        ))
    }

    /// A journal on a caller's storage (the power-loss tests' simulated disk), committing
    /// with `durability` (`None` plants the lost-ACK bug those tests must catch).
    #[cfg(test)]
    pub(crate) fn open_with(db: Database, reopen: Opener, config: &QueueConfig, durability: redb::Durability) -> Queue {
        Self::start(db, reopen, config, durability)
    }

    fn start(db: Database, reopen: Opener, config: &QueueConfig, durability: redb::Durability) -> Queue {
        let db = Arc::new(DbSlot::new(db, Arc::new(StorageHealth::new("journal"))));
        let wakers = Arc::new(Wakers::default());
        let stats = Arc::new(CommitStats::default());
        let on_commit = wakers.clone();
        let options = WriterOptions {
            max_batch: config.group_commit_max_batch,
            durability,
        };
        let writer = Writer::start(db.clone(), reopen, options, stats.clone(), move |fx| {
            fx.ready_queues().for_each(|q| on_commit.wake(q));
        });
        let seed = crate::domain::now_ms() as u64 ^ u64::from(std::process::id()) << 40;
        Queue {
            db,
            writer: Arc::new(writer),
            config: config.clone(),
            wakers,
            next_token: Arc::new(AtomicU64::new(seed)),
            stats,
        }
    }

    /// Returns jobs held by a previous process to their queues. Call once at start, before
    /// any worker claims: the journal's file lock guarantees no other process holds them.
    /// A job whose process died while running it `crash_limit(queue)` times is
    /// dead-lettered as a possible poison pill instead of being run again.
    pub async fn recover_orphaned_leases(&self, crash_limit: fn(&str) -> u32) -> Result<usize> {
        let now = crate::domain::now_ms() as u64;
        self.writer
            .submit(move |txn, fx| ops::recover_all_leases(txn, fx, now, &crash_limit))
            .await
    }

    /// Records a webhook delivery: its dedupe keys and a job, in one durable write.
    pub async fn ingress(&self, keys: Vec<String>, body: Vec<u8>) -> Result<Ingress> {
        let now = crate::domain::now_ms() as u64;
        let expires = now + self.config.dedupe_ttl_hours * 3_600_000;
        let job = NewJob {
            queue: WEBHOOK_QUEUE.into(),
            payload: body,
            max_attempts: self.config.max_attempts,
            run_at_ms: now,
        };
        self.writer
            .submit(move |txn, fx| ops::ingress(txn, fx, &keys, expires, job))
            .await
    }

    /// A job for `queue`, due now, with the configured attempts.
    pub fn job(&self, queue: &str, payload: Vec<u8>) -> NewJob {
        NewJob {
            queue: queue.into(),
            payload,
            max_attempts: self.config.max_attempts,
            run_at_ms: crate::domain::now_ms() as u64,
        }
    }

    /// Queues a job unless one with the same `key` was queued within the dedupe period
    /// (so re-running the step that queues it is harmless).
    pub async fn enqueue_unique(&self, key: String, job: NewJob) -> Result<Ingress> {
        let expires = crate::domain::now_ms() as u64 + self.config.dedupe_ttl_hours * 3_600_000;
        self.writer
            .submit(move |txn, fx| ops::ingress(txn, fx, &[key], expires, job))
            .await
    }

    /// As `enqueue_unique` for several jobs, in one durable write.
    pub async fn enqueue_unique_many(&self, jobs: Vec<(String, NewJob)>) -> Result<Vec<Ingress>> {
        let expires = crate::domain::now_ms() as u64 + self.config.dedupe_ttl_hours * 3_600_000;
        self.writer
            .submit(move |txn, fx| {
                jobs.into_iter()
                    .map(|(key, job)| ops::ingress(txn, fx, &[key], expires, job))
                    .collect()
            })
            .await
    }

    /// Queues a job; returns its id once durable.
    pub async fn enqueue(&self, job: NewJob) -> Result<u64> {
        self.writer.submit(move |txn, fx| ops::enqueue(txn, fx, job)).await
    }

    /// Claims up to `max` due jobs of `queue`, leased for the configured time.
    pub async fn claim(&self, queue: &str, max: usize) -> Result<Vec<ClaimedJob>> {
        self.claim_with_lease(queue, max, self.config.lease_ms).await
    }

    /// Claims with an explicit lease length.
    pub async fn claim_with_lease(&self, queue: &str, max: usize, lease_ms: u64) -> Result<Vec<ClaimedJob>> {
        let queue = queue.to_string();
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let now = crate::domain::now_ms() as u64;
        self.writer
            .submit(move |txn, fx| ops::claim(txn, fx, &queue, max, now, lease_ms, token))
            .await
    }

    /// Extends a lease by the configured time; `false` if it was lost.
    pub async fn renew(&self, job: &ClaimedJob) -> Result<bool> {
        let (id, token) = (job.id, job.lease_token);
        let until = crate::domain::now_ms() as u64 + self.config.lease_ms;
        self.writer
            .submit(move |txn, fx| ops::renew(txn, fx, id, token, until))
            .await
    }

    /// Extends the leases of `jobs` (id, lease token) by the configured time, in one
    /// write; per job, whether it was still held (`false`: lost — expired and re-claimed,
    /// or done).
    pub async fn renew_many(&self, jobs: Vec<(u64, u64)>) -> Result<Vec<bool>> {
        let until = crate::domain::now_ms() as u64 + self.config.lease_ms;
        self.writer
            .submit(move |txn, fx| {
                jobs.iter()
                    .map(|(id, token)| ops::renew(txn, fx, *id, *token, until))
                    .collect()
            })
            .await
    }

    /// How long a claim holds a job unless renewed.
    pub fn lease_ms(&self) -> u64 {
        self.config.lease_ms
    }

    /// Records how jobs ended, in one write. Returns, per job, whether the lease was
    /// still held (a lost lease means another worker owns the job now). While the journal
    /// cannot be written (a full disk) it keeps trying for up to half a lease, so work
    /// done just before or during the fault is recorded once it heals instead of being
    /// run again when the lease runs out.
    pub async fn finish_many(&self, done: Vec<(u64, u64, JobOutcome)>) -> Result<Vec<bool>> {
        let give_up = std::time::Instant::now() + std::time::Duration::from_millis(self.config.lease_ms / 2);
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let now = crate::domain::now_ms() as u64;
            let done = done.clone();
            let result = self
                .writer
                .submit(move |txn, fx| {
                    done.iter()
                        .map(|(id, token, o)| ops::finish(txn, fx, *id, *token, o, now))
                        .collect()
                })
                .await;
            match result {
                Err(_) if self.health().fault().is_some() && std::time::Instant::now() + pause < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// Records how one job ended.
    pub async fn finish(&self, job: &ClaimedJob, outcome: JobOutcome) -> Result<bool> {
        Ok(self
            .finish_many(vec![(job.id, job.lease_token, outcome)])
            .await?
            .remove(0))
    }

    /// A failure outcome with this queue's backoff for `attempt`.
    pub fn retry_later(&self, attempt: u32, error: impl Into<String>) -> JobOutcome {
        let delay = backoff_ms(
            attempt,
            self.config.backoff_base_ms,
            self.config.backoff_max_ms,
            rand::random::<f64>(),
        );
        JobOutcome::Failed {
            error: error.into(),
            retry_in_ms: Some(delay),
        }
    }

    /// Gives claimed jobs back without counting the attempt (used at shutdown).
    pub async fn release(&self, jobs: Vec<(u64, u64)>) -> Result<usize> {
        self.writer
            .submit(move |txn, fx| {
                let mut n = 0;
                for (id, token) in jobs {
                    n += usize::from(ops::release(txn, fx, id, token)?);
                }
                Ok(n)
            })
            .await
    }

    /// Returns jobs with expired leases to their queue; returns how many.
    pub async fn reap_expired(&self) -> Result<usize> {
        let now = crate::domain::now_ms() as u64;
        let delay = self.config.backoff_base_ms;
        self.writer
            .submit(move |txn, fx| ops::reap_expired(txn, fx, now, delay))
            .await
    }

    /// Deletes up to `limit` expired dedupe keys; returns how many.
    pub async fn purge_dedupe(&self, limit: usize) -> Result<usize> {
        self.purge_dedupe_at(crate::domain::now_ms() as u64, limit).await
    }

    /// As `purge_dedupe`, as if the time were `now_ms` (tests).
    pub async fn purge_dedupe_at(&self, now_ms: u64, limit: usize) -> Result<usize> {
        self.writer
            .submit(move |txn, fx| ops::purge_dedupe(txn, fx, now_ms, limit))
            .await
    }

    /// Moves a dead-lettered job back to its queue.
    pub async fn retry_dead(&self, id: u64) -> Result<()> {
        let now = crate::domain::now_ms() as u64;
        if self
            .writer
            .submit(move |txn, fx| ops::retry_dead(txn, fx, id, now))
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "no dead job with id {id}; see `frontdesk queue dead`"
            )))
        }
    }

    /// Proves the journal can be written (used by `/readyz`).
    pub async fn heartbeat(&self) -> Result<()> {
        let now = crate::domain::now_ms() as u64;
        self.writer.submit(move |txn, fx| ops::heartbeat(txn, fx, now)).await
    }

    /// A receiver that changes after every commit that put a job of `queue` in line
    /// (new, retried, deferred, released or returned from an expired lease). Idle workers
    /// wait on it and on a timer for the earliest due job (`next_due`).
    pub fn ready_signal(&self, queue: &str) -> watch::Receiver<u64> {
        self.wakers.subscribe(queue)
    }

    /// When the earliest waiting job of `queue` is due (Unix ms), if any. A read-only
    /// look: an idle worker asking costs no write and no fsync.
    pub fn next_due(&self, queue: &str) -> Result<Option<u64>> {
        self.stats.ready_checks.fetch_add(1, Ordering::Relaxed);
        let read = |e: &dyn std::fmt::Display| Error::unavailable("reading the queue", e);
        let txn = self.db.get()?.begin_read().map_err(|e| read(&e))?;
        let ready = match txn.open_table(tables::READY) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read(&e)),
        };
        let mut range = ready
            .range((queue, 0u64, 0u64)..=(queue, u64::MAX, u64::MAX))
            .map_err(|e| read(&e))?;
        match range.next() {
            Some(entry) => Ok(Some(entry.map_err(|e| read(&e))?.0.value().1)),
            None => Ok(None),
        }
    }

    /// Commit and operation counts of the writer thread.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Counts per queue and dead letters.
    pub fn stats(&self) -> Result<QueueStats> {
        inspect::stats(&*self.db.get()?)
    }

    /// Dead-lettered jobs, oldest first.
    pub fn dead(&self, limit: usize) -> Result<Vec<DeadJob>> {
        inspect::dead(&*self.db.get()?, limit)
    }

    /// Whether a dedupe key is currently held (tests and diagnostics).
    pub fn has_dedupe_key(&self, key: &str) -> Result<bool> {
        inspect::has_dedupe_key(&*self.db.get()?, key)
    }

    /// Whether the journal takes writes, with the cause when it does not, and its error
    /// counters (for `/readyz` and `/metrics`).
    pub fn health(&self) -> &StorageHealth {
        &self.db.health
    }
}

/// The per-queue wake signals.
#[derive(Default)]
struct Wakers {
    by_queue: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Wakers {
    fn subscribe(&self, queue: &str) -> watch::Receiver<u64> {
        let mut map = self.by_queue.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(queue.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn wake(&self, queue: &str) {
        let map = self.by_queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(queue) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
