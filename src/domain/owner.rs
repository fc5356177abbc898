//! Who answers a conversation (pure): the bot or a person. Three transitions move it —
//! an agent takes over, a handoff starts, a person hands back — and nothing else does.
//! Stored as the strings `bot` and `human`.

use serde::{Deserialize, Serialize};

/// The owner of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The bot answers (a new conversation starts here, unless soft launch puts it with
    /// people: `super::soft_launch::LaunchGroup::People` starts as `Human`).
    #[default]
    Bot,
    /// A person answers; the bot is silent.
    Human,
}

impl Owner {
    /// The stored form: `bot` or `human`.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Bot => "bot",
            Owner::Human => "human",
        }
    }

    /// The stored form back; anything else is not an owner.
    pub fn parse(s: &str) -> Option<Owner> {
        match s {
            "bot" => Some(Owner::Bot),
            "human" => Some(Owner::Human),
            _ => None,
        }
    }

    /// An agent takes a bot-owned conversation over; `None` when a person owns it already.
    pub fn take_over(self) -> Option<Owner> {
        match self {
            Owner::Bot => Some(Owner::Human),
            Owner::Human => None,
        }
    }

    /// A person hands the conversation back to the bot; `None` when the bot owns it already.
    pub fn hand_back(self) -> Option<Owner> {
        match self {
            Owner::Human => Some(Owner::Bot),
            Owner::Bot => None,
        }
    }

    /// The engine hands the conversation to a person: always a person afterwards (a
    /// re-run of the same handoff changes nothing).
    pub fn start_handoff(self) -> Owner {
        Owner::Human
    }

    /// Whether the bot may answer the customer.
    pub fn bot_answers(self) -> bool {
        self == Owner::Bot
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_transitions_move_the_owner() {
        assert_eq!(Owner::Bot.take_over(), Some(Owner::Human));
        assert_eq!(Owner::Human.take_over(), None);
        assert_eq!(Owner::Human.hand_back(), Some(Owner::Bot));
        assert_eq!(Owner::Bot.hand_back(), None);
        assert_eq!(Owner::Bot.start_handoff(), Owner::Human);
        assert_eq!(Owner::Human.start_handoff(), Owner::Human, "idempotent");
        assert!(Owner::Bot.bot_answers() && !Owner::Human.bot_answers());
        assert_eq!(Owner::default(), Owner::Bot);
    }

    #[test]
    fn stored_strings_are_unchanged() {
        for (o, s) in [(Owner::Bot, "bot"), (Owner::Human, "human")] {
            assert_eq!((o.as_str(), o.to_string()), (s, s.to_string()));
            assert_eq!(Owner::parse(s), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), serde_json::json!(s));
        }
        assert_eq!(Owner::parse("paused"), None);
    }
}
