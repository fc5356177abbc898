//! What to do about each Graph API error code (PROTOCOL.md §i): retry, give up, or stop
//! sending until a person fixes something.

/// The send worker's reaction to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Transient: retry later with backoff.
    Retry,
    /// The 24-hour window is closed: do not retry; the conversation needs a template.
    NeedsTemplate,
    /// The access token is bad: pause all sending and alert until it is fixed.
    PauseToken,
    /// Permanent for this message: record the failure.
    Fail,
}

/// The action for a Graph error `code` (and HTTP status, for codes Meta did not send).
pub fn action_for(code: Option<i64>, http_status: u16) -> ErrorAction {
    match code {
        Some(130429 | 131056 | 131000 | 4 | 80007 | 2 | 1) => ErrorAction::Retry,
        Some(131047 | 470) => ErrorAction::NeedsTemplate,
        Some(190 | 0) => ErrorAction::PauseToken,
        Some(_) if http_status >= 500 => ErrorAction::Retry,
        Some(_) => ErrorAction::Fail,
        None if http_status >= 500 || http_status == 429 => ErrorAction::Retry,
        None if http_status == 401 => ErrorAction::PauseToken,
        None => ErrorAction::Fail,
    }
}

/// A readable reason for a failure, for the ledger and the inbox.
pub fn describe(code: Option<i64>, title: &str) -> String {
    let hint = match code {
        Some(131047 | 470) => "more than 24 hours since the customer's last message; send an approved template",
        Some(131026) => "the recipient cannot receive this message (not on WhatsApp, old app, or blocked)",
        Some(131056) => "too many messages to this customer in a short time",
        Some(130429) => "the number's throughput limit was reached",
        Some(190 | 0) => "the access token is expired or invalid; sending is paused until it is fixed",
        Some(131051) => "message type not supported",
        Some(131052 | 131053) => "the media could not be fetched or uploaded",
        Some(131008 | 131009) => "a parameter is missing or invalid (a bug: please report it)",
        Some(132000 | 132001) => "the template or its parameters do not match an approved template",
        Some(133010) => "the business number is not registered with the Cloud API",
        Some(368) => "the account is temporarily blocked for policy violations",
        _ => "",
    };
    match (code, hint.is_empty()) {
        (Some(c), false) => format!("{c} {title}: {hint}"),
        (Some(c), true) => format!("{c} {title}"),
        (None, _) => title.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(action_for(Some(130429), 400), ErrorAction::Retry);
        assert_eq!(action_for(Some(131056), 400), ErrorAction::Retry);
        assert_eq!(action_for(Some(131000), 500), ErrorAction::Retry);
        assert_eq!(action_for(None, 503), ErrorAction::Retry);
        assert_eq!(action_for(Some(131047), 400), ErrorAction::NeedsTemplate);
        assert_eq!(action_for(Some(190), 401), ErrorAction::PauseToken);
        assert_eq!(action_for(Some(131026), 400), ErrorAction::Fail);
        assert_eq!(action_for(Some(131009), 400), ErrorAction::Fail);
        assert!(describe(Some(131047), "Re-engagement message").contains("template"));
    }
}
