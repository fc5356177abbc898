//! The 24-hour customer service window: free-form messages may be sent only within
//! 24 hours of the customer's last message; outside it only templates.

use super::UnixMillis;

/// The window's length.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether the window is open at `now` given the customer's last message time.
pub fn is_open(last_inbound_at: Option<UnixMillis>, now: UnixMillis) -> bool {
    matches!(last_inbound_at, Some(t) if now - t <= WINDOW_MS)
}

/// Milliseconds left in the window (0 when closed).
pub fn remaining_ms(last_inbound_at: Option<UnixMillis>, now: UnixMillis) -> i64 {
    last_inbound_at.map_or(0, |t| (t + WINDOW_MS - now).max(0))
}

/// Under this much time left the inbox list marks the countdown as urgent.
pub const SOON_MS: i64 = 2 * 60 * 60 * 1000;

/// The window's countdown in words for the inbox list: "reply window closes in 3 h",
/// "… in 42 min" (whole units, rounded down; at least 1 min), or closed.
pub fn closes_in(remaining_ms: i64) -> String {
    match remaining_ms {
        ..=0 => "reply window closed: template only".into(),
        1..3_600_000 => format!("reply window closes in {} min", (remaining_ms / 60_000).max(1)),
        _ => format!("reply window closes in {} h", remaining_ms / 3_600_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_in_words() {
        assert_eq!(closes_in(WINDOW_MS), "reply window closes in 24 h");
        assert_eq!(closes_in(3 * 3_600_000 + 59 * 60_000), "reply window closes in 3 h");
        assert_eq!(closes_in(3_600_000), "reply window closes in 1 h");
        assert_eq!(closes_in(3_600_000 - 1), "reply window closes in 59 min");
        assert_eq!(closes_in(30_000), "reply window closes in 1 min");
        assert_eq!(closes_in(0), "reply window closed: template only");
    }

    #[test]
    fn boundaries() {
        let t = 1_000_000_000_000;
        assert!(is_open(Some(t), t));
        assert!(is_open(Some(t), t + WINDOW_MS));
        assert!(!is_open(Some(t), t + WINDOW_MS + 1000));
        assert!(!is_open(None, t));
        assert_eq!(remaining_ms(Some(t), t + 1000), WINDOW_MS - 1000);
        assert_eq!(remaining_ms(Some(t), t + WINDOW_MS + 1), 0);
    }
}
