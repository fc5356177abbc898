//! Nearest-centroid classification over unit vectors (pure): each label's centroid is the
//! normalised mean of its examples' embeddings; a message gets the label of the most
//! similar centroid, or none below a similarity floor. Also the measurement of it:
//! stratified k-fold cross-validation, accuracy, macro precision, out-of-scope recall and
//! the precision of a routing bucket (labels that go to one route).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::dot;

/// Label centroids.
#[derive(Debug, Clone, Default)]
pub struct Centroids {
    labels: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

impl Centroids {
    /// Centroids of `(label, unit vector)` examples; empty vectors are skipped.
    pub fn fit<'a>(examples: impl IntoIterator<Item = (&'a str, &'a [f32])>) -> Centroids {
        let mut sums: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        for (label, v) in examples {
            if v.is_empty() {
                continue;
            }
            let sum = sums.entry(label).or_insert_with(|| vec![0.0; v.len()]);
            if sum.len() == v.len() {
                sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            }
        }
        let (mut labels, mut vectors) = (Vec::new(), Vec::new());
        for (label, sum) in sums {
            if sum.iter().any(|x| *x != 0.0) {
                labels.push(label.to_string());
                vectors.push(super::unit(&sum));
            }
        }
        Centroids { labels, vectors }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The nearest label and its cosine similarity.
    pub fn nearest(&self, v: &[f32]) -> Option<(&str, f32)> {
        self.vectors
            .iter()
            .zip(&self.labels)
            .filter(|(c, _)| c.len() == v.len())
            .map(|(c, l)| (l.as_str(), dot(c, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// One held-out prediction: the true label, the nearest label and its similarity.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub gold: String,
    pub nearest: String,
    pub similarity: f32,
}

/// Each example's fold for stratified k-fold: its position within its own label, modulo
/// `folds` (every label spread evenly over the folds, in file order, no seed).
pub fn stratified_folds<V>(examples: &[(String, V)], folds: usize) -> Vec<usize> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    examples
        .iter()
        .map(|(l, _)| {
            let n = seen.entry(l.as_str()).or_default();
            *n += 1;
            (*n - 1) % folds
        })
        .collect()
}

/// Stratified k-fold predictions: each example is classified by centroids fitted on the
/// other folds. Examples labelled `oos_label` never train a centroid (out of scope is
/// "none of the labels"), but are classified.
pub fn cross_validate(examples: &[(String, Vec<f32>)], folds: usize, oos_label: Option<&str>) -> Vec<Prediction> {
    let folds = folds.max(2);
    let fold_of = stratified_folds(examples, folds);
    let mut out = Vec::with_capacity(examples.len());
    for f in 0..folds {
        let train = examples
            .iter()
            .zip(&fold_of)
            .filter(|(e, k)| **k != f && Some(e.0.as_str()) != oos_label)
            .map(|(e, _)| (e.0.as_str(), e.1.as_slice()));
        let centroids = Centroids::fit(train);
        for ((label, v), _) in examples.iter().zip(&fold_of).filter(|(_, k)| **k == f) {
            if let Some((nearest, similarity)) = centroids.nearest(v) {
                out.push(Prediction {
                    gold: label.clone(),
                    nearest: nearest.to_string(),
                    similarity,
                });
            }
        }
    }
    out
}

/// Scores of predictions at one similarity floor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    pub min_similarity: f32,
    pub examples: usize,
    pub accuracy: f64,
    /// Mean over labels (true or predicted) of correct / predicted; a label never
    /// predicted counts 0.
    pub macro_precision: f64,
    pub macro_recall: f64,
    /// With an out-of-scope label: how much of it was caught, and how often "out of
    /// scope" was right.
    pub oos_recall: Option<f64>,
    pub oos_precision: Option<f64>,
    /// With bucket labels (e.g. those routed to `reasoning`): the bucket's precision and
    /// recall, and binary routing accuracy (in the bucket or not).
    pub bucket_precision: Option<f64>,
    pub bucket_recall: Option<f64>,
    pub routing_accuracy: Option<f64>,
}

/// Scores `predictions` when similarities below `min_similarity` become `fallback` (the
/// out-of-scope label, or "unknown").
pub fn score(
    predictions: &[Prediction],
    min_similarity: f32,
    fallback: &str,
    oos_label: Option<&str>,
    bucket: &BTreeSet<String>,
) -> Scores {
    let predicted: Vec<&str> = predictions
        .iter()
        .map(|p| {
            if p.similarity < min_similarity {
                fallback
            } else {
                p.nearest.as_str()
            }
        })
        .collect();
    let n = predictions.len().max(1) as f64;
    let correct = predictions
        .iter()
        .zip(&predicted)
        .filter(|(p, l)| p.gold == **l)
        .count();
    let labels: BTreeSet<&str> = predictions
        .iter()
        .map(|p| p.gold.as_str())
        .chain(predicted.iter().copied())
        .collect();
    let (mut precision, mut recall) = (0.0, 0.0);
    for label in &labels {
        let tp = predictions
            .iter()
            .zip(&predicted)
            .filter(|(p, l)| p.gold == *label && **l == *label)
            .count() as f64;
        let pred = predicted.iter().filter(|l| **l == *label).count() as f64;
        let gold = predictions.iter().filter(|p| p.gold == *label).count() as f64;
        precision += if pred > 0.0 { tp / pred } else { 0.0 };
        recall += if gold > 0.0 { tp / gold } else { 0.0 };
    }
    let m = labels.len().max(1) as f64;
    let ratio = |a: usize, b: usize| if b == 0 { None } else { Some(a as f64 / b as f64) };
    let (oos_recall, oos_precision) = match oos_label {
        Some(o) => {
            let tp = predictions
                .iter()
                .zip(&predicted)
                .filter(|(p, l)| p.gold == o && **l == o)
                .count();
            (
                ratio(tp, predictions.iter().filter(|p| p.gold == o).count()),
                ratio(tp, predicted.iter().filter(|l| **l == o).count()),
            )
        }
        None => (None, None),
    };
    let (bucket_precision, bucket_recall, routing_accuracy) = if bucket.is_empty() {
        (None, None, None)
    } else {
        let pairs: Vec<(bool, bool)> = predictions
            .iter()
            .zip(&predicted)
            .map(|(p, l)| (bucket.contains(&p.gold), bucket.contains(*l)))
            .collect();
        let tp = pairs.iter().filter(|(g, p)| *g && *p).count();
        (
            ratio(tp, pairs.iter().filter(|x| x.1).count()),
            ratio(tp, pairs.iter().filter(|x| x.0).count()),
            ratio(pairs.iter().filter(|(g, p)| g == p).count(), pairs.len()),
        )
    };
    Scores {
        min_similarity,
        examples: predictions.len(),
        accuracy: correct as f64 / n,
        macro_precision: precision / m,
        macro_recall: recall / m,
        oos_recall,
        oos_precision,
        bucket_precision,
        bucket_recall,
        routing_accuracy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit;

    #[test]
    fn nearest_centroid() {
        let ex = [
            ("a", unit(&[1.0, 0.1])),
            ("a", unit(&[1.0, -0.1])),
            ("b", unit(&[0.0, 1.0])),
        ];
        let c = Centroids::fit(ex.iter().map(|(l, v)| (*l, v.as_slice())));
        assert_eq!(c.len(), 2);
        let (label, sim) = c.nearest(&unit(&[0.9, 0.2])).unwrap();
        assert_eq!(label, "a");
        assert!(sim > 0.95, "{sim}");
        assert_eq!(c.nearest(&unit(&[0.1, 1.0])).unwrap().0, "b");
        assert!(c.nearest(&[1.0, 0.0, 0.0]).is_none(), "another width matches nothing");
    }

    #[test]
    fn cross_validation_and_scores() {
        // Two clean clusters and one out-of-scope example far from both.
        let mut ex: Vec<(String, Vec<f32>)> = Vec::new();
        for i in 0..6 {
            let d = i as f32 * 0.02;
            ex.push(("a".into(), unit(&[1.0, d, 0.0])));
            ex.push(("b".into(), unit(&[d, 1.0, 0.0])));
        }
        ex.push(("oos".into(), unit(&[0.1, 0.1, 1.0])));
        let preds = cross_validate(&ex, 3, Some("oos"));
        assert_eq!(preds.len(), 13);
        let bucket: BTreeSet<String> = ["b".to_string()].into();
        let s = score(&preds, 0.5, "oos", Some("oos"), &bucket);
        assert_eq!(
            (s.accuracy, s.macro_precision, s.oos_recall, s.oos_precision),
            (1.0, 1.0, Some(1.0), Some(1.0))
        );
        assert_eq!(
            (s.bucket_precision, s.bucket_recall, s.routing_accuracy),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        // With no floor the out-of-scope message gets a label: a wrong one.
        let s = score(&preds, 0.0, "oos", Some("oos"), &BTreeSet::new());
        assert_eq!((s.oos_recall, s.oos_precision), (Some(0.0), None));
        assert!((s.accuracy - 12.0 / 13.0).abs() < 1e-9);
        // oos is a label never predicted: precision 0 for it, 1 for a and b (one of them diluted).
        assert!(s.macro_precision < 1.0);
    }
}
