//! Soft launch (pure): which new conversations the bot answers while an owner ramps it
//! up. A conversation is put in a group once, when it starts, and keeps it: the group is
//! a function of the conversation's identity (the business number and the customer), so
//! the same customer on the same number always lands in the same group at a given share,
//! and raising the share only moves conversations from people to the bot.

use sha2::{Digest, Sha256};

/// Who answers a conversation under soft launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchGroup {
    /// The bot answers, as without soft launch.
    Bot,
    /// Straight to people: the conversation starts owned by a person, the bot silent.
    People,
}

impl LaunchGroup {
    /// The stored form: `bot` or `people`.
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchGroup::Bot => "bot",
            LaunchGroup::People => "people",
        }
    }

    /// The stored form back; a conversation from before soft launch (`NULL`) is the bot's.
    pub fn parse(s: Option<&str>) -> LaunchGroup {
        match s {
            Some("people") => LaunchGroup::People,
            _ => LaunchGroup::Bot,
        }
    }
}

/// The live soft-launch settings: a share of new conversations, or a pilot allow-list.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftLaunch {
    /// Percent (0-100) of new conversations the bot answers.
    pub percent: f64,
    /// When not empty, only these customers go to the bot, whatever the percentage: a
    /// staff-only pilot. Each entry is a number (digits) or a BSUID (kept as written).
    pub allow: Vec<String>,
}

impl Default for SoftLaunch {
    /// No soft launch: the bot answers every conversation.
    fn default() -> SoftLaunch {
        SoftLaunch {
            percent: 100.0,
            allow: Vec::new(),
        }
    }
}

/// Buckets a share is counted in: 10,000, so a share is exact to 0.01%.
const BUCKETS: u64 = 10_000;

impl SoftLaunch {
    /// From the live settings `soft_launch.percent` and `soft_launch.allow`.
    pub fn from_settings(e: &super::settings::Effective) -> SoftLaunch {
        SoftLaunch {
            percent: e.number("soft_launch.percent").clamp(0.0, 100.0),
            allow: allow_list(e.get("soft_launch.allow")),
        }
    }

    /// The group of a new conversation on business number `phone_number_id` with the
    /// customer `customer` (their number, or their BSUID when that is all we know);
    /// `number` and `bsuid` are what we know of the customer, for the allow-list (a
    /// customer who writes from a username has only a BSUID).
    pub fn assign(
        &self,
        phone_number_id: &str,
        customer: &str,
        number: Option<&str>,
        bsuid: Option<&str>,
    ) -> LaunchGroup {
        if !self.allow.is_empty() {
            let by_number = number.is_some_and(|n| self.allow.iter().any(|a| a == digits(n).as_str()));
            let by_bsuid = bsuid.is_some_and(|b| !b.is_empty() && self.allow.iter().any(|a| a == b));
            return if by_number || by_bsuid {
                LaunchGroup::Bot
            } else {
                LaunchGroup::People
            };
        }
        let threshold = (self.percent.clamp(0.0, 100.0) * (BUCKETS as f64) / 100.0).round() as u64;
        if bucket(phone_number_id, customer) < threshold {
            LaunchGroup::Bot
        } else {
            LaunchGroup::People
        }
    }
}

/// The conversation's bucket, 0..10,000: its identity hashed, so uniform and stable.
fn bucket(phone_number_id: &str, customer: &str) -> u64 {
    let h = Sha256::digest(format!("frontdesk-soft-launch:{phone_number_id}:{customer}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

/// The entries of an allow-list value (`-` or empty for none): separated by commas,
/// semicolons or lines; a number loses its `+` and spaces, a BSUID is kept as written.
pub fn allow_list(value: &str) -> Vec<String> {
    value
        .split([',', '\n', ';'])
        .map(str::trim)
        .map(|part| if is_bsuid(part) { part.to_string() } else { digits(part) })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Whether an allow-list entry is a business-scoped user id rather than a number: it has
/// a letter (Meta's BSUIDs start with the country, like `US.13491208655302741918`).
fn is_bsuid(part: &str) -> bool {
    part.chars().any(|c| c.is_ascii_alphabetic())
}

/// The longest BSUID Meta documents.
const BSUID_MAX: usize = 256;

/// Checks an allow-list value; returns it normalised (numbers joined by commas, or `-`).
pub fn normalize_allow(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v == "-" {
        return Ok("-".into());
    }
    if v.len() > 65_536 {
        return Err("soft_launch.allow must be at most 65536 bytes".into());
    }
    let mut out = Vec::new();
    for part in v.split([',', '\n', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        if is_bsuid(part) {
            let ok = part.len() <= BSUID_MAX
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
            if !ok {
                return Err(format!(
                    "soft_launch.allow: {part:?} is neither a phone number (digits with the country code) nor a BSUID (up to 256 letters, digits and . _ - :)"
                ));
            }
            if !out.iter().any(|o| o == part) {
                out.push(part.to_string());
            }
            continue;
        }
        let n: String = part
            .strip_prefix('+')
            .unwrap_or(part)
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        if n.len() < 5 || n.len() > 20 || !n.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "soft_launch.allow: {part:?} is not a phone number (digits with the country code) nor a BSUID (like US.13491208655302741918)"
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(percent: f64) -> SoftLaunch {
        SoftLaunch {
            percent,
            allow: Vec::new(),
        }
    }

    /// 1,000 simulated new conversations (distinct customers on one number).
    fn on_bot(launch: &SoftLaunch) -> usize {
        (0..1000)
            .map(|i| format!("3161{i:07}"))
            .filter(|n| launch.assign("P1", n, Some(n), None) == LaunchGroup::Bot)
            .count()
    }

    #[test]
    fn ten_percent_of_a_thousand_new_conversations_go_to_the_bot() {
        let n = on_bot(&share(10.0));
        assert!((75..=125).contains(&n), "{n} of 1000 on the bot at 10%");
        assert_eq!(on_bot(&share(0.0)), 0, "0% sends everyone to people");
        assert_eq!(on_bot(&share(100.0)), 1000);
        assert_eq!(on_bot(&SoftLaunch::default()), 1000, "no soft launch: all the bot's");
    }

    #[test]
    fn the_group_is_deterministic_and_a_ramp_only_adds_to_the_bot() {
        let ten = share(10.0);
        let fifty = share(50.0);
        for i in 0..1000 {
            let n = format!("3162{i:07}");
            assert_eq!(
                ten.assign("P1", &n, Some(&n), None),
                ten.assign("P1", &n, Some(&n), None)
            );
            if ten.assign("P1", &n, Some(&n), None) == LaunchGroup::Bot {
                assert_eq!(fifty.assign("P1", &n, Some(&n), None), LaunchGroup::Bot, "{n}");
            }
        }
    }

    #[test]
    fn an_allow_list_puts_exactly_those_numbers_on_the_bot() {
        let pilot = SoftLaunch {
            percent: 100.0,
            allow: allow_list(&normalize_allow("+31 600000001, 31600000002\n31600000002").unwrap()),
        };
        assert_eq!(pilot.allow, vec!["31600000001", "31600000002"]);
        let bot: Vec<String> = (0..1000)
            .map(|i| format!("31600{i:06}"))
            .filter(|n| pilot.assign("P1", n, Some(n), None) == LaunchGroup::Bot)
            .collect();
        assert_eq!(bot, vec!["31600000001", "31600000002"]);
        assert_eq!(
            pilot.assign("P1", "US.1", None, Some("US.1")),
            LaunchGroup::People,
            "a customer without a number is not on the list"
        );
    }

    #[test]
    fn an_allow_list_can_name_a_customer_known_only_by_bsuid() {
        let value = normalize_allow("+31 600000001\nUS.13491208655302741918, US.13491208655302741918").unwrap();
        assert_eq!(value, "31600000001,US.13491208655302741918");
        let pilot = SoftLaunch {
            percent: 0.0,
            allow: allow_list(&value),
        };
        let bsuid = "US.13491208655302741918";
        assert_eq!(pilot.assign("P1", bsuid, None, Some(bsuid)), LaunchGroup::Bot);
        assert_eq!(
            pilot.assign("P1", "31600000009", Some("31600000009"), Some(bsuid)),
            LaunchGroup::Bot,
            "a number we have not listed, with a listed BSUID"
        );
        assert_eq!(pilot.assign("P1", "US.2", None, Some("US.2")), LaunchGroup::People);
        assert_eq!(
            pilot.assign("P1", "", None, Some("")),
            LaunchGroup::People,
            "an empty BSUID matches nothing"
        );
        assert!(normalize_allow("US.1<script>").is_err(), "a BSUID has no markup");
        assert!(
            normalize_allow(&format!("US.{}", "1".repeat(300))).is_err(),
            "at most 256 characters"
        );
    }

    #[test]
    fn allow_lists_are_checked() {
        assert_eq!(normalize_allow(" ").unwrap(), "-");
        assert_eq!(normalize_allow("-").unwrap(), "-");
        assert!(allow_list("-").is_empty());
        assert!(
            normalize_allow("31600000001, call me")
                .unwrap_err()
                .contains("\"call me\"")
        );
        assert_eq!(LaunchGroup::parse(None), LaunchGroup::Bot);
        assert_eq!(LaunchGroup::parse(Some("people")), LaunchGroup::People);
    }
}
