//! The simulator's document uploads: a customer's file is checked (a PDF or plain text
//! of at most 5 MB, its name cleaned), handed to the demo's in-process fake Graph API
//! under a fresh media id, and described as a webhook `document` message, so the server
//! downloads and reads it exactly as it would a file sent on WhatsApp.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::http::fake_graph::FakeGraph;

/// The largest document the simulator accepts, in bytes (5 MB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// The body limit of `/demo/api/send`: a document of `MAX_BYTES` in base64, plus room
/// for the rest of the request.
pub const BODY_LIMIT: usize = MAX_BYTES.div_ceil(3) * 4 + 64 * 1024;

/// The longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A document as the simulator page posts it.
#[derive(Debug, Deserialize)]
pub struct Document {
    pub filename: String,
    pub mime_type: String,
    pub base64: String,
}

/// A rejected upload: the HTTP status and a message for the person trying the demo.
pub type Refusal = (StatusCode, String);

/// What "too large" says, for both the handler's check and the body limit.
pub fn too_large() -> Refusal {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the document is larger than {} MB", MAX_BYTES >> 20),
    )
}

/// Reads a JSON request of at most `BODY_LIMIT` bytes. One that announces more is refused
/// before its body is read; any refusal is a JSON error, not axum's plain text.
pub async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, Refusal> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        match std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            true => too_large(),
            false => (StatusCode::BAD_REQUEST, format!("the request could not be read: {e}")),
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| (StatusCode::BAD_REQUEST, format!("not a valid request: {e}")))
}

/// The document's file extension for a type the simulator accepts, else `None`.
fn extension(mime: &str) -> Option<&'static str> {
    match mime {
        "application/pdf" => Some(".pdf"),
        "text/plain" => Some(".txt"),
        _ => None,
    }
}

/// Checks `doc` and returns its cleaned file name and bytes.
pub fn decode(doc: &Document) -> Result<(String, Vec<u8>), Refusal> {
    let Some(ext) = extension(&doc.mime_type) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "only PDF (application/pdf) and plain-text (text/plain) documents can be sent".into(),
        ));
    };
    if doc.base64.len() > MAX_BYTES.div_ceil(3) * 4 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(doc.base64.trim())
        .map_err(|_| (StatusCode::BAD_REQUEST, "the document is not valid base64".to_string()))?;
    if bytes.len() > MAX_BYTES {
        return Err(too_large());
    }
    if bytes.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "the document is empty".into()));
    }
    Ok((clean_filename(&doc.filename, ext), bytes))
}

/// The name shown to the bot and in the inbox: the last path segment, without control or
/// bidirectional-override characters (which can disguise an extension), no leading dots,
/// at most 100 characters, ending in the type's extension.
pub fn clean_filename(name: &str, ext: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let mut name: String = kept
        .trim()
        .trim_start_matches('.')
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    if name.is_empty() {
        name = "document".into();
    }
    if !name.to_ascii_lowercase().ends_with(ext) {
        name.push_str(ext);
    }
    name
}

/// Serves `bytes` from the fake Graph API under a fresh media id (digits, like Meta's)
/// and returns the id.
pub fn register(graph: &FakeGraph, mime: &str, bytes: Vec<u8>) -> String {
    let id = format!("{}{:06}", crate::domain::now_ms(), rand::random::<u32>() % 1_000_000);
    graph.add_media(&id, mime, bytes);
    id
}

/// The webhook's `document` object for media `id`.
pub fn webhook_document(id: &str, mime: &str, filename: &str, caption: Option<&str>) -> Value {
    let mut doc = json!({ "id": id, "mime_type": mime, "filename": filename });
    if let Some(c) = caption {
        doc["caption"] = json!(c);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(mime: &str, bytes: &[u8]) -> Document {
        Document {
            filename: "a.pdf".into(),
            mime_type: mime.into(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_filename("../../etc/passwd", ".txt"), "passwd.txt");
        assert_eq!(clean_filename("C:\\Users\\a\\Invoice 12.PDF", ".pdf"), "Invoice 12.PDF");
        assert_eq!(clean_filename("bill\u{202e}fdp.exe", ".pdf"), "billfdp.exe.pdf");
        assert_eq!(clean_filename("..hidden\n.txt", ".txt"), "hidden.txt");
        assert_eq!(clean_filename(" / ", ".pdf"), "document.pdf");
        assert_eq!(
            clean_filename(&"x".repeat(500), ".txt").chars().count(),
            MAX_NAME_CHARS + 4
        );
    }

    #[tokio::test]
    async fn requests_past_the_body_limit_are_refused_as_too_large() {
        let big = Body::from(vec![b' '; BODY_LIMIT + 1]);
        assert_eq!(
            read_json::<Value>(&HeaderMap::new(), big).await.unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let mut announced = HeaderMap::new();
        announced.insert(header::CONTENT_LENGTH, (BODY_LIMIT + 1).into());
        assert_eq!(
            read_json::<Value>(&announced, Body::from("{}")).await.unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            read_json::<Value>(&HeaderMap::new(), Body::from("{"))
                .await
                .unwrap_err()
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            read_json::<Value>(&HeaderMap::new(), Body::from("{}")).await.unwrap(),
            json!({})
        );
    }

    #[test]
    fn only_small_pdfs_and_text_pass() {
        assert_eq!(
            decode(&doc("text/plain", b"hello")).unwrap(),
            ("a.pdf.txt".to_string(), b"hello".to_vec())
        );
        assert_eq!(decode(&doc("image/png", b"x")).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert_eq!(
            decode(&doc("application/pdf", b"")).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode(&doc("application/pdf", &vec![b'%'; MAX_BYTES])).unwrap().1.len(),
            MAX_BYTES
        );
        assert_eq!(
            decode(&doc("application/pdf", &vec![b'%'; MAX_BYTES + 1]))
                .unwrap_err()
                .0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let bad = Document {
            filename: "a".into(),
            mime_type: "text/plain".into(),
            base64: "@@@".into(),
        };
        assert_eq!(decode(&bad).unwrap_err().0, StatusCode::BAD_REQUEST);
    }
}
