//! Daily spending limits (pure): per contact and for the whole desk, in USD and in model
//! tokens. Past 80% of any limit the reasoning tier gives way to the cheaper commodity
//! tier; at 100% the bot stops calling models for that contact (or everyone): static
//! reply and a handoff.

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

/// What was spent today and the limits (0 = unlimited), for one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Meter {
    pub usd: f64,
    pub tokens: f64,
    pub limit_usd: f64,
    pub limit_tokens: f64,
}

/// The allowance given the desk's and this contact's meters.
pub fn allowance(contact: Meter, global: Meter) -> Allowance {
    let over = |spent: f64, limit: f64, share: f64| limit > 0.0 && spent >= limit * share;
    // (whose, spent, limit, money?) — the desk first: it stops everyone.
    let checks = [
        ("the", global.usd, global.limit_usd, true),
        ("the", global.tokens, global.limit_tokens, false),
        ("this contact's", contact.usd, contact.limit_usd, true),
        ("this contact's", contact.tokens, contact.limit_tokens, false),
    ];
    let show = |v: f64, money: bool| {
        if money {
            format!("${v:.4}")
        } else {
            format!("{v:.0} tokens")
        }
    };
    for &(whose, spent, limit, money) in &checks {
        if over(spent, limit, 1.0) {
            return Allowance::Exhausted(format!(
                "{whose} daily budget of {} is spent ({})",
                show(limit, money),
                show(spent, money)
            ));
        }
    }
    for &(whose, spent, limit, money) in &checks {
        if over(spent, limit, SOFT_SHARE) {
            return Allowance::Cheaper(format!(
                "over 80% of {whose} daily budget ({} of {})",
                show(spent, money),
                show(limit, money)
            ));
        }
    }
    Allowance::Full
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(spent: f64, limit: f64) -> Meter {
        Meter {
            usd: spent,
            limit_usd: limit,
            ..Default::default()
        }
    }

    #[test]
    fn soft_then_hard() {
        assert_eq!(
            allowance(usd(0.5, 0.0), usd(100.0, 0.0)),
            Allowance::Full,
            "0 = unlimited"
        );
        assert_eq!(allowance(usd(0.07, 0.10), usd(0.0, 5.0)), Allowance::Full);
        assert!(
            matches!(allowance(usd(0.081, 0.10), usd(0.0, 5.0)), Allowance::Cheaper(r) if r.contains("this contact"))
        );
        assert!(matches!(
            allowance(usd(0.10, 0.10), usd(0.0, 5.0)),
            Allowance::Exhausted(_)
        ));
        assert!(
            matches!(allowance(usd(0.0, 0.10), usd(4.0, 5.0)), Allowance::Cheaper(r) if r.contains("the daily budget"))
        );
        assert!(matches!(allowance(usd(0.0, 0.10), usd(5.0, 5.0)), Allowance::Exhausted(r) if r.contains("$5.0000")));
    }

    #[test]
    fn token_limits() {
        let tokens = |spent: f64, limit: f64| Meter {
            tokens: spent,
            limit_tokens: limit,
            ..Default::default()
        };
        assert_eq!(allowance(tokens(700.0, 1000.0), Meter::default()), Allowance::Full);
        assert_eq!(
            allowance(tokens(800.0, 1000.0), Meter::default()),
            Allowance::Cheaper("over 80% of this contact's daily budget (800 tokens of 1000 tokens)".into())
        );
        assert_eq!(
            allowance(Meter::default(), tokens(1000.0, 1000.0)),
            Allowance::Exhausted("the daily budget of 1000 tokens is spent (1000 tokens)".into())
        );
        // A hard limit anywhere beats a soft one elsewhere.
        assert!(matches!(
            allowance(tokens(1000.0, 1000.0), usd(4.5, 5.0)),
            Allowance::Exhausted(_)
        ));
    }
}
