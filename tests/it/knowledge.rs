//! The knowledge base through the real CLI and library: local embeddings against the
//! Python reference, ingest (idempotent, replacing, bad files reported), search, delete,
//! a model change re-embedding, and a kill -9 in the middle of an ingest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use frontdesk::error::Result;
use frontdesk::knowledge::embed::{Embedder, LocalMiniLm, find_model_dir};
use frontdesk::knowledge::{Knowledge, Mode};

use crate::support::{bin, write_config_file};

fn model() -> LocalMiniLm {
    LocalMiniLm::load(&find_model_dir(None).expect("run ./scripts/fetch-model")).unwrap()
}

#[test]
fn local_embeddings_match_the_python_reference() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embeddings/minilm_reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sentences: Vec<&str> = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let m = model();
    assert_eq!(m.dim(), 384);
    let got = m.embed(&sentences).unwrap();
    for (i, want) in fixture["vectors"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let cos = frontdesk::knowledge::embed::dot(&got[i], &want);
        let norm: f32 = got[i].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "sentence {i} not unit length: {norm}");
        assert!(cos > 0.9999, "sentence {i} ({:?}): cosine {cos}", sentences[i]);
    }
    // Batching does not change a vector.
    let alone = m.embed(&[sentences[5]]).unwrap();
    assert!(frontdesk::knowledge::embed::dot(&alone[0], &got[5]) > 0.99999);
}

pub fn kb_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    crate::support::cli(config, &[&["kb"], args].concat())
}

pub fn demo_kb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/kb")
}

pub fn count(store: &frontdesk::store::Store, sql: &str) -> i64 {
    store
        .call_blocking(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[test]
fn ingest_search_reingest_and_delete_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let kb = demo_kb();
    let (ok, out, err) = kb_cli(&config, &["add", kb.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("30 added, 0 updated, 0 unchanged"), "{out}");
    let (ok, out, _) = kb_cli(&config, &["search", "r u open sunday", "-k", "3", "--json"]);
    assert!(ok);
    let hits: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(hits.len(), 3);
    for key in ["doc_id", "chunk_id", "title", "source", "score", "text"] {
        assert!(hits[0].get(key).is_some(), "{key}");
    }
    assert!(
        ["opening-hours", "holiday-hours"].contains(&hits[0]["doc_id"].as_str().unwrap()),
        "{hits:?}"
    );
    // Unchanged content is a no-op.
    let (_, out, _) = kb_cli(&config, &["add", kb.to_str().unwrap()]);
    assert!(out.starts_with("0 added, 0 updated, 30 unchanged"), "{out}");
    // A changed document replaces its chunks; a new one is added.
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(
        extra.join("espresso.md"),
        "# Coffee corner\n\nWe serve espresso for 2 euro while you wait for your repair.",
    )
    .unwrap();
    let (_, out, _) = kb_cli(&config, &["add", extra.to_str().unwrap()]);
    assert!(out.starts_with("1 added"), "{out}");
    std::fs::write(extra.join("espresso.md"), "# Coffee corner\n\nWe serve cappuccino now.").unwrap();
    let (_, out, _) = kb_cli(&config, &["add", extra.to_str().unwrap()]);
    assert!(out.starts_with("0 added, 1 updated"), "{out}");
    let store = crate::support::open_store(&dir.path().join("data"));
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM kb_chunks WHERE doc_id = 'espresso' AND text LIKE '%espresso for%'"
        ),
        0
    );
    let consistent = |store: &frontdesk::store::Store| {
        let chunks = count(store, "SELECT COUNT(*) FROM kb_chunks");
        assert_eq!(chunks, count(store, "SELECT COUNT(*) FROM kb_fts"));
        assert_eq!(chunks, count(store, "SELECT COUNT(*) FROM kb_vec"));
        assert_eq!(
            chunks,
            count(store, "SELECT COUNT(*) FROM kb_vectors"),
            "plain vector copies match"
        );
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM kb_vec WHERE rowid NOT IN (SELECT id FROM kb_chunks)"
            ),
            0
        );
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM kb_vectors WHERE chunk_id NOT IN (SELECT id FROM kb_chunks)"
            ),
            0
        );
        chunks
    };
    consistent(&store);
    // Delete removes FTS rows and vectors too.
    let (ok, _, err) = kb_cli(&config, &["rm", "espresso"]);
    assert!(ok, "{err}");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM kb_documents WHERE id = 'espresso'"),
        0
    );
    consistent(&store);
    let (ok, _, err) = kb_cli(&config, &["rm", "espresso"]);
    assert!(!ok && err.contains("no document"), "{err}");
    let (ok, out, _) = kb_cli(&config, &["list"]);
    assert!(ok && out.lines().count() == 30, "{out}");
}

#[test]
fn bad_files_are_reported_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("good.md"), "# Good\n\nBikes are great.").unwrap();
    std::fs::write(docs.join("image.md"), b"\x89PNG\r\n\x1a\n\x00\x00\x00").unwrap();
    std::fs::write(docs.join("latin1.txt"), b"caf\xe9 au lait").unwrap();
    std::fs::write(
        docs.join("faq.jsonl"),
        "{\"id\":\"f1\",\"title\":\"Hours\",\"text\":\"Open 9-18\"}\n{broken\n",
    )
    .unwrap();
    std::fs::write(docs.join("rows.csv"), "id,text\nr1,Tubes cost 8 euro\nr2,oops,extra\n").unwrap();
    std::fs::write(docs.join("empty.txt"), "\n\n").unwrap();
    let (ok, out, err) = kb_cli(&config, &["add", docs.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("3 added"), "{out}");
    for want in [
        "image.md: binary file",
        "latin1.txt: not UTF-8",
        "faq.jsonl:2: not valid JSON",
        "rows.csv:3: broken CSV row",
        "empty.txt: empty file",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    let (ok, _, err) = kb_cli(&config, &["add", dir.path().join("missing").to_str().unwrap()]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

/// A deterministic toy embedder, to switch models without a second real one.
pub struct HashEmbedder(pub usize);

impl Embedder for HashEmbedder {
    fn model_id(&self) -> String {
        format!("hash-{}", self.0)
    }
    fn dim(&self) -> usize {
        self.0
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; self.0];
                for w in t.split_whitespace() {
                    let h = w
                        .bytes()
                        .fold(7usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
                    v[h % self.0] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_model_re_embeds_instead_of_mixing() {
    let dir = tempfile::tempdir().unwrap();
    let store = frontdesk::store::Store::open(&dir.path().join("kb.db")).unwrap();
    let config = frontdesk::config::KnowledgeConfig::default();
    let a = Knowledge::new(store.clone(), Arc::new(HashEmbedder(16)), config.clone());
    a.prepare(&|_, _| {}).await.unwrap();
    a.add_paths(&[demo_kb()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    let chunks = count(&store, "SELECT COUNT(*) FROM kb_chunks");
    let hits = a.search("rental deposit", 3, Mode::Vector).await.unwrap();
    assert_eq!(hits.len(), 3);
    let b = Knowledge::new(store.clone(), Arc::new(HashEmbedder(32)), config);
    let progress = std::sync::Mutex::new(Vec::new());
    let n = b
        .prepare(&|done, total| progress.lock().unwrap().push((done, total)))
        .await
        .unwrap();
    assert_eq!(n as i64, chunks, "every chunk re-embedded");
    assert_eq!(
        progress.lock().unwrap().last().copied(),
        Some((chunks as usize, chunks as usize))
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM kb_vec"), chunks);
    assert_eq!(
        count(&store, "SELECT CAST(value AS INTEGER) FROM kb_meta WHERE key = 'dim'"),
        32
    );
    assert_eq!(b.search("rental deposit", 3, Mode::Vector).await.unwrap().len(), 3);
    assert_eq!(b.prepare(&|_, _| {}).await.unwrap(), 0, "same model: nothing to do");
}

#[test]
fn kill_9_mid_ingest_leaves_a_consistent_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let corpus = dir.path().join("corpus.jsonl");
    let lines: Vec<String> = (0..1000)
        .map(|i| serde_json::json!({ "id": format!("doc-{i:04}"), "title": format!("Part {i}"), "text": format!("Spare part number {i} fits city bikes and costs {} euro.", i % 90 + 5) }).to_string())
        .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    // Real model work to interrupt: no vectors read back from a development cache.
    let mut child = Command::new(bin())
        .args(["kb", "add"])
        .arg(&corpus)
        .arg("--config")
        .arg(&config)
        .env_remove("FRONTDESK_EMBED_CACHE")
        .spawn()
        .unwrap();
    let store_path = dir.path().join("data/frontdesk.db");
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if store_path.exists() {
            let store = frontdesk::store::Store::open(&store_path).unwrap();
            if count(&store, "SELECT COUNT(*) FROM kb_documents") >= 50 {
                break;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "ingest too slow to interrupt"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let store = frontdesk::store::Store::open(&store_path).unwrap();
    let docs = count(&store, "SELECT COUNT(*) FROM kb_documents");
    assert!(docs < 1000, "the kill came after the end ({docs})");
    let check = |store: &frontdesk::store::Store| {
        let chunks = count(store, "SELECT COUNT(*) FROM kb_chunks");
        assert_eq!(
            chunks,
            count(store, "SELECT COUNT(*) FROM kb_fts"),
            "FTS rows match chunks"
        );
        assert_eq!(
            chunks,
            count(store, "SELECT COUNT(*) FROM kb_vec"),
            "vectors match chunks"
        );
        assert_eq!(
            chunks,
            count(store, "SELECT COUNT(*) FROM kb_vectors"),
            "plain vector copies match chunks"
        );
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) FROM kb_documents d WHERE NOT EXISTS (SELECT 1 FROM kb_chunks c WHERE c.doc_id = d.id)"
            ),
            0,
            "no document without chunks"
        );
        assert_eq!(
            count(
                store,
                "SELECT COUNT(*) - COUNT(DISTINCT doc_id || '/' || ord) FROM kb_chunks"
            ),
            0,
            "no duplicate chunks"
        );
    };
    check(&store);
    let (ok, out, err) = kb_cli(&config, &["add", corpus.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{} added, 0 updated, {docs} unchanged", 1000 - docs)),
        "{out}"
    );
    check(&store);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM kb_documents"), 1000);
}
