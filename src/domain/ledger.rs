//! The send ledger's state machine: queued → sending → accepted → sent → delivered →
//! read (→ played), or failed. States never move backwards.

use serde::{Deserialize, Serialize};

use super::delivery::DeliveryState;

/// Where an outbound message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerState {
    /// Written, waiting for the send worker.
    Queued,
    /// A request to Meta is (or was) in flight; its outcome is not recorded yet.
    Sending,
    /// Meta accepted it and gave a wamid.
    Accepted,
    Sent,
    Delivered,
    Read,
    Played,
    /// Will not be delivered; the row keeps the code and a readable reason.
    Failed,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Queued => "queued",
            LedgerState::Sending => "sending",
            LedgerState::Accepted => "accepted",
            LedgerState::Sent => "sent",
            LedgerState::Delivered => "delivered",
            LedgerState::Read => "read",
            LedgerState::Played => "played",
            LedgerState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<LedgerState> {
        Some(match s {
            "queued" => LedgerState::Queued,
            "sending" => LedgerState::Sending,
            "accepted" => LedgerState::Accepted,
            "sent" => LedgerState::Sent,
            "delivered" => LedgerState::Delivered,
            "read" => LedgerState::Read,
            "played" => LedgerState::Played,
            "failed" => LedgerState::Failed,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            LedgerState::Queued => 0,
            LedgerState::Sending => 1,
            LedgerState::Accepted => 2,
            LedgerState::Sent => 3,
            LedgerState::Failed => 4,
            LedgerState::Delivered => 5,
            LedgerState::Read => 6,
            LedgerState::Played => 7,
        }
    }

    /// Whether Meta has the message (so it must never be sent again).
    pub fn is_with_meta(self) -> bool {
        self.rank() >= LedgerState::Accepted.rank() && self != LedgerState::Failed
    }

    /// Whether the send is over, one way or the other.
    pub fn is_final(self) -> bool {
        self.is_with_meta() || self == LedgerState::Failed
    }

    /// Whether a row in `self` may move to `next`.
    pub fn may_become(self, next: LedgerState) -> bool {
        match (self, next) {
            (LedgerState::Failed, _) => false,
            // A send can fail before Meta has it, or Meta can report failed after sent.
            (cur, LedgerState::Failed) => cur.rank() <= LedgerState::Sent.rank(),
            // After a failed attempt the row goes back to queued for a retry.
            (LedgerState::Sending, LedgerState::Queued) => true,
            (cur, n) => n.rank() > cur.rank(),
        }
    }
}

impl From<DeliveryState> for LedgerState {
    fn from(d: DeliveryState) -> Self {
        match d {
            DeliveryState::Sent => LedgerState::Sent,
            DeliveryState::Delivered => LedgerState::Delivered,
            DeliveryState::Read => LedgerState::Read,
            DeliveryState::Played => LedgerState::Played,
            DeliveryState::Failed => LedgerState::Failed,
        }
    }
}

/// The `biz_opaque_callback_data` carrying a ledger id.
pub fn callback_data(ledger_id: i64) -> String {
    format!("fd:{ledger_id}")
}

/// The idempotency key of the one retry of failed ledger row `ledger_id`: a failed
/// message is sent again at most once (a retry that fails too has its own retry).
pub fn retry_key(ledger_id: i64) -> String {
    format!("retry:{ledger_id}")
}

/// The ledger id in a callback string we sent, if it is one of ours.
pub fn ledger_id_from_callback(data: &str) -> Option<i64> {
    data.strip_prefix("fd:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::LedgerState::*;

    #[test]
    fn transitions() {
        let cases = [
            (Queued, Sending, true),
            (Sending, Accepted, true),
            (Sending, Queued, true),
            (Accepted, Queued, false),
            (Accepted, Sent, true),
            (Sending, Delivered, true),
            (Read, Delivered, false),
            (Delivered, Sent, false),
            (Sent, Failed, true),
            (Queued, Failed, true),
            (Delivered, Failed, false),
            (Failed, Read, false),
            (Failed, Queued, false),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.may_become(b), want, "{a:?} -> {b:?}");
        }
        assert!(Accepted.is_with_meta() && !Sending.is_with_meta() && !Failed.is_with_meta());
        assert_eq!(super::ledger_id_from_callback(&super::callback_data(42)), Some(42));
        assert_eq!(super::ledger_id_from_callback("other"), None);
        assert_eq!(super::retry_key(7), "retry:7");
    }
}
