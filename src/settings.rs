//! Live settings as the running system sees them: the config file's values with the
//! stored overrides on top, read fresh for every message (one small SQLite read), so a
//! change made by the CLI, the admin API or the admin page applies to the next message.

use crate::config::Config;
use crate::domain::settings::Effective;
use crate::error::Result;
use crate::store::Store;
use crate::store::settings as rows;

/// Each setting's value from the config file.
pub fn defaults(config: &Config) -> Vec<(&'static str, String)> {
    let e = &config.engine;
    vec![
        ("kill_switch", if e.kill_switch { "on" } else { "off" }.to_string()),
        ("static_reply", e.static_reply.clone()),
        ("bridge_text", e.bridge_text.clone()),
        ("unknown_text", e.unknown_text.clone()),
        ("confidence_threshold", e.confidence_threshold.to_string()),
        ("debounce_ms", e.debounce_ms.to_string()),
        ("tier.commodity", chain(&config.llm.tiers.commodity)),
        ("tier.reasoning", chain(&config.llm.tiers.reasoning)),
        ("router.rules", config.router.rules_text()),
        ("budget.contact_daily_tokens", e.budget_contact_daily_tokens.to_string()),
        ("budget.global_daily_tokens", e.budget_global_daily_tokens.to_string()),
        ("budget.contact_daily_usd", e.budget_contact_daily_usd.to_string()),
        ("budget.global_daily_usd", e.budget_global_daily_usd.to_string()),
        // No config key: a soft launch is ramped live. Until then the bot answers all.
        ("soft_launch.percent", "100".to_string()),
        ("soft_launch.allow", "-".to_string()),
    ]
}

/// A tier's chain as a setting value; no models means the offline responder.
fn chain(models: &[String]) -> String {
    if models.is_empty() {
        "offline:builtin".into()
    } else {
        models.join(",")
    }
}

/// The effective settings of a running instance, read now.
pub async fn current(store: &Store, config: &Config) -> Result<Effective> {
    let defaults = defaults(config);
    store
        .read(move |c| Ok(Effective::new(&defaults, &rows::overrides(c)?)))
        .await
}

/// As `current`, from a thread that may block (the CLI).
pub fn current_blocking(store: &Store, config: &Config) -> Result<Effective> {
    let defaults = defaults(config);
    store.call_blocking(move |c| Ok(Effective::new(&defaults, &rows::overrides(c)?)))
}

/// The settings as JSON rows: key, value, source, help.
pub fn to_json(e: &Effective) -> serde_json::Value {
    serde_json::Value::Array(
        e.list()
            .into_iter()
            .map(|(k, v, s)| {
                let help = crate::domain::settings::spec(k).map(|s| s.help).unwrap_or("");
                serde_json::json!({ "key": k, "value": v, "source": s, "help": help })
            })
            .collect(),
    )
}
