//! Checks a loaded config for problems it shows on its own: missing secrets, a bad
//! listen address, values out of range, names that do not match. What needs the machine
//! (a writable data directory, loadable certificates, the model files) is checked by
//! `preflight`.

use std::net::SocketAddr;

use super::Config;

/// How bad a problem is: errors stop `serve` and fail `check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong with the configuration, with what to do about it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}: {}", self.key, self.message)
    }
}

impl Config {
    /// Every problem the config shows on its own (no file is touched; the checks that
    /// ask the machine and other modules are `preflight::problems`).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut err = |key, message: String| {
            out.push(Problem {
                severity: Severity::Error,
                key,
                message,
            })
        };
        if self.whatsapp.app_secret.is_empty() {
            err(
                "whatsapp.app_secret",
                "missing: set it to the Meta app secret (App Dashboard > App settings > Basic) \
                 or FRONTDESK__WHATSAPP__APP_SECRET"
                    .into(),
            );
        }
        if self.whatsapp.verify_token.is_empty() {
            err(
                "whatsapp.verify_token",
                "missing: set any long random string and type the same into the App Dashboard's \
                 webhook form (`frontdesk init` generates one)"
                    .into(),
            );
        }
        if let Err(e) = self.listen_addr() {
            err("server.listen", e.to_string());
        }
        if !(self.server.public_url.starts_with("http://") || self.server.public_url.starts_with("https://")) {
            err(
                "server.public_url",
                format!("{:?} must start with http:// or https://", self.server.public_url),
            );
        }
        if !(self.whatsapp.graph_base_url.starts_with("http://")
            || self.whatsapp.graph_base_url.starts_with("https://"))
        {
            err(
                "whatsapp.graph_base_url",
                format!("{:?} must start with http:// or https://", self.whatsapp.graph_base_url),
            );
        }
        if self.server.max_connections < 16 {
            err(
                "server.max_connections",
                "must be at least 16 (the inbox's live updates hold a connection per open page)".into(),
            );
        }
        if self.server.header_read_timeout_ms < 100 {
            err(
                "server.header_read_timeout_ms",
                "must be at least 100 (10000 is a good value)".into(),
            );
        }
        if self.server.body_limit_bytes < 1024 {
            err("server.body_limit_bytes", "must be at least 1024".into());
        }
        if self.queue.dedupe_ttl_hours < 8 * 24 {
            err(
                "queue.dedupe_ttl_hours",
                format!(
                    "{} is too short: Meta retries deliveries for up to 7 days; use at least 192",
                    self.queue.dedupe_ttl_hours
                ),
            );
        }
        if self.queue.max_attempts == 0 {
            err("queue.max_attempts", "must be at least 1".into());
        }
        if self.engine.reply_budget_ms < 100 {
            err("engine.reply_budget_ms", "must be at least 100".into());
        }
        if self.queue.lease_ms < 100 {
            err("queue.lease_ms", "must be at least 100".into());
        }
        if self.queue.group_commit_max_batch == 0 {
            err("queue.group_commit_max_batch", "must be at least 1".into());
        }
        if self.workers.ingest == 0 || self.workers.ingest_batch == 0 {
            err(
                "workers.ingest",
                "workers.ingest and workers.ingest_batch must be at least 1".into(),
            );
        }
        if self.workers.send == 0 || self.workers.reply == 0 {
            err(
                "workers.send",
                "workers.send and workers.reply must be at least 1".into(),
            );
        }
        if self.send.number_rate_per_s < 0.0 || !self.send.number_rate_per_s.is_finite() {
            err(
                "send.number_rate_per_s",
                "must be 0 (no cap) or a positive number".into(),
            );
        }
        let bridge_template = self.engine.bridge_template.trim();
        if !bridge_template.is_empty() {
            match self.whatsapp.templates.iter().find(|t| t.name == bridge_template) {
                None => err(
                    "engine.bridge_template",
                    format!("{bridge_template:?} is not one of the configured [[whatsapp.templates]]"),
                ),
                Some(t) if t.params != 0 => err(
                    "engine.bridge_template",
                    format!(
                        "{bridge_template:?} takes {} parameters; the bridge template must take none",
                        t.params
                    ),
                ),
                Some(_) => {}
            }
        }
        for t in &self.whatsapp.templates {
            if t.name.is_empty() || t.language.is_empty() {
                err(
                    "whatsapp.templates",
                    "every template needs a name and a language".into(),
                );
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            err(
                "log.format",
                format!("{:?} is not one of \"text\", \"json\"", self.log.format),
            );
        }
        if !self.log.otlp_endpoint.is_empty()
            && reqwest::Url::parse(&self.log.otlp_endpoint)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
        {
            err(
                "log.otlp_endpoint",
                format!(
                    "{:?} is not an http(s) URL like http://127.0.0.1:4318/v1/traces",
                    self.log.otlp_endpoint
                ),
            );
        }
        if !matches!(self.log.otlp_protocol.as_str(), "http/protobuf" | "http/json") {
            err(
                "log.otlp_protocol",
                format!(
                    "{:?} is not one of \"http/protobuf\", \"http/json\"",
                    self.log.otlp_protocol
                ),
            );
        }
        for name in self.log.otlp_headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                err("log.otlp_headers", format!("{name:?} is not a valid HTTP header name"));
            }
        }
        let m = &self.media;
        if !m.transcription_url.is_empty()
            && reqwest::Url::parse(&m.transcription_url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
        {
            err(
                "media.transcription_url",
                format!(
                    "{:?} is not an http(s) URL like https://api.openai.com/v1",
                    m.transcription_url
                ),
            );
        }
        for v in &m.vision_models {
            match super::ModelRef::parse(v) {
                Some(r) if self.llm.providers.contains_key(&r.provider) => {}
                Some(r) => err(
                    "media.vision_models",
                    format!("{v:?} names provider {:?}, which is not in [llm.providers]", r.provider),
                ),
                None => err("media.vision_models", format!("{v:?} is not provider:model")),
            }
        }
        if m.max_attempts == 0 {
            err("media.max_attempts", "must be at least 1".into());
        }
        let (cert, key) = (&self.server.tls_cert_file, &self.server.tls_key_file);
        match (cert.as_os_str().is_empty(), key.as_os_str().is_empty()) {
            (true, true) => {}
            (false, false) => {}
            _ => err(
                "server.tls_cert_file",
                "set both tls_cert_file and tls_key_file, or neither".into(),
            ),
        }
        let acme = &self.server.acme;
        if acme.enabled() {
            if !cert.as_os_str().is_empty() {
                err(
                    "server.acme.domains",
                    "certificates come either from files (tls_cert_file) or from ACME; remove one".into(),
                );
            }
            for d in &acme.domains {
                if d.is_empty() || d.contains(['/', ':', ' ', '*']) || d.parse::<std::net::IpAddr>().is_ok() {
                    err(
                        "server.acme.domains",
                        format!(
                            "{d:?} is not a host name like chat.example.com (no scheme, port, wildcard or IP address)"
                        ),
                    );
                }
            }
            if !acme.directory_url.starts_with("https://") {
                err(
                    "server.acme.directory_url",
                    format!("{:?} must be an https:// URL", acme.directory_url),
                );
            }
            if acme.challenge == super::AcmeChallenge::Http01 && acme.http_listen.parse::<SocketAddr>().is_err() {
                err(
                    "server.acme.http_listen",
                    format!(
                        "{:?} is not an address like 0.0.0.0:80 (http-01 needs a plain-HTTP listener)",
                        acme.http_listen
                    ),
                );
            }
            if !acme.ca_root_file.as_os_str().is_empty()
                && let Err(e) = std::fs::read(&acme.ca_root_file)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
            {
                err(
                    "server.acme.ca_root_file",
                    format!("{}: {e}", acme.ca_root_file.display()),
                );
            }
            if acme.check_every_minutes == 0 {
                err("server.acme.check_every_minutes", "must be at least 1".into());
            }
        }
        if !self.storage.backup_dir.as_os_str().is_empty() {
            if self.storage.backup_every_hours.is_nan() || self.storage.backup_every_hours <= 0.0 {
                err("storage.backup_every_hours", "must be more than 0".into());
            }
            if self.storage.backup_keep == 0 {
                err(
                    "storage.backup_keep",
                    "must be at least 1 (the newest backup is always kept)".into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.engine.confidence_threshold) {
            err(
                "engine.confidence_threshold",
                "must be between 0 and 1 (a cosine similarity)".into(),
            );
        }
        if self.engine.bridge_text.trim().is_empty() || self.engine.bridge_text.len() > 4096 {
            err(
                "engine.bridge_text",
                "must be 1-4096 bytes: it is the message customers get when a person takes over".into(),
            );
        }
        if self.engine.unknown_text.trim().is_empty() || self.engine.unknown_text.len() > 4096 {
            err(
                "engine.unknown_text",
                "must be 1-4096 bytes: customers get it when the documents do not answer their question".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.engine.answer_floor) {
            err(
                "engine.answer_floor",
                "must be between 0 and 1 (a cosine similarity; 0 = off)".into(),
            );
        }
        if self.engine.max_passages == 0 || self.engine.max_passages > 20 {
            err(
                "engine.max_passages",
                "must be 1-20: the passages of a several-part question, together".into(),
            );
        }
        if self.engine.static_reply.trim().is_empty() || self.engine.static_reply.len() > 4096 {
            err(
                "engine.static_reply",
                "must be 1-4096 bytes: customers get it while the kill switch is on".into(),
            );
        }
        if self.engine.debounce_ms > 8_000
            || self.engine.debounce_max_ms > 8_000
            || self.engine.debounce_ms > self.engine.debounce_max_ms
        {
            err(
                "engine.debounce_ms",
                "debounce_ms and debounce_max_ms must be at most 8000, and debounce_ms at most debounce_max_ms".into(),
            );
        }
        for (name, p) in &self.llm.providers {
            if !matches!(p.kind.as_str(), "anthropic" | "openai" | "offline") {
                err(
                    "llm.providers",
                    format!("{name}: kind {:?} is not anthropic, openai or offline", p.kind),
                );
            }
            if p.kind != "offline" && !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                err("llm.providers", format!("{name}: base_url needs an http(s) URL"));
            }
        }
        let hooks = &self.webhooks;
        if hooks.endpoints.len() > super::MAX_WEBHOOK_ENDPOINTS {
            err(
                "webhooks.endpoints",
                format!(
                    "{} endpoints; at most {} (point several tools at one receiver, e.g. n8n)",
                    hooks.endpoints.len(),
                    super::MAX_WEBHOOK_ENDPOINTS
                ),
            );
        }
        for (i, e) in hooks.endpoints.iter().enumerate() {
            let n = &e.name;
            if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                err(
                    "webhooks.endpoints",
                    format!("endpoint {}: name {n:?} must be 1-64 of a-z, 0-9, _ and -", i + 1),
                );
            }
            if hooks.endpoints[..i].iter().any(|o| &o.name == n) {
                err("webhooks.endpoints", format!("{n}: two endpoints have this name"));
            }
            if let Err(why) = crate::domain::webhook::check_endpoint_url(&e.url) {
                err("webhooks.endpoints", format!("{n}: url: {why}"));
            }
            if e.secret.expose().chars().count() < 16 {
                err(
                    "webhooks.endpoints",
                    format!("{n}: secret must be at least 16 characters (the receiver checks the signature with it)"),
                );
            }
            for k in &e.events {
                if crate::domain::webhook::EventKind::parse(k).is_none() {
                    err(
                        "webhooks.endpoints",
                        format!("{n}: unknown event type {k:?} (see docs/webhooks.md)"),
                    );
                }
            }
        }
        if hooks.timeout_ms == 0 || hooks.max_attempts == 0 || hooks.max_pending == 0 {
            err(
                "webhooks",
                "timeout_ms, max_attempts and max_pending must be at least 1".into(),
            );
        }
        for t in &self.llm.tools {
            let n = &t.name;
            if n.is_empty()
                || n.len() > 64
                || !n
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                || n == "reply"
            {
                err(
                    "llm.tools",
                    format!("tool name {n:?}: use 1-64 of a-z, 0-9 and _ (and not \"reply\")"),
                );
            }
            if !matches!(t.method.to_ascii_uppercase().as_str(), "GET" | "POST") {
                err("llm.tools", format!("{n}: method {:?} is not GET or POST", t.method));
            }
            if !(t.url.starts_with("http://") || t.url.starts_with("https://")) {
                err("llm.tools", format!("{n}: url needs http(s)://"));
            }
            if let Some(p) = t
                .id_prefixes
                .iter()
                .find(|p| !(1..=5).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_alphabetic()))
            {
                err(
                    "llm.tools",
                    format!("{n}: id_prefixes entry {p:?} must be 1-5 letters (like \"SS\" for SS-10421)"),
                );
            }
            let props = t.parameters.get("properties").and_then(|p| p.as_object());
            if t.parameters.get("type").and_then(|v| v.as_str()) != Some("object") || props.is_none() {
                err(
                    "llm.tools",
                    format!("{n}: parameters must be a JSON schema object with \"properties\""),
                );
            }
            for f in crate::domain::tool_url::ENGINE_FIELDS {
                if props.is_some_and(|o| o.contains_key(*f)) {
                    err(
                        "llm.tools",
                        format!(
                            "{n}: remove {f:?} from parameters: the engine fills it (the asking customer), never the model"
                        ),
                    );
                }
            }
            for p in crate::domain::tool_url::placeholders(&t.url) {
                if !crate::domain::tool_url::ENGINE_FIELDS.contains(&p.as_str())
                    && !props.is_some_and(|o| o.contains_key(&p))
                {
                    err(
                        "llm.tools",
                        format!("{n}: the url uses {{{p}}} but parameters has no property {p:?}"),
                    );
                }
            }
            if t.description.trim().is_empty() {
                err(
                    "llm.tools",
                    format!("{n}: describe what the tool does; the model decides from it"),
                );
            }
        }
        for (key, chain) in [
            ("llm.tiers.commodity", &self.llm.tiers.commodity),
            ("llm.tiers.reasoning", &self.llm.tiers.reasoning),
        ] {
            for entry in chain.iter() {
                match entry.split_once(':') {
                    Some((p, m)) if !m.is_empty() && (p == "offline" || self.llm.providers.contains_key(p)) => {}
                    Some((p, _)) => err(key, format!("{entry:?}: no provider {p:?} under [llm.providers]")),
                    None => err(key, format!("{entry:?} is not provider:model")),
                }
            }
        }
        if let Err(e) = crate::domain::router::parse_rules(&self.router.rules_text()) {
            err("router.rules", e);
        }
        let c = self.router.classifier;
        if c.uses_embeddings() {
            if self.router.examples.is_none() {
                err(
                    "router.examples",
                    format!("the {c} classifier needs a JSONL file of {{\"text\",\"label\"}} examples"),
                );
            }
            if self.knowledge.embedder == super::EmbedderKind::None {
                err(
                    "router.classifier",
                    format!(
                        "{c} needs an embedder (knowledge.embedder = \"local\" or \"openai\"); use zero_shot or off"
                    ),
                );
            }
        }
        if let Some(p) = &self.router.examples
            && !p.is_file()
        {
            err("router.examples", format!("{} is not a readable file", p.display()));
        }
        for (label, route) in &self.router.label_routes {
            if crate::domain::router::Route::parse(route).is_none() {
                err(
                    "router.label_routes",
                    format!("{label} = {route:?}: use commodity, reasoning or handoff"),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.router.min_similarity) {
            err(
                "router.min_similarity",
                "must be between 0 and 1 (a cosine similarity)".into(),
            );
        }
        for c in &self.inbox.canned_replies {
            if c.title.trim().is_empty() || c.text.trim().is_empty() || c.text.chars().count() > 4096 {
                err(
                    "inbox.canned_replies",
                    format!("{:?}: each needs a title and 1-4096 characters of text", c.title),
                );
            }
        }
        if !(3_000..=600_000).contains(&self.inbox.presence_ttl_ms) {
            err(
                "inbox.presence_ttl_ms",
                "must be between 3000 and 600000 (pages beat every third of it, at most once a second)".into(),
            );
        }
        let a = &self.auth;
        if !(a.session_idle_minutes > 0.0 && a.session_max_hours > 0.0 && a.login_window_minutes > 0.0)
            || a.login_max_failures == 0
            || a.login_max_failures_per_email == 0
        {
            err("auth", "session_idle_minutes, session_max_hours, login_window_minutes, login_max_failures and login_max_failures_per_email must be above 0".into());
        }
        if self.engine.retrieval_k == 0 || self.engine.retrieval_k > 20 {
            err("engine.retrieval_k", "must be between 1 and 20".into());
        }
        let kb = &self.knowledge;
        if !(0.0..=1.0).contains(&kb.mmr_lambda) {
            err(
                "knowledge.mmr_lambda",
                "must be between 0 (most diverse) and 1 (off)".into(),
            );
        }
        if !matches!(kb.quantized.as_str(), "auto" | "on" | "off") {
            err(
                "knowledge.quantized",
                format!("{:?} is not one of \"auto\", \"on\", \"off\"", kb.quantized),
            );
        }
        if kb.rescore_factor == 0 {
            err("knowledge.rescore_factor", "must be at least 1".into());
        }
        if kb.embedder == super::EmbedderKind::Openai {
            let r = &kb.remote;
            if !(r.base_url.starts_with("http://") || r.base_url.starts_with("https://")) {
                err(
                    "knowledge.remote.base_url",
                    "needs an http(s) URL up to /v1, e.g. \"http://127.0.0.1:11434/v1\"".into(),
                );
            }
            if r.model.is_empty() {
                err(
                    "knowledge.remote.model",
                    "name the embedding model, e.g. \"text-embedding-3-small\"".into(),
                );
            }
            if r.dimensions == 0 {
                err(
                    "knowledge.remote.dimensions",
                    "set the model's vector length (e.g. 1536 for text-embedding-3-small, 768 for nomic-embed-text)"
                        .into(),
                );
            }
            if r.batch_size == 0 {
                err("knowledge.remote.batch_size", "must be at least 1".into());
            }
        } else if kb.embedder == super::EmbedderKind::None {
            out.push(Problem {
                severity: Severity::Warning,
                key: "knowledge.embedder",
                message: super::NO_EMBEDDER_WARNING.into(),
            });
        }
        if self.whatsapp.access_token.is_empty() {
            out.push(Problem {
                severity: Severity::Warning,
                key: "whatsapp.access_token",
                message: "not set: frontdesk can receive messages but cannot send replies".into(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Secret;

    fn blocking(c: &Config) -> Option<String> {
        let errs: Vec<String> = c
            .problems()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect();
        (!errs.is_empty()).then(|| errs.join("\n"))
    }

    fn good(dir: &Path) -> Config {
        let mut c = Config::default();
        c.whatsapp.app_secret = Secret::new("s");
        c.whatsapp.verify_token = Secret::new("t");
        c.storage.data_dir = dir.to_path_buf();
        c
    }

    #[test]
    fn good_config_has_no_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(blocking(&good(dir.path())).is_none());
    }

    #[test]
    fn each_problem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        type Mutation = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "whatsapp.app_secret",
                Box::new(|c| c.whatsapp.app_secret = Secret::default()),
            ),
            (
                "whatsapp.verify_token",
                Box::new(|c| c.whatsapp.verify_token = Secret::default()),
            ),
            ("server.listen", Box::new(|c| c.server.listen = "localhost".into())),
            ("queue.dedupe_ttl_hours", Box::new(|c| c.queue.dedupe_ttl_hours = 24)),
            ("log.format", Box::new(|c| c.log.format = "xml".into())),
            (
                "remove \"customer_wa_id\" from parameters",
                Box::new(|c| {
                    c.llm.tools.push(crate::config::ToolConfig {
                        name: "orders".into(),
                        description: "Look up an order".into(),
                        url: "https://shop.example/orders?who={customer_wa_id}".into(),
                        parameters: serde_json::json!({ "type": "object", "properties": { "customer_wa_id": { "type": "string" } } }),
                        ..Default::default()
                    })
                }),
            ),
        ];
        let hook = |url: &str, secret: &str, events: &[&str]| crate::config::WebhookEndpoint {
            name: "crm".into(),
            url: url.into(),
            secret: Secret::new(secret),
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        let good_hook = hook("https://hooks.example/in", "0123456789abcdef", &["message.received"]);
        let hooks: Vec<(&str, Vec<crate::config::WebhookEndpoint>)> = vec![
            (
                "crm: url: http:// is allowed only to a loopback address",
                vec![hook("http://hooks.example/in", "0123456789abcdef", &[])],
            ),
            (
                "crm: secret must be at least 16 characters",
                vec![hook("https://hooks.example/in", "short", &[])],
            ),
            (
                "crm: unknown event type \"message.deleted\"",
                vec![hook(
                    "https://hooks.example/in",
                    "0123456789abcdef",
                    &["message.deleted"],
                )],
            ),
            (
                "crm: two endpoints have this name",
                vec![good_hook.clone(), good_hook.clone()],
            ),
            ("11 endpoints; at most 10", vec![good_hook.clone(); 11]),
        ];
        for (message, endpoints) in hooks {
            let mut c = good(dir.path());
            c.webhooks.endpoints = endpoints;
            let msg = blocking(&c).unwrap_or_default();
            assert!(
                msg.contains("webhooks.endpoints") && msg.contains(message),
                "{message}: {msg}"
            );
        }
        let mut c = good(dir.path());
        c.webhooks.endpoints = vec![good_hook, hook("http://127.0.0.1:9/in", "0123456789abcdef", &[])];
        c.webhooks.endpoints[1].name = "local".into();
        assert_eq!(blocking(&c), None, "https and loopback http are fine");
        for (key, mutate) in cases {
            let mut c = good(dir.path());
            mutate(&mut c);
            let msg = blocking(&c).unwrap_or_default();
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }
}
