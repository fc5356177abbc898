//! OpenTelemetry export with the real binary: a local OTLP collector stub (a real HTTP
//! server) receives the spans of a webhook's whole path (webhook, ingest, reply with its
//! route and outcome, retrieval, the model call with its `gen_ai.*` model and token
//! attributes, the send) with the service name and the configured header, as
//! OTLP/JSON and as OTLP/protobuf; the last batch arrives on a clean stop.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;

use crate::fake_llm::{FakeLlm, KEY, Kind, reply};
use crate::support::{BinServer, SECRET, TOKEN, text_webhook, write_config_file};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A collector stub answering `POST /v1/traces`; returns its URL and what it received.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let r = r.clone();
            async move {
                r.lock().unwrap().push((headers, body));
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1/traces"), received)
}

/// Runs the binary with export on, sends one customer question, waits for the reply's
/// trace row, stops it with SIGTERM; returns what the collector received.
async fn run_with_export(protocol: &str) -> Vec<(HeaderMap, Bytes)> {
    let dir = tempfile::tempdir().unwrap();
    let graph = frontdesk::http::fake_graph::FakeGraph::start(TOKEN).await.unwrap();
    let (endpoint, received) = collector().await;
    let llm = FakeLlm::start(Kind::OpenAi).await;
    llm.script(vec![reply("We're open 9:00 to 17:00 on Saturdays.", 0.95)]);
    let extra = format!(
        "access_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n[llm.providers.openai]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{KEY}\"\n[llm.tiers]\ncommodity = [\"openai:gpt-4o-mini\"]\nreasoning = [\"openai:gpt-4o-mini\"]\n[log]\notlp_endpoint = \"{endpoint}\"\notlp_protocol = \"{protocol}\"\nservice_name = \"frontdesk-otel-test\"\n[log.otlp_headers]\nauthorization = \"Basic b3RlbDp0ZXN0\"\n",
        graph.base_url(),
        llm.base_url()
    );
    let config = write_config_file(dir.path(), &extra);
    let mut server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let body = text_webhook(
        "P1",
        "31655501234",
        "wamid.otel-1",
        "What are your opening hours on Saturday?",
    );
    let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let store = crate::support::open_store(&dir.path().join("data"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        // The reply traced and accepted by the Graph API: the send batch's span is done too
        // (a stop leaves jobs still queued for the next start, and their spans with them).
        let (traces, sent): (i64, i64) = store
            .read(|c| {
                Ok((
                    c.query_row("SELECT COUNT(*) FROM reply_traces", [], |r| r.get(0))?,
                    c.query_row("SELECT COUNT(*) FROM outbound WHERE wamid IS NOT NULL", [], |r| {
                        r.get(0)
                    })?,
                ))
            })
            .await
            .unwrap();
        if traces > 0 && sent > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reply sent within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The batch exporter waits up to 5 s; a clean stop sends what is buffered.
    assert!(server.sigterm().success());
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "the collector received nothing");
    for (headers, _) in &got {
        assert_eq!(
            headers["authorization"], "Basic b3RlbDp0ZXN0",
            "the configured header is sent"
        );
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_as_json_and_protobuf() {
    let got = run_with_export("http/json").await;
    let mut names = Vec::new();
    let mut reply_attributes = Vec::new();
    let mut llm_attributes = Vec::new();
    let mut trace_of = std::collections::HashMap::new();
    for (headers, body) in &got {
        assert_eq!(headers["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_slice(body).expect("OTLP/JSON body");
        for rs in v["resourceSpans"].as_array().unwrap() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "service.name")
                .unwrap();
            assert_eq!(service["value"]["stringValue"], "frontdesk-otel-test");
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for span in ss["spans"].as_array().unwrap() {
                    let name = span["name"].as_str().unwrap().to_string();
                    assert_eq!(span["traceId"].as_str().unwrap().len(), 32, "{span}");
                    if name == "reply" {
                        reply_attributes = span["attributes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| a["key"].as_str().unwrap().to_string())
                            .collect();
                    }
                    trace_of.insert(name.clone(), span["traceId"].as_str().unwrap().to_string());
                    if name == "llm" {
                        llm_attributes = span["attributes"].as_array().unwrap().clone();
                    }
                    names.push(name);
                }
            }
        }
    }
    for wanted in ["webhook", "ingest_batch", "reply", "retrieve", "llm", "send_batch"] {
        assert!(names.iter().any(|n| n == wanted), "no {wanted:?} span in {names:?}");
    }
    for wanted in ["conversation", "route", "model", "outcome"] {
        assert!(
            reply_attributes.iter().any(|a| a == wanted),
            "the reply span lacks {wanted:?}: {reply_attributes:?}"
        );
    }

    assert_eq!(
        trace_of["llm"], trace_of["reply"],
        "the model call is part of the reply's trace"
    );
    assert_eq!(
        trace_of["retrieve"], trace_of["reply"],
        "retrieval is part of the reply's trace"
    );
    let attr = |key: &str| {
        llm_attributes
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    assert_eq!(
        attr("gen_ai.request.model").unwrap()["stringValue"],
        "gpt-4o-mini",
        "{llm_attributes:?}"
    );
    assert_eq!(attr("gen_ai.system").unwrap()["stringValue"], "openai");
    assert!(
        attr("gen_ai.usage.input_tokens").is_some() && attr("gen_ai.usage.output_tokens").is_some(),
        "{llm_attributes:?}"
    );

    let got = run_with_export("http/protobuf").await;
    assert!(got.iter().all(|(h, _)| h["content-type"] == "application/x-protobuf"));
    let all: Vec<u8> = got.iter().flat_map(|(_, b)| b.to_vec()).collect();
    for wanted in [&b"frontdesk-otel-test"[..], b"webhook", b"reply"] {
        assert!(
            all.windows(wanted.len()).any(|w| w == wanted),
            "{:?} missing from the protobuf export",
            String::from_utf8_lossy(wanted)
        );
    }
}

#[test]
fn otlp_config_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::support::test_config(dir.path());
    c.log.otlp_endpoint = "collector:4318".into();
    c.log.otlp_protocol = "grpc".into();
    c.log
        .otlp_headers
        .insert("bad header".into(), frontdesk::config::Secret::new("x"));
    let p = frontdesk::preflight::problems(&c)
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for wanted in [
        "log.otlp_endpoint",
        "\"grpc\" is not one of",
        "\"bad header\" is not a valid HTTP header name",
    ] {
        assert!(p.contains(wanted), "{wanted:?} missing from:\n{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, received) = collector().await;
    let path = dir.path().to_path_buf();
    let run = move |endpoint: String| {
        let config = write_config_file(
            &path,
            &format!("[log]\notlp_endpoint = \"{endpoint}\"\n[log.otlp_headers]\nauthorization = \"Bearer t\"\n"),
        );
        let out = std::process::Command::new(crate::support::bin())
            .args(["doctor", "--config"])
            .arg(&config)
            .env("FRONTDESK_LOG", "error")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let e = endpoint.clone();
    let first = run.clone();
    let out = tokio::task::spawn_blocking(move || first(e)).await.unwrap();
    assert!(
        out.contains(&format!("ok    traces: {endpoint} accepts OTLP (http/protobuf)")),
        "{out}"
    );
    assert_eq!(received.lock().unwrap()[0].0["authorization"], "Bearer t");
    let dead = format!(
        "http://127.0.0.1:{}/v1/traces",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let wrong = endpoint.replace("/v1/traces", "/nope");
    let out = tokio::task::spawn_blocking(move || format!("{}\n{}", run(dead), run(wrong)))
        .await
        .unwrap();
    assert!(
        out.contains("FAIL  traces:") && out.contains("start the collector"),
        "{out}"
    );
    assert!(
        out.contains("answered 404") && out.contains("check log.otlp_endpoint"),
        "{out}"
    );
}
