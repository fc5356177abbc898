//! Inbound media on loopback: the real server, the fake Graph API serving the files.
//! (1) Download + check + store throughput: a burst of media messages (plain-text
//! documents, each unique) goes through the media workers until every row is read; the
//! baseline is the same files fetched straight from the fake Graph API by one client in the
//! same process. (2) Webhook acknowledgement latency (p50/p99) with no media work — the
//! baseline — and while a media burst is being processed.
//!
//! `cargo bench --bench media` (env: BENCH_MEDIA_FILES=400, BENCH_MEDIA_KB=256,
//! BENCH_POSTERS=4).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{SECRET, env_or, pct, steady_load};

fn document(wa_id: &str, wamid: &str, media_id: &str) -> String {
    let now = frontdesk::domain::now_ms() / 1000;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"contacts":[{{"profile":{{"name":"C"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{wamid}","timestamp":"{now}","type":"document","document":{{"id":"{media_id}","mime_type":"text/plain","filename":"notes.txt"}}}}]}}}}]}}]}}"#
    )
}

/// A unique plain-text file of about `kb` KiB.
fn file(i: usize, kb: usize) -> Vec<u8> {
    let line = format!("file {i}: the order arrived with a scratched frame and a bent wheel, please advise\n");
    line.repeat(kb * 1024 / line.len() + 1).into_bytes()
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> Duration {
    let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let t = Instant::now();
    let r = client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.elapsed()
}

async fn done_rows(app: &frontdesk::app::App, prefix: &str) -> i64 {
    let like = format!("{prefix}%");
    app.store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM media WHERE status <> 'pending' AND wamid LIKE ?1",
                [like],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (files, kb, posters) = (
        env_or("BENCH_MEDIA_FILES", 400),
        env_or("BENCH_MEDIA_KB", 256),
        env_or("BENCH_POSTERS", 4),
    );
    let env = common::start(|c| c.bot.enabled = false).await;
    let app = env.running.app.clone();
    let client = reqwest::Client::new();
    for i in 0..files * 2 {
        env.graph.add_media(&format!("m{i}"), "text/plain", file(i, kb));
    }
    let bytes = (files * file(0, kb).len()) as f64;

    // Baseline: the same files straight from the fake Graph API (metadata, then bytes).
    let graph = frontdesk::whatsapp::graph::GraphClient::new(
        &env.graph.base_url(),
        "v21.0",
        frontdesk::config::Secret::new(common::TOKEN),
        Duration::from_secs(10),
    );
    let t = Instant::now();
    for i in 0..files {
        graph.download_media(&format!("m{i}"), u64::MAX).await.unwrap();
    }
    let raw_s = t.elapsed().as_secs_f64();

    // The media path: webhooks in, workers download, check, store and read each file.
    let t = Instant::now();
    for i in 0..files {
        post(
            &client,
            &env.base,
            document(&format!("3170{:05}", i), &format!("wamid.tp.{i}"), &format!("m{i}")),
        )
        .await;
    }
    while done_rows(&app, "wamid.tp.").await < files as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let media_s = t.elapsed().as_secs_f64();
    let failed: i64 = app
        .store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM media WHERE status = 'failed'", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(failed, 0, "every file read");

    // ACK latency: a steady text load alone, then with a media burst being processed.
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(steady_load(env.base.clone(), posters, stop.clone(), "base"));
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let mut baseline = task.await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(steady_load(env.base.clone(), posters, stop.clone(), "burst"));
    let burst_t = Instant::now();
    for i in files..files * 2 {
        post(
            &client,
            &env.base,
            document(&format!("3171{:05}", i), &format!("wamid.burst.{i}"), &format!("m{i}")),
        )
        .await;
    }
    while done_rows(&app, "wamid.burst.").await < files as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let burst_s = burst_t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut during = task.await.unwrap();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| files | {files} × {kb} KiB (plain-text documents, each unique) |");
    println!(
        "| baseline: one client fetching them from the fake Graph API | {:.0} files/s, {:.0} MB/s |",
        files as f64 / raw_s,
        bytes / raw_s / 1e6
    );
    println!(
        "| media path: webhook → job → download → checks → store → text read | {:.0} files/s, {:.0} MB/s |",
        files as f64 / media_s,
        bytes / media_s / 1e6
    );
    println!("| media path / baseline | {:.2}x |", raw_s / media_s);
    let (b50, b99) = (pct(&mut baseline, 0.5), pct(&mut baseline, 0.99));
    let (d50, d99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
    println!(
        "| webhook ACK, no media work: p50 / p99 ({} posts) | {b50:.2} / {b99:.2} ms |",
        baseline.len()
    );
    println!(
        "| webhook ACK during a {files}-file media burst ({burst_s:.1} s): p50 / p99 ({} posts) | {d50:.2} / {d99:.2} ms |",
        during.len()
    );
    println!("| p99 during / p99 baseline | {:.2}x |", d99 / b99);
    env.running.stop().await.unwrap();
}
