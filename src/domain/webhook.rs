//! Outbound webhooks, the pure part: the event kinds, the signature header
//! (`X-Frontdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as
//! Stripe signs) and how a receiver checks it, and which endpoint URLs are allowed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What happened, as the event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A person owns the conversation now (the bot handed off, or an agent took over).
    HandedOff,
    /// Someone (or nobody) was assigned.
    Assigned,
    /// An agent closed the conversation.
    Resolved,
    /// The bot owns the conversation again.
    HandedBack,
    /// A customer's message was stored.
    MessageReceived,
    /// Meta accepted an outbound message.
    MessageSent,
    /// An outbound message failed for good.
    MessageFailed,
    /// A health webhook from Meta changed the account's, a number's or a template's state.
    AccountHealthChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::HandedOff,
        EventKind::Assigned,
        EventKind::Resolved,
        EventKind::HandedBack,
        EventKind::MessageReceived,
        EventKind::MessageSent,
        EventKind::MessageFailed,
        EventKind::AccountHealthChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HandedOff => "conversation.handed_off",
            EventKind::Assigned => "conversation.assigned",
            EventKind::Resolved => "conversation.resolved",
            EventKind::HandedBack => "conversation.handed_back",
            EventKind::MessageReceived => "message.received",
            EventKind::MessageSent => "message.sent",
            EventKind::MessageFailed => "message.failed",
            EventKind::AccountHealthChanged => "account.health_changed",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The `X-Frontdesk-Signature` value for `body` sent at `unix_seconds`.
pub fn signature_header(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!("t={unix_seconds},v1={}", hex::encode(mac(secret, unix_seconds, body)))
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(unix_seconds.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    Malformed,
    Mismatch,
    /// The timestamp is further than the tolerance from now (a replay, or a skewed clock).
    Stale,
}

/// What a receiver does: the header parsed, the HMAC compared in constant time, and the
/// timestamp within `tolerance_s` of `now_s`. (Used by the tests as the receiver; the
/// docs show the same steps.)
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_s: i64, tolerance_s: i64) -> Result<(), SignatureProblem> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureProblem::Malformed);
    };
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.verify_slice(&v1).map_err(|_| SignatureProblem::Mismatch)?;
    if (now_s - t).abs() > tolerance_s {
        return Err(SignatureProblem::Stale);
    }
    Ok(())
}

/// Whether an endpoint URL may be used: `https://`, or `http://` to a loopback address
/// only (a receiver on the same machine, as in tests). `Err` says why not.
pub fn check_endpoint_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err("http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https://".into())
            }
        }
        other => Err(format!("the scheme must be https, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_a_tampered_or_stale_one_does_not() {
        let h = signature_header(b"s3cret", 1_700_000_000, b"{\"id\":\"evt_1\"}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"s3cret", &h, b"{\"id\":\"evt_1\"}", 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify(b"s3cret", &h, b"{\"id\":\"evt_2\"}", 1_700_000_100, 300),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(b"other", &h, b"{\"id\":\"evt_1\"}", 1_700_000_100, 300),
            Err(SignatureProblem::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replace("t=1700000000", "t=1700000400");
        assert_eq!(
            verify(b"s3cret", &moved, b"{\"id\":\"evt_1\"}", 1_700_000_400, 300),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", &h, b"{\"id\":\"evt_1\"}", 1_700_000_301, 300),
            Err(SignatureProblem::Stale)
        );
        assert_eq!(
            verify(b"s3cret", "v1=zz", b"", 0, 300),
            Err(SignatureProblem::Malformed)
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("message.deleted"), None);
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        assert!(check_endpoint_url("https://hooks.example.com/frontdesk").is_ok());
        assert!(check_endpoint_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_endpoint_url("http://[::1]:8080/x").is_ok());
        assert!(check_endpoint_url("http://localhost/x").is_ok());
        assert!(check_endpoint_url("http://hooks.example.com/x").is_err());
        assert!(check_endpoint_url("http://10.0.0.1/x").is_err());
        assert!(check_endpoint_url("ftp://example.com/x").is_err());
        assert!(check_endpoint_url("not a url").is_err());
    }
}
