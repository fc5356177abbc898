//! Answering with a model: build the context, walk the tier's fallback chain, run tool
//! rounds (bounded), parse the structured reply strictly (one repair attempt), then the
//! confidence check and the grounding guard (`judge`, pure). Every way out is a
//! `Decision` plus what it cost, for the trace.

use std::time::Instant;

use super::Deps;
use super::context::{ContextInput, items, passage_id, system_prompt};
use super::decide::{Decision, HandoffTrigger};
use super::structured::{self, Expect, ModelReply, Refusal};
use crate::domain::guard;
use crate::llm::{Attempt, ChatRequest, Item, ModelRef, Output, ToolCall, price};

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

/// Asks the models of `chain` for a reply to `ctx`.
pub async fn answer(deps: &Deps<'_>, chain: &[ModelRef], ctx: &ContextInput<'_>, threshold: f64) -> LlmOutcome {
    let started = Instant::now();
    let known: Vec<String> = ctx.passages.iter().map(passage_id).collect();
    let llm = &deps.config.llm;
    let expect = Expect {
        sources: &known,
        max_chars: llm.max_reply_chars,
        question: ctx.question,
        prompt_markers: &PROMPT_MARKERS,
    };
    let mut req = ChatRequest {
        model: String::new(),
        system: system_prompt(ctx),
        items: items(ctx),
        tools: super::tools::defs(&llm.tools),
        reply_schema: crate::llm::reply_schema(&known, llm.max_reply_chars),
        max_tokens: llm.max_output_tokens,
    };
    let mut out = LlmOutcome {
        decision: Decision::handoff(HandoffTrigger::ModelUnavailable, "no model answered"),
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
    let (mut repaired, mut rounds) = (false, 0);
    loop {
        let (result, attempts) = deps.models.chat(chain, &req, crate::domain::now_ms).await;
        out.attempts.extend(attempts);
        let (resp, model) = match result {
            Ok(x) => x,
            Err(e) => {
                let reason = format!("every model in the chain failed; last: {e}");
                out.decision = Decision::handoff(HandoffTrigger::ModelUnavailable, reason);
                break;
            }
        };
        out.model = model.to_string();
        out.tokens_in += resp.tokens_in;
        out.tokens_out += resp.tokens_out;
        out.cost_usd += price::cost(&deps.models.prices, &model.model, resp.tokens_in, resp.tokens_out);
        match resp.output {
            Output::ToolCalls(calls) => {
                rounds += 1;
                if rounds > llm.max_tool_rounds {
                    let reason = format!("the model kept calling tools ({rounds} rounds)");
                    out.decision = Decision::handoff(HandoffTrigger::ToolLoop, reason);
                    break;
                }
                let results = run_tools(deps, &calls, ctx.customer_wa_id, &mut out).await;
                tool_results.extend(results.iter().map(|r| r.1.clone()));
                req.items.push(Item::ToolCalls(calls));
                req.items.push(Item::ToolResults(results));
            }
            Output::Reply(raw) => match structured::parse(&raw, &expect) {
                Err(e) if e.repairable() && !repaired => {
                    repaired = true;
                    let e = e.message();
                    tracing::info!(model = %model, error = %e, "unusable model reply; asking once for a repair");
                    crate::metrics::Metrics::add(&deps.metrics.llm_reply_repairs_total, 1);
                    out.attempts.push(note(&model, format!("repair asked: {e}")));
                    req.items.push(Item::Assistant(raw));
                    req.items.push(Item::User(format!(
                        "(system) Your answer could not be used: {e}. Answer again with only the reply structure: reply, handoff, reason, confidence (a number from 0 to 1), sources (passage ids from the list)."
                    )));
                }
                parsed => {
                    let parsed = match parsed {
                        Ok(p) => {
                            if !p.slips.is_empty() {
                                let names: Vec<&str> = p.slips.iter().map(|s| s.as_str()).collect();
                                crate::metrics::Metrics::add(&deps.metrics.llm_reply_slips_total, p.slips.len() as u64);
                                tracing::info!(model = %model, slips = %names.join(","), "model reply: formatting slips forgiven");
                                out.attempts
                                    .push(note(&model, format!("forgiven: {}", names.join(", "))));
                            }
                            Ok(p.reply)
                        }
                        Err(e) => {
                            crate::metrics::Metrics::add(&deps.metrics.llm_reply_refused_total, 1);
                            tracing::warn!(model = %model, error = %e.message(), "model reply refused; handing off");
                            out.attempts.push(note(&model, format!("refused: {}", e.message())));
                            Err(e)
                        }
                    };
                    let t = Instant::now();
                    (out.decision, out.guard) = judge(parsed, threshold, &grounding(ctx, &tool_results), &out.guard);
                    out.guard_ms = t.elapsed().as_millis() as u64;
                    break;
                }
            },
        }
    }
    out.llm_ms = started.elapsed().as_millis() as u64;
    out
}

/// A trace line about the reply's parse (slips forgiven, a repair asked, a refusal).
fn note(model: &ModelRef, outcome: String) -> Attempt {
    Attempt {
        model: format!("parse:{model}"),
        outcome,
        args: None,
    }
}

/// Fixed sentences of the system prompt (`context::system_prompt`) a reply must not
/// repeat: who the assistant is (without the business name, which a reply may well
/// contain) and the last rule.
const PROMPT_MARKERS: [&str; 3] = [
    "You are the WhatsApp assistant of",
    "answer customers' questions using only the passages below",
    "Answer with the reply structure only",
];

/// Runs one round of tool calls; returns (call id, result) for the model.
async fn run_tools(
    deps: &Deps<'_>,
    calls: &[ToolCall],
    customer_wa_id: &str,
    out: &mut LlmOutcome,
) -> Vec<(String, String)> {
    let mut results: Vec<(String, String)> = Vec::new();
    for c in calls {
        let outcome = match deps.config.llm.tools.iter().find(|t| t.name == c.name) {
            Some(tool) => super::tools::call(tool, &c.arguments, customer_wa_id).await,
            None => super::tools::ToolOutcome {
                ok: false,
                content: format!("error: there is no tool named {:?}", c.name),
                ms: 0,
            },
        };
        crate::metrics::Metrics::add(&deps.metrics.tool_calls_total, 1);
        out.tools_ms += outcome.ms;
        if !outcome.ok {
            crate::metrics::Metrics::add(&deps.metrics.tool_calls_failed_total, 1);
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
    results
}

/// Everything a reply's facts may come from: what this turn's model was given and
/// nothing more — the passages offered (text, title, section), the turns of the
/// conversation it was shown (`context::HISTORY_TURNS`) and the summary of the older
/// ones, the owner's instructions and a hand-back note, the question, the business name
/// and the tools' results. Not the rest of the knowledge base, not older turns.
pub fn grounding<'a>(ctx: &'a ContextInput<'_>, tool_results: &'a [String]) -> Vec<&'a str> {
    let mut g: Vec<&str> = ctx
        .passages
        .iter()
        .flat_map(|h| [h.text.as_str(), h.title.as_str(), h.section.as_str()])
        .collect();
    let shown = ctx.history.len().saturating_sub(super::context::HISTORY_TURNS);
    g.extend(ctx.history[shown..].iter().map(|h| h.1.as_str()));
    g.extend(ctx.summary);
    g.extend(ctx.handback_note);
    g.push(ctx.instructions);
    g.push(ctx.question);
    g.push(ctx.business);
    g.extend(tool_results.iter().map(String::as_str));
    g
}

/// What the model's (parsed) reply comes to: unusable (malformed after a repair, or
/// degenerate), a confidence that cannot be trusted, the model handing off, too unsure,
/// or a reply the grounding guard passes or blocks. Returns the decision and the
/// trace's guard line (`guard` unchanged when the guard did not run).
pub fn judge(
    parsed: Result<ModelReply, Refusal>,
    threshold: f64,
    grounding: &[&str],
    guard: &str,
) -> (Decision, String) {
    let r = match parsed {
        Err(Refusal::Malformed(e)) => {
            let reason = format!("the model's reply was malformed twice: {e}");
            return (Decision::handoff(HandoffTrigger::MalformedReply, reason), guard.into());
        }
        Err(Refusal::Degenerate(e)) => {
            let reason = format!("the model's reply is unusable: {e}");
            return (Decision::handoff(HandoffTrigger::MalformedReply, reason), guard.into());
        }
        Err(e @ Refusal::UntrustedConfidence(_)) => {
            let reason = format!("the model's {}, so it cannot be trusted", e.message());
            return (Decision::handoff(HandoffTrigger::LowConfidence, reason), guard.into());
        }
        Ok(r) => r,
    };
    let handoff = |trigger, reason: String| Decision::Handoff {
        trigger,
        reason,
        confidence: Some(r.confidence),
    };
    if r.handoff {
        let reason = if r.reason.is_empty() {
            "the model handed off".into()
        } else {
            r.reason.clone()
        };
        return (handoff(HandoffTrigger::ModelHandoff, reason), guard.into());
    }
    if r.confidence < threshold {
        let reason = format!(
            "the model's confidence {:.2} is below {threshold:.2}: {}",
            r.confidence, r.reason
        );
        return (handoff(HandoffTrigger::LowConfidence, reason), guard.into());
    }
    match guard::check(&r.reply, grounding) {
        Ok(()) => {
            let answer = Decision::Answer {
                text: r.reply,
                confidence: r.confidence,
                sources: r.sources,
            };
            (answer, "passed".into())
        }
        Err(guard::Ungrounded(facts)) => {
            let reason = format!(
                "the reply stated {} that nothing retrieved or said supports",
                facts.join(", ")
            );
            (
                handoff(HandoffTrigger::Ungrounded, reason),
                format!("blocked: {}", facts.join(", ")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str, handoff: bool, confidence: f64) -> Result<ModelReply, Refusal> {
        Ok(ModelReply {
            reply: text.into(),
            handoff,
            reason: String::new(),
            confidence,
            sources: vec!["hours#1".into()],
        })
    }

    fn trigger(d: &Decision) -> Option<HandoffTrigger> {
        match d {
            Decision::Handoff { trigger, .. } => Some(*trigger),
            Decision::Answer { .. } => None,
        }
    }

    #[test]
    fn only_what_this_turn_was_given_grounds_a_reply() {
        let history: Vec<(bool, String)> = (0..8)
            .map(|i| (i % 2 == 0, format!("turn {i}: code {}", 100 + i)))
            .collect();
        let passage = crate::knowledge::Hit {
            doc_id: "hours".into(),
            chunk_id: 1,
            title: "Opening Hours".into(),
            source: String::new(),
            section: "Opening Hours > Shop hours".into(),
            score: 0.0,
            similarity: Some(0.6),
            text: "- Sunday: 12:00 - 16:00".into(),
        };
        let ctx = ContextInput {
            business: "Spoke & Sprocket",
            instructions: "",
            first_contact: false,
            customer_name: None,
            customer_wa_id: "31600000000",
            history: &history,
            handback_note: None,
            summary: Some("The customer asked about order 555."),
            passages: std::slice::from_ref(&passage),
            question: "and on sunday?",
            max_reply_chars: 600,
        };
        let tools = vec!["{\"order_id\":\"SS-1\"}".to_string()];
        let g = grounding(&ctx, &tools);
        // Shown: the last six turns, the summary, the passage and the tool's result.
        for ok in ["Sunday we open at 12:00.", "Code 107, order 555, SS-1."] {
            assert_eq!(guard::check(ok, &g), Ok(()), "{ok}");
        }
        // Turn 1 is older than what the model saw.
        assert!(guard::check("Code 101.", &g).is_err());
        // Only a closing time on Sunday, not an opening one.
        assert!(guard::check("On Sunday we open at 16:00.", &g).is_err());
    }

    #[test]
    fn the_model_reply_becomes_an_answer_or_a_handoff() {
        let grounding = ["We open at 9:00 on Saturdays."];
        let (d, guard) = judge(reply("We open at 9:00.", false, 0.9), 0.5, &grounding, "skipped");
        assert!(
            matches!(d, Decision::Answer { ref text, confidence, .. } if text == "We open at 9:00." && confidence == 0.9)
        );
        assert_eq!(guard, "passed");
        let (d, guard) = judge(reply("We open at 8:00.", false, 0.9), 0.5, &grounding, "skipped");
        assert_eq!(trigger(&d), Some(HandoffTrigger::Ungrounded));
        assert!(guard.starts_with("blocked: "), "{guard}");
        let (d, guard) = judge(reply("", true, 0.4), 0.5, &grounding, "skipped");
        assert!(
            matches!(d, Decision::Handoff { trigger: HandoffTrigger::ModelHandoff, ref reason, confidence: Some(c) } if reason == "the model handed off" && c == 0.4)
        );
        assert_eq!(guard, "skipped");
        let (d, _) = judge(reply("We open at 9:00.", false, 0.3), 0.5, &grounding, "skipped");
        assert_eq!(trigger(&d), Some(HandoffTrigger::LowConfidence));
        let (d, _) = judge(Err(Refusal::Malformed("not JSON".into())), 0.5, &grounding, "skipped");
        assert!(matches!(
            d,
            Decision::Handoff {
                trigger: HandoffTrigger::MalformedReply,
                confidence: None,
                ..
            }
        ));
        let degenerate = Refusal::Degenerate("the reply is just `true`".into());
        let (d, _) = judge(Err(degenerate), 0.5, &grounding, "skipped");
        assert!(
            matches!(d, Decision::Handoff { trigger: HandoffTrigger::MalformedReply, ref reason, .. } if reason.contains("unusable: the reply is just `true`"))
        );
        let (d, _) = judge(Err(Refusal::UntrustedConfidence(1520.0)), 0.5, &grounding, "skipped");
        assert!(
            matches!(d, Decision::Handoff { trigger: HandoffTrigger::LowConfidence, ref reason, .. } if reason.contains("confidence 1520 is not a probability"))
        );
    }
}
