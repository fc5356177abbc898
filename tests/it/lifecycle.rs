//! Process lifecycle with the real binary: SIGTERM drains and exits 0; the queue CLI
//! works both beside a running server (control API) and on a stopped data dir.

use std::process::Command;

use crate::support::{BinServer, bin, text_webhook, write_config_file};

fn queue_cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).arg("queue").args(args).arg("--config").arg(config).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);
    let client = reqwest::Client::new();
    for i in 0..20 {
        let body = text_webhook("P1", "31677777777", &format!("wamid.term-{i}"), "hi");
        let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
        let r = client.post(format!("{}/webhook", server.base)).header("x-hub-signature-256", sig).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // While it runs, the queue CLI reaches it through the control API.
    let (ok, out, err) = queue_cli(&config, &["stats", "--json"]);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(stats["dedupe_keys"].as_u64().unwrap() >= 20, "{out}");
    let status = server.sigterm();
    assert!(status.success(), "exit status {status:?}");
    assert!(!dir.path().join("data/control.json").exists(), "control token removed on clean stop");
    // Stopped: the CLI opens the journal directly.
    let (ok, out, err) = queue_cli(&config, &["stats"]);
    assert!(ok, "{err}");
    assert!(out.contains("dead letters:    0"), "{out}");
    let (ok, out, _) = queue_cli(&config, &["dead"]);
    assert!(ok && out.contains("no dead jobs"), "{out}");
    let (ok, _, err) = queue_cli(&config, &["retry", "12345"]);
    assert!(!ok && err.contains("no dead job with id 12345"), "{err}");
    // Everything acknowledged before the stop is stored.
    let out = Command::new(bin()).args(["messages", "list", "--json", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 20);
    for key in ["id", "conversation", "direction", "from", "type", "text", "status", "created_at"] {
        assert!(lines[0].get(key).is_some(), "missing {key}: {}", lines[0]);
    }
    assert_eq!(lines[0]["direction"], "in");
    assert_eq!(lines[0]["type"], "text");
    assert_eq!(lines[0]["from"], "31677777777");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_list_works_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let server = BinServer::start(&config);
    let body = text_webhook("P1", "31688888888", "wamid.live-1", "are you open today?");
    let sig = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new().post(format!("{}/webhook", server.base)).header("x-hub-signature-256", sig).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let start = std::time::Instant::now();
    loop {
        let out = Command::new(bin()).args(["messages", "list", "--json", "--config"]).arg(&config).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("wamid.live-1") {
            assert!(text.contains("are you open today?"));
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "message never listed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
