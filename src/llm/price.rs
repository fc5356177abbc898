//! Token prices (USD per million tokens) and the cost of a call. Defaults are the
//! providers' list prices; `[llm.prices."MODEL"]` overrides or adds models. Unknown
//! models cost 0 and are named by `unknown_models`, so a budget never silently counts a
//! paid model as free without a warning.

use std::collections::BTreeMap;

pub use crate::config::Price;

/// List prices of common models (USD per 1M tokens).
pub fn defaults() -> BTreeMap<String, Price> {
    let p = |i: f64, o: f64| Price {
        input_per_mtok: i,
        output_per_mtok: o,
    };
    [
        ("claude-haiku-4-5", p(1.0, 5.0)),
        ("claude-sonnet-4-5", p(3.0, 15.0)),
        ("claude-sonnet-4-20250514", p(3.0, 15.0)),
        ("claude-3-5-haiku-latest", p(0.8, 4.0)),
        ("claude-opus-4-1", p(15.0, 75.0)),
        ("gpt-4o", p(2.5, 10.0)),
        ("gpt-4o-mini", p(0.15, 0.6)),
        ("gpt-4.1", p(2.0, 8.0)),
        ("gpt-4.1-mini", p(0.4, 1.6)),
        ("gpt-5-mini", p(0.25, 2.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The cost in USD of one call.
pub fn cost(prices: &BTreeMap<String, Price>, model: &str, tokens_in: u64, tokens_out: u64) -> f64 {
    prices.get(model).map_or(0.0, |p| {
        (tokens_in as f64 * p.input_per_mtok + tokens_out as f64 * p.output_per_mtok) / 1_000_000.0
    })
}

/// Average cost per message for a traffic mix: `share` of messages on `strong`, the rest
/// on `cheap`, each with `tokens_in`/`tokens_out`.
pub fn blended(
    prices: &BTreeMap<String, Price>,
    cheap: &str,
    strong: &str,
    share: f64,
    tokens_in: u64,
    tokens_out: u64,
) -> f64 {
    (1.0 - share) * cost(prices, cheap, tokens_in, tokens_out) + share * cost(prices, strong, tokens_in, tokens_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_arithmetic() {
        let p = defaults();
        // 600 in / 200 out: Haiku 4.5 = 0.0006 + 0.001.
        assert!((cost(&p, "claude-haiku-4-5", 600, 200) - 0.0016).abs() < 1e-12);
        assert!((cost(&p, "claude-sonnet-4-5", 600, 200) - 0.0048).abs() < 1e-12);
        // The seed's mix: 18% on the reasoning tier.
        assert!(
            (blended(&p, "claude-haiku-4-5", "claude-sonnet-4-5", 0.18, 600, 200) - (0.82 * 0.0016 + 0.18 * 0.0048))
                .abs()
                < 1e-12
        );
        assert_eq!(cost(&p, "my-local-llama", 600, 200), 0.0);
    }
}
