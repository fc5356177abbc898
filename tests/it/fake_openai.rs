//! A fake OpenAI-compatible server on 127.0.0.1 port 0: `/v1/embeddings` answers with
//! deterministic bag-of-words vectors (unnormalised, rows in reverse order, as servers may
//! send them), checks the bearer key, records each request, and can be told to fail the
//! next requests with given status codes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const KEY: &str = "sk-fake-embeddings";

#[derive(Default)]
struct Inner {
    dim: usize,
    /// Status codes to answer with before answering normally.
    failures: Vec<u16>,
    /// Input count of every request that was answered normally.
    batches: Vec<usize>,
    /// Every request seen, failed or not.
    requests: usize,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

/// The fake's embedding of `text`: word hashes into `dim` buckets, scaled by 3 (not unit length).
pub fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let h = w
            .to_lowercase()
            .bytes()
            .fold(7usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
        v[h % dim] += 3.0;
    }
    v
}

impl FakeOpenAi {
    pub async fn start(dim: usize) -> FakeOpenAi {
        let inner = Arc::new(Mutex::new(Inner {
            dim,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeOpenAi { addr, inner }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn fail_next(&self, codes: &[u16]) {
        self.inner.lock().unwrap().failures.extend_from_slice(codes);
    }

    pub fn set_dim(&self, dim: usize) {
        self.inner.lock().unwrap().dim = dim;
    }

    pub fn batches(&self) -> Vec<usize> {
        self.inner.lock().unwrap().batches.clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }
}

async fn embeddings(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mut g = inner.lock().unwrap();
    g.requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "message": "Incorrect API key provided" } })),
        )
            .into_response();
    }
    if !g.failures.is_empty() {
        let code = g.failures.remove(0);
        return (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({ "error": { "message": "scripted failure" } })),
        )
            .into_response();
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": { "message": "input must be a string or array" } })),
            )
                .into_response();
        }
    };
    if body["model"].as_str().unwrap_or("").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "message": "model is required" } })),
        )
            .into_response();
    }
    g.batches.push(inputs.len());
    let dim = g.dim;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({ "object": "embedding", "index": i, "embedding": fake_vector(t, dim) }))
        .collect();
    Json(json!({ "object": "list", "data": data, "model": body["model"], "usage": { "prompt_tokens": 1, "total_tokens": 1 } })).into_response()
}
