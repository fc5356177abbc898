//! The agent inbox at size: a database seeded with 10,000 conversations and 1,000,000
//! messages (100 each, customer and bot turns, searchable text; 2,000 handed off) and one
//! conversation with 2,000 customer messages (the paged thread), one in 25 snoozed, then
//! the real server on loopback and a logged-in admin asking for the inbox pages.
//! Reports p50/p95 request time (loopback round trip: an upper bound of server time) per
//! page, and `GET /healthz` in the same process as the baseline.
//!
//! `cargo bench --bench inbox` (env: BENCH_CONVERSATIONS=10000, BENCH_PER_CONVERSATION=100,
//! BENCH_REQUESTS=200).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TOKEN, env_or, seed};

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// When the long thread's messages start (ms), one a second after it.
fn long_thread_start() -> i64 {
    1_700_000_000_000
}

/// A time in the middle of the long thread (an "Earlier messages" cursor).
fn long_thread_middle() -> i64 {
    long_thread_start() + 1_000 * 1_000
}

/// One more conversation, handed off, with `n` customer messages: the long thread.
fn seed_long_thread(store: &frontdesk::store::Store, n: i64) -> i64 {
    store
        .call_blocking(move |c| {
            let tx = c.transaction()?;
            let start = long_thread_start();
            tx.execute(
                "INSERT INTO contacts (wa_id, name, created_at, updated_at) VALUES ('31699999999', 'Long Thread', ?1, ?1)",
                [start],
            )?;
            let contact = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO conversations (phone_number_id, contact_id, owner, last_inbound_at, last_message_at, created_at) VALUES ('P1', ?1, 'human', ?2, ?2, ?2)",
                rusqlite::params![contact, start + n * 1000],
            )?;
            let id = tx.last_insert_rowid();
            for i in 0..n {
                tx.execute(
                    "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at) VALUES (?1, ?2, 'in', 'customer', 'text', ?3, '{}', 'received', ?4, ?5)",
                    rusqlite::params![format!("wamid.long.{i}"), id, format!("long thread message {i}"), (start + i * 1000) / 1000, start + i * 1000],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (conversations, per, requests) = (
        env_or("BENCH_CONVERSATIONS", 10_000),
        env_or("BENCH_PER_CONVERSATION", 100),
        env_or("BENCH_REQUESTS", 200),
    );
    let dir = tempfile::tempdir().unwrap();
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    let mut c = common::config(dir.path(), &graph);
    c.knowledge.embedder = frontdesk::config::EmbedderKind::None;
    std::fs::create_dir_all(&c.storage.data_dir).unwrap();
    let store = frontdesk::store::Store::open(&c.sqlite_path()).unwrap();
    let started = Instant::now();
    seed(&store, conversations, per);
    eprintln!(
        "seeded {conversations} conversations, {} messages in {:.1} s",
        conversations * per,
        started.elapsed().as_secs_f64()
    );
    let long_id = seed_long_thread(&store, 2_000);
    // One conversation in 25 snoozed until tomorrow (the Snoozed tab; the working tabs
    // leave them out by comparing with the clock).
    let tomorrow = frontdesk::domain::now_ms() + 86_400_000;
    store
        .call_blocking(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET snoozed_until = ?1 + id WHERE id % 25 = 0",
                [tomorrow],
            )?)
        })
        .unwrap();
    // A message in the middle of the long thread: a search result opens its page.
    let middle_message = store
        .call_blocking(|c| {
            Ok(
                c.query_row("SELECT id FROM messages WHERE wamid = 'wamid.long.1000'", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .unwrap();
    let rt_store = store.clone();
    frontdesk::accounts::add_user(
        &rt_store,
        "admin@bench.example",
        frontdesk::domain::auth::Role::Admin,
        "bench password 1",
        false,
        "bench",
    )
    .await
    .unwrap();
    drop(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = frontdesk::server::start(c, listener, Default::default()).await.unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .form(&[("email", "admin@bench.example"), ("password", "bench password 1")])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let human_id = conversations as i64 - 4; // a recent handed-off conversation (i % 5 == 0)
    let pages: Vec<(&str, String)> = vec![
        ("GET /healthz (baseline)", "/healthz".into()),
        ("inbox: needs a human", "/app?view=human".into()),
        ("inbox: all", "/app?view=all".into()),
        ("inbox: mine", "/app?view=mine".into()),
        ("inbox: snoozed (400 of 10,000)", "/app?view=snoozed".into()),
        ("inbox: search a name", "/app?view=all&q=Customer%209999".into()),
        (
            "inbox: search a rare word (1 in 1,000 messages)",
            "/app?view=all&q=chainring".into(),
        ),
        (
            "inbox: search 2 very common words (~1 in 3 messages each)",
            "/app?view=all&q=gravel%20helmet".into(),
        ),
        ("conversation (100 messages)", format!("/app/c/{human_id}")),
        (
            "conversation (2,000 messages, newest page of 50)",
            format!("/app/c/{long_id}"),
        ),
        (
            "conversation (2,000 messages, an earlier page)",
            format!("/app/c/{long_id}?before={}", long_thread_middle()),
        ),
        (
            "conversation (2,000 messages, opened at a search result)",
            format!("/app/c/{long_id}?m={middle_message}"),
        ),
    ];
    println!("| page | requests | p50 ms | p95 ms | p95 / baseline p95 |");
    println!("|---|---|---|---|---|");
    let mut baseline = 0.0;
    for (name, path) in pages {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let _ = r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        let (p50, p95) = (pct(times.clone(), 0.5), pct(times, 0.95));
        if baseline == 0.0 {
            baseline = p95;
        }
        println!("| {name} | {requests} | {p50:.1} | {p95:.1} | {:.1}x |", p95 / baseline);
    }
    running.stop().await.unwrap();
}
