//! The Graph API client (reqwest + rustls): send messages, mark read with a typing
//! indicator, check the token (`/me`, its permissions, a number), and download media in
//! Meta's two steps.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Secret;

/// Why a Graph call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphError {
    /// Meta answered with an error object (or a bare HTTP error).
    Api {
        http_status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
        title: String,
        /// How long Meta asked us to wait (its `Retry-After` header, in seconds), if it did.
        retry_after_ms: Option<u64>,
    },
    /// No usable answer: connection refused, reset, or timed out. For a send, Meta may or
    /// may not have the message.
    Transport { detail: String, maybe_delivered: bool },
    /// Not sent: the request would have carried the access token somewhere it must not
    /// go (a malformed media id, a download URL off Graph's https). Final.
    Refused(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Api {
                http_status,
                code,
                title,
                ..
            } => match code {
                Some(c) => write!(f, "Graph API error {c} (HTTP {http_status}): {title}"),
                None => write!(f, "Graph API HTTP {http_status}: {title}"),
            },
            GraphError::Transport { detail, .. } => write!(f, "Graph API unreachable: {detail}"),
            GraphError::Refused(why) => write!(f, "not requested: {why}"),
        }
    }
}

/// Metadata of an inbound media object (step one of a download).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub url: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub file_size: Option<u64>,
}

/// A Graph API client for one app; the token can be swapped live.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
    version: String,
    token: Arc<RwLock<Secret>>,
}

impl GraphClient {
    pub fn new(base_url: &str, version: &str, token: Secret, timeout: Duration) -> GraphClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .expect("reqwest client builds");
        GraphClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            version: version.to_string(),
            token: Arc::new(RwLock::new(token)),
        }
    }

    /// Replaces the access token (e.g. after an operator fixed it).
    pub fn set_token(&self, token: Secret) {
        *self.token.write().expect("token lock") = token;
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.read().expect("token lock").expose())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.base_url, self.version, path.trim_start_matches('/'))
    }

    /// POSTs a message body; returns the wamid Meta assigned.
    pub async fn send(&self, phone_number_id: &str, body: &Value) -> Result<String, GraphError> {
        let v = self
            .post_json(&format!("{phone_number_id}/messages"), body, true)
            .await?;
        v.pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| GraphError::Api {
                retry_after_ms: None,
                http_status: 200,
                code: None,
                subcode: None,
                title: format!("no message id in the answer: {v}"),
            })
    }

    /// Uploads a file for sending (`POST /{phone_number_id}/media`, multipart); returns the
    /// media id to send it by (valid 30 days).
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        bytes: Vec<u8>,
        mime: &str,
        file_name: &str,
    ) -> Result<String, GraphError> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str(mime)
            .map_err(|e| GraphError::Api {
                retry_after_ms: None,
                http_status: 400,
                code: None,
                subcode: None,
                title: format!("file type {mime:?}: {e}"),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_string())
            .part("file", part);
        let resp = self
            .http
            .post(self.url(&format!("{phone_number_id}/media")))
            .header("authorization", self.bearer())
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport(e, false))?;
        let v = read_json(resp).await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| GraphError::Api {
                retry_after_ms: None,
                http_status: 200,
                code: None,
                subcode: None,
                title: format!("no media id in the answer: {v}"),
            })
    }

    /// Marks `wamid` read, optionally showing the typing indicator.
    pub async fn mark_read(&self, phone_number_id: &str, wamid: &str, typing: bool) -> Result<(), GraphError> {
        let mut body = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": wamid });
        if typing {
            body["typing_indicator"] = json!({ "type": "text" });
        }
        self.post_json(&format!("{phone_number_id}/messages"), &body, false)
            .await
            .map(|_| ())
    }

    /// Checks the token against the business number (used to resume after error 190).
    pub async fn check_token(&self, phone_number_id: &str) -> Result<(), GraphError> {
        self.get_json(phone_number_id, &[("fields", "id")]).await.map(|_| ())
    }

    /// Who the token belongs to (`GET /me`, `{id, name}`): proves that the Graph API is
    /// reachable and the token valid, without a phone number id.
    pub async fn whoami(&self) -> Result<Value, GraphError> {
        self.get_json("me", &[("fields", "id,name")]).await
    }

    /// The permissions of the token (`GET /me/permissions`): (permission, status) pairs,
    /// status `granted`, `declined` or `expired`.
    pub async fn permissions(&self) -> Result<Vec<(String, String)>, GraphError> {
        let v = self.get_json("me/permissions", &[]).await?;
        Ok(v.get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let name = p.get("permission")?.as_str()?;
                let status = p.get("status").and_then(Value::as_str).unwrap_or("granted");
                Some((name.to_string(), status.to_string()))
            })
            .collect())
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, GraphError> {
        let resp = self
            .http
            .get(self.url(path))
            .query(query)
            .header("authorization", self.bearer())
            .send()
            .await
            .map_err(|e| transport(e, false))?;
        read_json(resp).await
    }

    /// Step one of a media download: the short-lived URL and what Meta says of the file.
    pub async fn media_info(&self, media_id: &str) -> Result<MediaInfo, GraphError> {
        let resp = self
            .http
            .get(self.url(media_id))
            .header("authorization", self.bearer())
            .send()
            .await
            .map_err(|e| transport(e, false))?;
        let v = read_json(resp).await?;
        Ok(MediaInfo {
            url: v.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
            mime_type: v.get("mime_type").and_then(Value::as_str).map(str::to_string),
            sha256: v.get("sha256").and_then(Value::as_str).map(str::to_string),
            file_size: v
                .get("file_size")
                .and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|s| s.parse().ok()))),
        })
    }

    /// Downloads media by id: fetches the URL, then the bytes with the bearer token,
    /// refetching the URL once if it expired (401/403/404). Refuses files over `max_bytes`,
    /// a media id that is not one (before any request) and a download URL that is neither
    /// https nor on the Graph base (before the token goes there).
    pub async fn download_media(&self, media_id: &str, max_bytes: u64) -> Result<(MediaInfo, Vec<u8>), GraphError> {
        if !crate::domain::media::valid_media_id(media_id) {
            let shown: String = media_id.chars().take(64).collect();
            return Err(GraphError::Refused(format!(
                "the webhook's media id {shown:?} is not a Graph media id (1-128 letters, digits, _ or -)"
            )));
        }
        let mut last = None;
        for _ in 0..2 {
            let info = self.media_info(media_id).await?;
            if info.file_size.is_some_and(|s| s > max_bytes) {
                return Err(too_large(max_bytes));
            }
            if !crate::domain::media::download_url_allowed(&info.url, &self.base_url) {
                let shown: String = info.url.chars().take(100).collect();
                return Err(GraphError::Refused(format!(
                    "the media URL Graph gave ({shown:?}) is not https, so the access token is not sent to it"
                )));
            }
            let resp = self
                .http
                .get(&info.url)
                .header("authorization", self.bearer())
                .send()
                .await
                .map_err(|e| transport(e, false))?;
            let status = resp.status().as_u16();
            if matches!(status, 401 | 403 | 404) {
                last = Some(GraphError::Api {
                    retry_after_ms: None,
                    http_status: status,
                    code: None,
                    subcode: None,
                    title: "media URL expired or refused".into(),
                });
                continue;
            }
            if status >= 400 {
                return Err(GraphError::Api {
                    retry_after_ms: None,
                    http_status: status,
                    code: None,
                    subcode: None,
                    title: "media download failed".into(),
                });
            }
            let mut resp = resp;
            // One allocation of the announced size (never over the limit), not a doubling
            // series of copies.
            let announced = info.file_size.or(resp.content_length()).unwrap_or(0).min(max_bytes + 1);
            let mut bytes = Vec::with_capacity(announced as usize);
            while let Some(chunk) = resp.chunk().await.map_err(|e| transport(e, false))? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > max_bytes {
                    return Err(too_large(max_bytes));
                }
            }
            return Ok((info, bytes));
        }
        Err(last.expect("loop ran"))
    }

    async fn post_json(&self, path: &str, body: &Value, is_send: bool) -> Result<Value, GraphError> {
        let resp = self
            .http
            .post(self.url(path))
            .header("authorization", self.bearer())
            .json(body)
            .send()
            .await
            .map_err(|e| transport(e, is_send))?;
        read_json(resp).await
    }
}

fn too_large(max: u64) -> GraphError {
    GraphError::Api {
        retry_after_ms: None,
        http_status: 413,
        code: None,
        subcode: None,
        title: format!("media is larger than the {max}-byte limit"),
    }
}

fn transport(e: reqwest::Error, is_send: bool) -> GraphError {
    // A request that never connected cannot have reached Meta; anything later might have.
    let maybe_delivered = is_send && !e.is_connect() && !e.is_builder();
    // The causes say what failed (DNS, refused, TLS); reqwest's own line only that it did.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail = format!("{detail}: {text}");
        }
        source = cause.source();
    }
    if e.is_timeout() {
        detail = format!("timed out: {detail}");
    }
    GraphError::Transport {
        detail,
        maybe_delivered,
    }
}

async fn read_json(resp: reqwest::Response) -> Result<Value, GraphError> {
    let status = resp.status().as_u16();
    let retry_after_ms = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after_ms(v, std::time::SystemTime::now()));
    let text = resp.text().await.map_err(|e| GraphError::Transport {
        detail: e.to_string(),
        maybe_delivered: true,
    })?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status >= 400 || v.get("error").is_some() {
        let e = v.get("error");
        let title = e
            .and_then(|e| e.get("message").and_then(Value::as_str))
            .or_else(|| e.and_then(|e| e.get("error_user_title")).and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(200).collect());
        return Err(GraphError::Api {
            http_status: status,
            code: e.and_then(|e| e.get("code")).and_then(Value::as_i64),
            subcode: e.and_then(|e| e.get("error_subcode")).and_then(Value::as_i64),
            title,
            retry_after_ms,
        });
    }
    Ok(v)
}

/// A `Retry-After` header (RFC 9110 §10.2.3) as milliseconds to wait from `now`: either
/// delay-seconds or an HTTP-date (any of the three date formats; a date already past is
/// no wait). The send worker caps it like the seconds form.
fn retry_after_ms(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1_000));
    }
    let until = httpdate::parse_http_date(value).ok()?;
    let wait = until.duration_since(now).unwrap_or_default();
    Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::retry_after_ms;

    #[test]
    fn retry_after_is_read_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(retry_after_ms("2", now), Some(2_000));
        assert_eq!(retry_after_ms(" 0 ", now), Some(0));
        assert_eq!(retry_after_ms("-1", now), None);
        assert_eq!(retry_after_ms("1.5", now), None);
        assert_eq!(retry_after_ms("", now), None);
    }

    #[test]
    fn retry_after_is_read_as_an_http_date() {
        // Wed, 21 Oct 2015 07:28:00 GMT, RFC 9110's example.
        let date = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let before = |s: u64| date - Duration::from_secs(s);
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", before(90)),
            Some(90_000)
        );
        // The obsolete forms a recipient must accept.
        assert_eq!(
            retry_after_ms("Wednesday, 21-Oct-15 07:28:00 GMT", before(2)),
            Some(2_000)
        );
        assert_eq!(retry_after_ms("Wed Oct 21 07:28:00 2015", before(2)), Some(2_000));
        // Sub-second distance to the date is kept.
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", date - Duration::from_millis(1_500)),
            Some(1_500)
        );
        // A date in the past: no wait.
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", date + Duration::from_secs(5)),
            Some(0)
        );
        // Far ahead: read as it is (the send worker caps it).
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", before(86_400)),
            Some(86_400_000)
        );
        // Not a date.
        assert_eq!(retry_after_ms("Wed, 32 Oct 2015 07:28:00 GMT", before(1)), None);
        assert_eq!(retry_after_ms("tomorrow", before(1)), None);
    }
}
