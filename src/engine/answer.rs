//! The steps between deciding and acting that need I/O: embed the question once, ask the
//! classifier when no rule matched, route (pure, `decide::route`), retrieve, then answer
//! with the offline responder (and its order tool) or the tier's models (with the rolling
//! summary). Each step's policy is a pure function; this file only sequences them.

use std::time::{Duration, Instant};

use serde_json::json;

use super::decide::{self, Decision, HandoffTrigger, RouteInput};
use super::facts::{Facts, chain_of, has_remote};
use super::run::Run;
use super::{Deps, context, llm_reply, memory, offline, retrieve, tools, triggers};
use crate::domain::budget::Allowance;
use crate::domain::router::{self, Tier};
use crate::domain::settings::Effective;
use crate::error::Result;
use crate::knowledge::Hit;

/// The tool the offline responder uses for order numbers, when configured.
pub const ORDER_TOOL: &str = "order_status";

/// What the answering steps share.
struct Step<'a> {
    deps: &'a Deps<'a>,
    facts: &'a Facts,
    settings: &'a Effective,
    question: &'a str,
    hits: &'a [Hit],
    /// Each part's best passage when the message asks several things.
    part_tops: &'a [i64],
    threshold: f64,
}

/// Routes, retrieves and answers (or hands off) the message `facts` describe.
pub async fn answer(
    deps: &Deps<'_>,
    facts: &Facts,
    settings: &Effective,
    allowance: Allowance,
) -> Result<(Run, Decision)> {
    let question = facts.question();
    let text = question.as_str();
    let remote = deps.models.remote_providers();
    let t = Instant::now();
    let vector = deps.knowledge.embed_query(text).await?;
    // Route: rules, then the classifier, then the turn count.
    let rules = router::parse_rules(settings.get("router.rules")).unwrap_or_default();
    let matched = router::first_rule(&rules, text);
    let classification = if decide::needs_classifier(matched.is_some(), &allowance) {
        let commodity = chain_of(settings, Tier::Commodity);
        let embedder = &deps.knowledge.embedder;
        deps.classifier
            .classify(embedder, deps.models, text, &vector, &commodity)
            .await?
    } else {
        Default::default()
    };
    let mut run = Run {
        model: "none".into(),
        guard: "skipped: handoff".into(),
        ..Default::default()
    };
    run.add_cost(
        classification.tokens_in,
        classification.tokens_out,
        classification.cost_usd,
    );
    let input = RouteInput {
        rule: matched.as_ref().map(|(r, h)| (*r, h.as_str())),
        classified: classification.classified.as_ref(),
        note: classification.note.as_deref(),
        recent: facts.conversation.recent_inbound,
    };
    let routed = decide::route(input, &allowance, |t| has_remote(&chain_of(settings, t), &remote));
    let found = retrieve::search(deps, facts, text, vector).await?;
    let hits = run.keep_data_only(found.hits);
    run.retrieval_ms = t.elapsed().as_millis() as u64;
    run.route = routed.label.into();
    run.route_reason = routed.reason;
    if routed.offline {
        run.model = "offline".into();
    }
    let step = Step {
        deps,
        facts,
        settings,
        question: text,
        hits: &hits,
        part_tops: &found.part_tops,
        threshold: settings.number("confidence_threshold"),
    };
    let unanswered = match (&routed.decision, routed.offline) {
        (None, false) => nothing_answers(&step, routed.tier),
        _ => None,
    };
    let decision = match (routed.decision, unanswered) {
        (Some(d), _) => d,
        (None, _) if routed.offline => offline_step(&step, &mut run).await,
        (None, Some(d)) => {
            run.guard = "skipped: the documents do not answer".into();
            d
        }
        (None, None) => {
            // The reply's time budget, counted from the start of this step sequence: when
            // it runs out the model's answer is abandoned and a person takes over.
            let budget = Duration::from_millis(deps.config.engine.reply_budget_ms);
            let left = budget.saturating_sub(t.elapsed());
            match tokio::time::timeout(left, model_step(&step, &mut run, routed.tier)).await {
                Ok(d) => d,
                Err(_) => out_of_time(&mut run, budget),
            }
        }
    };
    run.hits = hits;
    Ok((run, decision))
}

/// With a model: a question on the commodity tier that no retrieved passage answers
/// (`decide::unanswered`), unless tools are configured and it carries something a tool
/// could look up: an order number (`triggers::order_id`) or any id-like token (letters
/// with digits, or four digits or more).
fn nothing_answers(s: &Step<'_>, tier: Tier) -> Option<Decision> {
    let tools = &s.deps.config.llm.tools;
    let lookup = !tools.is_empty()
        && (tools
            .iter()
            .any(|t| triggers::order_id(s.question, &t.id_prefixes).is_some())
            || s.question.split_whitespace().any(id_like));
    let asks = tier == Tier::Commodity && !lookup && offline::is_question(s.question);
    let best = s.hits.iter().filter_map(|h| h.similarity).reduce(f64::max);
    decide::unanswered(best, s.deps.config.engine.answer_floor, asks)
}

/// A token a tool might look up: letters with digits (`SS-1`, `A17`), or four digits or more.
fn id_like(token: &str) -> bool {
    let digits = token.chars().filter(char::is_ascii_digit).count();
    digits >= 4 || (digits > 0 && token.chars().any(char::is_alphabetic))
}

/// The handoff when the reply's time budget ran out (`engine.reply_budget_ms`).
fn out_of_time(run: &mut Run, budget: Duration) -> Decision {
    let reason = format!(
        "no answer within the reply's time budget of {} s (engine.reply_budget_ms)",
        budget.as_secs_f64()
    );
    tracing::warn!(
        budget_ms = budget.as_millis() as u64,
        "reply: the time budget ran out; handing off"
    );
    run.guard = "skipped: out of time".into();
    run.attempts.push(crate::llm::Attempt {
        model: "budget".into(),
        outcome: reason.clone(),
        args: None,
    });
    Decision::handoff(HandoffTrigger::ModelUnavailable, reason)
}

/// The offline responder: an order number with an order tool is looked up; anything
/// else is answered from the best passage when retrieval is confident, else handed off —
/// or, for a short unclear first message, asked about once.
async fn offline_step(s: &Step<'_>, run: &mut Run) -> Decision {
    let decision = match offline_order(s, run).await {
        Some(d) => d,
        None => {
            run.guard = "passed: quoted from the knowledge base".into();
            offline::decide_parts(s.hits, s.part_tops, s.threshold)
        }
    };
    let last_bot = s
        .facts
        .earlier_turns()
        .iter()
        .rev()
        .find(|(from_customer, _)| !*from_customer)
        .map(|(_, t)| t.as_str());
    let (decision, guard) = offline::clarify_once(decision, s.question, last_bot);
    if let Some(g) = guard {
        run.guard = g.into();
    }
    decision
}

/// An order number and an order tool: the tool's answer, or a handoff when it has none.
async fn offline_order(s: &Step<'_>, run: &mut Run) -> Option<Decision> {
    let tool = s.deps.config.llm.tools.iter().find(|t| t.name == ORDER_TOOL)?;
    let order = triggers::order_id(s.question, &tool.id_prefixes)?;
    let t = Instant::now();
    let args = json!({ "order_id": order });
    let o = tools::call(tool, &args, &s.facts.wa_id).await;
    run.tools_ms = t.elapsed().as_millis() as u64;
    crate::metrics::Metrics::add(&s.deps.metrics.tool_calls_total, 1);
    run.attempts.push(crate::llm::Attempt {
        model: format!("tool:{ORDER_TOOL}"),
        outcome: if o.ok { "ok".into() } else { o.content.clone() },
        args: Some(args),
    });
    if !o.ok {
        crate::metrics::Metrics::add(&s.deps.metrics.tool_calls_failed_total, 1);
    }
    let (decision, guard) = offline::order_decision(&order, o.ok, &o.content);
    if let Some(g) = guard {
        run.guard = g.into();
    }
    Some(decision)
}

/// The tier's models, with the rolling summary brought up to date first.
async fn model_step(s: &Step<'_>, run: &mut Run, tier: Tier) -> Decision {
    let (deps, facts) = (s.deps, s.facts);
    let conv = &facts.conversation;
    let previous = conv.summary.as_ref().map(|p| p.0.as_str());
    let commodity = chain_of(s.settings, Tier::Commodity);
    let memory = memory::refresh(deps, previous, &conv.unsummarized, &commodity).await;
    run.add_cost(memory.tokens_in, memory.tokens_out, memory.cost_usd);
    run.summary_ms = memory.ms;
    if let Some(r) = &memory.refresh {
        run.attempts.push(crate::llm::Attempt {
            model: format!("summary:{}", memory.model),
            outcome: r.clone(),
            args: None,
        });
    }
    let ctx = context::ContextInput {
        business: &deps.config.bot.business_name,
        instructions: &deps.config.llm.instructions,
        first_contact: facts.first_contact(),
        customer_name: facts.customer_name.as_deref(),
        customer_wa_id: &facts.wa_id,
        history: &conv.history,
        handback_note: facts.handback_note(crate::domain::now_ms()),
        summary: memory.summary.as_deref(),
        passages: s.hits,
        question: s.question,
        max_reply_chars: deps.config.llm.max_reply_chars,
    };
    let o = llm_reply::answer(deps, &chain_of(s.settings, tier), &ctx, s.threshold).await;
    run.model = o.model;
    run.add_cost(o.tokens_in, o.tokens_out, o.cost_usd);
    run.llm_ms = o.llm_ms;
    run.tools_ms = o.tools_ms;
    run.guard_ms = o.guard_ms;
    run.guard = o.guard;
    run.attempts.extend(o.attempts);
    run.summary = memory.summary;
    run.new_summary = memory.update;
    o.decision
}
