//! HTTP tools declared in config (`[[llm.tools]]`): a name, a description and a JSON
//! schema for the model, and a request to make — method, URL template with `{param}`
//! placeholders, headers whose values may name environment variables as `${VAR}`
//! (secrets stay out of the config file), a timeout and a response size limit. The model
//! only fills the schema's declared properties: any other key is refused, and
//! `customer_wa_id` (in the URL and in a POST body) is always the engine's, so a tool can
//! only see the asking customer's data. A path placeholder's value is one encoded path
//! segment (never `.` or `..`), a query placeholder's an encoded query value. Every
//! call's success is counted: the seed's tool-call-success metric.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::config::ToolConfig;
use crate::llm::ToolDef;

pub use crate::domain::tool_url::{ENGINE_FIELDS, placeholders};

/// What one call returned, for the model, the guard and the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub ok: bool,
    /// The response body (or the error), as the model sees it.
    pub content: String,
    pub ms: u64,
}

/// The definitions offered to models.
pub fn defs(tools: &[ToolConfig]) -> Vec<ToolDef> {
    tools
        .iter()
        .map(|t| ToolDef {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .collect()
}

/// The model's arguments, checked against the tool's schema: only declared properties
/// are kept; an engine field the model sent is dropped (the engine sets it); any other
/// key is refused, naming what the tool takes.
pub fn model_arguments(parameters: &Value, args: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(args) = args else {
        return Err("arguments must be a JSON object".into());
    };
    let declared = parameters.get("properties").and_then(Value::as_object);
    let mut out = Map::new();
    for (key, value) in args {
        if ENGINE_FIELDS.contains(&key.as_str()) {
            continue;
        }
        if !declared.is_some_and(|d| d.contains_key(key)) {
            let mut takes: Vec<&str> = declared
                .map(|d| {
                    d.keys()
                        .map(String::as_str)
                        .filter(|k| !ENGINE_FIELDS.contains(k))
                        .collect()
                })
                .unwrap_or_default();
            takes.sort_unstable();
            return Err(format!(
                "unknown argument {key:?}; this tool takes only {}",
                if takes.is_empty() {
                    "no arguments".to_string()
                } else {
                    takes.join(", ")
                }
            ));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// The JSON body of a POST: the checked arguments plus the engine's `customer_wa_id`.
pub fn post_body(args: &Map<String, Value>, customer_wa_id: &str) -> Value {
    let mut body = args.clone();
    body.insert("customer_wa_id".into(), Value::String(customer_wa_id.to_string()));
    Value::Object(body)
}

/// Fills a URL template from the checked arguments. `customer_wa_id` comes from the
/// engine. A placeholder before `?`/`#` is a path placeholder: its value is encoded as
/// one segment (`/`, `?`, `#` and `%` included) and may not be empty or only dots (a
/// dot-segment would move the request up a level); after `?` it is an encoded query value.
pub fn render_url(template: &str, args: &Map<String, Value>, customer_wa_id: &str) -> Result<String, String> {
    let mut url = String::with_capacity(template.len());
    let mut in_path = true;
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        let literal = &rest[..start];
        in_path &= !literal.contains(['?', '#']);
        url.push_str(literal);
        let name = &rest[start + 1..start + len];
        let value = if name == "customer_wa_id" {
            customer_wa_id.to_string()
        } else {
            match args.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return Err(format!("missing argument {name:?}")),
            }
        };
        if in_path && value.bytes().all(|b| b == b'.') {
            return Err(format!(
                "argument {name:?} cannot be {value:?}: it goes into the URL path as one segment"
            ));
        }
        url.push_str(&encode(&value));
        rest = &rest[start + len + 1..];
    }
    url.push_str(rest);
    Ok(url)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `${VAR}` → the environment variable's value (empty when unset).
pub fn expand_env(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push_str(&std::env::var(&rest[start + 2..start + end]).unwrap_or_default());
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Makes the call.
pub async fn call(tool: &ToolConfig, args: &Value, customer_wa_id: &str) -> ToolOutcome {
    let started = Instant::now();
    let fail = |content: String| ToolOutcome {
        ok: false,
        content: format!("error: {content}"),
        ms: started.elapsed().as_millis() as u64,
    };
    let args = match model_arguments(&tool.parameters, args) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let url = match render_url(&tool.url, &args, customer_wa_id) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(tool.timeout_ms))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("client: {e}")),
    };
    let mut req = if tool.method.eq_ignore_ascii_case("POST") {
        client.post(&url).json(&post_body(&args, customer_wa_id))
    } else {
        client.get(&url)
    };
    for (k, v) in &tool.headers {
        req = req.header(k, expand_env(v.expose()));
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return fail(format!("no answer within {} ms", tool.timeout_ms)),
        Err(e) => return fail(format!("request failed: {e}")),
    };
    let status = resp.status();
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > tool.max_response_bytes {
                    return fail(format!("response larger than {} bytes", tool.max_response_bytes));
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return fail(format!("response broke off: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&body).to_string();
    if !status.is_success() {
        return fail(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
    }
    ToolOutcome {
        ok: true,
        content: text,
        ms: started.elapsed().as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn url_templates() {
        let t = "https://shop.example/orders/{order_id}?who={customer_wa_id}";
        assert_eq!(placeholders(t), vec!["order_id", "customer_wa_id"]);
        assert_eq!(
            render_url(
                t,
                &args(json!({ "order_id": "SS-1/42 x", "customer_wa_id": "999" })),
                "3161"
            )
            .unwrap(),
            "https://shop.example/orders/SS-1%2F42%20x?who=3161",
            "encoded, and the customer id is the engine's, not the model's"
        );
        assert_eq!(
            render_url(t, &Map::new(), "3161").unwrap_err(),
            "missing argument \"order_id\""
        );
        assert_eq!(
            render_url("https://x/{n}", &args(json!({ "n": 7 })), "").unwrap(),
            "https://x/7"
        );
    }

    #[test]
    fn a_path_value_is_one_segment_and_a_query_value_one_value() {
        let t = "https://shop.example/api/orders/{id}/items?q={q}&who={customer_wa_id}#{frag}";
        // (value, Ok(rendered path part) or Err(part of the message))
        let path_cases: &[(&str, Result<&str, &str>)] = &[
            ("SS-1", Ok("/api/orders/SS-1/items")),
            ("..", Err("cannot be \"..\"")),
            (".", Err("cannot be \".\"")),
            ("...", Err("cannot be \"...\"")),
            ("", Err("cannot be \"\"")),
            ("../../admin", Ok("/api/orders/..%2F..%2Fadmin/items")),
            ("%2e%2e", Ok("/api/orders/%252e%252e/items")),
            ("%2E%2E%2F", Ok("/api/orders/%252E%252E%252F/items")),
            ("a/b", Ok("/api/orders/a%2Fb/items")),
            ("a?b=c", Ok("/api/orders/a%3Fb%3Dc/items")),
            ("a#b", Ok("/api/orders/a%23b/items")),
            ("a\\b", Ok("/api/orders/a%5Cb/items")),
            ("a.b..", Ok("/api/orders/a.b../items")),
            ("ü ", Ok("/api/orders/%C3%BC%20/items")),
        ];
        for (value, want) in path_cases {
            let got = render_url(t, &args(json!({ "id": value, "q": "x", "frag": "f" })), "3161");
            match (want, got) {
                (Ok(path), Ok(url)) => {
                    assert_eq!(url, format!("https://shop.example{path}?q=x&who=3161#f"), "{value:?}")
                }
                (Err(msg), Err(e)) => assert!(e.contains(msg) && e.contains("\"id\""), "{value:?}: {e}"),
                (want, got) => panic!("{value:?}: wanted {want:?}, got {got:?}"),
            }
        }
        // Query (and fragment) values: encoded, and dots are harmless there.
        let query_cases: &[(&str, &str)] = &[
            ("..", ".."),
            ("a&who=1", "a%26who%3D1"),
            ("a+b c", "a%2Bb%20c"),
            ("x#y", "x%23y"),
            ("%2e", "%252e"),
        ];
        for (value, want) in query_cases {
            let url = render_url(t, &args(json!({ "id": "SS-1", "q": value, "frag": value })), "3161").unwrap();
            assert_eq!(
                url,
                format!("https://shop.example/api/orders/SS-1/items?q={want}&who=3161#{want}"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn only_declared_arguments_and_never_the_customer() {
        let schema = json!({ "type": "object", "properties": { "order_id": { "type": "string" }, "note": { "type": "string" } } });
        let got = model_arguments(&schema, &json!({ "order_id": "SS-1", "customer_wa_id": "31799999999" })).unwrap();
        assert_eq!(
            Value::Object(got.clone()),
            json!({ "order_id": "SS-1" }),
            "the model's customer id is dropped"
        );
        assert_eq!(
            post_body(&got, "3161"),
            json!({ "order_id": "SS-1", "customer_wa_id": "3161" }),
            "the engine's is set"
        );
        assert_eq!(
            post_body(&Map::new(), "3161"),
            json!({ "customer_wa_id": "3161" }),
            "always set"
        );
        let e = model_arguments(&schema, &json!({ "order_id": "SS-1", "admin": true })).unwrap_err();
        assert_eq!(e, "unknown argument \"admin\"; this tool takes only note, order_id");
        let e = model_arguments(&json!({ "type": "object", "properties": {} }), &json!({ "x": 1 })).unwrap_err();
        assert!(e.ends_with("takes only no arguments"), "{e}");
        assert_eq!(
            model_arguments(&schema, &json!(["SS-1"])).unwrap_err(),
            "arguments must be a JSON object"
        );
        // A schema that (against the config check) declares the customer id still cannot pass it.
        let sneaky = json!({ "type": "object", "properties": { "customer_wa_id": { "type": "string" } } });
        assert!(
            model_arguments(&sneaky, &json!({ "customer_wa_id": "31799999999" }))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn env_expansion() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("Bearer ${PATH}"), format!("Bearer {path}"));
        assert_eq!(expand_env("x ${FRONTDESK_SURELY_UNSET_VAR} y"), "x  y");
        assert_eq!(expand_env("plain"), "plain");
        assert_eq!(expand_env("broken ${X"), "broken ${X");
    }
}
