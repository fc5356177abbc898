//! Read-only views of the journal: counts per queue, the oldest waiting job, dead letters.

use std::collections::BTreeMap;

use redb::{Database, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::{DEAD, DEDUPE, JOBS, JobMeta, LEASED, READY};
use crate::error::{Error, Result};

/// Counts for one queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueStatsRow {
    pub queue: String,
    /// Waiting jobs (due now or scheduled for a retry).
    pub ready: u64,
    /// Waiting jobs that are due now.
    pub due: u64,
    /// Age of the oldest waiting job, in milliseconds.
    pub oldest_ready_age_ms: u64,
}

/// The whole journal at a glance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueStats {
    pub queues: Vec<QueueStatsRow>,
    /// Jobs held by a worker right now.
    pub leased: u64,
    pub dead: u64,
    pub dedupe_keys: u64,
}

/// One dead-lettered job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadJob {
    pub id: u64,
    pub queue: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at_ms: u64,
    pub dead_at_ms: Option<u64>,
}

fn read_err(e: impl std::fmt::Display) -> Error {
    Error::unavailable("reading the queue journal", e)
}

pub(super) fn stats(db: &Database) -> Result<QueueStats> {
    let now = crate::domain::now_ms() as u64;
    let txn = db.begin_read().map_err(read_err)?;
    let mut out = QueueStats::default();
    let ready = txn.open_table(READY);
    let jobs = txn.open_table(JOBS);
    if let (Ok(ready), Ok(jobs)) = (ready, jobs) {
        let mut rows: BTreeMap<String, QueueStatsRow> = BTreeMap::new();
        for item in ready.iter().map_err(read_err)? {
            let (k, _) = item.map_err(read_err)?;
            let (queue, run_at, id) = k.value();
            let row = rows.entry(queue.to_string()).or_insert_with(|| QueueStatsRow {
                queue: queue.to_string(),
                ..Default::default()
            });
            row.ready += 1;
            if run_at <= now {
                row.due += 1;
            }
            if let Some(meta) = jobs.get(id).map_err(read_err)?
                && let Ok(meta) = JobMeta::decode(meta.value())
            {
                row.oldest_ready_age_ms = row.oldest_ready_age_ms.max(now.saturating_sub(meta.created_at_ms));
            }
        }
        out.queues = rows.into_values().collect();
    }
    if let Ok(t) = txn.open_table(LEASED) {
        out.leased = t.len().map_err(read_err)?;
    }
    if let Ok(t) = txn.open_table(DEAD) {
        out.dead = t.len().map_err(read_err)?;
    }
    if let Ok(t) = txn.open_table(DEDUPE) {
        out.dedupe_keys = t.len().map_err(read_err)?;
    }
    Ok(out)
}

pub(super) fn dead(db: &Database, limit: usize) -> Result<Vec<DeadJob>> {
    let txn = db.begin_read().map_err(read_err)?;
    let Ok(table) = txn.open_table(DEAD) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in table.iter().map_err(read_err)?.take(limit) {
        let (_, v) = item.map_err(read_err)?;
        let meta = JobMeta::decode(v.value()).map_err(read_err)?;
        out.push(DeadJob {
            id: meta.id,
            queue: meta.queue,
            attempts: meta.attempts,
            last_error: meta.last_error,
            created_at_ms: meta.created_at_ms,
            dead_at_ms: meta.dead_at_ms,
        });
    }
    Ok(out)
}

pub(super) fn has_dedupe_key(db: &Database, key: &str) -> Result<bool> {
    let txn = db.begin_read().map_err(read_err)?;
    let Ok(table) = txn.open_table(DEDUPE) else {
        return Ok(false);
    };
    Ok(table.get(key).map_err(read_err)?.is_some())
}
