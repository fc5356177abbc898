//! The Anthropic Messages API (`POST {base_url}/v1/messages`). Structured output is a
//! tool: the model must call a tool (`tool_choice: any`) — one of the HTTP tools, or
//! `reply`, whose input is the final answer in the reply schema. Content blocks are used
//! throughout, so image input (for media) is one more block type.

use serde_json::{Value, json};

use super::{ChatFuture, ChatRequest, ChatResponse, Item, LlmError, Output, Provider, ToolCall, send_with_retry};
use crate::config::ProviderConfig;

/// The API version header sent with every request.
pub const VERSION: &str = "2023-06-01";

/// The name of the tool that carries the final answer.
pub const REPLY_TOOL: &str = "reply";

pub struct Anthropic {
    base_url: String,
    api_key: crate::config::Secret,
    retries: super::RetryPolicy,
    client: reqwest::Client,
}

impl Anthropic {
    pub fn new(p: &ProviderConfig, retries: super::RetryPolicy) -> crate::error::Result<Anthropic> {
        Ok(Anthropic {
            base_url: p.base_url.trim_end_matches('/').to_string(),
            api_key: p.api_key.clone(),
            retries,
            client: super::http_client(p)?,
        })
    }
}

/// The request body for `req`.
pub fn body(req: &ChatRequest) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    for item in &req.items {
        let (role, content) = match item {
            Item::User(t) => ("user", json!([{ "type": "text", "text": t }])),
            Item::Image { media_type, base64 } => (
                "user",
                json!([{ "type": "image", "source": { "type": "base64", "media_type": media_type, "data": base64 } }]),
            ),
            Item::Assistant(t) => ("assistant", json!([{ "type": "text", "text": t }])),
            Item::ToolCalls(calls) => (
                "assistant",
                json!(
                    calls
                        .iter()
                        .map(|c| json!({ "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments }))
                        .collect::<Vec<_>>()
                ),
            ),
            Item::ToolResults(results) => (
                "user",
                json!(
                    results
                        .iter()
                        .map(|(id, content)| json!({ "type": "tool_result", "tool_use_id": id, "content": content }))
                        .collect::<Vec<_>>()
                ),
            ),
        };
        // Consecutive turns of one role merge (the API wants alternation).
        if let Some(last) = messages.last_mut().filter(|m| m["role"] == role)
            && let (Some(a), Some(b)) = (last["content"].as_array_mut(), content.as_array())
        {
            a.extend(b.iter().cloned());
            continue;
        }
        messages.push(json!({ "role": role, "content": content }));
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.parameters }))
        .collect();
    tools.push(json!({ "name": REPLY_TOOL, "description": "Give your final answer in this structure. Always end with this tool.", "input_schema": req.reply_schema }));
    json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "system": req.system,
        "messages": messages,
        "tools": tools,
        "tool_choice": { "type": "any" },
    })
}

/// Reads a Messages API response.
pub fn parse(v: &Value) -> Result<ChatResponse, LlmError> {
    let tokens_in = v.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
    let tokens_out = v.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
    let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| LlmError {
        retryable: true,
        message: format!(
            "message without content: {}",
            v.to_string().chars().take(300).collect::<String>()
        ),
    })?;
    let mut calls = Vec::new();
    let mut text = String::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                let input = b.get("input").cloned().unwrap_or(Value::Null);
                if name == REPLY_TOOL {
                    return Ok(ChatResponse {
                        output: Output::Reply(input.to_string()),
                        tokens_in,
                        tokens_out,
                    });
                }
                calls.push(ToolCall {
                    id: b.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    name: name.to_string(),
                    arguments: input,
                });
            }
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
            _ => {}
        }
    }
    if !calls.is_empty() {
        return Ok(ChatResponse {
            output: Output::ToolCalls(calls),
            tokens_in,
            tokens_out,
        });
    }
    // Plain text instead of the reply tool: the caller's strict parse decides (repair).
    Ok(ChatResponse {
        output: Output::Reply(text),
        tokens_in,
        tokens_out,
    })
}

impl Provider for Anthropic {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> ChatFuture<'a> {
        Box::pin(async move {
            let url = format!("{}/v1/messages", self.base_url);
            let body = body(req);
            let (_, v) = send_with_retry(
                &self.retries,
                || {
                    self.client
                        .post(&url)
                        .header("x-api-key", self.api_key.expose())
                        .header("anthropic-version", VERSION)
                        .json(&body)
                },
                &format!("anthropic {}", req.model),
            )
            .await?;
            parse(&v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_user_content_parts_merged_with_text() {
        let req = ChatRequest {
            model: "claude-haiku-4-5".into(),
            system: "s".into(),
            items: vec![
                Item::Image {
                    media_type: "image/jpeg".into(),
                    base64: "QUJD".into(),
                },
                Item::User("what is wrong with my wheel?".into()),
            ],
            tools: Vec::new(),
            reply_schema: crate::llm::reply_schema(&[], 1000),
            max_tokens: 100,
        };
        let b = body(&req);
        assert_eq!(b["messages"].as_array().unwrap().len(), 1, "one user turn");
        assert_eq!(
            b["messages"][0]["content"][0],
            json!({ "type": "image", "source": { "type": "base64", "media_type": "image/jpeg", "data": "QUJD" } })
        );
        assert_eq!(b["messages"][0]["content"][1]["text"], "what is wrong with my wheel?");
    }
}
