//! The soak: the real binary as its own process under mixed traffic for
//! `FRONTDESK_SOAK_MINUTES` (default 30), with the fake Graph API (sending status webhooks
//! back for every message it accepts) and a fake Anthropic model answering after 300–1500
//! ms, both in this process.
//!
//! Traffic (open loop, scheduled times kept, so ACK latency includes any queueing):
//! `FRONTDESK_SOAK_RATE` new conversations a second on average (default 50), in cycles of
//! 8 s at 0.75× the rate then a 2 s burst at 2×; one first message in twenty is a
//! plain-text document (the media path); one conversation in five sends a follow-up once
//! its answer arrived (a customer reads, then writes again); `FRONTDESK_SOAK_READERS`
//! inbox readers (default 4) stay logged in on the live-update stream (SSE) throughout.
//!
//! Every minute one line: the server's RSS, open fds and threads (from /proc/<pid>),
//! queue depth (jobs waiting, from /metrics), the SQLite WAL file and the redb journal
//! file sizes, p99 ACK latency over that minute, ACKed so far, replies sent so far.
//!
//! At the end, after the traffic stops and the server drains and stops cleanly:
//! - zero lost: every ACKed inbound message has its reply accepted by the Graph API, or a
//!   recorded handoff;
//! - zero duplicated: no ledger row reached the Graph API twice, and no customer got more
//!   messages than they sent;
//! - flat: the last 5 minutes' averages against minutes 2–6 (runs shorter than 11
//!   minutes compare the second half with the first) within the stated tolerances.
//!
//! It exits non-zero if any check fails. `cargo bench --bench soak`; a quick check:
//! `FRONTDESK_SOAK_MINUTES=2 cargo bench --profile dev --bench soak`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use frontdesk::http::fake_graph::FakeGraph;
use frontdesk::whatsapp::signature::sign;
use serde_json::{Value, json};

mod common;

const SECRET: &str = "soak-secret";
const TOKEN: &str = "soak-token";
const USER: &str = "owner@shop.example";
const PASSWORD: &str = "correct horse battery staple";
/// What the fake model answers; a follow-up is only written after an answer with it.
const ANSWER: &str = "Thanks for asking! A teammate in the shop can tell you more about that.";

/// Flatness tolerances: the late window's average may exceed the early one's by this
/// factor plus this absolute slack.
struct Tolerance {
    name: &'static str,
    factor: f64,
    slack: f64,
}

const TOLERANCES: [Tolerance; 6] = [
    Tolerance {
        name: "RSS MiB",
        factor: 1.20,
        slack: 16.0,
    },
    Tolerance {
        name: "open fds",
        factor: 1.20,
        slack: 16.0,
    },
    Tolerance {
        name: "threads",
        factor: 1.25,
        slack: 16.0,
    },
    Tolerance {
        name: "queue depth",
        factor: 1.50,
        slack: 100.0,
    },
    Tolerance {
        name: "WAL + journal MiB",
        factor: 1.50,
        slack: 8.0,
    },
    Tolerance {
        name: "ACK p99 ms",
        factor: 2.00,
        slack: 25.0,
    },
];

struct Settings {
    minutes: u64,
    rate: f64,
    readers: usize,
    embedder: String,
    reply_workers: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Settings {
            minutes: var("FRONTDESK_SOAK_MINUTES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .max(1),
            rate: var("FRONTDESK_SOAK_RATE").and_then(|v| v.parse().ok()).unwrap_or(50.0),
            readers: common::env_or("FRONTDESK_SOAK_READERS", 4),
            embedder: var("FRONTDESK_SOAK_EMBEDDER").unwrap_or_else(|| "local".into()),
            reply_workers: common::env_or("FRONTDESK_SOAK_REPLY_WORKERS", 64),
        }
    }
}

/// The load's rate at `t` seconds: 8 s at 0.75× then 2 s at 2× (average 1×).
fn rate_at(rate: f64, t: f64) -> f64 {
    if t % 10.0 < 8.0 { rate * 0.75 } else { rate * 2.0 }
}

/// A fake Anthropic Messages API answering every call with `ANSWER` after 300–1500 ms.
async fn slow_model(calls: Arc<AtomicU64>) -> String {
    let app = axum::Router::new().route(
        "/v1/messages",
        post(move |Json(body): Json<Value>| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                let ms = rand::random_range(300..=1500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Json(json!({
                    "id": "msg_soak", "type": "message", "role": "assistant", "model": body["model"], "stop_reason": "tool_use",
                    "usage": { "input_tokens": 600, "output_tokens": 60 },
                    "content": [{ "type": "tool_use", "id": "t", "name": "reply",
                        "input": { "reply": ANSWER, "handoff": false, "reason": "soak", "confidence": 0.9, "sources": [] } }]
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn envelope(from: &str, message: Value) -> String {
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
        "contacts": [{ "profile": { "name": "C" }, "wa_id": from }], "messages": [message] } }] }] })
    .to_string()
}

fn text_message(from: &str, wamid: &str, text: &str) -> String {
    let now = (frontdesk::domain::now_ms() / 1000).to_string();
    envelope(
        from,
        json!({ "from": from, "id": wamid, "timestamp": now, "type": "text", "text": { "body": text } }),
    )
}

fn document_message(from: &str, wamid: &str, media_id: &str) -> String {
    let now = (frontdesk::domain::now_ms() / 1000).to_string();
    envelope(
        from,
        json!({ "from": from, "id": wamid, "timestamp": now, "type": "document",
            "document": { "id": media_id, "mime_type": "text/plain", "filename": "order-notes.txt" } }),
    )
}

const QUESTIONS: &[&str] = &[
    "are you open on sunday?",
    "how much to rent an e-bike for a day",
    "can you fix a puncture on my rear wheel",
    "do you have the gravel bike in size M",
    "what time do you close on saturday",
    "do I need to pay a deposit for a rental",
];

/// What the load generator shares with the reporter and the final check.
#[derive(Default)]
struct Shared {
    /// ACK latencies (ms) since the last report.
    ack_ms: Mutex<Vec<f64>>,
    /// Every ACKed inbound message: (wamid, wa_id).
    acked: Mutex<Vec<(String, String)>>,
    acked_count: AtomicU64,
    /// Webhooks answered with anything but a 200 (or not at all).
    refused: AtomicU64,
    conversations: AtomicU64,
    documents: AtomicU64,
    follow_ups: AtomicU64,
    /// Per customer: (messages received from the fake Graph API, answers among them).
    replies: Mutex<HashMap<String, (u32, u32)>>,
    sse_events: AtomicU64,
    sse_reconnects: AtomicU64,
}

async fn post_webhook(client: &reqwest::Client, base: &str, body: String) -> Option<u16> {
    let sig = sign(SECRET.as_bytes(), body.as_bytes());
    client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Posts one customer message; records its ACK (latency from `scheduled`).
async fn say(
    shared: &Shared,
    client: &reqwest::Client,
    base: &str,
    from: &str,
    wamid: &str,
    body: String,
    scheduled: Instant,
) {
    let status = post_webhook(client, base, body).await;
    let ms = scheduled.elapsed().as_secs_f64() * 1000.0;
    if status == Some(200) {
        shared.ack_ms.lock().unwrap().push(ms);
        shared.acked.lock().unwrap().push((wamid.to_string(), from.to_string()));
        shared.acked_count.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// One customer: a first message (text, or one in twenty a document), and one in five
/// writes again a few seconds after the answer arrived.
async fn conversation(
    n: u64,
    scheduled: Instant,
    shared: Arc<Shared>,
    graph: FakeGraph,
    client: reqwest::Client,
    base: String,
) {
    let from = format!("31{:09}", 600_000_000 + n);
    let first = format!("wamid.soak.{n}.0");
    let body = if n % 20 == 7 {
        let media_id = format!("soak-doc-{n}");
        let text =
            format!("Order notes for customer {n}: a rear wheel puncture, and a question about a rental.\n").repeat(24);
        graph.add_media(&media_id, "text/plain", text.into_bytes());
        shared.documents.fetch_add(1, Ordering::Relaxed);
        document_message(&from, &first, &media_id)
    } else {
        text_message(&from, &first, QUESTIONS[n as usize % QUESTIONS.len()])
    };
    say(&shared, &client, &base, &from, &first, body, scheduled).await;
    if n % 5 != 3 {
        return;
    }
    // Waits for the bot's answer (not a handoff: a person owns the conversation then).
    let asked = Instant::now();
    loop {
        let answered = shared.replies.lock().unwrap().get(&from).map(|r| r.1).unwrap_or(0);
        if answered >= 1 {
            break;
        }
        if asked.elapsed() > Duration::from_secs(60) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::random_range(1_000..=4_000))).await;
    let second = format!("wamid.soak.{n}.1");
    shared.follow_ups.fetch_add(1, Ordering::Relaxed);
    let body = text_message(&from, &second, "thanks! and do you also sell helmets?");
    say(&shared, &client, &base, &from, &second, body, Instant::now()).await;
}

/// Reads what the fake Graph API accepted since the last look into per-customer counts.
async fn collect_replies(shared: Arc<Shared>, graph: FakeGraph, stop: Arc<AtomicBool>) {
    let mut seen = 0;
    while !stop.load(Ordering::Relaxed) {
        let new = graph.sent_since(seen);
        seen += new.len();
        {
            let mut replies = shared.replies.lock().unwrap();
            for m in new {
                let to = m.body["to"].as_str().unwrap_or_default().to_string();
                let text = m.body["text"]["body"].as_str().unwrap_or_default();
                let e = replies.entry(to).or_default();
                e.0 += 1;
                if text.contains(ANSWER) {
                    e.1 += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An inbox reader: logged in, holding the live-update stream open, reconnecting when it
/// ends.
async fn inbox_reader(base: String, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/login"))
        .form(&[("email", USER), ("password", PASSWORD), ("next", "/app")])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("login failed: {}", r.status()))
        .to_string();
    while !stop.load(Ordering::Relaxed) {
        let Ok(r) = client
            .get(format!("{base}/app/events"))
            .header("cookie", &cookie)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut r = r;
        loop {
            tokio::select! {
                chunk = r.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        let events = bytes.windows(6).filter(|w| w == b"event:").count();
                        shared.sse_events.fetch_add(events as u64, Ordering::Relaxed);
                    }
                    _ => break,
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => if stop.load(Ordering::Relaxed) { return },
            }
        }
        shared.sse_reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// One minute's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_mib: f64,
    fds: f64,
    threads: f64,
    queue: f64,
    wal_mib: f64,
    journal_mib: f64,
    p99_ms: f64,
}

impl Sample {
    fn values(&self) -> [f64; 6] {
        [
            self.rss_mib,
            self.fds,
            self.threads,
            self.queue,
            self.wal_mib + self.journal_mib,
            self.p99_ms,
        ]
    }
}

fn file_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path)
        .map(|m| m.len() as f64 / 1_048_576.0)
        .unwrap_or(0.0)
}

/// Jobs waiting in every queue, from `/metrics`.
async fn queue_depth(client: &reqwest::Client, base: &str) -> u64 {
    let Ok(r) = client.get(format!("{base}/metrics")).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("frontdesk_queue_ready{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn sample(pid: u32, data: &std::path::Path, client: &reqwest::Client, base: &str, acks: Vec<f64>) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0) as f64;
    let mut acks = acks;
    acks.sort_by(f64::total_cmp);
    let p99_ms = if acks.is_empty() {
        0.0
    } else {
        acks[((acks.len() as f64 - 1.0) * 0.99).round() as usize]
    };
    Sample {
        rss_mib: common::memory_kib(&format!("/proc/{pid}/status")).0 as f64 / 1024.0,
        fds,
        threads,
        queue: queue_depth(client, base).await as f64,
        wal_mib: file_mib(&data.join("frontdesk.db-wal")),
        journal_mib: file_mib(&data.join("queue.redb")),
        p99_ms,
    }
}

/// The minutes (1-based) to compare: minutes 2–6 against the last 5, or for runs shorter
/// than 11 minutes the first half (without minute 1 when there are enough) against the
/// second.
fn windows(n: usize) -> (Vec<usize>, Vec<usize>) {
    if n >= 11 {
        ((2..=6).collect(), (n - 4..=n).collect())
    } else {
        let half = (n / 2).max(1);
        let early: Vec<usize> = if half >= 2 {
            (2..=half).collect()
        } else {
            (1..=half).collect()
        };
        (early, (n - half + 1..=n).collect())
    }
}

struct Server {
    child: std::process::Child,
    base: String,
    data: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn frontdesk(args: &[&str], config: &std::path::Path, stdin: Option<&str>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::null());
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success(), "frontdesk {args:?} failed");
}

fn start_server(dir: &std::path::Path, graph: &FakeGraph, model: &str, s: &Settings) -> Server {
    let data = dir.join("data");
    let model_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
[storage]
data_dir = "{data}"
[whatsapp]
app_secret = "{SECRET}"
verify_token = "v"
access_token = "{TOKEN}"
graph_base_url = "{graph}"
[knowledge]
embedder = "{embedder}"
model_dir = "{model_dir}"
[llm.providers.anthropic]
kind = "anthropic"
base_url = "{model}"
api_key = "k"
timeout_ms = 10000
[llm.tiers]
commodity = ["anthropic:claude-haiku-4-5"]
reasoning = ["anthropic:claude-sonnet-4-5"]
[workers]
reply = {workers}
[log]
level = "error"
"#,
            data = data.display(),
            graph = graph.base_url(),
            embedder = s.embedder,
            model_dir = model_dir.display(),
            workers = s.reply_workers,
        ),
    )
    .unwrap();
    let kb = dir.join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    for (name, text) in [
        (
            "opening-hours.md",
            "# Opening hours\n\nThe shop is open Tuesday to Saturday from 9:00 to 18:00. We are closed on Sundays and Mondays.",
        ),
        (
            "rental.md",
            "# Bike rental\n\nCity bikes rent for 15 euro a day, e-bikes for 35 euro a day. We ask a 50 euro deposit.",
        ),
        (
            "repairs.md",
            "# Repairs\n\n## Punctures\n\nA puncture repair costs 15 euro for a front wheel and 20 euro for a rear wheel.",
        ),
        (
            "shop.md",
            "# The shop\n\nWe sell city, gravel and electric bikes in sizes S to XL, helmets, locks and lights.",
        ),
    ] {
        std::fs::write(kb.join(name), text).unwrap();
    }
    frontdesk(&["kb", "add", kb.to_str().unwrap()], &config, None);
    frontdesk(
        &["user", "add", USER, "--role", "admin", "--password-stdin"],
        &config,
        Some(&format!("{PASSWORD}\n")),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let base = common::listening_base(&mut child);
    Server { child, base, data }
}

/// What the store says about the ACKed messages: (lost, answered, handed off).
fn check_store(
    data: &std::path::Path,
    acked: &[(String, String)],
    sent_callbacks: &HashSet<String>,
) -> (Vec<String>, u64, u64) {
    let c =
        rusqlite::Connection::open_with_flags(data.join("frontdesk.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut replies: HashMap<String, (i64, String)> = HashMap::new();
    let mut st = c
        .prepare("SELECT idempotency_key, id, state FROM outbound WHERE idempotency_key LIKE 'reply:%'")
        .unwrap();
    for row in st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })
        .unwrap()
    {
        let (key, id, state) = row.unwrap();
        replies.insert(key.trim_start_matches("reply:").to_string(), (id, state));
    }
    let mut st = c.prepare("SELECT inbound_wamid FROM handoffs").unwrap();
    let handoffs: HashSet<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let (mut lost, mut answered, mut handed) = (Vec::new(), 0, 0);
    for (wamid, _) in acked {
        let sent = replies.get(wamid).is_some_and(|(id, state)| {
            ["accepted", "sent", "delivered", "read"].contains(&state.as_str())
                && sent_callbacks.contains(&format!("fd:{id}"))
        });
        if sent {
            answered += 1;
        } else if handoffs.contains(wamid) {
            handed += 1;
        } else {
            lost.push(wamid.clone());
        }
    }
    (lost, answered, handed)
}

fn main() {
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(run(s));
    // The fake servers' tasks end with the runtime.
    rt.shutdown_timeout(Duration::from_secs(1));
    if !ok {
        std::process::exit(1);
    }
}

async fn run(s: Settings) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    let model_calls = Arc::new(AtomicU64::new(0));
    let model = slow_model(model_calls.clone()).await;
    let mut server = start_server(dir.path(), &graph, &model, &s);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let pid = server.child.id();
    println!(
        "soak: {} min, {} new conversations/s on average (bursts of {}/s), embedder {}, {} reply workers, {} inbox readers on SSE, model 300-1500 ms; server pid {pid}",
        s.minutes,
        s.rate,
        s.rate * 2.0,
        s.embedder,
        s.reply_workers,
        s.readers
    );

    let shared = Arc::new(Shared::default());
    let stop_side = Arc::new(AtomicBool::new(false));
    let collector = tokio::spawn(collect_replies(shared.clone(), graph.clone(), stop_side.clone()));
    let readers: Vec<_> = (0..s.readers)
        .map(|_| tokio::spawn(inbox_reader(server.base.clone(), shared.clone(), stop_side.clone())))
        .collect();

    // The load: open loop, one task per conversation.
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let started = Instant::now();
    let total = Duration::from_secs(s.minutes * 60);
    let load = {
        let (shared, graph, client, base, rate) = (
            shared.clone(),
            graph.clone(),
            client.clone(),
            server.base.clone(),
            s.rate,
        );
        tokio::spawn(async move {
            let mut next = Instant::now();
            let mut n = 0u64;
            let mut tasks = tokio::task::JoinSet::new();
            while next.duration_since(started) < total {
                tokio::time::sleep_until(next.into()).await;
                let (shared2, graph, client, base) = (shared.clone(), graph.clone(), client.clone(), base.clone());
                tasks.spawn(conversation(n, next, shared2, graph, client, base));
                shared.conversations.fetch_add(1, Ordering::Relaxed);
                n += 1;
                next += Duration::from_secs_f64(1.0 / rate_at(rate, next.duration_since(started).as_secs_f64()));
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    // The report, once a minute.
    println!(
        "| min | RSS MiB | fds | threads | queue depth | WAL MiB | journal MiB | ACK p99 ms | acked | replies sent | conversations started |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let metrics_client = reqwest::Client::new();
    let mut samples = Vec::new();
    for minute in 1..=s.minutes {
        tokio::time::sleep_until((started + Duration::from_secs(minute * 60)).into()).await;
        let acks = std::mem::take(&mut *shared.ack_ms.lock().unwrap());
        let m = sample(pid, &server.data, &metrics_client, &server.base, acks).await;
        let replies: u32 = shared.replies.lock().unwrap().values().map(|r| r.0).sum();
        println!(
            "| {minute} | {:.1} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {} | {replies} | {} |",
            m.rss_mib,
            m.fds,
            m.threads,
            m.queue,
            m.wal_mib,
            m.journal_mib,
            m.p99_ms,
            shared.acked_count.load(Ordering::Relaxed),
            shared.conversations.load(Ordering::Relaxed)
        );
        samples.push(m);
    }
    let load_secs = started.elapsed().as_secs_f64();
    load.await.unwrap();

    // Drain: every queue empty and nothing more sent, on two looks a second apart.
    let drain_started = Instant::now();
    let (mut quiet, mut last_sent) = (0, usize::MAX);
    let drain_limit = Duration::from_secs(300).max(Duration::from_secs_f64(load_secs));
    while quiet < 2 && drain_started.elapsed() < drain_limit {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = graph.sent_since(0).len();
        let idle = queue_depth(&metrics_client, &server.base).await == 0 && sent == last_sent;
        quiet = if idle { quiet + 1 } else { 0 };
        last_sent = sent;
    }
    let drained = quiet >= 2;
    let drain_secs = drain_started.elapsed().as_secs_f64();
    // A clean stop: nothing is sent after it.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = server.child.wait().unwrap();
    stop_side.store(true, Ordering::Relaxed);
    collector.await.unwrap();
    for r in readers {
        let _ = r.await;
    }

    // The checks.
    let sent = graph.sent_since(0);
    let mut per_callback: HashMap<String, u32> = HashMap::new();
    let mut per_customer: HashMap<String, u32> = HashMap::new();
    for m in &sent {
        *per_callback
            .entry(
                m.body["biz_opaque_callback_data"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
        *per_customer
            .entry(m.body["to"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let acked = shared.acked.lock().unwrap().clone();
    let mut inbound_per_customer: HashMap<&str, u32> = HashMap::new();
    for (_, from) in &acked {
        *inbound_per_customer.entry(from.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_callback.iter().filter(|(_, n)| **n > 1).collect();
    let over: Vec<_> = per_customer
        .iter()
        .filter(|(to, n)| **n > inbound_per_customer.get(to.as_str()).copied().unwrap_or(0))
        .collect();
    let callbacks: HashSet<String> = per_callback.keys().cloned().collect();
    let (lost, answered, handed) = check_store(&server.data, &acked, &callbacks);

    let conversations = shared.conversations.load(Ordering::Relaxed);
    println!();
    println!(
        "load: {conversations} conversations in {load_secs:.0} s ({:.1}/s offered), {} follow-ups, {} documents; {} webhooks ACKed, {} refused or failed",
        conversations as f64 / load_secs,
        shared.follow_ups.load(Ordering::Relaxed),
        shared.documents.load(Ordering::Relaxed),
        acked.len(),
        shared.refused.load(Ordering::Relaxed)
    );
    println!(
        "model calls {}; Graph API accepted {} messages; SSE events {} ({} stream reconnects); drained in {drain_secs:.0} s{}; server exit {exit}",
        model_calls.load(Ordering::Relaxed),
        sent.len(),
        shared.sse_events.load(Ordering::Relaxed),
        shared.sse_reconnects.load(Ordering::Relaxed),
        if drained {
            String::new()
        } else {
            format!(" (NOT drained after {} s)", drain_limit.as_secs())
        }
    );
    let mut ok = true;
    let mut verdict = |name: &str, pass: bool, detail: String| {
        println!("{} {name}: {detail}", if pass { "PASS" } else { "FAIL" });
        ok &= pass;
    };
    verdict(
        "drained",
        drained,
        format!("every queue empty and nothing more sent, {drain_secs:.0} s after the load stopped"),
    );
    verdict(
        "zero lost",
        lost.is_empty(),
        format!(
            "{} ACKed messages: {answered} answered, {handed} handed off, {} {}{}",
            acked.len(),
            lost.len(),
            if drained {
                "lost"
            } else {
                "unanswered when the server was stopped (not drained)"
            },
            lost.first().map(|w| format!(" (first: {w})")).unwrap_or_default()
        ),
    );
    verdict(
        "zero duplicated",
        twice.is_empty() && over.is_empty(),
        format!(
            "{} ledger rows sent twice, {} customers sent more messages than they wrote{}",
            twice.len(),
            over.len(),
            twice
                .first()
                .map(|(c, n)| format!(" (first: {c} × {n})"))
                .unwrap_or_default()
        ),
    );
    verdict(
        "every webhook ACKed",
        shared.refused.load(Ordering::Relaxed) == 0,
        format!("{} refused or failed", shared.refused.load(Ordering::Relaxed)),
    );
    let (early, late) = windows(samples.len());
    let avg = |w: &[usize], i: usize| w.iter().map(|m| samples[m - 1].values()[i]).sum::<f64>() / w.len() as f64;
    let mut flat = Vec::new();
    let mut all_flat = true;
    for (i, t) in TOLERANCES.iter().enumerate() {
        let (a, b) = (avg(&early, i), avg(&late, i));
        let limit = a * t.factor + t.slack;
        all_flat &= b <= limit;
        flat.push(format!(
            "{} {a:.1} → {b:.1} (≤ {limit:.1}{})",
            t.name,
            if b <= limit { "" } else { " ✗" }
        ));
    }
    verdict(
        "flat",
        all_flat,
        format!("minutes {:?} vs {:?}: {}", early, late, flat.join("; ")),
    );
    println!(
        "tolerances: late ≤ early × factor + slack — {}",
        TOLERANCES
            .iter()
            .map(|t| format!("{} ×{} +{}", t.name, t.factor, t.slack))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ok
}
