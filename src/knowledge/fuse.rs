//! Rank fusion: reciprocal rank fusion of several ranked lists (pure).

use std::collections::HashMap;

/// Fuses ranked id lists: each id scores Σ 1 / (k + rank), rank starting at 1.
/// Returns (id, score), best first; ties keep the order of first appearance.
pub fn rrf(lists: &[Vec<i64>], k: f64) -> Vec<(i64, f64)> {
    let mut score: HashMap<i64, f64> = HashMap::new();
    let mut first: Vec<i64> = Vec::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let e = score.entry(*id).or_insert_with(|| {
                first.push(*id);
                0.0
            });
            *e += 1.0 / (k + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<(i64, f64)> = first.into_iter().map(|id| (id, score[&id])).collect();
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_wins() {
        let fused = rrf(&[vec![1, 2, 3], vec![3, 1, 4]], 60.0);
        let ids: Vec<i64> = fused.iter().map(|f| f.0).collect();
        assert_eq!(ids, vec![1, 3, 2, 4]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-12);
    }
}
