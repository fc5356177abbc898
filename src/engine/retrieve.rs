//! Retrieval for a reply: the question's own hybrid search, and for a follow-up ("can I
//! still return it?") a second search with the customer's previous message, the two
//! rankings fused. Each search is one read of the knowledge store.

use super::Deps;
use super::facts::Facts;
use crate::error::Result;
use crate::knowledge::{Hit, Mode};

/// The passages for `text` (embedded as `vector`), best first.
pub async fn search(deps: &Deps<'_>, facts: &Facts, text: &str, vector: Vec<f32>) -> Result<Vec<Hit>> {
    let k = deps.config.engine.retrieval_k;
    let found = deps.knowledge.search_embedded(text, vector, k, Mode::Hybrid).await?;
    // The turn alone keeps a change of topic findable; the pair finds what "it" refers to.
    let Some(previous) = follow_up_of(facts) else {
        return Ok(found);
    };
    let paired = format!("{previous}\n{text}");
    let with_context = deps.knowledge.search(&paired, k, Mode::Hybrid).await?;
    Ok(fuse_hits(found, with_context, k))
}

/// The customer's previous message, when this reply answers a follow-up.
pub fn follow_up_of(facts: &Facts) -> Option<&str> {
    if !facts.is_follow_up() {
        return None;
    }
    facts
        .earlier_turns()
        .iter()
        .rev()
        .find(|(from_customer, _)| *from_customer)
        .map(|(_, t)| t.as_str())
}

/// Reciprocal-rank fusion of two rankings of hits (each chunk once), best first.
pub fn fuse_hits(a: Vec<Hit>, b: Vec<Hit>, k: usize) -> Vec<Hit> {
    let ids = |h: &[Hit]| h.iter().map(|x| x.chunk_id).collect::<Vec<_>>();
    let order = crate::knowledge::fuse::rrf(&[ids(&a), ids(&b)], 60.0);
    let mut pool: std::collections::HashMap<i64, Hit> = std::collections::HashMap::new();
    for h in b.into_iter().chain(a) {
        // The turn's own similarity wins (it is what the confidence check reads).
        pool.insert(h.chunk_id, h);
    }
    order
        .into_iter()
        .filter_map(|(id, _)| pool.remove(&id))
        .take(k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_hits_keep_each_chunk_once_best_first() {
        let hit = |id: i64| Hit {
            doc_id: format!("d{id}"),
            chunk_id: id,
            title: String::new(),
            source: String::new(),
            section: String::new(),
            score: 0.0,
            similarity: Some(0.5),
            text: String::new(),
        };
        let fused = fuse_hits(vec![hit(1), hit(2), hit(3)], vec![hit(2), hit(4), hit(1)], 3);
        let ids: Vec<i64> = fused.iter().map(|h| h.chunk_id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[..2].contains(&1) && ids[..2].contains(&2), "{ids:?}");
    }

    #[test]
    fn only_a_follow_up_is_searched_with_the_previous_message() {
        let mut facts = Facts {
            texts: vec!["can I still return it?".into()],
            ..Default::default()
        };
        facts.conversation.history = vec![(true, "I bought a helmet".into()), (false, "Great choice!".into())];
        facts.conversation.recent_inbound = 1;
        assert_eq!(follow_up_of(&facts), None, "only this message is recent");
        facts.conversation.recent_inbound = 2;
        assert_eq!(follow_up_of(&facts), Some("I bought a helmet"));
    }
}
