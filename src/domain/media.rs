//! Inbound media, the pure parts: what a downloaded file really is (its first bytes),
//! whether it is what the webhook declared, whole and unchanged, the text a media message
//! becomes for the bot, what a customer is told when the bot cannot use it, and what a
//! media id and a download URL must look like before the access token goes anywhere.

use sha2::{Digest, Sha256};

/// Why a media file cannot be used. `permanent` problems are not retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    TooLarge {
        limit: u64,
    },
    /// The bytes are not the declared kind of file.
    WrongType {
        declared: String,
        found: String,
    },
    /// Fewer bytes arrived than the Graph API announced.
    Truncated {
        expected: u64,
        got: u64,
    },
    /// The bytes do not match the SHA-256 Meta gave.
    Checksum,
    /// The download URL was refused twice (it expires after about 5 minutes).
    Expired,
    /// A kind of media the bot does not read (video, other document types).
    Unsupported(String),
    /// The file has nothing to read (a scanned PDF, an empty transcript).
    Empty(String),
    /// A service failed (Graph, transcription, vision); may pass.
    Unavailable(String),
    /// The download was not attempted: a bad media id, or a download URL the access token
    /// may not go to.
    Refused(String),
}

impl Problem {
    /// Whether trying again can help.
    pub fn transient(&self) -> bool {
        matches!(self, Problem::Unavailable(_))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::TooLarge { limit } => {
                write!(f, "the file is larger than the {limit}-byte limit (media.max_*_bytes)")
            }
            Problem::WrongType { declared, found } => write!(
                f,
                "the file is not the {declared} it was declared as (its bytes look like {found})"
            ),
            Problem::Truncated { expected, got } => write!(f, "the download was cut short ({got} of {expected} bytes)"),
            Problem::Checksum => {
                f.write_str("the file does not match the SHA-256 Meta sent; it was changed or damaged")
            }
            Problem::Expired => f.write_str("the download URL expired twice; ask the customer to send it again"),
            Problem::Unsupported(what) | Problem::Empty(what) | Problem::Unavailable(what) | Problem::Refused(what) => {
                f.write_str(what)
            }
        }
    }
}

/// Whether `id` can be a Graph media id (Meta's are digits): 1-128 of `A-Z a-z 0-9 _ -`.
/// It becomes a URL path segment sent with the access token, so nothing else may pass.
pub fn valid_media_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether the access token may be sent to the download URL Graph gave: an `https://`
/// URL, or one on the configured Graph base itself (same scheme, host and port: a local
/// fake in tests and the demo).
pub fn download_url_allowed(url: &str, graph_base: &str) -> bool {
    let Ok(target) = url::Url::parse(url) else { return false };
    if !target.has_host() || !target.username().is_empty() || target.password().is_some() {
        return false;
    }
    if target.scheme() == "https" {
        return true;
    }
    // A URL that names its origin only ("http://host:port") has no path of its own.
    let has_path = url.splitn(4, '/').nth(3).is_some();
    url::Url::parse(graph_base).is_ok_and(|base| base.has_host() && base.origin() == target.origin() && has_path)
}

/// The MIME type the first bytes show, for the formats WhatsApp carries.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    Some(match () {
        _ if at(0, b"\xFF\xD8\xFF") => "image/jpeg",
        _ if at(0, b"\x89PNG\r\n\x1a\n") => "image/png",
        _ if at(0, b"GIF87a") || at(0, b"GIF89a") => "image/gif",
        _ if at(0, b"RIFF") && at(8, b"WEBP") => "image/webp",
        _ if at(0, b"RIFF") && at(8, b"WAVE") => "audio/wav",
        _ if at(0, b"OggS") => "audio/ogg",
        _ if at(0, b"ID3") => "audio/mpeg",
        _ if at(0, b"#!AMR") => "audio/amr",
        _ if at(0, b"fLaC") => "audio/flac",
        _ if at(4, b"ftyp") => "video/mp4",
        _ if bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xF6 == 0xF0 => "audio/aac",
        _ if bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0 => "audio/mpeg",
        _ if at(0, b"%PDF-") => "application/pdf",
        _ if at(0, b"PK\x03\x04") => "application/zip",
        _ if at(0, b"\xD0\xCF\x11\xE0") => "application/x-ole-storage",
        _ => return None,
    })
}

/// Checks a download against what was declared; returns the MIME type to use (the one
/// the bytes show when they show one).
pub fn check(
    media_type: &str,
    declared_mime: Option<&str>,
    bytes: &[u8],
    announced_size: Option<u64>,
    checksums: &[&str],
) -> Result<String, Problem> {
    if let Some(expected) = announced_size
        && (bytes.len() as u64) < expected
    {
        return Err(Problem::Truncated {
            expected,
            got: bytes.len() as u64,
        });
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if checksums.iter().any(|c| sha256_matches(c, &digest) == Some(false)) {
        return Err(Problem::Checksum);
    }
    let declared = declared_mime
        .map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty());
    let found = sniff(bytes);
    let wrong = |found: Option<&str>| Problem::WrongType {
        declared: declared.clone().unwrap_or_else(|| media_type.to_string()),
        found: found.unwrap_or("no known format").to_string(),
    };
    match media_type {
        "image" | "sticker" => match found {
            Some(f) if f.starts_with("image/") => Ok(f.to_string()),
            f => Err(wrong(f)),
        },
        // MP4 containers carry audio (m4a) too.
        "audio" => match found {
            Some(f) if f.starts_with("audio/") => Ok(f.to_string()),
            Some("video/mp4") => Ok("audio/mp4".into()),
            f => Err(wrong(f)),
        },
        "video" => match found {
            Some("video/mp4") => Ok("video/mp4".into()),
            f => Err(wrong(f)),
        },
        _ => match (declared.as_deref(), found) {
            (Some("application/pdf"), Some("application/pdf")) => Ok("application/pdf".into()),
            (Some("application/pdf"), f) => Err(wrong(f)),
            (_, Some("application/pdf")) => Ok("application/pdf".into()),
            (Some(d), _) if d.starts_with("text/") && std::str::from_utf8(bytes).is_ok() => Ok(d.to_string()),
            (Some(d), _) => Ok(d.to_string()),
            (None, f) => Ok(f.unwrap_or("application/octet-stream").to_string()),
        },
    }
}

/// Whether `declared` (hex, or base64 as in webhooks) is the SHA-256 `digest`; `None` when
/// it is neither (some senders fill it with placeholders).
pub fn sha256_matches(declared: &str, digest: &[u8; 32]) -> Option<bool> {
    let declared = declared.trim();
    if declared.len() == 64
        && let Ok(bytes) = hex::decode(declared)
    {
        return Some(bytes == digest);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(declared)
        .ok()
        .filter(|b| b.len() == 32)
        .map(|b| b == digest)
}

/// The text a media message becomes once read: a voice note is its transcript; an image
/// its caption and description; a document its caption (or name) and text.
pub fn turn_text(media_type: &str, caption: Option<&str>, filename: Option<&str>, derived: &str) -> String {
    let caption = caption.map(str::trim).filter(|c| !c.is_empty());
    let derived = derived.trim();
    match media_type {
        "audio" => derived.to_string(),
        "image" => match caption {
            Some(c) => format!("{c}\n[image: {derived}]"),
            None => format!("[image: {derived}]"),
        },
        _ => {
            let head = caption
                .map(str::to_string)
                .or_else(|| filename.map(|f| format!("[document: {f}]")))
                .unwrap_or_else(|| "[document]".into());
            format!("{head}\n[document text: {derived}]")
        }
    }
}

/// What the customer is told when the bot cannot use their media (`media.on_failure =
/// "ask_text"`).
pub fn ask_for_text(media_type: &str, voice: bool) -> String {
    let what = match media_type {
        "audio" if voice => "listen to your voice note",
        "audio" => "play your audio",
        "image" => "open your image",
        "video" => "watch videos",
        _ => "open your file",
    };
    format!("Sorry, I couldn't {what}. Could you type your message instead? I'll answer right away.")
}

/// One message of a burst, as the decision about unusable media sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstPart {
    /// `None` for a message without media; else the media row's status (`pending` after
    /// the reply stopped waiting counts as unusable).
    pub media_status: Option<String>,
    pub media_type: String,
    pub voice: bool,
    /// A caption or other text the bot can answer on its own.
    pub has_text: bool,
}

/// When every message of the burst is media the bot could not use and nothing else was
/// said: the first such part (its type and whether it is a voice note).
pub fn unusable_burst(parts: &[BurstPart]) -> Option<(&str, bool)> {
    if parts.is_empty() {
        return None;
    }
    let unusable = |p: &BurstPart| matches!(p.media_status.as_deref(), Some("failed" | "pending")) && !p.has_text;
    if parts.iter().all(unusable) {
        parts.first().map(|p| (p.media_type.as_str(), p.voice))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00rest of a jpeg";
    const OGG: &[u8] = b"OggS\x00\x02rest of an ogg stream";

    #[test]
    fn media_ids_are_plain_tokens() {
        for ok in [
            "1234567890987654321",
            "7270432eae37498234f4444b35ffc5",
            "voice-1",
            "img_2",
            &"9".repeat(128),
        ] {
            assert!(valid_media_id(ok), "{ok}");
        }
        for bad in [
            "",
            "../../me?fields=",
            "..",
            ".",
            "1/2",
            "12?x=1",
            "12#f",
            "%2e%2e",
            "12 3",
            "12\n",
            "１２",
            &"9".repeat(129),
        ] {
            assert!(!valid_media_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_token_goes_only_to_https_or_the_graph_base() {
        let meta = "https://graph.facebook.com";
        let fake = "http://127.0.0.1:4321/";
        // (url, graph base, allowed)
        let cases = [
            (
                "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
                meta,
                true,
            ),
            ("HTTPS://lookaside.fbsbx.com/x", meta, true),
            ("http://lookaside.fbsbx.com/x", meta, false),
            ("http://169.254.169.254/latest/meta-data", meta, false),
            ("https://", meta, false),
            ("ftp://example.com/x", meta, false),
            ("", meta, false),
            ("http://127.0.0.1:4321/_media/1", fake, true),
            ("http://127.0.0.1:4321", fake, false),
            ("http://127.0.0.1:43210/_media/1", fake, false),
            ("http://127.0.0.1:4321@evil.example/_media/1", fake, false),
            ("http://127.0.0.1:4321.evil.example/_media/1", fake, false),
            ("http://127.0.0.2:4321/_media/1", fake, false),
            ("http://127.0.0.1:4321/_media/1", "http://127.0.0.1:4321/graph/", true),
            ("http://127.0.0.1:4321/_media/1", "", false),
        ];
        for (url, base, want) in cases {
            assert_eq!(download_url_allowed(url, base), want, "{url} with base {base}");
        }
    }

    #[test]
    fn sniffs_the_formats_whatsapp_carries() {
        assert_eq!(sniff(JPEG), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WAVEfmt "), Some("audio/wav"));
        assert_eq!(sniff(OGG), Some("audio/ogg"));
        assert_eq!(sniff(b"#!AMR\n..."), Some("audio/amr"));
        assert_eq!(sniff(b"\x00\x00\x00\x20ftypM4A "), Some("video/mp4"));
        assert_eq!(sniff(b"\xFF\xF1\x50\x80"), Some("audio/aac"));
        assert_eq!(sniff(b"\xFF\xFB\x90\x00"), Some("audio/mpeg"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"<html>hi</html>"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_file_must_be_whole_unchanged_and_what_it_claims() {
        assert_eq!(
            check(
                "image",
                Some("image/jpeg"),
                JPEG,
                Some(JPEG.len() as u64),
                &[&hex_sha(JPEG)]
            ),
            Ok("image/jpeg".into())
        );
        // The bytes decide the exact type within the kind (Anthropic refuses a mismatch).
        assert_eq!(
            check("image", Some("image/png"), JPEG, None, &[]),
            Ok("image/jpeg".into())
        );
        assert_eq!(
            check("audio", Some("audio/ogg; codecs=opus"), OGG, None, &[]),
            Ok("audio/ogg".into())
        );
        assert_eq!(
            check("audio", Some("audio/mp4"), b"\x00\x00\x00\x20ftypM4A ", None, &[]),
            Ok("audio/mp4".into())
        );
        assert!(matches!(
            check("image", Some("image/jpeg"), b"<html>login</html>", None, &[]),
            Err(Problem::WrongType { .. })
        ));
        assert!(matches!(
            check("audio", Some("audio/ogg"), JPEG, None, &[]),
            Err(Problem::WrongType { .. })
        ));
        assert!(matches!(
            check("document", Some("application/pdf"), b"MZ\x90\x00", None, &[]),
            Err(Problem::WrongType { .. })
        ));
        assert_eq!(
            check("document", Some("text/plain"), b"hello", None, &[]),
            Ok("text/plain".into())
        );
        assert_eq!(
            check("image", None, JPEG, Some(JPEG.len() as u64 + 10), &[]),
            Err(Problem::Truncated {
                expected: JPEG.len() as u64 + 10,
                got: JPEG.len() as u64
            })
        );
        assert_eq!(
            check("image", None, JPEG, None, &[&hex_sha(b"something else")]),
            Err(Problem::Checksum)
        );
        // Placeholders (as in some published samples) are not checksums.
        assert_eq!(
            check("image", None, JPEG, None, &["4654+8g=", "a1b2c3d4e5f6..."]),
            Ok("image/jpeg".into())
        );
        let e = check("image", Some("image/jpeg"), b"<html>", None, &[]).unwrap_err();
        assert!(e.to_string().contains("not the image/jpeg it was declared as"), "{e}");
        assert!(!e.transient());
        assert!(Problem::Unavailable("down".into()).transient());
    }

    #[test]
    fn checksums_in_hex_or_base64() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(
            sha256_matches(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                &digest
            ),
            Some(true)
        );
        assert_eq!(
            sha256_matches(
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                &digest
            ),
            Some(true)
        );
        assert_eq!(
            sha256_matches("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", &digest),
            Some(true)
        );
        assert_eq!(
            sha256_matches("OmT4nhjUhCMIPNmj7eeOZeCYjTXkLxoOv85OMCFwSuc=", &digest),
            Some(false)
        );
        assert_eq!(sha256_matches("not a checksum", &digest), None);
    }

    #[test]
    fn turns_read_like_what_was_sent() {
        assert_eq!(
            turn_text("audio", None, None, " Where is my order 1234? "),
            "Where is my order 1234?"
        );
        assert_eq!(
            turn_text("image", Some("it came like this"), None, "a bent front wheel"),
            "it came like this\n[image: a bent front wheel]"
        );
        assert_eq!(turn_text("image", None, None, "a receipt"), "[image: a receipt]");
        assert_eq!(
            turn_text("document", None, Some("invoice.pdf"), "Total 12.50"),
            "[document: invoice.pdf]\n[document text: Total 12.50]"
        );
        assert!(ask_for_text("audio", true).contains("voice note"));
        assert!(ask_for_text("video", false).contains("watch videos"));
    }

    #[test]
    fn only_a_burst_of_nothing_but_unusable_media_needs_the_fallback() {
        let part = |status: Option<&str>, has_text: bool| BurstPart {
            media_status: status.map(str::to_string),
            media_type: "audio".into(),
            voice: true,
            has_text,
        };
        assert_eq!(unusable_burst(&[part(Some("failed"), false)]), Some(("audio", true)));
        assert_eq!(
            unusable_burst(&[part(Some("pending"), false), part(Some("failed"), false)]),
            Some(("audio", true))
        );
        assert_eq!(
            unusable_burst(&[part(Some("failed"), true)]),
            None,
            "a caption can be answered"
        );
        assert_eq!(
            unusable_burst(&[part(Some("failed"), false), part(None, true)]),
            None,
            "so can a typed message"
        );
        assert_eq!(unusable_burst(&[part(Some("done"), false)]), None);
        assert_eq!(unusable_burst(&[]), None);
    }
}
