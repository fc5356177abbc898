//! The conversation engine: for one customer message, decide and act — answer from the
//! knowledge base or hand the conversation to a person — and record a trace. A reply is
//! three steps:
//!
//! - **gather** (`facts`): one read transaction collects the conversation's `Facts` and
//!   the live settings;
//! - **decide** (`decide`, pure): STOP/START; opted out or a person owns it → silent; the
//!   kill switch, the customer asking for a person or unusable media → handoff; else the
//!   budget, then (after embedding and the classifier) the route. The steps that need
//!   I/O in between (`answer`: classifier, retrieval, order tool, models) hand their
//!   results to pure functions too (`offline`, `llm_reply::judge`, `memory::accept`);
//! - **act** (`act`): the hand-back cooldown, then the opt-out, summary, handoff (owner
//!   to a person), the bot message's ledger row and the trace in one write; the send job
//!   is queued after it (a re-run finds the handoff and queues its message once).
//!
//! Store round trips per reply: the gather read and the act write; retrieval adds one
//! knowledge-store read per search (two for a follow-up).

pub mod act;
pub mod answer;
pub mod classifier;
pub mod context;
pub mod decide;
pub mod facts;
pub mod llm_reply;
pub mod memory;
pub mod notify;
pub mod offline;
pub mod retrieve;
pub mod run;
pub mod structured;
pub mod tools;
pub mod triggers;

use std::time::Instant;

pub use answer::ORDER_TOOL;
pub use decide::{Decision, HandoffTrigger, SUPPRESSED_HANDOFF_TEXT};
pub use offline::CLARIFY_TEXT;

use crate::config::Config;
use crate::error::Result;
use crate::knowledge::Knowledge;
use crate::llm::Models;
use crate::metrics::{Labeled, Metrics, ReplyStages};
use crate::queue::Queue;
use crate::store::Store;
use crate::store::conversations::{Burst, InboundForReply};
use classifier::Classifier;
use decide::{Plan, Policy};
use facts::Gathered;
use run::Run;

/// The handles the engine uses (borrowed from the application's).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    /// Send jobs are queued here after the ledger row is written.
    pub queue: &'a Queue,
    pub knowledge: &'a Knowledge,
    pub models: &'a Models,
    pub classifier: &'a Classifier,
    pub metrics: &'a Metrics,
    pub labeled: &'a Labeled,
    pub reply_stages: &'a ReplyStages,
}

/// What the engine did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    Answered,
    HandedOff,
    /// A person owns the conversation, or the contact opted out.
    Silent,
}

impl ReplyOutcome {
    /// The trace's outcome of an answer or a handoff.
    fn trace_name(&self) -> &'static str {
        match self {
            ReplyOutcome::Answered => "answered",
            _ => "handoff",
        }
    }
}

/// Answers or hands off one inbound message (`wamid`) of a conversation. `burst` holds
/// the customer messages the reply covers (none: just this one).
pub async fn respond(
    deps: &Deps<'_>,
    wamid: &str,
    inbound: &InboundForReply,
    burst: Option<&Burst>,
) -> Result<ReplyOutcome> {
    respond_unless_interrupted(deps, wamid, inbound, burst, false).await
}

/// `respond`, except that a reply whose making was `interrupted` twice already (the
/// process stopped while it ran) hands off to a person where it would ask a model or
/// search: the slow, outside part a stop is most likely to catch. The cheap, fixed
/// plans (opt-out, kill switch, rules, a recorded handoff) run as usual.
pub async fn respond_unless_interrupted(
    deps: &Deps<'_>,
    wamid: &str,
    inbound: &InboundForReply,
    burst: Option<&Burst>,
    interrupted: bool,
) -> Result<ReplyOutcome> {
    let started = Instant::now();
    let Gathered { facts, settings } = facts::gather(deps, wamid, inbound, burst).await?;
    let (run, decision) = match decide::decide(&facts, &settings, &Policy::of(deps.config)) {
        Plan::Opt { opt_out, changed } => return act::opt(deps, &facts, opt_out, changed).await,
        Plan::Silent(reason) => return act::silent(deps, &facts, reason).await,
        Plan::FinishHandoff { handoff_id, trigger } => {
            return act::finish_handoff(deps, &facts, &settings, handoff_id, &trigger).await;
        }
        Plan::Fixed {
            decision,
            route_reason,
            guard,
        } => (Run::by_rule(route_reason, guard), decision),
        Plan::Route { .. } if interrupted => (
            Run::by_rule("interrupted twice while answering".into(), ""),
            Decision::handoff(
                HandoffTrigger::ReplyInterrupted,
                "the process stopped twice while this reply was being made",
            ),
        ),
        Plan::Route { allowance } => answer::answer(deps, &facts, &settings, allowance).await?,
    };
    act::reply(deps, (&facts, &settings), run, decision, started).await
}

/// Hands a person-owned conversation back to the bot, with a note the bot will see.
pub async fn hand_back(store: &Store, conversation_id: i64, actor: &str, note: &str) -> Result<bool> {
    let (actor, note, now) = (actor.to_string(), note.to_string(), crate::domain::now_ms());
    store
        .write(move |c| crate::store::handoffs::hand_back(c, conversation_id, &actor, &note, now))
        .await
}

/// Hands back conversations idle for `minutes` (`engine.auto_handback_minutes`; the
/// maintenance worker calls this); returns how many.
pub async fn auto_hand_back(store: &Store, minutes: f64) -> Result<usize> {
    if minutes <= 0.0 {
        return Ok(0);
    }
    let before = crate::domain::now_ms() - (minutes * 60_000.0) as i64;
    let idle = store
        .read(move |c| crate::store::handoffs::idle_human_conversations(c, before))
        .await?;
    let note = format!("no activity for {minutes} minutes; the bot resumed on its own");
    for &id in &idle {
        hand_back(store, id, "auto", &note).await?;
    }
    Ok(idle.len())
}
