//! What the server and the extract child say to each other: the child reads one JSON
//! request line then the file's bytes on stdin, and answers with a marker line and one
//! JSON response on stdout. The marker tells a frontdesk child from any other program.

use serde::{Deserialize, Serialize};

use crate::knowledge::parse::{CsvColumns, Format, Problem, SourceDoc};

/// The first line of every answer.
pub(super) const MARKER: &str = "frontdesk-extract 1";

/// What to read from the bytes that follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// A customer's document: its text, whitespace collapsed, cut to `max_chars`.
    DocumentText { mime: String, max_chars: usize },
    /// A knowledge-base file: its documents and problems.
    Knowledge {
        format: Format,
        source: String,
        id_base: String,
        columns: CsvColumns,
    },
}

/// The child's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    DocumentText {
        text: Result<String, String>,
    },
    Knowledge {
        docs: Vec<SourceDoc>,
        problems: Vec<Problem>,
    },
}

/// Reads a child's stdout: the marker line, then the response.
pub(super) fn decode_response(out: &[u8]) -> Result<Response, String> {
    let text = std::str::from_utf8(out).map_err(|_| "the reader's answer is not UTF-8".to_string())?;
    let Some(body) = text.strip_prefix(MARKER).and_then(|r| r.strip_prefix('\n')) else {
        return Err("the reader did not answer as a frontdesk extract child".into());
    };
    serde_json::from_str(body).map_err(|e| format!("the reader's answer is not understood: {e}"))
}

/// Writes a response as `decode_response` reads it.
pub(super) fn encode_response(r: &Response) -> Vec<u8> {
    let mut out = format!("{MARKER}\n").into_bytes();
    out.extend(serde_json::to_vec(r).expect("responses always serialize"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_output() {
        let r = Response::DocumentText {
            text: Ok("hello".into()),
        };
        let back = decode_response(&encode_response(&r)).unwrap();
        assert!(matches!(back, Response::DocumentText { text: Ok(t) } if t == "hello"));
        assert!(
            decode_response(b"running 0 tests\n")
                .unwrap_err()
                .contains("did not answer")
        );
        assert!(
            decode_response(format!("{MARKER}\n{{").as_bytes())
                .unwrap_err()
                .contains("not understood")
        );
    }
}
