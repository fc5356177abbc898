//! The redb tables of the journal and what a job record holds.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// Dedupe key → expiry (Unix ms).
pub(super) const DEDUPE: TableDefinition<&str, u64> = TableDefinition::new("dedupe");
/// (expiry, dedupe key) → (): the purge order.
pub(super) const DEDUPE_EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("dedupe_expiry");
/// Job id → `JobMeta` as JSON.
pub(super) const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// Job id → payload bytes (for webhooks: the raw signed body).
pub(super) const PAYLOADS: TableDefinition<u64, &[u8]> = TableDefinition::new("payloads");
/// (queue, run at ms, job id) → (): jobs waiting to be claimed.
pub(super) const READY: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("ready");
/// (lease until ms, job id) → (): claimed jobs, by when their lease runs out.
pub(super) const LEASED: TableDefinition<(u64, u64), ()> = TableDefinition::new("leased");
/// Job id → `JobMeta` as JSON, for jobs that used up their attempts.
pub(super) const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
/// Counters and heartbeats.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Everything about a job except its payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobMeta {
    pub id: u64,
    pub queue: String,
    /// Claims so far (a crashed worker's claim counts).
    pub attempts: u32,
    /// Times the process died while holding this job (found leased at open).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crashes: u32,
    pub max_attempts: u32,
    pub created_at_ms: u64,
    pub run_at_ms: u64,
    /// Set while a worker holds the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the job went to the dead-letter table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_at_ms: Option<u64>,
}

/// A worker's hold on a job: its token and when it runs out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    pub until_ms: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobMeta {
    pub(super) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("JobMeta always serializes")
    }
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, redb::StorageError> {
        serde_json::from_slice(bytes)
            .map_err(|e| redb::StorageError::Corrupted(format!("job record is not valid: {e}")))
    }
}
