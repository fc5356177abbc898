//! Webhook ingest load test: signed POSTs from concurrent clients on loopback against the
//! real server (in this process, port 0, temp data dir, workers running).
//!
//! Runs, each with group commit on and, as the baseline, off (one durable commit per
//! request, `queue.group_commit_max_batch = 1`):
//! - closed loop: N clients send as fast as they can → acknowledged webhooks/s, p50/p99;
//! - open loop at a fixed rate (default 1,000 req/s) → p50/p99/max ACK latency, measured
//!   from each request's scheduled start (no coordinated omission).
//!
//! Then, group commit on, the concurrency sweep: one client replaying sequentially, 16 and
//! 64 clients → ACKs/s, p99, journal fsyncs per ACK (durable commits of the writer thread
//! over acknowledged webhooks), and the process's resident memory.
//!
//! With `BENCH_BASELINE_BIN=/path/to/an/older/frontdesk`, the sweep also runs against two
//! separate server processes started the same way — that binary and this build's — so a
//! before/after comparison shares one machine, one load generator and one run; RSS is then
//! the server process's own.
//!
//! `cargo bench --bench webhook_ingest` (env: BENCH_REQUESTS, BENCH_CLIENTS, BENCH_RATE,
//! BENCH_SECONDS, BENCH_BASELINE_BIN).

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use frontdesk::config::{Config, Secret};
use frontdesk::whatsapp::signature::sign;

use common::{SECRET, env_or};

fn body(i: usize) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"P1"}},"contacts":[{{"profile":{{"name":"Load {i}"}},"wa_id":"3161{:07}"}}],"messages":[{{"from":"3161{:07}","id":"wamid.bench-{i:09}","timestamp":"1700000000","type":"text","text":{{"body":"Hello, is my order {i} on its way?"}}}}]}}}}]}}]}}"#,
        i % 5000,
        i % 5000
    )
    .into_bytes()
}

struct Server {
    base: String,
    running: frontdesk::server::Running,
    _dir: tempfile::TempDir,
}

async fn start(group_commit: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.storage.data_dir = dir.path().to_path_buf();
    c.whatsapp.app_secret = Secret::new(SECRET);
    c.whatsapp.verify_token = Secret::new("v");
    c.log.level = "warn".into();
    if !group_commit {
        c.queue.group_commit_max_batch = 1;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = frontdesk::server::start(c, listener, Default::default()).await.unwrap();
    Server {
        base: format!("http://{}/webhook", running.addr),
        running,
        _dir: dir,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

struct Report {
    ok: usize,
    failed: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Report {
    fn line(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            self.ok,
            self.failed,
            self.ok as f64 / self.secs,
            percentile(&self.lat, 0.50),
            percentile(&self.lat, 0.99),
            self.lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
        )
    }
}

async fn closed_loop(base: &str, offset: usize, requests: usize, clients: usize) -> Report {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next, base) = (client.clone(), next.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let b = body(offset + i);
                let sig = sign(SECRET.as_bytes(), &b);
                let t = Instant::now();
                let r = client
                    .post(&base)
                    .header("x-hub-signature-256", sig)
                    .body(b)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 200 => lat.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        lat.extend(l);
        failed += f;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Report {
        ok: lat.len(),
        failed,
        secs,
        lat,
    }
}

async fn open_loop(base: &str, offset: usize, rate: usize, seconds: usize) -> Report {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let total = rate * seconds;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, base) = (client.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let b = body(offset + i);
            let sig = sign(SECRET.as_bytes(), &b);
            let r = client
                .post(&base)
                .header("x-hub-signature-256", sig)
                .body(b)
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 200 => Some(scheduled.elapsed()),
                _ => None,
            }
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(d) => lat.push(d),
            None => failed += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Report {
        ok: lat.len(),
        failed,
        secs,
        lat,
    }
}

fn main() {
    let requests = env_or("BENCH_REQUESTS", 20_000);
    let clients = env_or("BENCH_CLIENTS", 64);
    let rate = env_or("BENCH_RATE", 1_000);
    let seconds = env_or("BENCH_SECONDS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("webhook ingest: {requests} requests, {clients} clients (closed loop); {rate} req/s for {seconds} s (open loop)");
        println!("cores: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!();
        println!("| run | acked | failed | acked/s | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        let mut throughput = Vec::new();
        for group in [true, false] {
            let label = if group { "group commit" } else { "one commit per request (baseline)" };
            let s = start(group).await;
            // Warm up connections and the page cache.
            let _ = closed_loop(&s.base, 10_000_000, 500, clients).await;
            let r = closed_loop(&s.base, 0, requests, clients).await;
            println!("{}", r.line(&format!("closed loop, {label}")));
            throughput.push(r.ok as f64 / r.secs);
            let c = s.running.app.queue.commit_stats();
            let commits = c.commits.load(std::sync::atomic::Ordering::Relaxed);
            let ops = c.ops.load(std::sync::atomic::Ordering::Relaxed);
            let r = open_loop(&s.base, 20_000_000, rate, seconds).await;
            println!("{}", r.line(&format!("open loop {rate}/s, {label}")));
            eprintln!("  ({label}: {ops} queue ops in {commits} commits during closed loop + warm-up, {:.1} ops/commit)", ops as f64 / commits.max(1) as f64);
            s.running.stop().await.unwrap();
        }
        println!();
        println!("group commit / baseline throughput ratio: {:.2}x", throughput[0] / throughput[1]);
        println!();
        println!("| clients | acked | acked/s | p50 ms | p99 ms | journal fsyncs per ACK | RSS MiB (peak) |");
        println!("|---|---|---|---|---|---|---|");
        let s = start(true).await;
        let _ = closed_loop(&s.base, 30_000_000, 500, 16).await;
        for (n, (conns, count)) in [(1usize, 3_000usize), (16, requests / 2), (64, requests)].into_iter().enumerate() {
            let c = s.running.app.queue.commit_stats();
            let before = c.commits.load(std::sync::atomic::Ordering::Relaxed);
            let r = closed_loop(&s.base, 40_000_000 + n * 1_000_000, count, conns).await;
            let commits = c.commits.load(std::sync::atomic::Ordering::Relaxed) - before;
            let (rss, peak) = rss_mib();
            println!(
                "| {conns}{} | {} | {:.0} | {:.2} | {:.2} | {:.3} | {rss} ({peak}) |",
                if conns == 1 { " (sequential replay)" } else { "" },
                r.ok,
                r.ok as f64 / r.secs,
                percentile(&r.lat, 0.50),
                percentile(&r.lat, 0.99),
                commits as f64 / r.ok.max(1) as f64
            );
        }
        s.running.stop().await.unwrap();
        if let Ok(old) = std::env::var("BENCH_BASELINE_BIN") {
            println!();
            println!("separate server processes, same load generator (before = {old}):");
            println!();
            println!("| binary | clients | acked | acked/s | p50 ms | p99 ms | server RSS MiB (peak) |");
            println!("|---|---|---|---|---|---|---|");
            for (label, bin) in [("before", old.as_str()), ("after", env!("CARGO_BIN_EXE_frontdesk"))] {
                let mut server = External::start(bin);
                let _ = closed_loop(&server.base, 50_000_000, 500, 16).await;
                for (n, (conns, count)) in [(1usize, 3_000usize), (16, requests / 2), (64, requests)].into_iter().enumerate() {
                    let r = closed_loop(&server.base, 60_000_000 + n * 1_000_000, count, conns).await;
                    let (rss, peak) = server.rss_mib();
                    println!(
                        "| {label} | {conns} | {} | {:.0} | {:.2} | {:.2} | {rss} ({peak}) |",
                        r.ok,
                        r.ok as f64 / r.secs,
                        percentile(&r.lat, 0.50),
                        percentile(&r.lat, 0.99)
                    );
                }
                server.stop();
            }
        }
    });
}

/// A server binary run as its own process on a temp data dir (embedder off, like the
/// in-process runs' defaults would be for a webhook-only load).
struct External {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl External {
    fn start(bin: &str) -> External {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"{SECRET}\"\nverify_token = \"v\"\n[knowledge]\nembedder = \"none\"\n[log]\nlevel = \"warn\"\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("{}/webhook", common::listening_base(&mut child));
        External { child, base, _dir: dir }
    }

    fn rss_mib(&self) -> (u64, u64) {
        rss_of(&format!("/proc/{}/status", self.child.id()))
    }

    fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Resident and peak resident memory of this process (server and load generator), MiB.
fn rss_mib() -> (u64, u64) {
    rss_of("/proc/self/status")
}

fn rss_of(path: &str) -> (u64, u64) {
    let (rss, peak) = common::memory_kib(path);
    (rss / 1024, peak / 1024)
}
