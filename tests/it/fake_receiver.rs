//! A fake receiver of outbound webhooks on 127.0.0.1 port 0 (the team's CRM or n8n):
//! records every request — headers, body, and the status it answered — and answers 500
//! while told to fail (for a number of requests, or until told otherwise), else 200; or
//! misbehaves: a 500 with an endless body, or no answer at all.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Hit {
    pub signature: String,
    pub event_id: String,
    pub event_type: String,
    pub idempotency_key: String,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How a misbehaving receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Misbehave {
    #[default]
    No,
    /// 500 with a body that never ends.
    EndlessBody,
    /// Never answers.
    Hang,
}

#[derive(Default)]
struct Inner {
    hits: Vec<Hit>,
    fail_next: usize,
    failing: bool,
    misbehave: Misbehave,
}

#[derive(Clone)]
pub struct FakeReceiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeReceiver {
    pub async fn start() -> FakeReceiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/hook", post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeReceiver { inner, url }
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.inner.lock().unwrap().fail_next = n;
    }

    /// Answers 500 to every request until set back.
    pub fn set_failing(&self, failing: bool) {
        self.inner.lock().unwrap().failing = failing;
    }

    pub fn misbehave(&self, how: Misbehave) {
        self.inner.lock().unwrap().misbehave = how;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.lock().unwrap().hits.clone()
    }

    /// The event ids answered 200, in order (with repeats, if any).
    pub fn delivered(&self) -> Vec<String> {
        self.hits()
            .into_iter()
            .filter(|h| h.status == 200)
            .map(|h| h.event_id)
            .collect()
    }
}

async fn receive(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, misbehave) = {
        let mut inner = inner.lock().unwrap();
        let fail = inner.failing || inner.fail_next > 0 || inner.misbehave != Misbehave::No;
        inner.fail_next = inner.fail_next.saturating_sub(1);
        let status = if fail { 500 } else { 200 };
        let misbehave = inner.misbehave;
        inner.hits.push(Hit {
            signature: h("x-frontdesk-signature"),
            event_id: h("x-frontdesk-event-id"),
            event_type: h("x-frontdesk-event-type"),
            idempotency_key: h("idempotency-key"),
            body: body.to_vec(),
            status,
        });
        (status, misbehave)
    };
    match misbehave {
        Misbehave::No => StatusCode::from_u16(status).unwrap().into_response(),
        Misbehave::EndlessBody => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let endless = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            (StatusCode::INTERNAL_SERVER_ERROR, Body::from_stream(endless)).into_response()
        }
        Misbehave::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}
