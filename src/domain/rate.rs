//! Token buckets for sending: a per-business-number cap (messages/s) and a per-recipient
//! pair limit (one message per N seconds with a small burst). Pure: time is passed in.

use std::collections::HashMap;

use super::UnixMillis;

/// A token bucket: `capacity` tokens, one refilled every `interval_ms`.
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    at: UnixMillis,
}

impl Bucket {
    pub fn new(capacity: u32, interval_ms: f64, now: UnixMillis) -> Bucket {
        let capacity = f64::from(capacity.max(1));
        Bucket {
            capacity,
            per_ms: 1.0 / interval_ms.max(0.001),
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: UnixMillis) {
        let dt = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + dt * self.per_ms).min(self.capacity);
        self.at = now.max(self.at);
    }

    /// Milliseconds until a token is available (0 = now).
    pub fn wait_ms(&mut self, now: UnixMillis) -> u64 {
        self.refill(now);
        if self.tokens >= 1.0 - 1e-9 {
            0
        } else {
            ((1.0 - self.tokens) / self.per_ms - 1e-6).ceil() as u64
        }
    }

    /// Takes a token (call after `wait_ms` returned 0).
    pub fn take(&mut self, now: UnixMillis) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

/// Both limits together, keyed by business number and by (number, recipient).
#[derive(Debug)]
pub struct SendLimiter {
    number_rate_per_s: f64,
    number_burst: u32,
    pair_interval_ms: f64,
    pair_burst: u32,
    numbers: HashMap<String, Bucket>,
    pairs: HashMap<(String, String), Bucket>,
}

impl SendLimiter {
    /// `number_rate_per_s` messages/s per number (0 = unlimited), and one message per
    /// `pair_interval_ms` per recipient with `pair_burst` allowed at once (0 ms = unlimited).
    pub fn new(number_rate_per_s: f64, pair_interval_ms: u64, pair_burst: u32) -> SendLimiter {
        SendLimiter {
            number_rate_per_s,
            number_burst: (number_rate_per_s / 10.0).ceil().max(1.0) as u32,
            pair_interval_ms: pair_interval_ms as f64,
            pair_burst: pair_burst.max(1),
            numbers: HashMap::new(),
            pairs: HashMap::new(),
        }
    }

    /// Takes a send slot for (number, recipient) if both limits allow it now; otherwise
    /// returns how long to wait, taking nothing.
    pub fn try_acquire(&mut self, number: &str, recipient: &str, now: UnixMillis) -> Result<(), u64> {
        let mut wait = 0;
        if self.pair_interval_ms > 0.0 {
            let pair = self
                .pairs
                .entry((number.to_string(), recipient.to_string()))
                .or_insert_with(|| Bucket::new(self.pair_burst, self.pair_interval_ms, now));
            wait = wait.max(pair.wait_ms(now));
        }
        if self.number_rate_per_s > 0.0 {
            let interval = 1000.0 / self.number_rate_per_s;
            let burst = self.number_burst;
            let n = self
                .numbers
                .entry(number.to_string())
                .or_insert_with(|| Bucket::new(burst, interval, now));
            wait = wait.max(n.wait_ms(now));
        }
        if wait > 0 {
            return Err(wait);
        }
        if let Some(p) = self.pairs.get_mut(&(number.to_string(), recipient.to_string())) {
            p.take(now);
        }
        if let Some(n) = self.numbers.get_mut(number) {
            n.take(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_limit_allows_a_burst_then_one_per_interval() {
        let mut l = SendLimiter::new(0.0, 6000, 2);
        assert!(l.try_acquire("P", "u", 0).is_ok());
        assert!(l.try_acquire("P", "u", 0).is_ok());
        assert_eq!(l.try_acquire("P", "u", 0), Err(6000));
        assert_eq!(l.try_acquire("P", "u", 5000), Err(1000));
        assert!(l.try_acquire("P", "u", 6000).is_ok());
        assert!(
            l.try_acquire("P", "other", 6000).is_ok(),
            "other recipients are not held back"
        );
    }

    #[test]
    fn number_cap_holds_over_a_second() {
        let mut l = SendLimiter::new(80.0, 0, 1);
        let mut sent = 0;
        let mut now = 0;
        while now <= 1000 {
            if l.try_acquire("P", &format!("u{sent}"), now).is_ok() {
                sent += 1;
            } else {
                now += 1;
            }
        }
        // Burst of 8 plus 80 refills over the second.
        assert!((80..=89).contains(&sent), "{sent}");
    }
}
