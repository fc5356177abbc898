//! Agents' triage of a conversation: its priority and its labels (short words agents
//! type, e.g. "refund" or "vip"), normalised so "VIP " and "vip" are one label.

/// How urgent a conversation is; stored as 0-3 (the list sorts nothing by it, it shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    #[default]
    None,
    Low,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::None, Priority::Low, Priority::High, Priority::Urgent];

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "none",
            Priority::Low => "low",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn stored(self) -> i64 {
        self as i64
    }

    pub fn from_stored(n: i64) -> Priority {
        Priority::ALL.get(n.clamp(0, 3) as usize).copied().unwrap_or_default()
    }
}

/// Longest label, in characters.
pub const LABEL_MAX_CHARS: usize = 24;
/// Most labels one conversation carries.
pub const LABELS_PER_CONVERSATION: usize = 8;

/// A label as typed → its stored form: trimmed, lower case, inner spaces as `-`; letters
/// (any script), digits, `-` and `_` only; at most `LABEL_MAX_CHARS`. `None` when nothing
/// usable is left or something else was typed.
pub fn label(typed: &str) -> Option<String> {
    let words: Vec<&str> = typed.split_whitespace().collect();
    let joined = words.join("-").to_lowercase();
    if joined.is_empty()
        || joined.chars().count() > LABEL_MAX_CHARS
        || !joined.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_normalised() {
        assert_eq!(label("  VIP ").as_deref(), Some("vip"));
        assert_eq!(label("Needs refund").as_deref(), Some("needs-refund"));
        assert_eq!(label("عاجل").as_deref(), Some("عاجل"));
        assert_eq!(label("e_bike-2").as_deref(), Some("e_bike-2"));
    }

    #[test]
    fn odd_labels_are_refused() {
        for bad in ["", "   ", "<script>", "a/b", "x\"y", &"long".repeat(7)] {
            assert_eq!(label(bad), None, "{bad}");
        }
    }

    #[test]
    fn priorities_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
            assert_eq!(Priority::from_stored(p.stored()), p);
        }
        assert_eq!(Priority::parse("critical"), None);
        assert_eq!(Priority::from_stored(99), Priority::Urgent);
    }
}
