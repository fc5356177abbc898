//! Knowledge-base speed on this machine:
//! - embedding throughput of the local model (chunks/s) and query-embedding latency;
//! - search latency p50/p95 at 10k and 100k chunks, with the query already embedded (the
//!   search itself): BM25, exact vector search (the baseline), the 1-bit quantized first
//!   pass with exact rescoring, and hybrid; plus recall@10 of the quantized pass against
//!   exact search;
//! - RSS with the model loaded.
//!
//! The corpus is synthetic but shaped like the real thing: vectors are real
//! all-MiniLM-L6-v2 embeddings of the demo knowledge base's paragraphs, mixed in pairs
//! and jittered (so they keep the model's anisotropy, which is what makes 1-bit
//! quantization hard); queries are real embeddings of the demo question set; text is
//! drawn with a Zipf law from the demo documents' vocabulary plus rare synthetic words.
//!
//! `cargo bench --bench knowledge` (env: BENCH_SIZES="10000,100000", BENCH_QUERIES=112).

use std::time::Instant;

use frontdesk::knowledge::embed::{Embedder, LocalMiniLm, find_model_dir};
use frontdesk::store::Store;
use frontdesk::store::knowledge::{self as rows, NewChunk};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
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
    fn uniform(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
    /// Roughly normal (sum of uniforms), mean 0, sd 1.
    fn gauss(&mut self) -> f32 {
        ((0..6).map(|_| self.uniform()).sum::<f64>() - 3.0) as f32 * std::f32::consts::SQRT_2
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Zipf sampler over ranks 0..n (exponent 1.07, close to English).
struct Zipf(Vec<f64>);
impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (1..=n)
                .map(|r| {
                    acc += 1.0 / (r as f64).powf(1.07);
                    acc
                })
                .collect(),
        )
    }
    fn sample(&self, r: &mut Rng) -> usize {
        let x = r.uniform() * self.0.last().unwrap();
        self.0.partition_point(|&c| c < x).min(self.0.len() - 1)
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let queries: usize = std::env::var("BENCH_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rss0 = rss_mb();
    let model = LocalMiniLm::load(&find_model_dir(None).expect("run ./scripts/fetch-model")).unwrap();
    let _ = model.embed(&["warm up"]).unwrap();
    let rss_model = rss_mb();
    let kb_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/kb");
    let mut paragraphs: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&kb_dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        paragraphs.extend(
            text.split("\n\n")
                .map(str::trim)
                .filter(|p| p.len() > 40)
                .map(str::to_string),
        );
    }
    paragraphs.sort();
    // Vocabulary: the demo documents' words by frequency, then rare synthetic ones.
    let mut freq: std::collections::HashMap<String, usize> = Default::default();
    for p in &paragraphs {
        for w in p.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1) {
            *freq.entry(w.to_lowercase()).or_default() += 1;
        }
    }
    let mut vocab: Vec<(String, usize)> = freq.into_iter().collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut vocab: Vec<String> = vocab.into_iter().map(|v| v.0).collect();
    let real_words = vocab.len();
    vocab.extend((0..30_000).map(|i| format!("part{i:05}")));
    let zipf = Zipf::new(vocab.len());
    // Throughput on ~240-token chunks of demo text.
    let texts: Vec<String> = (0..256)
        .map(|i| {
            let mut r = Rng(i as u64 + 1);
            (0..180)
                .map(|_| vocab[zipf.sample(&mut r)].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    model.embed(&refs).unwrap();
    let per_s = refs.len() as f64 / t.elapsed().as_secs_f64();
    let demo_queries: Vec<String> =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/demo/queries.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    let mut qlat: Vec<f64> = demo_queries
        .iter()
        .take(60)
        .map(|q| {
            let t = Instant::now();
            model.embed(&[q.as_str()]).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let (q50, q95) = (pct(&mut qlat.clone(), 0.5), pct(&mut qlat, 0.95));
    println!(
        "embedding: {per_s:.1} chunks/s (≈240-token chunks, one batch); query embedding p50 {q50:.1} ms, p95 {q95:.1} ms"
    );
    println!(
        "RSS: {rss0:.0} MB before the model, {rss_model:.0} MB with it loaded, {:.0} MB after embedding 256 chunks",
        rss_mb()
    );
    println!(
        "corpus: {} real paragraphs as vector anchors, vocabulary {real_words} real + 30000 rare words",
        paragraphs.len()
    );
    let anchors: Vec<Vec<f32>> = paragraphs
        .chunks(32)
        .flat_map(|b| model.embed(&b.iter().map(String::as_str).collect::<Vec<_>>()).unwrap())
        .collect();
    let query_vecs: Vec<Vec<f32>> = model
        .embed(&demo_queries.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let n_queries = queries.min(query_vecs.len());
    println!();
    println!("| chunks | search | p50 ms | p95 ms | recall@10 vs exact |");
    println!("|---|---|---|---|---|");
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kb.db")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let t = Instant::now();
        rt.block_on(async {
            store.write(|c| rows::prepare_vectors(c, "bench", 384)).await.unwrap();
            let mut r = Rng(42);
            for start in (0..n).step_by(1000) {
                #[allow(clippy::type_complexity)]
                let docs: Vec<(String, Vec<(String, Vec<f32>)>)> = (start..(start + 1000).min(n))
                    .map(|i| {
                        let text: String = (0..120)
                            .map(|_| vocab[zipf.sample(&mut r)].as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                        // Two real paragraph vectors mixed, plus jitter: cosine ≈ 0.8 to the mix.
                        let (a, b) = (&anchors[r.below(anchors.len())], &anchors[r.below(anchors.len())]);
                        let mut v: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + 0.6 * y).collect();
                        normalize(&mut v);
                        let jitter: Vec<f32> = (0..384).map(|_| r.gauss()).collect();
                        let jn = jitter.iter().map(|x| x * x).sum::<f32>().sqrt();
                        v.iter_mut().zip(&jitter).for_each(|(x, j)| *x += 0.75 * j / jn);
                        normalize(&mut v);
                        (format!("doc-{i}"), vec![(text, v)])
                    })
                    .collect();
                store
                    .write(move |c| {
                        for (id, chunks) in &docs {
                            let cs: Vec<NewChunk<'_>> = chunks
                                .iter()
                                .map(|(t, v)| NewChunk {
                                    section: "",
                                    text: t,
                                    tokens: 120,
                                    vector: v,
                                })
                                .collect();
                            rows::replace_document(c, id, id, "bench", "h", &cs, 0)?;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        });
        store
            .call_blocking(|c| Ok(c.execute_batch("PRAGMA optimize;")?))
            .unwrap();
        eprintln!("built {n} chunks in {:.0} s", t.elapsed().as_secs_f64());
        let qs: Vec<(&str, &Vec<f32>)> = demo_queries
            .iter()
            .map(String::as_str)
            .zip(&query_vecs)
            .take(n_queries)
            .collect();
        let bits: std::sync::Mutex<Option<std::sync::Arc<frontdesk::domain::quant_index::QuantIndex>>> =
            Default::default();
        let t = Instant::now();
        store
            .call_blocking(|c| frontdesk::store::knowledge::quantized_knn(c, &bits, &query_vecs[0], 1, 1))
            .unwrap();
        println!(
            "| {n} | (building the quantized index once: {:.0} ms) | | | |",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let exact: Vec<Vec<i64>> = qs
            .iter()
            .map(|(_, v)| {
                store
                    .call_blocking(|c| rows::knn(c, v, 10))
                    .unwrap()
                    .into_iter()
                    .map(|x| x.0)
                    .collect()
            })
            .collect();
        for mode in [
            "bm25",
            "vector exact (baseline)",
            "vector 1-bit x100 + int8 x10 + exact",
            "vector 1-bit x200 + int8 x20 + exact",
            "hybrid (bm25 50 + quantized vector 50, RRF, chunk fetch)",
        ] {
            let mut lat = Vec::new();
            let mut found = 0usize;
            for (qi, (text, v)) in qs.iter().enumerate() {
                let t = Instant::now();
                let got: Vec<i64> = store
                    .call_blocking(|c| {
                        Ok(match mode {
                            "bm25" => rows::bm25(c, text, 10)?.into_iter().map(|x| x.0).collect(),
                            m if m.starts_with("vector exact") => {
                                rows::knn(c, v, 10)?.into_iter().map(|x| x.0).collect()
                            }
                            m if m.starts_with("vector 1-bit x100") => {
                                frontdesk::store::knowledge::quantized_knn(c, &bits, v, 10, 10)?
                                    .into_iter()
                                    .map(|x| x.0)
                                    .collect()
                            }
                            m if m.starts_with("vector 1-bit") => {
                                frontdesk::store::knowledge::quantized_knn(c, &bits, v, 10, 20)?
                                    .into_iter()
                                    .map(|x| x.0)
                                    .collect()
                            }
                            _ => {
                                let a: Vec<i64> = rows::bm25(c, text, 50)?.into_iter().map(|x| x.0).collect();
                                let b: Vec<i64> = frontdesk::store::knowledge::quantized_knn(c, &bits, v, 50, 2)?
                                    .into_iter()
                                    .map(|x| x.0)
                                    .collect();
                                let fused = frontdesk::knowledge::fuse::rrf(&[a, b], 60.0);
                                let ids: Vec<i64> = fused.iter().take(10).map(|x| x.0).collect();
                                rows::chunks_by_id(c, &ids)?;
                                Vec::new()
                            }
                        })
                    })
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                found += got.iter().filter(|id| exact[qi].contains(id)).count();
            }
            let recall = if mode.starts_with("vector") {
                format!("{:.3}", found as f64 / (10 * qs.len()) as f64)
            } else {
                "—".into()
            };
            println!(
                "| {n} | {mode} | {:.2} | {:.2} | {recall} |",
                pct(&mut lat.clone(), 0.5),
                pct(&mut lat, 0.95)
            );
        }
    }
}
