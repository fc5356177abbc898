//! `frontdesk doctor` against a running server (the real binary) and the fake Graph API:
//! a healthy installation passes every check; a refused token and a mismatched app secret
//! fail with what to fix.

use std::process::Command;

use frontdesk::http::fake_graph::FakeGraph;

use crate::support::{BinServer, SECRET, TOKEN, VERIFY, bin};

fn doctor_config(dir: &std::path::Path, base: &str, graph: &str, token: &str, secret: &str) -> std::path::PathBuf {
    let path = dir.join("doctor.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"{base}\"\n[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"{secret}\"\nverify_token = \"{VERIFY}\"\naccess_token = \"{token}\"\ngraph_base_url = \"{graph}\"\nphone_number_ids = [\"P1\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn doctor(config: &std::path::Path) -> (bool, String) {
    let o = Command::new(bin())
        .args(["doctor", "--config"])
        .arg(config)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_install_and_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    let config = crate::support::write_config_file(dir.path(), "");
    let mut server = BinServer::start(&config);

    let good = doctor_config(dir.path(), &server.base, &graph.base_url(), TOKEN, SECRET);
    let (ok, out) = tokio::task::spawn_blocking(move || doctor(&good)).await.unwrap();
    assert!(ok, "{out}");
    for line in [
        "ok    config",
        "ok    database",
        "is open in the running server",
        "ok    graph token",
        "ok    webhook handshake",
        "ok    webhook signature",
        "ok    webhook rejects forgeries",
        "ok    models",
        "ok    embedding: 384 dimensions",
        "ok    file sandbox",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }

    let bad = doctor_config(
        dir.path(),
        &server.base,
        &graph.base_url(),
        "an-expired-token",
        "not-the-server-secret",
    );
    let (ok, out) = tokio::task::spawn_blocking(move || doctor(&bad)).await.unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL  graph token: Graph API error 190"), "{out}");
    assert!(
        out.contains("FAIL  webhook signature") && out.contains("app_secret differs"),
        "{out}"
    );
    assert!(
        !out.contains("an-expired-token") && !out.contains("not-the-server-secret"),
        "secrets never printed: {out}"
    );
    server.sigterm();

    // The server gone: the webhook is unreachable, said plainly.
    let good = doctor_config(dir.path(), &server.base, &graph.base_url(), TOKEN, SECRET);
    let (ok, out) = tokio::task::spawn_blocking(move || doctor(&good)).await.unwrap();
    assert!(
        !ok && out.contains("is unreachable") && out.contains("start the server"),
        "{out}"
    );
    assert!(
        !out.contains(VERIFY) && !out.contains(TOKEN) && !out.contains(SECRET),
        "no secret in the output, not even in a failed request's URL: {out}"
    );
}

/// A sandbox that cannot run (extract.binary is not frontdesk) fails doctor with the fix.
#[test]
fn doctor_fails_a_sandbox_that_cannot_read_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_config_file(dir.path(), "[extract]\nbinary = \"/bin/true\"\n");
    let (ok, out) = doctor(&config);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  file sandbox") && out.contains("set extract.binary"),
        "{out}"
    );
}
