//! Act: what a decision leaves behind, written at once — the opt-out, the refreshed
//! summary, the handoff (owner to a person), the bot message's ledger row and the trace
//! in one store write — then the send job queued and people notified.

use std::time::Instant;

use serde_json::json;

use super::decide::{self, Decision, HandoffTrigger, Policy};
use super::facts::Facts;
use super::run::{Run, silent_trace};
use super::{Deps, ReplyOutcome};
use crate::domain::outbound::OutboundBody;
use crate::domain::settings::Effective;
use crate::error::Result;
use crate::knowledge::Hit;
use crate::store::handoffs::NewHandoff;
use crate::store::reply::{BotMessage, Recorded, ReplyRecord};

/// What the bot confirms after STOP and after START.
const OPTED_OUT_TEXT: &str = "You're unsubscribed: you won't get automated messages from us any more. Reply START to undo. A teammate can still answer you here.";
const OPTED_IN_TEXT: &str = "You're subscribed again: our assistant will answer your messages.";

/// STOP/START: records a change with its confirmation (the one bot message an opted-out
/// contact gets) and a silent trace.
pub async fn opt(deps: &Deps<'_>, facts: &Facts, opt_out: bool, changed: bool) -> Result<ReplyOutcome> {
    let confirm = if opt_out { OPTED_OUT_TEXT } else { OPTED_IN_TEXT };
    let outcome = if opt_out { "opted_out" } else { "opted_in" };
    let record = ReplyRecord {
        conversation_id: facts.conversation_id,
        opt_out: changed.then_some(opt_out),
        message: changed
            .then(|| bot_message(Some(reply_key(facts)), confirm.to_string()))
            .flatten(),
        trace: Some(silent_trace(
            facts.conversation_id,
            &facts.wamid,
            outcome,
            "STOP/START command",
        )),
        ..Default::default()
    };
    record_and_queue(deps, record).await?;
    tracing::info!(wamid = %facts.wamid, conversation = facts.conversation_id, opt_out, "opt-out changed");
    Ok(ReplyOutcome::Silent)
}

/// Sends nothing and records why.
pub async fn silent(deps: &Deps<'_>, facts: &Facts, reason: &str) -> Result<ReplyOutcome> {
    tracing::debug!(wamid = %facts.wamid, reason, "the bot stays silent");
    let record = ReplyRecord {
        conversation_id: facts.conversation_id,
        trace: Some(silent_trace(facts.conversation_id, &facts.wamid, "silent", reason)),
        ..Default::default()
    };
    record_and_queue(deps, record).await?;
    Ok(ReplyOutcome::Silent)
}

/// Queues the message of a handoff this message recorded before (idempotent per handoff).
pub async fn finish_handoff(
    deps: &Deps<'_>,
    facts: &Facts,
    settings: &Effective,
    id: i64,
    trigger: &str,
) -> Result<ReplyOutcome> {
    let record = ReplyRecord {
        conversation_id: facts.conversation_id,
        message: bridge(
            deps,
            bot_message(Some(format!("bridge:{id}")), decide::handoff_message(settings, trigger)),
        ),
        ..Default::default()
    };
    record_and_queue(deps, record).await?;
    Ok(ReplyOutcome::Silent)
}

/// Answers or hands off (after the hand-back cooldown), and records the run's trace.
pub async fn reply(
    deps: &Deps<'_>,
    gathered: (&Facts, &Effective),
    mut run: Run,
    decision: Decision,
    started: Instant,
) -> Result<ReplyOutcome> {
    let (facts, settings) = gathered;
    let policy = Policy::of(deps.config);
    let last = facts.conversation.last_handback.as_ref();
    let (decision, suppressed) =
        decide::after_handback(decision, last, crate::domain::now_ms(), policy.handoff_cooldown_ms);
    if let Some(guard) = suppressed {
        run.guard = guard;
    }
    let t_send = Instant::now();
    let mut record = ReplyRecord {
        conversation_id: facts.conversation_id,
        summary: run.new_summary.take(),
        ..Default::default()
    };
    let (outcome, confidence, trigger) = match decision {
        Decision::Answer { text, confidence, .. } => {
            let body = if facts.first_contact() {
                format!("{}\n\n{text}", disclosure(&deps.config.bot.business_name, facts))
            } else {
                text
            };
            record.message = bot_message(Some(reply_key(facts)), body);
            (ReplyOutcome::Answered, Some(confidence), None)
        }
        Decision::Handoff {
            trigger,
            reason,
            confidence,
        } => {
            record.handoff = Some(new_handoff(facts, &run, trigger, reason, confidence));
            record.message = bridge(
                deps,
                bot_message(None, settings.get(trigger.message_setting()).to_string()),
            );
            (ReplyOutcome::HandedOff, confidence, Some(trigger))
        }
    };
    let trace = finish_trace(deps, facts, run, outcome.trace_name(), confidence, t_send, started);
    record.trace = Some(trace);
    let done = record_and_queue(deps, record).await?;
    // The trace is written with the message, so it cannot time that write: its `send`
    // stage is the preparation only; the histograms see the write and the queueing too.
    deps.reply_stages.send.observe_ms(t_send.elapsed().as_millis() as u64);
    deps.reply_stages.total.observe_ms(started.elapsed().as_millis() as u64);
    match (trigger, done.handoff_id) {
        (Some(trigger), Some(id)) => handed_off(deps, facts, id, trigger).await,
        _ => crate::metrics::Metrics::add(&deps.metrics.bot_answers_total, 1),
    }
    Ok(outcome)
}

/// The trace of a reply run, its stage times up to the write observed.
fn finish_trace(
    deps: &Deps<'_>,
    facts: &Facts,
    run: Run,
    outcome: &str,
    confidence: Option<f64>,
    t_send: Instant,
    started: Instant,
) -> crate::store::handoffs::Trace {
    let span = tracing::Span::current();
    span.record("conversation", facts.conversation_id);
    span.record("route", run.route.as_str());
    span.record("model", run.model.as_str());
    span.record("outcome", if outcome == "answered" { "answered" } else { "handoff" });
    span.record("cost_usd", run.cost_usd);
    let ms = |t: Instant| t.elapsed().as_millis() as u64;
    let trace = run.into_trace(
        facts.conversation_id,
        &facts.wamid,
        outcome,
        confidence,
        ms(t_send),
        ms(started),
    );
    let stages = deps.reply_stages;
    let ms = |k: &str| trace.stages_ms[k].as_u64().unwrap_or(0);
    stages.retrieval.observe_ms(ms("retrieval"));
    stages.llm.observe_ms(ms("llm"));
    stages.summary.observe_ms(ms("summary"));
    stages.tools.observe_ms(ms("tools"));
    stages.guard.observe_ms(ms("guard"));
    trace
}

/// Counts and announces a recorded handoff.
async fn handed_off(deps: &Deps<'_>, facts: &Facts, id: i64, trigger: HandoffTrigger) {
    crate::metrics::Metrics::add(&deps.metrics.handoffs_total, 1);
    deps.labeled.handoffs.add(&[("trigger", trigger.as_str())], 1.0);
    tracing::info!(wamid = %facts.wamid, conversation = facts.conversation_id, %trigger, "handed to a person");
    super::notify::handoff(deps, facts.conversation_id, id, trigger.as_str()).await;
}

/// Writes the record (one store write), then queues its message's send job.
async fn record_and_queue(deps: &Deps<'_>, record: ReplyRecord) -> Result<Recorded> {
    let key = record.message.as_ref().and_then(|m| m.key.clone());
    let now = crate::domain::now_ms();
    let done = deps
        .store
        .write(move |c| crate::store::reply::record_reply(c, &record, now))
        .await?;
    match (done.window_closed, done.queued) {
        (true, None) => tracing::warn!(?key, reason = crate::outbound::WINDOW_CLOSED, "bot message not sent"),
        (true, Some(_)) => tracing::info!(
            ?key,
            "the 24-hour window had closed: the bridge goes out as the approved template"
        ),
        _ => {}
    }
    if let Some((id, created_at)) = done.queued {
        crate::outbound::queue_send(deps.queue, id, created_at).await?;
    }
    Ok(done)
}

/// The idempotency key of the reply to this message.
fn reply_key(facts: &Facts) -> String {
    format!("reply:{}", facts.wamid)
}

/// A handoff's bridge message with, when `engine.bridge_template` is set, that approved
/// template to send instead if the 24-hour window has closed (Meta refuses free text then).
fn bridge(deps: &Deps<'_>, message: Option<BotMessage>) -> Option<BotMessage> {
    let template = crate::outbound::bridge_template(deps.config);
    message.map(|m| BotMessage {
        outside_window: template.map(|body| {
            let (name, language) = match &body {
                OutboundBody::Template { name, language, .. } => (name.clone(), language.clone()),
                _ => Default::default(),
            };
            let note = format!(
                "The 24-hour window had closed when this conversation was handed off, so the customer got the approved template \"{name}\" ({language}) instead of the bridge text. Anything free-form has to wait until the customer writes again."
            );
            (body, note)
        }),
        ..m
    })
}

/// A bot text; one that cannot be sent (too long, empty) is logged, not retried.
fn bot_message(key: Option<String>, body: String) -> Option<BotMessage> {
    let body = OutboundBody::Text {
        body,
        preview_url: false,
    };
    match body.validate() {
        Ok(()) => Some(BotMessage {
            key,
            body,
            outside_window: None,
        }),
        Err(e) => {
            tracing::warn!(?key, reason = %format!("cannot send this message: {e}"), "bot message not sent");
            None
        }
    }
}

/// The handoff packet.
fn new_handoff(
    facts: &Facts,
    run: &Run,
    trigger: HandoffTrigger,
    reason: String,
    confidence: Option<f64>,
) -> NewHandoff {
    // The summary as this run left it (refreshed by the model step), else as stored.
    let earlier = run
        .summary
        .as_deref()
        .or(facts.conversation.summary.as_ref().map(|s| s.0.as_str()));
    let sources: Vec<String> = run
        .hits
        .iter()
        .map(|h| format!("{}#{}", h.doc_id, h.chunk_id))
        .collect();
    NewHandoff {
        conversation_id: facts.conversation_id,
        inbound_wamid: facts.wamid.clone(),
        trigger: trigger.as_str().to_string(),
        reason,
        confidence,
        summary: handoff_summary(facts, &run.hits, earlier),
        sources_json: json!(sources).to_string(),
        cost_usd: run.cost_usd,
    }
}

/// The first-contact disclosure: customers are told they are talking to an automated assistant.
pub fn disclosure(business: &str, facts: &Facts) -> String {
    let name = facts
        .customer_name
        .as_deref()
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    format!("Hi{name}! I'm the automated assistant of {business}; a teammate can take over any time.")
}

/// What the agent reads first: the conversation so far (its rolling summary, when it has
/// one), the customer's words and what the bot had found.
pub fn handoff_summary(facts: &Facts, hits: &[Hit], earlier: Option<&str>) -> String {
    let said: String = facts.inbound_text.chars().take(300).collect();
    let name = facts.customer_name.as_deref().unwrap_or("The customer");
    let mut s = earlier.map(|e| format!("Earlier: {e} ")).unwrap_or_default();
    s.push_str(&match hits.first() {
        Some(h) => format!(
            "{name} wrote: \"{said}\". Closest document: {} ({}).",
            h.title, h.doc_id
        ),
        None => format!("{name} wrote: \"{said}\"."),
    });
    s
}
