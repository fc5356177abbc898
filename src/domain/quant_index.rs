//! An in-memory quantized index for the fast first passes over large knowledge bases.
//! Each vector is kept twice, small:
//! - one bit per dimension — above or below the corpus mean in that dimension (centering
//!   matters: sentence embeddings share a common direction, and plain sign bits would
//!   waste most of their information on it); Hamming distance over all of them picks a
//!   wide candidate pool;
//! - int8 per dimension with a per-vector scale; dot products narrow the pool.
//!
//! The caller rescores the survivors with the exact stored vectors. 100k chunks of 384
//! dimensions take 44 MB.

/// Bits and int8 codes of every vector, with the mean the bits were centred on.
pub struct QuantIndex {
    /// The store's vector generation this index was built from.
    pub generation: i64,
    dim: usize,
    words: usize,
    mean: Vec<f32>,
    ids: Vec<i64>,
    bits: Vec<u64>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl QuantIndex {
    /// Builds the index over `(chunk id, unit vector)` rows.
    pub fn build(generation: i64, rows: &[(i64, Vec<f32>)]) -> QuantIndex {
        let dim = rows.first().map_or(0, |r| r.1.len());
        let mut mean = vec![0f32; dim];
        for (_, v) in rows {
            mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
        }
        let n = rows.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        let words = dim.div_ceil(64);
        let mut index = QuantIndex {
            generation,
            dim,
            words,
            mean,
            ids: Vec::with_capacity(rows.len()),
            bits: Vec::with_capacity(rows.len() * words),
            codes: Vec::with_capacity(rows.len() * dim),
            scales: Vec::with_capacity(rows.len()),
        };
        for (id, v) in rows {
            let code = index.encode(v);
            index.ids.push(*id);
            index.bits.extend(code);
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
            index.scales.push(max / 127.0);
            index.codes.extend(v.iter().map(|x| (x / max * 127.0).round() as i8));
        }
        index
    }

    fn encode(&self, v: &[f32]) -> Vec<u64> {
        let mut code = vec![0u64; self.words];
        for (i, (x, m)) in v.iter().zip(&self.mean).enumerate() {
            if x > m {
                code[i / 64] |= 1 << (i % 64);
            }
        }
        code
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids of the `n` vectors with the fewest differing bits from `query`, closest
    /// first (ties in index order), as positions in the index.
    fn hamming_pool(&self, query: &[f32], n: usize) -> Vec<u32> {
        let q = self.encode(query);
        let mut scored: Vec<(u32, u32)> = self
            .bits
            .chunks_exact(self.words)
            .enumerate()
            .map(|(i, code)| {
                (
                    code.iter().zip(&q).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>(),
                    i as u32,
                )
            })
            .collect();
        if n < scored.len() {
            scored.select_nth_unstable(n - 1);
            scored.truncate(n);
        }
        scored.sort_unstable();
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// Candidates for the `keep` nearest vectors: Hamming distance keeps `pool`, int8 dot
    /// products keep the best `keep` of those, best first.
    pub fn nearest(&self, query: &[f32], pool: usize, keep: usize) -> Vec<i64> {
        if self.words == 0 || pool == 0 || keep == 0 {
            return Vec::new();
        }
        let positions = self.hamming_pool(query, pool.max(keep));
        let mut scored: Vec<(f32, u32)> = positions
            .into_iter()
            .map(|i| {
                let code = &self.codes[i as usize * self.dim..(i as usize + 1) * self.dim];
                let dot: f32 = code.iter().zip(query).map(|(c, q)| *c as f32 * q).sum();
                (dot * self.scales[i as usize], i)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(keep);
        scored.into_iter().map(|(_, i)| self.ids[i as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit;

    #[test]
    fn nearest_after_centering() {
        // Every vector leans the same way (a shared +10 in dim 0): centering removes it.
        let rows: Vec<(i64, Vec<f32>)> = vec![
            (10, unit(&[10.0, 1.0, 1.0, -1.0])),
            (11, unit(&[10.0, -1.0, -1.0, 1.0])),
            (12, unit(&[10.0, 1.0, -1.0, -1.0])),
        ];
        let idx = QuantIndex::build(3, &rows);
        assert_eq!((idx.len(), idx.generation), (3, 3));
        assert_eq!(idx.nearest(&unit(&[10.0, 1.0, 1.0, -1.0]), 1, 1), vec![10]);
        assert_eq!(idx.nearest(&unit(&[10.0, -1.0, -1.0, 1.0]), 2, 2)[0], 11);
        assert_eq!(idx.nearest(&rows[0].1, 10, 10).len(), 3, "never more than there is");
        assert!(QuantIndex::build(0, &[]).nearest(&[1.0], 5, 5).is_empty());
    }

    #[test]
    fn wide_vectors_use_several_words() {
        // Pseudo-random signs per (vector, dimension): 130 dimensions span three words.
        let sign = |i: i64, d: i64| {
            if (i * 7919 + d * 104_729 + (i * d) % 13).wrapping_mul(2_654_435_761) % 1000 < 500 {
                1.0
            } else {
                -1.0
            }
        };
        let rows: Vec<(i64, Vec<f32>)> = (0..50)
            .map(|i| (i, unit(&(0..130).map(|d| sign(i, d)).collect::<Vec<_>>())))
            .collect();
        let idx = QuantIndex::build(1, &rows);
        assert_eq!(idx.nearest(&rows[7].1, 1, 1), vec![7]);
        assert_eq!(
            idx.nearest(&rows[7].1, 20, 1),
            vec![7],
            "int8 rescoring keeps the true nearest"
        );
    }
}
