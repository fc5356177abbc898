//! The inbox search's snippet: the part of a matching message around the first word that
//! matched, cut into plain and matched segments. The page renders each segment as
//! escaped text (a matched one inside `<mark>`), so customer text stays inert: no HTML
//! is ever built from the message.

/// One piece of a snippet: its text, and whether it is a match to highlight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub matched: bool,
}

/// The words of a search as the full-text query uses them (letters and digits, at most 8),
/// lowercased.
pub fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(str::to_lowercase)
        .collect()
}

/// Characters of context shown before the first match.
const BEFORE: usize = 50;

/// Up to `max_chars` characters of `text` around the first word starting with one of
/// `words` (the search matches word prefixes), the matching words marked; "…" where the
/// text was cut. Without a match (a diacritic the search ignored), the start of the text.
pub fn snippet(text: &str, words: &[String], max_chars: usize) -> Vec<Segment> {
    let chars: Vec<char> = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    // Each word of the text (a run of letters and digits) that a search word starts.
    let mut matches: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_alphanumeric() {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect::<String>().to_lowercase();
        if words.iter().any(|w| token.starts_with(w.as_str())) {
            matches.push((start, i));
        }
    }
    let from = matches
        .first()
        .map(|(s, _)| s.saturating_sub(BEFORE))
        .unwrap_or(0)
        .min(chars.len().saturating_sub(max_chars));
    let to = (from + max_chars).min(chars.len());
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |text: String, matched: bool| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.matched == matched => last.text.push_str(&text),
            _ => out.push(Segment { text, matched }),
        }
    };
    if from > 0 {
        push("…".into(), false);
    }
    let mut at = from;
    for (s, e) in matches.into_iter().filter(|(s, e)| *e > from && *s < to) {
        let (s, e) = (s.max(from), e.min(to));
        push(chars[at..s].iter().collect(), false);
        push(chars[s..e].iter().collect(), true);
        at = e;
    }
    push(chars[at..to].iter().collect(), false);
    if to < chars.len() {
        push("…".into(), false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|s| {
                if s.matched {
                    format!("[{}]", s.text)
                } else {
                    s.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn words_are_matched_by_prefix_ignoring_case() {
        let words = query_words("Refund, ORDER!");
        assert_eq!(words, ["refund", "order"]);
        let s = snippet("I want a refund for my orders please", &words, 160);
        assert_eq!(marked(&s), "I want a [refund] for my [orders] please");
    }

    #[test]
    fn a_long_text_is_cut_around_the_first_match() {
        let text = format!("{} needle {}", "a".repeat(300), "b".repeat(300));
        let s = snippet(&text, &query_words("needle"), 80);
        let shown = marked(&s);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(shown.contains("[needle]"), "{shown}");
        assert_eq!(s.iter().map(|g| g.text.chars().count()).sum::<usize>(), 82);
    }

    #[test]
    fn the_segments_are_always_a_piece_of_the_text() {
        let texts = [
            "",
            "İstanbul İSTANBUL istanbul",
            "e\u{301}clair éclair ÉCLAIR",
            "שלום refund مرحبا refund",
            "\u{0}\u{7}refund\r\nrefund",
            "🚲🚲🚲 refund 🚲",
        ];
        for text in texts {
            for q in ["refund", "istanbul", "éclair", "שלום", "x"] {
                for max in [1, 5, 160] {
                    let segments = snippet(text, &query_words(q), max);
                    let shown: String = segments.iter().map(|s| s.text.as_str()).collect();
                    let inner = shown.trim_start_matches('…').trim_end_matches('…');
                    let plain: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                    assert!(plain.contains(inner), "{text:?} / {q}: {shown:?}");
                    assert!(inner.chars().count() <= max, "{text:?} / {q}: {shown:?}");
                    assert!(segments.iter().all(|s| !s.text.is_empty()));
                }
            }
        }
    }

    #[test]
    fn markup_stays_text_and_no_match_shows_the_start() {
        let s = snippet("<script>alert(1)</script> help", &query_words("script"), 160);
        assert_eq!(marked(&s), "<[script]>alert(1)</[script]> help");
        let s = snippet("nothing here", &query_words("zebra"), 7);
        assert_eq!(marked(&s), "nothing…");
    }
}
