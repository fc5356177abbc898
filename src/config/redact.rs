//! Every secret value of a configuration, and the `Redactor` that blanks them out of any
//! text before it leaves the process: log lines, doctor's report, errors, panics.
//! `Secret` already never prints itself; this catches the copies that travel inside other
//! text (a URL in an HTTP client's error, a provider's error body echoing the key).

use std::borrow::Cow;

use super::{Config, Secret};

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are too short to find in free text without blanking
/// unrelated words; they are still never printed by `Secret` itself.
pub const MIN_LEN: usize = 6;

impl Config {
    /// Every secret value in this configuration: the `Secret` fields, the environment
    /// values a tool header names as `${VAR}`, and passwords inside configured URLs.
    /// A new `Secret` field must be added here (a unit test counts them).
    pub fn secrets(&self) -> Vec<String> {
        let w = &self.whatsapp;
        let mut typed: Vec<&Secret> = vec![
            &w.app_secret,
            &w.verify_token,
            &w.access_token,
            &self.engine.slack_webhook_url,
            &self.knowledge.remote.api_key,
            &self.media.transcription_api_key,
        ];
        typed.extend(self.llm.providers.values().map(|p| &p.api_key));
        typed.extend(self.llm.tools.iter().flat_map(|t| t.headers.values()));
        typed.extend(self.log.otlp_headers.values());
        typed.extend(self.webhooks.endpoints.iter().map(|e| &e.secret));
        let mut out: Vec<String> = typed.iter().map(|s| s.expose().to_string()).collect();
        for header in self.llm.tools.iter().flat_map(|t| t.headers.values()) {
            out.extend(env_references(header.expose()).filter_map(|name| std::env::var(name).ok()));
        }
        let urls = [
            &self.log.otlp_endpoint,
            &self.whatsapp.graph_base_url,
            &self.knowledge.remote.base_url,
            &self.media.transcription_url,
        ];
        let tool_urls = self.llm.tools.iter().map(|t| &t.url);
        let provider_urls = self.llm.providers.values().map(|p| &p.base_url);
        let hook_urls = self.webhooks.endpoints.iter().map(|e| &e.url);
        for u in urls.into_iter().chain(tool_urls).chain(provider_urls).chain(hook_urls) {
            if let Ok(parsed) = url::Url::parse(u)
                && let Some(password) = parsed.password()
            {
                out.push(password.to_string());
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// A redactor for this configuration's secrets.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.secrets())
    }
}

/// The names in `${NAME}` references.
fn env_references(value: &str) -> impl Iterator<Item = &str> {
    value
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Replaces known secret values (and their percent- and JSON-escaped forms) with `***`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these values; values shorter than `MIN_LEN` are skipped.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut needles = Vec::new();
        for s in secrets.into_iter().filter(|s| s.chars().count() >= MIN_LEN) {
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            let percent = encoded.replace('+', "%20");
            let json = serde_json::to_string(&s).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            needles.extend([encoded, percent, json]);
            needles.push(s);
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        needles.retain(|n| n.chars().count() >= MIN_LEN);
        Redactor { needles }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = Cow::Owned(out.replace(n.as_str(), MASK));
            }
        }
        out
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form_of_every_secret() {
        let r = Redactor::new([
            "s3cret value/+".to_string(),
            "abc".to_string(),
            "tok-123456".to_string(),
        ]);
        assert_eq!(r.redact("key=s3cret value/+ end"), "key=*** end");
        assert_eq!(r.redact("GET /?t=s3cret+value%2F%2B"), "GET /?t=***");
        assert_eq!(r.redact("url s3cret%20value%2F%2B"), "url ***");
        assert_eq!(r.redact("Bearer tok-123456tok-123456"), "Bearer ******");
        // Too short to look for.
        assert_eq!(r.redact("abc"), "abc");
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn every_secret_field_is_listed() {
        // Each `Secret` field of the config must be in `Config::secrets`: count them in
        // the source so a new one cannot be forgotten.
        let declared = include_str!("mod.rs")
            .lines()
            .filter(|l| l.trim_start().starts_with("pub ") && l.contains(": ") && l.contains("Secret"))
            .count();
        let text = r#"
            [whatsapp]
            app_secret = "one-secret"
            verify_token = "two-secret"
            access_token = "three-secret"
            [engine]
            slack_webhook_url = "https://hooks.example/four-secret"
            [knowledge.remote]
            api_key = "five-secret"
            [media]
            transcription_api_key = "six-secret"
            [llm.providers.p]
            kind = "openai"
            api_key = "seven-secret"
            [[llm.tools]]
            name = "t"
            headers = { Authorization = "eight-secret" }
            [log.otlp_headers]
            Authorization = "nine-secret"
            [[webhooks.endpoints]]
            name = "crm"
            url = "https://hooks.example/in"
            secret = "ten-secret-0123456"
        "#;
        let c = Config::from_toml_str(text).unwrap();
        let found = c.secrets();
        assert_eq!(found.len(), 10, "{found:?}");
        assert_eq!(
            declared, 10,
            "a Secret field was added or removed: update Config::secrets and this test"
        );
        let debug = format!("{c:?}");
        let toml = c.to_redacted_toml();
        for s in &found {
            assert!(!debug.contains(s.as_str()), "Debug shows {s}");
            assert!(!toml.contains(s.as_str()), "check-config shows {s}");
        }
    }

    #[test]
    fn url_passwords_and_env_headers_are_secrets() {
        let mut c = Config::default();
        c.log.otlp_endpoint = "https://user:pa55word-x@collector.example/v1/traces".into();
        let mut tool = super::super::ToolConfig::default();
        tool.headers
            .insert("Authorization".into(), Secret::new("Bearer ${PATH}"));
        c.llm.tools.push(tool);
        let s = c.secrets();
        assert!(s.contains(&"pa55word-x".to_string()), "{s:?}");
        assert!(s.contains(&std::env::var("PATH").unwrap()), "{s:?}");
    }
}
