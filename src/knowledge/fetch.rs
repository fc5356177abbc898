//! `kb add https://…`: fetches one URL with a time limit and a size limit (checked against
//! Content-Length first, then while streaming), picks the parser from the Content-Type
//! (then the URL's extension), and names the document by its URL.

use std::time::Duration;

use super::parse::{CsvColumns, Format, Problem, SourceDoc, parse_bytes};

/// Whether an ingest argument is a URL rather than a path.
pub fn is_url(arg: &str) -> bool {
    arg.starts_with("http://") || arg.starts_with("https://")
}

/// Fetches `url` and parses it; problems name the URL.
pub async fn fetch_documents(url: &str, max_bytes: usize, timeout: Duration, columns: &CsvColumns) -> (Vec<SourceDoc>, Vec<Problem>) {
    let problem = |message: String| (Vec::new(), vec![Problem { source: url.to_string(), line: None, message }]);
    let (bytes, content_type, path) = match fetch(url, max_bytes, timeout).await {
        Ok(x) => x,
        Err(message) => return problem(message),
    };
    let Some(format) = Format::from_content_type(content_type.as_deref(), &path) else {
        return problem(format!(
            "unsupported content type {:?}; URLs must serve HTML, text, Markdown, CSV, JSONL or PDF",
            content_type.unwrap_or_default()
        ));
    };
    let id = url.split('#').next().unwrap_or(url);
    parse_bytes(format, url, id, &bytes, columns)
}

/// The body, its Content-Type and the final URL's path.
async fn fetch(url: &str, max_bytes: usize, timeout: Duration) -> Result<(Vec<u8>, Option<String>, String), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION"), " (knowledge-base ingest)"))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let timed_out = || format!("no complete answer within {} ms (knowledge.fetch_timeout_ms)", timeout.as_millis());
    let mut resp = client.get(url).send().await.map_err(|e| if e.is_timeout() { timed_out() } else { format!("cannot fetch: {e}") })?;
    if !resp.status().is_success() {
        return Err(format!("the server answered {}", resp.status()));
    }
    let too_big = |n: String| format!("larger than knowledge.max_document_bytes ({max_bytes} bytes): {n}");
    if let Some(len) = resp.content_length()
        && len as usize > max_bytes
    {
        return Err(too_big(format!("{len} bytes announced")));
    }
    let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = resp.url().path().to_string();
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_bytes {
                    return Err(too_big("more sent than allowed".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(timed_out()),
            Err(e) => return Err(format!("the download broke off: {e}")),
        }
    }
    Ok((body, content_type, path))
}
