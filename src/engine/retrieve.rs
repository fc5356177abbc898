//! Retrieval for a reply: the question's own hybrid search, and for a follow-up ("can I
//! still return it?") a second search with the customer's previous message, the two
//! rankings fused. A message that asks several things ("what are your hours and do you
//! ship to Belgium?") is also searched part by part (`parts`, a punctuation and
//! question-word rule), and each part's best passage is kept, within
//! `engine.max_passages` in all. Each search is one read of the knowledge store.

use super::Deps;
use super::facts::Facts;
use crate::error::Result;
use crate::knowledge::{Hit, Mode};

/// What a reply's retrieval found.
#[derive(Debug, Default)]
pub struct Found {
    /// The passages, best first.
    pub hits: Vec<Hit>,
    /// When the message asks several things: each part's best passage (chunk id), in the
    /// order asked; empty otherwise.
    pub part_tops: Vec<i64>,
}

/// The passages for `text` (embedded as `vector`), best first.
pub async fn search(deps: &Deps<'_>, facts: &Facts, text: &str, vector: Vec<f32>) -> Result<Found> {
    let k = deps.config.engine.retrieval_k;
    let found = deps.knowledge.search_embedded(text, vector, k, Mode::Hybrid).await?;
    // The turn alone keeps a change of topic findable; the pair finds what "it" refers to.
    let found = match follow_up_of(facts) {
        Some(previous) => {
            let paired = format!("{previous}\n{text}");
            let with_context = deps.knowledge.search(&paired, k, Mode::Hybrid).await?;
            fuse_hits(found, with_context, k)
        }
        None => found,
    };
    let asked = parts(text);
    if asked.len() < 2 {
        return Ok(Found {
            hits: found,
            part_tops: Vec::new(),
        });
    }
    let mut per_part = Vec::with_capacity(asked.len());
    // Each part alone: what a part points back to ("what does that cost?") is the whole
    // message's paired search's to find.
    for part in &asked {
        per_part.push(deps.knowledge.search(part, k, Mode::Hybrid).await?);
    }
    let part_tops = per_part.iter().filter_map(|p| p.first().map(|h| h.chunk_id)).collect();
    Ok(Found {
        hits: merge_parts(found, per_part, deps.config.engine.max_passages.max(k)),
        part_tops,
    })
}

/// The questions a message asks, when it asks more than one: split at sentence ends and
/// at "and"/"also" (and their Dutch, German, French, Spanish forms) followed by a word
/// that opens a question. A part is a question when its sentence ends with `?` or it
/// starts with a question word ("Hi there." is not), and has two words or more. At most
/// three parts; the message whole when the rule finds fewer than two.
pub fn parts(text: &str) -> Vec<String> {
    const JOINERS: &[&str] = &[
        "and", "also", "plus", "&", "en", "ook", "und", "auch", "et", "aussi", "y", "también",
    ];
    let bare = |w: &str| {
        w.trim_matches(|c: char| !c.is_alphanumeric() && c != '&')
            .to_lowercase()
    };
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['?', '.', '!', '\n', ';']).unwrap_or(rest.len());
        let (sentence, asks) = (&rest[..end], rest[end..].starts_with('?'));
        rest = rest.get(end + 1..).unwrap_or("");
        let words: Vec<&str> = sentence.split_whitespace().collect();
        let mut current: Vec<&str> = Vec::new();
        let mut finish = |current: &mut Vec<&str>| {
            let question = asks
                || current
                    .first()
                    .is_some_and(|w| super::offline::opens_question(&bare(w)));
            if question && current.len() >= 2 {
                out.push(current.join(" "));
            }
            current.clear();
        };
        for (i, w) in words.iter().enumerate() {
            if JOINERS.contains(&bare(w).as_str()) {
                if current.is_empty() {
                    continue;
                }
                if words
                    .get(i + 1)
                    .is_some_and(|n| super::offline::opens_question(&bare(n)))
                {
                    finish(&mut current);
                    continue;
                }
            }
            current.push(w.trim_end_matches(','));
        }
        finish(&mut current);
    }
    if out.len() < 2 {
        return vec![text.to_string()];
    }
    out.truncate(3);
    out
}

/// The whole message's passages merged with each part's: the whole message's best, then
/// each part's best, then the rest by reciprocal-rank fusion of all the rankings; each
/// chunk once, at most `max`.
pub fn merge_parts(whole: Vec<Hit>, parts: Vec<Vec<Hit>>, max: usize) -> Vec<Hit> {
    let mut rankings: Vec<Vec<i64>> = vec![whole.iter().map(|h| h.chunk_id).collect()];
    rankings.extend(parts.iter().map(|p| p.iter().map(|h| h.chunk_id).collect()));
    let mut first: Vec<i64> = Vec::new();
    for r in &rankings {
        if let Some(id) = r.first()
            && !first.contains(id)
        {
            first.push(*id);
        }
    }
    let fused = crate::knowledge::fuse::rrf(&rankings, 60.0);
    let mut pool: std::collections::HashMap<i64, Hit> = std::collections::HashMap::new();
    for h in parts.into_iter().flatten().chain(whole) {
        // A chunk found by several searches keeps its best similarity.
        match pool.get(&h.chunk_id) {
            Some(old) if old.similarity >= h.similarity => {}
            _ => {
                pool.insert(h.chunk_id, h);
            }
        }
    }
    first
        .into_iter()
        .chain(fused.into_iter().map(|(id, _)| id))
        .filter_map(|id| pool.remove(&id))
        .take(max)
        .collect()
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
    fn a_message_asking_two_things_is_two_parts() {
        assert_eq!(
            parts("what are your hours and do you ship to Belgium?"),
            vec!["what are your hours", "do you ship to Belgium"]
        );
        assert_eq!(
            parts("How much is a puncture repair? Also, can I rent a bike on Sunday?"),
            vec!["How much is a puncture repair", "can I rent a bike on Sunday"]
        );
        assert_eq!(
            parts("wat kost een band plakken en hoe laat zijn jullie open"),
            vec!["wat kost een band plakken", "hoe laat zijn jullie open"]
        );
        // One question, however long: no split.
        for one in [
            "can I rent a bike and a helmet for the weekend?",
            "Hi! Do you do repairs?",
            "my chain keeps slipping and the gears are noisy",
        ] {
            assert_eq!(parts(one), vec![one.to_string()], "{one}");
        }
    }

    #[test]
    fn each_part_keeps_its_best_passage_within_the_bound() {
        let hit = |id: i64, similarity: f64| Hit {
            doc_id: format!("d{id}"),
            chunk_id: id,
            title: String::new(),
            source: String::new(),
            section: String::new(),
            score: 0.0,
            similarity: Some(similarity),
            text: String::new(),
        };
        // The whole message finds only hours (1, 2, 3, 4); the second part finds shipping (9).
        let whole = vec![hit(1, 0.6), hit(2, 0.5), hit(3, 0.4), hit(4, 0.3)];
        let hours = vec![hit(1, 0.7), hit(2, 0.5), hit(5, 0.4), hit(6, 0.3)];
        let shipping = vec![hit(9, 0.65), hit(8, 0.4), hit(1, 0.1), hit(7, 0.1)];
        let merged = merge_parts(whole, vec![hours, shipping], 5);
        let ids: Vec<i64> = merged.iter().map(|h| h.chunk_id).collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(&ids[..2], &[1, 9], "{ids:?}");
        assert_eq!(merged[0].similarity, Some(0.7), "a chunk keeps its best similarity");
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
