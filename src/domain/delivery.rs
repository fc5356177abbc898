//! Delivery states of an outbound message and the rule that they only move forward:
//! sent < delivered < read < played; `failed` ends the line and keeps its error.

use serde::{Deserialize, Serialize};

/// The state Meta reports for a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryState {
    /// Parses Meta's status string; `None` for states this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "played" => DeliveryState::Played,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Played => "played",
            DeliveryState::Failed => "failed",
        }
    }

    /// Position on the forward path; `failed` sits above `sent` only.
    pub fn rank(self) -> u8 {
        match self {
            DeliveryState::Sent => 1,
            DeliveryState::Failed => 2,
            DeliveryState::Delivered => 3,
            DeliveryState::Read => 4,
            DeliveryState::Played => 5,
        }
    }

    /// Whether a message now in `self` should move to `next`. States never move
    /// backwards, a late `delivered` never overwrites `read`, and `failed` is final.
    pub fn may_become(self, next: DeliveryState) -> bool {
        if self == DeliveryState::Failed {
            return false;
        }
        if next == DeliveryState::Failed {
            return self == DeliveryState::Sent;
        }
        next.rank() > self.rank()
    }
}

/// The state to keep given the current one (if any) and a newly reported one.
pub fn next_state(current: Option<DeliveryState>, reported: DeliveryState) -> Option<DeliveryState> {
    match current {
        None => Some(reported),
        Some(cur) if cur.may_become(reported) => Some(reported),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::*;
    use super::*;

    #[test]
    fn transitions_table() {
        let cases = [
            (Sent, Delivered, true),
            (Sent, Read, true),
            (Delivered, Read, true),
            (Read, Delivered, false),
            (Read, Sent, false),
            (Delivered, Sent, false),
            (Sent, Failed, true),
            (Delivered, Failed, false),
            (Failed, Delivered, false),
            (Failed, Read, false),
            (Read, Played, true),
            (Played, Read, false),
            (Read, Read, false),
        ];
        for (from, to, want) in cases {
            assert_eq!(from.may_become(to), want, "{from:?} -> {to:?}");
        }
        assert_eq!(next_state(None, Read), Some(Read));
        assert_eq!(next_state(Some(Read), Delivered), None);
    }
}
