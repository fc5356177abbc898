//! Process lifecycle with the real binary: SIGTERM drains and exits 0; the queue CLI
//! works both beside a running server (control API) and on a stopped data dir; what the
//! server writes is owner-only whatever the umask.

use std::process::Command;

use crate::support::{BinServer, bin, queue_cli, text_webhook, write_config_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);
    let client = reqwest::Client::new();
    for i in 0..20 {
        let body = text_webhook("P1", "31677777777", &format!("wamid.term-{i}"), "hi");
        let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
        let r = client
            .post(format!("{}/webhook", server.base))
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // While it runs, the queue CLI reaches it through the control API.
    let (ok, out, err) = queue_cli(&config, &["stats", "--json"]);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(stats["dedupe_keys"].as_u64().unwrap() >= 20, "{out}");
    // A stop finishes the batches in hand and leaves the rest in the journal for the next
    // start; this test checks what was ingested, so it stops once the webhook queue is
    // empty (whatever is leased then is finished during the drain).
    let started = std::time::Instant::now();
    loop {
        let (ok, out, err) = queue_cli(&config, &["stats", "--json"]);
        assert!(ok, "{err}");
        let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
        let waiting = stats["queues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["queue"] == frontdesk::queue::WEBHOOK_QUEUE)
            .map(|q| q["ready"].as_u64().unwrap())
            .sum::<u64>();
        if waiting == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "webhooks never taken: {out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = server.sigterm();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        !dir.path().join("data/control.json").exists(),
        "control token removed on clean stop"
    );
    // Stopped: the CLI opens the journal directly.
    let (ok, out, err) = queue_cli(&config, &["stats"]);
    assert!(ok, "{err}");
    assert!(out.contains("dead letters:    0"), "{out}");
    let (ok, out, _) = queue_cli(&config, &["dead"]);
    assert!(ok && out.contains("no dead jobs"), "{out}");
    let (ok, _, err) = queue_cli(&config, &["retry", "12345"]);
    assert!(!ok && err.contains("no dead job with id 12345"), "{err}");
    // Everything acknowledged before the stop is stored.
    let out = Command::new(bin())
        .args(["messages", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    for key in [
        "id",
        "conversation",
        "direction",
        "from",
        "type",
        "text",
        "status",
        "created_at",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key}: {}", lines[0]);
    }
    assert_eq!(lines[0]["direction"], "in");
    assert_eq!(lines[0]["type"], "text");
    assert_eq!(lines[0]["from"], "31677777777");
}

/// SIGHUP (a logrotate hook, a closed terminal, `systemctl reload`) under load: logged
/// once and ignored. Every webhook sent around it is acknowledged and stored, the process
/// keeps serving, and SIGTERM still stops it cleanly. Before, SIGHUP killed it (exit 129).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_is_logged_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "[knowledge]\nembedder = \"none\"\n");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = crate::support::listening_base(&mut child);
    let pid = child.id().to_string();
    let client = reqwest::Client::new();
    let mut sends = Vec::new();
    for i in 0..60 {
        let (client, base) = (client.clone(), base.clone());
        sends.push(tokio::spawn(async move {
            let body = text_webhook("P1", &format!("316888{i:05}"), &format!("wamid.hup-{i}"), "hi");
            let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
            client
                .post(format!("{base}/webhook"))
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
        if i == 30 {
            assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        }
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200, "every webhook around the SIGHUP is acknowledged");
    }
    assert!(child.try_wait().unwrap().is_none(), "still running after SIGHUP");
    assert_eq!(
        client.get(format!("{base}/healthz")).send().await.unwrap().status(),
        200
    );
    // Every acknowledged message is stored by the running server.
    let store = crate::support::open_store(&dir.path().join("data"));
    let start = std::time::Instant::now();
    while store
        .call_blocking(|c| frontdesk::store::list_messages(c, 0, 1_000))
        .unwrap()
        .len()
        < 60
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "acknowledged messages were not stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "SIGTERM still stops it cleanly");
    let logged = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert_eq!(
        logged.matches("SIGHUP received and ignored").count(),
        1,
        "one log line: {logged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_list_works_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let server = BinServer::start(&config);
    let body = text_webhook("P1", "31688888888", "wamid.live-1", "are you open today?");
    let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let start = std::time::Instant::now();
    loop {
        let out = Command::new(bin())
            .args(["messages", "list", "--json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("wamid.live-1") {
            assert!(text.contains("are you open today?"));
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "message never listed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `frontdesk demo` end to end: a customer types in the simulator, the message travels the
/// signed webhook path, the offline responder answers from the demo documents, and the fake Graph API's status
/// webhooks mark the reply delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_answers_a_simulated_customer_with_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("demo"))
        .env("FRONTDESK_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = crate::support::listening_base(&mut child);
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/demo")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("WhatsApp simulator"));
    let r = client
        .post(format!("{base}/demo/api/send"))
        .json(&serde_json::json!({ "wa_id": "31612345001", "name": "Anna", "text": "Do you repair e-bikes?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let start = std::time::Instant::now();
    loop {
        let chat: Vec<serde_json::Value> = client
            .get(format!("{base}/demo/api/chat?wa_id=31612345001"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let delivered = chat
            .iter()
            .any(|m| m["direction"] == "out" && ["delivered", "read"].contains(&m["status"].as_str().unwrap_or("")));
        if delivered {
            assert_eq!(chat[0]["direction"], "in");
            assert_eq!(chat[0]["text"], "Do you repair e-bikes?");
            // The offline responder answered from the demo knowledge base, loaded at start.
            let reply = chat[1]["text"].as_str().unwrap_or_default();
            assert!(
                reply.contains("automated assistant") && reply.contains("(From: "),
                "{reply}"
            );
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no delivered reply: {chat:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The order-status tool: a customer asking about their own order gets its status (the
    // number typed the way customers type it, read as SS-10421 through the tool's
    // `id_prefixes`); someone else asking about it is handed to a person.
    for (wa_id, text) in [
        ("31615552290", "where is my order ss 10421??"),
        ("31600000077", "where is order SS-10421?"),
    ] {
        let r = client
            .post(format!("{base}/demo/api/send"))
            .json(&serde_json::json!({ "wa_id": wa_id, "name": "C", "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let start = std::time::Instant::now();
    let reply_to = |chat: &[serde_json::Value]| {
        chat.iter()
            .find(|m| m["direction"] == "out")
            .and_then(|m| m["text"].as_str().map(str::to_string))
    };
    loop {
        let own: Vec<serde_json::Value> = client
            .get(format!("{base}/demo/api/chat?wa_id=31615552290"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let other: Vec<serde_json::Value> = client
            .get(format!("{base}/demo/api/chat?wa_id=31600000077"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let (Some(a), Some(b)) = (reply_to(&own), reply_to(&other)) {
            assert!(
                a.contains("Order SS-10421: shipped with PostNL (tracking 3SSPKR1042139)"),
                "{a}"
            );
            assert!(!b.contains("PostNL") && b.contains("teammate"), "{b}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no order answers: {own:?} {other:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

/// Every directory under `root` is 0700 and every file 0600; returns the paths seen.
fn assert_owner_only(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{} is a directory with mode {mode:o}", p.display());
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{} is a file with mode {mode:o}", p.display());
        }
        seen.push(p);
    }
    seen
}

/// Started by hand under umask 000 (no systemd unit to narrow it), the server creates
/// the data dir, its stores (with SQLite's -wal and -shm), the media store and backups
/// owner-only, and so do the CLI's backup and restore: customers' messages and files are
/// not readable by other local users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_media_and_backups_are_owner_only_whatever_the_umask() {
    use crate::support::{SECRET, TOKEN, VERIFY};
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    let sticker = b"RIFF\x10\x00\x00\x00WEBPVP8 sticker".to_vec();
    graph.add_media("4242", "image/webp", sticker.clone());
    let (data, backups) = (dir.path().join("data"), dir.path().join("backups"));
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[whatsapp]\napp_secret = \"{SECRET}\"\nverify_token = \"{VERIFY}\"\naccess_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n",
            data.to_str().unwrap(),
            graph.base_url()
        ),
    )
    .unwrap();
    // The binary with `args`, under umask 000.
    let permissive = |args: &[&std::ffi::OsStr]| {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 000 && exec \"$@\"", "sh"])
            .arg(bin())
            .args(args)
            .env("FRONTDESK_LOG", "warn");
        c
    };
    let mut child = permissive(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = crate::support::listening_base(&mut child);
    let mut server = BinServer { child, base };
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": "31611112222" }],
            "messages": [{ "from": "31611112222", "id": "wamid.umask", "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(), "type": "sticker", "sticker": { "id": "4242", "mime_type": "image/webp" } }]
        }}]}]
    })
    .to_string();
    let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sha = hex::encode(sha2::Sha256::digest(&sticker));
    let stored = data.join("media").join(&sha[..2]).join(&sha);
    let started = std::time::Instant::now();
    while !stored.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the sticker was not stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A backup asked for through the CLI: the running server writes it, media included.
    let out = backups.join("by-server").join("one");
    let o = Command::new(bin())
        .args(["backup", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env("FRONTDESK_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut seen = assert_owner_only(&data);
    seen.extend(assert_owner_only(&backups));
    for must in [
        data.join("frontdesk.db"),
        data.join("frontdesk.db-wal"),
        data.join("frontdesk.db-shm"),
        data.join("queue.redb"),
        data.join("control.json"),
        stored,
        out.join("media").join(&sha[..2]).join(&sha),
        out.join("manifest.json"),
        out.join("frontdesk.db"),
        out.join("queue.redb"),
    ] {
        assert!(seen.contains(&must), "{} was checked", must.display());
    }
    assert!(server.sigterm().success());
    // The stopped data dir: the CLI takes the backup itself, and restores it elsewhere.
    let out = backups.join("by-cli").join("two");
    let restored = dir.path().join("restored").join("data");
    for args in [
        vec![
            "backup".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        vec![
            "restore".as_ref(),
            "--from".as_ref(),
            out.as_os_str(),
            "--data-dir".as_ref(),
            restored.as_os_str(),
        ],
    ] {
        let o = permissive(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let mut seen = assert_owner_only(&backups);
    seen.extend(assert_owner_only(&dir.path().join("restored")));
    for must in [
        out.join("manifest.json"),
        out.join("media").join(&sha[..2]).join(&sha),
        restored.join("frontdesk.db"),
        restored.join("queue.redb"),
        restored.join("media").join(&sha[..2]).join(&sha),
    ] {
        assert!(seen.contains(&must), "{} was checked", must.display());
    }
}
