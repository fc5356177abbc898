//! Rank fusion and diversity (pure): reciprocal rank fusion of several ranked lists, and
//! maximal marginal relevance to stop near-duplicate chunks filling every slot.

use std::collections::HashMap;

/// Fuses ranked id lists: each id scores Σ 1 / (k + rank), rank starting at 1.
/// Returns (id, score), best first; ties keep the order of first appearance.
pub fn rrf(lists: &[Vec<i64>], k: f64) -> Vec<(i64, f64)> {
    rrf_weighted(lists, &vec![1.0; lists.len()], k)
}

/// As `rrf`, with a weight per list: Σ w / (k + rank).
pub fn rrf_weighted(lists: &[Vec<i64>], weights: &[f64], k: f64) -> Vec<(i64, f64)> {
    let mut score: HashMap<i64, f64> = HashMap::new();
    let mut first: Vec<i64> = Vec::new();
    for (list, w) in lists.iter().zip(weights) {
        for (rank, id) in list.iter().enumerate() {
            let e = score.entry(*id).or_insert_with(|| {
                first.push(*id);
                0.0
            });
            *e += w / (k + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<(i64, f64)> = first.into_iter().map(|id| (id, score[&id])).collect();
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Maximal marginal relevance: picks `k` of `ranked` (id, relevance; best first) one at a
/// time, each maximising `lambda * relevance - (1 - lambda) * max similarity to those
/// already picked`. Relevance is scaled to 0..1 first so any scorer works. Candidates
/// without a vector count as dissimilar to everything. Returns picks with their
/// original scores, in pick order. `lambda = 1` is plain relevance order.
pub fn mmr(ranked: &[(i64, f64)], vectors: &HashMap<i64, Vec<f32>>, k: usize, lambda: f64) -> Vec<(i64, f64)> {
    if lambda >= 1.0 || ranked.len() <= 1 {
        return ranked.iter().take(k).copied().collect();
    }
    let (lo, hi) = ranked
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(r.1), hi.max(r.1)));
    let scale = |s: f64| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
    let sim = |a: i64, b: i64| match (vectors.get(&a), vectors.get(&b)) {
        (Some(x), Some(y)) => crate::domain::dot(x, y) as f64,
        _ => 0.0,
    };
    let mut left: Vec<(i64, f64)> = ranked.to_vec();
    let mut picked: Vec<(i64, f64)> = Vec::with_capacity(k);
    while picked.len() < k && !left.is_empty() {
        let best = left
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let redundancy = picked.iter().map(|p| sim(c.0, p.0)).fold(0.0_f64, f64::max);
                (i, lambda * scale(c.1) - (1.0 - lambda) * redundancy)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
            .unwrap_or(0);
        picked.push(left.remove(best));
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmr_skips_near_duplicates() {
        let ranked = vec![(1, 0.9), (2, 0.89), (3, 0.7)];
        let vectors: HashMap<i64, Vec<f32>> = [(1, vec![1.0, 0.0]), (2, vec![1.0, 0.0]), (3, vec![0.0, 1.0])].into();
        let ids = |v: Vec<(i64, f64)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(
            ids(mmr(&ranked, &vectors, 2, 1.0)),
            vec![1, 2],
            "lambda 1 is plain relevance"
        );
        assert_eq!(
            ids(mmr(&ranked, &vectors, 2, 0.5)),
            vec![1, 3],
            "the duplicate of 1 loses to a different chunk"
        );
        assert_eq!(
            ids(mmr(&ranked, &vectors, 5, 0.5)),
            vec![1, 3, 2],
            "never more than there is"
        );
        assert_eq!(mmr(&ranked, &vectors, 2, 0.5)[1], (3, 0.7), "original scores kept");
    }

    #[test]
    fn agreement_wins() {
        let fused = rrf(&[vec![1, 2, 3], vec![3, 1, 4]], 60.0);
        let ids: Vec<i64> = fused.iter().map(|f| f.0).collect();
        assert_eq!(ids, vec![1, 3, 2, 4]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-12);
    }
}
