//! The model's structured reply, parsed strictly (pure): exactly the five fields, the
//! right types, confidence within 0..1, a non-empty reply unless handing off, sources
//! among the passages it was shown. Anything else is an error the engine sends back once
//! for repair, then hands off.

use serde::Deserialize;

/// What the model decided.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelReply {
    pub reply: String,
    pub handoff: bool,
    pub reason: String,
    pub confidence: f64,
    pub sources: Vec<String>,
}

/// Parses `raw` (the model's final answer) against the passage ids it was shown.
pub fn parse(raw: &str, known_sources: &[String], max_chars: usize) -> Result<ModelReply, String> {
    let text = raw.trim();
    // Some models wrap JSON in a code fence despite instructions; that much is forgiven.
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .map(|t| t.trim_end().trim_end_matches("```"))
        .unwrap_or(text)
        .trim();
    let r: ModelReply = serde_json::from_str(text).map_err(|e| format!("not the required JSON object: {e}"))?;
    if !(0.0..=1.0).contains(&r.confidence) || !r.confidence.is_finite() {
        return Err(format!("confidence must be between 0 and 1, not {}", r.confidence));
    }
    if !r.handoff && r.reply.trim().is_empty() {
        return Err("reply is empty but handoff is false".into());
    }
    if r.reply.chars().count() > max_chars {
        return Err(format!(
            "reply is {} characters; the limit is {max_chars}",
            r.reply.chars().count()
        ));
    }
    if let Some(bad) = r.sources.iter().find(|s| !known_sources.contains(s)) {
        return Err(format!(
            "source {bad:?} is not one of the passage ids given ({})",
            known_sources.join(", ")
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["rental#4".into(), "hours#1".into()]
    }

    #[test]
    fn good_replies_parse() {
        let r = parse(
            r#"{"reply":"We open at 9.","handoff":false,"reason":"hours doc","confidence":0.9,"sources":["hours#1"]}"#,
            &ids(),
            1000,
        )
        .unwrap();
        assert_eq!((r.reply.as_str(), r.confidence), ("We open at 9.", 0.9));
        let fenced = "```json\n{\"reply\":\"\",\"handoff\":true,\"reason\":\"refund dispute\",\"confidence\":0.2,\"sources\":[]}\n```";
        assert!(parse(fenced, &ids(), 1000).unwrap().handoff);
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let cases = [
            ("We open at 9.", "not the required JSON"),
            (
                r#"{"reply":"x","handoff":false,"reason":"r","confidence":0.9}"#,
                "missing field `sources`",
            ),
            (
                r#"{"reply":"x","handoff":false,"reason":"r","confidence":0.9,"sources":[],"mood":"happy"}"#,
                "unknown field `mood`",
            ),
            (
                r#"{"reply":"x","handoff":"no","reason":"r","confidence":0.9,"sources":[]}"#,
                "invalid type",
            ),
            (
                r#"{"reply":"x","handoff":false,"reason":"r","confidence":1.5,"sources":[]}"#,
                "between 0 and 1",
            ),
            (
                r#"{"reply":" ","handoff":false,"reason":"r","confidence":0.5,"sources":[]}"#,
                "reply is empty",
            ),
            (
                r#"{"reply":"x","handoff":false,"reason":"r","confidence":0.5,"sources":["faq#9"]}"#,
                "not one of the passage ids",
            ),
        ];
        for (raw, want) in cases {
            let e = parse(raw, &ids(), 1000).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
        }
        assert!(
            parse(
                r#"{"reply":"xxxxxx","handoff":false,"reason":"r","confidence":0.5,"sources":[]}"#,
                &ids(),
                5
            )
            .unwrap_err()
            .contains("limit is 5")
        );
    }
}
