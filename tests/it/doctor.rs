//! `frontdesk doctor` against a running server (the real binary) and the fake Graph API:
//! a healthy installation passes every check; a refused token and a mismatched app secret
//! fail with what to fix; sending is tested whenever a token is set (phone number ids or
//! not) and an unreachable Graph API, a refused token and a missing permission each get
//! their own fix.

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

/// Sending is tested whenever a token is set, phone number ids or not, and each failure
/// gets the fix for its cause: the network, the token, or a permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_tests_sending_with_any_token_and_fixes_each_cause() {
    let server =
        crate::support::TestServer::start_with(|c| c.knowledge.embedder = frontdesk::config::EmbedderKind::None).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, graph_url: &str, ids: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[server]\npublic_url = \"{}\"\n[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"{SECRET}\"\nverify_token = \"{VERIFY}\"\naccess_token = \"{TOKEN}\"\ngraph_base_url = \"{graph_url}\"\nphone_number_ids = {ids}\nrequest_timeout_ms = 3000\n[knowledge]\nembedder = \"none\"\n",
                server.base,
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        path
    };
    let doctor_async = |config: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || {
            let o = Command::new(bin())
                .args(["doctor", "--config"])
                .arg(&config)
                .output()
                .unwrap();
            let out = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            (o.status.code(), out)
        })
        .await
        .unwrap()
    };
    let graph = server.graph.base_url();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // `frontdesk init` writes no phone number ids: the token is still tested.
    let (code, out) = doctor_async(write("empty-ids.toml", &graph, "[]")).await;
    assert_eq!(code, Some(0), "{out}");
    for line in ["ok    graph token", "ok    graph permissions", "ok    graph numbers"] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(
        server.graph.requests().iter().any(|r| r.starts_with("GET /v23.0/me")),
        "the Graph API was asked: {:?}",
        server.graph.requests()
    );

    // The Graph API unreachable: a network fix, not a new token.
    let (code, out) = doctor_async(write("closed.toml", &format!("http://127.0.0.1:{closed}"), "[]")).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  graph token") && out.contains("is unreachable"),
        "{out}"
    );
    assert!(out.contains("firewall") && out.contains("HTTPS_PROXY"), "{out}");
    assert!(
        !out.contains("new system-user token"),
        "a network error is not the token's fault:\n{out}"
    );

    // The token refused (190): a new token.
    server.graph.set_token("the-token-meta-expects-now");
    let (code, out) = doctor_async(write("refused.toml", &graph, "[]")).await;
    server.graph.set_token(TOKEN);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  graph token: Graph API error 190"), "{out}");
    assert!(out.contains("new system-user token"), "{out}");

    // A valid token without the messaging permission: grant it, assign the asset.
    server.graph.set_permissions(&["whatsapp_business_management"]);
    let (code, out) = doctor_async(write("no-permission.toml", &graph, "[\"P1\"]")).await;
    server
        .graph
        .set_permissions(&["whatsapp_business_messaging", "whatsapp_business_management"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok    graph token"), "{out}");
    assert!(
        out.contains("FAIL  graph permissions: the token lacks whatsapp_business_messaging"),
        "{out}"
    );
    assert!(out.contains("FAIL  graph number P1: Graph API error 10"), "{out}");
    assert!(
        out.contains("Assign assets") && !out.contains("new system-user token"),
        "{out}"
    );
    assert!(
        !out.contains(TOKEN) && !out.contains(SECRET) && !out.contains(VERIFY),
        "{out}"
    );
    server.stop().await;
}
