//! Documents sent from the demo's WhatsApp simulator (`/demo/api/send` with a `document`)
//! against the real `frontdesk demo` binary: the file is served by the demo's own fake
//! Graph API, downloaded and read like a file sent on WhatsApp, and answered; the three
//! hostile PDFs end only their sandbox children and the demo answers the next customer;
//! a bad upload gets a clear JSON error and nothing is sent. Also: the demo started again
//! on the same data dir keeps answering.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::support::bin;

const HOSTILE: [(&str, &[u8]); 3] = [
    ("self_xobject", include_bytes!("../fixtures/pdf/self_xobject.pdf")),
    ("nested_arrays", include_bytes!("../fixtures/pdf/nested_arrays.pdf")),
    ("xobject_bomb", include_bytes!("../fixtures/pdf/xobject_bomb.pdf")),
];

/// A running `frontdesk demo` on port 0 with its own data dir (a first start embeds the
/// demo's documents: tens of seconds on a small machine).
struct Demo {
    child: Child,
    base: String,
    client: reqwest::Client,
    dir: Option<tempfile::TempDir>,
}

impl Demo {
    /// Starts the demo with `env` (config overrides) added.
    fn start(env: &[(&str, &str)]) -> Demo {
        Demo::start_in(tempfile::tempdir().unwrap(), env)
    }

    /// Starts the demo on the data dir under `dir` (a second start reuses the first's).
    fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Demo {
        let mut child = Command::new(bin())
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("demo"))
            .env("FRONTDESK_LOG", "warn")
            // The hostile files are stopped sooner than the defaults would (as in hostile_files).
            .env("FRONTDESK__EXTRACT__TIMEOUT_MS", "8000")
            .env("FRONTDESK__EXTRACT__CPU_SECONDS", "4")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let base = crate::support::listening_base(&mut child);
        Demo {
            child,
            base,
            client: reqwest::Client::new(),
            dir: Some(dir),
        }
    }

    /// Stops the demo and hands back its data dir.
    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().unwrap()
    }

    /// Sends `text` as `wa_id` and waits until one more answer of the bot shows as
    /// delivered (or read) in the customer's chat.
    async fn delivered(&self, wa_id: &str, text: &str) -> Vec<Value> {
        let count = |chat: &[Value]| {
            chat.iter()
                .filter(|m| m["direction"] == "out" && matches!(m["status"].as_str(), Some("delivered" | "read")))
                .count()
        };
        let before = count(&self.chat(wa_id).await);
        let (status, body) = self
            .send(&json!({ "wa_id": wa_id, "name": "Customer", "text": text }))
            .await;
        assert_eq!(status, 200, "{body}");
        let start = Instant::now();
        loop {
            let chat = self.chat(wa_id).await;
            if count(&chat) > before {
                return chat;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{wa_id}'s answer was never delivered: {chat:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send(&self, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/demo/api/send", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn chat(&self, wa_id: &str) -> Vec<Value> {
        self.client
            .get(format!("{}/demo/api/chat?wa_id={wa_id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The customer's chat once the bot has answered them.
    async fn answered(&self, wa_id: &str) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let chat = self.chat(wa_id).await;
            if chat.iter().any(|m| m["direction"] == "out") {
                return chat;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{wa_id} was never answered: {chat:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn document(wa_id: &str, filename: &str, mime: &str, bytes: &[u8], caption: &str) -> Value {
    let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({ "wa_id": wa_id, "name": "Customer", "text": caption, "document": { "filename": filename, "mime_type": mime, "base64": base64 } })
}

/// Sends only the head of a `/demo/api/send` request announcing a 9 MB body; returns the
/// answer's status and JSON body.
async fn announce_oversized(base: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.strip_prefix("http://").unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /demo/api/send HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("answered before the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn replies(chat: &[Value]) -> Vec<String> {
    chat.iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_reads_and_answers_a_text_document_from_the_simulator() {
    let demo = Demo::start(&[]);
    let (status, body) = demo
        .send(&document(
            "31612345001",
            "../question.txt",
            "text/plain",
            b"Do you repair e-bikes?",
            "my question",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let chat = demo.answered("31612345001").await;
    // The bubble shows the document by its cleaned name with the caption.
    assert_eq!(chat[0]["type"], "document");
    assert_eq!(
        chat[0]["document"],
        json!({ "filename": "question.txt", "caption": "my question" }),
        "{chat:?}"
    );
    let text = chat[0]["text"].as_str().unwrap();
    assert!(
        text.contains("[document text: Do you repair e-bikes?]"),
        "the file was downloaded and read: {text}"
    );
    let got = replies(&chat);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        !got[0].contains("Could you type"),
        "the document was answered, not refused: {got:?}"
    );
    assert!(got[0].contains("(From: "), "answered from the demo documents: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keeps_answering_after_three_hostile_pdfs_from_the_simulator() {
    let demo = Demo::start(&[]);
    for (i, (name, bytes)) in HOSTILE.iter().enumerate() {
        let (status, body) = demo
            .send(&document(
                &format!("3161234510{i}"),
                &format!("{name}.pdf"),
                "application/pdf",
                bytes,
                "",
            ))
            .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    // A fourth customer types a question and is answered as usual.
    let (status, body) = demo
        .send(&json!({ "wa_id": "31612345199", "name": "Dana", "text": "Do you repair e-bikes?" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let got = replies(&demo.answered("31612345199").await);
    assert!(got[0].contains("(From: "), "{got:?}");
    for (i, (name, _)) in HOSTILE.iter().enumerate() {
        let chat = demo.answered(&format!("3161234510{i}")).await;
        assert_eq!(chat[0]["document"]["filename"], format!("{name}.pdf"), "{chat:?}");
        let got = replies(&chat);
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert!(
            got[0].contains("Could you type your message instead?"),
            "{name}: {got:?}"
        );
    }
    let health = demo.client.get(format!("{}/healthz", demo.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_refuses_bad_uploads_with_a_clear_error() {
    // Refusals need no knowledge base: skip embedding it.
    let demo = Demo::start(&[
        ("FRONTDESK__KNOWLEDGE__EMBEDDER", "none"),
        ("FRONTDESK__ROUTER__CLASSIFIER", "off"),
    ]);
    let wa = "31612345201";
    let cases = [
        (
            document(wa, "photo.png", "image/png", b"\x89PNG\r\n", ""),
            400,
            "only PDF",
        ),
        (
            document(wa, "big.pdf", "application/pdf", &vec![b'%'; 5 * 1024 * 1024 + 1], ""),
            413,
            "larger than 5 MB",
        ),
        (document(wa, "empty.txt", "text/plain", b"", ""), 400, "empty"),
        (
            json!({ "wa_id": wa, "name": "C", "text": "", "document": { "filename": "a.txt", "mime_type": "text/plain", "base64": "@@" } }),
            400,
            "base64",
        ),
        (json!({ "wa_id": wa, "name": "C", "text": "  " }), 400, "text"),
    ];
    for (body, want, says) in cases {
        let (status, answer) = demo.send(&body).await;
        assert_eq!(status, want, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{want}: {answer}");
    }
    // A request announcing more than the body limit gets the same answer, still JSON, before
    // its body is read (the server then closes; a client still writing sees a broken pipe).
    let (status, answer) = announce_oversized(&demo.base).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than 5 MB"),
        "{answer}"
    );
    // Nothing reached the webhook: the customer has no messages.
    assert!(demo.chat(wa).await.is_empty());
}

/// `frontdesk demo` started again on the same data dir (as `./scripts/demo` does) keeps
/// answering: its fake Graph API hands out message ids the first run never gave, so the
/// second run's answers are recorded and delivered (they used to collide with the first
/// run's ids and stay "sending").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_demo_keeps_answering_on_the_same_data_dir() {
    let demo = Demo::start(&[]);
    demo.delivered("31612345301", "what are your opening hours?").await;
    demo.delivered("31612345302", "do you do puncture repairs?").await;
    let demo = Demo::start_in(demo.stop(), &[]);
    let chat = demo.delivered("31612345303", "what are your opening hours?").await;
    assert!(!replies(&chat)[0].is_empty(), "{chat:?}");
    demo.delivered("31612345301", "and on sunday?").await;
}
