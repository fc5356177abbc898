//! Shared by the benches: a server on loopback with the fake Graph API, and signed
//! inbound webhooks.

#![allow(dead_code)]

use frontdesk::config::{Config, Secret};
use frontdesk::http::fake_graph::FakeGraph;
use rusqlite::params;

pub const SECRET: &str = "bench-secret";
pub const TOKEN: &str = "bench-token";

/// The base URL (`http://ADDR`) a started `frontdesk serve` child prints as the first line
/// of its stdout ("frontdesk listening on ADDR"); the child's stdout must be piped, and is
/// taken.
pub fn listening_base(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("frontdesk listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    format!("http://{addr}")
}

/// (VmRSS, VmHWM) in KiB from a /proc status file (`/proc/self/status`,
/// `/proc/PID/status`); zeros where it cannot be read.
pub fn memory_kib(status_path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(status_path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn inbound(wa_id: &str, wamid: &str) -> String {
    let now = frontdesk::domain::now_ms() / 1000;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"contacts":[{{"profile":{{"name":"C"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{wamid}","timestamp":"{now}","type":"text","text":{{"body":"Do you have the gravel bike in size M?"}}}}]}}}}]}}]}}"#
    )
}

pub struct Env {
    pub running: frontdesk::server::Running,
    pub graph: FakeGraph,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

/// A bench server's config: data in `dir`, the fake Graph API at `graph`, quiet logs.
pub fn config(dir: &std::path::Path, graph: &FakeGraph) -> Config {
    let mut c = Config::default();
    c.extract.binary = env!("CARGO_BIN_EXE_frontdesk").into();
    c.storage.data_dir = dir.to_path_buf();
    c.whatsapp.app_secret = Secret::new(SECRET);
    c.whatsapp.verify_token = Secret::new("v");
    c.whatsapp.access_token = Secret::new(TOKEN);
    c.whatsapp.graph_base_url = graph.base_url();
    c.log.level = "warn".into();
    c
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    graph.set_statuses(None);
    let mut c = config(dir.path(), &graph);
    // Answer at once and skip the embedding model unless a bench asks for them.
    c.engine.debounce_ms = 0;
    c.knowledge.embedder = frontdesk::config::EmbedderKind::None;
    tweak(&mut c);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = frontdesk::server::start(c, listener, Default::default()).await.unwrap();
    let base = format!("http://{}", running.addr);
    Env {
        running,
        graph,
        base,
        _dir: dir,
    }
}

const WORDS: &[&str] = &[
    "bike", "saddle", "brake", "order", "delivery", "repair", "tyre", "puncture", "frame", "size", "gravel", "helmet",
    "refund", "invoice", "chain", "gear", "light", "lock", "wheel", "pedal", "when", "where", "open", "price",
    "thanks", "hello", "please", "today", "tomorrow",
];

fn text(rng: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            WORDS[(*rng % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seeds `conversations` conversations of `per` messages each (customer and bot turns,
/// searchable text; one in five handed off), in one transaction.
pub fn seed(store: &frontdesk::store::Store, conversations: usize, per: usize) {
    store
        .call_blocking(|c| {
            let tx = c.transaction()?;
            let now = frontdesk::domain::now_ms();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            {
                let mut contact = tx.prepare("INSERT INTO contacts (wa_id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")?;
                let mut conv = tx.prepare("INSERT INTO conversations (phone_number_id, contact_id, owner, last_inbound_at, last_message_at, created_at) VALUES ('P1', ?1, ?2, ?3, ?3, ?3)")?;
                let mut msg = tx.prepare(
                    "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at) VALUES (?1, ?2, ?3, ?4, 'text', ?5, '{}', 'received', ?6, ?7)",
                )?;
                let mut handoff = tx.prepare("INSERT INTO handoffs (conversation_id, inbound_wamid, trigger, reason, summary, created_at) VALUES (?1, ?2, 'asked_for_human', 'the customer asked for a person', 'wants a person', ?3)")?;
                for i in 0..conversations {
                    let at = now - (conversations - i) as i64 * 60_000;
                    contact.execute(params![format!("3160{i:07}"), format!("Customer {i}"), at])?;
                    let contact_id = tx.last_insert_rowid();
                    let human = i % 5 == 0;
                    conv.execute(params![contact_id, if human { "human" } else { "bot" }, at])?;
                    let conv_id = tx.last_insert_rowid();
                    for j in 0..per {
                        let inbound = j % 2 == 0;
                        let wamid = format!("wamid.seed.{i}.{j}");
                        // One message in a thousand names a rarer part.
                        let mut body = text(&mut rng, 12);
                        if (i * per + j) % 1000 == 7 {
                            body.push_str(" chainring");
                        }
                        msg.execute(params![wamid, conv_id, if inbound { "in" } else { "out" }, if inbound { "customer" } else { "P1" }, body, at / 1000, at - (per - j) as i64 * 1000])?;
                    }
                    if human {
                        handoff.execute(params![conv_id, format!("wamid.seed.{i}.0"), at])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .unwrap();
}

/// The `p` quantile of `v`, in milliseconds.
pub fn pct(v: &mut [std::time::Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// Signed text webhooks from `posters` tasks at a steady rate (about 200/s each at most)
/// until `stop`; returns every acknowledgement time (each must be a 200).
pub async fn steady_load(
    base: String,
    posters: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tag: &'static str,
) -> Vec<std::time::Duration> {
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for p in 0..posters {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = inbound(&format!("3169{p:03}{:04}", i % 500), &format!("wamid.{tag}.{p}.{i}"));
                let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
                let t = std::time::Instant::now();
                let r = client
                    .post(format!("{base}/webhook"))
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                times.push(t.elapsed());
                i += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}
