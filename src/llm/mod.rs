//! Model providers behind one trait: the Anthropic Messages API, OpenAI-compatible chat
//! completions (OpenAI, Ollama, vLLM, llama.cpp server), and — outside this module, in
//! the engine — the offline responder. Each remote provider is a real HTTP client with a
//! timeout and retries with backoff on 429/5xx/overloaded; `Models` adds a circuit
//! breaker per provider and walks a tier's ordered fallback chain.

pub mod anthropic;
pub mod openai;
pub mod price;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tracing::Instrument;

use serde_json::Value;

use crate::config::{LlmConfig, ProviderConfig};
use crate::domain::circuit::CircuitBreaker;

pub use crate::config::ModelRef;

/// A tool the model may call.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments.
    pub parameters: Value,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// One item of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    User(String),
    /// An image from the customer (media messages), sent as a user content part.
    Image {
        media_type: String,
        base64: String,
    },
    Assistant(String),
    /// The model's earlier tool calls, and then their results.
    ToolCalls(Vec<ToolCall>),
    ToolResults(Vec<(String, String)>),
}

/// What to ask a model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub items: Vec<Item>,
    pub tools: Vec<ToolDef>,
    /// JSON schema the final answer must follow.
    pub reply_schema: Value,
    pub max_tokens: u32,
}

/// What the model answered: its final answer (raw JSON text, parsed strictly by the
/// caller) or tool calls to run first.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Reply(String),
    ToolCalls(Vec<ToolCall>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub output: Output,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// A provider failure: whether another attempt may help, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmError {
    pub retryable: bool,
    pub message: String,
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type ChatFuture<'a> = Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>>;

/// A model provider.
pub trait Provider: Send + Sync {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> ChatFuture<'a>;
}

/// Longest `reason` a reply may give, in characters (the schema's limit; the parser
/// keeps whatever it gets).
pub const MAX_REASON_CHARS: usize = 300;

/// The reply every model must give, as a JSON schema carrying the constraints the parser
/// enforces: `confidence` within 0..1, `sources` only the passage ids offered this turn
/// (`sources`; none offered: an empty list), `reply` at most `max_reply_chars`. Servers
/// that constrain decoding with the schema (llama.cpp, vLLM, Ollama, OpenAI) then cannot
/// produce most of the slips the parser would otherwise have to forgive. That `reply` is
/// empty exactly when `handoff` is true is not expressed: strict schema subsets refuse a
/// top-level `anyOf`, so the parser checks it.
pub fn reply_schema(sources: &[String], max_reply_chars: usize) -> Value {
    let source_items = if sources.is_empty() {
        serde_json::json!({ "type": "string" })
    } else {
        serde_json::json!({ "type": "string", "enum": sources })
    };
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["reply", "handoff", "reason", "confidence", "sources"],
        "properties": {
            "reply": { "type": "string", "maxLength": max_reply_chars, "description": "The message to send the customer (empty when handing off)." },
            "handoff": { "type": "boolean", "description": "true when a person should take over." },
            "reason": { "type": "string", "maxLength": MAX_REASON_CHARS, "description": "Why you answered or handed off, in one sentence." },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1, "description": "0 to 1: how sure you are the reply is right and complete." },
            "sources": { "type": "array", "items": source_items, "maxItems": sources.len(), "description": "Ids of the passages the reply relies on." }
        }
    })
}

/// The keywords `strict_subset` leaves out.
const LIMIT_KEYWORDS: [&str; 6] = ["maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum"];

/// `schema` without length, count and range limits, for an API whose strict mode refuses
/// some of them (OpenAI's own has changed which over time; one refused keyword fails
/// every request). The `enum` of sources stays; the parser still enforces the limits.
pub fn strict_subset(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !LIMIT_KEYWORDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strict_subset(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strict_subset).collect()),
        other => other.clone(),
    }
}

/// When a provider's call is tried again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// More attempts after the first, on 429/5xx/overloaded and connection errors.
    pub retries: u32,
    /// Whether a timed-out request is also tried again. Off by default: a request that
    /// timed out is usually still running on the server (a local model serves one at a
    /// time), so a second one only queues behind it.
    pub on_timeout: bool,
    /// Retries made, for /metrics (shared by every provider of `Models`).
    pub counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RetryPolicy {
    pub fn new(retries: u32, p: &ProviderConfig, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> RetryPolicy {
        RetryPolicy {
            retries,
            on_timeout: p.retry_on_timeout,
            counter,
        }
    }
}

/// Sends a request built by `build` (fresh per attempt), retrying retryable failures with
/// exponential backoff: at most `policy.retries` more attempts; a timeout only when the
/// policy says so.
pub(crate) async fn send_with_retry(
    policy: &RetryPolicy,
    build: impl Fn() -> reqwest::RequestBuilder,
    what: &str,
) -> Result<(reqwest::StatusCode, Value), LlmError> {
    let mut attempt = 0;
    loop {
        let result: Result<std::convert::Infallible, (LlmError, Option<u64>)> = match build().send().await {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let text = match resp.text().await {
                    Ok(t) => t,
                    // The timeout covers the body too: a server that stalls mid-answer.
                    Err(e) if e.is_timeout() && !policy.on_timeout => {
                        return Err(LlmError {
                            retryable: false,
                            message: format!("{what}: timed out"),
                        });
                    }
                    Err(_) => String::new(),
                };
                if status.is_success() {
                    return serde_json::from_str(&text).map(|v| (status, v)).map_err(|e| LlmError {
                        retryable: true,
                        message: format!("{what}: unreadable response ({e}): {}", excerpt(&text)),
                    });
                }
                // 429 rate limit, 5xx, and Anthropic's 529 "overloaded" are worth another try.
                let retryable = status.as_u16() == 429 || status.is_server_error();
                Err((
                    LlmError {
                        retryable,
                        message: format!("{what}: {status}: {}", excerpt(&text)),
                    },
                    retry_after,
                ))
            }
            Err(e) => Err((
                LlmError {
                    retryable: !e.is_timeout() || policy.on_timeout,
                    message: format!(
                        "{what}: {}",
                        if e.is_timeout() {
                            "timed out".to_string()
                        } else {
                            e.to_string()
                        }
                    ),
                },
                None,
            )),
        };
        let Err((err, retry_after)) = result;
        if !err.retryable || attempt >= policy.retries {
            return Err(err);
        }
        attempt += 1;
        policy.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // On the `llm` span of `Models::chat` (OpenTelemetry export shows it).
        tracing::Span::current().record("retries", attempt);
        tracing::info!(attempt, error = %err, "model call failed; retrying");
        let backoff = retry_after.map(|s| s.min(10) * 1000).unwrap_or(200 * (1 << attempt));
        tokio::time::sleep(Duration::from_millis(backoff)).await;
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The configured providers with a circuit breaker each.
pub struct Models {
    /// USD per million tokens: list prices with the config's on top.
    pub prices: std::collections::BTreeMap<String, price::Price>,
    providers: HashMap<String, (String, Box<dyn Provider>)>,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
    threshold: u32,
    cooldown_ms: i64,
    /// Calls, tokens, cost and latency by model, for /metrics.
    pub usage: crate::metrics::ModelUsage,
    /// Model calls tried again after a failure (429, 5xx, a dropped connection), for /metrics.
    pub retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The providers' API keys, blanked out of their error messages (a provider may echo
    /// the key it refused), which go to logs, traces and the inbox.
    redactor: crate::config::Redactor,
}

/// One attempt along a chain, for the trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub model: String,
    pub outcome: String,
    /// A tool call's arguments (tool attempts only): the trace shows what was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
}

impl Models {
    pub fn from_config(config: &LlmConfig) -> crate::error::Result<Models> {
        let mut providers: HashMap<String, (String, Box<dyn Provider>)> = HashMap::new();
        let retries = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let policy = |p: &ProviderConfig| RetryPolicy::new(config.max_retries, p, retries.clone());
        for (name, p) in &config.providers {
            let client: Box<dyn Provider> = match p.kind.as_str() {
                "anthropic" => Box::new(anthropic::Anthropic::new(p, policy(p))?),
                "openai" => Box::new(openai::OpenAi::new(p, policy(p))?),
                "offline" => continue,
                other => {
                    return Err(crate::Error::Invalid(format!(
                        "llm.providers.{name}.kind = {other:?} is not anthropic, openai or offline"
                    )));
                }
            };
            providers.insert(name.clone(), (p.kind.clone(), client));
        }
        let mut prices = price::defaults();
        prices.extend(config.prices.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(Models {
            prices,
            providers,
            breakers: Mutex::default(),
            threshold: config.breaker_failures,
            cooldown_ms: config.breaker_cooldown_ms as i64,
            usage: Default::default(),
            retries,
            redactor: crate::config::Redactor::new(config.providers.values().map(|p| p.api_key.expose().to_string())),
        })
    }

    /// Whether `provider` names a remote provider (anything else is the offline responder).
    pub fn is_remote(&self, provider: &str) -> bool {
        self.providers.contains_key(provider)
    }

    /// The names of the configured providers (a tier naming none of them is offline).
    pub fn remote_providers(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    /// Asks each model of `chain` in order until one answers; skips providers whose
    /// circuit is open. Returns the answer with the model that gave it, and every attempt.
    pub async fn chat(
        &self,
        chain: &[ModelRef],
        req: &ChatRequest,
        now_ms: impl Fn() -> i64,
    ) -> (Result<(ChatResponse, ModelRef), LlmError>, Vec<Attempt>) {
        let mut attempts = Vec::new();
        let mut last = LlmError {
            retryable: false,
            message: "no remote model in the chain".into(),
        };
        for m in chain {
            let Some((_, provider)) = self.providers.get(&m.provider) else {
                continue;
            };
            let allowed = {
                let mut b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
                b.entry(m.provider.clone())
                    .or_insert_with(|| CircuitBreaker::new(self.threshold, self.cooldown_ms))
                    .allow(now_ms())
            };
            if !allowed {
                attempts.push(Attempt {
                    model: m.to_string(),
                    outcome: "skipped: circuit open".into(),
                    args: None,
                });
                continue;
            }
            let mut r = req.clone();
            r.model = m.model.clone();
            let started = std::time::Instant::now();
            // `gen_ai.*` are OpenTelemetry's generative-AI attributes (Langfuse shows them as a
            // generation with its model and token counts).
            let span = tracing::info_span!(
                "llm",
                "gen_ai.system" = %m.provider,
                "gen_ai.request.model" = %m.model,
                "gen_ai.usage.input_tokens" = tracing::field::Empty,
                "gen_ai.usage.output_tokens" = tracing::field::Empty,
                retries = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            let result = provider.chat(&r).instrument(span.clone()).await.map_err(|mut e| {
                e.message = self.redactor.redact(&e.message).into_owned();
                e
            });
            match &result {
                Ok(resp) => {
                    span.record("gen_ai.usage.input_tokens", resp.tokens_in);
                    span.record("gen_ai.usage.output_tokens", resp.tokens_out);
                }
                Err(e) => {
                    span.record("error", tracing::field::display(e));
                }
            }
            let ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(resp) => self.usage.record(
                    &m.to_string(),
                    true,
                    ms,
                    resp.tokens_in,
                    resp.tokens_out,
                    price::cost(&self.prices, &m.model, resp.tokens_in, resp.tokens_out),
                ),
                Err(_) => self.usage.record(&m.to_string(), false, ms, 0, 0, 0.0),
            }
            let mut b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
            let breaker = b
                .entry(m.provider.clone())
                .or_insert_with(|| CircuitBreaker::new(self.threshold, self.cooldown_ms));
            match result {
                Ok(resp) => {
                    breaker.success();
                    attempts.push(Attempt {
                        model: m.to_string(),
                        outcome: "ok".into(),
                        args: None,
                    });
                    return (Ok((resp, m.clone())), attempts);
                }
                Err(e) => {
                    breaker.failure(now_ms());
                    tracing::warn!(model = %m, error = %e, "model call failed; trying the next in the chain");
                    attempts.push(Attempt {
                        model: m.to_string(),
                        outcome: format!("failed: {e}"),
                        args: None,
                    });
                    last = e;
                }
            }
        }
        (Err(last), attempts)
    }

    /// The circuit state per provider, for /metrics and the status API.
    pub fn circuits(&self, now_ms: i64) -> Vec<(String, bool)> {
        let b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, bool)> = b
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    matches!(v.state(), crate::domain::circuit::State::Open { until_ms } if until_ms > now_ms),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Builds an HTTP client for a provider.
pub(crate) fn http_client(p: &ProviderConfig) -> crate::error::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(p.timeout_ms))
        .connect_timeout(Duration::from_millis(p.timeout_ms.min(10_000)))
        .build()
        .map_err(|e| crate::Error::internal("building a model HTTP client", e))
}
