//! The grounding guard (pure): every number, price, date, time and order/shipment id in
//! a reply must appear in what the bot was given — retrieved passages, the conversation,
//! tool results. Otherwise the reply is not sent ("never invent IDs, dates or prices").
//!
//! Facts are compared in a normal form: digits with any currency sign, thousands
//! separator or trailing ".00" removed (`€1,250.00` ≡ `1250`), times as `H:MM` (a reply's
//! "9am" or "5.30 pm" as `9:00`, `17:30`), ids
//! (tokens mixing letters and digits, like `SS-1042` or `#A17`) upper-cased without `#`.
//! Small counting words are fine; only digits are checked. A day with a month name
//! ("14 December", "Dec 14th", "14 december", ISO `2026-12-14`) is also a fact of its own,
//! `date:14-12`: a "14" elsewhere and a "December" elsewhere do not ground it.
//!
//! Support, not presence: what is checked against is only what this turn's reply was
//! made from, and a fact must also fit its context there (`guard_context`): a time with
//! its weekday and whether it opens or closes, a number with its unit.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::guard_context::{Mention, mentions};

/// Month names (English, Dutch, German, French, Spanish; common abbreviations) → number.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januari", 1),
    ("januar", 1),
    ("janvier", 1),
    ("enero", 1),
    ("february", 2),
    ("feb", 2),
    ("februari", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("febrero", 2),
    ("march", 3),
    ("mar", 3),
    ("maart", 3),
    ("märz", 3),
    ("marz", 3),
    ("mars", 3),
    ("marzo", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("abril", 4),
    ("may", 5),
    ("mei", 5),
    ("mai", 5),
    ("mayo", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("julio", 7),
    ("august", 8),
    ("aug", 8),
    ("augustus", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("diciembre", 12),
];

static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    let names = MONTHS.iter().map(|m| m.0).collect::<Vec<_>>().join("|");
    Regex::new(&format!(
        r"(?i)\b(?:(\d{{1,2}})(?:st|nd|rd|th|e|er)?\.?\s+(?:of\s+|de\s+)?({names})\b|({names})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b|(\d{{4}})-(\d{{2}})-(\d{{2}})\b)"
    ))
    .expect("date pattern compiles")
});

/// The day-and-month dates of `text`, as `date:D-M`.
fn dates(text: &str) -> impl Iterator<Item = String> + '_ {
    DAY_MONTH.captures_iter(text).filter_map(|c| {
        let month_of = |name: &str| MONTHS.iter().find(|m| m.0.eq_ignore_ascii_case(name)).map(|m| m.1);
        let (day, month) = if let (Some(d), Some(m)) = (c.get(1), c.get(2)) {
            (d.as_str().parse::<u32>().ok()?, month_of(m.as_str())?)
        } else if let (Some(m), Some(d)) = (c.get(3), c.get(4)) {
            (d.as_str().parse::<u32>().ok()?, month_of(m.as_str())?)
        } else {
            (
                c.get(7)?.as_str().parse::<u32>().ok()?,
                c.get(6)?.as_str().parse::<u32>().ok()?,
            )
        };
        ((1..=31).contains(&day) && (1..=12).contains(&month)).then(|| format!("date:{day}-{month}"))
    })
}

/// A fact in a reply that nothing grounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ungrounded(pub Vec<String>);

/// The facts of `text`, normalised, as what a reply may be grounded by: a clock time
/// written with am/pm ("9am", "5.30 pm") counts both as its number and as the time
/// (`9:00`, `17:30`).
pub fn facts(text: &str) -> HashSet<String> {
    facts_as(text, true)
}

/// The facts of `text`; `given`: as grounding (a clock time also as its bare number)
/// rather than as a reply (a clock time only as the time it is).
fn facts_as(text: &str, given: bool) -> HashSet<String> {
    let mut out = HashSet::new();
    let tokens: Vec<&str> = text
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '(' | ')' | '[' | ']' | '"' | '\'' | '*' | '_' | '<' | '>' | ';' | '!' | '?'
                )
        })
        .map(|raw| raw.trim_matches(|c: char| matches!(c, '.' | ',' | ':' | '-' | '/')))
        .filter(|t| !t.is_empty())
        .collect();
    for (i, &token) in tokens.iter().enumerate() {
        if !token.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let times = clock_times(token, tokens.get(i + 1).copied());
        if !times.is_empty() {
            out.extend(times);
            if !given {
                continue;
            }
        }
        if let Some((n, _)) = super::guard_context::number_with_unit_word(token) {
            out.insert(n);
        }
        if let Some(f) = normalize(token) {
            out.insert(f);
        }
    }
    out.extend(dates(text));
    out
}

/// A clock time written with am/pm — glued ("9am", "5.30pm"), before the next word
/// ("9 am", "5:30 p.m."), or a range of them ("9am-6pm") — as `H:MM` on the 24-hour
/// clock; empty when `token` is not one.
pub(super) fn clock_times(token: &str, next: Option<&str>) -> Vec<String> {
    let half = |w: &str| match w.to_lowercase().trim_end_matches('.') {
        "am" | "a.m" => Some(false),
        "pm" | "p.m" => Some(true),
        _ => None,
    };
    let one = |t: &str, after: Option<bool>| -> Option<String> {
        let lower = t.to_lowercase();
        let digits_end = lower
            .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
            .unwrap_or(lower.len());
        let (time, suffix) = lower.split_at(digits_end);
        let pm = if suffix.is_empty() { after? } else { half(suffix)? };
        let (h, m) = match time.split_once([':', '.']) {
            Some((h, m)) if m.len() == 2 => (h, m),
            Some(_) => return None,
            None => (time, "00"),
        };
        let h: u32 = h.parse().ok()?;
        let m_ok = m.chars().all(|c| c.is_ascii_digit()) && m < "60";
        if !(1..=12).contains(&h) || !m_ok {
            return None;
        }
        let h = match (pm, h) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
        Some(format!("{h}:{m}"))
    };
    let after = next.and_then(half);
    if let Some((a, b)) = token.split_once(['-', '–'])
        && let Some(close) = one(b, after)
    {
        // "9-6pm": which half of the day the 9 is in is not said; it stays a number.
        let open = one(a, None).or_else(|| normalize(a));
        return open.into_iter().chain([close]).collect();
    }
    one(token, after).into_iter().collect()
}

pub(super) fn normalize(token: &str) -> Option<String> {
    let t = token.trim_start_matches('#');
    let has_alpha = t.chars().any(|c| c.is_alphabetic());
    let stripped: String = t
        .chars()
        .filter(|c| !matches!(c, '€' | '$' | '£' | '¥' | '₹'))
        .collect();
    // Money/number with a unit glued on ("15eur", "3.5bar", "20km"): keep the number.
    let lower = stripped.to_lowercase();
    for unit in [
        "eur", "euro", "euros", "usd", "gbp", "km", "kg", "bar", "h", "min", "pm", "am", "st", "nd", "rd", "th", "x",
        "%",
    ] {
        if let Some(n) = lower.strip_suffix(unit)
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ','))
        {
            return Some(number(n));
        }
    }
    if has_alpha {
        // An id: letters and digits together.
        return Some(t.to_uppercase());
    }
    if stripped.contains(':') {
        // A time: drop a leading zero on the hour.
        let (h, m) = stripped.split_once(':')?;
        let h = h.trim_start_matches('0');
        return Some(format!("{}:{m}", if h.is_empty() { "0" } else { h }));
    }
    if stripped.contains('-') || stripped.contains('/') {
        // A date or a range: each part must be grounded; keep the whole as written.
        return Some(stripped);
    }
    Some(number(&stripped))
}

/// `1,250.00` → `1250`; `3,5` (decimal comma) → `3.5`; `08` → `8`.
pub(super) fn number(n: &str) -> String {
    let n = if n.matches(',').count() == 1 && !n.contains('.') && n.split(',').nth(1).is_some_and(|d| d.len() != 3) {
        n.replace(',', ".")
    } else {
        n.replace(',', "")
    };
    let n = match n.split_once('.') {
        Some((a, b)) if b.chars().all(|c| c == '0') => a.to_string(),
        _ => n,
    };
    let trimmed = n.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// Checks `reply` against everything the bot was given for this turn (`grounding`: the
/// passages offered, the conversation shown, tool results — never the whole knowledge
/// base). A fact must appear there, and where the reply gives it a context (a time's
/// weekday or whether it opens or closes, a number's unit) some mention of it there must
/// fit that context (`guard_context`): "we open at 9:00 on Sunday" is not supported by
/// "Tuesday: 09:00 - 18:00".
pub fn check(reply: &str, grounding: &[&str]) -> Result<(), Ungrounded> {
    let known: HashSet<String> = grounding.iter().flat_map(|g| facts(g)).collect();
    // A written-out date stands for its day number: "4 January" needs `date:4-1` only.
    let blanked = DAY_MONTH.replace_all(reply, |c: &regex::Captures<'_>| {
        if c.get(5).is_some() {
            c[0].to_string()
        } else {
            " ".repeat(c[0].len())
        }
    });
    let mut said = facts_as(&blanked, false);
    said.extend(dates(reply));
    let mut missing: Vec<String> = said.into_iter().filter(|f| !grounded(f, &known)).collect();
    if missing.is_empty() {
        missing = out_of_context(&blanked, grounding);
    }
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Ungrounded(missing))
    }
}

/// The reply's facts that appear in `grounding` but only in another context: each is
/// given with the context the reply gave it. A fact whose every mention in `grounding`
/// was not read as one (inside a range token like "9-18") is not judged here.
fn out_of_context(reply: &str, grounding: &[&str]) -> Vec<String> {
    let said: Vec<Mention> = mentions(reply).into_iter().filter(Mention::has_context).collect();
    if said.is_empty() {
        return Vec::new();
    }
    let given: Vec<Mention> = grounding.iter().flat_map(|g| mentions(g)).collect();
    said.iter()
        .filter(|m| {
            let same: Vec<&Mention> = given.iter().filter(|g| g.fact == m.fact).collect();
            !same.is_empty() && !same.iter().any(|g| m.supported_by(g))
        })
        .map(Mention::describe)
        .collect()
}

fn grounded(fact: &str, known: &HashSet<String>) -> bool {
    // "30-day" when the 30 is known (the unit is the context check's).
    if let Some((n, _)) = super::guard_context::number_with_unit_word(fact) {
        return known.contains(fact) || known.contains(&n);
    }
    if known.contains(fact) || fact.starts_with("date:") {
        return known.contains(fact);
    }
    // A range or date written differently ("9-18" vs "9:00 - 18:00") counts when every
    // number in it is known.
    if fact.contains('-') || fact.contains('/') {
        return fact
            .split(['-', '/'])
            .filter(|p| !p.is_empty())
            .all(|p| known.contains(&number(p)) || known.contains(p));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grounded_replies_pass() {
        let ctx =
            "A puncture repair costs €15 for a front wheel. Open 09:00 - 18:00. Order SS-1042 shipped on 2026-11-20.";
        assert!(
            check(
                "The front wheel is 15 euro; your order ss-1042 shipped 2026-11-20. We open at 9:00.",
                &[ctx]
            )
            .is_ok()
        );
        assert!(check("That costs €15.00.", &[ctx]).is_ok());
        assert!(check("No numbers here, just two words of thanks.", &[]).is_ok());
        assert!(check("Open 9-18.", &["We are open 9:00 - 18:00, that is 9 to 18."]).is_ok());
    }

    #[test]
    fn invented_facts_are_caught() {
        let ctx = "A puncture repair costs €15 for a front wheel.";
        assert_eq!(check("It costs €12.", &[ctx]), Err(Ungrounded(vec!["12".into()])));
        assert_eq!(
            check("Your order #SS-2000 ships on 2026-12-01.", &[ctx]).unwrap_err().0,
            vec!["2026-12-01".to_string(), "SS-2000".to_string(), "date:1-12".to_string()]
        );
        assert_eq!(check("Come at 10:30", &[ctx]).unwrap_err().0, vec!["10:30".to_string()]);
    }

    #[test]
    fn a_date_is_grounded_as_a_whole() {
        let ctx = "Closed on 24 December; we reopen on 2027-01-04. Repairs take 14 days.";
        assert!(check("We're closed on December 24th and open again on 4 January.", &[ctx]).is_ok());
        assert!(check("Shut on 24 december.", &[ctx]).is_ok());
        // "14" and "December" are both known, "14 December" is not.
        assert_eq!(
            check("The sale starts on 14 December.", &[ctx]).unwrap_err().0,
            vec!["date:14-12".to_string()]
        );
        assert_eq!(
            check("Le 3 mars.", &["3 days"]).unwrap_err().0,
            vec!["date:3-3".to_string()]
        );
        assert_eq!(facts("Mar 5"), HashSet::from(["5".to_string(), "date:5-3".to_string()]));
    }

    /// The demo's opening hours, as retrieval hands them over.
    const HOURS: &str = "## Shop hours\n\n- Monday: closed\n- Tuesday: 09:00 - 18:00\n- Wednesday: 09:00 - 18:00\n\
        - Thursday: 09:00 - 20:00 (late evening)\n- Friday: 09:00 - 18:00\n- Saturday: 09:00 - 17:00\n- Sunday: 12:00 - 16:00\n\n\
        ## Workshop hours\n\n- Monday: closed\n- Tuesday to Friday: 08:30 - 17:30\n- Saturday: 09:00 - 13:00\n- Sunday: closed\n\n\
        Bikes dropped off before 10:00 on a weekday are usually ready the same day. On Thursdays you can collect a finished repair until 20:00.";

    #[test]
    fn a_wrong_opening_time_that_appears_elsewhere_is_caught() {
        // The issue's case: 9:00 is an opening time, but not Sunday's.
        assert_eq!(
            check("On Sunday we open at 9:00.", &[HOURS]).unwrap_err().0,
            vec!["9:00 (sun, opens)".to_string()]
        );
        assert!(check("Sunday: 9:00 - 16:00", &[HOURS]).is_err());
        // A closing time given as an opening time.
        assert_eq!(
            check("The shop opens at 18:00 on Friday.", &[HOURS]).unwrap_err().0,
            vec!["18:00 (fri, opens)".to_string()]
        );
        // Saturday's workshop closing time is not Sunday's.
        assert!(check("On Sunday the workshop closes at 13:00.", &[HOURS]).is_err());
        // A price grounded only by a number of days.
        assert_eq!(
            check("The service costs €14.", &["Repairs take 14 days."])
                .unwrap_err()
                .0,
            vec!["14 (money)".to_string()]
        );
    }

    #[test]
    fn correct_answers_about_hours_and_prices_still_pass() {
        for reply in [
            "On Sunday we're open from 12:00 to 16:00.",
            "Sundays: 12:00 - 16:00. The workshop is closed on Sundays.",
            "We open at 9:00 on Saturday and close at 17:00; the workshop is open 09:00 - 13:00.",
            "On Wednesday the workshop opens at 8:30 and closes at 17:30.",
            "On Thursday the shop is open until 20:00.",
            "We're open Tuesday to Friday from 9:00, and on Sunday from 12:00 until 16:00.",
            "Drop your bike off before 10:00 on Tuesday and it's usually ready the same day.",
            "The shop opens at 9:00.",
            "Our hours: Tuesday–Saturday 9:00, Sunday 12:00.",
            "Tuesday — 09:00 - 18:00\nSunday — 12:00 - 16:00",
        ] {
            assert_eq!(check(reply, &[HOURS]), Ok(()), "{reply}");
        }
        let prices = "| Wheel | Labour |\n|---|---|\n| Front wheel | €15 |\n| Rear wheel | 20 |\nReturns within 30 days; a 2-year warranty.";
        for reply in [
            "A front wheel puncture is €15.",
            "The rear wheel costs 20 euros.",
            "You can return it within 30 days.",
            "That comes with a 2-year warranty, so 2 years.",
            "It's a 30-day return window.",
        ] {
            assert_eq!(check(reply, &[prices]), Ok(()), "{reply}");
        }
    }

    #[test]
    fn clock_times_with_am_and_pm_are_times() {
        assert_eq!(clock_times("9am", None), vec!["9:00".to_string()]);
        assert_eq!(clock_times("5.30", Some("p.m")), vec!["17:30".to_string()]);
        assert_eq!(clock_times("12pm", None), vec!["12:00".to_string()]);
        assert_eq!(
            clock_times("9am-6pm", None),
            vec!["9:00".to_string(), "18:00".to_string()]
        );
        assert!(clock_times("9", None).is_empty() && clock_times("13pm", None).is_empty());
        // Written with am/pm in a reply, checked as the time it is, in its context.
        assert_eq!(check("On Sundays we open at 12pm and close at 4pm.", &[HOURS]), Ok(()));
        assert_eq!(check("We open at 9am on Saturdays.", &[HOURS]), Ok(()));
        assert_eq!(
            check("We open at 9am on Sundays.", &[HOURS]).unwrap_err().0,
            vec!["9:00 (sun, opens)".to_string()]
        );
        assert!(check("Open 9 to 6pm.", &["We are open from 9:00 to 18:00, that is 9 to 6."]).is_ok());
        // A 9 somewhere does not ground "9am" any more.
        assert!(check("Come at 9am.", &["Repairs take 9 days."]).is_err());
    }

    #[test]
    fn normal_forms() {
        assert_eq!(facts("€1,250.00"), HashSet::from(["1250".to_string()]));
        assert_eq!(facts("3,5 bar"), HashSet::from(["3.5".to_string()]));
        assert_eq!(facts("15eur"), HashSet::from(["15".to_string()]));
        assert_eq!(facts("(08:30)"), HashSet::from(["8:30".to_string()]));
        assert_eq!(facts("#a17b"), HashSet::from(["A17B".to_string()]));
    }
}
