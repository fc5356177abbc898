//! Retry timing: exponential backoff with jitter, capped.

/// Delay before retry number `attempt` (1 = first retry): `base * 2^(attempt-1)`,
/// capped at `max`, then jittered into `[d/2, d]` by `jitter` in `[0, 1)`.
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64, jitter: f64) -> u64 {
    let exp = attempt.saturating_sub(1).min(40);
    let full = base_ms.saturating_mul(1u64 << exp).min(max_ms);
    let half = full / 2;
    half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 1.0), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000, 1.0), 2000);
        assert_eq!(backoff_ms(3, 1000, 60_000, 1.0), 4000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 1.0), 60_000);
        assert_eq!(backoff_ms(100, 1000, 60_000, 1.0), 60_000);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        for i in 0..100 {
            let j = i as f64 / 100.0;
            let d = backoff_ms(4, 1000, 60_000, j);
            assert!((4000..=8000).contains(&d), "{d}");
        }
        assert_eq!(backoff_ms(4, 1000, 60_000, 0.0), 4000);
    }
}
