//! The router (pure; seed layer 2): which way a message goes — the `commodity` tier, the
//! `reasoning` tier, or straight to a person. Editable rules come first (keywords or a
//! regex, in order; the live setting `router.rules`); when none matches, the classifier's
//! label decides (nearest centroid over labelled examples, or a zero-shot label call);
//! anything still on `commodity` past three turns on one issue goes to `reasoning`.
//! The route and why are recorded with each reply.

use serde::{Deserialize, Serialize};

/// A model tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Commodity,
    Reasoning,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Commodity => "commodity",
            Tier::Reasoning => "reasoning",
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Commodity,
    Reasoning,
    /// Straight to a person, no model call.
    Handoff,
}

impl Route {
    pub fn parse(s: &str) -> Option<Route> {
        match s.trim().to_ascii_lowercase().as_str() {
            "commodity" => Some(Route::Commodity),
            "reasoning" => Some(Route::Reasoning),
            "handoff" => Some(Route::Handoff),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Commodity => "commodity",
            Route::Reasoning => "reasoning",
            Route::Handoff => "handoff",
        }
    }
}

/// Turns on one issue beyond which a conversation goes to the reasoning tier.
pub const MAX_COMMODITY_TURNS: usize = 3;

/// One routing rule: a name, what it matches, and where matching messages go.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pattern: Pattern,
    pub route: Route,
}

#[derive(Debug, Clone)]
enum Pattern {
    /// Lower-cased phrases matched at word boundaries.
    Keywords(Vec<String>),
    /// Case-insensitive.
    Regex(regex::Regex),
}

/// Topics a bot must not settle alone (disputes, complaints, legal, safety): the default
/// rule, routed to `reasoning` (and to a person when that tier has no model).
pub const SENSITIVE_PHRASES: &[&str] = &[
    "complaint",
    "complain",
    "dispute",
    "chargeback",
    "charge back",
    "lawyer",
    "legal",
    "sue",
    "court",
    "police",
    "stolen",
    "compensation",
    "injured",
    "injury",
    "accident",
    "unacceptable",
    "scam",
    "fraud",
    "refund my",
    "want a refund",
    "money back",
    "klacht",
    "advocaat",
    "beschwerde",
    "anwalt",
    "plainte",
    "avocat",
    "queja",
    "abogado",
    "reembolso",
    // Upset customers and money disputes.
    "ridiculous",
    "furious",
    "angry",
    "disgusting",
    "useless",
    "rip off",
    "ripoff",
    "worst",
    "terrible service",
    "awful",
    "rude",
    "one star",
    "1 star",
    "bad review",
    "are you kidding",
    "charged twice",
    "double charged",
    "charged me twice",
    "my money",
    "reverse the charge",
    "geld terug",
    "waardeloos",
    "waardeloze",
    "schandalig",
    "onbeschoft",
    "unverschämt",
    "geld zurück",
    "inadmissible",
    "remboursez",
    "inaceptable",
    "devuélvanme",
];

/// Shouting (three capitalised words in a row) or stacked exclamation marks: an upset
/// customer, whatever the words.
pub const UPSET_REGEX: &str = r"(?-i:\b[A-Z]{2,}\b[\s,.]+\b[A-Z]{2,}\b[\s,.]+\b[A-Z]{2,}\b)|!{2,}";

/// The rule line for a config rule: `NAME: kw1, kw2 => ROUTE` or `NAME: /REGEX/ => ROUTE`.
pub fn rule_line(name: &str, keywords: &[String], regex: &str, route: &str) -> String {
    let pattern = if regex.is_empty() {
        keywords.join(", ")
    } else {
        format!("/{regex}/")
    };
    format!("{name}: {pattern} => {route}")
}

/// The built-in rules when the config has none.
pub fn default_rules() -> String {
    let sensitive = rule_line(
        "sensitive",
        &SENSITIVE_PHRASES.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "",
        "reasoning",
    );
    format!("{sensitive}\n{}", rule_line("upset", &[], UPSET_REGEX, "reasoning"))
}

/// Parses rules, one per line: `[NAME:] PATTERN => ROUTE` where PATTERN is `/REGEX/`
/// (case-insensitive) or comma-separated keywords (whole words, any case) and ROUTE is
/// `commodity`, `reasoning` or `handoff`. Blank lines and lines starting with `#` are
/// skipped; `-` alone means no rules.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "-" {
            continue;
        }
        let n = i + 1;
        let (lhs, route) = line
            .rsplit_once("=>")
            .ok_or_else(|| format!("rule {n} ({line:?}): write PATTERN => ROUTE"))?;
        let route = Route::parse(route).ok_or_else(|| {
            format!(
                "rule {n}: route {:?} is not commodity, reasoning or handoff",
                route.trim()
            )
        })?;
        let lhs = lhs.trim();
        // A leading `name:` (one word, before any pattern).
        let (name, pattern) = match lhs.split_once(':') {
            Some((a, b))
                if !a.is_empty()
                    && !a.starts_with('/')
                    && a.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
            {
                (a.to_string(), b.trim())
            }
            _ => (format!("rule{n}"), lhs),
        };
        let pattern = if pattern.len() >= 2 && pattern.starts_with('/') && pattern.ends_with('/') {
            let re = regex::RegexBuilder::new(&pattern[1..pattern.len() - 1])
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("rule {n} ({name}): bad regex: {e}"))?;
            Pattern::Regex(re)
        } else {
            let words: Vec<String> = pattern
                .split(',')
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            if words.is_empty() {
                return Err(format!("rule {n} ({name}): no keywords before =>"));
            }
            Pattern::Keywords(words)
        };
        rules.push(Rule { name, pattern, route });
    }
    Ok(rules)
}

/// Whether `text` contains `phrase` at word boundaries.
pub fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after = text[i + phrase.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        before && after
    })
}

/// The first rule matching `text`, with the matched words.
pub fn first_rule<'a>(rules: &'a [Rule], text: &str) -> Option<(&'a Rule, String)> {
    let lower = text.to_lowercase();
    rules.iter().find_map(|r| {
        let hit = match &r.pattern {
            Pattern::Keywords(words) => words.iter().find(|w| contains_phrase(&lower, w)).cloned(),
            Pattern::Regex(re) => re.find(text).map(|m| m.as_str().to_string()),
        };
        hit.map(|h| (r, h))
    })
}

/// What the classifier said about a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// `centroid` or `zero_shot`.
    pub by: &'static str,
    pub label: String,
    /// Cosine similarity to the label's centroid (zero-shot: 1).
    pub score: f32,
    /// The label's route (labels not mapped route to `commodity`).
    pub route: Route,
}

/// The route and why: a matching rule wins, then the classifier's label, then the turn
/// count (more than three turns on one issue go to `reasoning`).
pub fn decide(rule: Option<(&Rule, &str)>, classified: Option<&Classified>, recent_turns: usize) -> (Route, String) {
    let (route, why) = match (rule, classified) {
        (Some((r, hit)), _) => (r.route, format!("rule {} (\"{hit}\")", r.name)),
        (None, Some(c)) => (c.route, format!("{} label {} ({:.2})", c.by, c.label, c.score)),
        (None, None) => (Route::Commodity, "routine question".into()),
    };
    if route == Route::Commodity && recent_turns > MAX_COMMODITY_TURNS {
        return (
            Route::Reasoning,
            format!("{why}; {recent_turns} turns on one issue (more than {MAX_COMMODITY_TURNS})"),
        );
    }
    (route, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_from_lines() {
        let rules =
            parse_rules("# comment\nlegal: /\\b(lawyer|court)s?\\b/ => handoff\nrefund, money back => Reasoning\n\n")
                .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].name.as_str(), rules[0].route), ("legal", Route::Handoff));
        assert_eq!((rules[1].name.as_str(), rules[1].route), ("rule3", Route::Reasoning));
        assert!(parse_rules("-").unwrap().is_empty());
        assert!(parse_rules("refund").unwrap_err().contains("PATTERN => ROUTE"));
        assert!(
            parse_rules("x: refund => later")
                .unwrap_err()
                .contains("not commodity, reasoning or handoff")
        );
        assert!(
            parse_rules("x: /(unclosed/ => handoff")
                .unwrap_err()
                .contains("bad regex")
        );
        assert!(parse_rules("x: , => handoff").unwrap_err().contains("no keywords"));
    }

    #[test]
    fn rules_match_in_order_at_word_boundaries() {
        let rules = parse_rules("legal: /\\blawyers?\\b/ => handoff\nmoney: refund, money back => reasoning").unwrap();
        let (r, hit) = first_rule(&rules, "My LAWYER wants my money back").unwrap();
        assert_eq!((r.name.as_str(), hit.as_str()), ("legal", "LAWYER"));
        assert_eq!(first_rule(&rules, "can I get my Money Back?").unwrap().1, "money back");
        assert!(first_rule(&rules, "refunding is fine").is_none(), "whole words only");
        let defaults = parse_rules(&default_rules()).unwrap();
        assert_eq!(first_rule(&defaults, "My bike was STOLEN").unwrap().1, "stolen");
        assert!(
            first_rule(&defaults, "do you repair suede saddles").is_none(),
            "sue inside a word does not count"
        );
        // Shouting and stacked exclamation marks are "upset"; one capitalised word is not.
        assert_eq!(
            first_rule(&defaults, "where IS MY BIKE, seriously").unwrap().0.name,
            "upset"
        );
        assert_eq!(first_rule(&defaults, "third time asking!!!").unwrap().0.name, "upset");
        assert!(first_rule(&defaults, "is the XL frame in stock? thanks!").is_none());
        assert!(first_rule(&defaults, "do you fix SRAM and GX shifters").is_none());
    }

    #[test]
    fn rules_then_classifier_then_turns() {
        let rules = parse_rules("sensitive: complaint => reasoning").unwrap();
        let hit = first_rule(&rules, "a complaint");
        let c = Classified {
            by: "centroid",
            label: "card_lost".into(),
            score: 0.71,
            route: Route::Handoff,
        };
        assert_eq!(
            decide(hit.as_ref().map(|(r, h)| (*r, h.as_str())), Some(&c), 1),
            (Route::Reasoning, "rule sensitive (\"complaint\")".into())
        );
        assert_eq!(
            decide(None, Some(&c), 1),
            (Route::Handoff, "centroid label card_lost (0.71)".into())
        );
        assert_eq!(decide(None, None, 3).0, Route::Commodity);
        let (r, why) = decide(None, None, 4);
        assert_eq!(
            (r, why.as_str()),
            (Route::Reasoning, "routine question; 4 turns on one issue (more than 3)")
        );
    }
}
