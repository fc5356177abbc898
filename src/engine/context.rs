//! The context a model sees (pure; seed layer 3): a system prompt with the business
//! name, tone and length limits, the customer's-language rule, the first-contact
//! disclosure, the grounding rules and the retrieved passages with their ids; then the
//! last turns of the conversation and the customer's new message(s).

use crate::knowledge::Hit;
use crate::llm::Item;

/// Turns of history sent with every request.
pub const HISTORY_TURNS: usize = 6;

/// Everything the prompt is built from.
pub struct ContextInput<'a> {
    pub business: &'a str,
    /// The owner's extra instructions (tone, policies), may be empty.
    pub instructions: &'a str,
    pub first_contact: bool,
    pub customer_name: Option<&'a str>,
    /// The customer's WhatsApp id: tools receive it from the engine, never from the model.
    pub customer_wa_id: &'a str,
    /// Earlier turns, oldest first: (from the customer?, text).
    pub history: &'a [(bool, String)],
    /// A note for the model after a person handed the conversation back.
    pub handback_note: Option<&'a str>,
    /// The rolling summary of turns older than `history`.
    pub summary: Option<&'a str>,
    pub passages: &'a [Hit],
    /// The customer's new message(s).
    pub question: &'a str,
    pub max_reply_chars: usize,
}

/// The id a passage is cited by.
pub fn passage_id(h: &Hit) -> String {
    format!("{}#{}", h.doc_id, h.chunk_id)
}

pub fn system_prompt(c: &ContextInput<'_>) -> String {
    let mut s = format!(
        "You are the WhatsApp assistant of {business}. You answer customers' questions using only the passages below and the conversation.\n\
         \n\
         Rules:\n\
         - Reply in the language the customer writes in.\n\
         - Be friendly and brief: plain text for WhatsApp, at most {max} characters, no markdown headings or tables.\n\
         - Never invent facts. Every price, number, date, time and order or shipment id you write must appear in a passage, the conversation or a tool result. If you do not have it, say a teammate will check, and hand off.\n\
         - Hand off (handoff: true, empty reply) when the passages do not answer the question, when the customer asks for a person, is upset, or when the matter needs judgement: refund disputes, complaints, damage, legal or safety issues.\n\
         - Give your confidence from 0 to 1 and list the ids of the passages you used in sources.\n\
         - Answer with the reply structure only.\n",
        business = c.business,
        max = c.max_reply_chars
    );
    if c.first_contact {
        s.push_str("- This is the customer's first message to us. A line saying you are an automated assistant is sent before your reply, so do not repeat it.\n");
    }
    if let Some(note) = c.handback_note {
        s.push_str(&format!(
            "- A teammate handled this conversation and handed it back: {note}\n"
        ));
    }
    if !c.instructions.trim().is_empty() {
        s.push_str(&format!(
            "\nInstructions from {}:\n{}\n",
            c.business,
            c.instructions.trim()
        ));
    }
    if let Some(summary) = c.summary.filter(|s| !s.trim().is_empty()) {
        s.push_str(&format!("\nSummary of the earlier conversation:\n{}\n", summary.trim()));
    }
    s.push_str("\nPassages:\n");
    if c.passages.is_empty() {
        s.push_str("(none found: hand off unless the conversation itself answers the question)\n");
    }
    for h in c.passages {
        let heading = if h.section.is_empty() || h.section == h.title {
            h.title.clone()
        } else {
            format!("{} › {}", h.title, h.section)
        };
        s.push_str(&format!("\n[{}] {}\n{}\n", passage_id(h), heading, h.text.trim()));
    }
    s
}

/// The conversation items: the last turns, then the new message(s).
pub fn items(c: &ContextInput<'_>) -> Vec<Item> {
    let start = c.history.len().saturating_sub(HISTORY_TURNS);
    let mut items: Vec<Item> = Vec::new();
    for (from_customer, text) in &c.history[start..] {
        match (items.last_mut(), from_customer) {
            (Some(Item::User(prev)), true) | (Some(Item::Assistant(prev)), false) => {
                prev.push('\n');
                prev.push_str(text);
            }
            (_, true) => items.push(Item::User(text.clone())),
            (_, false) => items.push(Item::Assistant(text.clone())),
        }
    }
    // The model's turn comes after the customer's: an opening bot message has no user before it.
    if matches!(items.first(), Some(Item::Assistant(_))) {
        items.remove(0);
    }
    let who = c.customer_name.map(|n| format!("{n}: ")).unwrap_or_default();
    match items.last_mut() {
        Some(Item::User(prev)) => {
            prev.push('\n');
            prev.push_str(&format!("{who}{}", c.question));
        }
        _ => items.push(Item::User(format!("{who}{}", c.question))),
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, chunk: i64, title: &str, section: &str, text: &str) -> Hit {
        Hit {
            doc_id: doc.into(),
            chunk_id: chunk,
            title: title.into(),
            source: String::new(),
            section: section.into(),
            score: 0.03,
            similarity: Some(0.7),
            text: text.into(),
        }
    }

    fn render(c: &ContextInput<'_>) -> String {
        let mut out = format!("=== system ===\n{}\n", system_prompt(c));
        for i in items(c) {
            out.push_str(&format!("=== {i:?}\n"));
        }
        out
    }

    #[test]
    fn first_contact_prompt() {
        let passages = [
            hit(
                "opening-hours",
                3,
                "Opening hours",
                "",
                "Tuesday to Saturday 9:00-18:00. Closed Sunday and Monday.",
            ),
            hit(
                "holiday-hours",
                9,
                "Holiday hours",
                "December",
                "Closed 25 and 26 December.",
            ),
        ];
        let c = ContextInput {
            business: "Spoke & Sprocket",
            instructions: "Use the customer's first name.",
            first_contact: true,
            customer_name: Some("Ana"),
            customer_wa_id: "31600000001",
            history: &[],
            handback_note: None,
            summary: None,
            passages: &passages,
            question: "r u open sunday",
            max_reply_chars: 600,
        };
        insta::assert_snapshot!("first_contact", render(&c));
    }

    #[test]
    fn returning_customer_with_history_and_handback() {
        let history: Vec<(bool, String)> = vec![
            (false, "Hi! I'm the automated assistant.".into()),
            (true, "my order".into()),
            (true, "SS-1042 where is it".into()),
            (false, "It shipped on 20 November.".into()),
            (true, "it has not arrived".into()),
            (false, "I'm pulling in a teammate.".into()),
            (false, "Hi, Sam here: it arrives tomorrow.".into()),
            (true, "thanks!".into()),
        ];
        let passages = [hit(
            "shipping",
            12,
            "Shipping",
            "Delivery times",
            "Parcels take 1-3 working days in the Netherlands.",
        )];
        let c = ContextInput {
            business: "Spoke & Sprocket",
            instructions: "",
            first_contact: false,
            customer_name: None,
            customer_wa_id: "31600000002",
            history: &history,
            handback_note: Some("Sam confirmed the parcel arrives tomorrow."),
            summary: Some("Ana asked about order SS-1042 (a red city bike); it shipped on 20 November."),
            passages: &passages,
            question: "and can I return it if it doesn't fit?",
            max_reply_chars: 600,
        };
        let rendered = render(&c);
        assert!(!rendered.contains("my order"), "only the last six turns");
        insta::assert_snapshot!("returning_with_handback", rendered);
    }
}
