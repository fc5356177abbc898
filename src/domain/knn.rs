//! k-nearest-neighbour classification over unit vectors (pure), the router's `knn`
//! classifier: a message gets the label with the largest distance-weighted vote among its
//! k most similar examples (weight 1 / (1 − cosine)), scored by its most similar example
//! of that label — a cosine, compared with the same similarity floor as the centroids.
//! Nothing is trained: fitting keeps the examples and picks k by leave-one-out accuracy
//! on them. Also the floor's calibration: the out-of-scope floor chosen on training
//! predictions only.

use std::collections::BTreeMap;

use super::centroid::Prediction;
use super::dot;

/// The k values fitting chooses from (by leave-one-out accuracy on the examples).
pub const K_CHOICES: [usize; 6] = [1, 3, 5, 7, 10, 15];

/// Labelled example vectors and the number of neighbours that vote.
#[derive(Debug, Clone, Default)]
pub struct Knn {
    labels: Vec<String>,
    vectors: Vec<Vec<f32>>,
    k: usize,
}

/// Distance-weighted vote of `(label index, similarity)` neighbours, most similar first:
/// the winning label and its best similarity.
fn vote(neighbours: &[(usize, f32)], labels: &[String]) -> Option<(usize, f32)> {
    let mut votes: BTreeMap<&str, (f32, usize, f32)> = BTreeMap::new();
    for &(i, sim) in neighbours {
        let w = 1.0 / (1.0 - sim).max(1e-4);
        let e = votes.entry(labels[i].as_str()).or_insert((0.0, i, sim));
        e.0 += w;
        if sim > e.2 {
            (e.1, e.2) = (i, sim);
        }
    }
    votes
        .into_values()
        .max_by(|a, b| a.0.total_cmp(&b.0).then(a.2.total_cmp(&b.2)))
        .map(|(_, i, sim)| (i, sim))
}

/// The `k` most similar of `sims` (index, similarity), most similar first.
fn top(sims: impl Iterator<Item = (usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let mut all: Vec<(usize, f32)> = sims.collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    all.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

impl Knn {
    /// Keeps `(label, unit vector)` examples (empty vectors and a width other than the
    /// first are skipped) with k chosen by leave-one-out accuracy.
    pub fn fit<'a>(examples: impl IntoIterator<Item = (&'a str, &'a [f32])>) -> Knn {
        let mut knn = Knn::default();
        for (label, v) in examples {
            if v.is_empty() || knn.vectors.first().is_some_and(|f| f.len() != v.len()) {
                continue;
            }
            knn.labels.push(label.to_string());
            knn.vectors.push(v.to_vec());
        }
        let neighbours = knn.leave_one_out_neighbours(*K_CHOICES.iter().max().unwrap_or(&1));
        knn.k = K_CHOICES
            .iter()
            .copied()
            .max_by_key(|&k| {
                // Ties go to the smaller k (max_by_key keeps the last maximum, so negate the order).
                let correct = neighbours
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| {
                        vote(&n[..k.min(n.len())], &knn.labels).is_some_and(|(j, _)| knn.labels[j] == knn.labels[*i])
                    })
                    .count();
                (correct, std::cmp::Reverse(k))
            })
            .unwrap_or(1);
        knn
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The chosen number of neighbours.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The voted label and its best similarity.
    pub fn nearest(&self, v: &[f32]) -> Option<(&str, f32)> {
        if self.vectors.first().is_none_or(|f| f.len() != v.len()) {
            return None;
        }
        let n = top(self.vectors.iter().map(|x| dot(x, v)).enumerate(), self.k);
        vote(&n, &self.labels).map(|(i, sim)| (self.labels[i].as_str(), sim))
    }

    /// For each example, its `k` most similar other examples (one pass over the pairs).
    fn leave_one_out_neighbours(&self, k: usize) -> Vec<Vec<(usize, f32)>> {
        let n = self.vectors.len();
        let mut sims = vec![0f32; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let s = dot(&self.vectors[i], &self.vectors[j]);
                sims[i * n + j] = s;
                sims[j * n + i] = s;
            }
        }
        (0..n)
            .map(|i| {
                top(
                    sims[i * n..(i + 1) * n]
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|(j, _)| *j != i),
                    k,
                )
            })
            .collect()
    }

    /// Each example classified by all the others (the training predictions a floor is
    /// calibrated on).
    pub fn leave_one_out(&self) -> Vec<Prediction> {
        self.leave_one_out_neighbours(self.k)
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                vote(n, &self.labels).map(|(j, similarity)| Prediction {
                    gold: self.labels[i].clone(),
                    nearest: self.labels[j].clone(),
                    similarity,
                })
            })
            .collect()
    }
}

/// The out-of-scope floor for `predictions` made on training data (cross-validated or
/// leave-one-out; never the data it will be scored on): of the floors 0.00, 0.01, …,
/// 0.99, the one catching the most out-of-scope examples (`oos_label` as gold, predicted
/// when the nearest label is `oos_label` or the similarity is under the floor) while
/// "out of scope" stays right at least `min_precision` of the time; ties go to the
/// lowest floor. When no floor reaches that precision, the one with the best F1. None
/// without out-of-scope examples.
pub fn calibrate_floor(predictions: &[Prediction], oos_label: &str, min_precision: f64) -> Option<f32> {
    let gold_oos = predictions.iter().filter(|p| p.gold == oos_label).count();
    if gold_oos == 0 {
        return None;
    }
    let at = |floor: f32| {
        let (mut tp, mut predicted) = (0usize, 0usize);
        for p in predictions {
            if p.nearest == oos_label || p.similarity < floor {
                predicted += 1;
                tp += usize::from(p.gold == oos_label);
            }
        }
        let recall = tp as f64 / gold_oos as f64;
        let precision = if predicted == 0 {
            0.0
        } else {
            tp as f64 / predicted as f64
        };
        let f1 = if tp == 0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (recall, precision, f1)
    };
    let floors: Vec<(f32, (f64, f64, f64))> = (0..100).map(|i| i as f32 / 100.0).map(|f| (f, at(f))).collect();
    let best = |key: &dyn Fn(&(f64, f64, f64)) -> f64, ok: &dyn Fn(&(f64, f64, f64)) -> bool| {
        floors
            .iter()
            .filter(|(_, m)| ok(m))
            .fold(None::<(f32, f64)>, |acc, (f, m)| match acc {
                Some((_, v)) if v >= key(m) => acc,
                _ => Some((*f, key(m))),
            })
            .map(|(f, _)| f)
    };
    best(&|m| m.0, &|m| m.1 >= min_precision && m.0 > 0.0).or_else(|| best(&|m| m.2, &|_| true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit;

    fn examples() -> Vec<(String, Vec<f32>)> {
        let mut ex = Vec::new();
        for i in 0..5 {
            let d = i as f32 * 0.05;
            ex.push(("a".to_string(), unit(&[1.0, d, 0.0])));
            ex.push(("b".to_string(), unit(&[d, 1.0, 0.0])));
        }
        ex
    }

    #[test]
    fn votes_of_the_nearest_examples_label_a_message() {
        let ex = examples();
        let knn = Knn::fit(ex.iter().map(|(l, v)| (l.as_str(), v.as_slice())));
        assert_eq!(knn.len(), 10);
        let (label, sim) = knn.nearest(&unit(&[0.9, 0.3, 0.0])).unwrap();
        assert_eq!(label, "a");
        assert!(sim > 0.95, "{sim}");
        assert_eq!(knn.nearest(&unit(&[0.2, 1.0, 0.1])).unwrap().0, "b");
        assert!(knn.nearest(&[1.0, 0.0]).is_none(), "another width matches nothing");
        // Clean clusters: every leave-one-out prediction is right, so the smallest k wins.
        assert_eq!(knn.k(), 1);
        assert!(knn.leave_one_out().iter().all(|p| p.gold == p.nearest));
    }

    #[test]
    fn distance_weighting_lets_one_close_example_outvote_two_far_ones() {
        let ex = [
            ("near", unit(&[1.0, 0.02])),
            ("far", unit(&[1.0, 1.0])),
            ("far", unit(&[1.0, -1.0])),
        ];
        let mut knn = Knn::fit(ex.iter().map(|(l, v)| (*l, v.as_slice())));
        knn.k = 3;
        assert_eq!(knn.nearest(&unit(&[1.0, 0.0])).unwrap().0, "near");
        // Equally far, two votes beat one.
        let v = vote(&[(0, 0.5), (1, 0.5), (2, 0.5)], &["x".into(), "y".into(), "y".into()]);
        assert_eq!(v.map(|(i, _)| i), Some(1));
    }

    #[test]
    fn k_is_chosen_by_leave_one_out_accuracy() {
        // Label "a" has one outlier sitting inside "b": k = 1 mislabels b's points next to
        // it, a larger k outvotes it.
        let mut ex = examples();
        ex.push(("a".to_string(), unit(&[0.1, 1.0, 0.04])));
        let knn = Knn::fit(ex.iter().map(|(l, v)| (l.as_str(), v.as_slice())));
        assert!(knn.k() > 1, "k {}", knn.k());
    }

    fn p(gold: &str, nearest: &str, similarity: f32) -> Prediction {
        Prediction {
            gold: gold.into(),
            nearest: nearest.into(),
            similarity,
        }
    }

    #[test]
    fn the_floor_maximises_out_of_scope_recall_at_the_precision_asked() {
        // In scope at 0.9, 0.8, 0.6, 0.45; out of scope at 0.5, 0.3, 0.2.
        let preds = [
            p("a", "a", 0.9),
            p("a", "a", 0.8),
            p("b", "b", 0.6),
            p("b", "b", 0.45),
            p("oos", "a", 0.5),
            p("oos", "b", 0.3),
            p("oos", "a", 0.2),
        ];
        // Floor 0.31 catches 2 of 3 with precision 1 (0.46 would add a wrong catch);
        // 0.51 catches all 3 with one wrong (precision 0.75).
        assert_eq!(calibrate_floor(&preds, "oos", 0.8), Some(0.31));
        assert_eq!(calibrate_floor(&preds, "oos", 0.7), Some(0.51));
        // A nearest label that is itself out of scope counts as caught at any floor: one
        // more lifts precision at 0.51 to 4 of 5.
        let mut with_label = preds.to_vec();
        with_label.push(p("oos", "oos", 0.95));
        assert_eq!(calibrate_floor(&with_label, "oos", 0.8), Some(0.51));
        assert_eq!(
            calibrate_floor(&preds[..4], "oos", 0.8),
            None,
            "no out-of-scope examples"
        );
    }
}
