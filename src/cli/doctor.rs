//! `frontdesk doctor`: checks an installation end to end and prints what to fix — the
//! config, both stores (a damaged, empty or missing journal included), sending through
//! the Graph API (`doctor_graph`: reachability, the token, its permission, each number),
//! the public webhook URL (the verify handshake and a signed POST round trip through
//! whatever proxy is in front, plus a wrongly signed one that must be refused), the
//! embedding model, every configured model (vision models too), the transcription
//! service and the trace collector. Every line passes through the config's redactor:
//! no secret is ever printed. Exit 1 when anything fails.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::{Config, Redactor, Severity};
use crate::error::Error;

/// The findings, printed as they come.
pub(super) struct Report {
    failed: bool,
    redactor: Redactor,
}

impl Report {
    fn print(&self, line: String) {
        println!("{}", self.redactor.redact(&line));
    }
    pub(super) fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        self.print(format!("ok    {what}: {detail}"));
    }
    pub(super) fn warn(&self, what: &str, detail: impl std::fmt::Display) {
        self.print(format!("WARN  {what}: {detail}"));
    }
    pub(super) fn fail(&mut self, what: &str, detail: impl std::fmt::Display, fix: &str) {
        self.print(format!("FAIL  {what}: {detail}\n      fix: {fix}"));
        self.failed = true;
    }
}

pub fn doctor(config_path: &Path) -> anyhow::Result<ExitCode> {
    let mut r = Report {
        failed: false,
        redactor: Redactor::default(),
    };
    let config = match super::load_config(config_path) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "config",
                e,
                "correct the file (frontdesk check-config shows every problem)",
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    r.redactor = config.redactor();
    let problems = crate::preflight::problems(&config);
    for p in &problems {
        match p.severity {
            Severity::Error => r.fail(
                "config",
                format!("{}: {}", p.key, p.message),
                "set it in the file or as FRONTDESK__SECTION__KEY",
            ),
            Severity::Warning => r.warn("config", format!("{}: {}", p.key, p.message)),
        }
    }
    if !problems.iter().any(|p| p.severity == Severity::Error) {
        r.ok("config", config_path.display());
    }
    stores(&mut r, &config);
    let runtime = super::kb::runtime()?;
    runtime.block_on(async {
        super::doctor_graph::graph(&mut r, &config).await;
        webhook(&mut r, &config).await;
        models(&mut r, &config).await;
        transcription(&mut r, &config).await;
        traces(&mut r, &config).await;
        sandbox(&mut r, &config).await;
    });
    embedding(&mut r, &config);
    Ok(if r.failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The file-reading sandbox starts, limits itself and reads a small text as the server
/// would run it (`extract.binary` or this program).
async fn sandbox(r: &mut Report, config: &Config) {
    let extractor = crate::extract::Extractor::new(&config.extract);
    let started = std::time::Instant::now();
    match extractor.document_text(b"frontdesk sandbox check".to_vec(), "text/plain", 100).await {
        Ok(Ok(text)) if text == "frontdesk sandbox check" => {
            r.ok("file sandbox", format!("read a test file in a limited child process in {} ms", started.elapsed().as_millis()))
        }
        Ok(other) => r.fail("file sandbox", format!("the reader answered {other:?}"), "set extract.binary to the frontdesk program, or leave it empty"),
        Err(e) => r.fail(
            "file sandbox",
            e,
            "set extract.binary to the frontdesk program (or leave it empty); under systemd, allow setrlimit (see packaging/frontdesk.service)",
        ),
    }
}

/// The transcription service takes a tenth of a second of silence (a real WAV upload).
async fn transcription(r: &mut Report, config: &Config) {
    use crate::domain::media::Problem;
    let m = &config.media;
    if m.transcription_url.is_empty() {
        r.warn(
            "transcription",
            "media.transcription_url is not set: voice notes get a request to type (or a person)",
        );
        return;
    }
    let started = Instant::now();
    let http = reqwest::Client::new();
    match crate::media::transcribe::transcribe(&http, m, silent_wav(), "audio/wav").await {
        Ok(_) | Err(Problem::Empty(_)) => r.ok(
            "transcription",
            format!(
                "{} ({}) answered in {} ms",
                m.transcription_url,
                m.transcription_model,
                started.elapsed().as_millis()
            ),
        ),
        Err(Problem::Unavailable(e)) => r.fail(
            "transcription",
            e,
            "start the transcription service or correct media.transcription_url",
        ),
        Err(e) => r.fail(
            "transcription",
            e,
            "check media.transcription_model and media.transcription_api_key",
        ),
    }
}

/// 0.1 s of 16 kHz mono 16-bit silence as a WAV file.
fn silent_wav() -> Vec<u8> {
    let samples = 1_600u32;
    let data = samples * 2;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&16_000u32.to_le_bytes());
    w.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    w.extend_from_slice(&2u16.to_le_bytes()); // block align
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    w.resize(44 + data as usize, 0);
    w
}

/// The OTLP collector accepts an (empty) export with the configured headers.
async fn traces(r: &mut Report, config: &Config) {
    let log = &config.log;
    if log.otlp_endpoint.is_empty() {
        return;
    }
    let (content_type, body) = if log.otlp_protocol == "http/json" {
        ("application/json", "{}")
    } else {
        ("application/x-protobuf", "")
    };
    let mut req = reqwest::Client::new()
        .post(&log.otlp_endpoint)
        .timeout(Duration::from_secs(10))
        .header("content-type", content_type)
        .body(body);
    for (name, value) in &log.otlp_headers {
        req = req.header(name.as_str(), value.expose());
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => r.ok("traces", format!("{} accepts OTLP ({})", log.otlp_endpoint, log.otlp_protocol)),
        Ok(resp) => r.fail(
            "traces",
            format!("{} answered {}", log.otlp_endpoint, resp.status()),
            "check log.otlp_endpoint (the full traces URL, e.g. …/v1/traces), log.otlp_protocol and the credentials in log.otlp_headers",
        ),
        Err(e) => r.fail("traces", format!("{}: {}", log.otlp_endpoint, crate::error::Error::unavailable("export", e)), "start the collector or correct log.otlp_endpoint"),
    }
}

fn stores(r: &mut Report, config: &Config) {
    let db = config.sqlite_path();
    if !db.exists() {
        r.warn(
            "database",
            format!(
                "{} does not exist yet (the server creates it at first start)",
                db.display()
            ),
        );
    } else {
        match crate::store::backup::check_copy(&db) {
            Ok(s) => r.ok(
                "database",
                format!(
                    "{} passes its integrity check ({} messages, schema {})",
                    db.display(),
                    s.messages,
                    s.schema_version
                ),
            ),
            Err(e) => r.fail(
                "database",
                e,
                "restore the latest backup (frontdesk restore --from DIR --data-dir DIR --force)",
            ),
        }
    }
    journal(r, config, &db);
    if db.exists() {
        account_health(r, &db);
    }
}

/// The account health Meta's webhooks reported, as the admin panel shows it: a number
/// rated YELLOW/RED or a template Meta will not send is a warning, a restricted account
/// a failure.
fn account_health(r: &mut Report, db: &Path) {
    let h = match crate::store::health::read_file(db, 5) {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => return r.warn("account health", format!("could not be read: {e}")),
    };
    if h.recent.is_empty() {
        return r.warn(
            "account health",
            "no health webhook received yet (subscribe the app to phone_number_quality_update, account_update and message_template_status_update)",
        );
    }
    for n in &h.numbers {
        let line = format!(
            "number {}: quality {}, messaging limit {}",
            n.display_phone_number,
            n.rating.as_str(),
            n.limit_tier.as_deref().unwrap_or("unknown")
        );
        if n.rating.is_degraded() {
            r.warn("account health", line);
        } else {
            r.ok("account health", line);
        }
    }
    for a in &h.accounts {
        if a.restricted {
            r.fail(
                "account health",
                format!("WhatsApp account {} is restricted: {}", a.waba_id, a.detail),
                "see the account's quality and restrictions in Meta's WhatsApp Manager",
            );
        }
    }
    for t in h.templates.iter().filter(|t| t.is_blocked()) {
        r.warn(
            "account health",
            format!(
                "template {} ({}) is not used: Meta has it {}",
                t.name,
                t.language,
                t.why()
            ),
        );
    }
}

/// The journal: damaged, empty, or missing where the database says there was one, is a
/// failure with the way out; missing before the first start only a warning.
fn journal(r: &mut Report, config: &Config, db: &Path) {
    use crate::queue::damage::{self, AT_RISK, Damage, FileState, WAY_OUT};
    let journal = config.queue_path();
    let recorded = db.exists() && matches!(crate::store::journal_marker::recorded_in(db), Ok(Some(_)));
    let fix = format!("{WAY_OUT}.");
    let state = match damage::file_state(&journal) {
        Ok(s) => s,
        Err(e) => return r.fail("journal", e, "run doctor as the server's user"),
    };
    match state {
        FileState::Missing if !recorded => {
            r.warn("journal", format!("{} does not exist yet", journal.display()));
        }
        FileState::Missing | FileState::Empty => {
            let d = if state == FileState::Empty {
                Damage::Empty
            } else {
                Damage::Missing
            };
            r.fail(
                "journal",
                format!("{}. {AT_RISK}", damage::describe(&journal, &d)),
                &fix,
            );
        }
        FileState::Present => match crate::queue::snapshot::check(&journal) {
            Ok(jobs) => r.ok(
                "journal",
                format!("{} passes its integrity check ({jobs} jobs)", journal.display()),
            ),
            Err(Error::Conflict(_)) => r.ok(
                "journal",
                format!("{} is open in the running server", journal.display()),
            ),
            Err(Error::Invalid(msg)) => {
                let what = msg.split(WAY_OUT).next().unwrap_or(&msg).trim_end_matches([' ', '.']);
                r.fail("journal", what, &fix);
            }
            Err(e) => r.fail(
                "journal",
                e,
                "run doctor as the server's user, or stop what holds the file",
            ),
        },
    }
}

async fn webhook(r: &mut Report, config: &Config) {
    let base = config.server.public_url.trim_end_matches('/');
    if base.is_empty() {
        r.warn(
            "webhook",
            "server.public_url is not set: cannot check that Meta can reach the webhook",
        );
        return;
    }
    let url = format!("{base}/webhook");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let challenge = crate::config::random_token();
    let handshake = client
        .get(&url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", config.whatsapp.verify_token.expose()),
            ("hub.challenge", challenge.as_str()),
        ])
        .send()
        .await;
    match handshake {
        Ok(resp) if resp.status().is_success() => match resp.text().await {
            Ok(body) if body == challenge => r.ok("webhook handshake", format!("{url} echoed the challenge")),
            Ok(body) => r.fail(
                "webhook handshake",
                format!(
                    "{url} answered {:?} instead of the challenge",
                    body.chars().take(80).collect::<String>()
                ),
                "point server.public_url (and the proxy) at this server",
            ),
            Err(e) => r.fail("webhook handshake", e, "check the proxy in front of the server"),
        },
        Ok(resp) => r.fail(
            "webhook handshake",
            format!("{url} answered HTTP {}", resp.status()),
            "the verify token must match whatsapp.verify_token, and the proxy must pass /webhook through",
        ),
        Err(e) => {
            // The request's URL carries the verify token in its query: never print it
            // (the causes say what failed: DNS, refused, TLS; they carry no URL).
            let e = e.without_url();
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                detail = format!("{detail}: {cause}");
                source = cause.source();
            }
            r.fail(
                "webhook",
                format!("{url} is unreachable: {detail}"),
                "start the server, open the port or fix the proxy and DNS; Meta calls this URL",
            );
            return;
        }
    }
    // A signed delivery with no events: stored and acknowledged, nothing else happens.
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let signed = crate::whatsapp::signature::sign(config.whatsapp.app_secret.expose().as_bytes(), body);
    let post = |sig: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(&body[..])
            .send()
    };
    let started = Instant::now();
    match post(signed).await {
        Ok(resp) if resp.status().is_success() => r.ok("webhook signature", format!("a signed POST was acknowledged in {} ms", started.elapsed().as_millis())),
        Ok(resp) => r.fail(
            "webhook signature",
            format!("a correctly signed POST got HTTP {}", resp.status()),
            "the server's whatsapp.app_secret differs from this config's, or the proxy alters the body or drops X-Hub-Signature-256",
        ),
        Err(e) => r.fail("webhook signature", e, "check the proxy in front of the server"),
    }
    match post("sha256=00".into()).await {
        Ok(resp) if resp.status().is_client_error() => r.ok(
            "webhook rejects forgeries",
            format!("a wrongly signed POST got HTTP {}", resp.status()),
        ),
        Ok(resp) => r.fail(
            "webhook rejects forgeries",
            format!("a wrongly signed POST got HTTP {}", resp.status()),
            "something in front of the server answers for it; make sure requests reach frontdesk",
        ),
        Err(e) => r.fail("webhook rejects forgeries", e, "check the proxy in front of the server"),
    }
}

async fn models(r: &mut Report, config: &Config) {
    let chains = [
        ("commodity", &config.llm.tiers.commodity),
        ("reasoning", &config.llm.tiers.reasoning),
        ("vision", &config.media.vision_models),
    ];
    if chains.iter().all(|(_, c)| c.is_empty()) {
        r.ok(
            "models",
            "none configured: the offline responder answers from the knowledge base",
        );
        return;
    }
    let models = match crate::llm::Models::from_config(&config.llm) {
        Ok(m) => m,
        Err(e) => {
            r.fail("models", e, "fix [llm.providers] in the config");
            return;
        }
    };
    let req = crate::llm::ChatRequest {
        model: String::new(),
        system:
            "This is a connectivity check. Answer with the reply structure: reply \"ok\", handoff false, confidence 1."
                .into(),
        items: vec![crate::llm::Item::User("ping".into())],
        tools: Vec::new(),
        reply_schema: crate::llm::reply_schema(&[], 1000),
        max_tokens: 60,
    };
    for (tier, chain) in chains {
        for m in chain.iter().filter_map(|s| crate::llm::ModelRef::parse(s)) {
            let started = Instant::now();
            let (result, _) = models.chat(std::slice::from_ref(&m), &req, crate::domain::now_ms).await;
            match result {
                Ok(_) => r.ok(
                    &format!("model {m}"),
                    format!("{tier} tier answered in {} ms", started.elapsed().as_millis()),
                ),
                Err(e) => r.fail(
                    &format!("model {m}"),
                    e,
                    "check the provider's base_url, api_key and the model name; the chain falls back, then hands off",
                ),
            }
        }
    }
}

fn embedding(r: &mut Report, config: &Config) {
    match crate::knowledge::embedder_from_config(&config.knowledge) {
        Ok(e) if e.dim() == 0 => r.warn(
            "embedding",
            "knowledge.embedder = \"none\": keyword search only, and the offline responder cannot judge confidence",
        ),
        Ok(e) => {
            let started = Instant::now();
            match e.embed(&["doctor check"]) {
                Ok(v) => r.ok("embedding", format!("{} dimensions, one query in {} ms", v.first().map(Vec::len).unwrap_or(0), started.elapsed().as_millis())),
                Err(err) => r.fail("embedding", err, "run ./scripts/fetch-model or set knowledge.model_dir; for a remote embedder check [knowledge.remote]"),
            }
        }
        Err(e) => r.fail(
            "embedding",
            e,
            "install the model (the .deb ships it in /usr/share/frontdesk/model) or set knowledge.model_dir",
        ),
    }
}
