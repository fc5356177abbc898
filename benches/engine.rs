//! The conversation engine on loopback, with a zero-latency fake model (an Anthropic
//! Messages API that answers at once) and the fake Graph API:
//!
//! 1. Engine overhead: everything but the model and the query embedding — rules,
//!    routing, retrieval (BM25), prompt assembly, the model client and its JSON, strict
//!    parse, guard, ledger, trace — from each reply's trace (`total - llm`), keyword
//!    retrieval only so no embedding time is in it.
//! 2. Webhook → reply accepted by the fake Graph API, debounce off, with local
//!    embeddings (the real pipeline): p50/p95 and the stage breakdown.
//! 3. Cost per message for the seed's mix (600 in / 200 out tokens, 18% on the reasoning
//!    tier) from the price table.
//!
//! `cargo bench --bench engine` (env: BENCH_MESSAGES=300).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use common::{SECRET, env_or, start};
use frontdesk::config::{ProviderConfig, Secret};
use frontdesk::llm::price;
use frontdesk::whatsapp::signature::sign;
use serde_json::{Value, json};

/// An Anthropic-compatible model that answers every request at once.
async fn instant_model() -> String {
    let app = axum::Router::new().route(
        "/v1/messages",
        post(|Json(body): Json<Value>| async move {
            Json(json!({
                "id": "msg_bench", "type": "message", "role": "assistant", "model": body["model"], "stop_reason": "tool_use",
                "usage": { "input_tokens": 600, "output_tokens": 200 },
                "content": [{ "type": "tool_use", "id": "t", "name": "reply",
                    "input": { "reply": "Thanks for asking! A teammate can tell you more about sizes in the shop.", "handoff": false, "reason": "bench", "confidence": 0.9, "sources": [] } }]
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn question(wa_id: &str, wamid: &str, text: &str) -> String {
    let now = frontdesk::domain::now_ms() / 1000;
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
        "metadata": { "phone_number_id": "P1" }, "contacts": [{ "profile": { "name": "C" }, "wa_id": wa_id }],
        "messages": [{ "from": wa_id, "id": wamid, "timestamp": now.to_string(), "type": "text", "text": { "body": text } }] } }] }] })
    .to_string()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const QUESTIONS: &[&str] = &[
    "r u open sunday",
    "how much to fix a flat tyre",
    "do you sell electric bikes",
    "can I rent a bike for the weekend",
    "what is your return policy",
    "do you have the gravel bike in size M",
];

/// Sends `n` questions from distinct customers one after another; returns per-message
/// latency (ms) from POST to the reply accepted by the fake Graph API, and the traces.
async fn run(embedder: &str, n: usize) -> (Vec<f64>, Vec<frontdesk::store::handoffs::Trace>) {
    let model = instant_model().await;
    let env = start(|c| {
        c.knowledge.embedder = if embedder == "none" {
            frontdesk::config::EmbedderKind::None
        } else {
            frontdesk::config::EmbedderKind::Local
        };
        c.llm.providers.insert(
            "anthropic".into(),
            ProviderConfig {
                kind: "anthropic".into(),
                base_url: model,
                api_key: Secret::new("k"),
                timeout_ms: 5_000,
                ..Default::default()
            },
        );
        c.llm.tiers.commodity = vec!["anthropic:claude-haiku-4-5".into()];
        c.llm.tiers.reasoning = vec!["anthropic:claude-sonnet-4-5".into()];
        c.send.number_rate_per_s = 0.0;
    })
    .await;
    let kb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/kb");
    env.running.app.knowledge.prepare(&|_, _| {}).await.unwrap();
    env.running
        .app
        .knowledge
        .add_paths(&[kb], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let (wa, wamid) = (format!("3172{i:07}"), format!("wamid.eng-{embedder}-{i}"));
        let body = question(&wa, &wamid, QUESTIONS[i % QUESTIONS.len()]);
        let sig = sign(SECRET.as_bytes(), body.as_bytes());
        let before = env.graph.sent().len();
        let t = Instant::now();
        client
            .post(format!("{}/webhook", env.base))
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        while env.graph.sent().len() == before {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let traces = env
        .running
        .app
        .store
        .call_blocking(move |c| {
            let mut out = Vec::new();
            for i in 0..n {
                if let Some(t) = frontdesk::store::handoffs::trace_for(c, &format!("wamid.eng-{embedder}-{i}"))? {
                    out.push(t);
                }
            }
            Ok(out)
        })
        .unwrap();
    env.running.stop().await.unwrap();
    (lat, traces)
}

fn stage(
    traces: &[frontdesk::store::handoffs::Trace],
    f: impl Fn(&frontdesk::store::handoffs::Trace) -> f64,
) -> (f64, f64) {
    let mut v: Vec<f64> = traces.iter().map(f).collect();
    (pct(&mut v.clone(), 0.5), pct(&mut v, 0.95))
}

fn main() {
    let n = env_or("BENCH_MESSAGES", 300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ms = |t: &frontdesk::store::handoffs::Trace, k: &str| t.stages_ms[k].as_f64().unwrap_or(0.0);
        println!("| run | messages | webhook → accepted p50 ms | p95 ms | engine total p95 | retrieval p95 | model call p95 | send enqueue p95 | overhead (total − model) p50 / p95 |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for embedder in ["none", "local"] {
            let (mut lat, traces) = run(embedder, n).await;
            assert!(traces.iter().all(|t| t.outcome == "answered"), "every bench message is answered");
            let (p50, p95) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.95));
            let total = stage(&traces, |t| ms(t, "total"));
            let retrieval = stage(&traces, |t| ms(t, "retrieval"));
            let llm = stage(&traces, |t| ms(t, "llm"));
            let send = stage(&traces, |t| ms(t, "send"));
            let overhead = stage(&traces, |t| ms(t, "total") - ms(t, "llm"));
            let label = if embedder == "none" { "keyword retrieval (no embedding)" } else { "local embeddings (real pipeline)" };
            println!(
                "| {label} | {} | {p50:.1} | {p95:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} |",
                traces.len(),
                total.1,
                retrieval.1,
                llm.1,
                send.1,
                overhead.0,
                overhead.1
            );
        }
        let p = price::defaults();
        let haiku = price::cost(&p, "claude-haiku-4-5", 600, 200);
        let sonnet = price::cost(&p, "claude-sonnet-4-5", 600, 200);
        let mix = price::blended(&p, "claude-haiku-4-5", "claude-sonnet-4-5", 0.18, 600, 200);
        println!();
        println!("cost per message (600 in / 200 out): haiku-4-5 ${haiku:.5}, sonnet-4-5 ${sonnet:.5}, 82/18 mix ${mix:.5}; at 10k messages/day ${:.2}/day", mix * 10_000.0);
    });
}
