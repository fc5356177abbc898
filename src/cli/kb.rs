//! `frontdesk kb add|list|rm|search` and `frontdesk eval retrieval`. They open the
//! database directly (WAL lets them run beside a live server).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::KbCommand;
use crate::knowledge::eval::{self, Query};
use crate::knowledge::parse::{CsvColumns, SourceDoc};
use crate::knowledge::{Knowledge, Mode, embedder_from_config, ingest::IngestReport};
use crate::store::Store;

fn open(config_path: &Path) -> anyhow::Result<Knowledge> {
    let config = super::load_config(config_path)?;
    crate::private_fs::create_dir_all(&config.storage.data_dir)?;
    let store = Store::open(&config.sqlite_path())?;
    let embedder = embedder_from_config(&config.knowledge)?;
    Ok(Knowledge::new(store, embedder, config.knowledge))
}

pub(super) fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_message(what.to_string());
    b
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Re-embeds after a model change, with a progress bar.
async fn prepare(kb: &Knowledge) -> anyhow::Result<()> {
    let pb = bar(0, "re-embedding for the new model");
    let n = kb
        .prepare(&|done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })
        .await?;
    pb.finish_and_clear();
    if n > 0 {
        eprintln!("re-embedded {n} chunks for {}", kb.embedder.model_id());
    }
    Ok(())
}

pub fn run(command: KbCommand) -> anyhow::Result<ExitCode> {
    match command {
        KbCommand::Add {
            paths,
            columns,
            config,
            json,
        } => {
            let columns = match columns {
                Some(spec) => CsvColumns::parse(&spec).map_err(|e| anyhow::anyhow!("--columns: {e}"))?,
                None => CsvColumns::default(),
            };
            let kb = open(&config.config)?;
            let report: IngestReport = runtime()?.block_on(async {
                prepare(&kb).await?;
                let pb = bar(0, "ingesting");
                let r = kb
                    .add_paths(&paths, &columns, &|done, total, file| {
                        pb.set_length(total as u64);
                        pb.set_position(done as u64);
                        pb.set_message(file.rsplit('/').next().unwrap_or("").to_string());
                    })
                    .await;
                pb.finish_and_clear();
                Ok::<_, anyhow::Error>(r?)
            })?;
            for p in &report.problems {
                eprintln!("skipped {p}");
            }
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} added, {} updated, {} unchanged ({} chunks written); {} problem(s)",
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.chunks,
                    report.problems.len()
                );
            }
        }
        KbCommand::List { config, json } => {
            let kb = open_no_model(&config.config)?;
            let docs = kb.call_blocking(|c| crate::store::knowledge::list_documents(c))?;
            for d in &docs {
                if json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    println!("{:<40} {:>4} chunks  {}", d.id, d.chunks, d.title);
                }
            }
            if docs.is_empty() && !json {
                println!("the knowledge base is empty; add documents with `frontdesk kb add PATH`");
            }
        }
        KbCommand::Rm { doc_id, config } => {
            let store = open_no_model(&config.config)?;
            let id = doc_id.clone();
            let removed =
                runtime()?.block_on(store.write(move |c| crate::store::knowledge::delete_document(c, &id)))?;
            if !removed {
                anyhow::bail!("no document {doc_id:?}; see `frontdesk kb list`");
            }
            println!("removed {doc_id}");
        }
        KbCommand::Search {
            query,
            k,
            mode,
            config,
            json,
        } => {
            let kb = open(&config.config)?;
            let hits = runtime()?.block_on(async {
                prepare(&kb).await?;
                Ok::<_, anyhow::Error>(kb.search(&query, k, mode).await?)
            })?;
            if !json {
                println!("# {}", score_meaning(mode, kb.embedder.dim() > 0));
                if hits.is_empty() {
                    println!("no passage matches; try other words or `frontdesk kb list`");
                }
            }
            for (rank, h) in hits.iter().enumerate() {
                if json {
                    println!("{}", serde_json::to_string(h)?);
                } else {
                    let snippet: String = h.text.chars().take(160).collect::<String>().replace('\n', " ");
                    let sim = h.similarity.map(|s| format!("  sim {s:.3}")).unwrap_or_default();
                    println!(
                        "{:>2}. score {}{sim}  {}  [{}]  {}",
                        rank + 1,
                        score_text(h.score),
                        h.doc_id,
                        h.section,
                        snippet
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `kb search` scores mean in `mode` (said once, above the hits).
fn score_meaning(mode: Mode, vectors: bool) -> &'static str {
    match (mode, vectors) {
        (Mode::Vector, _) => "score: cosine similarity of the query and the passage (-1..1, higher is closer)",
        (Mode::Hybrid, true) => {
            "score: reciprocal-rank fusion of the BM25 and vector rankings (higher is better; only the order \
             counts); sim: cosine similarity of the query and the passage (-1..1)"
        }
        (Mode::Hybrid, false) => {
            "score: BM25 relevance (vectors are off, so hybrid is BM25 alone; higher is better, tiny on a small \
             knowledge base; only the order counts)"
        }
        (Mode::Bm25, _) => {
            "score: BM25 relevance (higher is better, tiny on a small knowledge base; only the order counts)"
        }
    }
}

/// A score with its significant digits, however small (BM25 on a few documents gives
/// values like 3e-6).
fn score_text(score: f64) -> String {
    if score == 0.0 || score.abs() >= 0.01 {
        format!("{score:.4}")
    } else {
        format!("{score:.3e}")
    }
}

fn open_no_model(config_path: &Path) -> anyhow::Result<Store> {
    let config = super::load_config(config_path)?;
    let path = config.sqlite_path();
    if !path.exists() {
        anyhow::bail!(
            "no database at {} yet; run `frontdesk kb add` or start the server first",
            path.display()
        );
    }
    Ok(Store::open(&path)?)
}

/// `frontdesk eval retrieval`: builds a throwaway index of the corpus and scores each mode.
pub fn eval_retrieval(
    corpus: &Path,
    queries: &Path,
    config_path: Option<&PathBuf>,
    index_dir: Option<&Path>,
    json: bool,
    modes: &[Mode],
    gates: &[(String, f64)],
) -> anyhow::Result<ExitCode> {
    let config = match config_path {
        Some(p) => super::load_config(p)?,
        None => crate::config::Config::default(),
    };
    // A directory is ingested like `kb add`; a file is a JSONL corpus.
    let docs: Vec<serde_json::Value> = if corpus.is_dir() {
        Vec::new()
    } else {
        eval::read_jsonl(corpus)?
    };
    let queries: Vec<Query> = eval::read_jsonl(queries)?;
    let (tmp, keep) = match index_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.to_path_buf(), true)
        }
        None => (tempdir()?, false),
    };
    let store = Store::open(&tmp.join("eval.db"))?;
    let embedder = embedder_from_config(&config.knowledge)?;
    let kb = Knowledge::new(store, embedder, config.knowledge.clone());
    let rt = runtime()?;
    let results = rt.block_on(async {
        prepare(&kb).await?;
        let source = corpus.display().to_string();
        let docs: Vec<SourceDoc> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let id = s("id").ok_or_else(|| anyhow::anyhow!("{source}:{}: missing \"id\"", i + 1))?;
                let text = s("text").ok_or_else(|| anyhow::anyhow!("{source}:{}: missing \"text\"", i + 1))?;
                let title = s("title").unwrap_or_else(|| id.clone());
                // The title is indexed (FTS title column) and embedded with every chunk.
                Ok(SourceDoc {
                    text,
                    title,
                    id,
                    source: source.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let pb = bar(docs.len() as u64, "indexing the corpus");
        let mut report = IngestReport::default();
        for batch in docs.chunks(64) {
            kb.add_documents(batch.to_vec(), &mut report).await?;
            pb.inc(batch.len() as u64);
        }
        if corpus.is_dir() {
            report = kb
                .add_paths(&[corpus.to_path_buf()], &CsvColumns::default(), &|_, _, _| {})
                .await?;
        }
        pb.finish_and_clear();
        for p in &report.problems {
            eprintln!("skipped {p}");
        }
        let mut out = Vec::new();
        for m in modes {
            out.push(eval::evaluate(&kb, &queries, *m).await?);
        }
        Ok::<_, anyhow::Error>(out)
    })?;
    if !keep {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "{:<8} {:>7} {:>9} {:>9} {:>10} {:>7} {:>8}",
            "mode", "queries", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10"
        );
        for r in &results {
            println!(
                "{:<8} {:>7} {:>9.3} {:>9.3} {:>10.3} {:>7.3} {:>8.3}",
                r.mode, r.queries, r.recall_at_1, r.recall_at_5, r.recall_at_10, r.mrr_at_10, r.ndcg_at_10
            );
        }
    }
    let failed = super::check_gates(
        gates,
        |name| {
            let (mode, metric) = name.split_once('.').unwrap_or(("hybrid", name));
            let Some(r) = results.iter().find(|r| r.mode == mode) else {
                anyhow::bail!("gate {name}: mode {mode:?} was not run");
            };
            Ok(match metric {
                "recall_at_1" => r.recall_at_1,
                "recall_at_5" => r.recall_at_5,
                "recall_at_10" => r.recall_at_10,
                "mrr_at_10" => r.mrr_at_10,
                "ndcg_at_10" => r.ndcg_at_10,
                other => anyhow::bail!("gate {name}: unknown metric {other:?}"),
            })
        },
        |_| false,
    )?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "frontdesk-eval-{}-{}",
        std::process::id(),
        &crate::config::random_token()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
