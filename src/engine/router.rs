//! The router (pure; seed layer 2): which tier answers. Sensitive topics and
//! conversations past three back-and-forth turns on one issue go to `reasoning`;
//! everything else to `commodity`. The route and why are recorded with each reply.

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

/// Turns on one issue beyond which a conversation goes to the reasoning tier.
pub const MAX_COMMODITY_TURNS: usize = 3;

/// Picks the tier: `sensitive` is the matched sensitive phrase, `recent_turns` the
/// customer's messages in this conversation within the issue window.
pub fn route(sensitive: Option<&str>, recent_turns: usize) -> (Tier, String) {
    if let Some(p) = sensitive {
        return (Tier::Reasoning, format!("sensitive topic (\"{p}\")"));
    }
    if recent_turns > MAX_COMMODITY_TURNS {
        return (Tier::Reasoning, format!("{recent_turns} turns on one issue (more than {MAX_COMMODITY_TURNS})"));
    }
    (Tier::Commodity, "routine question".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_and_long_go_to_reasoning() {
        assert_eq!(route(None, 1).0, Tier::Commodity);
        assert_eq!(route(None, 3).0, Tier::Commodity);
        let (t, why) = route(None, 4);
        assert_eq!((t, why.as_str()), (Tier::Reasoning, "4 turns on one issue (more than 3)"));
        assert_eq!(route(Some("complaint"), 1), (Tier::Reasoning, "sensitive topic (\"complaint\")".to_string()));
    }
}
