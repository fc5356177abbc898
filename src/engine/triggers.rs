//! Built-in triggers (pure): the customer asking for a person, STOP/START, order numbers.
//! Word-boundary matching on a lower-cased copy; phrases cover English, Dutch, German,
//! French and Spanish basics. Sensitive topics are a routing rule (`router`).

/// Phrases that mean "let me talk to a person".
const HUMAN_PHRASES: &[&str] = &[
    "human",
    "real person",
    "a person",
    "an agent",
    "live agent",
    "speak to someone",
    "talk to someone",
    "speak with someone",
    "talk to a",
    "speak to a",
    "speak with a",
    "customer service",
    "representative",
    "operator",
    "a manager",
    "staff member",
    "medewerker",
    "een mens",
    "mitarbeiter",
    "einen menschen",
    "un humain",
    "une personne",
    "un conseiller",
    "una persona",
    "un agente",
    "hablar con alguien",
];

fn first_match(text: &str, phrases: &[&'static str]) -> Option<&'static str> {
    let lower = text.to_lowercase();
    phrases
        .iter()
        .copied()
        .find(|p| crate::domain::router::contains_phrase(&lower, p))
}

/// The phrase by which the customer asks for a person, if any.
pub fn asks_for_human(text: &str) -> Option<&'static str> {
    first_match(text, HUMAN_PHRASES)
}

/// `Some(true)` for an opt-out command (STOP, UNSUBSCRIBE, …), `Some(false)` for opting
/// back in (START, …): the whole message, case and punctuation aside.
pub fn opt_command(text: &str) -> Option<bool> {
    let t: String = text.trim().trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    match t.as_str() {
        "stop" | "stop all" | "unsubscribe" | "opt out" | "opt-out" | "optout" | "cancel messages" | "stopp"
        | "arrêter" | "baja" => Some(true),
        "start" | "unstop" | "subscribe" | "opt in" | "opt-in" => Some(false),
        _ => None,
    }
}

/// An order number in the message, like `SS-10421` or `ss-10421` (letters, a dash, at
/// least three digits), upper-cased.
pub fn order_id(text: &str) -> Option<String> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | '.' | '?' | '!' | ':' | ';' | '(' | ')' | '#' | '"' | '\'')
    })
    .find_map(|t| {
        let (letters, digits) = t.split_once('-')?;
        let ok = (1..=5).contains(&letters.len())
            && letters.chars().all(|c| c.is_ascii_alphabetic())
            && digits.len() >= 3
            && digits.chars().all(|c| c.is_ascii_digit());
        ok.then(|| t.to_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_a_person() {
        for t in [
            "Can I talk to a human please",
            "I want to speak to someone",
            "REAL PERSON",
            "Ik wil een medewerker spreken",
            "quiero hablar con alguien",
        ] {
            assert!(asks_for_human(t).is_some(), "{t}");
        }
        for t in [
            "what are your opening hours",
            "is the humane society near you",
            "do you sell agent orange",
            "personalised bells?",
        ] {
            assert_eq!(asks_for_human(t), None, "{t}");
        }
    }

    #[test]
    fn order_numbers() {
        assert_eq!(order_id("where is my order ss-10421?"), Some("SS-10421".into()));
        assert_eq!(order_id("Order #SS-10398, please"), Some("SS-10398".into()));
        assert_eq!(order_id("my e-bike broke"), None);
        assert_eq!(order_id("call 06-12"), None);
    }

    #[test]
    fn opt_commands_are_whole_messages() {
        assert_eq!(opt_command(" STOP "), Some(true));
        assert_eq!(opt_command("Unsubscribe."), Some(true));
        assert_eq!(opt_command("start"), Some(false));
        assert_eq!(opt_command("please stop the noise from the bike"), None);
        assert_eq!(opt_command("when do you start work"), None);
    }
}
