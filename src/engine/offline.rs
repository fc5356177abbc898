//! The built-in offline responder (pure): no model. When retrieval is confident it
//! answers with the best passage, cleaned up for WhatsApp and cited; otherwise the
//! documents do not answer the question and it hands off (`no_answer`: the customer is
//! told the bot does not know, `unknown_text`, rather than shown the nearest passage) —
//! except that a short unclear first message gets one clarifying question. An
//! order number is answered from the order tool's reply. It powers the demo and is the
//! engine's degraded mode.

use super::answer::ORDER_TOOL;
use super::decide::{Decision, HandoffTrigger};
use crate::knowledge::Hit;

/// Longest answer sent, in characters (WhatsApp allows 4,096; a wall of text helps nobody).
const MAX_ANSWER_CHARS: usize = 900;

/// Decides from the retrieved hits (best first) and the confidence threshold (cosine).
pub fn decide(hits: &[Hit], threshold: f64) -> Decision {
    let Some(best) = hits.first() else {
        return Decision::handoff(
            HandoffTrigger::NoKnowledge,
            "nothing in the knowledge base matches the question",
        );
    };
    // Fused rank puts the best overall passage first; confidence is the best similarity.
    let top = hits
        .iter()
        .filter_map(|h| h.similarity.map(|s| (s, h)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let Some((confidence, hit)) = top else {
        return Decision::handoff(
            HandoffTrigger::NoVectors,
            "retrieval is keyword-only, so the offline responder cannot judge its confidence",
        );
    };
    if confidence < threshold {
        return Decision::Handoff {
            trigger: HandoffTrigger::NoAnswer,
            reason: format!(
                "the closest passage (\"{}\") is only {confidence:.2} similar; the threshold is {threshold:.2}",
                best.title
            ),
            confidence: Some(confidence),
        };
    }
    Decision::Answer {
        text: quote(hit),
        confidence,
        sources: vec![format!("{}#{}", hit.doc_id, hit.chunk_id)],
    }
}

/// `decide` for a message that asks several things (`part_tops`: each part's best
/// passage, in the order asked): when every part's passage is confident, each is quoted
/// (once, in that order) and cited; otherwise as `decide` — the best passage, or a
/// handoff.
pub fn decide_parts(hits: &[Hit], part_tops: &[i64], threshold: f64) -> Decision {
    let mut chosen: Vec<&Hit> = Vec::new();
    for id in part_tops {
        let Some(h) = hits.iter().find(|h| h.chunk_id == *id) else {
            return decide(hits, threshold);
        };
        if h.similarity.is_none_or(|s| s < threshold) {
            return decide(hits, threshold);
        }
        if !chosen.iter().any(|c| c.chunk_id == h.chunk_id) {
            chosen.push(h);
        }
    }
    if chosen.len() < 2 {
        return decide(hits, threshold);
    }
    let confidence = chosen.iter().filter_map(|h| h.similarity).fold(1.0, f64::min);
    let text = chosen.iter().map(|h| quote(h)).collect::<Vec<_>>().join("\n\n");
    Decision::Answer {
        text,
        confidence,
        sources: chosen.iter().map(|h| format!("{}#{}", h.doc_id, h.chunk_id)).collect(),
    }
}

/// A passage as a WhatsApp message with its citation.
fn quote(hit: &Hit) -> String {
    let body = whatsapp_text(&hit.text);
    // Section paths start with the document's own heading; cite it once.
    let section = hit
        .section
        .strip_prefix(&hit.title)
        .map(|s| s.trim_start_matches(" > "))
        .unwrap_or(&hit.section)
        .replace(" > ", " › ");
    let cite = if section.is_empty() {
        hit.title.clone()
    } else {
        format!("{} › {section}", hit.title)
    };
    format!("{body}\n\n(From: {cite})")
}

/// An order-tool answer (the demo's order JSON, or any object with these fields) as a
/// WhatsApp message; `None` when it is not such an object.
pub fn order_reply(content: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(content).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    let id = field("order_id")?;
    let status = field("status")?.replace('_', " ");
    let mut out = format!("Order {id}: {status}");
    if let Some(c) = field("carrier") {
        out.push_str(&format!(" with {c}"));
    }
    if let Some(t) = field("tracking") {
        out.push_str(&format!(" (tracking {t})"));
    }
    out.push('.');
    if let Some(eta) = field("eta") {
        out.push_str(&format!(" Expected: {eta}."));
    }
    if let Some(items) = v.get("items").and_then(|i| i.as_array()) {
        let names: Vec<String> = items
            .iter()
            .filter_map(|i| Some(format!("{} × {}", i.get("qty")?.as_i64()?, i.get("name")?.as_str()?)))
            .collect();
        if !names.is_empty() {
            out.push_str(&format!("\nItems: {}.", names.join(", ")));
        }
    }
    Some(out)
}

/// The order tool's answer (`ok`, `content`) for order `order`: the order as a message
/// (and the trace's guard line), or a handoff when the tool could not answer.
pub fn order_decision(order: &str, ok: bool, content: &str) -> (Decision, Option<&'static str>) {
    match order_reply(content).filter(|_| ok) {
        Some(text) => {
            let answer = Decision::Answer {
                text,
                confidence: 1.0,
                sources: vec![format!("tool:{ORDER_TOOL}")],
            };
            (answer, Some("passed: quoted from the order tool"))
        }
        None => {
            let reason = format!(
                "order {order}: the order tool could not answer ({})",
                content.chars().take(200).collect::<String>()
            );
            (Decision::handoff(HandoffTrigger::ToolFailed, reason), None)
        }
    }
}

/// What the offline responder asks when a short message matches nothing: once, before
/// handing off (the next unclear message goes to a person).
pub const CLARIFY_TEXT: &str =
    "Could you tell me a bit more about what you need? If it's about an order, please send me the order number.";

/// Whether `decision` on `text` could become a clarifying question: the offline responder
/// found nothing for a short message that is not a question.
fn may_clarify(decision: &Decision, text: &str) -> bool {
    matches!(
        decision,
        Decision::Handoff {
            trigger: HandoffTrigger::LowConfidence | HandoffTrigger::NoAnswer | HandoffTrigger::NoKnowledge,
            ..
        }
    ) && !is_question(text)
        && text.split_whitespace().count() <= 12
}

/// A short first message that matches nothing ("hi, about my order") gets one clarifying
/// question instead of a handoff; anything longer, or unclear twice, still hands off.
/// `last_bot` is the bot's last message; the guard line is returned when it asks.
pub fn clarify_once(decision: Decision, text: &str, last_bot: Option<&str>) -> (Decision, Option<&'static str>) {
    match decision {
        Decision::Handoff { confidence, .. }
            if may_clarify(&decision, text) && last_bot.is_none_or(|b| !b.ends_with(CLARIFY_TEXT)) =>
        {
            let ask = Decision::Answer {
                text: CLARIFY_TEXT.into(),
                confidence: confidence.unwrap_or(0.0),
                sources: Vec::new(),
            };
            (ask, Some("passed: clarifying question"))
        }
        d => (d, None),
    }
}

/// A question mark, or a first word that opens a question (English, Dutch, German, French, Spanish).
pub fn is_question(text: &str) -> bool {
    text.contains('?')
        || text
            .split_whitespace()
            .next()
            .is_some_and(|w| opens_question(&w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()))
}

/// Whether `word` (lower case, bare) opens a question.
pub fn opens_question(word: &str) -> bool {
    const OPENERS: &[&str] = &[
        "how", "what", "when", "where", "which", "who", "why", "can", "could", "do", "does", "is", "are", "will",
        "would", "should", "hoe", "wat", "wanneer", "waar", "kan", "kunnen", "wie", "was", "wann", "wo", "kann",
        "können", "quand", "où", "comment", "combien", "pouvez", "est-ce", "cuándo", "dónde", "cómo", "cuánto",
        "puedo", "pueden",
    ];
    OPENERS.contains(&word)
}

/// Markdown passage → WhatsApp text: headings become *bold* lines, table rows become
/// "a — b" lines (separator rows dropped), emphasis markers go, and the result is cut at
/// a line or sentence end under the length limit.
pub fn whatsapp_text(markdown: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for raw in markdown.lines() {
        let line = raw.trim();
        if line.is_empty() {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            lines.push(format!("*{}*", h.trim_start_matches('#').trim()));
        } else if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) {
                continue;
            }
            lines.push(cells.join(" — "));
        } else {
            lines.push(line.replace("**", "*").replace("__", "_"));
        }
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let text = lines.join("\n");
    if text.chars().count() <= MAX_ANSWER_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_ANSWER_CHARS).collect();
    let end = cut
        .rfind('\n')
        .into_iter()
        .chain(cut.rfind(". ").map(|i| i + 1))
        .max()
        .filter(|&i| i > MAX_ANSWER_CHARS / 3)
        .unwrap_or(cut.len());
    format!("{}…", cut[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(title: &str, section: &str, similarity: Option<f64>, text: &str) -> Hit {
        Hit {
            doc_id: title.to_lowercase(),
            chunk_id: 7,
            title: title.into(),
            source: String::new(),
            section: section.into(),
            score: 0.03,
            similarity,
            text: text.into(),
        }
    }

    #[test]
    fn confident_answers_cite_their_passage() {
        let d = decide(
            &[hit(
                "Puncture Repair",
                "Puncture Repair > Prices",
                Some(0.63),
                "## Prices\n\n| Wheel | Labour |\n|---|---|\n| Front wheel | €15 |\n\nA **new tube** is €8.",
            )],
            0.5,
        );
        let Decision::Answer {
            text,
            confidence,
            sources,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(
            text,
            "*Prices*\n\nWheel — Labour\nFront wheel — €15\n\nA *new tube* is €8.\n\n(From: Puncture Repair › Prices)"
        );
        assert_eq!((confidence, sources), (0.63, vec!["puncture repair#7".to_string()]));
    }

    #[test]
    fn unsure_or_empty_hands_off() {
        assert!(matches!(
            decide(&[], 0.5),
            Decision::Handoff {
                trigger: HandoffTrigger::NoKnowledge,
                ..
            }
        ));
        assert!(
            matches!(decide(&[hit("Financing", "", Some(0.2), "x")], 0.5), Decision::Handoff { trigger: HandoffTrigger::NoAnswer, confidence: Some(c), .. } if c == 0.2)
        );
        assert!(matches!(
            decide(&[hit("Financing", "", None, "x")], 0.5),
            Decision::Handoff {
                trigger: HandoffTrigger::NoVectors,
                ..
            }
        ));
    }

    #[test]
    fn a_message_asking_two_things_gets_both_passages_when_both_are_confident() {
        let mut hours = hit("Opening Hours", "", Some(0.62), "Sunday: 12:00 - 16:00");
        hours.chunk_id = 1;
        let mut shipping = hit("Shipping", "Shipping > Belgium", Some(0.55), "Belgium: DHL, €9.95.");
        shipping.chunk_id = 2;
        let mut far = hit("Gift Cards", "", Some(0.3), "Gift cards never expire.");
        far.chunk_id = 3;
        let hits = [hours.clone(), shipping.clone(), far.clone()];
        let d = decide_parts(&hits, &[1, 2], 0.5);
        let Decision::Answer {
            text,
            confidence,
            sources,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(
            text,
            "Sunday: 12:00 - 16:00\n\n(From: Opening Hours)\n\nBelgium: DHL, €9.95.\n\n(From: Shipping › Belgium)"
        );
        assert_eq!(confidence, 0.55);
        assert_eq!(sources, vec!["opening hours#1".to_string(), "shipping#2".to_string()]);
        // A part nothing answers confidently: as one question (the best passage).
        let d = decide_parts(&hits, &[1, 3], 0.5);
        assert!(matches!(d, Decision::Answer { ref sources, .. } if sources == &vec!["opening hours#1".to_string()]));
        // Both parts found the same passage, or there are no parts: as one question.
        assert_eq!(decide_parts(&hits, &[1, 1], 0.5), decide(&hits, 0.5));
        assert_eq!(decide_parts(&hits, &[], 0.5), decide(&hits, 0.5));
    }

    #[test]
    fn order_answers() {
        let j = r#"{"order_id":"SS-10421","status":"ready_for_collection","carrier":null,"tracking":null,"eta":"2026-11-13","items":[{"name":"Chain 11-speed","qty":1}]}"#;
        assert_eq!(
            order_reply(j).unwrap(),
            "Order SS-10421: ready for collection. Expected: 2026-11-13.\nItems: 1 × Chain 11-speed."
        );
        assert_eq!(order_reply("not json"), None);
        assert_eq!(order_reply(r#"{"error":"no such order"}"#), None);
    }

    #[test]
    fn order_tool_answers_or_hands_off() {
        let j = r#"{"order_id":"SS-1","status":"shipped"}"#;
        let (d, guard) = order_decision("SS-1", true, j);
        assert!(
            matches!(d, Decision::Answer { ref text, .. } if text == "Order SS-1: shipped."),
            "{d:?}"
        );
        assert_eq!(guard, Some("passed: quoted from the order tool"));
        let (d, guard) = order_decision("SS-1", false, j);
        assert!(
            matches!(
                d,
                Decision::Handoff {
                    trigger: HandoffTrigger::ToolFailed,
                    ..
                }
            ) && guard.is_none()
        );
        let (d, _) = order_decision("SS-2", true, r#"{"error":"no such order"}"#);
        assert!(
            matches!(d, Decision::Handoff { trigger: HandoffTrigger::ToolFailed, ref reason, .. } if reason.contains("SS-2"))
        );
    }

    #[test]
    fn one_clarifying_question_for_a_short_unclear_message() {
        let unclear = || Decision::Handoff {
            trigger: HandoffTrigger::LowConfidence,
            reason: "far".into(),
            confidence: Some(0.3),
        };
        let is_handoff = |(d, _): (Decision, Option<&str>)| matches!(d, Decision::Handoff { .. });
        let (asked, guard) = clarify_once(unclear(), "hi, about my order", None);
        assert!(matches!(asked, Decision::Answer { ref text, .. } if text == CLARIFY_TEXT));
        assert_eq!(guard, Some("passed: clarifying question"));
        // Asked already: now a person.
        let asked = format!("Hi Ana! I'm the assistant.\n\n{CLARIFY_TEXT}");
        assert!(is_handoff(clarify_once(unclear(), "the blue one", Some(&asked))));
        // A real question, a long message, or another kind of handoff: no clarifying.
        assert!(is_handoff(clarify_once(
            unclear(),
            "how much is the Gazelle C380",
            None
        )));
        assert!(is_handoff(clarify_once(unclear(), "price of the blue one?", None)));
        let long = "i bought a bike from you last year and the rear wheel keeps making a clicking noise when i ride";
        assert!(is_handoff(clarify_once(unclear(), long, None)));
        let sensitive = Decision::handoff(HandoffTrigger::Sensitive, "x");
        assert!(is_handoff(clarify_once(sensitive, "hi", None)));
    }

    #[test]
    fn questions_by_mark_or_opening_word() {
        assert!(is_question("Wanneer zijn jullie open"));
        assert!(is_question("can i return a helmet"));
        assert!(is_question("helmet return ok?"));
        assert!(!is_question("hi, about my daughter's new bike"));
    }

    #[test]
    fn long_passages_are_cut_at_a_boundary() {
        let long = (0..60)
            .map(|i| format!("Sentence number {i} is here."))
            .collect::<Vec<_>>()
            .join(" ");
        let t = whatsapp_text(&long);
        assert!(t.chars().count() <= MAX_ANSWER_CHARS + 1 && t.ends_with(".…"), "{t}");
    }
}
