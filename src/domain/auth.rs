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
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
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

/// Whether `next` is a safe place to send a browser after login: a path on this site and
/// nothing else. It must start with one `/` (not `//` or `/\\`, which browsers read as
/// another host) and hold only printable ASCII without spaces or backslashes (browsers
/// drop tabs and newlines, so `/\t/evil.example` would become `//evil.example`).
pub fn is_local_path(next: &str) -> bool {
    let b = next.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.len() <= 2048
        && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
}

/// Longest email accepted as a limiter key (RFC 5321's limit for a path).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Keys the login limiter keeps at most per map; past that, entries whose attempts all
/// left the window go first, then the least recently used.
pub const LIMITER_MAX_KEYS: usize = 20_000;

/// Login attempts per key (an email with an address, an address, an email, a user)
/// within a sliding window. An attempt is counted when it is *reserved*, before the
/// password is checked, so parallel guesses cannot all pass the check before the first
/// one is counted; a successful attempt is refunded. Memory is bounded: at most
/// `max_keys` keys, each holding at most its limit of timestamps.
#[derive(Debug)]
pub struct LoginLimiter {
    attempts: HashMap<String, VecDeque<i64>>,
    max_keys: usize,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::with_max_keys(LIMITER_MAX_KEYS)
    }
}

/// The normalised form of a typed email for keys: trimmed, lowercased; `None` when it is
/// longer than any email can be (such a login cannot succeed and must not become a key).
pub fn login_email_key(email: &str) -> Option<String> {
    let e = email.trim();
    (e.len() <= MAX_EMAIL_BYTES).then(|| e.to_lowercase())
}

impl LoginLimiter {
    pub fn with_max_keys(max_keys: usize) -> LoginLimiter {
        LoginLimiter {
            attempts: HashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// Checks every `(key, max)` and, only when all allow it, counts one attempt at `now`
    /// on each — in one step, so no two callers can both take the last slot. When any
    /// key is at its limit nothing is counted and the answer is how many ms until a slot
    /// frees on the most restrictive key.
    pub fn reserve(&mut self, limits: &[(&str, usize)], now: i64, window_ms: i64) -> Result<(), i64> {
        let mut wait = 0;
        for (key, max) in limits {
            if let Some(q) = self.attempts.get_mut(*key) {
                while q.front().is_some_and(|t| now - t >= window_ms) {
                    q.pop_front();
                }
                if q.len() >= *max {
                    // `max` is at least 1, so the queue has a front.
                    let oldest = q.front().copied().unwrap_or(now);
                    wait = wait.max(window_ms - (now - oldest));
                }
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for (key, _) in limits {
            if !self.attempts.contains_key(*key) && self.attempts.len() >= self.max_keys {
                self.make_room(now, window_ms);
            }
            self.attempts.entry((*key).to_string()).or_default().push_back(now);
        }
        Ok(())
    }

    /// Takes back one attempt counted at `at` on `key` (the attempt succeeded).
    pub fn refund(&mut self, key: &str, at: i64) {
        if let Some(q) = self.attempts.get_mut(key) {
            if let Some(i) = q.iter().rposition(|t| *t == at) {
                q.remove(i);
            }
            if q.is_empty() {
                self.attempts.remove(key);
            }
        }
    }

    /// Forgets every attempt of `key`.
    pub fn clear(&mut self, key: &str) {
        self.attempts.remove(key);
    }

    /// Drops keys whose attempts all left the window; if none did, the least recently
    /// used tenth (an attacker filling the map ages out old entries, never grows it).
    fn make_room(&mut self, now: i64, window_ms: i64) {
        self.attempts
            .retain(|_, q| q.back().is_some_and(|t| now - t < window_ms));
        if self.attempts.len() < self.max_keys {
            return;
        }
        let mut last: Vec<i64> = self.attempts.values().filter_map(|q| q.back().copied()).collect();
        let n = (self.max_keys / 10).max(1).min(last.len());
        let (_, cut, _) = last.select_nth_unstable(n - 1);
        let cut = *cut;
        let mut dropped = 0;
        self.attempts.retain(|_, q| {
            let old = q.back().is_none_or(|t| *t <= cut) && dropped < n;
            dropped += usize::from(old);
            !old
        });
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
            assert!(l.reserve(&[("ana", 5)], t, 1000).is_ok());
        }
        assert_eq!(l.reserve(&[("ana", 5)], 10, 1000), Err(990));
        assert!(l.reserve(&[("bob", 5)], 10, 1000).is_ok(), "per key");
        assert!(
            l.reserve(&[("ana", 5)], 1000, 1000).is_ok(),
            "the oldest attempt left the window"
        );
        l.clear("ana");
        assert!(l.reserve(&[("ana", 1)], 1001, 1000).is_ok());
    }

    #[test]
    fn reserving_is_all_or_nothing_and_refunds_give_the_slot_back() {
        let mut l = LoginLimiter::default();
        assert!(l.reserve(&[("pair", 2), ("ip", 3)], 0, 1000).is_ok());
        assert!(l.reserve(&[("pair", 2), ("ip", 3)], 1, 1000).is_ok());
        // The pair is full: the address is not charged for the refused try.
        assert_eq!(l.reserve(&[("pair", 2), ("ip", 3)], 2, 1000), Err(998));
        assert!(
            l.reserve(&[("other", 2), ("ip", 3)], 3, 1000).is_ok(),
            "the address had one slot left"
        );
        assert_eq!(
            l.reserve(&[("other", 2), ("ip", 3)], 4, 1000),
            Err(996),
            "now it is full"
        );
        l.refund("ip", 3);
        l.refund("pair", 1);
        assert!(
            l.reserve(&[("pair", 2), ("ip", 3)], 5, 1000).is_ok(),
            "refunded slots are free again"
        );
        l.refund("nothing", 5);
        l.refund("pair", 999);
        assert_eq!(l.reserve(&[("pair", 2)], 6, 1000), Err(994));
    }

    #[test]
    fn the_limiter_never_holds_more_than_its_cap() {
        let mut l = LoginLimiter::with_max_keys(100);
        for i in 0..10_000 {
            let key = format!("k{i}");
            assert!(l.reserve(&[(&key, 5)], i, 1_000_000).is_ok());
            assert!(l.len() <= 100, "{} keys", l.len());
        }
        // Expired entries go first; recent ones stay.
        let mut l = LoginLimiter::with_max_keys(3);
        l.reserve(&[("old", 1)], 0, 100).unwrap();
        l.reserve(&[("a", 1)], 150, 100).unwrap();
        l.reserve(&[("b", 1)], 160, 100).unwrap();
        l.reserve(&[("c", 1)], 170, 100).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.reserve(&[("a", 1)], 171, 100), Err(79), "a recent entry was kept");
    }

    #[test]
    fn login_email_keys_are_normalised_and_bounded() {
        assert_eq!(login_email_key("  Ana@Shop.NL "), Some("ana@shop.nl".into()));
        assert_eq!(login_email_key(&"a".repeat(254)).map(|k| k.len()), Some(254));
        assert_eq!(login_email_key(&"a".repeat(255)), None);
        assert_eq!(
            login_email_key(&format!("  {}  ", "a".repeat(254))).map(|k| k.len()),
            Some(254),
            "trimmed first"
        );
    }

    #[test]
    fn only_local_paths_are_redirect_targets() {
        let cases: &[(&str, bool)] = &[
            ("/app", true),
            ("/app/c/12?x=1#top", true),
            ("/", true),
            ("/%2F%2Fevil.example", true),
            ("", false),
            ("app", false),
            ("//evil.example", false),
            ("/\\evil.example", false),
            ("/\tx/evil.example", false),
            ("/\t/evil.example", false),
            ("/\n/", false),
            ("/\r\nSet-Cookie: x=1", false),
            ("/a b", false),
            ("/a\\b", false),
            ("/caf\u{e9}", false),
            ("https://evil.example", false),
            ("\t/app", false),
            ("/\u{7f}", false),
        ];
        for (path, ok) in cases {
            assert_eq!(is_local_path(path), *ok, "{path:?}");
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(3000))), "absurdly long");
    }
}
