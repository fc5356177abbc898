//! A fake OpenAI-compatible transcription server on 127.0.0.1 port 0:
//! `POST /v1/audio/transcriptions` parses the multipart upload as OpenAI does (a `file`
//! part with a name and type, a `model`, optional `response_format` and `language`),
//! records it, and answers from a script (a transcript with a language, or an HTTP error).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

pub const KEY: &str = "sk-fake-whisper";

/// One upload as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub content_type: String,
    pub model: String,
    pub response_format: String,
    pub language: String,
    pub file_name: String,
    pub file_type: String,
    pub file: Vec<u8>,
    pub authorized: bool,
}

#[derive(Debug, Clone)]
pub enum Answer {
    Text { text: String, language: String },
    Status(u16),
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Answer>,
    /// Answer this when the script is empty.
    otherwise: Option<Answer>,
    uploads: Vec<Upload>,
}

#[derive(Clone)]
pub struct FakeTranscriber {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeTranscriber {
    pub async fn start() -> FakeTranscriber {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcribe))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTranscriber { addr, inner }
    }

    /// The value for `media.transcription_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn script(&self, answers: Vec<Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    pub fn otherwise(&self, answer: Answer) {
        self.inner.lock().unwrap().otherwise = Some(answer);
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.inner.lock().unwrap().uploads.clone()
    }
}

async fn transcribe(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, mut form: Multipart) -> Response {
    let mut up = Upload {
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        authorized: headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}")),
        ..Default::default()
    };
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name().unwrap_or_default().to_string().as_str() {
                "file" => {
                    up.file_name = field.file_name().unwrap_or_default().to_string();
                    up.file_type = field.content_type().unwrap_or_default().to_string();
                    up.file = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                }
                "model" => up.model = field.text().await.unwrap_or_default(),
                "response_format" => up.response_format = field.text().await.unwrap_or_default(),
                "language" => up.language = field.text().await.unwrap_or_default(),
                _ => {}
            },
            Ok(None) => break,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": { "message": format!("bad multipart: {e}") } })),
                )
                    .into_response();
            }
        }
    }
    let well_formed = !up.file.is_empty() && !up.model.is_empty();
    let answer = {
        let mut g = inner.lock().unwrap();
        g.uploads.push(up.clone());
        g.script.pop_front().or_else(|| g.otherwise.clone())
    };
    if !well_formed {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "message": "file and model are required" } })),
        )
            .into_response();
    }
    match answer {
        Some(Answer::Text { text, language }) => {
            Json(json!({ "task": "transcribe", "language": language, "duration": 2.1, "text": text })).into_response()
        }
        Some(Answer::Status(code)) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({ "error": { "message": "scripted failure" } })),
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": { "message": "no script left" } })),
        )
            .into_response(),
    }
}
