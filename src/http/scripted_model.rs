//! The scripted model: an OpenAI-compatible chat-completions server on loopback that
//! stands in for a provider in the deterministic eval, so the real client, tool loop,
//! structured-reply parser and guard all run. Its policy, in order:
//!
//! 1. a script registered for the customer's last message wins (a deliberately good or
//!    bad reply, e.g. an invented price the guard must stop);
//! 2. tools offered, no tool result yet and an order number in the last message → it
//!    calls `order_status` with that number;
//! 3. after a tool result: an order → its status, carrier, tracking and date; an error →
//!    hand off;
//! 4. the reasoning tier (a model name containing `reasoning`) hands off: it only gets
//!    what needs judgement, and this stand-in has none;
//! 5. otherwise it answers with the first passage, rewritten for WhatsApp and cited;
//!    with no passage it hands off.
//!
//! Summary, label and judge requests (recognised by their reply schema) get a summary of
//! the customer's words, the label `none`, and a number check of the reply against its
//! sources. Token counts are characters / 4.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// Scripts keyed by the customer message they answer.
type Scripts = Arc<Mutex<HashMap<String, Value>>>;

/// A running scripted model; stops when dropped.
pub struct ScriptedModel {
    pub addr: SocketAddr,
    scripts: Scripts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedModel {
    pub async fn start() -> std::io::Result<ScriptedModel> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let scripts: Scripts = Arc::default();
        let router = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(scripts.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(ScriptedModel { addr, scripts, task })
    }

    /// The base URL for `[llm.providers.NAME] base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The reply (`{"reply","confidence","handoff","reason"}`) to give when the customer's
    /// last message is `message`.
    pub fn script(&self, message: &str, reply: Value) {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(message.trim().to_string(), reply);
    }
}

async fn complete(State(scripts): State<Scripts>, Json(req): Json<Value>) -> Json<Value> {
    let schema = req
        .pointer("/response_format/json_schema/schema/properties")
        .cloned()
        .unwrap_or(Value::Null);
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let text_of = |m: &Value| m["content"].as_str().unwrap_or_default().to_string();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .map(text_of)
        .unwrap_or_default();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(text_of)
        .unwrap_or_default();
    let tool_result = messages.iter().rev().find(|m| m["role"] == "tool").map(text_of);
    let model = req["model"].as_str().unwrap_or_default();
    let prompt_chars: usize = messages.iter().map(|m| text_of(m).len()).sum();

    let answer = if schema.get("summary").is_some() {
        let said: Vec<String> = messages.iter().filter(|m| m["role"] == "user").map(text_of).collect();
        content(
            json!({ "summary": format!("The customer wrote: {}", said.join(" / ").chars().take(600).collect::<String>()) }),
        )
    } else if schema.get("label").is_some() {
        content(json!({ "label": "none" }))
    } else if schema.get("supported").is_some() {
        content(judge(&last_user))
    } else {
        let script = {
            let scripts = scripts.lock().unwrap_or_else(|e| e.into_inner());
            scripts
                .iter()
                .find(|(k, _)| last_user.trim_end().ends_with(k.as_str()))
                .map(|(_, v)| v.clone())
        };
        let tools_offered = req["tools"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t.pointer("/function/name") == Some(&json!("order_status")))
        });
        match (script, tool_result) {
            (Some(s), _) => content(reply(
                s["reply"].as_str().unwrap_or_default(),
                s["handoff"].as_bool().unwrap_or(false),
                s["reason"].as_str().unwrap_or("scripted"),
                s["confidence"].as_f64().unwrap_or(0.9),
                &first_passage(&system).map(|p| vec![p.0]).unwrap_or_default(),
            )),
            (None, Some(result)) => content(order_answer(&result)),
            (None, None) if tools_offered && crate::engine::triggers::order_id(&last_user, &[]).is_some() => {
                let order = crate::engine::triggers::order_id(&last_user, &[]).unwrap_or_default();
                json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "order_status", "arguments": json!({ "order_id": order }).to_string() } }] })
            }
            (None, None) if model.contains("reasoning") => {
                content(reply("", true, "this needs a person's judgement", 0.5, &[]))
            }
            (None, None) => match first_passage(&system) {
                Some((id, text)) => content(reply(
                    &brief(&crate::engine::offline::whatsapp_text(&text), 600),
                    false,
                    "answered from the first passage",
                    0.85,
                    &[id],
                )),
                None => content(reply("", true, "no passage answers this", 0.2, &[])),
            },
        }
    };
    let completion_chars = answer.to_string().len();
    Json(json!({
        "id": "scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [{ "index": 0, "message": answer, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_chars / 4, "completion_tokens": completion_chars / 4 },
    }))
}

fn content(v: Value) -> Value {
    json!({ "role": "assistant", "content": v.to_string() })
}

fn reply(text: &str, handoff: bool, reason: &str, confidence: f64, sources: &[String]) -> Value {
    json!({ "reply": text, "handoff": handoff, "reason": reason, "confidence": confidence, "sources": sources })
}

/// The first `[id] heading` passage of a system prompt and its text.
fn first_passage(system: &str) -> Option<(String, String)> {
    let passages = system.split_once("\nPassages:\n")?.1;
    let mut lines = passages
        .lines()
        .skip_while(|l| !(l.starts_with('[') && l.contains("] ")));
    let head = lines.next()?;
    let id = head[1..head.find("] ")?].to_string();
    let text: Vec<&str> = lines
        .take_while(|l| !(l.starts_with('[') && l.contains("] ") && l.contains('#')))
        .collect();
    Some((id, text.join("\n").trim().to_string()))
}

/// At most `max` characters, cut after a sentence when one ends in the second half.
fn brief(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    match cut.rfind(['.', '!', '?', '\n']) {
        Some(i) if i > max / 2 => cut[..=i].trim().to_string(),
        _ => cut.trim().to_string(),
    }
}

fn order_answer(result: &str) -> Value {
    match crate::engine::offline::order_reply(result) {
        Some(text) => reply(&text, false, "from the order tool", 0.95, &[]),
        None => reply("", true, "the order tool could not find it", 0.3, &[]),
    }
}

/// A number check of a judge request ("Sources: … Reply: …"): unsupported claims are the
/// reply's facts that the sources lack.
fn judge(prompt: &str) -> Value {
    let (sources, reply) = prompt.rsplit_once("\nReply:\n").unwrap_or((prompt, ""));
    match crate::domain::guard::check(reply, &[sources]) {
        Ok(()) => json!({ "supported": true, "unsupported": [] }),
        Err(crate::domain::guard::Ungrounded(facts)) => json!({ "supported": false, "unsupported": facts }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_passage() {
        let system = "You are…\n\nPassages:\n\n[opening-hours#3] Opening hours\nTue-Sat 9:00-18:00.\nClosed Sunday.\n\n[holiday-hours#9] Holidays\nClosed 25 Dec.\n";
        let (id, text) = first_passage(system).unwrap();
        assert_eq!(id, "opening-hours#3");
        assert_eq!(text, "Tue-Sat 9:00-18:00.\nClosed Sunday.");
        assert_eq!(first_passage("Passages:\n(none found)"), None);
    }

    #[test]
    fn brief_cuts_after_a_sentence() {
        assert_eq!(brief("One. Two three four five six.", 20), "One. Two three four");
        assert_eq!(brief("Short.", 20), "Short.");
        assert_eq!(
            brief("A long first sentence here. Then more.", 32),
            "A long first sentence here."
        );
    }
}
