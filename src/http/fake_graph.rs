//! A fake WhatsApp Graph API: a real HTTP server (port 0) that the real client talks to
//! in tests and in the demo. It checks the bearer token, accepts sends and returns
//! wamids, sends signed status webhooks back (sent → delivered → read, with delays,
//! optional reordering and duplicates, retried like Meta while the receiver is down),
//! serves media downloads, answers `/me` and `/me/permissions` for token checks (a token
//! without `whatsapp_business_messaging` gets Meta's permission error, code 10, on sends
//! and number reads), fails on request (131047, 131056, 190, 500, slow, a bare 429 with or
//! without `Retry-After`, a reset connection, a late body), and records
//! every request's method, path and query (to prove what was never asked).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::outbound::Recipient;
use crate::whatsapp::signature::sign;

/// A scripted failure for the next send(s).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// Answer with a Graph error object.
    Code { code: i64, http_status: u16, title: String },
    /// Answer after `ms` milliseconds (longer than the client's timeout = a timeout).
    Slow { ms: u64 },
    /// Accept the message (wamid, statuses) but answer only after `ms`: the sender
    /// cannot know Meta has it.
    AcceptThenHang { ms: u64 },
    /// Accept the message but answer with the wamid of the message accepted before it
    /// (what a fake restarted with its counter back at 1 used to do).
    ReuseWamid,
    /// A bare HTTP 429 (plain text, no Graph error object), with a `Retry-After` header
    /// of that many seconds if given.
    RateLimited { retry_after_s: Option<u64> },
    /// A bare HTTP 429 whose `Retry-After` is an HTTP-date (RFC 9110), `in_s` seconds
    /// from now.
    RateLimitedUntil { in_s: u64 },
    /// The connection breaks before a whole answer arrives. With `accepted`, Meta had
    /// already taken the message (wamid, statuses); without, it never saw it.
    Reset { accepted: bool },
    /// Accept the message and send the answer's headers at once, but its body only after
    /// `ms` (longer than the client's timeout = the answer is lost).
    SlowBody { ms: u64 },
}

impl Failure {
    /// A Graph error with Meta's usual HTTP status for that code.
    pub fn code(code: i64) -> Failure {
        let (http_status, title) = match code {
            131047 => (400, "Re-engagement message"),
            131056 => (400, "(Business Account, Consumer Account) pair rate limit hit"),
            130429 => (400, "Rate limit hit"),
            190 => (401, "Error validating access token: Session has expired"),
            131026 => (400, "Message undeliverable"),
            131000 => (500, "Something went wrong"),
            _ => (400, "Error"),
        };
        Failure::Code {
            code,
            http_status,
            title: title.into(),
        }
    }
}

/// One message the fake accepted.
#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    pub phone_number_id: String,
    pub wamid: String,
    pub body: Value,
}

/// What the fake does after accepting a send.
#[derive(Debug, Clone)]
pub struct StatusScript {
    /// (state, delay before it in ms), sent in order.
    pub steps: Vec<(String, u64)>,
    /// Send every status twice.
    pub duplicate: bool,
    /// Send the steps in reverse order (read before delivered before sent).
    pub reverse: bool,
}

impl Default for StatusScript {
    fn default() -> Self {
        StatusScript {
            steps: vec![("sent".into(), 20), ("delivered".into(), 40), ("read".into(), 300)],
            duplicate: false,
            reverse: false,
        }
    }
}

struct FakeState {
    started: std::time::Instant,
    token: String,
    webhook: Option<(String, String)>,
    statuses: Option<StatusScript>,
    failures: VecDeque<Failure>,
    sent: Vec<SentMessage>,
    reads: Vec<Value>,
    media: HashMap<String, (String, Vec<u8>)>,
    /// Media ids whose next byte downloads answer 404 (an expired URL), and how many.
    expire: HashMap<String, u32>,
    /// Media ids served cut short (only this many bytes, the metadata unchanged).
    truncate: HashMap<String, usize>,
    /// Media uploaded by the business (`POST /{phone}/media`): id, type, file name, size.
    uploads: Vec<Upload>,
    media_url_fetches: usize,
    /// Every request received: `METHOD /path?query`, as sent.
    requests: Vec<String>,
    /// When each send request arrived (ms since start), failed or not.
    send_attempts: Vec<u64>,
    /// The permissions `/me/permissions` lists as granted to the token.
    permissions: Vec<String>,
    next: u64,
    /// Makes wamids unique across starts (a demo restarted on the same data dir must not
    /// hand out ids its earlier run already gave).
    run: String,
}

/// The permission sending needs.
const MESSAGING: &str = "whatsapp_business_messaging";

/// A running fake Graph API.
#[derive(Clone)]
pub struct FakeGraph {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeGraph {
    /// Starts on 127.0.0.1:0 accepting `token`.
    pub async fn start(token: &str) -> std::io::Result<FakeGraph> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = FakeGraph {
            addr,
            state: Arc::new(Mutex::new(FakeState {
                started: std::time::Instant::now(),
                token: token.to_string(),
                webhook: None,
                statuses: Some(StatusScript::default()),
                failures: VecDeque::new(),
                sent: Vec::new(),
                reads: Vec::new(),
                media: HashMap::new(),
                expire: Default::default(),
                truncate: Default::default(),
                uploads: Vec::new(),
                media_url_fetches: 0,
                requests: Vec::new(),
                send_attempts: Vec::new(),
                permissions: vec![MESSAGING.into(), "whatsapp_business_management".into()],
                next: 1,
                run: format!("{:x}", crate::domain::now_ms()),
            })),
            http: reqwest::Client::new(),
        };
        let router = Router::new()
            .route("/{version}/{phone}/messages", post(messages))
            .route("/{version}/{phone}/media", post(upload))
            .route("/{version}/{id}", get(object))
            .route("/{version}/me/permissions", get(permissions))
            .route("/_media/{id}", get(media_bytes))
            .route("/_fake/sent", get(list_sent))
            .route("/_fake/fail", post(push_failure))
            .layer(axum::middleware::from_fn_with_state(fake.clone(), record))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(fake)
    }

    /// The base URL to put in `whatsapp.graph_base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().expect("fake graph lock"))
    }

    /// Where (and with which app secret) to send status webhooks.
    pub fn set_webhook(&self, url: &str, app_secret: &str) {
        self.with(|s| s.webhook = Some((url.to_string(), app_secret.to_string())));
    }

    /// The status script, or `None` to send no statuses at all.
    pub fn set_statuses(&self, script: Option<StatusScript>) {
        self.with(|s| s.statuses = script);
    }

    /// The token the fake accepts from now on.
    pub fn set_token(&self, token: &str) {
        self.with(|s| s.token = token.to_string());
    }

    /// The permissions granted to the token (default: messaging and management).
    pub fn set_permissions(&self, permissions: &[&str]) {
        self.with(|s| s.permissions = permissions.iter().map(|p| p.to_string()).collect());
    }

    fn may_message(&self) -> bool {
        self.with(|s| s.permissions.iter().any(|p| p == MESSAGING))
    }

    /// Fail the next `times` sends this way.
    pub fn fail_next(&self, failure: Failure, times: usize) {
        self.with(|s| s.failures.extend(std::iter::repeat_n(failure, times)));
    }

    /// Drops the failures still scripted: the Graph API has recovered.
    pub fn clear_failures(&self) {
        self.with(|s| s.failures.clear());
    }

    /// Messages accepted so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.with(|s| s.sent.clone())
    }

    /// Messages accepted after the first `from` (a long run's collector reads only what is
    /// new).
    pub fn sent_since(&self, from: usize) -> Vec<SentMessage> {
        self.with(|s| s.sent.get(from..).map(<[SentMessage]>::to_vec).unwrap_or_default())
    }

    /// Mark-as-read / typing requests received.
    pub fn reads(&self) -> Vec<Value> {
        self.with(|s| s.reads.clone())
    }

    /// Serves `bytes` as media `id`.
    pub fn add_media(&self, id: &str, mime: &str, bytes: Vec<u8>) {
        self.with(|s| s.media.insert(id.to_string(), (mime.to_string(), bytes)));
    }

    /// The next download of `id`'s bytes fails as an expired URL would.
    pub fn expire_media_url_once(&self, id: &str) {
        self.expire_media_url(id, 1);
    }

    /// The next `times` downloads of `id`'s bytes fail as an expired URL would.
    pub fn expire_media_url(&self, id: &str, times: u32) {
        self.with(|s| *s.expire.entry(id.to_string()).or_default() += times);
    }

    /// Serves only the first `n` bytes of `id` (its metadata still tells the full size).
    pub fn truncate_media(&self, id: &str, n: usize) {
        self.with(|s| s.truncate.insert(id.to_string(), n));
    }

    /// Media uploaded so far.
    pub fn uploads(&self) -> Vec<Upload> {
        self.with(|s| s.uploads.clone())
    }

    /// Every request received so far, as `METHOD /path?query` (path and query as sent).
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// When each send request arrived (ms since the fake started), whatever its answer.
    pub fn send_attempts(&self) -> Vec<u64> {
        self.with(|s| s.send_attempts.clone())
    }

    /// How many media URLs were handed out (step one of a download).
    pub fn media_url_fetches(&self) -> usize {
        self.with(|s| s.media_url_fetches)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let want = self.with(|s| format!("Bearer {}", s.token));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    /// Posts the status script for `wamid` to the webhook, retrying while it is down.
    fn schedule_statuses(&self, phone: &str, wamid: &str, to: &Recipient, callback: Option<String>) {
        let (Some((url, secret)), Some(script)) = self.with(|s| (s.webhook.clone(), s.statuses.clone())) else {
            return;
        };
        let (http, phone, wamid, to) = (self.http.clone(), phone.to_string(), wamid.to_string(), to.clone());
        tokio::spawn(async move {
            let mut steps = script.steps.clone();
            if script.reverse {
                let delays: Vec<u64> = steps.iter().map(|s| s.1).collect();
                steps.reverse();
                for (s, d) in steps.iter_mut().zip(delays) {
                    s.1 = d;
                }
            }
            for (state, delay) in steps {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let ts = crate::domain::now_ms() / 1000;
                let mut status = json!({ "id": wamid, "status": state, "timestamp": ts.to_string(),
                    "pricing": { "billable": false, "pricing_model": "PMP", "category": "service", "type": "free_customer_service" } });
                // Sent to a BSUID: `recipient_id` is empty and `recipient_user_id` holds it.
                match &to {
                    Recipient::Number(n) => status["recipient_id"] = json!(n),
                    Recipient::UserId(u) => {
                        status["recipient_id"] = json!("");
                        status["recipient_user_id"] = json!(u);
                    }
                }
                if let Some(cb) = &callback {
                    status["biz_opaque_callback_data"] = json!(cb);
                }
                let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "FAKE-WABA", "changes": [{ "field": "messages",
                    "value": { "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550000000", "phone_number_id": phone },
                               "statuses": [status] } }] }] })
                .to_string();
                let times = if script.duplicate { 2 } else { 1 };
                for _ in 0..times {
                    deliver(&http, &url, &secret, body.clone()).await;
                }
            }
        });
    }
}

/// Posts one signed webhook, retrying for up to a minute like Meta does.
async fn deliver(http: &reqwest::Client, url: &str, secret: &str, body: String) {
    let sig = sign(secret.as_bytes(), body.as_bytes());
    for _ in 0..200 {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &sig)
            .body(body.clone())
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn graph_error(code: i64, http_status: u16, title: &str) -> Response {
    let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({ "error": { "message": title, "type": "OAuthException", "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": title }, "fbtrace_id": "FAKEtrace" } });
    (status, Json(body)).into_response()
}

async fn messages(
    State(fake): State<FakeGraph>,
    Path((_version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !fake.authorized(&headers) {
        return graph_error(190, 401, "Error validating access token: The session is invalid");
    }
    if !fake.may_message() {
        return no_permission();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(100, 400, "(#100) Invalid JSON");
    };
    if v.get("status").and_then(Value::as_str) == Some("read") {
        fake.with(|s| s.reads.push(v.clone()));
        return Json(json!({ "success": true })).into_response();
    }
    // A number in `to`, or a username-only user's BSUID in `recipient`: exactly one.
    let (number, user_id) = (
        v.get("to").and_then(Value::as_str),
        v.get("recipient").and_then(Value::as_str),
    );
    if v.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") || number.is_some() == user_id.is_some() {
        return graph_error(131008, 400, "Required parameter is missing");
    }
    let failure = fake.with(|s| {
        let at_ms = s.started.elapsed().as_millis() as u64;
        s.send_attempts.push(at_ms);
        s.failures.pop_front()
    });
    let (mut hang, mut reuse, mut slow_body, mut reset) = (0, false, 0, false);
    match failure {
        Some(Failure::Code {
            code,
            http_status,
            title,
        }) => return graph_error(code, http_status, &title),
        Some(Failure::Slow { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return graph_error(131000, 500, "Something went wrong");
        }
        Some(Failure::AcceptThenHang { ms }) => hang = ms,
        Some(Failure::ReuseWamid) => reuse = true,
        Some(Failure::RateLimited { retry_after_s }) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            if let Some(secs) = retry_after_s {
                r.headers_mut().insert("retry-after", secs.into());
            }
            return r;
        }
        Some(Failure::RateLimitedUntil { in_s }) => {
            let until = std::time::SystemTime::now() + Duration::from_secs(in_s);
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            if let Ok(v) = httpdate::fmt_http_date(until).parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        Some(Failure::Reset { accepted: false }) => return broken_answer(),
        Some(Failure::Reset { accepted: true }) => reset = true,
        Some(Failure::SlowBody { ms }) => slow_body = ms,
        None => {}
    }
    let to = match (number, user_id) {
        (Some(n), _) => Recipient::Number(n.to_string()),
        (None, u) => Recipient::UserId(u.unwrap_or_default().to_string()),
    };
    let wamid = fake.with(|s| {
        let wamid = match s.sent.last() {
            Some(last) if reuse => last.wamid.clone(),
            _ => {
                s.next += 1;
                format!("wamid.FAKE{}x{:08}", s.run, s.next - 1)
            }
        };
        let at_ms = s.started.elapsed().as_millis() as u64;
        s.sent.push(SentMessage {
            at_ms,
            phone_number_id: phone.clone(),
            wamid: wamid.clone(),
            body: v.clone(),
        });
        wamid
    });
    let callback = v
        .get("biz_opaque_callback_data")
        .and_then(Value::as_str)
        .map(str::to_string);
    fake.schedule_statuses(&phone, &wamid, &to, callback);
    let to = to.id().to_string();
    if hang > 0 {
        tokio::time::sleep(Duration::from_millis(hang)).await;
    }
    if reset {
        return broken_answer();
    }
    let answer = json!({ "messaging_product": "whatsapp", "contacts": [{ "input": to, "wa_id": to }],
                 "messages": [{ "id": wamid, "message_status": "accepted" }] });
    if slow_body > 0 {
        let late = futures_util::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(slow_body)).await;
            Ok::<_, std::io::Error>(Bytes::from(answer.to_string()))
        });
        return (
            [("content-type", "application/json")],
            axum::body::Body::from_stream(late),
        )
            .into_response();
    }
    Json(answer).into_response()
}

/// An answer whose body fails at once: the server drops the connection mid-answer, so
/// the client sees a reset, never a status it could trust.
fn broken_answer() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ))
    });
    (
        [("content-type", "application/json")],
        axum::body::Body::from_stream(broken),
    )
        .into_response()
}

/// Records every request, matched by a route or not.
async fn record(State(fake): State<FakeGraph>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let line = format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    fake.with(|s| s.requests.push(line));
    next.run(req).await
}

/// Meta's answer to a token without `whatsapp_business_messaging`.
fn no_permission() -> Response {
    graph_error(10, 403, "(#10) Application does not have permission for this action")
}

/// `GET /{version}/me/permissions`: what the token was granted.
async fn permissions(State(fake): State<FakeGraph>, headers: HeaderMap) -> Response {
    if !fake.authorized(&headers) {
        return graph_error(190, 401, "Error validating access token: The session is invalid");
    }
    let data: Vec<Value> = fake.with(|s| {
        s.permissions
            .iter()
            .map(|p| json!({ "permission": p, "status": "granted" }))
            .collect()
    });
    Json(json!({ "data": data })).into_response()
}

/// `GET /{version}/{id}`: the token's system user for `me`, media metadata for a media
/// id, else the phone number (token check).
async fn object(
    State(fake): State<FakeGraph>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !fake.authorized(&headers) {
        return graph_error(190, 401, "Error validating access token: The session is invalid");
    }
    if id == "me" {
        return Json(json!({ "id": "FAKE-SYSTEM-USER", "name": "frontdesk fake system user" })).into_response();
    }
    let media = fake.with(|s| {
        let m = s.media.get(&id).map(|(m, b)| (m.clone(), b.len(), hex_sha(b)));
        if m.is_some() {
            s.media_url_fetches += 1;
        }
        m
    });
    if media.is_none() && !fake.may_message() {
        return no_permission();
    }
    match media {
        Some((mime, len, sha)) => Json(
            json!({ "messaging_product": "whatsapp", "url": format!("{}/_media/{id}", fake.base_url()),
            "mime_type": mime, "sha256": sha, "file_size": len, "id": id }),
        )
        .into_response(),
        None => Json(json!({ "id": id })).into_response(),
    }
}

fn hex_sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn media_bytes(State(fake): State<FakeGraph>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !fake.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "token required").into_response();
    }
    let expired = fake.with(|s| match s.expire.get_mut(&id) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    });
    if expired {
        return (StatusCode::NOT_FOUND, "URL expired").into_response();
    }
    match fake.with(|s| {
        s.media
            .get(&id)
            .cloned()
            .map(|(m, b)| (m, b, s.truncate.get(&id).copied()))
    }) {
        Some((mime, mut bytes, cut)) => {
            if let Some(n) = cut {
                bytes.truncate(n);
            }
            ([("content-type", mime)], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

/// One upload to the media endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    pub id: String,
    pub phone_number_id: String,
    pub mime_type: String,
    pub file_name: String,
    pub size: usize,
    /// The `messaging_product` form field (must be `whatsapp`).
    pub messaging_product: String,
}

/// `POST /{version}/{phone}/media`: multipart `file`, `type`, `messaging_product`; the
/// file becomes downloadable media under the returned id.
async fn upload(
    State(fake): State<FakeGraph>,
    Path((_version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    if !fake.authorized(&headers) {
        return graph_error(190, 401, "Error validating access token: The session is invalid");
    }
    let (mut file, mut mime, mut name, mut product, mut declared) =
        (None, String::new(), String::new(), String::new(), String::new());
    while let Ok(Some(field)) = form.next_field().await {
        match field.name().unwrap_or_default() {
            "file" => {
                mime = field.content_type().unwrap_or_default().to_string();
                name = field.file_name().unwrap_or_default().to_string();
                file = field.bytes().await.ok();
            }
            "type" => declared = field.text().await.unwrap_or_default(),
            "messaging_product" => product = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    let Some(bytes) = file else {
        return graph_error(100, 400, "(#100) The parameter file is required.");
    };
    if product != "whatsapp" {
        return graph_error(100, 400, "(#100) The parameter messaging_product is required.");
    }
    if declared.is_empty() || declared != mime {
        return graph_error(100, 400, "(#100) Param type must match the file's content type.");
    }
    let id = fake.with(|s| {
        s.next += 1;
        let id = format!("upl-{}", s.next);
        s.media.insert(id.clone(), (mime.clone(), bytes.to_vec()));
        s.uploads.push(Upload {
            id: id.clone(),
            phone_number_id: phone,
            mime_type: mime,
            file_name: name,
            size: bytes.len(),
            messaging_product: product,
        });
        id
    });
    Json(json!({ "id": id })).into_response()
}

async fn list_sent(State(fake): State<FakeGraph>) -> Json<Vec<SentMessage>> {
    Json(fake.sent())
}

#[derive(Deserialize)]
struct FailRequest {
    failure: Failure,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

async fn push_failure(State(fake): State<FakeGraph>, Json(req): Json<FailRequest>) -> StatusCode {
    fake.fail_next(req.failure, req.times);
    StatusCode::NO_CONTENT
}
