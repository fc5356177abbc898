//! `kb add https://…`: fetches one URL with a time limit and a size limit (checked against
//! Content-Length first, then while streaming), picks the parser from the Content-Type
//! (then the URL's extension), and names the document by its URL. Only public addresses
//! are fetched unless `knowledge.allow_private_urls` is on: the host is resolved here,
//! every address checked (`domain::address`), and the request pinned to the checked
//! address (no second lookup to rebind); redirects are followed by hand, at most
//! `MAX_REDIRECTS`, each hop checked the same way.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::Url;

use super::parse::{CsvColumns, Format, Problem, SourceDoc, parse_bytes};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Which addresses a fetch may connect to: why one is refused, or `None` when allowed.
pub type AddressCheck = fn(IpAddr) -> Option<&'static str>;

/// The check for `knowledge.allow_private_urls`.
pub fn address_check(allow_private: bool) -> AddressCheck {
    if allow_private {
        |_| None
    } else {
        crate::domain::address::non_public
    }
}

/// Whether an ingest argument is a URL rather than a path.
pub fn is_url(arg: &str) -> bool {
    arg.starts_with("http://") || arg.starts_with("https://")
}

/// Fetches `url` and parses it; problems name the URL.
pub async fn fetch_documents(
    url: &str,
    max_bytes: usize,
    timeout: Duration,
    check: AddressCheck,
    columns: &CsvColumns,
) -> (Vec<SourceDoc>, Vec<Problem>) {
    let problem = |message: String| {
        (
            Vec::new(),
            vec![Problem {
                source: url.to_string(),
                line: None,
                message,
            }],
        )
    };
    let (bytes, content_type, path) = match fetch(url, max_bytes, timeout, check).await {
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

/// The host when it is an IP address (IPv6 in brackets).
fn literal_ip(url: &Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Resolves `url`'s host and checks every address; returns the one to connect to.
async fn checked_address(url: &Url, check: AddressCheck) -> Result<SocketAddr, String> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?;
    let addrs: Vec<SocketAddr> = match literal_ip(url) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    for a in &addrs {
        if let Some(why) = check(a.ip()) {
            let what = if literal_ip(url).is_some() {
                format!("{} is {why}", a.ip())
            } else {
                format!("{host} resolves to {}, {why}", a.ip())
            };
            return Err(format!(
                "refused: {what}; only public addresses are fetched (knowledge.allow_private_urls = true allows this machine and private networks)"
            ));
        }
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// The body, its Content-Type and the final URL's path. Each hop (the URL, then every
/// redirect) is checked and pinned to its checked address.
async fn fetch(
    url: &str,
    max_bytes: usize,
    timeout: Duration,
    check: AddressCheck,
) -> Result<(Vec<u8>, Option<String>, String), String> {
    let deadline = Instant::now() + timeout;
    let timed_out = || {
        format!(
            "no complete answer within {} ms (knowledge.fetch_timeout_ms)",
            timeout.as_millis()
        )
    };
    let mut url = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let mut hops = 0;
    let mut resp = loop {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("refused: {url} is not http(s)"));
        }
        let addr = checked_address(&url, check).await.map_err(|e| {
            if hops == 0 {
                e
            } else {
                format!("the redirect to {url} was {e}")
            }
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(deadline.saturating_duration_since(Instant::now()))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "frontdesk/",
                env!("CARGO_PKG_VERSION"),
                " (knowledge-base ingest)"
            ));
        if literal_ip(&url).is_none()
            && let Some(name) = url.host_str()
        {
            builder = builder.resolve(name, addr);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let resp = client.get(url.clone()).send().await.map_err(|e| {
            if e.is_timeout() {
                timed_out()
            } else {
                format!("cannot fetch: {e}")
            }
        })?;
        if !resp.status().is_redirection() {
            break resp;
        }
        let Some(location) = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            break resp;
        };
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(format!("more than {MAX_REDIRECTS} redirects"));
        }
        url = url
            .join(location)
            .map_err(|e| format!("the redirect to {location:?} is not a URL: {e}"))?;
    };
    if !resp.status().is_success() {
        return Err(format!("the server answered {}", resp.status()));
    }
    let too_big = |n: String| format!("larger than knowledge.max_document_bytes ({max_bytes} bytes): {n}");
    if let Some(len) = resp.content_length()
        && len as usize > max_bytes
    {
        return Err(too_big(format!("{len} bytes announced")));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves on `ip`; `/ok` answers text, `/to?u=URL` redirects there, `/loop` to itself.
    /// Counts requests.
    async fn site(ip: &str) -> (String, Arc<AtomicUsize>) {
        use axum::extract::Query;
        use axum::routing::get;
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new()
            .route(
                "/ok",
                get(|| async { ([("content-type", "text/plain")], "the secret page") }),
            )
            .route(
                "/to",
                get(
                    |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                        axum::response::Redirect::to(&q["u"])
                    },
                ),
            )
            .route("/loop", get(|| async { axum::response::Redirect::to("/loop") }))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    h.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), hits)
    }

    /// As the default check, but 127.0.0.2 stands in for a public server.
    fn public_127_0_0_2(ip: IpAddr) -> Option<&'static str> {
        if ip == IpAddr::from([127, 0, 0, 2]) {
            None
        } else {
            crate::domain::address::non_public(ip)
        }
    }

    #[tokio::test]
    async fn every_hop_is_checked_before_it_is_requested() {
        let (public, _) = site("127.0.0.2").await;
        let (private, private_hits) = site("127.0.0.1").await;
        let t = Duration::from_secs(5);
        let (body, ..) = fetch(&format!("{public}/ok"), 1_000, t, public_127_0_0_2)
            .await
            .unwrap();
        assert_eq!(body, b"the secret page");
        // A redirect to a private address is refused before it is followed.
        let e = fetch(&format!("{public}/to?u={private}/ok"), 1_000, t, public_127_0_0_2)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            format!(
                "the redirect to {private}/ok was refused: 127.0.0.1 is a loopback address (this machine); only public addresses are fetched (knowledge.allow_private_urls = true allows this machine and private networks)"
            )
        );
        let e = fetch(
            &format!("{public}/to?u=http://169.254.169.254/latest/meta-data/"),
            1_000,
            t,
            public_127_0_0_2,
        )
        .await
        .unwrap_err();
        assert!(e.contains("169.254.169.254 is a link-local address"), "{e}");
        let e = fetch(
            &format!("{public}/to?u=http://[::ffff:127.0.0.1]:1/"),
            1_000,
            t,
            public_127_0_0_2,
        )
        .await
        .unwrap_err();
        assert!(e.contains("::ffff:127.0.0.1 is a loopback address"), "{e}");
        let e = fetch(&format!("{public}/to?u=file:///etc/passwd"), 1_000, t, public_127_0_0_2)
            .await
            .unwrap_err();
        assert!(e.contains("file:///etc/passwd is not http(s)"), "{e}");
        let e = fetch(&format!("{public}/loop"), 1_000, t, public_127_0_0_2)
            .await
            .unwrap_err();
        assert_eq!(e, format!("more than {MAX_REDIRECTS} redirects"));
        // A name is resolved and checked too.
        let port = private.rsplit(':').next().unwrap();
        let e = fetch(&format!("http://localhost:{port}/ok"), 1_000, t, public_127_0_0_2)
            .await
            .unwrap_err();
        assert!(
            e.starts_with("refused: localhost resolves to ") && e.contains("loopback"),
            "{e}"
        );
        assert_eq!(
            private_hits.load(Ordering::SeqCst),
            0,
            "nothing reached the private server"
        );
        // With private addresses allowed, the same redirect is followed.
        let (body, _, path) = fetch(&format!("{public}/to?u={private}/ok"), 1_000, t, address_check(true))
            .await
            .unwrap();
        assert_eq!((body.as_slice(), path.as_str()), (&b"the secret page"[..], "/ok"));
        assert_eq!(private_hits.load(Ordering::SeqCst), 1);
    }
}
