//! Power-loss tests of the whole path across both stores: the journal on a simulated redb
//! disk and SQLite (WAL) on a simulated VFS, one power switch for both. Webhooks are
//! acknowledged (ingress returned Ok), claimed, written to SQLite as the ingest worker
//! does (a savepoint per job, `store::apply_events`), reply jobs queued, jobs marked done;
//! reply jobs write their ledger row (idempotency key per message) and queue a send job;
//! send jobs mark the row `sending` durably, hand it to "Meta" (in memory, beyond the
//! power cut, like the real Graph API: it keeps what it accepted) and record the
//! acceptance. The power goes at a chosen storage call and unsynced writes are dropped,
//! torn or reordered. After a restart: SQLite passes `integrity_check`; every job the
//! journal had confirmed done has its message in SQLite (a job is marked done only after
//! its SQLite commit is durable); Meta's status webhooks for what it accepted are applied
//! (`ledger::reconcile`, by the ledger id in the callback data), as they arrive in
//! production before the send worker's reconcile grace ends; once the recovered jobs
//! ran, every acknowledged message is stored exactly once, has exactly one reply row,
//! Meta received exactly one send for it, and nothing is dead. Two negative controls:
//! SQLite with `synchronous=OFF` must be caught losing done messages, and a restart
//! that resends `sending` rows without waiting for Meta's statuses must be caught
//! sending a reply twice.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::Durability;

use crate::queue::power_loss::{open, queue_on};
use crate::queue::{Ingress, JobOutcome, Queue, WEBHOOK_QUEUE};
use crate::sim::power::{Power, Tear};
use crate::sim::redb_disk::SimDisk;
use crate::sim::sqlite_vfs::SimVfs;
use crate::store::Store;

const DB: &str = "/sim/frontdesk.db";

fn body(wamid: &str) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": "31600000001" }],
            "messages": [{ "from": "31600000001", "id": wamid, "timestamp": "1700000000",
                           "type": "text", "text": { "body": format!("hello {wamid}") } }]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

fn wamid_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the workload was told.
#[derive(Debug, Default)]
struct Acks {
    acked: BTreeSet<String>,
    /// Deliveries whose job the journal confirmed done.
    done: BTreeSet<String>,
}

/// The Graph API's side, which a power cut here does not touch: every send it accepted,
/// by the ledger id in its callback data, with the wamid it answered.
#[derive(Debug, Default)]
struct Meta {
    accepted: BTreeMap<i64, Vec<String>>,
    next: u64,
}

impl Meta {
    fn accept(&mut self, ledger_id: i64) -> String {
        self.next += 1;
        let wamid = format!("wamid.meta.{}", self.next);
        self.accepted.entry(ledger_id).or_default().push(wamid.clone());
        wamid
    }
}

/// One reply round as the reply worker leaves it: the reply's ledger row (one per
/// customer message, by its idempotency key) and its send job, then the reply job done.
async fn reply_round(q: &Queue, store: &Store, max: usize) -> Result<usize, ()> {
    let jobs = q.claim("reply", max).await.map_err(drop)?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let wamids: Vec<String> = jobs
        .iter()
        .map(|j| String::from_utf8_lossy(&j.payload).into_owned())
        .collect();
    let ids = store
        .write(move |tx| {
            let mut ids = Vec::new();
            for wamid in &wamids {
                let conversation_id: i64 =
                    tx.query_row("SELECT conversation_id FROM messages WHERE wamid = ?1", [wamid], |r| {
                        r.get(0)
                    })?;
                let new = crate::store::ledger::NewOutbound {
                    conversation_id,
                    author: "bot".into(),
                    body: crate::domain::outbound::OutboundBody::Text {
                        body: format!("re: {wamid}"),
                        preview_url: false,
                    },
                    reply_to: Some(wamid.clone()),
                    idempotency_key: format!("reply:{wamid}"),
                };
                ids.push(crate::store::ledger::insert(tx, &new, 1_700_000_000_000)?.0);
            }
            Ok(ids)
        })
        .await
        .map_err(drop)?;
    for id in ids {
        let job = q.job(crate::outbound::SEND_QUEUE, id.to_string().into_bytes());
        q.enqueue_unique(format!("send:{id}"), job).await.map_err(drop)?;
    }
    let outcomes = jobs.iter().map(|j| (j.id, j.lease_token, JobOutcome::Done)).collect();
    q.finish_many(outcomes).await.map_err(drop)?;
    Ok(jobs.len())
}

/// One send round as `workers::send` does it: a row already accepted is done; otherwise
/// `sending` is made durable before Meta is called, then the acceptance is recorded.
async fn send_round(q: &Queue, store: &Store, meta: &mut Meta, max: usize) -> Result<usize, ()> {
    let jobs = q.claim(crate::outbound::SEND_QUEUE, max).await.map_err(drop)?;
    for j in &jobs {
        let id: i64 = String::from_utf8_lossy(&j.payload).parse().map_err(drop)?;
        let now = 1_700_000_000_000;
        let go = store
            .write(move |tx| crate::store::ledger::mark_sending(tx, id, now))
            .await
            .map_err(drop)?;
        if go {
            let wamid = meta.accept(id);
            store
                .write(move |tx| crate::store::ledger::mark_accepted(tx, id, &wamid, now))
                .await
                .map_err(drop)?;
        }
        q.finish_many(vec![(j.id, j.lease_token, JobOutcome::Done)])
            .await
            .map_err(drop)?;
    }
    Ok(jobs.len())
}

/// Meta's status webhooks for everything it accepted, applied as the ingest of a status
/// does (`ledger::reconcile`, by wamid or by the ledger id in the callback data).
async fn statuses(store: &Store, meta: &Meta) -> Result<(), String> {
    let sent: Vec<(i64, String)> = meta
        .accepted
        .iter()
        .flat_map(|(id, wamids)| wamids.iter().map(move |w| (*id, w.clone())))
        .collect();
    store
        .write(move |tx| {
            for (id, wamid) in &sent {
                let callback = crate::domain::ledger::callback_data(*id);
                crate::store::ledger::reconcile(
                    tx,
                    wamid,
                    Some(&callback),
                    crate::domain::ledger::LedgerState::Delivered,
                    None,
                    None,
                    1_700_000_000_000,
                )?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

/// One ingest round as `workers::ingest` does it: claim, store in one SQLite transaction
/// (a savepoint per job), queue reply jobs, mark done. `Err` once storage fails.
async fn ingest_round(q: &Queue, store: &Store, max: usize, acks: &mut Acks) -> Result<usize, ()> {
    let jobs = q.claim(WEBHOOK_QUEUE, max).await.map_err(drop)?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let parsed: Vec<(u64, Vec<_>)> = jobs
        .iter()
        .map(|j| (j.id, crate::whatsapp::parse::parse_webhook(&j.payload)))
        .collect();
    let reports = store
        .write(move |tx| {
            let mut out = Vec::new();
            for (id, events) in &parsed {
                let sp = tx.savepoint()?;
                out.push(crate::store::apply_events(
                    &sp,
                    *id,
                    events,
                    &[],
                    &Default::default(),
                    None,
                )?);
                sp.commit()?;
            }
            Ok(out)
        })
        .await
        .map_err(drop)?;
    for report in &reports {
        for wamid in &report.answerable {
            let job = q.job("reply", wamid.as_bytes().to_vec());
            q.enqueue_unique(format!("reply:{wamid}"), job).await.map_err(drop)?;
        }
    }
    let outcomes = jobs.iter().map(|j| (j.id, j.lease_token, JobOutcome::Done)).collect();
    q.finish_many(outcomes).await.map_err(drop)?;
    for j in &jobs {
        acks.done.insert(wamid_of(&j.payload));
    }
    Ok(jobs.len())
}

async fn workload(q: &Queue, store: &Store, rng: &mut StdRng, steps: usize, acks: &mut Acks, meta: &mut Meta) {
    let mut n = 0;
    for _ in 0..steps {
        let roll = rng.random_range(0..100);
        let ok = if roll < 15 {
            reply_round(q, store, rng.random_range(1..4)).await.is_ok()
        } else if roll < 30 {
            send_round(q, store, meta, rng.random_range(1..4)).await.is_ok()
        } else if roll < 75 {
            n += 1;
            let wamid = format!("wamid.{n}");
            let keys = crate::whatsapp::dedupe_keys::dedupe_keys(&body(&wamid));
            match q.ingress(keys, body(&wamid)).await {
                Ok(Ingress::Enqueued(_) | Ingress::Duplicate) => {
                    acks.acked.insert(wamid);
                    true
                }
                Err(_) => false,
            }
        } else {
            ingest_round(q, store, rng.random_range(1..4), acks).await.is_ok()
        };
        if !ok {
            break;
        }
    }
}

/// One machine: both stores on one power switch.
struct Machine {
    power: Power,
    disk: SimDisk,
    vfs: SimVfs,
}

impl Machine {
    fn new() -> Machine {
        let power = Power::default();
        Machine {
            disk: SimDisk::on(&power),
            vfs: SimVfs::new(&power),
            power,
        }
    }

    fn open(&self, synchronous: &'static str) -> (Queue, Store) {
        let q = queue_on(
            &self.disk,
            open(&self.disk).expect("the journal opens"),
            Durability::Immediate,
        );
        let store = Store::open_in_vfs(DB, self.vfs.name(), synchronous).expect("SQLite opens");
        (q, store)
    }
}

fn stored(store: &Store) -> Result<BTreeMap<String, usize>, String> {
    let rows = store
        .call_blocking(|c| crate::store::list_messages(c, 0, 1_000_000))
        .map_err(|e| e.to_string())?;
    let mut ids = BTreeMap::new();
    for r in rows {
        *ids.entry(r.id).or_insert(0) += 1;
    }
    Ok(ids)
}

/// Runs the workload with the power cut at storage call `crash_at`, restarts, checks.
/// Returns (ACKs checked, replies checked against Meta, violations).
fn run_once(seed: u64, steps: usize, crash_at: u64, tear: Tear, fault: Fault) -> (usize, usize, Vec<String>) {
    let synchronous = if fault == Fault::SqliteUnsynced { "OFF" } else { "FULL" };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let m = Machine::new();
    let mut acks = Acks::default();
    let mut meta = Meta::default();
    rt.block_on(async {
        let (q, store) = m.open(synchronous);
        m.power.crash_after(crash_at);
        workload(&q, &store, &mut rng, steps, &mut acks, &mut meta).await;
        // The process dies: nothing more reaches storage.
        m.power.crash_after(1);
        drop(q);
        drop(store);
    });
    m.disk.power_cycle(tear, &mut rng);
    m.vfs.power_cycle(tear, &mut rng);
    m.power.restore();
    let mut v = Vec::new();
    let mut replies_checked = 0;
    rt.block_on(async {
        let (q, store) = m.open("FULL");
        match store.call_blocking(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?)) {
            Ok(ok) if ok == "ok" => {}
            other => v.push(format!("SQLite integrity_check: {other:?}")),
        }
        let before = stored(&store).unwrap_or_default();
        for wamid in &acks.done {
            if !before.contains_key(wamid) {
                v.push(format!("{wamid}: its job was done but SQLite lost the message"));
            }
        }
        if let Err(e) = q.recover_orphaned_leases(|_| u32::MAX).await {
            v.push(format!("lease recovery: {e}"));
            return;
        }
        if fault != Fault::ResendWithoutStatuses
            && let Err(e) = statuses(&store, &meta).await
        {
            v.push(format!("status webhooks after the restart: {e}"));
            return;
        }
        let mut rounds = 0;
        loop {
            let ingested = ingest_round(&q, &store, 8, &mut Acks::default()).await;
            let replied = reply_round(&q, &store, 8).await;
            let sent = send_round(&q, &store, &mut meta, 8).await;
            match (ingested, replied, sent) {
                (Ok(0), Ok(0), Ok(0)) => break,
                (Ok(_), Ok(_), Ok(_)) => rounds += 1,
                _ => {
                    v.push("a worker round after the restart failed".into());
                    return;
                }
            }
            assert!(rounds < 1_000, "the queues never drained");
        }
        let after = stored(&store).unwrap_or_default();
        for wamid in &acks.acked {
            match after.get(wamid) {
                None => v.push(format!("ACKed {wamid} is not stored")),
                Some(1) => {}
                Some(n) => v.push(format!("{wamid} is stored {n} times")),
            }
        }
        let stats = q.stats().unwrap();
        if stats.dead > 0 || stats.leased > 0 {
            v.push(format!("after draining: {stats:?}"));
        }
        // One reply row per acknowledged message, sent to Meta exactly once.
        let rows: Vec<(i64, String, String)> = store
            .call_blocking(|c| {
                let mut st = c.prepare("SELECT id, reply_to, state FROM outbound ORDER BY id")?;
                let rows = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .unwrap_or_default();
        replies_checked = rows.len();
        let mut replies: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, reply_to, state) in &rows {
            *replies.entry(reply_to.as_str()).or_insert(0) += 1;
            match meta.accepted.get(id).map_or(0, Vec::len) {
                1 => {}
                n => v.push(format!("the reply to {reply_to} (row {id}) reached Meta {n} times")),
            }
            if state == "queued" || state == "sending" {
                v.push(format!("the reply to {reply_to} is still {state}"));
            }
        }
        for wamid in &acks.acked {
            match replies.get(wamid.as_str()) {
                Some(1) => {}
                n => v.push(format!("ACKed {wamid} has {n:?} reply rows")),
            }
        }
    });
    (acks.acked.len(), replies_checked, v)
}

/// What a run plants (the controls), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// SQLite never syncs (`synchronous=OFF`).
    SqliteUnsynced,
    /// After the restart `sending` rows are resent before Meta's statuses arrive.
    ResendWithoutStatuses,
}

/// How many storage calls the whole workload makes.
fn calls_of(seed: u64, steps: usize) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let m = Machine::new();
    rt.block_on(async {
        let (q, store) = m.open("FULL");
        let start = m.power.calls();
        workload(&q, &store, &mut rng, steps, &mut Acks::default(), &mut Meta::default()).await;
        let n = m.power.calls() - start;
        m.power.crash_after(1);
        drop(q);
        drop(store);
        n
    })
}

#[derive(Debug, Default)]
struct Sweep {
    points: usize,
    acks: usize,
    replies: usize,
    failing: usize,
    first: Vec<String>,
}

/// `points` crash points spread evenly over a workload's storage calls, tear modes in
/// rotation, each on the same seeded workload.
fn sweep(seed: u64, steps: usize, points: u64, fault: Fault) -> Sweep {
    let total = calls_of(seed, steps);
    let tears = [Tear::DropAll, Tear::Prefix, Tear::Subset];
    let mut out = Sweep::default();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc0ffee);
    for i in 0..points {
        // Evenly spread, jittered within its stride, so every region of the run is hit.
        let stride = (total / points).max(1);
        let at = (i * stride + rng.random_range(0..stride)).clamp(1, total);
        let tear = tears[i as usize % tears.len()];
        let (acks, replies, v) = run_once(seed, steps, at, tear, fault);
        out.points += 1;
        out.acks += acks;
        out.replies += replies;
        if !v.is_empty() {
            out.failing += 1;
            if out.first.len() < 5 {
                out.first
                    .push(format!("seed {seed} call {at}/{total} {tear:?}: {}", v.join("; ")));
            }
        }
    }
    out
}

#[test]
fn no_acknowledged_message_is_lost_across_both_stores_at_a_power_cut() {
    let started = std::time::Instant::now();
    let s = sweep(22, 40, 120, Fault::None);
    eprintln!(
        "power loss, journal + SQLite: {} crash points, {} ACKs checked, {} replies checked against Meta, {} failing, {:.1} s",
        s.points,
        s.acks,
        s.replies,
        s.failing,
        started.elapsed().as_secs_f64()
    );
    assert!(s.failing == 0, "violations: {:#?}", s.first);
    assert!(
        s.replies > s.points,
        "the workload reaches the send step: {} replies",
        s.replies
    );
}

/// The harness can fail: SQLite without fsync (`synchronous=OFF`) loses commits the
/// journal already counted as done.
#[test]
fn the_harness_catches_sqlite_commits_that_were_never_synced() {
    let s = sweep(22, 40, 60, Fault::SqliteUnsynced);
    eprintln!(
        "negative control (synchronous=OFF): {} of {} crash points failed, e.g. {:?}",
        s.failing,
        s.points,
        s.first.first()
    );
    assert!(s.failing > 0, "the planted bug went unnoticed at {} points", s.points);
}

/// The harness can fail on the send path too: a restart that resends the rows left
/// `sending` before Meta's status webhooks reconcile them sends a reply twice.
#[test]
fn the_harness_catches_a_resend_before_the_statuses_arrive() {
    let s = sweep(22, 40, 60, Fault::ResendWithoutStatuses);
    eprintln!(
        "negative control (resend without statuses): {} of {} crash points failed, e.g. {:?}",
        s.failing,
        s.points,
        s.first.first()
    );
    assert!(s.failing > 0, "the planted bug went unnoticed at {} points", s.points);
}

/// An I/O error that passes (every call fails for a while, nothing written is lost): the
/// SQLite writer reports `io_error`, opens its connection again by itself once the
/// device works, and what was committed before is still there. (Here SQLite's old
/// connection would also have recovered; the writer reopens anyway, as after a failed
/// fsync the page cache may no longer match the file.)
#[test]
fn sqlite_reopens_its_write_connection_after_an_io_error() {
    use crate::storage_health::FaultKind;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let m = Machine::new();
    rt.block_on(async {
        let store = Store::open_in_vfs(DB, m.vfs.name(), "FULL").unwrap();
        store
            .write(|c| Ok(c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let put = |n: i64| {
            store.write(move |c| {
                c.execute("INSERT INTO t (id) VALUES (?1)", [n])?;
                Ok(())
            })
        };
        put(1).await.unwrap();
        m.power.crash_after(1);
        assert!(put(2).await.is_err(), "nothing is acknowledged while the device fails");
        let fault = store.health().fault().expect("the fault is recorded");
        assert_eq!(fault.kind, FaultKind::Io, "{fault:?}");
        m.power.restore();
        put(3).await.expect("the writer opens its connection again");
        assert!(store.health().fault().is_none());
        assert_eq!(store.health().reopens(), 1);
        let ids: Vec<i64> = store
            .call_blocking(|c| {
                let mut st = c.prepare("SELECT id FROM t ORDER BY id")?;
                let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(ids, vec![1, 3], "the failed write left nothing, the others are there");
    });
}

/// The bench tier of the whole path: 10,000 crash points (`FRONTDESK_POWER_LOSS_POINTS`
/// to change) over workloads of random seeds (`FRONTDESK_POWER_LOSS_SEED`, 22 by
/// default), 250 points per seed; see benches/README.md.
#[test]
#[ignore = "bench tier: minutes; run with --ignored"]
fn both_stores_power_loss_bench_tier() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let points = env("FRONTDESK_POWER_LOSS_POINTS", 10_000);
    let mut rng = StdRng::seed_from_u64(env("FRONTDESK_POWER_LOSS_SEED", 22));
    let started = std::time::Instant::now();
    let mut total = Sweep::default();
    let mut left = points;
    while left > 0 {
        let n = left.min(250);
        let s = sweep(rng.random(), rng.random_range(20..60), n, Fault::None);
        total.points += s.points;
        total.acks += s.acks;
        total.replies += s.replies;
        total.failing += s.failing;
        total.first.extend(s.first);
        left -= n;
    }
    eprintln!(
        "power loss, journal + SQLite (bench tier): {} crash points, {} ACKs checked, {} replies checked against Meta, {} failing, {:.0} s",
        total.points,
        total.acks,
        total.replies,
        total.failing,
        started.elapsed().as_secs_f64()
    );
    assert!(total.failing == 0, "violations: {:#?}", total.first);
}
