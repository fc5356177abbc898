//! Retrieval evaluation: recall@1/5/10, MRR@10 and nDCG@10 of BM25, vector and hybrid
//! search over a corpus and queries in the format of the shared eval sets
//! (corpus `{"id","title","text"}`, queries `{"id","text","context","relevant":[ids]}`).

use serde::{Deserialize, Serialize};

use super::{Knowledge, Mode};
use crate::error::{Error, Result};

/// One query with its relevant document ids.
#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub context: String,
    pub relevant: Vec<String>,
}

impl Query {
    /// What is searched: the last two turns of context (the entity asked about usually
    /// sits there) and the question.
    pub fn search_text(&self) -> String {
        let turns: Vec<&str> = self.context.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &turns[turns.len().saturating_sub(2)..];
        let ctx: Vec<String> = tail
            .iter()
            .map(|l| l.trim_start_matches("U: ").trim_start_matches("S: ").to_string())
            .collect();
        if ctx.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", ctx.join("\n"), self.text)
        }
    }
}

/// Scores of one ranking mode.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Scores {
    pub mode: String,
    pub queries: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
}

/// Reads a JSONL file of `T`, naming the line of any bad record.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &std::path::Path) -> Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Invalid(format!("{}:{}: {e}", path.display(), i + 1))))
        .collect()
}

/// Metrics for one query's ranked document ids (deduplicated, best first).
fn score_one(ranked: &[String], relevant: &[String]) -> (f64, f64, f64, f64, f64) {
    let rel = |d: &String| relevant.contains(d);
    let recall = |k: usize| ranked.iter().take(k).filter(|d| rel(d)).count() as f64 / relevant.len().max(1) as f64;
    let mrr = ranked
        .iter()
        .take(10)
        .position(rel)
        .map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, d)| rel(d))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(|i| 1.0 / (i as f64 + 2.0).log2()).sum();
    (
        recall(1),
        recall(5),
        recall(10),
        mrr,
        if ideal > 0.0 { dcg / ideal } else { 0.0 },
    )
}

/// Runs every query in `mode`; document-level ranking (a document counts at its best chunk).
pub async fn evaluate(kb: &Knowledge, queries: &[Query], mode: Mode) -> Result<Scores> {
    let mut s = Scores {
        mode: format!("{mode:?}").to_lowercase(),
        queries: queries.len(),
        ..Default::default()
    };
    for q in queries {
        let hits = kb.search(&q.search_text(), 30, mode).await?;
        let mut docs: Vec<String> = Vec::new();
        for h in hits {
            if !docs.contains(&h.doc_id) {
                docs.push(h.doc_id);
            }
        }
        let (r1, r5, r10, mrr, ndcg) = score_one(&docs, &q.relevant);
        s.recall_at_1 += r1;
        s.recall_at_5 += r5;
        s.recall_at_10 += r10;
        s.mrr_at_10 += mrr;
        s.ndcg_at_10 += ndcg;
    }
    let n = queries.len().max(1) as f64;
    for v in [
        &mut s.recall_at_1,
        &mut s.recall_at_5,
        &mut s.recall_at_10,
        &mut s.mrr_at_10,
        &mut s.ndcg_at_10,
    ] {
        *v = (*v / n * 10_000.0).round() / 10_000.0;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let ranked: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (r1, r5, _, mrr, ndcg) = score_one(&ranked, &["b".to_string()]);
        assert_eq!((r1, r5, mrr), (0.0, 1.0, 0.5));
        assert!((ndcg - 1.0 / 3f64.log2()).abs() < 1e-12);
        let q = Query {
            id: "q".into(),
            text: "when?".into(),
            context: "U: hi\nS: hello\nU: the Hotel X\nS: sure".into(),
            relevant: vec![],
        };
        assert_eq!(q.search_text(), "the Hotel X\nsure\nwhen?");
    }
}
