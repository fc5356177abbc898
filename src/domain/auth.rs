//! Accounts and sessions (pure): roles, the password rule, session lifetimes and the
//! login rate limit. Hashing and cookies live in `accounts`; rows in `store::users`.

use std::collections::{HashMap, VecDeque};

/// What a signed-in person may do: agents answer conversations; admins also change
/// settings, the knowledge base and users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Checks a new password: long enough, not absurdly long, not the email.
pub fn check_password(password: &str, email: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("the password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("the password cannot be the email address".into());
    }
    Ok(())
}

/// Checks an email address enough to catch typos (one @, a dot in the domain, no spaces).
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = match email.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'),
        None => false,
    };
    if !ok || email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{email:?} is not an email address"));
    }
    Ok(())
}

/// Whether a session is still valid: used within `idle_ms` and younger than `max_ms`.
pub fn session_live(created_at: i64, last_seen_at: i64, now: i64, idle_ms: i64, max_ms: i64) -> bool {
    now - last_seen_at <= idle_ms && now - created_at <= max_ms
}

/// Failed logins per key (the email, and the client address) within a sliding window.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: HashMap<String, VecDeque<i64>>,
}

impl LoginLimiter {
    /// Whether `key` may try now, given at most `max` failures per `window_ms`; when
    /// not, how many ms until it may.
    pub fn check(&mut self, key: &str, now: i64, max: usize, window_ms: i64) -> Result<(), i64> {
        let Some(q) = self.failures.get_mut(key) else { return Ok(()) };
        while q.front().is_some_and(|t| now - t >= window_ms) {
            q.pop_front();
        }
        if q.is_empty() {
            self.failures.remove(key);
            return Ok(());
        }
        if q.len() >= max { Err(window_ms - (now - q.front().copied().unwrap_or(now))) } else { Ok(()) }
    }

    pub fn fail(&mut self, key: &str, now: i64) {
        self.failures.entry(key.to_string()).or_default().push_back(now);
        // Bound the memory an attacker can make us use.
        if self.failures.len() > 100_000 {
            self.failures.retain(|_, q| q.back().is_some_and(|t| now - t < 3_600_000));
        }
    }

    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_emails() {
        assert!(check_password("short", "a@b.nl").unwrap_err().contains("at least 10"));
        assert!(check_password("ana@shop.nl", "ana@shop.nl").is_err());
        assert!(check_password("correct horse battery", "a@b.nl").is_ok());
        assert!(check_email("ana@shop.nl").is_ok());
        for bad in ["ana", "ana@shop", "@shop.nl", "ana @shop.nl", "ana@.nl"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert!(Role::Admin > Role::Agent);
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        assert!(session_live(0, 50, 100, 60, 1000));
        assert!(!session_live(0, 30, 100, 60, 1000), "idle too long");
        assert!(!session_live(0, 990, 1001, 60, 1000), "too old");
    }

    #[test]
    fn login_limiter_slides() {
        let mut l = LoginLimiter::default();
        for t in 0..5 {
            assert!(l.check("ana", t, 5, 1000).is_ok());
            l.fail("ana", t);
        }
        assert_eq!(l.check("ana", 10, 5, 1000), Err(990));
        assert!(l.check("bob", 10, 5, 1000).is_ok(), "per key");
        assert!(l.check("ana", 1000, 5, 1000).is_ok(), "the oldest failure left the window");
        l.clear("ana");
        assert!(l.check("ana", 1001, 5, 1000).is_ok());
    }
}
