//! Queue operations that run inside the writer's transaction: ingress with dedupe,
//! enqueue, claim, renew, complete, fail (retry or dead-letter), release, lease reaping,
//! dedupe purging and dead-letter retry.

use redb::{ReadableTable, WriteTransaction};

use super::tables::{DEAD, DEDUPE, DEDUPE_EXPIRY, JOBS, JobMeta, LEASED, Lease, META, PAYLOADS, READY};
use super::writer::Effects;

type R<T> = Result<T, redb::Error>;

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: u64,
    pub queue: String,
    /// This claim's number, 1 for the first.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Times the process stopped while holding this job before (a crash, a kill, a
    /// power cut), as found at start-up.
    pub crashes: u32,
    pub lease_token: u64,
    pub payload: Vec<u8>,
}

/// What happened to a delivery offered to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// New: stored and queued as this job.
    Enqueued(u64),
    /// Every key was seen before: nothing stored.
    Duplicate,
}

/// Options for a new job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub payload: Vec<u8>,
    pub max_attempts: u32,
    pub run_at_ms: u64,
}

/// How a worker finished a job.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    Done,
    /// Failed; retried after `retry_in_ms` unless out of attempts (or `retry_in_ms` is
    /// `None`, meaning the failure is permanent).
    Failed {
        error: String,
        retry_in_ms: Option<u64>,
    },
    /// Not done and not failed: put back in line after `delay_ms` without counting the
    /// attempt (waiting for a rate limit, an earlier message, or a paused sender).
    Defer {
        delay_ms: u64,
    },
}

pub(super) fn ingress(
    txn: &WriteTransaction,
    fx: &mut Effects,
    keys: &[String],
    expires_at: u64,
    job: NewJob,
) -> R<Ingress> {
    let mut dedupe = txn.open_table(DEDUPE)?;
    let mut all_seen = !keys.is_empty();
    for k in keys {
        if dedupe.get(k.as_str())?.is_none() {
            all_seen = false;
            break;
        }
    }
    if all_seen {
        return Ok(Ingress::Duplicate);
    }
    let mut expiry = txn.open_table(DEDUPE_EXPIRY)?;
    for k in keys {
        if let Some(old) = dedupe.insert(k.as_str(), expires_at)? {
            let old = old.value();
            expiry.remove((old, k.as_str()))?;
        }
        expiry.insert((expires_at, k.as_str()), ())?;
    }
    drop(dedupe);
    drop(expiry);
    Ok(Ingress::Enqueued(enqueue(txn, fx, job)?))
}

pub(super) fn enqueue(txn: &WriteTransaction, fx: &mut Effects, job: NewJob) -> R<u64> {
    let id = {
        let mut meta = txn.open_table(META)?;
        let next = meta.get("next_job_id")?.map(|v| v.value()).unwrap_or(1);
        meta.insert("next_job_id", next + 1)?;
        next
    };
    let record = JobMeta {
        id,
        queue: job.queue.clone(),
        attempts: 0,
        crashes: 0,
        max_attempts: job.max_attempts.max(1),
        created_at_ms: crate::domain::now_ms() as u64,
        run_at_ms: job.run_at_ms,
        lease: None,
        last_error: None,
        dead_at_ms: None,
    };
    txn.open_table(JOBS)?.insert(id, record.encode().as_slice())?;
    txn.open_table(PAYLOADS)?.insert(id, job.payload.as_slice())?;
    txn.open_table(READY)?
        .insert((job.queue.as_str(), job.run_at_ms, id), ())?;
    fx.made_ready(&job.queue);
    Ok(id)
}

pub(super) fn claim(
    txn: &WriteTransaction,
    fx: &mut Effects,
    queue: &str,
    max: usize,
    now: u64,
    lease_ms: u64,
    token: u64,
) -> R<Vec<ClaimedJob>> {
    let mut ready = txn.open_table(READY)?;
    let due: Vec<(u64, u64)> = ready
        .range((queue, 0u64, 0u64)..=(queue, now, u64::MAX))?
        .take(max)
        .map(|r| {
            r.map(|(k, _)| {
                let (_, at, id) = k.value();
                (at, id)
            })
        })
        .collect::<Result<_, _>>()?;
    let mut jobs = txn.open_table(JOBS)?;
    let payloads = txn.open_table(PAYLOADS)?;
    let mut leased = txn.open_table(LEASED)?;
    let mut out = Vec::with_capacity(due.len());
    for (at, id) in due {
        fx.wrote();
        ready.remove((queue, at, id))?;
        let Some(mut meta) = get_meta(&jobs, id)? else { continue };
        meta.attempts += 1;
        let lease = Lease {
            token,
            until_ms: now + lease_ms,
        };
        meta.lease = Some(lease);
        jobs.insert(id, meta.encode().as_slice())?;
        leased.insert((lease.until_ms, id), ())?;
        let payload = payloads.get(id)?.map(|p| p.value().to_vec()).unwrap_or_default();
        out.push(ClaimedJob {
            id,
            queue: meta.queue.clone(),
            attempt: meta.attempts,
            max_attempts: meta.max_attempts,
            crashes: meta.crashes,
            lease_token: token,
            payload,
        });
    }
    Ok(out)
}

/// Extends a held lease. `false` when the lease was lost (expired and re-claimed, or done).
pub(super) fn renew(txn: &WriteTransaction, fx: &mut Effects, id: u64, token: u64, until_ms: u64) -> R<bool> {
    let mut jobs = txn.open_table(JOBS)?;
    let Some(mut meta) = get_meta(&jobs, id)? else {
        return Ok(false);
    };
    let Some(lease) = meta.lease.filter(|l| l.token == token) else {
        return Ok(false);
    };
    fx.wrote();
    let mut leased = txn.open_table(LEASED)?;
    leased.remove((lease.until_ms, id))?;
    leased.insert((until_ms, id), ())?;
    meta.lease = Some(Lease { token, until_ms });
    jobs.insert(id, meta.encode().as_slice())?;
    Ok(true)
}

/// Applies a worker's outcome. Returns `false` when the worker no longer held the lease
/// (the job was reaped and re-claimed); the outcome is then ignored.
pub(super) fn finish(
    txn: &WriteTransaction,
    fx: &mut Effects,
    id: u64,
    token: u64,
    outcome: &JobOutcome,
    now: u64,
) -> R<bool> {
    let mut jobs = txn.open_table(JOBS)?;
    let Some(mut meta) = get_meta(&jobs, id)? else {
        return Ok(false);
    };
    let Some(lease) = meta.lease.filter(|l| l.token == token) else {
        return Ok(false);
    };
    fx.wrote();
    txn.open_table(LEASED)?.remove((lease.until_ms, id))?;
    meta.lease = None;
    match outcome {
        JobOutcome::Done => {
            jobs.remove(id)?;
            txn.open_table(PAYLOADS)?.remove(id)?;
        }
        JobOutcome::Defer { delay_ms } => {
            meta.attempts = meta.attempts.saturating_sub(1);
            meta.run_at_ms = now + delay_ms;
            jobs.insert(id, meta.encode().as_slice())?;
            txn.open_table(READY)?
                .insert((meta.queue.as_str(), meta.run_at_ms, id), ())?;
            fx.made_ready(&meta.queue);
        }
        JobOutcome::Failed { error, retry_in_ms } => {
            meta.last_error = Some(error.clone());
            match retry_in_ms {
                Some(delay) if meta.attempts < meta.max_attempts => {
                    meta.run_at_ms = now + delay;
                    jobs.insert(id, meta.encode().as_slice())?;
                    txn.open_table(READY)?
                        .insert((meta.queue.as_str(), meta.run_at_ms, id), ())?;
                    fx.made_ready(&meta.queue);
                }
                _ => {
                    jobs.remove(id)?;
                    meta.dead_at_ms = Some(now);
                    txn.open_table(DEAD)?.insert(id, meta.encode().as_slice())?;
                }
            }
        }
    }
    Ok(true)
}

/// Gives a job back untouched (shutdown): it is ready at once and the claim is not counted.
pub(super) fn release(txn: &WriteTransaction, fx: &mut Effects, id: u64, token: u64) -> R<bool> {
    let mut jobs = txn.open_table(JOBS)?;
    let Some(mut meta) = get_meta(&jobs, id)? else {
        return Ok(false);
    };
    let Some(lease) = meta.lease.filter(|l| l.token == token) else {
        return Ok(false);
    };
    txn.open_table(LEASED)?.remove((lease.until_ms, id))?;
    meta.lease = None;
    meta.attempts = meta.attempts.saturating_sub(1);
    jobs.insert(id, meta.encode().as_slice())?;
    txn.open_table(READY)?
        .insert((meta.queue.as_str(), meta.run_at_ms, id), ())?;
    fx.made_ready(&meta.queue);
    Ok(true)
}

/// Puts jobs whose lease ran out back in line (or in the dead-letter table when that
/// claim was their last attempt). Returns how many were moved.
pub(super) fn reap_expired(txn: &WriteTransaction, fx: &mut Effects, now: u64, retry_delay_ms: u64) -> R<usize> {
    let reason = "lease expired: the worker stopped or took too long";
    return_leases(txn, fx, now, now, |meta| {
        meta.last_error = Some(reason.into());
        if meta.attempts >= meta.max_attempts {
            Return::Dead
        } else {
            Return::Retry(now + retry_delay_ms)
        }
    })
}

/// Returns every held job to its queue at once. Only one process can open the journal,
/// so at open time every lease belongs to a process that died. The claim counts as an
/// attempt and as a crash: a job that may have killed its process (a poison pill) is
/// dead-lettered after `crash_limit(queue)` such deaths instead of crash-looping.
pub(super) fn recover_all_leases(
    txn: &WriteTransaction,
    fx: &mut Effects,
    now: u64,
    crash_limit: &dyn Fn(&str) -> u32,
) -> R<usize> {
    return_leases(txn, fx, u64::MAX, now, |meta| {
        meta.crashes += 1;
        if meta.crashes >= crash_limit(&meta.queue).max(1) {
            meta.last_error = Some(format!(
                "the process stopped while running this job {} time(s); set aside as a possible poison pill \
                 (`frontdesk queue retry ID` runs it again)",
                meta.crashes
            ));
            return Return::Dead;
        }
        meta.last_error = Some("the process holding this job stopped before finishing it".into());
        if meta.attempts >= meta.max_attempts {
            Return::Dead
        } else {
            Return::Retry(now)
        }
    })
}

/// Where a job whose lease ended goes.
enum Return {
    Retry(u64),
    Dead,
}

/// Moves jobs whose lease ends before `cutoff` back to their queue or to dead letters,
/// as `decide` says.
fn return_leases(
    txn: &WriteTransaction,
    fx: &mut Effects,
    cutoff: u64,
    now: u64,
    mut decide: impl FnMut(&mut JobMeta) -> Return,
) -> R<usize> {
    let mut leased = txn.open_table(LEASED)?;
    let expired: Vec<(u64, u64)> = leased
        .range((0u64, 0u64)..(cutoff, 0u64))?
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    let mut jobs = txn.open_table(JOBS)?;
    for &(until, id) in &expired {
        fx.wrote();
        leased.remove((until, id))?;
        let Some(mut meta) = get_meta(&jobs, id)? else { continue };
        meta.lease = None;
        match decide(&mut meta) {
            Return::Dead => {
                jobs.remove(id)?;
                meta.dead_at_ms = Some(now);
                txn.open_table(DEAD)?.insert(id, meta.encode().as_slice())?;
            }
            Return::Retry(at) => {
                meta.run_at_ms = at;
                jobs.insert(id, meta.encode().as_slice())?;
                txn.open_table(READY)?
                    .insert((meta.queue.as_str(), meta.run_at_ms, id), ())?;
                fx.made_ready(&meta.queue);
            }
        }
    }
    Ok(expired.len())
}

/// Deletes dedupe keys whose time ran out. Returns how many.
pub(super) fn purge_dedupe(txn: &WriteTransaction, fx: &mut Effects, now: u64, limit: usize) -> R<usize> {
    let mut expiry = txn.open_table(DEDUPE_EXPIRY)?;
    let old: Vec<(u64, String)> = expiry
        .range((0u64, "")..(now, ""))?
        .take(limit)
        .map(|r| {
            r.map(|(k, _)| {
                let (t, key) = k.value();
                (t, key.to_string())
            })
        })
        .collect::<Result<_, _>>()?;
    let mut dedupe = txn.open_table(DEDUPE)?;
    for (t, key) in &old {
        fx.wrote();
        expiry.remove((*t, key.as_str()))?;
        dedupe.remove(key.as_str())?;
    }
    Ok(old.len())
}

/// Moves a dead job back to its queue with a fresh set of attempts.
pub(super) fn retry_dead(txn: &WriteTransaction, fx: &mut Effects, id: u64, now: u64) -> R<bool> {
    let mut dead = txn.open_table(DEAD)?;
    let Some(bytes) = dead.remove(id)? else {
        return Ok(false);
    };
    let mut meta = JobMeta::decode(bytes.value())?;
    drop(bytes);
    meta.attempts = 0;
    meta.crashes = 0;
    meta.dead_at_ms = None;
    meta.run_at_ms = now;
    txn.open_table(JOBS)?.insert(id, meta.encode().as_slice())?;
    txn.open_table(READY)?.insert((meta.queue.as_str(), now, id), ())?;
    fx.made_ready(&meta.queue);
    Ok(true)
}

pub(super) fn heartbeat(txn: &WriteTransaction, fx: &mut Effects, now: u64) -> R<()> {
    fx.wrote();
    txn.open_table(META)?.insert("heartbeat_ms", now)?;
    Ok(())
}

fn get_meta(jobs: &redb::Table<u64, &[u8]>, id: u64) -> R<Option<JobMeta>> {
    match jobs.get(id)? {
        Some(b) => Ok(Some(JobMeta::decode(b.value())?)),
        None => Ok(None),
    }
}
