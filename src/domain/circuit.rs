//! A circuit breaker per model provider (pure; time passed in). After `threshold`
//! consecutive failures the circuit opens: calls skip the provider (the tier's next model
//! answers) until `cooldown_ms` has passed; then one trial call is let through
//! (half-open) — success closes the circuit, failure opens it for another cooldown.

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open {
        until_ms: i64,
    },
    /// One trial call is in flight.
    HalfOpen,
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown_ms: i64,
    failures: u32,
    state: State,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown_ms: i64) -> CircuitBreaker {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown_ms,
            failures: 0,
            state: State::Closed,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go now; an open circuit past its cooldown lets one trial through.
    pub fn allow(&mut self, now_ms: i64) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until_ms } if now_ms >= until_ms => {
                self.state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.state = State::Closed;
    }

    pub fn failure(&mut self, now_ms: i64) {
        self.failures += 1;
        if self.state == State::HalfOpen || self.failures >= self.threshold {
            self.state = State::Open {
                until_ms: now_ms + self.cooldown_ms,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_through_one_trial() {
        let mut b = CircuitBreaker::new(3, 1_000);
        for _ in 0..2 {
            assert!(b.allow(0));
            b.failure(0);
        }
        assert_eq!(b.state(), State::Closed, "two failures are not enough");
        b.failure(10);
        assert_eq!(b.state(), State::Open { until_ms: 1_010 });
        assert!(!b.allow(500), "open: skipped");
        assert!(b.allow(1_010), "cooldown over: one trial");
        assert!(!b.allow(1_011), "only one trial at a time");
        b.failure(1_020);
        assert_eq!(
            b.state(),
            State::Open { until_ms: 2_020 },
            "a failed trial reopens at once"
        );
        assert!(b.allow(2_020));
        b.success();
        assert_eq!(b.state(), State::Closed);
        b.failure(3_000);
        assert_eq!(b.state(), State::Closed, "the count restarted after the success");
    }
}
