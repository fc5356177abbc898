//! Answering with a model: build the context, walk the tier's fallback chain, run tool
//! rounds (bounded), parse the structured reply strictly (one repair attempt), then the
//! confidence check and the grounding guard. Every way out is a `Decision` plus what it
//! cost, for the trace.

use std::time::Instant;

use super::context::{ContextInput, items, passage_id, system_prompt};
use super::offline::Decision;
use super::structured;
use crate::app::App;
use crate::domain::guard;
use crate::llm::{Attempt, ChatRequest, Item, ModelRef, Output, price};

/// What a model-backed answer came to.
pub struct LlmOutcome {
    pub decision: Decision,
    /// The model that gave the final answer (or the last one tried).
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub attempts: Vec<Attempt>,
    pub guard: String,
    /// Wall time of the model calls and tool rounds; of the tools alone; of the guard.
    pub llm_ms: u64,
    pub tools_ms: u64,
    pub guard_ms: u64,
}

fn handoff(trigger: &'static str, reason: String, confidence: Option<f64>) -> Decision {
    Decision::Handoff {
        trigger,
        reason,
        confidence,
    }
}

/// Asks the models of `chain` for a reply to `ctx`.
pub async fn answer(app: &App, chain: &[ModelRef], ctx: &ContextInput<'_>, threshold: f64) -> LlmOutcome {
    let started = Instant::now();
    let known: Vec<String> = ctx.passages.iter().map(passage_id).collect();
    let mut req = ChatRequest {
        model: String::new(),
        system: system_prompt(ctx),
        items: items(ctx),
        tools: super::tools::defs(&app.config.llm.tools),
        reply_schema: crate::llm::reply_schema(),
        max_tokens: app.config.llm.max_output_tokens,
    };
    let mut out = LlmOutcome {
        decision: handoff("model_unavailable", "no model answered".into(), None),
        model: chain.first().map(|m| m.to_string()).unwrap_or_default(),
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        attempts: Vec::new(),
        guard: "skipped".into(),
        llm_ms: 0,
        tools_ms: 0,
        guard_ms: 0,
    };
    let mut tool_results: Vec<String> = Vec::new();
    let mut repaired = false;
    let mut rounds = 0;
    loop {
        let (result, attempts) = app.models.chat(chain, &req, crate::domain::now_ms).await;
        out.attempts.extend(attempts);
        let (resp, model) = match result {
            Ok(x) => x,
            Err(e) => {
                out.decision = handoff(
                    "model_unavailable",
                    format!("every model in the chain failed; last: {e}"),
                    None,
                );
                break;
            }
        };
        out.model = model.to_string();
        out.tokens_in += resp.tokens_in;
        out.tokens_out += resp.tokens_out;
        out.cost_usd += price::cost(&app.models.prices, &model.model, resp.tokens_in, resp.tokens_out);
        match resp.output {
            Output::ToolCalls(calls) => {
                rounds += 1;
                if rounds > app.config.llm.max_tool_rounds {
                    out.decision = handoff(
                        "tool_loop",
                        format!("the model kept calling tools ({rounds} rounds)"),
                        None,
                    );
                    break;
                }
                let mut results: Vec<(String, String)> = Vec::new();
                for c in &calls {
                    let outcome = match app.config.llm.tools.iter().find(|t| t.name == c.name) {
                        Some(tool) => super::tools::call(tool, &c.arguments, ctx.customer_wa_id).await,
                        None => super::tools::ToolOutcome {
                            ok: false,
                            content: format!("error: there is no tool named {:?}", c.name),
                            ms: 0,
                        },
                    };
                    crate::metrics::Metrics::add(&app.metrics.tool_calls_total, 1);
                    out.tools_ms += outcome.ms;
                    if !outcome.ok {
                        crate::metrics::Metrics::add(&app.metrics.tool_calls_failed_total, 1);
                    }
                    out.attempts.push(Attempt {
                        model: format!("tool:{}", c.name),
                        outcome: if outcome.ok {
                            format!("ok in {} ms", outcome.ms)
                        } else {
                            outcome.content.chars().take(200).collect()
                        },
                        args: Some(c.arguments.clone()),
                    });
                    results.push((c.id.clone(), outcome.content));
                }
                tool_results.extend(results.iter().map(|r| r.1.clone()));
                req.items.push(Item::ToolCalls(calls));
                req.items.push(Item::ToolResults(results));
            }
            Output::Reply(raw) => match structured::parse(&raw, &known, app.config.llm.max_reply_chars) {
                Err(e) if !repaired => {
                    repaired = true;
                    tracing::info!(model = %model, error = %e, "malformed model reply; asking once for a repair");
                    req.items.push(Item::Assistant(raw));
                    req.items.push(Item::User(format!(
                        "(system) Your answer could not be used: {e}. Answer again with only the reply structure: reply, handoff, reason, confidence, sources."
                    )));
                }
                Err(e) => {
                    out.decision = handoff(
                        "malformed_reply",
                        format!("the model's reply was malformed twice: {e}"),
                        None,
                    );
                    break;
                }
                Ok(r) if r.handoff => {
                    out.decision = handoff(
                        "model_handoff",
                        if r.reason.is_empty() {
                            "the model handed off".into()
                        } else {
                            r.reason
                        },
                        Some(r.confidence),
                    );
                    break;
                }
                Ok(r) if r.confidence < threshold => {
                    out.decision = handoff(
                        "low_confidence",
                        format!(
                            "the model's confidence {:.2} is below {threshold:.2}: {}",
                            r.confidence, r.reason
                        ),
                        Some(r.confidence),
                    );
                    break;
                }
                Ok(r) => {
                    let mut grounding: Vec<&str> = ctx
                        .passages
                        .iter()
                        .map(|h| h.text.as_str())
                        .chain(ctx.passages.iter().map(|h| h.title.as_str()))
                        .collect();
                    grounding.extend(ctx.history.iter().map(|h| h.1.as_str()));
                    grounding.push(ctx.question);
                    grounding.push(ctx.business);
                    grounding.extend(tool_results.iter().map(String::as_str));
                    let t = Instant::now();
                    let checked = guard::check(&r.reply, &grounding);
                    out.guard_ms = t.elapsed().as_millis() as u64;
                    match checked {
                        Ok(()) => {
                            out.guard = "passed".into();
                            out.decision = Decision::Answer {
                                text: r.reply,
                                confidence: r.confidence,
                                sources: r.sources,
                            };
                        }
                        Err(guard::Ungrounded(facts)) => {
                            out.guard = format!("blocked: {}", facts.join(", "));
                            out.decision = handoff(
                                "ungrounded",
                                format!(
                                    "the reply stated {} that nothing retrieved or said supports",
                                    facts.join(", ")
                                ),
                                Some(r.confidence),
                            );
                        }
                    }
                    break;
                }
            },
        }
    }
    out.llm_ms = started.elapsed().as_millis() as u64;
    out
}
