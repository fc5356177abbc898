//! Typed configuration: embedded defaults < config.toml < `FRONTDESK__SECTION__KEY`
//! environment variables. Unknown keys are errors; secrets are redacted everywhere.

mod load;
mod model;
mod redact;
mod secret;
mod validate;

pub use load::ENV_PREFIX;
pub use model::{ModelRef, Price};
pub use redact::Redactor;
pub use secret::{Secret, random_token};

/// What keyword-only retrieval costs, said wherever the embedder is off.
pub const NO_EMBEDDER_WARNING: &str = "Retrieval is keyword-only (knowledge.embedder = \"none\"): the bot will miss questions worded differently from your documents.";
pub use validate::{Problem, Severity};

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a customer's unusable media leads to (`media.on_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MediaFailure {
    /// A polite request to type the message instead.
    #[default]
    AskText,
    /// A person takes over.
    Handoff,
}

/// The router's classifier for messages no rule matched (`router.classifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    /// No classifier: unmatched messages take the default route.
    #[default]
    Off,
    /// Nearest centroid over embeddings of the labelled examples.
    Centroid,
    /// Distance-weighted vote of the nearest labelled examples.
    Knn,
    /// A label call on the commodity tier.
    ZeroShot,
}

impl ClassifierKind {
    /// Centroid and kNN compare embeddings: they need labelled examples and an embedder.
    pub fn uses_embeddings(self) -> bool {
        matches!(self, ClassifierKind::Centroid | ClassifierKind::Knn)
    }
}

impl std::fmt::Display for ClassifierKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClassifierKind::Off => "off",
            ClassifierKind::Centroid => "centroid",
            ClassifierKind::Knn => "knn",
            ClassifierKind::ZeroShot => "zero_shot",
        })
    }
}

/// How the ACME CA checks that this server answers for its domains (`server.acme.challenge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AcmeChallenge {
    /// Answered on `server.listen` (port 443).
    #[default]
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// Answered on `server.acme.http_listen` (port 80).
    #[serde(rename = "http-01")]
    Http01,
}

impl std::fmt::Display for AcmeChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Http01 => "http-01",
        })
    }
}

/// Where vectors for the knowledge base come from (`knowledge.embedder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 on the CPU.
    #[default]
    Local,
    /// A remote OpenAI-compatible `/v1/embeddings` endpoint (`[knowledge.remote]`).
    Openai,
    /// No vectors: keyword (BM25) retrieval only.
    None,
}

/// The whole configuration of one frontdesk instance.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub whatsapp: WhatsAppConfig,
    pub queue: QueueConfig,
    pub workers: WorkersConfig,
    pub send: SendConfig,
    pub bot: BotConfig,
    pub knowledge: KnowledgeConfig,
    pub engine: EngineConfig,
    pub llm: LlmConfig,
    pub router: RouterConfig,
    pub auth: AuthConfig,
    pub inbox: InboxConfig,
    pub log: LogConfig,
    pub media: MediaConfig,
    pub extract: ExtractConfig,
    pub webhooks: WebhooksConfig,
}

/// The sandbox that reads untrusted files (customers' documents, uploaded knowledge-base
/// files): each is parsed in a child process of this binary with its own memory, CPU and
/// wall-clock limits, so a hostile file can crash or stall only that child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractConfig {
    /// The frontdesk binary run as the child (`frontdesk extract`); empty means this
    /// program itself.
    pub binary: PathBuf,
    /// Wall-clock limit per file, in milliseconds; the child is killed past it.
    pub timeout_ms: u64,
    /// Address-space limit of the child, in MiB (RLIMIT_AS).
    pub memory_mb: u64,
    /// CPU-time limit of the child, in seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Children running at once; further files wait their turn.
    pub max_parallel: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            binary: PathBuf::new(),
            timeout_ms: 20_000,
            memory_mb: 512,
            cpu_seconds: 15,
            max_parallel: 2,
        }
    }
}

/// Outbound webhooks: endpoints of the team's other tools that receive signed JSON
/// events (docs/webhooks.md), delivered through the journal with retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// `[[webhooks.endpoints]]`: at most `MAX_WEBHOOK_ENDPOINTS`.
    pub endpoints: Vec<WebhookEndpoint>,
    /// Time allowed for one delivery (connect, send, answer headers), in milliseconds.
    pub timeout_ms: u64,
    /// Attempts per event before it is a dead letter (`frontdesk queue dead`).
    pub max_attempts: u32,
    /// Undelivered events kept per endpoint; past it new events for that endpoint are
    /// dropped and counted (`frontdesk_webhook_events_dropped_total`).
    pub max_pending: u32,
}

/// Most endpoints one instance delivers to.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 10;

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            endpoints: Vec::new(),
            timeout_ms: 10_000,
            max_attempts: 15,
            max_pending: 10_000,
        }
    }
}

/// One receiver of outbound webhooks.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// A short name, unique among the endpoints (shown in logs and `frontdesk queue`).
    pub name: String,
    /// `https://…`; `http://` only to a loopback address.
    pub url: String,
    /// The HMAC-SHA256 key of `X-Frontdesk-Signature`; at least 16 characters.
    pub secret: Secret,
    /// The event types it receives; empty means all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Inbound media: download limits, what to do when a file cannot be understood, and the
/// services that turn voice notes and images into text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Largest file downloaded per type, in bytes (WhatsApp's own limits by default).
    pub max_image_bytes: u64,
    pub max_audio_bytes: u64,
    pub max_video_bytes: u64,
    pub max_document_bytes: u64,
    /// When a customer's only message is media the bot cannot use (too large, wrong
    /// type, expired, a service down, a video): `ask_text` (a polite request to type it)
    /// or `handoff` (a person takes over).
    pub on_failure: MediaFailure,
    /// How long a reply waits for the media of its burst to be read, in milliseconds.
    pub reply_wait_ms: u64,
    /// Attempts for a media job whose failure may pass (Graph or a service down).
    pub max_attempts: u32,
    /// Stored files of media older than this many days are deleted (the message and its
    /// transcript stay); 0 keeps them.
    pub retention_days: u32,
    /// OpenAI-compatible transcription API base URL (OpenAI `https://api.openai.com/v1`,
    /// a whisper.cpp or faster-whisper server); `/audio/transcriptions` is appended.
    /// Empty = voice notes are not transcribed.
    pub transcription_url: String,
    pub transcription_model: String,
    pub transcription_api_key: Secret,
    /// A language hint (ISO 639-1, e.g. `nl`); empty = the service detects it.
    pub transcription_language: String,
    pub transcription_timeout_ms: u64,
    /// Vision-capable models describing images, `provider:model` from `[llm.providers]`,
    /// tried in order. Empty = images are not described (their caption still counts).
    pub vision_models: Vec<String>,
    /// Longest document text kept as the turn's text, in characters.
    pub document_max_chars: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_image_bytes: 5 * 1024 * 1024,
            max_audio_bytes: 16 * 1024 * 1024,
            max_video_bytes: 16 * 1024 * 1024,
            max_document_bytes: 100 * 1024 * 1024,
            on_failure: MediaFailure::AskText,
            reply_wait_ms: 45_000,
            max_attempts: 3,
            retention_days: 90,
            transcription_url: String::new(),
            transcription_model: "whisper-1".into(),
            transcription_api_key: Secret::default(),
            transcription_language: String::new(),
            transcription_timeout_ms: 30_000,
            vision_models: Vec::new(),
            document_max_chars: 4_000,
        }
    }
}

impl MediaConfig {
    /// The download limit for a media type.
    pub fn max_bytes(&self, media_type: &str) -> u64 {
        match media_type {
            "image" => self.max_image_bytes,
            "audio" => self.max_audio_bytes,
            "video" => self.max_video_bytes,
            _ => self.max_document_bytes,
        }
    }
}

/// The agent inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// Ready answers agents pick in the composer (`[[inbox.canned_replies]]`).
    pub canned_replies: Vec<CannedReply>,
    /// How long an agent stays listed as viewing a conversation after their page's last
    /// heartbeat (the collision warning; the page beats every third of this).
    pub presence_ttl_ms: u64,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            canned_replies: Vec::new(),
            presence_ttl_ms: 30_000,
        }
    }
}

/// One canned reply: a short title for the picker and the text it puts in the composer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CannedReply {
    pub title: String,
    pub text: String,
}

/// Browser sessions and logins of the inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session unused this long ends.
    pub session_idle_minutes: f64,
    /// A session ends this long after login, used or not.
    pub session_max_hours: f64,
    /// Failed logins for one email from one client address within the window before
    /// that pair is refused (429) until the window passes; a client address gets four
    /// times as many over all emails.
    pub login_max_failures: usize,
    /// Failed logins for one email from all addresses together within the window (a
    /// brake on guessing from many addresses; locking a user out takes this many).
    pub login_max_failures_per_email: usize,
    pub login_window_minutes: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_minutes: 12.0 * 60.0,
            session_max_hours: 7.0 * 24.0,
            login_max_failures: 5,
            login_max_failures_per_email: 100,
            login_window_minutes: 15.0,
        }
    }
}

impl AuthConfig {
    pub fn idle_ms(&self) -> i64 {
        (self.session_idle_minutes * 60_000.0) as i64
    }
    pub fn max_ms(&self) -> i64 {
        (self.session_max_hours * 3_600_000.0) as i64
    }
    pub fn window_ms(&self) -> i64 {
        (self.login_window_minutes * 60_000.0) as i64
    }
}

/// How messages are routed (seed layer 2): rules, then a classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Rules tried in order (`[[router.rules]]`; live: `router.rules`). None: the built-in
    /// sensitive-topics rule (disputes, complaints, legal, safety → reasoning).
    pub rules: Vec<RuleConfig>,
    /// When no rule matches: `off`, `centroid` (nearest centroid over embeddings of the
    /// labelled examples; needs an embedder), `knn` (distance-weighted vote of the nearest
    /// examples; needs an embedder) or `zero_shot` (a label call on the commodity tier).
    pub classifier: ClassifierKind,
    /// JSONL of `{"text","label"}`: the centroid classifier's examples (zero-shot takes
    /// its label list from here and from `label_routes`).
    pub examples: Option<PathBuf>,
    /// Centroid / kNN: below this cosine similarity no label applies (the message routes as if
    /// unclassified).
    pub min_similarity: f32,
    /// Where each label goes: `commodity`, `reasoning` or `handoff`; labels not listed go
    /// to `commodity`.
    pub label_routes: std::collections::BTreeMap<String, String>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            rules: Vec::new(),
            classifier: ClassifierKind::Off,
            examples: None,
            min_similarity: 0.4,
            label_routes: Default::default(),
        }
    }
}

/// One routing rule: keywords (whole words, any case) or a regex, and a route.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    pub name: String,
    pub keywords: Vec<String>,
    pub regex: String,
    /// `commodity`, `reasoning` or `handoff`.
    pub route: String,
}

impl RouterConfig {
    /// The rules as the live setting's text, one per line.
    pub fn rules_text(&self) -> String {
        if self.rules.is_empty() {
            return crate::domain::router::default_rules();
        }
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = if r.name.is_empty() {
                    format!("rule{}", i + 1)
                } else {
                    r.name
                        .replace(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'), "_")
                };
                crate::domain::router::rule_line(&name, &r.keywords, &r.regex, &r.route)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Model providers, tiers and prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// `[llm.providers.NAME]`: each a kind, base URL, key and timeout.
    pub providers: std::collections::BTreeMap<String, ProviderConfig>,
    /// Ordered fallback chains per tier, `NAME:model` (live: `tier.commodity`, `tier.reasoning`).
    pub tiers: TiersConfig,
    /// USD per million tokens, on top of the built-in list prices.
    pub prices: std::collections::BTreeMap<String, Price>,
    /// Retries per model call on 429/5xx/overloaded (with backoff) before the next model.
    pub max_retries: u32,
    /// Consecutive failures that open a provider's circuit, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    /// Longest answer a model may write, in tokens.
    pub max_output_tokens: u32,
    /// Tool-call rounds per reply before the bot hands off.
    pub max_tool_rounds: u32,
    /// Extra instructions appended to the built-in system prompt (tone, policies).
    pub instructions: String,
    /// Longest reply sent, in characters.
    pub max_reply_chars: usize,
    /// HTTP tools the model may call (`[[llm.tools]]`).
    pub tools: Vec<ToolConfig>,
}

/// One HTTP tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolConfig {
    /// `[a-z0-9_]`, up to 64 characters; what the model calls it.
    pub name: String,
    /// What it does and when to use it (the model reads this).
    pub description: String,
    /// JSON schema of the arguments (a TOML table in the config file).
    pub parameters: serde_json::Value,
    /// `GET` (arguments only in the URL) or `POST` (arguments also as the JSON body).
    pub method: String,
    /// URL with `{argument}` placeholders; `{customer_wa_id}` is filled by the engine.
    pub url: String,
    /// Request headers; values may name environment variables as `${VAR}`.
    pub headers: std::collections::BTreeMap<String, Secret>,
    pub timeout_ms: u64,
    pub max_response_bytes: usize,
    /// The letters that start the identifiers this tool looks up (`["SS"]` for order
    /// numbers like SS-10421): the offline responder then also reads `ss 10421`,
    /// `SS10421`, `#10421` and `order 10421` as SS-10421. Empty: only the dashed form.
    pub id_prefixes: Vec<String>,
}

impl Default for ToolConfig {
    fn default() -> Self {
        ToolConfig {
            name: String::new(),
            description: String::new(),
            parameters: serde_json::json!({ "type": "object", "properties": {} }),
            method: "GET".into(),
            url: String::new(),
            headers: Default::default(),
            timeout_ms: 5_000,
            max_response_bytes: 16_384,
            id_prefixes: Vec::new(),
        }
    }
}

impl LlmConfig {
    /// The providers a model chain may name: those under `[llm.providers]` and `offline`.
    pub fn provider_names(&self) -> Vec<String> {
        self.providers
            .keys()
            .cloned()
            .chain(std::iter::once("offline".to_string()))
            .collect()
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            providers: Default::default(),
            tiers: TiersConfig::default(),
            prices: Default::default(),
            max_retries: 2,
            breaker_failures: 3,
            breaker_cooldown_ms: 30_000,
            max_output_tokens: 500,
            max_tool_rounds: 3,
            instructions: String::new(),
            max_reply_chars: 1_000,
            tools: Vec::new(),
        }
    }
}

/// One model provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// `anthropic`, `openai` (any OpenAI-compatible server) or `offline`.
    pub kind: String,
    /// e.g. `https://api.anthropic.com`, `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub api_key: Secret,
    /// How long one request to this provider may take, in milliseconds (a local model on
    /// a small machine needs minutes, not the 20 s a hosted API gets).
    pub timeout_ms: u64,
    /// Whether a request that timed out is sent again (`llm.max_retries` times). Off: a
    /// timed-out request usually keeps the server busy, so the next model in the chain
    /// is asked instead.
    pub retry_on_timeout: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            kind: String::new(),
            base_url: String::new(),
            api_key: Secret::default(),
            timeout_ms: 20_000,
            retry_on_timeout: false,
        }
    }
}

/// Fallback chains per tier. Empty means the offline responder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TiersConfig {
    pub commodity: Vec<String>,
    pub reasoning: Vec<String>,
}

/// How the conversation engine answers and when it hands off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Sent once when a conversation is handed to a person.
    pub bridge_text: String,
    /// The approved template (a `whatsapp.templates` name, no parameters) sent instead of
    /// the bridge text when a handoff comes after the 24-hour window closed, when Meta
    /// would refuse free text, or when Meta refuses a queued bridge text because the window
    /// closed before it went out (131047) (empty = none: nothing is sent, the conversation
    /// is flagged).
    pub bridge_template: String,
    /// Sent instead of the bridge text when the documents do not answer the question
    /// (handoff `no_answer`): the bot says it does not know and that a person will reply.
    pub unknown_text: String,
    /// Below this retrieval similarity (cosine, 0..1) the bot hands off instead of answering.
    pub confidence_threshold: f64,
    /// With a model: when no passage retrieved for a question is at least this similar
    /// (cosine, 0..1), the documents do not answer it — the customer gets `unknown_text`
    /// and a person answers, instead of a reply built from the nearest passage. 0 = off.
    /// (The offline responder uses `confidence_threshold`.)
    pub answer_floor: f64,
    /// A question that asks several things is searched part by part; the passages of
    /// all parts together are at most this many (at least `retrieval_k`).
    pub max_passages: usize,
    /// Passages retrieved per customer message.
    pub retrieval_k: usize,
    /// Start with the bot switched off (live setting `kill_switch`).
    pub kill_switch: bool,
    /// What customers get while the kill switch is on.
    pub static_reply: String,
    /// Wait this long after a customer message for more before answering (0 = off).
    pub debounce_ms: u64,
    /// The longest a burst can delay an answer.
    pub debounce_max_ms: u64,
    /// After a hand-back, the same trigger does not hand off again for this long (unless
    /// the customer asks for a person): no handoff loops.
    pub handoff_cooldown_ms: u64,
    /// Hand person-owned conversations back to the bot after this many minutes without a
    /// message (0 = never; fractions allowed).
    pub auto_handback_minutes: f64,
    /// A Slack incoming-webhook URL notified of each handoff (empty = off).
    pub slack_webhook_url: Secret,
    /// Daily model spend limits in USD, per contact and overall (0 = no limit; live:
    /// budget.contact_daily_usd, budget.global_daily_usd).
    pub budget_contact_daily_usd: f64,
    pub budget_global_daily_usd: f64,
    /// Daily model token limits (input + output), per contact and overall (0 = no limit;
    /// live: budget.contact_daily_tokens, budget.global_daily_tokens).
    pub budget_contact_daily_tokens: u64,
    pub budget_global_daily_tokens: u64,
    /// Refresh the conversation's rolling summary when the history older than the last
    /// six turns and not yet summarised passes this many (estimated) input tokens.
    pub summary_after_tokens: usize,
    /// The longest a reply may take from the start of its job, in milliseconds: model
    /// calls, tool rounds and a repair included. When it runs out the conversation is
    /// handed to a person and the bridge text is sent (trigger `model_unavailable`).
    pub reply_budget_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bridge_text: "I'm pulling in a teammate; they'll reply within 4 hours.".into(),
            bridge_template: String::new(),
            unknown_text: "Sorry, I don't have that information, and I'd rather not guess. I've asked a teammate, who will reply here within 4 hours.".into(),
            confidence_threshold: 0.5,
            answer_floor: 0.1,
            max_passages: 6,
            retrieval_k: 4,
            kill_switch: false,
            static_reply: "Thanks for your message! Our assistant is offline right now; a teammate will reply as soon as possible.".into(),
            debounce_ms: 2_000,
            debounce_max_ms: 8_000,
            handoff_cooldown_ms: 30 * 60 * 1000,
            auto_handback_minutes: 0.0,
            slack_webhook_url: Secret::default(),
            budget_contact_daily_usd: 0.0,
            budget_global_daily_usd: 0.0,
            budget_contact_daily_tokens: 0,
            budget_global_daily_tokens: 0,
            summary_after_tokens: 4_000,
            reply_budget_ms: 120_000,
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` or `0.0.0.0:443`.
    pub listen: String,
    /// The URL Meta and agents use to reach this server (used in links and `doctor`).
    pub public_url: String,
    /// Largest accepted webhook body in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// How long shutdown waits for in-flight requests and jobs, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed (their IP addresses, e.g.
    /// `["127.0.0.1"]` behind a local Caddy or nginx). Empty: the peer address is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve HTTPS from these PEM files (the full certificate chain, the private key);
    /// both empty = plain HTTP (behind a TLS reverse proxy).
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    /// Connections served at once (HTTP and HTTPS together); past that, new ones wait
    /// in the kernel's queue until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, counted from the
    /// connection opening or the end of the previous response (so it is also how long
    /// an idle keep-alive connection stays open), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Certificates from an ACME CA (Let's Encrypt) instead of files.
    pub acme: AcmeConfig,
}

/// Built-in HTTPS with certificates from an ACME CA, renewed in the background. Issued
/// certificates and the CA account live in `data_dir/acme/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// Public host names to get a certificate for (they must resolve to this server); empty
    /// = ACME is off.
    pub domains: Vec<String>,
    /// Contact address given to the CA (expiry warnings), e.g. `ops@example.com`.
    pub email: String,
    /// The CA's directory URL.
    pub directory_url: String,
    /// `tls-alpn-01` (answered on `server.listen`, which must be reachable on port 443) or
    /// `http-01` (answered on `http_listen`, which must be reachable on port 80).
    pub challenge: AcmeChallenge,
    /// Plain-HTTP listener for `http-01` (e.g. `0.0.0.0:80`); it answers challenges and
    /// redirects everything else to `server.public_url`.
    pub http_listen: String,
    /// Extra root certificate (PEM) trusted when talking to the CA (a private or test CA).
    pub ca_root_file: PathBuf,
    /// Renew when the certificate has fewer days left than this.
    pub renew_before_days: u32,
    /// How often the certificate is checked for renewal, in minutes.
    pub check_every_minutes: u64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            domains: Vec::new(),
            email: String::new(),
            directory_url: "https://acme-v02.api.letsencrypt.org/directory".into(),
            challenge: AcmeChallenge::TlsAlpn01,
            http_listen: String::new(),
            ca_root_file: PathBuf::new(),
            renew_before_days: 30,
            check_every_minutes: 720,
        }
    }
}

impl AcmeConfig {
    /// Whether certificates come from ACME.
    pub fn enabled(&self) -> bool {
        !self.domains.is_empty()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            body_limit_bytes: 3 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            trusted_proxies: Vec::new(),
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            acme: AcmeConfig::default(),
        }
    }
}

/// Where the two store files live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory holding `frontdesk.db` (SQLite) and `queue.redb`. A relative path is
    /// taken relative to the config file's directory.
    pub data_dir: PathBuf,
    /// Scheduled backups go here (`backup-<unix ms>` directories); empty = none. A
    /// relative path is taken relative to the config file's directory.
    pub backup_dir: PathBuf,
    /// Hours between scheduled backups.
    pub backup_every_hours: f64,
    /// Scheduled backups kept (the oldest beyond this are deleted).
    pub backup_keep: usize,
    /// Messages (and their delivery records, finished sends and reply traces) older than
    /// this many days are deleted in the background; 0 keeps everything.
    pub message_retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            backup_dir: PathBuf::new(),
            backup_every_hours: 24.0,
            backup_keep: 7,
            message_retention_days: 0,
        }
    }
}

/// The WhatsApp Cloud API app and number(s).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsAppConfig {
    /// Meta app secret: the HMAC key for `X-Hub-Signature-256`.
    pub app_secret: Secret,
    /// The token typed into the App Dashboard for the GET handshake.
    pub verify_token: Secret,
    /// System-user access token for the Graph API.
    pub access_token: Secret,
    /// Graph API base URL (tests and the demo point it at a local fake).
    pub graph_base_url: String,
    /// Pinned Graph API version, e.g. `v23.0`.
    pub api_version: String,
    /// Business phone number ids served; empty accepts every number the app receives.
    pub phone_number_ids: Vec<String>,
    /// Timeout for one Graph API request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Approved message templates agents may send outside the 24-hour window.
    pub templates: Vec<TemplateConfig>,
}

/// An approved WhatsApp template, as registered with Meta.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's name in WhatsApp Manager.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// How many `{{n}}` body parameters it takes.
    #[serde(default)]
    pub params: usize,
    /// What it says, for the agent picking one.
    #[serde(default)]
    pub description: String,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        WhatsAppConfig {
            app_secret: Secret::default(),
            verify_token: Secret::default(),
            access_token: Secret::default(),
            graph_base_url: "https://graph.facebook.com".into(),
            api_version: "v23.0".into(),
            phone_number_ids: Vec::new(),
            request_timeout_ms: 15_000,
            templates: Vec::new(),
        }
    }
}

/// The redb journal and job queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// How long a delivery's dedupe keys are kept (Meta retries for up to 7 days).
    pub dedupe_ttl_hours: u64,
    /// Attempts before a job moves to the dead-letter table.
    pub max_attempts: u32,
    /// How long a claimed job stays invisible to other workers unless renewed.
    pub lease_ms: u64,
    /// First retry delay; doubles each attempt, with jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// Most operations folded into one durable commit.
    pub group_commit_max_batch: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            dedupe_ttl_hours: 8 * 24,
            max_attempts: 8,
            lease_ms: 30_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 5 * 60_000,
            group_commit_max_batch: 1024,
        }
    }
}

/// Sending: rate limits, retries and crash reconciliation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// Messages per second per business number (Meta's default is 80); 0 = no cap.
    pub number_rate_per_s: f64,
    /// One message per this many ms to the same customer (Meta's pair limit); 0 = none.
    pub pair_interval_ms: u64,
    /// Messages allowed at once to one customer before the pair interval applies.
    pub pair_burst: u32,
    /// After a send whose outcome is unknown (crash or timeout mid-request), wait this
    /// long for Meta's status webhook before sending again.
    pub reconcile_grace_ms: u64,
    /// While sending is paused for a bad token, check it this often.
    pub token_probe_interval_ms: u64,
    /// Mark customer messages read (and show typing) when the bot starts on them.
    pub read_receipts: bool,
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            number_rate_per_s: 80.0,
            pair_interval_ms: 6_000,
            pair_burst: 3,
            reconcile_grace_ms: 60_000,
            token_probe_interval_ms: 30_000,
            read_receipts: true,
        }
    }
}

/// The bot that answers customers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotConfig {
    /// Answer customers at all (false: store messages only, for a human-only desk).
    pub enabled: bool,
    /// The business name used in replies.
    pub business_name: String,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            enabled: true,
            business_name: "our team".into(),
        }
    }
}

/// The knowledge base: embeddings, chunking and retrieval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// `local` (all-MiniLM-L6-v2 on the CPU), `openai` (a remote OpenAI-compatible
    /// `/v1/embeddings` endpoint, see `[knowledge.remote]`) or `none` (BM25 only).
    pub embedder: EmbedderKind,
    /// The remote embedding endpoint, for `embedder = "openai"`.
    pub remote: RemoteEmbedderConfig,
    /// Directory with model.safetensors, tokenizer.json and config.json; unset = look in
    /// /usr/share/frontdesk/model, then ./models/all-MiniLM-L6-v2.
    pub model_dir: Option<PathBuf>,
    /// Chunk size to aim for, the most, and the overlap carried to the next chunk (tokens).
    pub chunk_target_tokens: usize,
    pub chunk_max_tokens: usize,
    pub chunk_overlap_tokens: usize,
    /// Reciprocal rank fusion constant.
    pub rrf_k: f64,
    /// Weight of the keyword (BM25) ranking in the fusion; the vector ranking weighs 1.
    pub bm25_weight: f64,
    /// Candidates each ranker contributes to the fusion.
    pub candidates: usize,
    /// Largest document fetched from a URL, in bytes.
    pub max_document_bytes: usize,
    /// Time allowed to fetch one URL, in milliseconds.
    pub fetch_timeout_ms: u64,
    /// Whether `kb add URL` may fetch from this machine and private networks (loopback,
    /// 10/8, 172.16/12, 192.168/16, link-local and cloud metadata, CGNAT, fc00::/7, …).
    /// Off: only public addresses, checked for every redirect too.
    pub allow_private_urls: bool,
    /// Diversity (maximal marginal relevance) over vector and hybrid results: 1.0 is pure
    /// relevance (off); lower values trade relevance for variety (0.7 is typical).
    pub mmr_lambda: f64,
    /// Vector search first pass: `auto` (binary-quantized first pass with exact rescoring
    /// once the index holds `quantized_min_chunks` chunks), `on`, or `off` (exact only).
    pub quantized: String,
    pub quantized_min_chunks: usize,
    /// Candidates the quantized pass keeps per requested result, rescored exactly.
    pub rescore_factor: usize,
}

/// An OpenAI-compatible embeddings endpoint (OpenAI, Ollama, vLLM, llama.cpp server).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteEmbedderConfig {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Bearer key; empty for endpoints without auth.
    pub api_key: Secret,
    /// Model name sent in each request.
    pub model: String,
    /// Vector length the model returns (checked on every response).
    pub dimensions: usize,
    pub timeout_ms: u64,
    /// Texts per request.
    pub batch_size: usize,
}

impl Default for RemoteEmbedderConfig {
    fn default() -> Self {
        RemoteEmbedderConfig {
            base_url: String::new(),
            api_key: Secret::default(),
            model: String::new(),
            dimensions: 0,
            timeout_ms: 30_000,
            batch_size: 64,
        }
    }
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig {
            embedder: EmbedderKind::Local,
            model_dir: None,
            chunk_target_tokens: 250,
            chunk_max_tokens: 400,
            chunk_overlap_tokens: 60,
            rrf_k: 60.0,
            bm25_weight: 1.0,
            candidates: 50,
            max_document_bytes: 5 * 1024 * 1024,
            fetch_timeout_ms: 20_000,
            allow_private_urls: false,
            mmr_lambda: 1.0,
            quantized: "auto".into(),
            quantized_min_chunks: 20_000,
            rescore_factor: 20,
            remote: RemoteEmbedderConfig::default(),
        }
    }
}

/// How many workers of each kind run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Workers turning journal jobs into stored messages and statuses.
    pub ingest: usize,
    /// Jobs one ingest worker claims at a time (applied in one SQLite transaction).
    pub ingest_batch: usize,
    /// Workers sending outbound messages to the Graph API.
    pub send: usize,
    /// Workers composing bot replies.
    pub reply: usize,
    /// Workers downloading and reading inbound media.
    pub media: usize,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            ingest: 2,
            ingest_batch: 64,
            send: 8,
            reply: 2,
            media: 2,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `frontdesk=debug,info`.
    pub level: String,
    /// OpenTelemetry trace export over OTLP/HTTP: the full traces URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (Jaeger, Grafana Tempo, an OTel collector) or
    /// Langfuse's `/api/public/otel/v1/traces`; empty = off.
    pub otlp_endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub otlp_protocol: String,
    /// Headers sent with every export (e.g. `Authorization = "Basic …"` for Langfuse);
    /// never logged.
    pub otlp_headers: std::collections::BTreeMap<String, Secret>,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
            otlp_endpoint: String::new(),
            otlp_protocol: "http/protobuf".into(),
            otlp_headers: Default::default(),
            service_name: "frontdesk".into(),
        }
    }
}

impl Config {
    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.server.listen.parse().map_err(|e| {
            Error::Invalid(format!(
                "server.listen = {:?} is not an address like 127.0.0.1:8080: {e}",
                self.server.listen
            ))
        })
    }

    /// Path of the SQLite database.
    pub fn sqlite_path(&self) -> PathBuf {
        self.storage.data_dir.join("frontdesk.db")
    }

    /// Path of the redb journal.
    pub fn queue_path(&self) -> PathBuf {
        self.storage.data_dir.join("queue.redb")
    }

    /// Path of the control file (address + token) the CLI uses to reach a running server.
    pub fn control_file_path(&self) -> PathBuf {
        self.storage.data_dir.join("control.json")
    }

    /// The merged configuration as TOML, with every secret replaced by `***`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_toml_str_layers_over_defaults_and_refuses_unknown_keys() {
        let c = Config::from_toml_str("[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9");
        assert_eq!(c.extract.timeout_ms, ExtractConfig::default().timeout_ms);
        let e = Config::from_toml_str("[server]\nlisen = 1\n").unwrap_err().to_string();
        assert!(e.contains("configuration:") && e.contains("lisen"), "{e}");
        let e = Config::from_toml_str("[server").unwrap_err().to_string();
        assert!(e.contains("configuration:"), "{e}");
    }
}
