//! Loading the layers (defaults < config file < `FRONTDESK__*` environment) and turning
//! figment's errors into messages an operator can act on: the key as written (no
//! internal profile prefix), the file and line or the environment variable, how to quote
//! a value, and never the value of a secret.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::Config;
use super::redact::{MASK, Redactor};
use crate::error::{Error, Result};

/// The environment variables' prefix; `__` separates the parts of a key.
pub const ENV_PREFIX: &str = "FRONTDESK__";

/// Key names whose values are secrets (in the tables that hold them).
const SECRET_KEYS: &[&str] = &[
    "app_secret",
    "verify_token",
    "access_token",
    "api_key",
    "transcription_api_key",
    "slack_webhook_url",
];

/// Words that mark a line of TOML as holding a secret, for messages quoting the file
/// before it could be parsed.
const SECRET_WORDS: &[&str] = &["secret", "token", "api_key", "password", "authorization", "webhook_url"];

impl Config {
    /// Loads defaults, then `path` (if given), then `FRONTDESK__*` variables.
    /// A relative `storage.data_dir` is resolved against the config file's directory.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let mut figment = defaults.clone();
        let mut text = None;
        if let Some(path) = path {
            text = Some(read_file(path)?);
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(EnvLayer::read(&defaults));
        let mut config = extract(figment, text.as_deref())?;
        if let Some(path) = path {
            let base = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(base) = base {
                for dir in [
                    &mut config.storage.data_dir,
                    &mut config.storage.backup_dir,
                    &mut config.server.tls_cert_file,
                    &mut config.server.tls_key_file,
                    &mut config.server.acme.ca_root_file,
                ] {
                    if dir.is_relative() && !dir.as_os_str().is_empty() {
                        *dir = base.join(&*dir);
                    }
                }
            }
        }
        Ok(config)
    }

    /// Defaults, then the TOML `text`: no file, no environment, nothing resolved against
    /// a directory. Errors read like `load`'s (unknown keys, wrong types, bad TOML).
    pub fn from_toml_str(text: &str) -> Result<Config> {
        extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
            Some(text),
        )
    }
}

/// The config file's text, with an error that names the file and says what to do.
fn read_file(path: &Path) -> Result<String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "the config file {shown} is a directory; give the file itself, e.g. --config {}",
            path.join("config.toml").display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Invalid(format!(
            "config file {shown} does not exist; create one with `frontdesk init`"
        )),
        std::io::ErrorKind::PermissionDenied => Error::Invalid(format!(
            "cannot read the config file {shown}: permission denied; run as the service's user or fix its owner"
        )),
        _ => Error::Invalid(format!("cannot read the config file {shown}: {e}")),
    })
}

/// The merged layers as a `Config`; every error of every layer in one readable message.
fn extract(figment: Figment, text: Option<&str>) -> Result<Config> {
    figment.extract().map_err(|e| {
        let redactor = Redactor::new(raw_secrets(&figment));
        let msg: Vec<String> = e
            .into_iter()
            .map(|err| redactor.redact(&describe(&err, text)).into_owned())
            .collect();
        Error::Invalid(format!("configuration: {}", msg.join("; ")))
    })
}

/// One error: where (file:line or environment variable), the key, what is wrong, and how
/// to fix it.
fn describe(err: &figment::Error, text: Option<&str>) -> String {
    use figment::error::Kind;
    let mut path: Vec<String> = err.path.clone();
    if let Kind::UnknownField(field, _) = &err.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    let key = path.join(".");
    let secret = path
        .iter()
        .any(|p| SECRET_KEYS.contains(&p.as_str()) || p.ends_with("headers"));
    let md = err.metadata.as_ref();
    let from_env = md.is_some_and(|m| m.name.contains("environment"));
    let place = match md.and_then(|m| m.source.as_ref()) {
        Some(figment::Source::File(file)) => {
            let line = text.and_then(|t| find_line(t, &path));
            match line {
                Some(n) => format!("{}:{n}: ", file.display()),
                None => format!("{}: ", file.display()),
            }
        }
        _ if from_env => format!("environment variable {}: ", env_name(&path)),
        _ => String::new(),
    };
    let what = match &err.kind {
        Kind::UnknownField(field, expected) => format!(
            "unknown field `{field}` (key {key}); {}",
            if expected.is_empty() {
                "this table takes no keys".to_string()
            } else {
                format!("known here: {}", expected.join(", "))
            }
        ),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            use figment::error::Actual;
            let found = if secret {
                let kind = match actual {
                    Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) => "a number",
                    Actual::Bool(_) => "true or false",
                    Actual::Seq => "a list",
                    Actual::Map => "a table",
                    Actual::Str(_) => "text",
                    _ => "another type",
                };
                format!("{kind} (not shown: it is a secret)")
            } else {
                actual.to_string()
            };
            let mut m = format!("{key}: expected {expected}, found {found}");
            let scalar = matches!(
                actual,
                Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) | Actual::Bool(_)
            );
            if expected.contains("string") && scalar {
                if from_env {
                    m.push_str(&format!(
                        "; quote it for the config: {}='\"VALUE\"' (double quotes inside single quotes)",
                        env_name(&path)
                    ));
                } else {
                    m.push_str(&format!("; quote it: {} = \"VALUE\"", path.last().map_or("key", |s| s)));
                }
            }
            m
        }
        Kind::Message(msg) => {
            let msg = mask_secret_lines(msg);
            if key.is_empty() { msg } else { format!("{key}: {msg}") }
        }
        other => {
            if key.is_empty() {
                other.to_string()
            } else {
                format!("{key}: {other}")
            }
        }
    };
    format!("{place}{what}")
}

/// `FRONTDESK__SECTION__KEY` for a key path.
fn env_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("__").to_uppercase())
}

/// Blanks the values of lines that assign a secret, in text that quotes the file (TOML
/// parse errors show the offending line).
fn mask_secret_lines(msg: &str) -> String {
    msg.lines()
        .map(|line| {
            let lower = line.to_lowercase();
            match line.split_once('=') {
                Some((k, _)) if SECRET_WORDS.iter().any(|w| lower.contains(w)) => format!("{k}= {MASK}"),
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-based line of `text` that sets `path` (`[table]` headers tracked; array indices
/// in the path ignored), if it can be found.
fn find_line(text: &str, path: &[String]) -> Option<usize> {
    let want: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .filter(|p| !p.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let clean = |s: &str| s.trim().trim_matches('"').trim_matches('\'').to_string();
    let mut table: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[').split(']').next().unwrap_or_default();
            table = inner.split('.').map(clean).collect();
            if table == want {
                return Some(i + 1);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            let full: Vec<String> = table.iter().cloned().chain(k.split('.').map(clean)).collect();
            if full == want {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Best-effort secret values from the raw layers, for messages about a config that could
/// not be read into a `Config`.
fn raw_secrets(figment: &Figment) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::String(_, s) => Some(s.clone()),
        Value::Num(..) => v
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| v.to_i128().map(|n| n.to_string()))
            .or_else(|| v.to_f64().map(|n| n.to_string())),
        _ => None,
    };
    let mut out = Vec::new();
    for key in [
        "whatsapp.app_secret",
        "whatsapp.verify_token",
        "whatsapp.access_token",
        "engine.slack_webhook_url",
        "knowledge.remote.api_key",
        "media.transcription_api_key",
    ] {
        out.extend(figment.find_value(key).ok().as_ref().and_then(scalar));
    }
    let dict_values = |key: &str| -> Vec<Value> {
        match figment.find_value(key) {
            Ok(Value::Dict(_, d)) => d.into_values().collect(),
            _ => Vec::new(),
        }
    };
    for provider in dict_values("llm.providers") {
        out.extend(provider.find_ref("api_key").and_then(scalar));
    }
    out.extend(dict_values("log.otlp_headers").iter().filter_map(scalar));
    if let Ok(Value::Array(_, tools)) = figment.find_value("llm.tools") {
        for tool in tools {
            if let Some(Value::Dict(_, headers)) = tool.find_ref("headers") {
                out.extend(headers.values().filter_map(scalar));
            }
        }
    }
    out
}

/// `FRONTDESK__SECTION__KEY` variables. A value for a string field is taken as written
/// (`VERIFY_TOKEN=0123456` stays the string "0123456"); other values are parsed as
/// figment does (numbers, booleans, `[a, b]` arrays, `{k = v}` tables).
struct EnvLayer {
    vars: Vec<(String, String)>,
    defaults: Figment,
}

impl EnvLayer {
    fn read(defaults: &Figment) -> EnvLayer {
        let vars = Env::prefixed(ENV_PREFIX)
            .split("__")
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect();
        EnvLayer {
            vars,
            defaults: defaults.clone(),
        }
    }

    /// Whether the key holds text (its default is a string, or it is a named entry of a
    /// table of strings).
    fn is_text(&self, key: &str) -> bool {
        if let Ok(v) = self.defaults.find_value(key) {
            return matches!(v, Value::String(..));
        }
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["log", "otlp_headers", _] | ["router", "label_routes", _] => true,
            ["llm", "providers", _, field] => matches!(*field, "kind" | "base_url" | "api_key"),
            _ => false,
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_: &Profile, k: &[&str]| {
            let k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            env_name(&k)
        })
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in &self.vars {
            let value = if self.is_text(key) {
                Value::from(raw.clone())
            } else {
                raw.parse().unwrap_or_else(|_| Value::from(raw.clone()))
            };
            let parts: Vec<&str> = key.split('.').collect();
            insert(&mut dict, &parts, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Sets `parts` (a key path) to `value` in `dict`, creating the tables on the way.
fn insert(dict: &mut Dict, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [last] => {
            dict.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line_and_never_the_secret() {
        let text = "[server]\nlisten = \"127.0.0.1:9\"\n\n[whatsapp]\napp_secret = \"x\"\nverify_tokn = \"x\"\n";
        let e = Config::from_toml_str(text).unwrap_err().to_string();
        assert!(
            e.contains("unknown field `verify_tokn`") && e.contains("whatsapp.verify_tokn"),
            "{e}"
        );
        assert!(!e.contains("default."), "{e}");
        let e = Config::from_toml_str("[whatsapp]\napp_secret = [\"sekret-value-1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("whatsapp.app_secret: expected a string, found a list (not shown"),
            "{e}"
        );
        assert!(!e.contains("sekret-value-1"), "{e}");
        assert_eq!(find_line(text, &["whatsapp".into(), "verify_tokn".into()]), Some(6));
        assert_eq!(find_line(text, &["server".into(), "listen".into()]), Some(2));
        let e = Config::from_toml_str("[whatsapp]\napi_version = 23\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quote it: api_version = \"VALUE\""), "{e}");
        // A parse error quotes the line: its secret is masked.
        let e = Config::from_toml_str("[whatsapp]\naccess_token = \"EAAG-unterminated\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("EAAG-unterminated"), "{e}");
    }

    #[test]
    fn numbers_are_accepted_for_secrets() {
        let c = Config::from_toml_str("[whatsapp]\nverify_token = 123456\n").unwrap();
        assert_eq!(c.whatsapp.verify_token.expose(), "123456");
    }

    #[test]
    fn env_values_of_text_fields_stay_text() {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let layer = EnvLayer {
            vars: vec![
                ("whatsapp.verify_token".into(), "0123456".into()),
                ("whatsapp.api_version".into(), "[v23]".into()),
                ("queue.max_attempts".into(), "5".into()),
                ("llm.providers.local.api_key".into(), "000111".into()),
                ("llm.providers.local.kind".into(), "openai".into()),
            ],
            defaults: defaults.clone(),
        };
        let c: Config = defaults.merge(layer).extract().unwrap();
        assert_eq!(c.whatsapp.verify_token.expose(), "0123456");
        assert_eq!(c.whatsapp.api_version, "[v23]");
        assert_eq!(c.queue.max_attempts, 5);
        assert_eq!(c.llm.providers["local"].api_key.expose(), "000111");
    }
}
