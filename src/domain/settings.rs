//! Live settings (pure): the rollback switches an owner flips without a restart. Each key
//! has a type and limits; stored overrides sit on top of the config file's values and a
//! change applies to the next message.

use std::collections::BTreeMap;

/// A setting's key, what it holds, and what it means.
pub struct SettingSpec {
    pub key: &'static str,
    pub help: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Switch,
    Text,
    /// A number within bounds.
    Number(f64, f64),
    /// Comma-separated `provider:model` entries.
    Chain,
    /// Routing rules, one per line (`super::router::parse_rules`).
    Rules,
    /// Customers' numbers or BSUIDs (`super::soft_launch::normalize_allow`); `-` for none.
    Numbers,
}

/// Every live setting.
pub const SPECS: &[SettingSpec] = &[
    SettingSpec {
        key: "kill_switch",
        help: "on: the bot stops answering; customers get static_reply and every conversation goes to people",
        kind: Kind::Switch,
    },
    SettingSpec {
        key: "static_reply",
        help: "what customers get while the kill switch is on",
        kind: Kind::Text,
    },
    SettingSpec {
        key: "bridge_text",
        help: "the message sent once when a person takes over",
        kind: Kind::Text,
    },
    SettingSpec {
        key: "unknown_text",
        help: "what customers get when the documents do not answer their question (a person takes over)",
        kind: Kind::Text,
    },
    SettingSpec {
        key: "confidence_threshold",
        help: "below this retrieval similarity (0-1) the bot hands off",
        kind: Kind::Number(0.0, 1.0),
    },
    SettingSpec {
        key: "debounce_ms",
        help: "wait this long for more messages before answering a burst (0-8000)",
        kind: Kind::Number(0.0, 8000.0),
    },
    SettingSpec {
        key: "tier.commodity",
        help: "ordered fallback chain for easy questions, e.g. anthropic:claude-haiku-4-5,openai:gpt-4o-mini",
        kind: Kind::Chain,
    },
    SettingSpec {
        key: "tier.reasoning",
        help: "ordered fallback chain for hard or sensitive questions",
        kind: Kind::Chain,
    },
    SettingSpec {
        key: "router.rules",
        help: "routing rules, one per line: NAME: keyword, keyword => ROUTE or NAME: /regex/ => ROUTE (commodity, reasoning, handoff); - for none",
        kind: Kind::Rules,
    },
    SettingSpec {
        key: "budget.contact_daily_tokens",
        help: "model tokens (in + out) per contact per day (0 = no limit); past 80% cheaper tier, at 100% static reply + handoff",
        kind: Kind::Number(0.0, 1e12),
    },
    SettingSpec {
        key: "budget.global_daily_tokens",
        help: "model tokens (in + out) for the whole desk per day (0 = no limit)",
        kind: Kind::Number(0.0, 1e12),
    },
    SettingSpec {
        key: "budget.contact_daily_usd",
        help: "model spend per contact per day (USD, 0 = no limit); past 80% cheaper tier, at 100% static reply + handoff",
        kind: Kind::Number(0.0, 1_000_000.0),
    },
    SettingSpec {
        key: "budget.global_daily_usd",
        help: "model spend for the whole desk per day (USD, 0 = no limit)",
        kind: Kind::Number(0.0, 1_000_000.0),
    },
    SettingSpec {
        key: "soft_launch.percent",
        help: "soft launch: percent (0-100) of NEW conversations the bot answers; the rest start with people (sticky per conversation)",
        kind: Kind::Number(0.0, 100.0),
    },
    SettingSpec {
        key: "soft_launch.allow",
        help: "soft launch pilot: customers' numbers or BSUIDs (separated by commas or lines) whose new conversations the bot answers, all others start with people; - for none (then soft_launch.percent applies)",
        kind: Kind::Numbers,
    },
];

/// Every key with what it means, one per line (`settings set --help` shows it).
pub fn keys_help() -> String {
    let width = SPECS.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let mut out = String::from("Keys:\n");
    for s in SPECS {
        out.push_str(&format!("  {:<width$}  {}\n", s.key, s.help));
    }
    out
}

/// The spec of `key`, or a message naming the known keys.
pub fn spec(key: &str) -> Result<&'static SettingSpec, String> {
    SPECS.iter().find(|s| s.key == key).ok_or_else(|| {
        format!(
            "unknown setting {key:?}; known: {}",
            SPECS.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Checks that every entry of a model chain (`tier.*`, already normalised) names a
/// configured provider: `providers` are the names under `[llm.providers]` plus `offline`.
/// Other settings pass unchanged.
pub fn check_providers(key: &str, normalized: &str, providers: &[String]) -> Result<(), String> {
    if !matches!(spec(key)?.kind, Kind::Chain) {
        return Ok(());
    }
    for entry in normalized.split(',') {
        let provider = entry.split_once(':').map_or(entry, |(p, _)| p);
        if !providers.iter().any(|p| p == provider) {
            return Err(format!(
                "{key}: {entry:?} names no configured provider {provider:?}; configured: {} \
                 (add one under [llm.providers] in the config file first)",
                providers.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks and normalises a value for `key` (switches become `on`/`off`, chains lose spaces).
pub fn normalize(key: &str, value: &str) -> Result<String, String> {
    let spec = spec(key)?;
    let v = value.trim();
    match spec.kind {
        Kind::Switch => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok("on".into()),
            "off" | "false" | "0" | "no" => Ok("off".into()),
            _ => Err(format!("{key} takes on or off, not {v:?}")),
        },
        Kind::Text => {
            if v.is_empty() || v.len() > 4096 {
                Err(format!("{key} must be 1-4096 bytes of text"))
            } else {
                Ok(v.to_string())
            }
        }
        Kind::Number(lo, hi) => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && (lo..=hi).contains(&n) => Ok(v.to_string()),
            _ => Err(format!("{key} must be a number from {lo} to {hi}, not {v:?}")),
        },
        Kind::Chain => {
            let parts: Vec<String> = v
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            if parts.is_empty() {
                return Err(format!("{key} needs at least one provider:model entry"));
            }
            for p in &parts {
                match p.split_once(':') {
                    Some((a, b)) if !a.is_empty() && !b.is_empty() => {}
                    _ => return Err(format!("{key}: {p:?} is not provider:model")),
                }
            }
            Ok(parts.join(","))
        }
        Kind::Numbers => super::soft_launch::normalize_allow(v),
        Kind::Rules => {
            if v.len() > 16_384 {
                return Err(format!("{key} must be at most 16384 bytes"));
            }
            let rules = super::router::parse_rules(v).map_err(|e| format!("{key}: {e}"))?;
            if rules.is_empty() {
                return Ok("-".into());
            }
            Ok(v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }
}

/// The effective settings: defaults (from the config file) with live overrides on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    values: BTreeMap<&'static str, (String, Source)>,
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Live,
}

impl Effective {
    /// `defaults` must name every key in `SPECS`; stored overrides that no longer
    /// validate are ignored (and reported by `problems`).
    pub fn new(defaults: &[(&'static str, String)], overrides: &[(String, String)]) -> Effective {
        let mut values: BTreeMap<&'static str, (String, Source)> = defaults
            .iter()
            .map(|(k, v)| (*k, (v.clone(), Source::Config)))
            .collect();
        for (k, v) in overrides {
            if let (Ok(spec), Ok(v)) = (spec(k), normalize(k, v)) {
                values.insert(spec.key, (v, Source::Live));
            }
        }
        Effective { values }
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(|v| v.0.as_str()).unwrap_or("")
    }

    pub fn source(&self, key: &str) -> Option<Source> {
        self.values.get(key).map(|v| v.1)
    }

    pub fn switch(&self, key: &str) -> bool {
        self.get(key) == "on"
    }

    pub fn number(&self, key: &str) -> f64 {
        self.get(key).parse().unwrap_or(0.0)
    }

    /// `(key, value, source)` for every setting, in key order.
    pub fn list(&self) -> Vec<(&'static str, &str, Source)> {
        self.values.iter().map(|(k, (v, s))| (*k, v.as_str(), *s)).collect()
    }

    /// Whether a desk-wide daily budget is set (then today's spend can stop the bot).
    pub fn has_global_budget(&self) -> bool {
        self.number("budget.global_daily_usd") > 0.0 || self.number("budget.global_daily_tokens") > 0.0
    }

    /// The rollback in force, given the whole desk's model spend today: the kill switch,
    /// or a spent desk-wide budget (per-contact budgets stop one customer, not the desk).
    pub fn rollback(&self, global_usd: f64, global_tokens: u64) -> Option<Rollback> {
        if self.switch("kill_switch") {
            return Some(Rollback::KillSwitch);
        }
        let none = super::budget::Meter {
            usd: 0.0,
            tokens: 0.0,
            limit_usd: 0.0,
            limit_tokens: 0.0,
        };
        let desk = super::budget::Meter {
            usd: global_usd,
            tokens: global_tokens as f64,
            limit_usd: self.number("budget.global_daily_usd"),
            limit_tokens: self.number("budget.global_daily_tokens"),
        };
        match super::budget::allowance(none, desk) {
            super::budget::Allowance::Exhausted(why) => Some(Rollback::BudgetSpent(why)),
            _ => None,
        }
    }
}

/// A rollback in force: the bot answers nobody and every customer gets the static reply
/// (and goes to people). Every inbox and admin page says so in a banner.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollback {
    /// The live setting `kill_switch` is on.
    KillSwitch,
    /// The desk's daily model budget is spent (why, in words), until the next UTC day.
    BudgetSpent(String),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kill_switch_or_a_spent_desk_budget_is_a_rollback() {
        let defaults: Vec<(&'static str, String)> = SPECS
            .iter()
            .map(|s| (s.key, if s.key == "kill_switch" { "off" } else { "0" }.to_string()))
            .collect();
        let with = |o: &[(&str, &str)]| {
            let o: Vec<(String, String)> = o.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Effective::new(&defaults, &o)
        };
        assert_eq!(
            with(&[]).rollback(1e9, u64::MAX),
            None,
            "no budget set: nothing is spent"
        );
        assert!(!with(&[]).has_global_budget());
        assert_eq!(
            with(&[("kill_switch", "on")]).rollback(0.0, 0),
            Some(Rollback::KillSwitch)
        );
        let budget = with(&[("budget.global_daily_usd", "2")]);
        assert!(budget.has_global_budget());
        assert_eq!(budget.rollback(1.99, 0), None);
        assert!(matches!(budget.rollback(2.0, 0), Some(Rollback::BudgetSpent(why)) if why.contains("$2.0000")));
        let tokens = with(&[("budget.global_daily_tokens", "1000")]);
        assert!(matches!(tokens.rollback(0.0, 1000), Some(Rollback::BudgetSpent(why)) if why.contains("1000 tokens")));
        // A contact's own budget never stops the desk.
        assert_eq!(with(&[("budget.contact_daily_usd", "1")]).rollback(5.0, 0), None);
    }

    use super::*;

    #[test]
    fn values_are_checked_and_normalised() {
        assert_eq!(normalize("kill_switch", "ON").unwrap(), "on");
        assert_eq!(normalize("kill_switch", "false").unwrap(), "off");
        assert!(normalize("kill_switch", "maybe").unwrap_err().contains("on or off"));
        assert_eq!(normalize("confidence_threshold", " 0.4 ").unwrap(), "0.4");
        assert!(normalize("confidence_threshold", "1.5").is_err());
        assert!(normalize("debounce_ms", "9000").is_err());
        assert_eq!(
            normalize("tier.commodity", "anthropic:claude-haiku-4-5, openai:gpt-4o-mini").unwrap(),
            "anthropic:claude-haiku-4-5,openai:gpt-4o-mini"
        );
        assert!(
            normalize("tier.reasoning", "gpt-4o")
                .unwrap_err()
                .contains("provider:model")
        );
        assert!(normalize("static_reply", "  ").is_err());
        let known = ["anthropic".to_string(), "offline".to_string()];
        assert!(check_providers("tier.commodity", "anthropic:claude-haiku-4-5,offline:demo", &known).is_ok());
        let e = check_providers("tier.commodity", "anthropic:x,nosuchprovider:gpt-9", &known).unwrap_err();
        assert!(
            e.contains("\"nosuchprovider\"") && e.contains("configured: anthropic, offline"),
            "{e}"
        );
        assert!(check_providers("static_reply", "nosuchprovider:gpt-9", &known).is_ok());
        assert_eq!(
            normalize(
                "router.rules",
                " legal: lawyer => handoff \n\n money back => reasoning "
            )
            .unwrap(),
            "legal: lawyer => handoff\nmoney back => reasoning"
        );
        assert_eq!(normalize("router.rules", "").unwrap(), "-");
        assert!(
            normalize("router.rules", "lawyer => later")
                .unwrap_err()
                .starts_with("router.rules: rule 1")
        );
        assert!(normalize("colour", "red").unwrap_err().contains("known: kill_switch"));
    }

    #[test]
    fn overrides_sit_on_top_of_defaults() {
        let defaults = [
            ("kill_switch", "off".to_string()),
            ("bridge_text", "A person will reply.".to_string()),
        ];
        let e = Effective::new(
            &defaults,
            &[
                ("kill_switch".into(), "on".into()),
                ("confidence_threshold".into(), "7".into()),
            ],
        );
        assert!(e.switch("kill_switch"));
        assert_eq!(e.source("kill_switch"), Some(Source::Live));
        assert_eq!(
            (e.get("bridge_text"), e.source("bridge_text")),
            ("A person will reply.", Some(Source::Config))
        );
        assert_eq!(
            e.source("confidence_threshold"),
            None,
            "an invalid stored value is ignored"
        );
    }
}
