//! HTTP tools declared in config (`[[llm.tools]]`): a name, a description and a JSON
//! schema for the model, and a request to make — method, URL template with `{param}`
//! placeholders (percent-encoded; `{customer_wa_id}` is filled by the engine, never by
//! the model, so a tool can only see the asking customer's data), headers whose values
//! may name environment variables as `${VAR}` (secrets stay out of the config file),
//! a timeout and a response size limit. Every call's success is counted: the seed's
//! tool-call-success metric.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::ToolConfig;
use crate::llm::ToolDef;

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
    tools.iter().map(|t| ToolDef { name: t.name.clone(), description: t.description.clone(), parameters: t.parameters.clone() }).collect()
}

/// The `{name}` placeholders of a URL template.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}

/// Fills a URL template from the arguments (percent-encoded). `customer_wa_id` comes
/// from the engine; a model-supplied value for it is ignored.
pub fn render_url(template: &str, args: &Value, customer_wa_id: &str) -> Result<String, String> {
    let mut url = template.to_string();
    for name in placeholders(template) {
        let value = if name == "customer_wa_id" {
            customer_wa_id.to_string()
        } else {
            match args.get(&name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return Err(format!("missing argument {name:?}")),
            }
        };
        url = url.replace(&format!("{{{name}}}"), &encode(&value));
    }
    Ok(url)
}

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
    let fail = |content: String| ToolOutcome { ok: false, content: format!("error: {content}"), ms: started.elapsed().as_millis() as u64 };
    if !args.is_object() {
        return fail("arguments must be a JSON object".into());
    }
    let url = match render_url(&tool.url, args, customer_wa_id) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let client = match reqwest::Client::builder().timeout(Duration::from_millis(tool.timeout_ms)).build() {
        Ok(c) => c,
        Err(e) => return fail(format!("client: {e}")),
    };
    let mut req = if tool.method.eq_ignore_ascii_case("POST") { client.post(&url).json(args) } else { client.get(&url) };
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
    ToolOutcome { ok: true, content: text, ms: started.elapsed().as_millis() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_templates() {
        let t = "https://shop.example/orders/{order_id}?who={customer_wa_id}";
        assert_eq!(placeholders(t), vec!["order_id", "customer_wa_id"]);
        assert_eq!(
            render_url(t, &json!({ "order_id": "SS-1/42 x", "customer_wa_id": "999" }), "3161").unwrap(),
            "https://shop.example/orders/SS-1%2F42%20x?who=3161",
            "encoded, and the customer id is the engine's, not the model's"
        );
        assert_eq!(render_url(t, &json!({}), "3161").unwrap_err(), "missing argument \"order_id\"");
        assert_eq!(render_url("https://x/{n}", &json!({ "n": 7 }), "").unwrap(), "https://x/7");
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
