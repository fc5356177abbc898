//! Knowledge-base speed on this machine:
//! - embedding throughput of the local model (chunks/s) and query-embedding latency;
//! - search latency p50/p95 at 10k and 100k chunks (synthetic corpus: random unit vectors
//!   and generated text), for BM25, exact vector search and hybrid, with the query already
//!   embedded (the search itself) — baseline: exact vector search;
//! - RSS with the model loaded.
//!
//! `cargo bench --bench knowledge` (env: BENCH_SIZES="10000,100000", BENCH_QUERIES=200).

use std::time::Instant;

use frontdesk::knowledge::embed::{Embedder, LocalMiniLm, find_model_dir};
use frontdesk::store::Store;
use frontdesk::store::knowledge::{self as rows, NewChunk};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| (self.next() % 20_000) as f32 / 10_000.0 - 1.0).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }
}

const WORDS: &[&str] = &["bike", "repair", "tyre", "brake", "chain", "battery", "rental", "deposit", "return", "refund", "warranty", "frame", "size", "gear", "saddle", "helmet", "lock", "light", "order", "delivery", "price", "service", "wheel", "pedal", "cable", "hours", "sunday", "shop", "invoice", "voucher"];

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "10000,100000".into()).split(',').filter_map(|s| s.parse().ok()).collect();
    let queries: usize = std::env::var("BENCH_QUERIES").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let rss0 = rss_mb();
    let model = LocalMiniLm::load(&find_model_dir(None).expect("run ./scripts/fetch-model")).unwrap();
    let _ = model.embed(&["warm up"]).unwrap();
    let rss_model = rss_mb();
    let texts: Vec<String> = (0..512)
        .map(|i| {
            let mut r = Rng(i as u64 + 1);
            (0..180).map(|_| WORDS[(r.next() % WORDS.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    model.embed(&refs).unwrap();
    let per_s = refs.len() as f64 / t.elapsed().as_secs_f64();
    let mut qlat: Vec<f64> = (0..50)
        .map(|i| {
            let t = Instant::now();
            model.embed(&[&format!("how much is a new {} for my {}", WORDS[i % 30], WORDS[(i * 7) % 30])]).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    println!("embedding: {per_s:.1} chunks/s (≈240-token chunks, batches of 32); query embedding p50 {:.1} ms, p95 {:.1} ms", pct(&mut qlat.clone(), 0.5), pct(&mut qlat, 0.95));
    println!("RSS: {rss0:.0} MB before the model, {rss_model:.0} MB with it loaded, {:.0} MB after embedding 512 chunks", rss_mb());
    println!();
    println!("| chunks | search | p50 ms | p95 ms |");
    println!("|---|---|---|---|");
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kb.db")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            store.write(|c| rows::prepare_vectors(c, "bench", 384)).await.unwrap();
            let mut r = Rng(42);
            for start in (0..n).step_by(1000) {
                let docs: Vec<(String, Vec<(String, Vec<f32>)>)> = (start..(start + 1000).min(n))
                    .map(|i| {
                        let text: String = (0..60).map(|_| WORDS[(r.next() % 30) as usize]).collect::<Vec<_>>().join(" ");
                        (format!("doc-{i}"), vec![(text, r.unit(384))])
                    })
                    .collect();
                store
                    .write(move |c| {
                        for (id, chunks) in &docs {
                            let cs: Vec<NewChunk<'_>> = chunks.iter().map(|(t, v)| NewChunk { section: "", text: t, tokens: 60, vector: v }).collect();
                            rows::replace_document(c, id, id, "bench", "h", &cs, 0)?;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        });
        store.call_blocking(|c| Ok(c.execute_batch("PRAGMA optimize;")?)).unwrap();
        let mut q = Rng(7);
        let qs: Vec<(String, Vec<f32>)> = (0..queries).map(|i| (format!("{} {} {}", WORDS[i % 30], WORDS[(i * 3) % 30], WORDS[(i * 11) % 30]), q.unit(384))).collect();
        for mode in ["bm25", "vector (exact, baseline)", "hybrid (bm25 50 + vector 50, RRF)"] {
            let mut lat = Vec::new();
            for (text, v) in &qs {
                let t = Instant::now();
                store
                    .call_blocking(|c| {
                        match mode {
                            "bm25" => {
                                rows::bm25(c, text, 10)?;
                            }
                            m if m.starts_with("vector") => {
                                rows::knn(c, v, 10)?;
                            }
                            _ => {
                                let a: Vec<i64> = rows::bm25(c, text, 50)?.into_iter().map(|x| x.0).collect();
                                let b: Vec<i64> = rows::knn(c, v, 50)?.into_iter().map(|x| x.0).collect();
                                let fused = frontdesk::knowledge::fuse::rrf(&[a, b], 60.0);
                                let ids: Vec<i64> = fused.iter().take(10).map(|x| x.0).collect();
                                rows::chunks_by_id(c, &ids)?;
                            }
                        }
                        Ok(())
                    })
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!("| {n} | {mode} | {:.2} | {:.2} |", pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.95));
        }
    }
}
