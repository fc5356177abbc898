//! The hard invariant: a webhook answered 200 is never lost, even when the process is
//! killed with SIGKILL mid-stream, and nothing is stored twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use frontdesk::whatsapp::signature::sign;

use crate::support::{BinServer, SECRET, open_store, text_webhook, write_config_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_200_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);
    let base = server.base.clone();
    let total = 800usize;
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().pool_max_idle_per_host(32).build().unwrap();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (acked, sent, client, base) = (acked.clone(), sent.clone(), client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < total {
                let wamid = format!("wamid.crash-{i:05}");
                let body = text_webhook("P1", &format!("3160{:07}", i % 50), &wamid, &format!("message {i}"));
                let sig = sign(SECRET.as_bytes(), body.as_bytes());
                sent.fetch_add(1, Ordering::Relaxed);
                let r = client
                    .post(format!("{base}/webhook"))
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status().as_u16() == 200
                {
                    acked.lock().unwrap().push(wamid);
                }
                i += 16;
            }
        }));
    }
    // Kill mid-stream: once a good share is acknowledged, but well before the end.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 250 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server too slow to acknowledge"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        acked.len() < total,
        "the kill came too late to test anything ({} of {total} acked)",
        acked.len()
    );
    assert!(sent >= 500, "at least 500 webhooks must be sent ({sent})");

    // Restart on the same data dir; the workers drain what was journaled.
    let server = BinServer::start(&config);
    let store = open_store(&dir.path().join("data"));
    let start = Instant::now();
    let stored: Vec<String> = loop {
        let rows = store
            .call_blocking(|c| frontdesk::store::list_messages(c, 0, 1_000_000))
            .unwrap();
        let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        let have: BTreeSet<&String> = ids.iter().collect();
        if acked.iter().all(|a| have.contains(a)) {
            break ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "acknowledged messages missing after restart: {} of {}",
            acked.iter().filter(|a| !have.contains(a)).count(),
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let distinct: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "a message was stored twice");
    // Meta re-delivers what it did not see acknowledged (and some it did): still one row each.
    let client = reqwest::Client::new();
    for i in (0..total).step_by(7) {
        let body = text_webhook(
            "P1",
            &format!("3160{:07}", i % 50),
            &format!("wamid.crash-{i:05}"),
            &format!("message {i}"),
        );
        let sig = sign(SECRET.as_bytes(), body.as_bytes());
        let r = client
            .post(format!("{}/webhook", server.base))
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let resent: BTreeSet<String> = (0..total).step_by(7).map(|i| format!("wamid.crash-{i:05}")).collect();
    let start = Instant::now();
    loop {
        let rows = store
            .call_blocking(|c| frontdesk::store::list_messages(c, 0, 1_000_000))
            .unwrap();
        let have: BTreeSet<String> = rows.into_iter().map(|r| r.id).collect();
        if acked.iter().chain(resent.iter()).all(|a| have.contains(a)) {
            assert!(have.len() <= total);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "re-delivered messages not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dupes: i64 = store
        .call_blocking(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) - COUNT(DISTINCT wamid) FROM messages", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(dupes, 0);
    eprintln!(
        "crash test: sent {sent}, acknowledged {} before kill -9, all stored once",
        acked.len()
    );
}

/// The process dies after Meta accepted a reply but before the ledger recorded it. On
/// restart the row is `sending` (outcome unknown); it must not be sent again blindly:
/// Meta's status webhook (carrying the ledger id) reconciles it within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_meta_accept_and_ledger_commit_does_not_resend() {
    use frontdesk::http::fake_graph::{Failure, FakeGraph};

    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(crate::support::TOKEN).await.unwrap();
    // A fixed port, so Meta's (the fake's) retried status webhooks reach the restarted server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config_file(
        dir.path(),
        &format!(
            "access_token = \"{}\"\ngraph_base_url = \"{}\"\nrequest_timeout_ms = 30000\n[send]\nreconcile_grace_ms = 20000\npair_interval_ms = 0\n",
            crate::support::TOKEN,
            graph.base_url()
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&config, text).unwrap();
    graph.set_webhook(&format!("http://127.0.0.1:{port}/webhook"), SECRET);
    // Meta takes the message, then the answer hangs; statuses arrive while we are dead.
    graph.fail_next(Failure::AcceptThenHang { ms: 60_000 }, 1);
    let mut server = BinServer::start(&config);
    let body = text_webhook("P1", "31699999999", "wamid.crash-accept", "where is my parcel?");
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let start = Instant::now();
    while graph.sent().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the reply never reached the Graph API"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    let store = open_store(&dir.path().join("data"));
    let state = |store: &frontdesk::store::Store| -> String {
        store
            .call_blocking(|c| Ok(c.query_row("SELECT state FROM outbound", [], |r| r.get(0))?))
            .unwrap()
    };
    assert_eq!(state(&store), "sending", "killed before the acceptance was recorded");

    let _server = BinServer::start(&config);
    let start = Instant::now();
    loop {
        let s = state(&store);
        if ["sent", "delivered", "read"].contains(&s.as_str()) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "not reconciled: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Well past the first retry opportunities: still exactly one send.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(graph.sent().len(), 1, "the reply was sent twice");
    let wamid: String = store
        .call_blocking(|c| Ok(c.query_row("SELECT wamid FROM outbound", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(wamid, graph.sent()[0].wamid);
}
