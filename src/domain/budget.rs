//! Daily spending limits (pure): per contact and for the whole desk, in USD. Past 80% of
//! a limit the reasoning tier gives way to the cheaper commodity tier; at 100% the bot
//! stops calling models for that contact (or everyone): static reply and a handoff.

/// What the budget allows for the next reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Allowance {
    Full,
    /// Use the cheaper tier; why.
    Cheaper(String),
    /// No more model calls today; why.
    Exhausted(String),
}

/// Share of a limit after which only the cheaper tier is used.
pub const SOFT_SHARE: f64 = 0.8;

/// `limit = 0` means unlimited.
pub fn allowance(spent_contact: f64, limit_contact: f64, spent_global: f64, limit_global: f64) -> Allowance {
    let over = |spent: f64, limit: f64, share: f64| limit > 0.0 && spent >= limit * share;
    if over(spent_global, limit_global, 1.0) {
        return Allowance::Exhausted(format!("the daily budget of ${limit_global:.2} is spent (${spent_global:.4})"));
    }
    if over(spent_contact, limit_contact, 1.0) {
        return Allowance::Exhausted(format!("this contact's daily budget of ${limit_contact:.2} is spent (${spent_contact:.4})"));
    }
    if over(spent_global, limit_global, SOFT_SHARE) {
        return Allowance::Cheaper(format!("over 80% of the daily budget (${spent_global:.4} of ${limit_global:.2})"));
    }
    if over(spent_contact, limit_contact, SOFT_SHARE) {
        return Allowance::Cheaper(format!("over 80% of this contact's daily budget (${spent_contact:.4} of ${limit_contact:.2})"));
    }
    Allowance::Full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_then_hard() {
        assert_eq!(allowance(0.5, 0.0, 100.0, 0.0), Allowance::Full, "0 = unlimited");
        assert_eq!(allowance(0.07, 0.10, 0.0, 5.0), Allowance::Full);
        assert!(matches!(allowance(0.081, 0.10, 0.0, 5.0), Allowance::Cheaper(r) if r.contains("this contact")));
        assert!(matches!(allowance(0.10, 0.10, 0.0, 5.0), Allowance::Exhausted(_)));
        assert!(matches!(allowance(0.0, 0.10, 4.0, 5.0), Allowance::Cheaper(r) if r.contains("daily budget")));
        assert!(matches!(allowance(0.0, 0.10, 5.0, 5.0), Allowance::Exhausted(r) if r.contains("$5.00")));
    }
}
