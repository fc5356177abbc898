//! Calendar arithmetic on UTC milliseconds: the day a moment falls on, its clock time and
//! readable labels, for the inbox's timestamps and day separators as the server renders
//! them (in UTC, labelled so; the browser relabels them in the viewer's time zone).

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) (Howard Hinnant's civil_from_days).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month 1–12, day 1–31) → days since 1970-01-01, the inverse of `civil` (Howard
/// Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day (days since the epoch) moment `ms` falls on.
pub fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// "14:05": the UTC clock time of `ms`.
pub fn hh_mm(ms: i64) -> String {
    let in_day = ms.rem_euclid(DAY_MS) / 60_000;
    format!("{:02}:{:02}", in_day / 60, in_day % 60)
}

/// "2026-12-07T14:05:09Z": `ms` for a `<time datetime>`.
pub fn iso(ms: i64) -> String {
    let (y, m, d) = civil(utc_day(ms));
    let s = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// "Monday 7 December 2026": UTC day `day` (days since the epoch) in words.
pub fn day_words(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!(
        "{} {d} {} {y}",
        WEEKDAYS[day.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize]
    )
}

/// A day separator's label: "Today", "Yesterday", else the day in words (UTC days).
pub fn day_label(day: i64, today: i64) -> String {
    match today - day {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ => day_words(day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_times_and_labels() {
        // 2026-12-07 14:05:09.500 UTC, a Monday.
        let ms = 1_796_652_309_500;
        assert_eq!(iso(ms), "2026-12-07T14:05:09Z");
        assert_eq!(hh_mm(ms), "14:05");
        assert_eq!(day_words(utc_day(ms)), "Monday 7 December 2026");
        assert_eq!(day_words(0), "Thursday 1 January 1970");
        assert_eq!(day_words(utc_day(951_782_400_000)), "Tuesday 29 February 2000");
        let today = utc_day(ms);
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(today - 1, today), "Yesterday");
        assert_eq!(day_label(today - 2, today), "Saturday 5 December 2026");
        // The last millisecond of a day is still that day; midnight starts the next.
        assert_eq!(utc_day(DAY_MS - 1), 0);
        assert_eq!(hh_mm(DAY_MS - 1), "23:59");
        assert_eq!(utc_day(DAY_MS), 1);
        assert_eq!(utc_day(-1), -1);
        for day in [-800_000, -1, 0, 1, 11_016, 20_429, 2_932_896] {
            let (y, m, d) = civil(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
