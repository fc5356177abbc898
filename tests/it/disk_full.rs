//! A full disk heals itself: the real server with its data dir on a small tmpfs, webhooks
//! until the disk is full, then space freed while it runs. While full: every webhook it
//! does not store gets a 503 (never a 200), `/healthz` and the inbox answer, `/readyz`
//! names the cause, a metric counts it. After space returns: 200s again without a
//! restart, the queue drains, and every acknowledged message is stored exactly once.
//! Needs root (mount); SKIPPED otherwise unless FRONTDESK_REQUIRE_MOUNT is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{TestServer, text_webhook};

/// A tmpfs mounted for one test, unmounted (lazily, so a straggler cannot block it) on drop.
pub struct Tmpfs {
    pub point: PathBuf,
}

impl Tmpfs {
    /// Mounts a `size` tmpfs at `point`; `None` (after saying SKIPPED) where that cannot be
    /// done, unless FRONTDESK_REQUIRE_MOUNT is set.
    pub fn mount(point: &Path, size: &str) -> Option<Tmpfs> {
        let required = std::env::var("FRONTDESK_REQUIRE_MOUNT").is_ok_and(|v| v == "1");
        // SAFETY: geteuid only reads the process's user id.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                !required,
                "FRONTDESK_REQUIRE_MOUNT is set but the tests do not run as root"
            );
            eprintln!("SKIPPED: mounting a small filesystem needs root");
            return None;
        }
        std::fs::create_dir_all(point).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(point)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                point: point.to_path_buf(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(!required, "FRONTDESK_REQUIRE_MOUNT is set but mount failed: {why}");
                eprintln!("SKIPPED: cannot mount a tmpfs here ({why})");
                None
            }
        }
    }

    /// Free bytes on the filesystem.
    pub fn free_bytes(&self) -> u64 {
        let c = std::ffi::CString::new(self.point.to_str().unwrap()).unwrap();
        // SAFETY: statvfs writes into the zeroed struct we pass and reads the C string.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

fn webhook(i: usize) -> (String, String) {
    let wamid = format!("wamid.full-{i:05}");
    // ~2 KB of text: the disk fills after a few hundred messages, not tens of thousands.
    let text = format!("message {i} {}", "x".repeat(2_000));
    (text_webhook("P1", &format!("3160{:07}", i % 40), &wamid, &text), wamid)
}

/// Appends to `path` until the filesystem has no byte left.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.write_all(&chunk[..1]);
}

fn metric_line(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse::<f64>().unwrap()))
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_webhooks_then_heals_without_a_restart() {
    let outer = tempfile::tempdir().unwrap();
    // Declared first: dropped last, after the server has let go of its files.
    let Some(fs) = Tmpfs::mount(&outer.path().join("fs"), "24m") else {
        return;
    };
    let data = fs.point.join("data");
    let started = Instant::now();
    let server = TestServer::start_with(|c| {
        c.storage.data_dir = data.clone();
        // Retrieval plays no part here; BM25 alone starts faster.
        c.knowledge.embedder = frontdesk::config::EmbedderKind::None;
    })
    .await;
    // A session made while there is space: the inbox must still read while full.
    let app = server.app();
    let user = frontdesk::accounts::add_user(
        &app.store,
        "owner@shop.example",
        frontdesk::domain::auth::Role::Admin,
        "correct horse battery",
        false,
        "test",
    )
    .await
    .unwrap();
    let (token, _) = frontdesk::accounts::start_session(&app.store, user).await.unwrap();
    let cookie = format!("fd_session={token}");

    // Leave about 3 MB: a few hundred webhooks fill it.
    let filler = fs.point.join("filler");
    let free = fs.free_bytes();
    let keep = 3 * 1024 * 1024;
    std::fs::write(&filler, vec![0u8; free.saturating_sub(keep) as usize]).unwrap();

    // Eight clients post until the server has refused for a while.
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let refused_ids = Arc::new(std::sync::Mutex::new(BTreeSet::<usize>::new()));
    let (next, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (acked, next, refused, refused_ids) = (acked.clone(), next.clone(), refused.clone(), refused_ids.clone());
        let (client, base) = (server.client.clone(), server.base.clone());
        tasks.push(tokio::spawn(async move {
            while refused.load(Ordering::Relaxed) < 40 {
                let i = next.fetch_add(1, Ordering::Relaxed);
                assert!(i < 6_000, "the disk never filled after {i} webhooks");
                let (body, wamid) = webhook(i);
                let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
                let r = client
                    .post(format!("{base}/webhook"))
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        acked.lock().unwrap().insert(wamid);
                    }
                    503 => {
                        assert_eq!(
                            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                            Some("10"),
                            "a 503 tells Meta when to retry"
                        );
                        refused.fetch_add(1, Ordering::Relaxed);
                        refused_ids.lock().unwrap().insert(i);
                    }
                    other => panic!("webhook answered {other}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sent = next.load(Ordering::Relaxed);
    let acked_while_filling = acked.lock().unwrap().len();
    eprintln!(
        "disk full after {sent} webhooks: {acked_while_filling} acknowledged, {} refused ({:.1} s)",
        refused.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );

    // Whatever the server freed since (a failed commit's pages), taken too.
    let top_off = fs.point.join("top-off");
    fill_up(&top_off);
    // Meta keeps retrying what was refused; for two seconds the disk stays full.
    let until = Instant::now() + Duration::from_secs(2);
    let mut retried = 0;
    while Instant::now() < until {
        let ids: Vec<usize> = refused_ids.lock().unwrap().iter().copied().take(10).collect();
        for i in ids {
            let (body, wamid) = webhook(i);
            match server.post_webhook(body.as_bytes()).await {
                200 => {
                    refused_ids.lock().unwrap().remove(&i);
                    acked.lock().unwrap().insert(wamid);
                }
                503 => retried += 1,
                other => panic!("webhook answered {other}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(retried > 0, "the disk stayed full: retries were refused");

    // While full: not ready, and says why, once the journal has used the free pages
    // inside its file (until then it still takes writes, and is ready).
    fill_up(&top_off);
    let mut j = 30_000;
    let body = loop {
        let (status, body) = server.get("/readyz").await;
        if status == 503 && body.contains("journal: disk full") {
            break body;
        }
        assert!(status == 200 || status == 503, "{status} {body}");
        let (hook, wamid) = webhook(j);
        j += 1;
        if server.post_webhook(hook.as_bytes()).await == 200 {
            acked.lock().unwrap().insert(wamid);
        }
        assert!(j < 30_200, "/readyz never named the full disk: {body}");
    };
    eprintln!("/readyz while full: {body}");
    // Alive, reads work, counted in /metrics.
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (_, metrics) = server.get("/metrics").await;
    let errors = metric_line(
        &metrics,
        "frontdesk_storage_write_errors_total{store=\"journal\",kind=\"disk_full\"}",
    );
    assert!(errors >= 1.0, "the journal's disk-full errors are counted");
    let inbox = server
        .client
        .get(format!("{}/app", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status().as_u16(), 200, "the inbox reads while the disk is full");
    assert!(!server.messages().is_empty(), "stored messages can be read while full");

    // Free the space; the same process takes webhooks again.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&top_off).unwrap();
    let freed = Instant::now();
    let mut i = 10_000;
    loop {
        let (body, wamid) = webhook(i);
        i += 1;
        match server.post_webhook(body.as_bytes()).await {
            200 => {
                acked.lock().unwrap().insert(wamid);
                break;
            }
            503 => {}
            other => panic!("webhook answered {other}"),
        }
        assert!(
            freed.elapsed() < Duration::from_secs(15),
            "still refusing webhooks 15 s after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healed_ms = freed.elapsed().as_millis();
    // Meta's retries of everything refused now go through.
    let still_refused: Vec<usize> = refused_ids.lock().unwrap().iter().copied().collect();
    for i in &still_refused {
        let (body, wamid) = webhook(*i);
        assert_eq!(
            server.post_webhook(body.as_bytes()).await,
            200,
            "a retry after the disk healed"
        );
        acked.lock().unwrap().insert(wamid);
    }
    // A few more, now that it takes them.
    for j in 0..20 {
        let (body, wamid) = webhook(20_000 + j);
        assert_eq!(server.post_webhook(body.as_bytes()).await, 200);
        acked.lock().unwrap().insert(wamid);
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().clone();
    server
        .wait_until("every acknowledged message stored", |s| {
            let have: BTreeSet<String> = s.inbound().into_iter().map(|m| m.id).collect();
            acked.iter().all(|a| have.contains(a))
        })
        .await;
    server.drain().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "ready again: {body}");
    let (_, metrics) = server.get("/metrics").await;
    assert_eq!(
        metric_line(
            &metrics,
            "frontdesk_storage_fault{store=\"journal\",kind=\"disk_full\"}"
        ),
        0.0
    );
    assert!(metric_line(&metrics, "frontdesk_storage_reopens_total{store=\"journal\"}") >= 1.0);
    let stats = app.queue.stats().unwrap();
    assert_eq!(
        stats.dead,
        0,
        "no job was dead-lettered by the full disk: {stats:?} {:#?}",
        app.queue.dead(5).unwrap()
    );

    // Exactly once: every ACKed id, none twice.
    let ids: Vec<String> = server.inbound().into_iter().map(|m| m.id).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a message was stored twice");
    eprintln!(
        "healed {healed_ms} ms after space was freed; {retried} retries refused while full; {} refused deliveries \
         retried after; {} acknowledged, {} stored, 0 lost, 0 twice ({:.1} s in all)",
        still_refused.len(),
        acked.len(),
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    server.stop().await;
}

/// SQLite (WAL, `synchronous=FULL`) recovers from SQLITE_FULL on the same connection:
/// the failed batch rolls back whole, the store names the fault, and once space is back
/// the next write commits with no reopen. Nothing acknowledged is lost, nothing half-written
/// is left, and the file passes `integrity_check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_recovers_from_a_full_disk_on_the_same_connection() {
    use frontdesk::storage_health::FaultKind;
    let outer = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&outer.path().join("fs"), "8m") else {
        return;
    };
    let store = frontdesk::store::Store::open(&fs.point.join("frontdesk.db")).unwrap();
    store
        .write(|c| Ok(c.execute_batch("CREATE TABLE ballast (n INTEGER PRIMARY KEY, b BLOB NOT NULL)")?))
        .await
        .unwrap();
    let filler = fs.point.join("filler");
    std::fs::write(&filler, vec![0u8; fs.free_bytes().saturating_sub(1024 * 1024) as usize]).unwrap();
    let insert = |n: i64| {
        store.write(move |c| {
            c.execute("INSERT INTO ballast (n, b) VALUES (?1, zeroblob(65536))", [n])?;
            Ok(())
        })
    };
    let mut committed = 0;
    let err = loop {
        match insert(committed).await {
            Ok(()) => committed += 1,
            Err(e) => break e,
        }
        assert!(committed < 1_000, "the disk never filled");
    };
    assert!(
        matches!(err, frontdesk::Error::Unavailable(_)),
        "a full disk is Unavailable (retry), not Internal: {err}"
    );
    let fault = store.health().fault().expect("the store records the fault");
    assert_eq!(fault.kind, FaultKind::DiskFull, "{fault:?}");
    assert!(insert(10_000).await.is_err(), "still full");

    std::fs::remove_file(&filler).unwrap();
    insert(committed).await.expect("writes work again once space is back");
    assert!(store.health().fault().is_none(), "the fault is over");
    assert_eq!(store.health().reopens(), 0, "SQLite healed on the same connection");
    let (rows, check): (i64, String) = store
        .call_blocking(|c| {
            let rows = c.query_row("SELECT count(*) FROM ballast", [], |r| r.get(0))?;
            let check = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            Ok((rows, check))
        })
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(
        rows,
        committed + 1,
        "every acknowledged insert, none of the refused ones"
    );
    eprintln!("SQLite: {committed} inserts before the disk filled; healed on the same connection");
}
