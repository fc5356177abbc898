//! Conversation memory (seed layer 3): the model sees the last six turns verbatim and a
//! rolling summary of everything older. When the older turns not yet in the summary pass
//! `engine.summary_after_tokens` (estimated), the commodity tier rewrites the summary
//! from the old one plus those turns. The new summary must pass the same grounding
//! guard as replies (every number in it appears in what it summarises), else the old
//! one stays. The turns come with the reply's gathered facts; a refreshed summary is
//! stored by the reply's one write (`act`).

use std::time::Instant;

use serde_json::{Value, json};

use super::Deps;
use crate::domain::guard;
use crate::llm::{ChatRequest, Item, ModelRef, Output, price};
use crate::store::reply::NewSummary;

/// A rough token count (about four characters per token for English text).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// The JSON schema of a summary answer.
pub fn summary_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary"],
        "properties": { "summary": { "type": "string", "description": "the updated summary, at most 120 words" } }
    })
}

/// The request that rewrites `previous` with `turns` (oldest first: from the customer?, text).
pub fn summary_request(business: &str, previous: Option<&str>, turns: &[(i64, bool, String)]) -> (String, Vec<Item>) {
    let system = format!(
        "You keep the memory of a WhatsApp conversation between a customer and {business}. Write a short factual summary \
         (at most 120 words, third person) of what the customer wanted, what they were told, and anything still open: names, \
         order numbers, dates and amounts exactly as written. Do not add anything that was not said. Answer with the summary structure only."
    );
    let mut text = String::new();
    if let Some(p) = previous {
        text.push_str(&format!("Summary so far:\n{p}\n\n"));
    }
    text.push_str("Conversation to add:\n");
    for (_, from_customer, t) in turns {
        text.push_str(&format!("{}: {}\n", if *from_customer { "Customer" } else { "Us" }, t));
    }
    (system, vec![Item::User(text)])
}

/// Reads a summary answer strictly.
pub fn parse_summary(raw: &str) -> std::result::Result<String, String> {
    let v: Value = serde_json::from_str(raw.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let s = v
        .get("summary")
        .and_then(Value::as_str)
        .ok_or("no \"summary\" string")?
        .trim();
    if s.is_empty() {
        return Err("an empty summary".into());
    }
    Ok(s.chars().take(2_000).collect())
}

/// What bringing the summary up to date did.
#[derive(Debug, Default)]
pub struct Memory {
    /// The summary to show the model (refreshed or not).
    pub summary: Option<String>,
    /// Whether a refresh was tried, and how it went.
    pub refresh: Option<String>,
    /// A refreshed summary to store (with the reply's other writes).
    pub update: Option<NewSummary>,
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub ms: u64,
}

/// The estimated size of `turns` when it is past `after_tokens`: time to refresh.
pub fn due(turns: &[(i64, bool, String)], after_tokens: usize) -> Option<usize> {
    let size: usize = turns.iter().map(|t| estimate_tokens(&t.2)).sum();
    (size > after_tokens && !turns.is_empty()).then_some(size)
}

/// The summary the model wrote, if it may replace `previous`: well-formed, and every
/// number in it appears in what it summarises (else why not).
pub fn accept(raw: &str, previous: Option<&str>, turns: &[(i64, bool, String)]) -> Result<String, String> {
    let summary = parse_summary(raw).map_err(|e| format!("malformed summary: {e}"))?;
    let mut grounding: Vec<&str> = turns.iter().map(|t| t.2.as_str()).collect();
    grounding.extend(previous);
    match guard::check(&summary, &grounding) {
        Ok(()) => Ok(summary),
        Err(guard::Ungrounded(facts)) => Err(format!(
            "summary refused: it states {} that the conversation does not",
            facts.join(", ")
        )),
    }
}

/// The conversation's summary (`previous`), refreshed first by the models of `chain`
/// when the older turns not in it yet (`turns`, excluding the last six) pass the
/// configured size. The new summary is stored by the caller (`Memory::update`).
pub async fn refresh(
    deps: &Deps<'_>,
    previous: Option<&str>,
    turns: &[(i64, bool, String)],
    chain: &[ModelRef],
) -> Memory {
    let mut m = Memory {
        summary: previous.map(str::to_string),
        ..Default::default()
    };
    let Some(size) = due(turns, deps.config.engine.summary_after_tokens) else {
        return m;
    };
    let started = Instant::now();
    let (system, items) = summary_request(&deps.config.bot.business_name, previous, turns);
    let req = ChatRequest {
        model: String::new(),
        system,
        items,
        tools: Vec::new(),
        reply_schema: summary_schema(),
        max_tokens: 400,
    };
    let (result, _) = deps.models.chat(chain, &req, crate::domain::now_ms).await;
    m.ms = started.elapsed().as_millis() as u64;
    let (resp, model) = match result {
        Ok(x) => x,
        Err(e) => {
            m.refresh = Some(format!("failed: {e}"));
            return m;
        }
    };
    m.model = model.to_string();
    m.tokens_in = resp.tokens_in;
    m.tokens_out = resp.tokens_out;
    m.cost_usd = price::cost(&deps.models.prices, &model.model, resp.tokens_in, resp.tokens_out);
    let raw = match resp.output {
        Output::Reply(raw) => raw,
        Output::ToolCalls(_) => String::new(),
    };
    match accept(&raw, previous, turns) {
        Ok(summary) => {
            m.refresh = Some(format!(
                "refreshed from {} older message(s), about {size} tokens",
                turns.len()
            ));
            m.update = Some(NewSummary {
                text: summary.clone(),
                through: turns.last().map(|t| t.0).unwrap_or(0),
                model: m.model.clone(),
            });
            m.summary = Some(summary);
        }
        Err(why) => m.refresh = Some(why),
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_prompt_and_parse() {
        let turns = vec![
            (4, true, "where is SS-1042".to_string()),
            (5, false, "It shipped on 20 November.".to_string()),
        ];
        let (system, items) = summary_request("Spoke & Sprocket", Some("Ana bought a red bike."), &turns);
        assert!(system.contains("Spoke & Sprocket") && system.contains("at most 120 words"));
        assert_eq!(items, vec![Item::User("Summary so far:\nAna bought a red bike.\n\nConversation to add:\nCustomer: where is SS-1042\nUs: It shipped on 20 November.\n".into())]);
        assert_eq!(
            parse_summary(r#"{"summary":" Ana asked about SS-1042. "}"#).unwrap(),
            "Ana asked about SS-1042."
        );
        assert!(parse_summary("Ana asked").unwrap_err().contains("not JSON"));
        assert!(parse_summary(r#"{"summary":""}"#).is_err());
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }

    #[test]
    fn a_refresh_is_due_past_the_size_and_kept_only_when_grounded() {
        let turns = vec![(4, true, "where is SS-1042".to_string())];
        assert_eq!(due(&turns, 3), Some(4));
        assert_eq!(due(&turns, 4), None);
        assert_eq!(due(&[], 0), None);
        assert_eq!(
            accept(r#"{"summary":"Ana asked about SS-1042."}"#, None, &turns).unwrap(),
            "Ana asked about SS-1042."
        );
        let refused = accept(r#"{"summary":"Ana asked about SS-9999."}"#, None, &turns).unwrap_err();
        assert!(refused.starts_with("summary refused"), "{refused}");
        assert!(
            accept("nope", None, &turns)
                .unwrap_err()
                .starts_with("malformed summary")
        );
    }
}
