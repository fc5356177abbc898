//! A rough sentiment reading of one customer message (pure): positive, negative or
//! neutral, from word lists in the languages the guard already knows plus emoji. It is
//! cheap (no model) and used only in aggregate — the soft-launch dashboard compares how
//! customers wrote back after the bot's first reply and after a person's — never to
//! decide anything about one conversation.

/// How a message reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sentiment {
    Positive,
    Neutral,
    Negative,
}

/// Words and short phrases that read as satisfied (lower case, matched on word bounds).
const POSITIVE: &[&str] = &[
    "thanks",
    "thank you",
    "thx",
    "ty",
    "great",
    "perfect",
    "awesome",
    "excellent",
    "helpful",
    "brilliant",
    "amazing",
    "wonderful",
    "super",
    "cool",
    "nice",
    "love it",
    "appreciate",
    "cheers",
    "solved",
    "works now",
    "gracias",
    "genial",
    "perfecto",
    "obrigado",
    "obrigada",
    "ótimo",
    "otimo",
    "danke",
    "prima",
    "toll",
    "merci",
    "parfait",
    "dank je",
    "bedankt",
    "terima kasih",
    "mantap",
    "dhanyavaad",
    "shukriya",
    "shukran",
];

/// Words and short phrases that read as unhappy.
const NEGATIVE: &[&str] = &[
    "useless",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "ridiculous",
    "angry",
    "annoyed",
    "annoying",
    "frustrated",
    "frustrating",
    "disappointed",
    "unacceptable",
    "rubbish",
    "stupid",
    "wtf",
    "scam",
    "not helpful",
    "unhelpful",
    "doesn't help",
    "does not help",
    "didn't help",
    "not what i asked",
    "you don't understand",
    "makes no sense",
    "wrong",
    "complaint",
    "refund now",
    "still waiting",
    "real person",
    "talk to a human",
    "speak to a human",
    "inútil",
    "inutil",
    "pésimo",
    "pesimo",
    "horrível",
    "horrivel",
    "schrecklich",
    "nutzlos",
    "nul",
    "nutteloos",
    "belachelijk",
];

const POSITIVE_EMOJI: &[char] = &[
    '👍', '🙏', '😊', '🙂', '😀', '😃', '😄', '❤', '💯', '🎉', '👌', '🥰', '😍',
];
const NEGATIVE_EMOJI: &[char] = &['👎', '😡', '😠', '🤬', '😤', '😞', '😢', '😭', '🙄', '💩'];

/// Words that turn the phrase after them around ("not great", "no thanks").
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "isn't", "wasn't", "nicht", "não", "nao", "niet", "pas",
];

/// Reads one message. Only text counts; a message over 2,000 characters is read from its
/// first 2,000 (a bound on the work, whatever a customer sends).
pub fn read(text: &str) -> Sentiment {
    let text: String = text.chars().take(2_000).collect::<String>().to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut score = 0i32;
    for (list, sign) in [(POSITIVE, 1), (NEGATIVE, -1)] {
        for phrase in list {
            let parts: Vec<&str> = phrase.split(' ').collect();
            for at in 0..words.len() {
                if words[at..].starts_with(&parts) {
                    let negated = at > 0 && NEGATIONS.contains(&words[at - 1]);
                    score += if negated { -sign } else { sign };
                }
            }
        }
    }
    score += text.chars().filter(|c| POSITIVE_EMOJI.contains(c)).count() as i32;
    score -= text.chars().filter(|c| NEGATIVE_EMOJI.contains(c)).count() as i32;
    match score {
        s if s > 0 => Sentiment::Positive,
        s if s < 0 => Sentiment::Negative,
        _ => Sentiment::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::{Sentiment, read};

    #[test]
    fn thanks_and_complaints_read_as_such() {
        assert_eq!(read("Thanks a lot, that's perfect!"), Sentiment::Positive);
        assert_eq!(read("muchas gracias 🙏"), Sentiment::Positive);
        assert_eq!(read("terima kasih"), Sentiment::Positive);
        assert_eq!(read("this is useless, I want a real person"), Sentiment::Negative);
        assert_eq!(read("👎"), Sentiment::Negative);
        assert_eq!(read("Das ist nutzlos"), Sentiment::Negative);
    }

    #[test]
    fn plain_questions_are_neutral() {
        assert_eq!(read("and do you ship to Belgium?"), Sentiment::Neutral);
        assert_eq!(read("ss 10438"), Sentiment::Neutral);
        assert_eq!(read(""), Sentiment::Neutral);
    }

    #[test]
    fn a_negation_turns_the_phrase_around() {
        assert_eq!(read("not great"), Sentiment::Negative);
        assert_eq!(
            read("not helpful at all"),
            Sentiment::Negative,
            "a negative phrase of its own"
        );
        assert_eq!(read("no worries, thanks"), Sentiment::Positive);
    }

    #[test]
    fn words_match_whole_not_inside_others() {
        assert_eq!(read("the tyre is flat"), Sentiment::Neutral, "'ty' inside 'tyre'");
        assert_eq!(read("I'll drop by at nine"), Sentiment::Neutral);
    }

    #[test]
    fn a_huge_message_is_read_within_a_bound() {
        let long = "thanks ".repeat(100_000);
        assert_eq!(read(&long), Sentiment::Positive);
    }
}
