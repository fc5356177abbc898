//! Backups at size: a database seeded with 1,000,000 messages (10,000 conversations of
//! 100), the real server on loopback, and `backup::snapshot` taken while webhooks keep
//! arriving. Reports the backup's time and size, and the webhook acknowledgement latency
//! (p50/p99) with no backup running — the baseline, same process — and during the backup.
//!
//! `cargo bench --bench backup` (env: BENCH_CONVERSATIONS=10000, BENCH_PER_CONVERSATION=100,
//! BENCH_POSTERS=4).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TOKEN, env_or, pct, seed, steady_load};

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (conversations, per, posters) = (
        env_or("BENCH_CONVERSATIONS", 10_000),
        env_or("BENCH_PER_CONVERSATION", 100),
        env_or("BENCH_POSTERS", 4),
    );
    let dir = tempfile::tempdir().unwrap();
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    graph.set_statuses(None);
    let mut c = common::config(dir.path(), &graph);
    c.knowledge.embedder = frontdesk::config::EmbedderKind::None;
    c.bot.enabled = false;
    std::fs::create_dir_all(&c.storage.data_dir).unwrap();
    let store = frontdesk::store::Store::open(&c.sqlite_path()).unwrap();
    let started = Instant::now();
    seed(&store, conversations, per);
    eprintln!(
        "seeded {} messages in {:.1} s",
        conversations * per,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let db_bytes = std::fs::metadata(c.sqlite_path()).unwrap().len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = frontdesk::server::start(c, listener, Default::default()).await.unwrap();
    let base = format!("http://{}", running.addr);

    // Baseline: the same load for 10 s with no backup.
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(steady_load(base.clone(), posters, stop.clone(), "base"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let mut baseline = task.await.unwrap();

    // The same load while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(steady_load(base.clone(), posters, stop.clone(), "during"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = dir.path().join("backup");
    let t = Instant::now();
    let manifest = frontdesk::backup::snapshot(&running.app.store, &running.app.queue, &out)
        .await
        .unwrap();
    let backup_s = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut during = task.await.unwrap();
    let verify_t = Instant::now();
    frontdesk::backup::verify(&out).unwrap();
    let verify_s = verify_t.elapsed().as_secs_f64();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| messages in the backup | {} |", manifest.database.messages);
    println!("| database file before | {:.0} MB |", db_bytes as f64 / 1e6);
    println!(
        "| backup size (database + journal + manifest) | {:.0} MB |",
        dir_bytes(&out) as f64 / 1e6
    );
    println!("| backup time (VACUUM INTO + journal copy + checks + checksums) | {backup_s:.1} s |");
    println!("| verify time (checksums + both integrity checks) | {verify_s:.1} s |");
    let (b50, b99) = (pct(&mut baseline, 0.5), pct(&mut baseline, 0.99));
    let (d50, d99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
    println!(
        "| webhook ACK, no backup: p50 / p99 ({} posts) | {b50:.2} / {b99:.2} ms |",
        baseline.len()
    );
    println!(
        "| webhook ACK during the backup: p50 / p99 ({} posts) | {d50:.2} / {d99:.2} ms |",
        during.len()
    );
    println!("| p99 during / p99 baseline | {:.2}x |", d99 / b99);
    running.stop().await.unwrap();
}
