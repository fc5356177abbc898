//! `frontdesk eval routing`: how well the router's classifier (`centroid` or `knn`) labels
//! messages, in one of two modes:
//! - k-fold: stratified cross-validation over one labelled JSONL set (each message
//!   classified by a classifier fitted on the other folds);
//! - held-out (`--train`, `--test`): fitted on one file, scored on another — what a
//!   business does with its own data. `--calibrate` chooses the out-of-scope floor on the
//!   training file only (its cross-validated or leave-one-out predictions), never on the
//!   test file.
//!
//! Reports accuracy, macro precision/recall, out-of-scope recall/precision and, given the
//! labels that route to one bucket (e.g. `reasoning`), that bucket's routing precision, at
//! one similarity floor and over a sweep of floors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::domain::centroid::{Centroids, Prediction, Scores, cross_validate, score};
use crate::domain::knn::{Knn, calibrate_floor};
use crate::engine::classifier::read_examples;
use crate::knowledge::embed::Embedder;
use crate::knowledge::embedder_from_config;

/// The classifier measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Centroid,
    Knn,
}

/// Where the messages come from.
pub enum Split<'a> {
    /// Cross-validation over one file.
    Folds { data: &'a Path, folds: usize },
    /// Fitted on `train`, scored on `test`.
    HeldOut { train: &'a Path, test: &'a Path },
}

/// What `eval routing` was asked.
pub struct Args<'a> {
    pub split: Split<'a>,
    pub classifier: Method,
    pub config: Option<&'a PathBuf>,
    pub oos_label: Option<&'a str>,
    pub min_similarity: f32,
    /// Held-out: choose the floor on the training file (needs out-of-scope examples there).
    pub calibrate: bool,
    pub bucket: Option<&'a Path>,
    pub gates: &'a [(String, f64)],
    pub json: bool,
}

/// The out-of-scope precision the calibrated floor must keep on the training data.
const CALIBRATION_PRECISION: f64 = 0.8;

type Labelled = Vec<(String, Vec<f32>)>;

/// A fitted classifier's answer for one vector: its label and similarity.
type Nearest<'a> = &'a dyn Fn(&[f32]) -> Option<(String, f32)>;

/// Predictions for `test` by `method` fitted on `train`, and, asked for, the predictions
/// on `train` itself that a floor may be calibrated on (5-fold for centroids,
/// leave-one-out for kNN). Out-of-scope examples never form a centroid nor vote as a
/// neighbour: out of scope is "none of the labels".
fn predict(
    method: Method,
    train: &Labelled,
    test: &Labelled,
    oos_label: Option<&str>,
    on_train: bool,
) -> (Vec<Prediction>, Vec<Prediction>) {
    let fitted = || {
        train
            .iter()
            .map(|(l, v)| (l.as_str(), v.as_slice()))
            .filter(|(l, _)| Some(*l) != oos_label)
    };
    let classify = |nearest: Nearest<'_>, data: &Labelled| -> Vec<Prediction> {
        data.iter()
            .filter_map(|(gold, v)| {
                nearest(v).map(|(label, similarity)| Prediction {
                    gold: gold.clone(),
                    nearest: label,
                    similarity,
                })
            })
            .collect()
    };
    match method {
        Method::Centroid => {
            let c = Centroids::fit(fitted());
            let on_test = classify(&|v| c.nearest(v).map(|(l, s)| (l.to_string(), s)), test);
            let on_train = if on_train {
                cross_validate(train, 5, oos_label)
            } else {
                Vec::new()
            };
            (on_test, on_train)
        }
        Method::Knn => {
            let k = Knn::fit(fitted());
            let on_test = classify(&|v| k.nearest(v).map(|(l, s)| (l.to_string(), s)), test);
            let on_train = if on_train {
                // The in-scope examples left out one at a time, the out-of-scope ones as they are.
                let oos: Labelled = train
                    .iter()
                    .filter(|(l, _)| Some(l.as_str()) == oos_label)
                    .cloned()
                    .collect();
                let mut p = k.leave_one_out();
                p.extend(classify(&|v| k.nearest(v).map(|(l, s)| (l.to_string(), s)), &oos));
                p
            } else {
                Vec::new()
            };
            (on_test, on_train)
        }
    }
}

/// Stratified k-fold predictions (fold = position within its label, modulo `folds`).
fn k_fold(method: Method, examples: &Labelled, folds: usize, oos_label: Option<&str>) -> Vec<Prediction> {
    let fold_of = crate::domain::centroid::stratified_folds(examples, folds);
    (0..folds)
        .flat_map(|f| {
            let (test, train): (Vec<_>, Vec<_>) = examples.iter().zip(&fold_of).partition(|(_, k)| **k == f);
            let strip =
                |v: Vec<(&(String, Vec<f32>), &usize)>| -> Labelled { v.into_iter().map(|(e, _)| e.clone()).collect() };
            predict(method, &strip(train), &strip(test), oos_label, false).0
        })
        .collect()
}

fn embed(embedder: &dyn Embedder, examples: Vec<(String, String)>, what: &str) -> anyhow::Result<Labelled> {
    let pb = super::kb::bar(examples.len() as u64, what);
    let mut vectors = Vec::with_capacity(examples.len());
    for batch in examples.chunks(64) {
        vectors.extend(embedder.embed(&batch.iter().map(|e| e.0.as_str()).collect::<Vec<_>>())?);
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    Ok(examples.into_iter().map(|e| e.1).zip(vectors).collect())
}

pub fn run(a: Args<'_>) -> anyhow::Result<ExitCode> {
    let config = match a.config {
        Some(p) => super::load_config(p)?,
        None => crate::config::Config::default(),
    };
    let (first, second) = match a.split {
        Split::Folds { data, folds } => {
            let examples = read_examples(data)?;
            if examples.len() < folds * 2 {
                anyhow::bail!(
                    "{}: {} examples are too few for {folds} folds",
                    data.display(),
                    examples.len()
                );
            }
            (examples, None)
        }
        Split::HeldOut { train, test } => (read_examples(train)?, Some(read_examples(test)?)),
    };
    if a.calibrate && second.is_none() {
        anyhow::bail!("--calibrate needs --train and --test (a floor chosen on the scored data would flatter it)");
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
    let labels: BTreeSet<String> = first.iter().map(|e| e.1.clone()).collect();
    if let Some(missing) = bucket.iter().find(|b| !labels.contains(*b)) {
        anyhow::bail!("bucket label {missing:?} is not a label of the training data");
    }
    let embedder = embedder_from_config(&config.knowledge)?;
    if embedder.dim() == 0 {
        anyhow::bail!("eval routing needs an embedder (knowledge.embedder = \"local\" or \"openai\")");
    }
    let started = std::time::Instant::now();
    let train = embed(embedder.as_ref(), first, "embedding the examples")?;
    let test = match second {
        Some(t) => Some(embed(embedder.as_ref(), t, "embedding the test messages")?),
        None => None,
    };
    let embed_ms = started.elapsed().as_millis();
    let started = std::time::Instant::now();
    let (predictions, floor, mode) = match (&a.split, &test) {
        (Split::Folds { folds, .. }, _) => (
            k_fold(a.classifier, &train, (*folds).max(2), a.oos_label),
            a.min_similarity,
            format!("{folds}-fold cross-validation"),
        ),
        (Split::HeldOut { .. }, Some(test)) => {
            let (on_test, on_train) = predict(a.classifier, &train, test, a.oos_label, a.calibrate);
            let floor = match (a.calibrate, a.oos_label) {
                (true, Some(oos)) => calibrate_floor(&on_train, oos, CALIBRATION_PRECISION)
                    .ok_or_else(|| anyhow::anyhow!("--calibrate: the training data has no {oos:?} examples"))?,
                (true, None) => anyhow::bail!("--calibrate needs --oos-label"),
                (false, _) => a.min_similarity,
            };
            let how = if a.calibrate {
                "calibrated on the training file"
            } else {
                "given"
            };
            (
                on_test,
                floor,
                format!(
                    "held out: {} trained, {} scored, floor {floor:.2} {how}",
                    train.len(),
                    test.len()
                ),
            )
        }
        (Split::HeldOut { .. }, None) => unreachable!("held-out mode embeds a test file"),
    };
    let classify_ms = started.elapsed().as_millis();
    let fallback = a.oos_label.unwrap_or("(none)");
    let at = score(&predictions, floor, fallback, a.oos_label, &bucket);
    let sweep: Vec<Scores> = (0..=16)
        .map(|i| score(&predictions, i as f32 * 0.05, fallback, a.oos_label, &bucket))
        .collect();
    let classifier = match a.classifier {
        Method::Centroid => "centroid",
        Method::Knn => "knn",
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "classifier": classifier, "mode": mode, "labels": labels.len(), "floor": floor, "embed_ms": embed_ms, "classify_ms": classify_ms, "at": at, "sweep": sweep })
        );
    } else {
        println!(
            "{} classifier, {} scored, {} labels, {mode}; embedded in {embed_ms} ms, fitted and classified in {classify_ms} ms",
            classifier,
            at.examples,
            labels.len(),
        );
        println!(
            "{:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "floor", "accuracy", "macro-P", "macro-R", "oos-R", "oos-P", "bucket-P", "bucket-R"
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        for s in sweep.iter().chain(std::iter::once(&at)) {
            let mark = if std::ptr::eq(s, &at) {
                if a.calibrate {
                    " <- calibrated floor"
                } else {
                    " <- --min-similarity"
                }
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
