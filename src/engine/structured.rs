//! The model's structured reply, parsed (pure). Tolerant of formatting slips a small or
//! local model makes — a code fence or text around the object, a confidence of 1.5, a
//! number written as a string, a source that is not one of the passage ids, a missing
//! `reason` or `sources`, an extra field — each forgiven and named (`Slip`, counted in
//! metrics and listed in the trace). Strict about what a customer would get: a degenerate
//! reply ("true", "null", bare JSON, an empty reply with handoff=false, the prompt
//! echoed) is refused at once (`Refusal::Degenerate` → handoff, no repair round), a
//! confidence that cannot be read as a probability is not trusted, and anything that is
//! not the reply structure at all is sent back once for repair.

use serde_json::Value;

/// What the model decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    pub reply: String,
    pub handoff: bool,
    pub reason: String,
    pub confidence: f64,
    pub sources: Vec<String>,
}

/// Above this a confidence is not a rounding slip but a number on some other scale (9 of
/// 10, 1520, a percentage): it is not trusted. Up to it, it is clamped to 1.
pub const CLAMP_UP_TO: f64 = 1.5;

/// A formatting slip the parse forgave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slip {
    /// The object was wrapped in a Markdown code fence.
    CodeFence,
    /// Text before or after the object.
    SurroundingText,
    /// Confidence a little outside 0..1 (at most `CLAMP_UP_TO`, or negative), clamped.
    ConfidenceClamped,
    /// A number or boolean written as a string ("0.8", "false").
    QuotedValue,
    /// Sources that are not passage ids of this turn, dropped.
    UnknownSources,
    /// `reason` or `sources` missing (empty assumed).
    MissingOptional,
    /// Fields outside the structure, ignored.
    ExtraFields,
}

impl Slip {
    pub fn as_str(self) -> &'static str {
        match self {
            Slip::CodeFence => "code_fence",
            Slip::SurroundingText => "surrounding_text",
            Slip::ConfidenceClamped => "confidence_clamped",
            Slip::QuotedValue => "quoted_value",
            Slip::UnknownSources => "unknown_sources",
            Slip::MissingOptional => "missing_optional",
            Slip::ExtraFields => "extra_fields",
        }
    }
}

/// A reply the parse accepted, with the slips it forgave.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub reply: ModelReply,
    pub slips: Vec<Slip>,
}

/// Why a reply cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not the reply structure (not JSON, a required field missing or of the wrong type,
    /// too long): the model is asked once to answer again.
    Malformed(String),
    /// A confidence that is no probability (9, 1520, NaN): the reply's own gate cannot be
    /// read. Asked once for a repair; if it stays, the message goes to a person as
    /// low confidence.
    UntrustedConfidence(f64),
    /// A reply no customer should get: handed off at once, with this reason.
    Degenerate(String),
}

impl Refusal {
    /// Whether asking the model once more may help.
    pub fn repairable(&self) -> bool {
        !matches!(self, Refusal::Degenerate(_))
    }

    /// What went wrong, for the repair request, the trace and the handoff reason.
    pub fn message(&self) -> String {
        match self {
            Refusal::Malformed(m) | Refusal::Degenerate(m) => m.clone(),
            Refusal::UntrustedConfidence(c) => format!("confidence {c} is not a probability between 0 and 1"),
        }
    }
}

/// What the reply is checked against: the passage ids offered this turn, the length
/// limit, and texts it must not merely repeat (the customer's message, the prompt).
pub struct Expect<'a> {
    pub sources: &'a [String],
    pub max_chars: usize,
    pub question: &'a str,
    /// Fixed sentences of the system prompt: a reply containing one echoes the prompt.
    pub prompt_markers: &'a [&'a str],
}

/// Parses `raw` (the model's final answer).
pub fn parse(raw: &str, expect: &Expect<'_>) -> Result<Parsed, Refusal> {
    let mut slips = Vec::new();
    let (object, bare) = locate_json(raw.trim(), &mut slips)?;
    let Value::Object(mut map) = object else {
        return Err(Refusal::Degenerate(format!(
            "the answer is just `{}`, not a reply",
            excerpt(&bare)
        )));
    };
    let reply = match map.remove("reply") {
        Some(Value::String(s)) => s,
        Some(Value::Null) => String::new(),
        Some(other) => return Err(Refusal::Malformed(format!("`reply` must be a string, not {other}"))),
        None => return Err(Refusal::Malformed("missing field `reply`".into())),
    };
    let handoff = match map.remove("handoff") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) if matches!(s.trim(), "true" | "false") => {
            slips.push(Slip::QuotedValue);
            s.trim() == "true"
        }
        Some(other) => {
            return Err(Refusal::Malformed(format!(
                "`handoff` must be true or false, not {other}"
            )));
        }
        None => return Err(Refusal::Malformed("missing field `handoff`".into())),
    };
    let confidence = match map.remove("confidence") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
            slips.push(Slip::QuotedValue);
            s.trim().parse::<f64>().unwrap_or(f64::NAN)
        }
        Some(other) => {
            return Err(Refusal::Malformed(format!(
                "`confidence` must be a number, not {other}"
            )));
        }
        None => return Err(Refusal::Malformed("missing field `confidence`".into())),
    };
    let reason = match map.remove("reason") {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => {
            slips.push(Slip::MissingOptional);
            String::new()
        }
        Some(other) => other.to_string(),
    };
    let sources = read_sources(map.remove("sources"), expect.sources, &mut slips);
    if !map.is_empty() {
        slips.push(Slip::ExtraFields);
    }
    let confidence = check_confidence(confidence, &mut slips)?;
    if !handoff {
        check_not_degenerate(&reply, expect)?;
    }
    let chars = reply.chars().count();
    if chars > expect.max_chars {
        return Err(Refusal::Malformed(format!(
            "reply is {chars} characters; the limit is {}",
            expect.max_chars
        )));
    }
    slips.dedup();
    Ok(Parsed {
        reply: ModelReply {
            reply,
            handoff,
            reason,
            confidence,
            sources,
        },
        slips,
    })
}

/// The JSON value in `text`: the whole text, inside a code fence, or the first balanced
/// `{…}` with text around it. Also returns the JSON text itself (for messages).
fn locate_json(text: &str, slips: &mut Vec<Slip>) -> Result<(Value, String), Refusal> {
    let unfenced = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```JSON"))
        .or_else(|| text.strip_prefix("```"))
        .map(|t| t.trim_end().trim_end_matches("```").trim());
    let text = match unfenced {
        Some(t) => {
            slips.push(Slip::CodeFence);
            t
        }
        None => text,
    };
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok((v, text.to_string()));
    }
    if let Some(object) = first_object(text)
        && let Ok(v) = serde_json::from_str::<Value>(object)
    {
        slips.push(Slip::SurroundingText);
        return Ok((v, object.to_string()));
    }
    let e = serde_json::from_str::<Value>(text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    Err(Refusal::Malformed(format!("not the required JSON object: {e}")))
}

/// The first balanced `{…}` of `text` (braces inside JSON strings ignored).
fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The cited ids that are passages of this turn (`[id]` as the prompt shows them counts).
fn read_sources(value: Option<Value>, known: &[String], slips: &mut Vec<Slip>) -> Vec<String> {
    let items = match value {
        Some(Value::Array(a)) => a,
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Null) | None => {
            slips.push(Slip::MissingOptional);
            return Vec::new();
        }
        Some(_) => {
            slips.push(Slip::UnknownSources);
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    let mut dropped = false;
    for item in items {
        let id = item
            .as_str()
            .map(|s| s.trim().trim_start_matches('[').trim_end_matches(']'));
        match id.filter(|id| known.iter().any(|k| k == id)) {
            Some(id) if !out.iter().any(|o| o == id) => out.push(id.to_string()),
            Some(_) => {}
            None => dropped = true,
        }
    }
    if dropped {
        slips.push(Slip::UnknownSources);
    }
    out
}

/// A probability, clamped when it is a slip (≤ `CLAMP_UP_TO`, or below 0), refused when
/// it is on some other scale.
fn check_confidence(c: f64, slips: &mut Vec<Slip>) -> Result<f64, Refusal> {
    if !c.is_finite() || c > CLAMP_UP_TO {
        return Err(Refusal::UntrustedConfidence(c));
    }
    if !(0.0..=1.0).contains(&c) {
        slips.push(Slip::ConfidenceClamped);
    }
    Ok(c.clamp(0.0, 1.0))
}

/// Words that are no answer on their own.
const NON_ANSWERS: [&str; 7] = ["true", "false", "null", "none", "nil", "undefined", "nan"];

/// Refuses a reply text no customer should get.
fn check_not_degenerate(reply: &str, expect: &Expect<'_>) -> Result<(), Refusal> {
    let text = reply.trim();
    let bare = text.trim_matches(|c: char| c == '"' || c == '\'' || c == '.' || c.is_whitespace());
    if bare.is_empty() {
        return Err(Refusal::Degenerate("the reply is empty but handoff is false".into()));
    }
    if NON_ANSWERS.contains(&bare.to_lowercase().as_str()) {
        return Err(Refusal::Degenerate(format!("the reply is just `{bare}`")));
    }
    if bare.parse::<f64>().is_ok() || (text.starts_with(['{', '[']) && serde_json::from_str::<Value>(text).is_ok()) {
        return Err(Refusal::Degenerate(format!(
            "the reply is bare JSON: `{}`",
            excerpt(text)
        )));
    }
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let question = norm(expect.question);
    if !question.is_empty() && norm(text) == question {
        return Err(Refusal::Degenerate("the reply repeats the customer's message".into()));
    }
    let lower = norm(text);
    if expect
        .prompt_markers
        .iter()
        .map(|m| norm(m))
        .any(|m| !m.is_empty() && lower.contains(&m))
    {
        return Err(Refusal::Degenerate("the reply repeats the instructions".into()));
    }
    Ok(())
}

fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["rental#4".into(), "hours#1".into()]
    }

    fn check(raw: &str) -> Result<Parsed, Refusal> {
        let ids = ids();
        let expect = Expect {
            sources: &ids,
            max_chars: 1000,
            question: "when do you open?",
            prompt_markers: &[
                "You are the WhatsApp assistant of",
                "Answer with the reply structure only.",
            ],
        };
        parse(raw, &expect)
    }

    fn obj(reply: &str, handoff: bool, confidence: &str, sources: &str) -> String {
        format!(
            r#"{{"reply":{},"handoff":{handoff},"reason":"r","confidence":{confidence},"sources":{sources}}}"#,
            serde_json::to_string(reply).unwrap()
        )
    }

    #[test]
    fn good_replies_parse_without_slips() {
        let p = check(&obj("We open at 9.", false, "0.9", r#"["hours#1"]"#)).unwrap();
        assert_eq!((p.reply.reply.as_str(), p.reply.confidence), ("We open at 9.", 0.9));
        assert_eq!(p.reply.sources, vec!["hours#1"]);
        assert!(p.slips.is_empty(), "{:?}", p.slips);
        let handoff = check(r#"{"reply":"","handoff":true,"reason":"refund dispute","confidence":0.2,"sources":[]}"#);
        assert!(handoff.unwrap().reply.handoff);
    }

    #[test]
    fn formatting_slips_are_forgiven_and_named() {
        let good = obj("We open at 9.", false, "0.9", r#"["hours#1"]"#);
        let cases: Vec<(String, Slip)> = vec![
            (format!("```json\n{good}\n```"), Slip::CodeFence),
            (format!("Here is my answer:\n{good}\nHope that helps!"), Slip::SurroundingText),
            (obj("We open at 9.", false, "1.5", "[]"), Slip::ConfidenceClamped),
            (obj("We open at 9.", false, "-0.2", "[]"), Slip::ConfidenceClamped),
            (obj("We open at 9.", false, r#""0.8""#, "[]"), Slip::QuotedValue),
            (obj("We open at 9.", false, "0.9", r#"["faq#9","hours#1","the opening hours"]"#), Slip::UnknownSources),
            (r#"{"reply":"We open at 9.","handoff":false,"confidence":0.9}"#.into(), Slip::MissingOptional),
            (
                r#"{"reply":"We open at 9.","handoff":"false","reason":"r","confidence":0.9,"sources":[],"mood":"happy"}"#.into(),
                Slip::ExtraFields,
            ),
        ];
        for (raw, slip) in cases {
            let p = check(&raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            assert!(p.slips.contains(&slip), "{raw}: {:?}", p.slips);
            assert_eq!(p.reply.reply, "We open at 9.", "{raw}");
            assert!((0.0..=1.0).contains(&p.reply.confidence), "{raw}");
        }
        let clamped = check(&obj("We open at 9.", false, "1.5", "[]")).unwrap();
        assert_eq!(clamped.reply.confidence, 1.0);
        let p = check(&obj(
            "We open at 9.",
            false,
            "0.9",
            r#"["faq#9","[hours#1]","hours#1"]"#,
        ))
        .unwrap();
        assert_eq!(
            p.reply.sources,
            vec!["hours#1"],
            "unknown dropped, brackets and repeats forgiven"
        );
    }

    #[test]
    fn a_confidence_on_another_scale_is_not_trusted() {
        for c in ["1520", "9", "85", "1.51"] {
            let e = check(&obj("We open at 9.", false, c, "[]")).unwrap_err();
            assert!(matches!(e, Refusal::UntrustedConfidence(_)), "{c}: {e:?}");
            assert!(e.repairable() && e.message().contains("not a probability"), "{c}");
        }
    }

    #[test]
    fn degenerate_replies_are_refused_without_repair() {
        let cases = [
            ("true".to_string(), "just `true`"),
            ("null".to_string(), "just `null`"),
            ("0.9".to_string(), "just `0.9`"),
            (obj("true", false, "1", "[]"), "just `true`"),
            (obj("False.", false, "1", "[]"), "just `False`"),
            (obj("null", false, "0.9", "[]"), "just `null`"),
            (obj("", false, "0.9", "[]"), "empty but handoff is false"),
            (obj("  ", false, "0.9", "[]"), "empty but handoff is false"),
            (obj(r#"{"handoff": false}"#, false, "0.9", "[]"), "bare JSON"),
            (obj("42", false, "0.9", "[]"), "bare JSON"),
            (
                obj("When do you open?", false, "0.9", "[]"),
                "repeats the customer's message",
            ),
            (
                obj(
                    "You are the WhatsApp assistant of Spoke & Sprocket. Rules: ...",
                    false,
                    "0.9",
                    "[]",
                ),
                "repeats the instructions",
            ),
        ];
        for (raw, want) in cases {
            let e = check(&raw).unwrap_err();
            assert!(!e.repairable(), "{raw}: {e:?}");
            assert!(e.message().contains(want), "{raw}: {}", e.message());
        }
        // Handing off with an empty reply is what handing off looks like.
        assert!(check(&obj("", true, "0.2", "[]")).is_ok());
    }

    #[test]
    fn anything_not_the_structure_is_sent_back_for_repair() {
        let cases = [
            ("We open at 9.", "not the required JSON"),
            (
                r#"{"reply":"x","handoff":false,"reason":"r"}"#,
                "missing field `confidence`",
            ),
            (r#"{"handoff":false,"confidence":0.9}"#, "missing field `reply`"),
            (
                r#"{"reply":"x","handoff":"no","reason":"r","confidence":0.9,"sources":[]}"#,
                "`handoff` must be",
            ),
            (
                r#"{"reply":3,"handoff":false,"confidence":0.9}"#,
                "`reply` must be a string",
            ),
            (
                r#"{"reply":"x","handoff":false,"confidence":"high"}"#,
                "`confidence` must be a number",
            ),
        ];
        for (raw, want) in cases {
            let e = check(raw).unwrap_err();
            assert!(e.repairable(), "{raw}");
            assert!(e.message().contains(want), "{raw}: {}", e.message());
        }
        let ids = ids();
        let short = Expect {
            sources: &ids,
            max_chars: 5,
            question: "",
            prompt_markers: &[],
        };
        let e = parse(&obj("xxxxxx", false, "0.5", "[]"), &short).unwrap_err();
        assert!(e.repairable() && e.message().contains("limit is 5"), "{e:?}");
    }
}
