//! No output ever shows a configured secret. One installation with distinctive values
//! for every kind of secret (Meta's three, a model key, the Slack webhook URL, the
//! transcription key, an OTLP header, a tool header) runs through what an operator
//! sees: `check-config`, `serve` under debug logging with traffic that fails everywhere
//! (bad signatures, wrong and right verify tokens, a Graph API refusing the token, a
//! model service that echoes the key it refused, Slack unreachable), `doctor` against
//! all of that, `settings list`, `queue stats`, and broken configs. Every stdout,
//! stderr and file the server wrote is searched for every secret and its URL-encoded
//! form.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use frontdesk::http::fake_graph::FakeGraph;
use frontdesk::whatsapp::signature::sign;

use crate::support::{bin, text_webhook};

const APP_SECRET: &str = "app-secret-Zq8w4pLm";
const VERIFY_TOKEN: &str = "verify-token-Kx93Vb";
const ACCESS_TOKEN: &str = "EAAG-access-token-Pm27Qs";
const LLM_KEY: &str = "sk-llm-key-Hy61Tn";
const SLACK_TAIL: &str = "slack-hook-Rb55Wc";
const TRANSCRIBE_KEY: &str = "whisper-key-Ja40Ud";
const OTLP_SECRET: &str = "Basic otlp-cred-Fe72Xo";
const TOOL_SECRET: &str = "Bearer tool-key-Gi18Yr";
const HOOK_SECRET: &str = "whsec-hook-Tq84Nz0123";
const HOOK_PASSWORD: &str = "hookpass-Vd31Mm";

/// An outside service that refuses everything and echoes the credentials it was sent,
/// as some do ("Incorrect API key provided: …").
async fn echo_server() -> String {
    async fn refuse(headers: HeaderMap) -> impl IntoResponse {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let body = serde_json::json!({ "error": {
            "message": format!("Incorrect API key provided: {auth}"), "type": "invalid_request_error" } });
        (StatusCode::UNAUTHORIZED, axum::Json(body))
    }
    let app = Router::new().fallback(refuse);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_text(dir: &Path, graph: &str, echo: &str, slack_port: u16) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
[storage]
data_dir = "{data}"
[whatsapp]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "{ACCESS_TOKEN}"
graph_base_url = "{graph}"
request_timeout_ms = 2000
[send]
token_probe_interval_ms = 200
[knowledge]
embedder = "none"
[engine]
debounce_ms = 0
slack_webhook_url = "http://127.0.0.1:{slack_port}/services/T0/B0/{SLACK_TAIL}"
[llm]
max_retries = 0
[llm.providers.echo]
kind = "openai"
base_url = "{echo}/v1"
api_key = "{LLM_KEY}"
[llm.tiers]
commodity = ["echo:gpt-test"]
reasoning = ["echo:gpt-test"]
[[llm.tools]]
name = "lookup"
description = "Looks a thing up."
url = "{echo}/tool"
headers = {{ Authorization = "{TOOL_SECRET}" }}
[media]
transcription_url = "{echo}/v1"
transcription_api_key = "{TRANSCRIBE_KEY}"
[log]
otlp_endpoint = "{echo}/v1/traces"
[log.otlp_headers]
Authorization = "{OTLP_SECRET}"
[extract]
binary = "{bin}"
[[webhooks.endpoints]]
name = "crm"
url = "{hook_url}"
secret = "{HOOK_SECRET}"
"#,
        hook_url = echo.replacen("http://", &format!("http://hookuser:{HOOK_PASSWORD}@"), 1) + "/hook",
        data = dir.join("data").display(),
        bin = bin().display(),
    )
}

/// Runs the binary to its end; returns what it printed.
fn run(args: &[&str], config: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("FRONTDESK_LOG", "debug")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    format!(
        "$ {args:?} exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, as lossy text.
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push_str(&format!("\n== {}\n{}", p.display(), String::from_utf8_lossy(&bytes)));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_ever_shows_a_configured_secret() {
    let dir = tempfile::tempdir().unwrap();
    // The Graph API accepts another token: every call with ours is refused (190).
    let graph = FakeGraph::start("the-token-meta-expects").await.unwrap();
    let echo = echo_server().await;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(dir.path(), &graph.base_url(), &echo, closed_port()),
    )
    .unwrap();
    let mut seen = String::new();

    seen.push_str(&tokio::task::block_in_place(|| run(&["check-config"], &config, &[])));

    // The server, logging at debug into a file, with traffic that fails everywhere.
    let stderr_path = dir.path().join("serve.stderr");
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let base = format!(
        "http://{}",
        first
            .trim()
            .strip_prefix("frontdesk listening on ")
            .unwrap_or_else(|| panic!("{first}"))
    );
    seen.push_str(&first);
    graph.set_webhook(&format!("{base}/webhook"), APP_SECRET);
    let http = reqwest::Client::new();
    let hook = format!("{base}/webhook");
    let body = text_webhook(
        "P1",
        "31612345678",
        "wamid.secret-1",
        "hello, I need help with my order",
    )
    .into_bytes();
    let bad = http
        .post(&hook)
        .header("x-hub-signature-256", sign(b"not-the-app-secret", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    for (token, want) in [("not-the-verify-token", 403), (VERIFY_TOKEN, 200)] {
        let r = http
            .get(&hook)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "42"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "handshake with {token}");
    }
    let ok = http
        .post(&hook)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The model fails (echoing its key), the conversation goes to a person, Slack is
    // unreachable, and the bridge message meets a refused token: all of it is logged.
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if log.contains("Slack") && log.contains("190") && log.contains("model call failed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the failures were not logged:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // doctor against the running server: the webhook round trip carries the verify token
    // and the app secret; the Graph API, the model, transcription and traces all fail.
    let doctor = tokio::task::block_in_place(|| {
        run(
            &["doctor"],
            &config,
            &[("FRONTDESK__SERVER__PUBLIC_URL", base.as_str())],
        )
    });
    assert!(
        doctor.contains("FAIL  graph token") && doctor.contains("FAIL  model echo:gpt-test"),
        "{doctor}"
    );
    assert!(doctor.contains("ok    webhook handshake"), "{doctor}");
    seen.push_str(&doctor);

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    seen.push_str(&rest);
    seen.push_str(&std::fs::read_to_string(&stderr_path).unwrap());

    tokio::task::block_in_place(|| {
        seen.push_str(&run(&["settings", "list"], &config, &[]));
        seen.push_str(&run(&["queue", "stats"], &config, &[]));
        // doctor with the server gone: the handshake URL with the token is unreachable.
        seen.push_str(&run(
            &["doctor"],
            &config,
            &[("FRONTDESK__SERVER__PUBLIC_URL", base.as_str())],
        ));
        // Broken configs: an unknown key beside the secrets, a secret of the wrong type,
        // a TOML error on a secret's line, a secret given by the environment.
        let text = std::fs::read_to_string(&config).unwrap();
        for (name, broken) in [
            ("unknown", text.replace("[send]", "[send]\nno_such_key = 1")),
            (
                "type",
                text.replace(&format!("\"{APP_SECRET}\""), &format!("[\"{APP_SECRET}\"]")),
            ),
            ("toml", text.replace(&format!("{ACCESS_TOKEN}\""), ACCESS_TOKEN)),
        ] {
            let bad = dir.path().join(format!("{name}.toml"));
            std::fs::write(&bad, broken).unwrap();
            let out = run(&["check-config"], &bad, &[]);
            assert!(out.contains("exit Some(1)"), "{out}");
            seen.push_str(&out);
            seen.push_str(&run(&["serve"], &bad, &[]));
        }
        let out = run(
            &["check-config"],
            &dir.path().join("unknown.toml"),
            &[("FRONTDESK__WHATSAPP__ACCESS_TOKEN", "EAAG-from-env-Lk09")],
        );
        assert!(!out.contains("EAAG-from-env-Lk09"), "{out}");
        seen.push_str(&out);
    });
    seen.push_str(&files_text(&dir.path().join("data")));

    let slack = format!("/services/T0/B0/{SLACK_TAIL}");
    let mut leaks = Vec::new();
    for secret in [
        APP_SECRET,
        VERIFY_TOKEN,
        ACCESS_TOKEN,
        LLM_KEY,
        SLACK_TAIL,
        slack.as_str(),
        TRANSCRIBE_KEY,
        OTLP_SECRET,
        "otlp-cred-Fe72Xo",
        TOOL_SECRET,
        "tool-key-Gi18Yr",
        HOOK_SECRET,
        HOOK_PASSWORD,
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for form in [secret, encoded.as_str()] {
            if let Some(at) = seen.find(form) {
                let from = seen[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                let to = seen
                    .char_indices()
                    .map(|(i, _)| i)
                    .find(|&i| i >= at + 200)
                    .unwrap_or(seen.len());
                leaks.push(format!("{form:?} was printed:\n…{}…", &seen[from..to]));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
    // The redacted forms are there: the test looked at real output.
    assert!(seen.contains("***"), "{seen}");
}
