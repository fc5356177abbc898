//! Queue throughput: jobs enqueued by concurrent producers while consumers claim them in
//! batches and complete them, every write durable. Reports jobs/s end to end, with group
//! commit and with one commit per operation (baseline).
//!
//! `cargo bench --bench queue_throughput` (env: BENCH_JOBS, BENCH_PRODUCERS, BENCH_CONSUMERS).

use std::time::Instant;

use frontdesk::config::QueueConfig;
use frontdesk::queue::{JobOutcome, NewJob, Queue};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(group: bool, jobs: usize, producers: usize, consumers: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig {
        group_commit_max_batch: if group { 1024 } else { 1 },
        ..QueueConfig::default()
    };
    let q = Queue::open(&dir.path().join("q.redb"), &config).unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = p;
            while i < jobs {
                q.enqueue(NewJob {
                    queue: "bench".into(),
                    payload: vec![7u8; 512],
                    max_attempts: 3,
                    run_at_ms: 0,
                })
                .await
                .unwrap();
                i += producers;
            }
        }));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..consumers {
        let (q, done) = (q.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::Relaxed) < jobs {
                let claimed = q.claim("bench", 64).await.unwrap();
                if claimed.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                    continue;
                }
                let n = claimed.len();
                q.finish_many(
                    claimed
                        .into_iter()
                        .map(|j| (j.id, j.lease_token, JobOutcome::Done))
                        .collect(),
                )
                .await
                .unwrap();
                done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let commits = q.commit_stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    (jobs as f64 / secs, commits)
}

fn main() {
    let jobs = env_or("BENCH_JOBS", 20_000);
    let producers = env_or("BENCH_PRODUCERS", 32);
    let consumers = env_or("BENCH_CONSUMERS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("queue: {jobs} jobs of 512 B, {producers} producers, {consumers} consumers claiming 64 at a time; durable commits");
        println!();
        println!("| run | jobs/s (enqueue+claim+complete) | commits |");
        println!("|---|---|---|");
        let (g, gc) = run(true, jobs, producers, consumers).await;
        println!("| group commit | {g:.0} | {gc} |");
        let base_jobs = jobs / 4;
        let (b, bc) = run(false, base_jobs, producers, consumers).await;
        println!("| one commit per operation (baseline, {base_jobs} jobs) | {b:.0} | {bc} |");
        println!();
        println!("group commit / baseline ratio: {:.2}x", g / b);
    });
}
