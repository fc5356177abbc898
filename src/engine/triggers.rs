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

/// Words after which a bare number is an order number (`order 10421`, `pedido nº 10421`).
const ORDER_WORDS: &[&str] = &[
    "order",
    "orders",
    "number",
    "no",
    "nr",
    "nº",
    "bestelling",
    "bestellung",
    "ordernummer",
    "pedido",
    "commande",
    "ordine",
    "número",
    "numero",
];

/// An order number in the message, upper-cased as `LETTERS-DIGITS`: written like `SS-10421`
/// or `ss-10421` (letters, a dash, at least three digits) for any letters; and, for the
/// `prefixes` the business's order tool names (`id_prefixes`), the ways customers type
/// it — `ss 10421`, `SS10421`, and a bare number after `#` or an order word (`#10421`,
/// `order 10421`), which takes the first prefix.
pub fn order_id(text: &str, prefixes: &[String]) -> Option<String> {
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '?' | '!' | ':' | ';' | '(' | ')' | '"' | '\''))
        .filter(|t| !t.is_empty())
        .collect();
    let digits = |t: &str, least: usize| t.len() >= least && t.chars().all(|c| c.is_ascii_digit());
    let dashed = tokens.iter().find_map(|t| {
        let t = t.trim_start_matches('#');
        let (letters, number) = t.split_once('-')?;
        let ok =
            (1..=5).contains(&letters.len()) && letters.chars().all(|c| c.is_ascii_alphabetic()) && digits(number, 3);
        ok.then(|| t.to_ascii_uppercase())
    });
    if dashed.is_some() || prefixes.is_empty() {
        return dashed;
    }
    let id = |prefix: &str, number: &str| format!("{}-{number}", prefix.to_ascii_uppercase());
    for (i, raw) in tokens.iter().enumerate() {
        let t = raw.trim_start_matches('#');
        for p in prefixes {
            let glued = t.get(..p.len()).filter(|head| head.eq_ignore_ascii_case(p));
            if glued.is_some() && digits(&t[p.len()..], 3) {
                return Some(id(p, &t[p.len()..]));
            }
            if t.eq_ignore_ascii_case(p)
                && let Some(next) = tokens.get(i + 1).filter(|n| digits(n, 3))
            {
                return Some(id(p, next));
            }
        }
        let after_order_word = i > 0 && ORDER_WORDS.contains(&tokens[i - 1].to_lowercase().as_str());
        if digits(t, 4) && (raw.starts_with('#') || after_order_word) {
            return Some(id(&prefixes[0], t));
        }
    }
    None
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
        let none: &[String] = &[];
        assert_eq!(order_id("where is my order ss-10421?", none), Some("SS-10421".into()));
        assert_eq!(order_id("Order #SS-10398, please", none), Some("SS-10398".into()));
        assert_eq!(order_id("my e-bike broke", none), None);
        assert_eq!(order_id("call 06-12", none), None);
        // Without the tool's prefixes, only the dashed form is an order number.
        assert_eq!(order_id("where is ss 10438", none), None);
    }

    #[test]
    fn order_numbers_typed_the_way_customers_type_them() {
        let ss = &["SS".to_string()];
        for (text, want) in [
            ("where is ss 10438??", "SS-10438"),
            ("SS10438 not arrived", "SS-10438"),
            ("order #10438 pls", "SS-10438"),
            ("my order number 10438", "SS-10438"),
            ("pedido 10438 dónde está", "SS-10438"),
            ("ss-10438", "SS-10438"),
            ("is SS 104 here", "SS-104"),
        ] {
            assert_eq!(order_id(text, ss).as_deref(), Some(want), "{text}");
        }
        for text in [
            "we came in 2024 and paid 1500",
            "open at 0930?",
            "my e-bike broke",
            "order 12 bells",
            "sss 10438",
            "class 10438",
        ] {
            assert_eq!(order_id(text, ss), None, "{text}");
        }
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
