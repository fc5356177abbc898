//! `frontdesk eval routing`: how well the nearest-centroid classifier labels messages —
//! stratified k-fold cross-validation over a labelled JSONL set (each message classified
//! by centroids of the other folds), at one similarity floor and over a sweep of floors.
//! Reports accuracy, macro precision/recall, out-of-scope recall/precision and, given the
//! labels that route to one bucket (e.g. `reasoning`), that bucket's routing precision.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::domain::centroid::{Scores, cross_validate, score};
use crate::engine::classifier::read_examples;
use crate::knowledge::embedder_from_config;

/// What `eval routing` was asked.
pub struct Args<'a> {
    pub data: &'a Path,
    pub config: Option<&'a PathBuf>,
    pub folds: usize,
    pub oos_label: Option<&'a str>,
    pub min_similarity: f32,
    pub bucket: Option<&'a Path>,
    pub gates: &'a [(String, f64)],
    pub json: bool,
}

pub fn run(a: Args<'_>) -> anyhow::Result<ExitCode> {
    let config = match a.config {
        Some(p) => super::load_config(p)?,
        None => crate::config::Config::default(),
    };
    let examples = read_examples(a.data)?;
    if examples.len() < a.folds * 2 {
        anyhow::bail!(
            "{}: {} examples are too few for {} folds",
            a.data.display(),
            examples.len(),
            a.folds
        );
    }
    let bucket: BTreeSet<String> = match a.bucket {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect(),
        None => BTreeSet::new(),
    };
    let labels: BTreeSet<String> = examples.iter().map(|e| e.1.clone()).collect();
    if let Some(missing) = bucket.iter().find(|b| !labels.contains(*b)) {
        anyhow::bail!("bucket label {missing:?} is not a label of {}", a.data.display());
    }
    let embedder = embedder_from_config(&config.knowledge)?;
    if embedder.dim() == 0 {
        anyhow::bail!("eval routing needs an embedder (knowledge.embedder = \"local\" or \"openai\")");
    }
    let started = std::time::Instant::now();
    let pb = super::kb::bar(examples.len() as u64, "embedding the examples");
    let mut vectors = Vec::with_capacity(examples.len());
    for batch in examples.chunks(64) {
        vectors.extend(embedder.embed(&batch.iter().map(|e| e.0.as_str()).collect::<Vec<_>>())?);
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    let embed_ms = started.elapsed().as_millis();
    let labelled: Vec<(String, Vec<f32>)> = examples.into_iter().map(|e| e.1).zip(vectors).collect();
    let predictions = cross_validate(&labelled, a.folds, a.oos_label);
    let fallback = a.oos_label.unwrap_or("(none)");
    let at = score(&predictions, a.min_similarity, fallback, a.oos_label, &bucket);
    let sweep: Vec<Scores> = (0..=16)
        .map(|i| score(&predictions, i as f32 * 0.05, fallback, a.oos_label, &bucket))
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "data": a.data.display().to_string(), "labels": labels.len(), "folds": a.folds, "embed_ms": embed_ms, "at": at, "sweep": sweep })
        );
    } else {
        println!(
            "{} examples, {} labels, {}-fold cross-validation, embedded in {embed_ms} ms",
            at.examples,
            labels.len(),
            a.folds
        );
        println!(
            "{:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "floor", "accuracy", "macro-P", "macro-R", "oos-R", "oos-P", "bucket-P", "bucket-R"
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        for s in sweep.iter().chain(std::iter::once(&at)) {
            let mark = if std::ptr::eq(s, &at) {
                " <- --min-similarity"
            } else {
                ""
            };
            println!(
                "{:>6.2} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>8} {:>8} {:>8}{mark}",
                s.min_similarity,
                s.accuracy,
                s.macro_precision,
                s.macro_recall,
                opt(s.oos_recall),
                opt(s.oos_precision),
                opt(s.bucket_precision),
                opt(s.bucket_recall)
            );
        }
    }
    let failed = super::check_gates(
        a.gates,
        |name| {
            let value = match name {
                "accuracy" => Some(at.accuracy),
                "macro_precision" => Some(at.macro_precision),
                "macro_recall" => Some(at.macro_recall),
                "oos_recall" => at.oos_recall,
                "oos_precision" => at.oos_precision,
                "bucket_precision" => at.bucket_precision,
                "bucket_recall" => at.bucket_recall,
                "routing_accuracy" => at.routing_accuracy,
                other => anyhow::bail!(
                    "gate {other:?}: use accuracy, macro_precision, macro_recall, oos_recall, oos_precision, bucket_precision, bucket_recall or routing_accuracy"
                ),
            };
            value.ok_or_else(|| anyhow::anyhow!("gate {name}: not measured (needs --oos-label or --bucket)"))
        },
        |_| false,
    )?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
