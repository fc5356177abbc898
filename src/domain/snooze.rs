//! Snoozing a conversation until a time: where it stands (`SnoozeState`, derived from what
//! is stored and the clock, so waking by time needs no job and no write) and when a
//! snooze ends (`Preset` → `wake_time`).
//!
//! The rule for the presets: times of day are the agent's own, in the UTC offset the
//! browser reports when the form is sent (`tz`, minutes east of UTC; UTC when the page
//! had no script to report it). "Tomorrow" is 09:00 on the next day; "next week" is 09:00
//! on the coming Monday (a week ahead when today is Monday); a custom time is a
//! `datetime-local` value read in the same offset. Across a daylight-saving change the
//! offset of the moment of snoozing is used, so such a wake can be an hour off.

use super::calendar::{DAY_MS, civil, days_from_civil};

/// Where a conversation's snooze stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnoozeState {
    /// Never snoozed, or the last one was dealt with (a reply, a close, "Wake now").
    Awake,
    /// Out of the working tabs until `until` (Unix ms), unless the customer writes.
    Snoozed { until: i64 },
    /// Back in the working tabs, marked, until an agent deals with it.
    Woke { at: i64, cause: WakeCause },
}

/// What ended a snooze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeCause {
    /// Its time passed.
    Time,
    /// The customer wrote while it slept.
    Customer,
}

impl SnoozeState {
    /// The state from the stored wake time, the time a customer message woke it (if one
    /// did), and the clock. A customer's wake counts only when it came before the time.
    pub fn of(until: Option<i64>, customer_woke_at: Option<i64>, now: i64) -> SnoozeState {
        match (until, customer_woke_at) {
            (None, _) => SnoozeState::Awake,
            (Some(until), Some(at)) if at < until => SnoozeState::Woke {
                at,
                cause: WakeCause::Customer,
            },
            (Some(until), _) if until <= now => SnoozeState::Woke {
                at: until,
                cause: WakeCause::Time,
            },
            (Some(until), _) => SnoozeState::Snoozed { until },
        }
    }

    pub fn is_snoozed(self) -> bool {
        matches!(self, SnoozeState::Snoozed { .. })
    }

    /// What the list and the page say about a woken conversation.
    pub fn woke_words(self) -> Option<&'static str> {
        match self {
            SnoozeState::Woke {
                cause: WakeCause::Customer,
                ..
            } => Some("woke from snooze: the customer wrote"),
            SnoozeState::Woke {
                cause: WakeCause::Time, ..
            } => Some("woke from snooze: its time came"),
            _ => None,
        }
    }
}

/// How long a snooze may last at most.
pub const MAX_SNOOZE_MS: i64 = 366 * DAY_MS;
/// Largest UTC offset a browser can report, in minutes (UTC+14, UTC−12 and a margin).
pub const MAX_OFFSET_MINUTES: i64 = 16 * 60;

/// The wake times an agent picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// One hour from now.
    Hour,
    /// 09:00 tomorrow.
    Tomorrow,
    /// 09:00 on the coming Monday.
    NextWeek,
    /// A local date and time (`datetime-local`): (year, month, day, hour, minute).
    Custom(i64, i64, i64, i64, i64),
}

impl Preset {
    /// The form's `preset` (`hour`, `tomorrow`, `next_week`, `custom`) with, for `custom`,
    /// its `at` value ("2026-12-09T09:00", seconds allowed and ignored).
    pub fn parse(preset: &str, at: &str) -> Option<Preset> {
        match preset {
            "hour" => Some(Preset::Hour),
            "tomorrow" => Some(Preset::Tomorrow),
            "next_week" => Some(Preset::NextWeek),
            "custom" => parse_local(at),
            _ => None,
        }
    }
}

/// "2026-12-09T09:00" (or with ":ss") → a `Custom` preset; `None` when not a real time.
fn parse_local(at: &str) -> Option<Preset> {
    let (date, time) = at.trim().split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<i64>().ok()?,
    );
    let mut t = time.split(':');
    let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    if d.next().is_some() || !(1970..=9999).contains(&y) || !(0..24).contains(&h) || !(0..60).contains(&min) {
        return None;
    }
    // A day that does not exist (30 February) does not round-trip.
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || civil(days_from_civil(y, m, day)) != (y, m, day) {
        return None;
    }
    Some(Preset::Custom(y, m, day, h, min))
}

/// Why a wake time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The time has passed (or is now).
    Past,
    /// Further away than `MAX_SNOOZE_MS`.
    TooFar,
}

impl Refused {
    pub fn words(self) -> &'static str {
        match self {
            Refused::Past => "That time has passed; pick one in the future.",
            Refused::TooFar => "A snooze lasts at most a year; pick an earlier time.",
        }
    }
}

/// When a snooze picked now (`now`, Unix ms) ends, for an agent whose clock is
/// `offset_minutes` east of UTC (clamped to ±`MAX_OFFSET_MINUTES`).
pub fn wake_time(preset: Preset, now: i64, offset_minutes: i64) -> Result<i64, Refused> {
    let offset = offset_minutes.clamp(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES) * 60_000;
    // The agent's local day, as days since the epoch, and its weekday (Monday = 0).
    let local_day = (now + offset).div_euclid(DAY_MS);
    let at_nine = |day: i64| day * DAY_MS + 9 * 3_600_000 - offset;
    let wake = match preset {
        Preset::Hour => now + 3_600_000,
        Preset::Tomorrow => at_nine(local_day + 1),
        Preset::NextWeek => {
            let weekday = (local_day + 3).rem_euclid(7);
            at_nine(local_day + 7 - weekday)
        }
        Preset::Custom(y, m, d, h, min) => days_from_civil(y, m, d) * DAY_MS + (h * 60 + min) * 60_000 - offset,
    };
    if wake <= now {
        Err(Refused::Past)
    } else if wake - now > MAX_SNOOZE_MS {
        Err(Refused::TooFar)
    } else {
        Ok(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-07 14:05:09.500 UTC, a Monday.
    const NOW: i64 = 1_796_652_309_500;

    fn utc(y: i64, m: i64, d: i64, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + (h * 60 + min) * 60_000
    }

    #[test]
    fn the_state_follows_the_clock_and_the_customer() {
        assert_eq!(SnoozeState::of(None, None, NOW), SnoozeState::Awake);
        assert_eq!(SnoozeState::of(None, Some(NOW), NOW), SnoozeState::Awake);
        let until = NOW + 60_000;
        assert_eq!(SnoozeState::of(Some(until), None, NOW), SnoozeState::Snoozed { until });
        assert!(SnoozeState::of(Some(until), None, NOW).is_snoozed());
        // The time comes: awake without anyone writing anything.
        assert_eq!(
            SnoozeState::of(Some(until), None, until),
            SnoozeState::Woke {
                at: until,
                cause: WakeCause::Time
            }
        );
        // The customer writes first: awake at once, and the cause stays theirs.
        let wrote = NOW + 1_000;
        for now in [wrote, until + 5_000] {
            assert_eq!(
                SnoozeState::of(Some(until), Some(wrote), now),
                SnoozeState::Woke {
                    at: wrote,
                    cause: WakeCause::Customer
                }
            );
        }
        assert_eq!(
            SnoozeState::of(Some(until), Some(wrote), NOW).woke_words(),
            Some("woke from snooze: the customer wrote")
        );
        assert_eq!(SnoozeState::of(Some(until), None, NOW).woke_words(), None);
    }

    #[test]
    fn presets_land_on_the_agents_nine_oclock() {
        assert_eq!(wake_time(Preset::Hour, NOW, 0), Ok(NOW + 3_600_000));
        // UTC: tomorrow is Tuesday 8 December; next week is Monday 14 December.
        assert_eq!(wake_time(Preset::Tomorrow, NOW, 0), Ok(utc(2026, 12, 8, 9, 0)));
        assert_eq!(wake_time(Preset::NextWeek, NOW, 0), Ok(utc(2026, 12, 14, 9, 0)));
        // Amsterdam in winter (UTC+1): 09:00 there is 08:00 UTC.
        assert_eq!(wake_time(Preset::Tomorrow, NOW, 60), Ok(utc(2026, 12, 8, 8, 0)));
        // Auckland (UTC+13): it is already Tuesday 03:05 there, so tomorrow is Wednesday
        // and next week still the coming Monday.
        assert_eq!(wake_time(Preset::Tomorrow, NOW, 13 * 60), Ok(utc(2026, 12, 8, 20, 0)));
        assert_eq!(wake_time(Preset::NextWeek, NOW, 13 * 60), Ok(utc(2026, 12, 13, 20, 0)));
        // Los Angeles (UTC−8): still Monday 06:05.
        assert_eq!(wake_time(Preset::Tomorrow, NOW, -8 * 60), Ok(utc(2026, 12, 8, 17, 0)));
        // On a Sunday, next week is the next day.
        let sunday = utc(2026, 12, 13, 10, 0);
        assert_eq!(wake_time(Preset::NextWeek, sunday, 0), Ok(utc(2026, 12, 14, 9, 0)));
        // An absurd offset is clamped, not trusted.
        assert!(wake_time(Preset::Tomorrow, NOW, 100_000).is_ok());
    }

    #[test]
    fn a_custom_time_is_read_in_the_agents_offset() {
        let p = Preset::parse("custom", "2026-12-09T09:30").unwrap();
        assert_eq!(wake_time(p, NOW, 0), Ok(utc(2026, 12, 9, 9, 30)));
        assert_eq!(wake_time(p, NOW, 120), Ok(utc(2026, 12, 9, 7, 30)));
        let with_seconds = Preset::parse("custom", "2026-12-09T09:30:15").unwrap();
        assert_eq!(with_seconds, p);
        assert_eq!(
            wake_time(Preset::parse("custom", "2026-12-07T14:00").unwrap(), NOW, 0),
            Err(Refused::Past)
        );
        assert_eq!(
            wake_time(Preset::parse("custom", "2028-01-01T09:00").unwrap(), NOW, 0),
            Err(Refused::TooFar)
        );
        for bad in [
            "",
            "tomorrow",
            "2026-02-30T09:00",
            "2026-13-01T09:00",
            "2026-12-09T24:00",
            "2026-12-09 09:00",
            "2026-12-09-01T09:00",
        ] {
            assert_eq!(Preset::parse("custom", bad), None, "{bad}");
        }
        assert_eq!(Preset::parse("later", ""), None);
        assert_eq!(Preset::parse("hour", "ignored"), Some(Preset::Hour));
    }
}
