//! Outbound sending against the fake Graph API on loopback.
//!
//! 1. Throughput with limits lifted: messages enqueued through `outbound::enqueue` (ledger
//!    row + send job) by concurrent producers until the fake has accepted them all.
//!    Baseline in the same run: the bare Graph client posting the same bodies (no ledger,
//!    no queue), to show what durability costs.
//! 2. The default per-number cap (80 msg/s): the measured rate over many recipients.
//! 3. Webhook → ledger `accepted` latency with the built-in responder: signed inbound
//!    webhooks at a steady rate, each answered; latency from POST to accepted_at.
//!
//! `cargo bench --bench outbound` (env: BENCH_SENDS, BENCH_CAP_SENDS, BENCH_REPLIES).

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::domain::outbound::OutboundBody;
use frontdesk::store::ledger::NewOutbound;
use frontdesk::whatsapp::signature::sign;

#[path = "common/mod.rs"]
mod common;
use common::{Env, SECRET, TOKEN, env_or, inbound, start};
use frontdesk::config::Secret;

/// Creates `n` conversations (one inbound message each) and returns their ids.
async fn conversations(env: &Env, n: usize) -> Vec<i64> {
    let client = reqwest::Client::new();
    for i in 0..n {
        let b = inbound(&format!("3170{i:07}"), &format!("wamid.seed-{i}"));
        let sig = sign(SECRET.as_bytes(), b.as_bytes());
        client
            .post(format!("{}/webhook", env.base))
            .header("x-hub-signature-256", sig)
            .body(b)
            .send()
            .await
            .unwrap();
    }
    loop {
        let ids: Vec<i64> = env
            .running
            .app
            .store
            .call_blocking(|c| {
                let mut st = c.prepare("SELECT id FROM conversations ORDER BY id")?;
                Ok(st.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?)
            })
            .unwrap();
        if ids.len() == n {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn enqueue_all(env: &Env, convs: &[i64], total: usize, producers: usize) -> Duration {
    let start = Instant::now();
    let convs = Arc::new(convs.to_vec());
    let before = env.graph.sent().len();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (app, convs) = (env.running.app.clone(), convs.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = p;
            while i < total {
                let req = NewOutbound {
                    conversation_id: convs[i % convs.len()],
                    author: "bench".into(),
                    body: OutboundBody::Text {
                        body: format!("Update {i}: your bike is ready for collection."),
                        preview_url: false,
                    },
                    reply_to: None,
                    idempotency_key: format!("bench-{i}"),
                };
                app.outbound.enqueue(req).await.unwrap();
                i += producers;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    while env.graph.sent().len() < before + total {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let sends = env_or("BENCH_SENDS", 5_000);
    let cap_sends = env_or("BENCH_CAP_SENDS", 800);
    let replies = env_or("BENCH_REPLIES", 400);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| run | messages | seconds | messages/s |");
        println!("|---|---|---|---|");
        // 1. Limits lifted.
        let env = start(|c| {
            c.bot.enabled = false;
            c.send.number_rate_per_s = 0.0;
            c.send.pair_interval_ms = 0;
        })
        .await;
        let convs = Arc::new(conversations(&env, 500).await);
        let took = enqueue_all(&env, &convs, sends, 32).await;
        let ledger_rate = sends as f64 / took.as_secs_f64();
        println!("| enqueue + send end to end, limits lifted | {sends} | {:.2} | {ledger_rate:.0} |", took.as_secs_f64());
        // Baseline: the bare client, same concurrency, same fake.
        let graph = frontdesk::whatsapp::graph::GraphClient::new(&env.graph.base_url(), "v23.0", Secret::new(TOKEN), Duration::from_secs(10));
        let start_b = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..32 {
            let graph = graph.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = p;
                while i < sends {
                    let body = OutboundBody::Text { body: format!("Update {i}"), preview_url: false }.to_graph_json(&frontdesk::domain::outbound::Recipient::Number("31700000000".into()), None, None);
                    graph.send("P1", &body).await.unwrap();
                    i += 32;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let bare = start_b.elapsed();
        let bare_rate = sends as f64 / bare.as_secs_f64();
        println!("| bare Graph client (baseline, no ledger) | {sends} | {:.2} | {bare_rate:.0} |", bare.as_secs_f64());
        env.running.stop().await.unwrap();

        // 2. Default cap.
        let env = start(|c| c.bot.enabled = false).await;
        let convs = conversations(&env, cap_sends).await;
        let _ = enqueue_all(&env, &convs, cap_sends, 32).await;
        let at: Vec<u64> = env.graph.sent().iter().map(|m| m.at_ms).collect();
        let span = (at.iter().max().unwrap() - at.iter().min().unwrap()) as f64 / 1000.0;
        // The sustained rate over the middle 80% (the first messages go as a burst, and
        // their arrival is delayed by the enqueue load at the start).
        let mut sorted = at.clone();
        sorted.sort();
        let (a, b) = (sorted.len() / 10, sorted.len() * 9 / 10);
        let sustained = (b - a) as f64 / ((sorted[b] - sorted[a]) as f64 / 1000.0);
        println!("| default cap 80/s, {cap_sends} recipients | {cap_sends} | {span:.2} | {sustained:.1} sustained |");
        env.running.stop().await.unwrap();
        println!();
        println!("end to end / bare client: {:.2}x; cap 80/s measured {sustained:.1}/s ({:+.1}%)", ledger_rate / bare_rate, (sustained / 80.0 - 1.0) * 100.0);

        // 3. Webhook → accepted latency with the built-in responder.
        let env = start(|c| {
            c.send.number_rate_per_s = 0.0;
            c.send.read_receipts = true;
        })
        .await;
        let client = reqwest::Client::new();
        let mut posted = Vec::new();
        for i in 0..replies {
            let wamid = format!("wamid.lat-{i}");
            let b = inbound(&format!("3171{i:07}"), &wamid);
            let sig = sign(SECRET.as_bytes(), b.as_bytes());
            let t0 = frontdesk::domain::now_ms();
            client.post(format!("{}/webhook", env.base)).header("x-hub-signature-256", sig).body(b).send().await.unwrap();
            posted.push((wamid, t0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while env.graph.sent().len() < replies {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let accepted: Vec<(String, i64)> = env
            .running
            .app
            .store
            .call_blocking(|c| {
                let mut st = c.prepare("SELECT substr(idempotency_key, 7), accepted_at FROM outbound WHERE accepted_at IS NOT NULL")?;
                Ok(st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        let map: std::collections::HashMap<String, i64> = accepted.into_iter().collect();
        let mut lat: Vec<f64> = posted.iter().filter_map(|(w, t0)| map.get(w).map(|a| (a - t0) as f64)).collect();
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!();
        println!("webhook → ledger accepted (built-in responder, {} replies at 50/s): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms", lat.len(), pct(&lat, 0.5), pct(&lat, 0.95), lat[lat.len() - 1]);
        env.running.stop().await.unwrap();
    });
}
