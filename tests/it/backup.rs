//! Backups with the real binary: taken while webhooks keep arriving, restored into a new
//! data dir where every message acknowledged before the backup appears; a damaged or
//! foreign backup is refused with a clear message and nothing changed; a stopped data dir
//! copied with `cp -a` serves as is; a backup of a stopped server works without it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use frontdesk::whatsapp::signature::sign;

use crate::support::{BinServer, SECRET, bin, open_store, text_webhook, write_config_file};

async fn post(client: &reqwest::Client, base: &str, wamid: &str, i: usize) -> bool {
    let body = text_webhook("P1", &format!("3161{:07}", i % 40), wamid, &format!("message {i}"));
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    matches!(client.post(format!("{base}/webhook")).header("x-hub-signature-256", sig).body(body).timeout(Duration::from_secs(5)).send().await, Ok(r) if r.status().as_u16() == 200)
}

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(bin())
        .args(args)
        .env("FRONTDESK_LOG", "warn")
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Waits until every one of `wamids` is stored in `data_dir`.
async fn wait_for_all(data_dir: &Path, wamids: &[String]) {
    let store = open_store(data_dir);
    let start = Instant::now();
    loop {
        let rows = store
            .call_blocking(|c| frontdesk::store::list_messages(c, 0, 1_000_000))
            .unwrap();
        let have: BTreeSet<String> = rows.into_iter().map(|r| r.id).collect();
        let missing = wamids.iter().filter(|w| !have.contains(*w)).count();
        if missing == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{missing} of {} acknowledged messages missing in {}",
            wamids.len(),
            data_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);
    let client = reqwest::Client::new();
    let mut before = Vec::new();
    for i in 0..200 {
        let w = format!("wamid.before-{i:04}");
        if post(&client, &server.base, &w, i).await {
            before.push(w);
        }
    }
    assert_eq!(before.len(), 200);
    // Keep webhooks coming while the server takes the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, client, base) = (stop.clone(), client.clone(), server.base.clone());
        tokio::spawn(async move {
            let mut acked = 0usize;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                acked += usize::from(post(&client, &base, &format!("wamid.during-{i:05}"), i).await);
                i += 1;
            }
            (i, acked)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = dir.path().join("backup-1");
    let (cfg, o) = (config.to_str().unwrap().to_string(), out.to_str().unwrap().to_string());
    let (ok, text) = tokio::task::spawn_blocking(move || run(&["backup", "--config", &cfg, "--out", &o]))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (sent, acked) = load.await.unwrap();
    assert!(ok, "{text}");
    assert!(
        text.contains("the server is running") && text.contains("backup written to"),
        "{text}"
    );
    assert!(
        sent > 0 && acked == sent,
        "the server kept acknowledging during the backup: {acked} of {sent}"
    );
    let (ok, text) = run(&["restore", "--from", out.to_str().unwrap(), "--verify"]);
    assert!(ok && text.contains("backup verified"), "{text}");

    // Restore into a fresh data dir and serve it: everything acknowledged before is there
    // (what the journal held but had not stored yet is ingested after the restore).
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = write_config_file(dir2.path(), "");
    let data2 = dir2.path().join("data");
    let (ok, text) = run(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data-dir",
        data2.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let mut restored = BinServer::start(&config2);
    wait_for_all(&data2, &before).await;

    // Restoring over a data dir with stores needs --force, and never while it serves.
    let (ok, text) = run(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data-dir",
        data2.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--force"), "{text}");
    let (ok, text) = run(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data-dir",
        data2.to_str().unwrap(),
        "--force",
    ]);
    assert!(!ok && text.contains("server is running"), "{text}");
    restored.sigterm();
    let (ok, text) = run(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data-dir",
        data2.to_str().unwrap(),
        "--force",
    ]);
    assert!(ok && text.contains("kept the replaced file"), "{text}");
    assert!(std::fs::read_dir(&data2).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("frontdesk.db.before-restore-")
    }));
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backups_are_refused_and_a_stopped_data_dir_copies_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);
    let client = reqwest::Client::new();
    let wamids: Vec<String> = (0..50).map(|i| format!("wamid.copy-{i:03}")).collect();
    for (i, w) in wamids.iter().enumerate() {
        assert!(post(&client, &server.base, w, i).await);
    }
    wait_for_all(&dir.path().join("data"), &wamids).await;
    server.sigterm();
    // A customer's file in the media store goes along with the stores.
    let voice = b"OggS a customer's voice note".to_vec();
    let sha = frontdesk::media::MediaFiles::new(&dir.path().join("data"))
        .put(&voice)
        .unwrap();

    // A stopped server: the CLI opens the stores itself.
    let out = dir.path().join("backup");
    let (ok, text) = run(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok && !text.contains("the server is running"), "{text}");
    assert!(text.contains("50 messages"), "{text}");
    let (ok, text) = run(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("not empty"),
        "an existing backup is never overwritten: {text}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["media"],
        serde_json::json!({ "files": 1, "bytes": voice.len() })
    );
    let restored = dir.path().join("restored");
    let (ok, text) = run(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(restored.join("media").join(&sha[..2]).join(&sha)).unwrap(),
        voice,
        "the media file is restored"
    );
    // A changed media file in a backup is refused, naming it.
    let tampered = dir.path().join("tampered");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&out)
            .arg(&tampered)
            .status()
            .unwrap()
            .success()
    );
    let copy = tampered.join("media").join(&sha[..2]).join(&sha);
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, b"OggS something else").unwrap();
    let (ok, text) = run(&["restore", "--from", tampered.to_str().unwrap(), "--verify"]);
    assert!(
        !ok && text.contains(&sha) && text.contains("is damaged") && text.contains("use another backup"),
        "{text}"
    );

    // One flipped byte: refused, naming the file, and the target is left alone.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in ["manifest.json", "frontdesk.db", "queue.redb"] {
        std::fs::copy(out.join(f), damaged.join(f)).unwrap();
    }
    let db = damaged.join("frontdesk.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&db, bytes).unwrap();
    let target = dir.path().join("target");
    let (ok, text) = run(&[
        "restore",
        "--from",
        damaged.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("damaged") && text.contains("frontdesk.db") && text.contains("use another backup"),
        "{text}"
    );
    assert!(!target.join("frontdesk.db").exists());
    // Not a backup at all.
    let (ok, text) = run(&[
        "restore",
        "--from",
        dir.path().join("data").to_str().unwrap(),
        "--verify",
    ]);
    assert!(
        !ok && text.contains("not a frontdesk backup") && text.contains("cp -a"),
        "{text}"
    );

    // `cp -a` of the stopped data dir serves as is.
    let dir2 = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(dir.path().join("data"))
        .arg(dir2.path().join("data"))
        .status()
        .unwrap();
    assert!(status.success());
    let config2 = write_config_file(dir2.path(), "");
    let mut copy = BinServer::start(&config2);
    wait_for_all(&dir2.path().join("data"), &wamids).await;
    copy.sigterm();
}

/// A manifest is data from outside: an entry naming a path outside the backup (or any
/// file but the two stores), or a checksum that is not hex, is refused — by `--verify` and
/// by a real restore — naming the entry, without a panic and without writing anything.
#[test]
fn tampered_manifests_are_refused_naming_the_entry_and_nothing_is_written() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let out = dir.path().join("backup");
    let (ok, text) = run(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    // The file an entry `../evil.txt` points at, with the right checksum.
    let evil = b"planted by whoever edited the manifest";
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("evil.txt"), evil).unwrap();
    let evil_sha = hex::encode(sha2::Sha256::digest(evil));
    let absolute = dir.path().join("absolute.txt");
    std::fs::write(&absolute, evil).unwrap();
    let not_hex = format!("a{}", "é".repeat(40));
    // (what to change, what the message says)
    type Tamper = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Tamper, String)> = vec![
        (
            "dot-dot",
            Box::new(move |m| {
                m["files"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({ "name": "../evil.txt", "bytes": evil.len(), "sha256": evil_sha }))
            }),
            "file entry 2 names \"../evil.txt\"".into(),
        ),
        (
            "absolute",
            {
                let (name, sha) = (
                    absolute.to_str().unwrap().to_string(),
                    hex::encode(sha2::Sha256::digest(evil)),
                );
                Box::new(move |m| {
                    m["files"][1] = serde_json::json!({ "name": name, "bytes": evil.len(), "sha256": sha })
                })
            },
            format!("file entry 1 names {:?}", absolute.to_str().unwrap()),
        ),
        (
            "non-hex checksum",
            Box::new(move |m| m["files"][0]["sha256"] = serde_json::json!(not_hex)),
            "file entry 0 (frontdesk.db) has the checksum".into(),
        ),
    ];
    for (name, tamper, want) in cases {
        let tampered = work.join("backup");
        let _ = std::fs::remove_dir_all(&tampered);
        assert!(
            Command::new("cp")
                .arg("-a")
                .arg(&out)
                .arg(&tampered)
                .status()
                .unwrap()
                .success()
        );
        let mut m = manifest.clone();
        tamper(&mut m);
        std::fs::write(tampered.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let target = dir.path().join(format!("target-{}", name.replace(' ', "-")));
        let data = target.join("data");
        for args in [vec!["--verify"], vec!["--data-dir", data.to_str().unwrap()]] {
            let o = Command::new(bin())
                .args(["restore", "--from", tampered.to_str().unwrap()])
                .args(&args)
                .env("FRONTDESK_LOG", "warn")
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                o.status.code(),
                Some(1),
                "{name} {args:?}: refused, not a panic: {text}"
            );
            assert!(
                text.contains(&want) && text.contains("use another backup") && !text.contains("panicked"),
                "{name} {args:?}: {text}"
            );
        }
        assert!(
            !target.join("evil.txt").exists() && !data.join("frontdesk.db").exists(),
            "{name}: nothing was written"
        );
        assert!(
            !target.exists()
                || std::fs::read_dir(&target)
                    .unwrap()
                    .all(|e| e.unwrap().file_name() == "data"),
            "{name}: nothing beside the data dir"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_messages_with_their_records_and_keeps_the_rest() {
    let server = crate::support::TestServer::start_with(|c| c.bot.enabled = false).await;
    for i in 0..10 {
        let body = text_webhook(
            "P1",
            "31612345678",
            &format!("wamid.ret-{i}"),
            &format!("parcel question {i}"),
        );
        assert_eq!(server.post_webhook(body.as_bytes()).await, 200);
    }
    server.drain().await;
    server
        .wait_until("ten messages stored", |s| s.inbound().len() == 10)
        .await;
    let old = frontdesk::domain::now_ms() - 40 * 86_400_000;
    server
        .app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE messages SET created_at = ?1 WHERE wamid IN ('wamid.ret-0','wamid.ret-1','wamid.ret-2','wamid.ret-3')", [old])?))
        .unwrap();
    let cutoff = frontdesk::domain::now_ms() - 30 * 86_400_000;
    // Two batches of at most 3: everything older than 30 days goes, nothing newer.
    let first = server
        .app()
        .store
        .call_blocking(move |c| frontdesk::store::retention::delete_before(c, cutoff, 3))
        .unwrap();
    let second = server
        .app()
        .store
        .call_blocking(move |c| frontdesk::store::retention::delete_before(c, cutoff, 3))
        .unwrap();
    let third = server
        .app()
        .store
        .call_blocking(move |c| frontdesk::store::retention::delete_before(c, cutoff, 3))
        .unwrap();
    assert_eq!((first, second, third), (3, 1, 0));
    let left: Vec<String> = server.inbound().into_iter().map(|m| m.id).collect();
    assert_eq!(left.len(), 6);
    assert!(
        !left
            .iter()
            .any(|w| ["wamid.ret-0", "wamid.ret-1", "wamid.ret-2", "wamid.ret-3"].contains(&w.as_str()))
    );
    // The search index forgot them too.
    assert_eq!(
        server.query_i64("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'parcel'"),
        6
    );
}
