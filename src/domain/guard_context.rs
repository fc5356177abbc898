//! The grounding guard's context check (pure): where a fact stands, not only that it
//! appears. A time is read with the weekdays its sentence names (a range such as
//! "Tuesday to Friday" counts each day) and whether it opens or closes a span ("09:00 -
//! 18:00", "open at", "until"); a number with its unit ("€15", "15 days", "30-day",
//! "10 %"). A fact of a reply is supported by a mention in what the bot was given only
//! when the two are compatible: days that overlap, the same role, the same unit. What
//! either side leaves unsaid is compatible (no day, no role, no unit), so an unrecognised
//! word never blocks an answer; only a clear contradiction does.

use super::guard::{clock_times, normalize};

/// Whether a time opens or closes a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Opens,
    Closes,
}

/// What a number counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Money,
    Days,
    Weeks,
    Months,
    Years,
    Hours,
    Minutes,
    Km,
    Kg,
    Percent,
}

/// One fact where it stands: its normal form (`guard::facts`), the weekdays of its
/// sentence (bit 0 = Monday), and for a time its role, for a number its unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub fact: String,
    pub days: u8,
    pub role: Option<Role>,
    pub unit: Option<Unit>,
}

impl Mention {
    /// Whether `given` (a mention in what the bot was given) may support `self`.
    pub fn supported_by(&self, given: &Mention) -> bool {
        self.fact == given.fact
            && (self.days == 0 || given.days == 0 || self.days & given.days != 0)
            && (self.role.is_none() || given.role.is_none() || self.role == given.role)
            && (self.unit.is_none() || given.unit.is_none() || self.unit == given.unit)
    }

    /// Whether there is anything to check beyond presence.
    pub fn has_context(&self) -> bool {
        (is_time(&self.fact) && (self.days != 0 || self.role.is_some())) || self.unit.is_some()
    }

    /// The fact with its context, for a blocked reply's trace ("9:00 (sun, opens)").
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.days & (1 << i) != 0)
            .map(|(_, d)| d.to_string())
            .collect();
        parts.extend(self.role.map(|r| format!("{r:?}").to_lowercase()));
        parts.extend(self.unit.map(|u| format!("{u:?}").to_lowercase()));
        format!("{} ({})", self.fact, parts.join(", "))
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Weekday names (English, Dutch, German, French, Spanish) by the start of the word, so
/// plurals ("Sundays", "zondags") count; Monday = 0.
const DAYS: &[(&str, u8)] = &[
    ("monday", 0),
    ("maandag", 0),
    ("montag", 0),
    ("lundi", 0),
    ("lunes", 0),
    ("tuesday", 1),
    ("dinsdag", 1),
    ("dienstag", 1),
    ("mardi", 1),
    ("martes", 1),
    ("wednesday", 2),
    ("woensdag", 2),
    ("mittwoch", 2),
    ("mercredi", 2),
    ("miércoles", 2),
    ("miercoles", 2),
    ("thursday", 3),
    ("donderdag", 3),
    ("donnerstag", 3),
    ("jeudi", 3),
    ("jueves", 3),
    ("friday", 4),
    ("vrijdag", 4),
    ("freitag", 4),
    ("vendredi", 4),
    ("viernes", 4),
    ("saturday", 5),
    ("zaterdag", 5),
    ("samstag", 5),
    ("samedi", 5),
    ("sábado", 5),
    ("sabado", 5),
    ("sunday", 6),
    ("zondag", 6),
    ("sonntag", 6),
    ("dimanche", 6),
    ("domingo", 6),
];

/// Unambiguous short forms, matched whole ("sun", "sat", "wed", "mon" are words too).
const DAY_ABBREVIATIONS: &[(&str, u8)] = &[
    ("tue", 1),
    ("tues", 1),
    ("thu", 3),
    ("thur", 3),
    ("thurs", 3),
    ("fri", 4),
];

/// Words between two days that make a span of them ("Tuesday to Friday").
const DAY_SPAN: &[&str] = &[
    "to", "through", "thru", "until", "till", "-", "–", "—", "t/m", "tot", "en", "met", "bis", "au", "a", "al", "hasta",
];

/// Words between two times that make a span of them ("09:00 to 18:00").
const TIME_SPAN: &[&str] = &[
    "to", "until", "till", "-", "–", "—", "tot", "t/m", "bis", "à", "a", "hasta", "am", "pm", "a.m", "p.m",
];

/// Words just before a time that say it opens something.
const OPENS: &[&str] = &[
    "open", "opens", "opening", "from", "starts", "start", "starting", "vanaf", "ab", "dès", "desde", "geopend",
    "öffnet", "ouvre", "abre", "abrimos",
];

/// Words just before a time that say it closes something.
const CLOSES: &[&str] = &[
    "close",
    "closes",
    "closing",
    "until",
    "till",
    "tot",
    "bis",
    "jusqu'à",
    "hasta",
    "sluit",
    "sluiten",
    "schließt",
    "ferme",
    "cierra",
    "cerramos",
];

/// A unit written as its own word after the number.
fn unit_word(word: &str) -> Option<Unit> {
    let w = word.trim_end_matches('.');
    Some(match w {
        "€" | "$" | "£" | "eur" | "euro" | "euros" | "usd" | "dollar" | "dollars" | "gbp" | "pounds" => Unit::Money,
        "day" | "days" | "dag" | "dagen" | "tag" | "tage" | "tagen" | "jour" | "jours" | "día" | "días" | "dia"
        | "dias" => Unit::Days,
        "week" | "weeks" | "weken" | "woche" | "wochen" | "semaine" | "semaines" | "semana" | "semanas" => Unit::Weeks,
        "month" | "months" | "maand" | "maanden" | "monat" | "monate" | "monaten" | "mois" | "mes" | "meses" => {
            Unit::Months
        }
        "year" | "years" | "jaar" | "jaren" | "jahr" | "jahre" | "jahren" | "ans" | "année" | "années" | "año"
        | "años" => Unit::Years,
        "hour" | "hours" | "hrs" | "hr" | "uur" | "uren" | "stunde" | "stunden" | "heure" | "heures" | "hora"
        | "horas" => Unit::Hours,
        "minute" | "minutes" | "min" | "mins" | "minuten" | "minuto" | "minutos" => Unit::Minutes,
        "km" | "kilometre" | "kilometres" | "kilometer" | "kilometers" => Unit::Km,
        "kg" | "kilo" | "kilos" => Unit::Kg,
        "%" | "percent" | "procent" | "prozent" => Unit::Percent,
        _ => return None,
    })
}

/// A unit glued to the number ("€15", "15eur", "30-day", "10%").
fn glued_unit(token: &str) -> Option<Unit> {
    if token.contains(['€', '$', '£']) {
        return Some(Unit::Money);
    }
    let lower = token.to_lowercase();
    let tail = lower.trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'));
    if tail.is_empty() || tail.len() == lower.len() {
        return None;
    }
    match tail {
        "h" => Some(Unit::Hours),
        "%" => Some(Unit::Percent),
        t => unit_word(t),
    }
}

/// `H:MM` (a normalised time).
pub fn is_time(fact: &str) -> bool {
    fact.split_once(':').is_some_and(|(h, m)| {
        (1..=2).contains(&h.len())
            && h.chars().all(|c| c.is_ascii_digit())
            && m.len() == 2
            && m.chars().all(|c| c.is_ascii_digit())
    })
}

/// A plain number (no letters, no separators left after normalising).
fn is_number(fact: &str) -> bool {
    !fact.is_empty() && fact.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// The text's pieces that share a context: lines, then sentences.
fn segments(text: &str) -> impl Iterator<Item = &str> {
    text.lines().flat_map(|line| {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, c) in line.char_indices() {
            if matches!(c, '.' | '!' | '?') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_whitespace()) {
                // "Dec. 14" and "No. 5" are rare enough in answers to split on.
                out.push(&line[start..=i]);
                start = i + 1;
            }
        }
        out.push(&line[start..]);
        out
    })
}

/// A segment's tokens: split the way `guard::facts` splits, `|` of tables included, and
/// dashes made words of their own ("Tuesday–Saturday", "Monday-Friday", "09:00–18:00";
/// not "SS-1042" or "30-day").
fn tokens(segment: &str) -> Vec<String> {
    let chars: Vec<char> = segment.chars().collect();
    let mut spaced = String::with_capacity(segment.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let letters_round =
            || i > 0 && chars[i - 1].is_alphabetic() && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if matches!(c, '–' | '—') || (c == '-' && letters_round()) {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    spaced
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '(' | ')' | '[' | ']' | '"' | '*' | '_' | '<' | '>' | ';' | '!' | '?' | '|'
                )
        })
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// A token as a word for the word lists: lower case, edge punctuation off.
fn word(token: &str) -> String {
    let w = token.trim_matches(|c: char| matches!(c, '.' | ':' | '\'' | ',' | '/'));
    if w.chars().all(|c| matches!(c, '-' | '–' | '—')) && !w.is_empty() {
        return w.chars().take(1).collect();
    }
    w.to_lowercase()
}

fn day_of(word: &str) -> Option<u8> {
    DAY_ABBREVIATIONS
        .iter()
        .find(|d| d.0 == word)
        .or_else(|| DAYS.iter().find(|d| word.starts_with(d.0)))
        .map(|d| d.1)
}

/// The weekdays a segment names, as a mask; "Tuesday to Friday" is Tuesday … Friday,
/// "weekdays" Monday … Friday, "weekend" Saturday and Sunday.
fn days_of(words: &[String]) -> u8 {
    let mut mask = 0u8;
    let mut last: Option<(usize, u8)> = None;
    for (i, w) in words.iter().enumerate() {
        if w.starts_with("weekday") || w == "werkdagen" || w == "werktags" {
            mask |= 0b001_1111;
        } else if w.starts_with("weekend") || w.starts_with("wochenende") {
            mask |= 0b110_0000;
        } else if w == "daily" || w == "dagelijks" || w == "täglich" {
            mask |= 0b111_1111;
        }
        let Some(d) = day_of(w) else { continue };
        mask |= 1 << d;
        if let Some((j, from)) = last
            && i > j + 1
            && words[j + 1..i].iter().all(|x| DAY_SPAN.contains(&x.as_str()))
        {
            let mut k = from;
            while k != d {
                k = (k + 1) % 7;
                mask |= 1 << k;
            }
        }
        last = Some((i, d));
    }
    mask
}

/// Every fact of `text` with its context (a date's day and month are not numbers here:
/// the caller blanks written-out dates first when it needs to).
pub fn mentions(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    for segment in segments(text) {
        let toks = tokens(segment);
        let words: Vec<String> = toks.iter().map(|t| word(t)).collect();
        let days = days_of(&words);
        // Facts per token: a token "09:00-18:00" is two times.
        let mut facts: Vec<Option<Vec<String>>> = Vec::with_capacity(toks.len());
        for (i, t) in toks.iter().enumerate() {
            let raw = t.trim_matches(|c: char| matches!(c, '.' | ':' | '-' | '/' | '\'' | ','));
            if !raw.chars().any(|c| c.is_ascii_digit()) {
                facts.push(None);
                continue;
            }
            let next = toks
                .get(i + 1)
                .map(|n| n.trim_matches(|c: char| matches!(c, ',' | ':' | ';')));
            let clock: Vec<String> = clock_times(raw, next).into_iter().filter(|f| is_time(f)).collect();
            if !clock.is_empty() {
                facts.push(Some(clock));
                continue;
            }
            let split: Vec<&str> = raw.split('-').collect();
            let many: Vec<String> = split.iter().filter_map(|p| normalize(p)).collect();
            if split.len() == 2 && many.iter().all(|f| is_time(f)) && many.len() == 2 {
                facts.push(Some(many));
            } else {
                facts.push(normalize(raw).map(|f| vec![f]));
            }
        }
        let time_at = |i: usize| {
            facts
                .get(i)
                .and_then(|f| f.as_ref())
                .is_some_and(|f| f.len() == 1 && is_time(&f[0]))
        };
        let mut closes_next = false;
        for (i, found) in facts.iter().enumerate() {
            let Some(found) = found else {
                continue;
            };
            if found.len() == 2 {
                for (f, role) in found.iter().zip([Role::Opens, Role::Closes]) {
                    out.push(Mention {
                        fact: f.clone(),
                        days,
                        role: Some(role),
                        unit: None,
                    });
                }
                closes_next = false;
                continue;
            }
            let fact = found[0].clone();
            if is_time(&fact) {
                let role = if closes_next {
                    Some(Role::Closes)
                } else if span_to_next_time(&words, i, &time_at) {
                    Some(Role::Opens)
                } else {
                    cue_before(&words, i)
                };
                closes_next = role == Some(Role::Opens) && span_to_next_time(&words, i, &time_at);
                out.push(Mention {
                    fact,
                    days,
                    role,
                    unit: None,
                });
                continue;
            }
            closes_next = false;
            if let Some(id) = number_with_unit_word(&toks[i]) {
                // "30-day": the id as written and the number with its unit.
                out.push(Mention {
                    fact,
                    days,
                    role: None,
                    unit: None,
                });
                out.push(Mention {
                    fact: id.0,
                    days,
                    role: None,
                    unit: Some(id.1),
                });
                continue;
            }
            let unit = if is_number(&fact) {
                glued_unit(&toks[i])
                    .or_else(|| words.get(i + 1).and_then(|w| unit_word(w)))
                    .or_else(|| {
                        (i > 0)
                            .then(|| unit_word(&words[i - 1]))
                            .flatten()
                            .filter(|u| *u == Unit::Money)
                    })
            } else {
                None
            };
            out.push(Mention {
                fact,
                days,
                role: None,
                unit,
            });
        }
    }
    out
}

/// `30-day`, `2-year`: the number and its unit.
pub fn number_with_unit_word(token: &str) -> Option<(String, Unit)> {
    let (n, u) = token.split_once('-')?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let u = u.trim_end_matches(['.', ',', ':']).to_lowercase();
    Some((super::guard::number(n), unit_word(&u)?))
}

/// Whether the time at `i` is followed, through span words only, by another time.
fn span_to_next_time(words: &[String], i: usize, time_at: &dyn Fn(usize) -> bool) -> bool {
    let mut j = i + 1;
    let mut between = 0;
    while j < words.len() && !time_at(j) {
        if !TIME_SPAN.contains(&words[j].as_str()) {
            return false;
        }
        between += 1;
        j += 1;
    }
    j < words.len() && between <= 2
}

/// The role the nearest cue word within four words before the time at `i` gives it (no
/// number in between).
fn cue_before(words: &[String], i: usize) -> Option<Role> {
    for j in (i.saturating_sub(4)..i).rev() {
        // A number in between takes the cue ("open 9 to 6pm": the 9 opens).
        if words[j].chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
        let w = words[j].as_str();
        if OPENS.contains(&w) {
            return Some(Role::Opens);
        }
        if CLOSES.contains(&w) {
            return Some(Role::Closes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(text: &str) -> Vec<(String, u8, Option<Role>)> {
        mentions(text)
            .into_iter()
            .filter(|m| is_time(&m.fact))
            .map(|m| (m.fact, m.days, m.role))
            .collect()
    }

    const SUN: u8 = 1 << 6;

    #[test]
    fn times_carry_their_days_and_role() {
        assert_eq!(
            times("- Tuesday: 09:00 - 18:00"),
            vec![
                ("9:00".into(), 0b10, Some(Role::Opens)),
                ("18:00".into(), 0b10, Some(Role::Closes))
            ]
        );
        assert_eq!(
            times("Tuesday to Friday: 08:30-17:30"),
            vec![
                ("8:30".into(), 0b1_1110, Some(Role::Opens)),
                ("17:30".into(), 0b1_1110, Some(Role::Closes))
            ]
        );
        assert_eq!(
            times("On Sundays we open at 9:00. We close at 16:00."),
            vec![
                ("9:00".into(), SUN, Some(Role::Opens)),
                ("16:00".into(), 0, Some(Role::Closes))
            ]
        );
        assert_eq!(times("Drop it off before 10:00"), vec![("10:00".into(), 0, None)]);
        assert_eq!(
            times("| Sunday 27 December 2026 | 12:00 - 16:00 | closed |"),
            vec![
                ("12:00".into(), SUN, Some(Role::Opens)),
                ("16:00".into(), SUN, Some(Role::Closes))
            ]
        );
        assert_eq!(times("open until 20:00 on Thursdays")[0].2, Some(Role::Closes));
        assert_eq!(
            times("zondag van 12:00 tot 16:00")[1],
            ("16:00".into(), SUN, Some(Role::Closes))
        );
        // Saturday to Monday wraps round the week.
        assert_eq!(days_of(&["saturday".into(), "to".into(), "monday".into()]), 0b110_0001);
    }

    #[test]
    fn numbers_carry_their_units() {
        let units = |t: &str| mentions(t).into_iter().map(|m| (m.fact, m.unit)).collect::<Vec<_>>();
        assert_eq!(
            units("€15 or 15 days"),
            vec![("15".into(), Some(Unit::Money)), ("15".into(), Some(Unit::Days))]
        );
        assert_eq!(
            units("EUR 20, 10% off"),
            vec![("20".into(), Some(Unit::Money)), ("10".into(), Some(Unit::Percent))]
        );
        assert_eq!(
            units("a 30-day return window"),
            vec![("30-DAY".into(), None), ("30".into(), Some(Unit::Days))]
        );
        assert_eq!(units("| Front wheel | 15 |"), vec![("15".into(), None)]);
    }

    #[test]
    fn compatibility_needs_a_clear_contradiction() {
        let m = |days, role, unit| Mention {
            fact: "9:00".into(),
            days,
            role,
            unit,
        };
        assert!(m(SUN, Some(Role::Opens), None).supported_by(&m(0, None, None)));
        assert!(m(SUN | 1, None, None).supported_by(&m(1, Some(Role::Opens), None)));
        assert!(!m(SUN, None, None).supported_by(&m(0b10, None, None)));
        assert!(!m(0, Some(Role::Opens), None).supported_by(&m(0, Some(Role::Closes), None)));
        assert!(!m(0, None, Some(Unit::Money)).supported_by(&m(0, None, Some(Unit::Days))));
        assert_eq!(m(SUN, Some(Role::Opens), None).describe(), "9:00 (sun, opens)");
    }
}
