//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`): OpenAI,
//! Ollama, vLLM, llama.cpp server. The final answer is requested as JSON following the
//! reply schema (`response_format: json_schema`); HTTP tools are offered as functions.
//! Local servers (llama.cpp, vLLM, Ollama) get the whole schema, limits included, and
//! turn it into a grammar; OpenAI's own API gets its strict subset (`strict_subset`).

use serde_json::{Value, json};

use super::{ChatFuture, ChatRequest, ChatResponse, Item, LlmError, Output, Provider, ToolCall, send_with_retry};
use crate::config::ProviderConfig;

pub struct OpenAi {
    base_url: String,
    api_key: crate::config::Secret,
    retries: super::RetryPolicy,
    client: reqwest::Client,
    /// Whether the schema keeps its length, count and range limits (not for OpenAI's API).
    schema_limits: bool,
}

/// Whether `base_url` is OpenAI's own API, whose strict mode refuses some schema limits.
pub fn is_openai_api(base_url: &str) -> bool {
    reqwest::Url::parse(base_url).is_ok_and(|u| u.host_str() == Some("api.openai.com"))
}

impl OpenAi {
    pub fn new(p: &ProviderConfig, retries: super::RetryPolicy) -> crate::error::Result<OpenAi> {
        Ok(OpenAi {
            base_url: p.base_url.trim_end_matches('/').to_string(),
            api_key: p.api_key.clone(),
            retries,
            client: super::http_client(p)?,
            schema_limits: !is_openai_api(&p.base_url),
        })
    }
}

/// The request body for `req`.
pub fn body(req: &ChatRequest) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": req.system })];
    for item in &req.items {
        match item {
            Item::User(t) => messages.push(json!({ "role": "user", "content": t })),
            Item::Image { media_type, base64 } => messages.push(json!({
                "role": "user",
                "content": [{ "type": "image_url", "image_url": { "url": format!("data:{media_type};base64,{base64}") } }]
            })),
            Item::Assistant(t) => messages.push(json!({ "role": "assistant", "content": t })),
            Item::ToolCalls(calls) => messages.push(json!({
                "role": "assistant",
                "content": null,
                "tool_calls": calls.iter().map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments.to_string() } })).collect::<Vec<_>>()
            })),
            Item::ToolResults(results) => {
                for (id, content) in results {
                    messages.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
                }
            }
        }
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens,
        "response_format": { "type": "json_schema", "json_schema": { "name": "reply", "strict": true, "schema": req.reply_schema } },
    });
    if !req.tools.is_empty() {
        body["tools"] = json!(req
            .tools
            .iter()
            .map(|t| json!({ "type": "function", "function": { "name": t.name, "description": t.description, "parameters": t.parameters } }))
            .collect::<Vec<_>>());
    }
    body
}

/// Reads a chat completion.
pub fn parse(v: &Value) -> Result<ChatResponse, LlmError> {
    let bad = |what: &str| LlmError {
        retryable: true,
        message: format!(
            "chat completion without {what}: {}",
            v.to_string().chars().take(300).collect::<String>()
        ),
    };
    let message = v
        .pointer("/choices/0/message")
        .ok_or_else(|| bad("choices[0].message"))?;
    let tokens_in = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let tokens_out = v
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if let Some(calls) = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        let calls = calls
            .iter()
            .map(|c| {
                let args = c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
                Ok(ToolCall {
                    id: c.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    name: c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a tool name"))?
                        .to_string(),
                    // Malformed arguments reach the tool runner as a string it refuses.
                    arguments: serde_json::from_str(args).unwrap_or(Value::String(args.to_string())),
                })
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        return Ok(ChatResponse {
            output: Output::ToolCalls(calls),
            tokens_in,
            tokens_out,
        });
    }
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("content"))?;
    Ok(ChatResponse {
        output: Output::Reply(content.to_string()),
        tokens_in,
        tokens_out,
    })
}

impl Provider for OpenAi {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> ChatFuture<'a> {
        Box::pin(async move {
            let url = format!("{}/chat/completions", self.base_url);
            let mut body = body(req);
            if !self.schema_limits {
                body["response_format"]["json_schema"]["schema"] = super::strict_subset(&req.reply_schema);
            }
            let (_, v) = send_with_retry(
                &self.retries,
                || {
                    let r = self.client.post(&url).json(&body);
                    if self.api_key.is_empty() {
                        r
                    } else {
                        r.bearer_auth(self.api_key.expose())
                    }
                },
                &format!("openai-compatible {}", req.model),
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
    fn images_are_data_url_parts() {
        let req = ChatRequest {
            model: "gpt-4o-mini".into(),
            system: "s".into(),
            items: vec![
                Item::Image {
                    media_type: "image/png".into(),
                    base64: "QUJD".into(),
                },
                Item::User("and this?".into()),
            ],
            tools: Vec::new(),
            reply_schema: crate::llm::reply_schema(&[], 1000),
            max_tokens: 100,
        };
        let b = body(&req);
        assert_eq!(
            b["messages"][1]["content"][0],
            json!({ "type": "image_url", "image_url": { "url": "data:image/png;base64,QUJD" } })
        );
        assert_eq!(b["messages"][2], json!({ "role": "user", "content": "and this?" }));
    }

    #[test]
    fn openai_itself_gets_the_strict_subset_local_servers_the_limits() {
        assert!(is_openai_api("https://api.openai.com/v1"));
        assert!(!is_openai_api("http://127.0.0.1:11434/v1") && !is_openai_api("http://gpu-box:8000/v1"));
        let ids = vec!["hours#1".to_string()];
        let full = crate::llm::reply_schema(&ids, 700);
        assert_eq!(full["properties"]["confidence"]["maximum"], 1);
        assert_eq!(full["properties"]["reply"]["maxLength"], 700);
        assert_eq!(full["properties"]["sources"]["items"]["enum"], json!(["hours#1"]));
        let subset = crate::llm::strict_subset(&full);
        assert!(subset["properties"]["confidence"].get("maximum").is_none());
        assert!(subset["properties"]["reply"].get("maxLength").is_none());
        assert_eq!(subset["properties"]["sources"]["items"]["enum"], json!(["hours#1"]));
        assert_eq!(subset["required"], full["required"]);
    }
}
