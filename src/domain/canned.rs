//! Canned replies admins keep in the inbox: their bounds and the normalising of what an
//! admin typed (a title for the composer's picker, a text WhatsApp can carry).

/// Longest title, in characters.
pub const TITLE_MAX_CHARS: usize = 60;
/// Longest text, in characters: WhatsApp's limit for a text message.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Most canned replies the inbox stores (the config file's come on top).
pub const MAX_STORED: usize = 200;

/// A canned reply as stored: a title (one line, trimmed) and a text (trimmed, `\n` line
/// ends), or the reason it cannot be one, in words for the admin.
pub fn check(title: &str, text: &str) -> Result<(String, String), String> {
    let title = title.trim();
    if title.is_empty() {
        return Err("Give the canned reply a title (agents pick it by its title).".into());
    }
    if title.chars().any(char::is_control) {
        return Err("The title must be one line.".into());
    }
    let n = title.chars().count();
    if n > TITLE_MAX_CHARS {
        return Err(format!(
            "The title is {n} characters long; at most {TITLE_MAX_CHARS} fit the picker."
        ));
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err("Write the text the canned reply puts in the composer.".into());
    }
    let n = text.chars().count();
    if n > TEXT_MAX_CHARS {
        return Err(format!(
            "The text is {n} characters long; WhatsApp takes at most {TEXT_MAX_CHARS} in one message."
        ));
    }
    Ok((title.to_string(), text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_texts_are_trimmed_and_line_ends_made_plain() {
        assert_eq!(
            check("  Hours ", " Open\r\n9-18 \n").unwrap(),
            ("Hours".to_string(), "Open\n9-18".to_string())
        );
    }

    #[test]
    fn empty_long_or_multi_line_titles_are_refused() {
        assert!(check(" ", "x").unwrap_err().contains("title"));
        assert!(check("a\nb", "x").unwrap_err().contains("one line"));
        assert!(check(&"é".repeat(60), "x").is_ok());
        assert!(check(&"é".repeat(61), "x").unwrap_err().contains("61 characters"));
    }

    #[test]
    fn the_text_limit_counts_characters_not_bytes() {
        assert!(check("t", "  ").unwrap_err().contains("Write the text"));
        assert!(check("t", &"ش".repeat(4096)).is_ok());
        assert!(check("t", &"ش".repeat(4097)).unwrap_err().contains("4097 characters"));
    }
}
