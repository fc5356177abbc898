//! Hostile files from the security review, sent the way a stranger would: as a customer's
//! document on WhatsApp and as an admin's knowledge-base upload. Each is read in the
//! sandbox child, so a stack overflow (a self-referencing Form XObject, 200,000 nested
//! arrays) or an endless draw (40 Form XObjects drawing the next twice: 2^40 draws) ends
//! that child only: the file's failure is recorded, the customer is asked to type, and
//! everyone else keeps getting answers. Before the sandbox each of these took the whole
//! server (and with it the test process) down.

use reqwest::StatusCode;
use serde_json::json;

use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login};
use crate::media::media_webhook;
use crate::support::{TestServer, text_webhook};

const HOSTILE: [(&str, &[u8]); 3] = [
    ("self_xobject", include_bytes!("../fixtures/pdf/self_xobject.pdf")),
    ("nested_arrays", include_bytes!("../fixtures/pdf/nested_arrays.pdf")),
    ("xobject_bomb", include_bytes!("../fixtures/pdf/xobject_bomb.pdf")),
];

fn sent_to(s: &TestServer, wa_id: &str) -> Vec<String> {
    s.graph
        .sent()
        .iter()
        .filter(|m| m.body["to"] == wa_id)
        .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pdfs_from_customers_fail_alone_and_the_desk_keeps_answering() {
    let s = crate::engine::shop(|c| {
        c.extract.timeout_ms = 8_000;
        c.extract.cpu_seconds = 4;
    })
    .await;
    for (i, (name, bytes)) in HOSTILE.iter().enumerate() {
        s.graph.add_media(name, "application/pdf", bytes.to_vec());
        let body = media_webhook(
            &format!("3160000090{i}"),
            &format!("wamid.{name}"),
            "document",
            json!({ "id": name, "mime_type": "application/pdf", "filename": format!("{name}.pdf") }),
        );
        assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    }
    // Another customer writes meanwhile and is answered as usual.
    assert_eq!(
        s.post_webhook(text_webhook("P1", "31600000999", "wamid.bystander", "are you open on sunday?").as_bytes())
            .await,
        200
    );
    s.wait_until("the bystander's answer", |s| !sent_to(s, "31600000999").is_empty())
        .await;
    for (i, (name, _)) in HOSTILE.iter().enumerate() {
        let from = format!("3160000090{i}");
        s.wait_until(&format!("the request to type for {name}"), |s| {
            !sent_to(s, &from).is_empty()
        })
        .await;
        let got = sent_to(&s, &from);
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert!(
            got[0].contains("Could you type your message instead?"),
            "{name}: {got:?}"
        );
        let w = format!("wamid.{name}");
        let row = s
            .app()
            .store
            .read(move |c| frontdesk::store::media::get(c, &w))
            .await
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(row.status, "failed", "{name}");
        let error = row.error.unwrap_or_default();
        assert!(
            error.contains("stopped"),
            "{name}: the sandbox's verdict is recorded: {error}"
        );
    }
    assert_eq!(s.get("/healthz").await.0, 200);
    // No media job is left to crash-loop: each ended with its failure recorded.
    s.drain().await;
    assert_eq!(s.app().queue.stats().unwrap().dead, 0);
    s.stop().await;
}

/// The same files uploaded to the knowledge base by an admin: each is one problem in the
/// page's list (naming the file), the good file beside them is added, and the server
/// answers the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pdfs_uploaded_to_the_knowledge_base_are_reported_not_fatal() {
    let s = crate::engine::shop(|c| {
        c.extract.timeout_ms = 8_000;
        c.extract.cpu_seconds = 4;
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let csrf = csrf_of(&get(&s, "/admin/kb", Some(&cookie)).await.1);
    let boundary = "fdboundaryHostile";
    let mut body = Vec::new();
    let mut part = |name: &str, bytes: &[u8]| {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    };
    for (name, bytes) in HOSTILE {
        part(&format!("{name}.pdf"), bytes);
    }
    part("warranty.md", b"# Warranty\n\nEvery frame has a five year warranty.");
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    let r = crate::inbox_auth::http()
        .post(format!("{}/admin/kb/upload?csrf={csrf}", s.base))
        .header("cookie", &cookie)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, page) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("1 added"), "the good file is added: {page}");
    for (name, _) in HOSTILE {
        assert!(
            page.contains(&format!("upload:{name}.pdf")),
            "{name} is named in the problems: {page}"
        );
    }
    assert_eq!(s.get("/healthz").await.0, 200);
    s.stop().await;
}

/// The real binary on a temp data dir, sending through `graph`, embedder off, with
/// `extra` config sections.
fn real_server(
    graph: &frontdesk::http::fake_graph::FakeGraph,
    extra: &str,
) -> (tempfile::TempDir, crate::support::BinServer) {
    use crate::support::{BinServer, TOKEN, write_config_file};
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "access_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n[knowledge]\nembedder = \"none\"\n{extra}",
        graph.base_url()
    );
    let server = BinServer::start(&write_config_file(dir.path(), &extra));
    (dir, server)
}

/// POSTs a webhook signed with the test secret to the server at `base`; expects a 200.
async fn post_signed(base: &str, body: String) {
    let signed = frontdesk::whatsapp::signature::sign(crate::support::SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", signed)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A 40 MiB plain-text document costs the server about its own size once (downloaded into
/// one buffer of the announced size), not ten times over: the text is read in the sandbox,
/// which stops after `media.document_max_chars`. Before, the whole file became a String,
/// then a Vec of words, then a joined copy: ~400 MiB peak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_mib_text_document_does_not_balloon_the_server() {
    use crate::support::*;
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("SKIPPED: /proc is not available; the memory check needs VmHWM");
        return;
    }
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    let big: Vec<u8> = b"Order 4711 arrived with a bent wheel. "
        .iter()
        .copied()
        .cycle()
        .take(40 << 20)
        .collect();
    graph.add_media("big-text", "text/plain", big);
    let (dir, server) = real_server(&graph, "");
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let pid = server.child.id();
    let before = crate::support::peak_kib(pid).unwrap() * 1024;
    post_signed(
        &server.base,
        media_webhook(
            "31600000777",
            "wamid.big-text",
            "document",
            json!({ "id": "big-text", "mime_type": "text/plain", "filename": "log.txt" }),
        ),
    )
    .await;
    let store = open_store(&dir.path().join("data"));
    let start = std::time::Instant::now();
    let text = loop {
        let rows = store
            .call_blocking(|c| frontdesk::store::list_messages(c, 0, 10))
            .unwrap();
        if let Some(m) = rows
            .iter()
            .find(|m| m.id == "wamid.big-text" && m.text.contains("[document text:"))
        {
            break m.text.clone();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the document was never read: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        text.contains("Order 4711 arrived") && text.len() < 10_000,
        "the text is cut to document_max_chars: {} chars",
        text.len()
    );
    let peak = crate::support::peak_kib(pid).unwrap() * 1024;
    eprintln!(
        "server peak RSS: {} MiB before, {} MiB after a 40 MiB text document",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < before + (100 << 20),
        "reading a 40 MiB text document took the server's peak RSS from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
}

/// The processes that are children of `pid` (Linux only).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                .flat_map(|s| {
                    s.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// SIGTERM while a PDF that draws forever (2^40 draws) is being read: the server stops
/// within its grace period (before, a blocking thread spun on the file and the stop hung
/// until SIGKILL), the reader child is killed with it, and the job is given back — not
/// counted as a crash — so it runs again at the next start instead of being set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_hostile_pdf_is_read_stops_the_server_and_its_reader() {
    use crate::support::*;
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("SKIPPED: /proc is not available; the child processes cannot be seen");
        return;
    }
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    graph.add_media("bomb", "application/pdf", HOSTILE[2].1.to_vec());
    let (dir, mut server) = real_server(&graph, "[extract]\ntimeout_ms = 120000\ncpu_seconds = 120\n");
    let pid = server.child.id();
    post_signed(
        &server.base,
        media_webhook(
            "31600000888",
            "wamid.bomb",
            "document",
            json!({ "id": "bomb", "mime_type": "application/pdf", "filename": "bomb.pdf" }),
        ),
    )
    .await;
    let start = std::time::Instant::now();
    let reader = loop {
        if let Some(&c) = children(pid).first() {
            break c;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the reader child never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let stopped = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.sigterm();
        (status, server)
    })
    .await
    .unwrap();
    let (status, _server) = status;
    let took = stopped.elapsed();
    assert!(status.success(), "a clean stop: {status:?}");
    assert!(
        took < std::time::Duration::from_secs(15),
        "the stop took {took:?} (grace 10 s)"
    );
    // The reader is gone with the server (killed, then reaped: no process left).
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{reader}")).exists()
        && !std::fs::read_to_string(format!("/proc/{reader}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the reader child {reader} outlived the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Given back, not a crash: nothing is set aside.
    let queue =
        frontdesk::queue::Queue::open(&dir.path().join("data").join("queue.redb"), &Default::default()).unwrap();
    assert_eq!(
        queue.stats().unwrap().dead,
        0,
        "the interrupted media job is not a dead letter"
    );
    assert_eq!(
        queue.stats().unwrap().leased,
        0,
        "and not held: it was released at the stop"
    );
}
