//! Config values that name models: a `provider:model` reference and a model's price.

use serde::{Deserialize, Serialize};

/// A `provider:model` entry of a tier's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn parse(s: &str) -> Option<ModelRef> {
        let (p, m) = s.split_once(':')?;
        (!p.is_empty() && !m.is_empty()).then(|| ModelRef {
            provider: p.to_string(),
            model: m.to_string(),
        })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

/// Price of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}
