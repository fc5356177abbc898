//! Power-loss tests of the journal: the real queue code (writer thread, group commit,
//! ingress with dedupe keys, claim, complete, follow-up jobs, fail and retry) on a
//! simulated disk (`sim::redb_disk`), the power cut at every backend call of a small workload in
//! turn and at random ones, with the unsynced writes dropped, torn or reordered. After each
//! cut the journal is opened again, leases recovered, and checked: it opens and passes
//! redb's integrity check; every acknowledged delivery (ingress returned Ok) still holds
//! its dedupe key and its job is waiting, dead-lettered or was confirmed done; a job
//! confirmed done never comes back; no delivery is queued twice; no lease is left.
//! The negative control commits without durability and must be caught losing ACKs.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::{Builder, Database, Durability, ReadableTable};

use super::tables::{DEAD, DEDUPE, JOBS, JobMeta, LEASED, PAYLOADS, READY};
use super::{ClaimedJob, Ingress, JobOutcome, Queue, WEBHOOK_QUEUE};
use crate::config::QueueConfig;
use crate::sim::power::Tear;
use crate::sim::redb_disk::SimDisk;

/// What the workload was told, and so what must survive.
#[derive(Debug, Default)]
struct Acks {
    /// Dedupe key → job id, for every ingress or follow-up enqueue that returned a new job.
    jobs: BTreeMap<String, u64>,
    /// Keys acknowledged as duplicates (their first delivery must be there).
    duplicates: BTreeSet<String>,
    /// Jobs whose `Done` was confirmed: gone for good.
    done: BTreeSet<u64>,
    /// Jobs whose `Done` was sent when the power went: either way is fine.
    maybe_done: BTreeSet<u64>,
}

/// One run's result.
#[derive(Debug, Default)]
pub(super) struct Run {
    pub(super) acks_checked: usize,
    pub(super) violations: Vec<String>,
    pub(super) crashed: bool,
}

fn config() -> QueueConfig {
    QueueConfig {
        max_attempts: 2,
        group_commit_max_batch: 64,
        // `finish` keeps trying for half a lease while the journal is failing; after a
        // power cut it never comes back, so keep that short.
        lease_ms: 100,
        ..QueueConfig::default()
    }
}

pub(crate) fn open(disk: &SimDisk) -> Result<Database, redb::DatabaseError> {
    Builder::new().create_with_backend(disk.backend())
}

pub(crate) fn queue_on(disk: &SimDisk, db: Database, durability: Durability) -> Queue {
    let again = disk.clone();
    let reopen = Box::new(move || open(&again).map_err(|e| crate::error::Error::unavailable("reopen", e)));
    Queue::open_with(db, reopen, &config(), durability)
}

/// The workload: deliveries (some re-delivered, some in concurrent bursts that share a
/// commit), claims, completions that queue a follow-up job first, failures that retry or
/// dead-letter. Stops at the first error (the power went).
async fn workload(q: &Queue, rng: &mut StdRng, steps: usize, acks: &mut Acks) {
    let mut claimed: Vec<ClaimedJob> = Vec::new();
    let mut n = 0usize;
    for _ in 0..steps {
        let ok = match rng.random_range(0..7) {
            0 | 1 => {
                n += 1;
                let key = format!("wamid.{n}");
                ingress(q, key, acks).await
            }
            2 => {
                // A burst from concurrent requests: one group commit.
                let keys: Vec<String> = (0..3)
                    .map(|_| {
                        n += 1;
                        format!("wamid.{n}")
                    })
                    .collect();
                let results =
                    futures_util::future::join_all(keys.iter().map(|k| q.ingress(vec![k.clone()], k.clone().into())))
                        .await;
                let mut ok = true;
                for (k, r) in keys.into_iter().zip(results) {
                    match r {
                        Ok(Ingress::Enqueued(id)) => {
                            acks.jobs.insert(k, id);
                        }
                        Ok(Ingress::Duplicate) => {
                            acks.duplicates.insert(k);
                        }
                        Err(_) => ok = false,
                    }
                }
                ok
            }
            3 if n > 0 => {
                // Meta re-delivers something it already sent.
                let key = format!("wamid.{}", rng.random_range(1..=n));
                ingress(q, key, acks).await
            }
            4 => match q.claim(WEBHOOK_QUEUE, 2).await {
                Ok(jobs) => {
                    claimed.extend(jobs);
                    true
                }
                Err(_) => false,
            },
            5 if !claimed.is_empty() => {
                let job = claimed.remove(rng.random_range(0..claimed.len()));
                // As the ingest worker does: the follow-up first, keyed, then done.
                let key = format!("reply:{}", job.id);
                match q.enqueue_unique(key.clone(), q.job("reply", key.clone().into())).await {
                    Ok(Ingress::Enqueued(id)) => {
                        acks.jobs.insert(key, id);
                    }
                    Ok(Ingress::Duplicate) => {
                        acks.duplicates.insert(key);
                    }
                    Err(_) => break,
                }
                match q.finish(&job, JobOutcome::Done).await {
                    Ok(true) => {
                        acks.done.insert(job.id);
                        true
                    }
                    Ok(false) => true,
                    Err(_) => {
                        acks.maybe_done.insert(job.id);
                        false
                    }
                }
            }
            6 if !claimed.is_empty() => {
                let job = claimed.remove(rng.random_range(0..claimed.len()));
                let outcome = JobOutcome::Failed {
                    error: "simulated".into(),
                    retry_in_ms: Some(0),
                };
                q.finish(&job, outcome).await.is_ok()
            }
            _ => true,
        };
        if !ok {
            break;
        }
    }
}

async fn ingress(q: &Queue, key: String, acks: &mut Acks) -> bool {
    match q.ingress(vec![key.clone()], key.clone().into()).await {
        Ok(Ingress::Enqueued(id)) => {
            acks.jobs.insert(key, id);
            true
        }
        Ok(Ingress::Duplicate) => {
            acks.duplicates.insert(key);
            true
        }
        Err(_) => false,
    }
}

/// Runs the workload on a fresh disk with the power cut at backend call `crash_at` (after
/// the journal was created), brings it back by `tear`, reopens and checks.
pub(super) fn run_once(seed: u64, steps: usize, crash_at: Option<u64>, tear: Tear, durability: Durability) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let disk = SimDisk::default();
    let mut acks = Acks::default();
    let mut run = Run::default();
    rt.block_on(async {
        let q = queue_on(&disk, open(&disk).expect("a fresh journal opens"), durability);
        let start = disk.power.calls();
        if let Some(n) = crash_at {
            disk.power.crash_after(n);
        }
        workload(&q, &mut rng, steps, &mut acks).await;
        run.crashed = crash_at.is_some_and(|n| start + n <= disk.power.calls());
        // The process dies: nothing more reaches the disk.
        disk.power.crash_after(1);
        drop(q);
    });
    disk.power_cycle(tear, &mut rng);
    disk.power.restore();
    let mut db = match open(&disk) {
        Ok(db) => db,
        Err(e) => {
            run.violations
                .push(format!("the journal does not open after the power cut: {e}"));
            return run;
        }
    };
    match db.check_integrity() {
        Ok(true) => {}
        other => run
            .violations
            .push(format!("integrity check after reopening: {other:?}")),
    }
    rt.block_on(async {
        let q = queue_on(&disk, db, Durability::Immediate);
        if let Err(e) = q.recover_orphaned_leases(|_| u32::MAX).await {
            run.violations.push(format!("lease recovery failed: {e}"));
            return;
        }
        check(&q, &acks, &mut run);
    });
    run
}

/// The invariants, read straight from the tables.
fn check(q: &Queue, acks: &Acks, run: &mut Run) {
    let db = q.db.get().expect("open");
    let txn = db.begin_read().unwrap();
    let keys: BTreeSet<String> = match txn.open_table(DEDUPE) {
        Ok(t) => t.iter().unwrap().map(|r| r.unwrap().0.value().to_string()).collect(),
        Err(_) => BTreeSet::new(),
    };
    let metas = |def| -> BTreeMap<u64, JobMeta> {
        match txn.open_table(def) {
            Ok(t) => t
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value(), JobMeta::decode(v.value()).unwrap())
                })
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    };
    let (jobs, dead) = (metas(JOBS), metas(DEAD));
    let ready: Vec<u64> = match txn.open_table(READY) {
        Ok(t) => t.iter().unwrap().map(|r| r.unwrap().0.value().2).collect(),
        Err(_) => Vec::new(),
    };
    let leased = txn.open_table(LEASED).map(|t| t.iter().unwrap().count()).unwrap_or(0);
    let v = &mut run.violations;
    for (key, id) in &acks.jobs {
        run.acks_checked += 1;
        if !keys.contains(key) {
            v.push(format!("ACKed {key} lost its dedupe key"));
        }
        let present = jobs.contains_key(id) || dead.contains_key(id);
        if acks.done.contains(id) {
            if present {
                v.push(format!("job {id} ({key}) was confirmed done but came back"));
            }
        } else if !present && !acks.maybe_done.contains(id) {
            v.push(format!("ACKed {key} lost its job {id}"));
        }
    }
    for key in &acks.duplicates {
        run.acks_checked += 1;
        if !keys.contains(key) {
            v.push(format!("ACKed duplicate {key} lost its dedupe key"));
        }
    }
    if leased > 0 || jobs.values().any(|m| m.lease.is_some()) {
        v.push(format!("{leased} leases left after recovery"));
    }
    let mut seen = BTreeSet::new();
    for id in &ready {
        if !seen.insert(*id) {
            v.push(format!("job {id} is in line twice"));
        }
        if !jobs.contains_key(id) {
            v.push(format!("job {id} is in line but has no record"));
        }
    }
    for id in jobs.keys() {
        if !seen.contains(id) {
            v.push(format!("job {id} is neither in line nor leased"));
        }
        if dead.contains_key(id) {
            v.push(format!("job {id} is both queued and dead"));
        }
    }
    // One job per delivery: payloads are the dedupe keys.
    let payloads = txn.open_table(PAYLOADS);
    let mut bodies = BTreeSet::new();
    if let Ok(p) = payloads {
        for id in jobs.keys().chain(dead.keys()) {
            if let Some(b) = p.get(id).unwrap() {
                let body = String::from_utf8_lossy(b.value()).to_string();
                if !bodies.insert(body.clone()) {
                    v.push(format!("{body} is queued twice"));
                }
            }
        }
    }
}

/// How many backend calls the whole workload makes (the crash points to walk).
fn calls_of(seed: u64, steps: usize) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let disk = SimDisk::default();
    let mut rng = StdRng::seed_from_u64(seed);
    rt.block_on(async {
        let q = queue_on(&disk, open(&disk).unwrap(), Durability::Immediate);
        let start = disk.power.calls();
        workload(&q, &mut rng, steps, &mut Acks::default()).await;
        let n = disk.power.calls() - start;
        disk.power.crash_after(1);
        drop(q);
        n
    })
}

/// Totals over many crash points.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    pub(super) points: usize,
    pub(super) crashed: usize,
    pub(super) acks_checked: usize,
    pub(super) failing_points: usize,
    pub(super) first_failures: Vec<String>,
}

/// Every call of a small workload in turn (each with a tear mode in rotation), then
/// `random` more points on longer workloads with random seeds.
pub(super) fn sweep(base_seed: u64, random: usize, durability: Durability) -> Sweep {
    const STEPS: usize = 24;
    let tears = [Tear::DropAll, Tear::Prefix, Tear::Subset];
    let mut out = Sweep::default();
    let mut record = |run: Run, what: String| {
        out.points += 1;
        out.crashed += usize::from(run.crashed);
        out.acks_checked += run.acks_checked;
        if !run.violations.is_empty() {
            out.failing_points += 1;
            if out.first_failures.len() < 5 {
                out.first_failures
                    .push(format!("{what}: {}", run.violations.join("; ")));
            }
        }
    };
    let total = calls_of(base_seed, STEPS);
    for at in 1..=total {
        let tear = tears[at as usize % tears.len()];
        record(
            run_once(base_seed, STEPS, Some(at), tear, durability),
            format!("seed {base_seed} call {at} {tear:?}"),
        );
    }
    let mut rng = StdRng::seed_from_u64(base_seed ^ 0x5eed);
    for _ in 0..random {
        let seed = rng.random::<u64>();
        let steps = rng.random_range(10..60);
        let at = rng.random_range(1..=calls_of(seed, steps).max(1));
        let tear = tears[rng.random_range(0..tears.len())];
        record(
            run_once(seed, steps, Some(at), tear, durability),
            format!("seed {seed} steps {steps} call {at} {tear:?}"),
        );
    }
    out
}

fn seed() -> u64 {
    std::env::var("FRONTDESK_POWER_LOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(22)
}

#[test]
fn no_acknowledged_delivery_is_lost_at_any_power_cut() {
    let started = std::time::Instant::now();
    let s = sweep(seed(), 40, Durability::Immediate);
    eprintln!(
        "power loss: {} crash points ({} hit mid-workload), {} ACKs checked, {} points with violations, {:.1} s",
        s.points,
        s.crashed,
        s.acks_checked,
        s.failing_points,
        started.elapsed().as_secs_f64()
    );
    assert!(s.points >= 200, "only {} crash points", s.points);
    assert!(s.failing_points == 0, "violations: {:#?}", s.first_failures);
}

/// The harness can fail: commits without durability (no fsync, the header not made
/// durable) acknowledge deliveries a power cut then takes back, and it must say so.
#[test]
fn the_harness_catches_acks_that_were_never_made_durable() {
    let s = sweep(seed(), 20, Durability::None);
    eprintln!(
        "negative control (Durability::None): {} of {} crash points lost ACKs, e.g. {:?}",
        s.failing_points,
        s.points,
        s.first_failures.first()
    );
    assert!(
        s.failing_points > 0,
        "the planted bug went unnoticed at {} points",
        s.points
    );
    assert!(
        s.first_failures.iter().any(|f| f.contains("ACKed")),
        "{:#?}",
        s.first_failures
    );
}

/// The bench tier: 10,000 random points (`FRONTDESK_POWER_LOSS_POINTS` to change), see
/// benches/README.md.
#[test]
#[ignore = "bench tier: minutes; run with --ignored"]
fn power_loss_bench_tier() {
    let points = std::env::var("FRONTDESK_POWER_LOSS_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let started = std::time::Instant::now();
    let s = sweep(seed(), points, Durability::Immediate);
    eprintln!(
        "power loss (bench tier): {} crash points, {} ACKs checked, {} failing, {:.0} s",
        s.points,
        s.acks_checked,
        s.failing_points,
        started.elapsed().as_secs_f64()
    );
    assert!(s.failing_points == 0, "violations: {:#?}", s.first_failures);
}

/// An I/O error that passes (the device fails every call for a while, then works, and
/// nothing written is lost): the writer closes the journal, reports `io_error`, opens it
/// again by itself once the device works, and carries on where it was.
#[test]
fn an_io_error_closes_the_journal_and_it_reopens_by_itself() {
    use crate::storage_health::FaultKind;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let disk = SimDisk::default();
    rt.block_on(async {
        let q = queue_on(&disk, open(&disk).unwrap(), Durability::Immediate);
        for i in 0..5 {
            let key = format!("before.{i}");
            q.ingress(vec![key.clone()], key.into()).await.unwrap();
        }
        disk.power.crash_after(1);
        let during = q.ingress(vec!["during".into()], b"during".to_vec()).await;
        assert!(during.is_err(), "nothing is acknowledged while the device fails");
        let fault = q.health().fault().expect("the fault is recorded");
        assert_eq!(fault.kind, FaultKind::Io, "{fault:?}");
        // The device works again; nothing it had was lost.
        disk.power.restore();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while q.ingress(vec!["after".into()], b"after".to_vec()).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "the journal never reopened");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(q.health().fault().is_none(), "a commit ended the fault");
        assert!(q.health().reopens() >= 1);
        for i in 0..5 {
            assert!(q.has_dedupe_key(&format!("before.{i}")).unwrap(), "before.{i} was kept");
        }
        let stats = q.stats().unwrap();
        assert_eq!(
            stats.queues[0].ready, 6,
            "five from before, one after, none twice: {stats:?}"
        );
    });
}
