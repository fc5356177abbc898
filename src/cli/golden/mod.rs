//! The golden-set eval (`frontdesk eval --dataset`): cases of customer conversations with
//! what should happen (route, documents, tool call, handoff, facts that must and must not
//! appear), run through the real engine in a throwaway data directory, scored into the
//! seed's metrics and gated. `cases` reads the set, `runner` plays it, `metrics` scores it
//! (pure); `http::scripted_model` is the deterministic stand-in for a provider.

pub mod metrics;
pub mod runner;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One golden case: a conversation and what should come of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    /// faq, multi_turn, order, angry, injection_document, … (reported per kind).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub lang: String,
    /// The customer's messages; the bot answers after each.
    pub turns: Vec<String>,
    /// The customer's number (digits), when a tool must recognise them.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// The right route for the last turn: commodity, reasoning or handoff.
    pub route: String,
    /// Documents retrieval should find for the last turn (first = the main one).
    #[serde(default)]
    pub docs: Vec<String>,
    /// The tool call the conversation should make.
    #[serde(default)]
    pub tool: Option<ExpectedTool>,
    /// Whether the conversation should end with a person (`None`: either is fine).
    #[serde(default)]
    pub handoff: Option<bool>,
    /// Facts a bot answer must contain (case-insensitive).
    #[serde(default)]
    pub must: Vec<String>,
    /// Text no bot message may contain.
    #[serde(default)]
    pub must_not: Vec<String>,
    /// What the scripted model answers to the last turn (scripted runs only).
    #[serde(default)]
    pub script: Option<serde_json::Value>,
}

/// An expected tool call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedTool {
    pub name: String,
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// Whether the call should succeed (false: e.g. an order that does not exist).
    #[serde(default = "yes")]
    pub ok: bool,
}

fn yes() -> bool {
    true
}

/// The routes a case may expect.
pub const ROUTES: [&str; 3] = ["commodity", "reasoning", "handoff"];

/// Reads a golden set (JSONL; blank lines and `//` comments skipped), checking every
/// case; errors name the line and what to fix.
pub fn read_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the dataset {}: {e}", path.display()))?;
    parse_cases(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Parses and checks a golden set's text.
pub fn parse_cases(text: &str) -> anyhow::Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("line {n}: not a golden case: {e}"))?;
        let bad = |what: String| anyhow::anyhow!("line {n} (case {:?}): {what}", case.id);
        if case.id.trim().is_empty() {
            return Err(bad("the id is empty".into()));
        }
        if !ids.insert(case.id.clone()) {
            return Err(bad("this id is used twice".into()));
        }
        if case.turns.is_empty() || case.turns.iter().any(|t| t.trim().is_empty()) {
            return Err(bad("turns must hold at least one non-empty message".into()));
        }
        if !ROUTES.contains(&case.route.as_str()) {
            return Err(bad(format!(
                "route {:?} is not one of {}",
                case.route,
                ROUTES.join(", ")
            )));
        }
        if let Some(w) = &case.wa_id
            && (w.is_empty() || !w.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad(format!("wa_id {w:?} must be digits")));
        }
        if let Some(s) = &case.script
            && !s.get("reply").is_some_and(|r| r.is_string())
        {
            return Err(bad(
                "script needs a \"reply\" string (and optionally confidence, handoff, reason)".into(),
            ));
        }
        cases.push(case);
    }
    if cases.is_empty() {
        anyhow::bail!("the dataset holds no cases");
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cases_and_names_bad_lines() {
        let ok = r#"{"id":"a","turns":["hi"],"route":"commodity","docs":["x"],"tool":{"name":"order_status","args":{"order_id":"SS-1"}},"handoff":false}"#;
        let cases = parse_cases(&format!("// comment\n\n{ok}\n")).unwrap();
        assert_eq!(cases.len(), 1);
        assert!(cases[0].tool.as_ref().unwrap().ok);
        let e = parse_cases(&format!("{ok}\n{ok}")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = parse_cases(r#"{"id":"b","turns":["hi"],"route":"fast"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("\"fast\""), "{e}");
        let e = parse_cases(r#"{"id":"c","turns":[],"route":"commodity"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("turns"), "{e}");
        let e = parse_cases(r#"{"id":"d","turns":["x"],"route":"commodity","colour":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        assert!(parse_cases("\n").is_err());
    }
}
