//! Hostile input against the real release binary (a separate process, so its memory is
//! its own), with the fake Graph API in this process:
//! 1. 64 parallel anonymous `POST /login` with wrong passwords: peak RSS (VmHWM);
//! 2. 1,000 failed logins with 2 MB bodies: RSS before and after (flat = bounded);
//! 3. 400 slowloris connections (half a header, then silence) held open while signed
//!    webhooks are posted one after another: ACK p50/p99 (baseline: the same webhooks with
//!    no slow connections, in the same run);
//! 4. the three hostile PDFs sent as customers' documents while other customers write:
//!    time from each PDF's webhook to its recorded failure, the other customers' answer
//!    latency, and whether the server process is the same at the end (never restarted).
//!
//! `cargo bench --bench hostile`

use std::io::Write;
use std::time::{Duration, Instant};

mod common;

use frontdesk::http::fake_graph::FakeGraph;
use frontdesk::whatsapp::signature::sign;

const SECRET: &str = "hostile-bench-secret";
const TOKEN: &str = "hostile-bench-token";
const USER: &str = "owner@shop.example";
const PDFS: [(&str, &[u8]); 3] = [
    ("self_xobject", include_bytes!("../tests/fixtures/pdf/self_xobject.pdf")),
    (
        "nested_arrays",
        include_bytes!("../tests/fixtures/pdf/nested_arrays.pdf"),
    ),
    ("xobject_bomb", include_bytes!("../tests/fixtures/pdf/xobject_bomb.pdf")),
];

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// (VmRSS, VmHWM) of `pid`, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    common::memory_kib(&format!("/proc/{pid}/status"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

fn text_webhook(from: &str, wamid: &str, text: &str) -> String {
    serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
        "contacts": [{ "profile": { "name": "C" }, "wa_id": from }],
        "messages": [{ "from": from, "id": wamid, "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(), "type": "text", "text": { "body": text } }] }}]}]})
    .to_string()
}

fn document_webhook(from: &str, wamid: &str, media_id: &str) -> String {
    serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
        "contacts": [{ "profile": { "name": "C" }, "wa_id": from }],
        "messages": [{ "from": from, "id": wamid, "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(), "type": "document",
            "document": { "id": media_id, "mime_type": "application/pdf", "filename": format!("{media_id}.pdf") } }] }}]}]})
    .to_string()
}

async fn post_webhook(client: &reqwest::Client, base: &str, body: String) -> (u16, Duration) {
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    let t = Instant::now();
    let status = client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, t.elapsed())
}

struct Server {
    child: std::process::Child,
    base: String,
    dir: tempfile::TempDir,
}

fn start(graph: &FakeGraph) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"{SECRET}\"\nverify_token = \"v\"\naccess_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n[knowledge]\nembedder = \"none\"\n[log]\nlevel = \"error\"\n",
            dir.path().join("data").display(),
            graph.base_url()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_frontdesk");
    let mut add = std::process::Command::new(bin)
        .args(["user", "add", USER, "--role", "admin", "--password-stdin", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    assert!(add.wait().unwrap().success(), "user add failed");
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = common::listening_base(&mut child);
    Server { child, base, dir }
}

/// `n` logins at once with wrong passwords, each from its own loopback address
/// (127.0.0.2, .3, …) and for its own email, so the login limiter lets every one reach
/// the password check: what is measured is the hashing's own bound.
async fn parallel_logins(base: &str, n: usize, body_bytes: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let source = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, (i / 250) as u8, (i % 250 + 2) as u8));
        let client = reqwest::Client::builder().local_address(source).build().unwrap();
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let email = if body_bytes > 0 {
                format!("{}@x.example", "a".repeat(body_bytes))
            } else {
                format!("guest{i}@shop.example")
            };
            let form = [
                ("email", email.as_str()),
                ("password", &format!("wrong-{i}")),
                ("next", "/app"),
            ];
            client
                .post(format!("{base}/login"))
                .form(&form)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn histogram(codes: &[u16]) -> String {
    let mut m = std::collections::BTreeMap::new();
    for c in codes {
        *m.entry(*c).or_insert(0) += 1;
    }
    m.iter()
        .map(|(c, n)| {
            if *c == 0 {
                format!("{n}× closed by the server before the body was sent")
            } else {
                format!("{n}× {c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn webhook_latencies(client: &reqwest::Client, base: &str, tag: &str, n: usize) -> (Vec<Duration>, usize) {
    let mut lat = Vec::new();
    let mut failed = 0;
    for i in 0..n {
        let (status, d) = post_webhook(
            client,
            base,
            text_webhook(&format!("3170{:07}", i % 1000), &format!("wamid.{tag}-{i}"), "hello"),
        )
        .await;
        if status == 200 { lat.push(d) } else { failed += 1 }
    }
    lat.sort();
    (lat, failed)
}

/// `n` customers (numbers `prefix` + 4 digits) each write once, 10 a second; how many were
/// answered within 60 s and how long each answer took.
async fn answer_latencies(
    client: &reqwest::Client,
    base: &str,
    graph: &FakeGraph,
    graph_t0: Instant,
    prefix: &str,
    n: usize,
) -> (usize, usize, Vec<Duration>) {
    let mut posted = Vec::new();
    for i in 0..n {
        let from = format!("{prefix}{i:04}");
        post_webhook(
            client,
            base,
            text_webhook(&from, &format!("wamid.{prefix}-{i}"), "are you open on sunday?"),
        )
        .await;
        posted.push((from, Instant::now()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = graph.sent();
        let lat: Vec<Duration> = posted
            .iter()
            .filter_map(|(from, at)| {
                sent.iter()
                    .find(|m| m.body["to"].as_str() == Some(from.as_str()))
                    .map(|m| (graph_t0 + Duration::from_millis(m.at_ms)).saturating_duration_since(*at))
            })
            .collect();
        if lat.len() == n || Instant::now() > deadline {
            let mut lat = lat;
            lat.sort();
            return (lat.len(), n, lat);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let graph = FakeGraph::start(TOKEN).await.unwrap();
        let graph_t0 = Instant::now();
        for (name, bytes) in PDFS {
            graph.add_media(name, "application/pdf", bytes.to_vec());
        }
        let mut s = start(&graph);
        graph.set_webhook(&format!("{}/webhook", s.base), SECRET);
        let pid = s.child.id();
        println!("hostile input: release binary pid {pid}, embedder off; {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!();

        // 1. Parallel logins.
        let (base_rss, _) = rss(pid);
        let codes = parallel_logins(&s.base, 64, 0).await;
        let (after, peak) = rss(pid);
        println!("| measure | result |");
        println!("|---|---|");
        println!("| RSS at rest | {:.1} MiB |", mib(base_rss));
        println!("| 64 parallel logins: peak RSS (VmHWM) | **{:.1} MiB** (answers: {}) |", mib(peak), histogram(&codes));
        println!("| RSS after the burst | {:.1} MiB |", mib(after));

        // 2. 1,000 failed logins with 2 MB bodies (in waves of 50).
        let (before2, _) = rss(pid);
        let mut codes = Vec::new();
        for _ in 0..20 {
            codes.extend(parallel_logins(&s.base, 50, 2 * 1024 * 1024).await);
        }
        let (after2, _) = rss(pid);
        println!("| 1,000 logins with 2 MB bodies: RSS before → after | {:.1} → **{:.1} MiB** (answers: {}) |", mib(before2), mib(after2), histogram(&codes));

        // 3. Slowloris: 400 connections with half a header, then webhooks.
        let client = reqwest::Client::new();
        let (quiet, quiet_failed) = webhook_latencies(&client, &s.base, "quiet", 500).await;
        let addr = s.base.trim_start_matches("http://").to_string();
        let mut slow = Vec::new();
        for _ in 0..400 {
            if let Ok(mut c) = tokio::net::TcpStream::connect(&addr).await {
                use tokio::io::AsyncWriteExt;
                let _ = c.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Le").await;
                slow.push(c);
            }
        }
        let (loaded, loaded_failed) = webhook_latencies(&client, &s.base, "slowloris", 500).await;
        // The header timeout (server.header_read_timeout_ms, 10 s) closes them.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let mut closed = 0;
        for c in &mut slow {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            // An answer (408, 400) or an end of stream; a time-out means still open.
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(5), c.read(&mut buf)).await {
                closed += 1;
            }
        }
        println!("| webhook ACK p50 / p99, no slow connections (baseline) | {:.2} / {:.2} ms ({quiet_failed} failed) |", percentile(&quiet, 0.5), percentile(&quiet, 0.99));
        println!(
            "| webhook ACK p50 / p99 with {} slowloris connections open | {:.2} / **{:.2} ms** ({loaded_failed} failed; {:.2}× the baseline p99; 11 s later {closed} of them closed by the server) |",
            slow.len(),
            percentile(&loaded, 0.5),
            percentile(&loaded, 0.99),
            percentile(&loaded, 0.99) / percentile(&quiet, 0.99).max(0.001)
        );
        drop(slow);

        // 4. Poison PDFs while other customers write; first the same customers' traffic
        // alone, as the baseline.
        let (base_answered, base_written, base_lat) = answer_latencies(&client, &s.base, &graph, graph_t0, "3191000", 60).await;
        println!(
            "| customers' answers, no poison PDF (baseline): answered / written | {base_answered} / {base_written} (answer p50 / p99 {:.0} / {:.0} ms, mostly the reply debounce) |",
            percentile(&base_lat, 0.5),
            percentile(&base_lat, 0.99)
        );
        let store = frontdesk::store::Store::open(&s.dir.path().join("data").join("frontdesk.db")).unwrap();
        let sent_before = graph.sent().len();
        let started = Instant::now();
        for (i, (name, _)) in PDFS.iter().enumerate() {
            let (status, _) = post_webhook(&client, &s.base, document_webhook(&format!("3180000000{i}"), &format!("wamid.poison-{name}"), name)).await;
            assert_eq!(status, 200);
        }
        let others = 60;
        let mut posted = Vec::new();
        let mut failed_at: Vec<Option<Duration>> = vec![None; PDFS.len()];
        let mut i = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if i < others {
                let from = format!("3190000{:04}", i);
                post_webhook(&client, &s.base, text_webhook(&from, &format!("wamid.other-{i}"), "are you open on sunday?")).await;
                posted.push((from, Instant::now()));
                i += 1;
            }
            for (k, (name, _)) in PDFS.iter().enumerate() {
                if failed_at[k].is_none() {
                    let w = format!("wamid.poison-{name}");
                    let row = store.read(move |c| frontdesk::store::media::get(c, &w)).await.ok().flatten();
                    if row.is_some_and(|(r, _)| r.status == "failed") {
                        failed_at[k] = Some(started.elapsed());
                    }
                }
            }
            let answered = graph.sent().iter().skip(sent_before).filter(|m| m.body["to"].as_str().is_some_and(|t| t.starts_with("3190000"))).count();
            if i >= others && answered >= others && failed_at.iter().all(Option::is_some) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sent = graph.sent();
        let mut answer_lat: Vec<Duration> = posted
            .iter()
            .filter_map(|(from, at)| sent.iter().find(|m| m.body["to"].as_str() == Some(from.as_str())).map(|m| (graph_t0 + Duration::from_millis(m.at_ms)).saturating_duration_since(*at)))
            .collect();
        answer_lat.sort();
        for (k, (name, _)) in PDFS.iter().enumerate() {
            println!("| poison PDF `{name}`: webhook → failure recorded, customer asked to type | **{}** |", failed_at[k].map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_else(|| "not within 60 s".into()));
        }
        println!(
            "| other customers meanwhile: answered / written | {} / {} (answer p50 / p99 {:.0} / {:.0} ms) |",
            answer_lat.len(),
            posted.len(),
            percentile(&answer_lat, 0.5),
            percentile(&answer_lat, 0.99)
        );
        let alive = s.child.try_wait().unwrap().is_none();
        println!("| server process {pid} still the same, never restarted | {} |", if alive { "yes" } else { "NO" });
        let _ = s.child.kill();
        let _ = s.child.wait();
    });
}
