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

#[cfg(test)]
mod tests {
    use super::*;

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
