//! Fake model providers on 127.0.0.1 port 0: the Anthropic Messages API and an
//! OpenAI-compatible chat completions endpoint, each answering from a script (replies,
//! tool calls, HTTP errors, delays, malformed output, a body that stalls or is not JSON)
//! in the provider's own JSON, or with a standing answer once the script is used up, and
//! recording every request with its headers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// A structured reply.
    Reply {
        reply: String,
        handoff: bool,
        confidence: f64,
    },
    /// Any JSON object as the final answer (labels, summaries).
    Json(Value),
    /// Raw final text that is not the reply structure.
    Malformed(String),
    /// A call to a tool.
    Tool { name: String, arguments: Value },
    /// An HTTP error status (529 = Anthropic "overloaded").
    Status(u16),
    /// Wait, then do the step.
    Delay(u64, Box<Step>),
    /// A 200 whose headers and first bytes come at once, the rest of the body only after
    /// this many ms: a stream that hangs mid-answer.
    StallBody(u64),
    /// A 200 whose body is not JSON at all (cut off mid-object).
    NotJson,
}

pub fn reply(text: &str, confidence: f64) -> Step {
    Step::Reply {
        reply: text.into(),
        handoff: false,
        confidence,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Anthropic,
    OpenAi,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Step>,
    /// The answer once the script is used up (none: a "no script left" malformed reply).
    otherwise: Option<Step>,
    requests: Vec<(HeaderMap, Value)>,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub kind: Kind,
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

pub const KEY: &str = "sk-fake-llm";

impl FakeLlm {
    pub async fn start(kind: Kind) -> FakeLlm {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let path = match kind {
            Kind::Anthropic => "/v1/messages",
            Kind::OpenAi => "/v1/chat/completions",
        };
        let app = Router::new()
            .route(path, post(handle))
            .with_state((kind, inner.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLlm { kind, addr, inner }
    }

    /// The base URL as configured for this kind.
    pub fn base_url(&self) -> String {
        match self.kind {
            Kind::Anthropic => format!("http://{}", self.addr),
            Kind::OpenAi => format!("http://{}/v1", self.addr),
        }
    }

    pub fn script(&self, steps: Vec<Step>) {
        self.inner.lock().unwrap().script.extend(steps);
    }

    /// What every request gets once the script is used up: a provider that keeps failing,
    /// hangs, or has recovered.
    pub fn otherwise(&self, step: Step) {
        self.inner.lock().unwrap().otherwise = Some(step);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|r| r.1.clone())
            .collect()
    }

    pub fn headers(&self, i: usize) -> HeaderMap {
        self.inner.lock().unwrap().requests[i].0.clone()
    }
}

async fn handle(
    State((kind, inner)): State<(Kind, Arc<Mutex<Inner>>)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let step = {
        let mut g = inner.lock().unwrap();
        g.requests.push((headers.clone(), body.clone()));
        let otherwise = g.otherwise.clone();
        g.script
            .pop_front()
            .or(otherwise)
            .unwrap_or_else(|| Step::Malformed("(the fake has no script left)".into()))
    };
    let authorized = match kind {
        Kind::Anthropic => {
            headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(KEY)
                && headers.get("anthropic-version").is_some()
        }
        Kind::OpenAi => headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}")),
    };
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "type": "authentication_error", "message": "invalid key" } })),
        )
            .into_response();
    }
    answer(kind, step, &body).await
}

async fn answer(kind: Kind, step: Step, body: &Value) -> Response {
    let step = match step {
        Step::Delay(ms, next) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            *next
        }
        s => s,
    };
    let model = body["model"].clone();
    let usage_a = json!({ "input_tokens": 600, "output_tokens": 200 });
    let usage_o = json!({ "prompt_tokens": 600, "completion_tokens": 200, "total_tokens": 800 });
    match (kind, step) {
        (_, Step::Status(code)) => {
            let kind_name = if code == 529 { "overloaded_error" } else if code == 429 { "rate_limit_error" } else { "api_error" };
            (StatusCode::from_u16(code).unwrap(), Json(json!({ "type": "error", "error": { "type": kind_name, "message": "scripted" } }))).into_response()
        }
        (Kind::Anthropic, Step::Reply { reply, handoff, confidence }) => Json(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "stop_reason": "tool_use", "usage": usage_a,
            "content": [{ "type": "tool_use", "id": "toolu_reply", "name": "reply",
                          "input": { "reply": reply, "handoff": handoff, "reason": "scripted", "confidence": confidence, "sources": [] } }]
        }))
        .into_response(),
        (Kind::Anthropic, Step::Json(v)) => Json(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "stop_reason": "tool_use", "usage": usage_a,
            "content": [{ "type": "tool_use", "id": "toolu_reply", "name": "reply", "input": v }]
        }))
        .into_response(),
        (Kind::OpenAi, Step::Json(v)) => Json(json!({ "id": "chatcmpl-fake", "object": "chat.completion", "model": model, "usage": usage_o,
            "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": v.to_string() } }] }))
        .into_response(),
        (Kind::Anthropic, Step::Malformed(text)) => Json(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "stop_reason": "end_turn", "usage": usage_a,
            "content": [{ "type": "text", "text": text }]
        }))
        .into_response(),
        (Kind::Anthropic, Step::Tool { name, arguments }) => Json(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "stop_reason": "tool_use", "usage": usage_a,
            "content": [{ "type": "tool_use", "id": "toolu_1", "name": name, "input": arguments }]
        }))
        .into_response(),
        (Kind::OpenAi, Step::Reply { reply, handoff, confidence }) => {
            let content = json!({ "reply": reply, "handoff": handoff, "reason": "scripted", "confidence": confidence, "sources": [] }).to_string();
            Json(json!({ "id": "chatcmpl-fake", "object": "chat.completion", "model": model, "usage": usage_o,
                "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": content } }] }))
            .into_response()
        }
        (Kind::OpenAi, Step::Malformed(text)) => Json(json!({ "id": "chatcmpl-fake", "object": "chat.completion", "model": model, "usage": usage_o,
            "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": text } }] }))
        .into_response(),
        (Kind::OpenAi, Step::Tool { name, arguments }) => Json(json!({ "id": "chatcmpl-fake", "object": "chat.completion", "model": model, "usage": usage_o,
            "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
                "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": name, "arguments": arguments.to_string() } }] } }] }))
        .into_response(),
        (_, Step::StallBody(ms)) => {
            let chunks = futures_util::stream::unfold(0u8, move |i| async move {
                match i {
                    0 => Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"id\": \"msg_fake\", ")), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Some((Ok(bytes::Bytes::from_static(b"\"content\": []}")), 2))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from_stream(chunks))
                .unwrap()
        }
        (_, Step::NotJson) => (
            [("content-type", "application/json")],
            "{\"id\": \"msg_fake\", \"content\": [{\"type\": \"te",
        )
            .into_response(),
        (_, Step::Delay(..)) => unreachable!("one level of delay"),
    }
}
