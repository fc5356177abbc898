//! The engine's policy (pure): from the gathered `Facts` and the live settings, what to
//! do with a message — STOP/START, silence while a person owns it, a handoff by rule
//! (kill switch, the customer asking for a person, unusable media), or on to routing;
//! the route (rules → the classifier's label → turn count, within the budgets); and the
//! handoff cooldown after a hand-back. No I/O: the steps that need it (embedding,
//! retrieval, models, tools) run between these functions and hand their results in.

use serde::{Deserialize, Serialize};

use super::facts::Facts;
use super::triggers;
use crate::domain::budget::{self, Allowance};
use crate::domain::router::{self, Classified, Route, Rule, Tier};
use crate::domain::settings::Effective;
use crate::store::handoffs::Handback;

/// Answer the customer, or hand the conversation to a person.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer {
        text: String,
        confidence: f64,
        sources: Vec<String>,
    },
    Handoff {
        trigger: HandoffTrigger,
        reason: String,
        confidence: Option<f64>,
    },
}

impl Decision {
    /// A handoff without a confidence.
    pub fn handoff(trigger: HandoffTrigger, reason: impl Into<String>) -> Decision {
        Decision::Handoff {
            trigger,
            reason: reason.into(),
            confidence: None,
        }
    }
}

/// Why a conversation went to a person. Stored, counted and shown by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffTrigger {
    /// The kill switch is on: every conversation goes to people.
    KillSwitch,
    /// The customer asked for a person.
    AskedForHuman,
    /// The customer sent only media the bot could not use (`media.on_failure = "handoff"`).
    MediaFailed,
    /// A routing rule or label sends it to a person.
    Routed,
    /// A daily budget is spent.
    Budget,
    /// A sensitive topic needs judgement and no model is configured for it.
    Sensitive,
    /// The order tool could not answer (offline responder).
    ToolFailed,
    /// Nothing in the knowledge base matches.
    NoKnowledge,
    /// Keyword-only retrieval: the offline responder cannot judge its confidence.
    NoVectors,
    /// The best passage or the model's confidence is below the threshold.
    LowConfidence,
    /// Nothing retrieved answers the question (every passage under the similarity floor):
    /// the customer is told the bot does not know (`unknown_text`) and a person answers.
    NoAnswer,
    /// Every model of the chain failed.
    ModelUnavailable,
    /// The model kept calling tools.
    ToolLoop,
    /// The model's reply was malformed twice.
    MalformedReply,
    /// The model chose to hand off.
    ModelHandoff,
    /// The reply stated a fact nothing supports (the grounding guard).
    Ungrounded,
    /// The process stopped twice while this reply was being made (a crash, a kill, a power
    /// cut mid-call): rather than risk a third, a person answers.
    ReplyInterrupted,
}

impl HandoffTrigger {
    pub const ALL: [HandoffTrigger; 17] = [
        HandoffTrigger::KillSwitch,
        HandoffTrigger::AskedForHuman,
        HandoffTrigger::MediaFailed,
        HandoffTrigger::Routed,
        HandoffTrigger::Budget,
        HandoffTrigger::Sensitive,
        HandoffTrigger::ToolFailed,
        HandoffTrigger::NoKnowledge,
        HandoffTrigger::NoVectors,
        HandoffTrigger::LowConfidence,
        HandoffTrigger::ModelUnavailable,
        HandoffTrigger::ToolLoop,
        HandoffTrigger::MalformedReply,
        HandoffTrigger::ModelHandoff,
        HandoffTrigger::Ungrounded,
        HandoffTrigger::ReplyInterrupted,
        HandoffTrigger::NoAnswer,
    ];

    /// The stored name (traces, handoff rows, the metric's label).
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffTrigger::KillSwitch => "kill_switch",
            HandoffTrigger::AskedForHuman => "asked_for_human",
            HandoffTrigger::MediaFailed => "media_failed",
            HandoffTrigger::Routed => "routed",
            HandoffTrigger::Budget => "budget",
            HandoffTrigger::Sensitive => "sensitive",
            HandoffTrigger::ToolFailed => "tool_failed",
            HandoffTrigger::NoKnowledge => "no_knowledge",
            HandoffTrigger::NoVectors => "no_vectors",
            HandoffTrigger::LowConfidence => "low_confidence",
            HandoffTrigger::NoAnswer => "no_answer",
            HandoffTrigger::ModelUnavailable => "model_unavailable",
            HandoffTrigger::ToolLoop => "tool_loop",
            HandoffTrigger::MalformedReply => "malformed_reply",
            HandoffTrigger::ModelHandoff => "model_handoff",
            HandoffTrigger::Ungrounded => "ungrounded",
            HandoffTrigger::ReplyInterrupted => "reply_interrupted",
        }
    }

    /// A stored name back (`None` for a name this version does not know).
    pub fn parse(s: &str) -> Option<HandoffTrigger> {
        HandoffTrigger::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The setting whose text the handoff sends: the static reply under the kill switch
    /// or a spent budget, the honest "I don't have that information" when the documents
    /// do not answer, else the bridge.
    pub fn message_setting(self) -> &'static str {
        match self {
            HandoffTrigger::KillSwitch | HandoffTrigger::Budget => "static_reply",
            HandoffTrigger::NoAnswer | HandoffTrigger::NoKnowledge => "unknown_text",
            _ => "bridge_text",
        }
    }

    /// Why the conversation came to a person, in a sentence an agent understands (no
    /// thresholds, scores or setting names: those are the admin's details).
    pub fn for_agent(self) -> &'static str {
        match self {
            HandoffTrigger::KillSwitch => {
                "The bot is switched off (kill switch), so every conversation comes to a person."
            }
            HandoffTrigger::AskedForHuman => "The customer asked to talk to a person.",
            HandoffTrigger::MediaFailed => "The customer sent a photo, voice note or file the bot could not read.",
            HandoffTrigger::Routed => "Your team's routing rules send conversations like this one to a person.",
            HandoffTrigger::Budget => "The bot reached its spending limit for today, so people answer until tomorrow.",
            HandoffTrigger::Sensitive => "The topic looks sensitive, so a person should answer it.",
            HandoffTrigger::ToolFailed => "The bot could not look up the order, so a person should check it.",
            HandoffTrigger::NoKnowledge => "The bot's knowledge base has nothing about this question.",
            HandoffTrigger::NoVectors => {
                "The bot found something that might fit but could not tell whether it answers the question, so it asked a person."
            }
            HandoffTrigger::LowConfidence => {
                "The bot was not sure enough of its answer, so it asked a person instead of guessing."
            }
            HandoffTrigger::NoAnswer => {
                "The documents do not answer this question, so the bot told the customer it does not know and asked a person."
            }
            HandoffTrigger::ModelUnavailable => "The bot's AI service did not respond, so a person should reply.",
            HandoffTrigger::ToolLoop => "The bot got stuck looking things up and stopped.",
            HandoffTrigger::MalformedReply => "The bot could not put together a proper answer.",
            HandoffTrigger::ModelHandoff => "The bot judged that a person should handle this.",
            HandoffTrigger::Ungrounded => {
                "The bot's draft stated something (a price, date or number) it could not back up, so it was not sent."
            }
            HandoffTrigger::ReplyInterrupted => {
                "The bot's answer was interrupted twice (the server stopped while it worked), so a person takes over."
            }
        }
    }

    /// `for_agent` of a stored trigger name; a name this version does not know gets a
    /// general sentence.
    pub fn explain(stored: &str) -> &'static str {
        HandoffTrigger::parse(stored).map_or(
            "The bot handed this conversation to a person.",
            HandoffTrigger::for_agent,
        )
    }

    /// Whether a hand-back shortly before suppresses this trigger (no handoff loops); a
    /// customer asking for a person and the kill switch always hand off.
    pub fn suppressible(self) -> bool {
        !matches!(self, HandoffTrigger::AskedForHuman | HandoffTrigger::KillSwitch)
    }
}

impl std::fmt::Display for HandoffTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// With a model: the handoff when the documents do not answer a question — retrieval
/// judged its passages (`best`, the highest similarity; `None` when keyword-only) and
/// none reaches `floor` (0 = off). Only for a question (`asks`) on the commodity tier
/// with no order number for a tool: "thanks!" or "yes please" is the model's to answer,
/// and judgement or an order lookup does not depend on the documents.
pub fn unanswered(best: Option<f64>, floor: f64, asks: bool) -> Option<Decision> {
    let best = best?;
    (asks && floor > 0.0 && best < floor).then(|| Decision::Handoff {
        trigger: HandoffTrigger::NoAnswer,
        reason: format!(
            "no passage answers the question: the closest is only {best:.2} similar (engine.answer_floor {floor:.2})"
        ),
        confidence: Some(best),
    })
}

/// The text a handoff sends: the setting its trigger names (an unknown stored trigger
/// gets the bridge).
pub fn handoff_message(settings: &Effective, trigger: &str) -> String {
    let key = HandoffTrigger::parse(trigger).map_or("bridge_text", HandoffTrigger::message_setting);
    settings.get(key).to_string()
}

/// What the config adds to the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `media.on_failure = "handoff"`: unusable media goes to a person, not a request to type.
    pub media_failure_handoff: bool,
    /// After a hand-back, the same trigger does not hand off again for this long.
    pub handoff_cooldown_ms: i64,
}

impl Policy {
    pub fn of(config: &crate::config::Config) -> Policy {
        Policy {
            media_failure_handoff: config.media.on_failure == crate::config::MediaFailure::Handoff,
            handoff_cooldown_ms: config.engine.handoff_cooldown_ms as i64,
        }
    }
}

/// What to do with a message, decided before any retrieval or model call.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// STOP or START (the latest in the burst): record it when it changes (`changed`),
    /// confirm it, and say nothing else.
    Opt { opt_out: bool, changed: bool },
    /// Say nothing; why (for the trace).
    Silent(&'static str),
    /// A person owns the conversation because this very message handed it off (a crash
    /// may have stopped its message being queued): queue the message again (idempotent).
    FinishHandoff { handoff_id: i64, trigger: String },
    /// Decided by rule: the decision, the route reason and the guard line of the trace.
    Fixed {
        decision: Decision,
        route_reason: String,
        guard: &'static str,
    },
    /// Route, retrieve and answer; the budget decides which models may be asked.
    Route { allowance: Allowance },
}

/// The trace reason of each silent outcome.
pub const SILENT_OPTED_OUT: &str = "the contact opted out (STOP)";
pub const SILENT_HUMAN_OWNER: &str = "a person owns the conversation";

/// The plan for the message `facts` describe.
pub fn decide(facts: &Facts, settings: &Effective, policy: &Policy) -> Plan {
    let conv = &facts.conversation;
    // STOP / START work whoever owns the conversation; the latest one in a burst wins.
    if let Some(opt_out) = facts.texts.iter().rev().find_map(|t| triggers::opt_command(t)) {
        let changed = opt_out != conv.opted_out;
        return Plan::Opt { opt_out, changed };
    }
    if conv.opted_out {
        return Plan::Silent(SILENT_OPTED_OUT);
    }
    if !conv.owner.bot_answers() {
        return match &conv.handoff_for_inbound {
            Some((handoff_id, trigger)) => Plan::FinishHandoff {
                handoff_id: *handoff_id,
                trigger: trigger.clone(),
            },
            None => Plan::Silent(SILENT_HUMAN_OWNER),
        };
    }
    let text = facts.question();
    let unusable_reason = facts.unusable_media.as_ref().map(|(t, voice)| {
        let what = if *voice { "a voice note" } else { t.as_str() };
        format!("the customer sent {what} the bot could not use (see the message for why)")
    });
    let rule = if settings.switch("kill_switch") {
        let reason = "the kill switch is on: every conversation goes to people";
        Some((HandoffTrigger::KillSwitch, reason.to_string()))
    } else if let Some(p) = triggers::asks_for_human(&text) {
        Some((
            HandoffTrigger::AskedForHuman,
            format!("the customer asked for a person (\"{p}\")"),
        ))
    } else if policy.media_failure_handoff {
        unusable_reason.clone().map(|r| (HandoffTrigger::MediaFailed, r))
    } else {
        None
    };
    match (rule, &facts.unusable_media) {
        (Some((trigger, reason)), _) => Plan::Fixed {
            decision: Decision::handoff(trigger, reason.clone()),
            route_reason: reason,
            guard: "skipped: handoff",
        },
        (None, Some((media_type, voice))) => Plan::Fixed {
            decision: Decision::Answer {
                text: crate::domain::media::ask_for_text(media_type, *voice),
                confidence: 1.0,
                sources: Vec::new(),
            },
            route_reason: format!("{}: asked for text", unusable_reason.unwrap_or_default()),
            guard: "skipped: fixed text",
        },
        (None, None) => Plan::Route {
            allowance: allowance(facts, settings),
        },
    }
}

/// Today's budget: past 80% the cheaper tier, at 100% no model call. Spending is only
/// gathered when a tier has a model; without it everything is allowed.
pub fn allowance(facts: &Facts, settings: &Effective) -> Allowance {
    let Some(spent) = facts.conversation.spent else {
        return Allowance::Full;
    };
    let n = |k: &str| settings.number(k);
    budget::allowance(
        budget::Meter {
            usd: spent.contact_usd,
            tokens: spent.contact_tokens as f64,
            limit_usd: n("budget.contact_daily_usd"),
            limit_tokens: n("budget.contact_daily_tokens"),
        },
        budget::Meter {
            usd: spent.global_usd,
            tokens: spent.global_tokens as f64,
            limit_usd: n("budget.global_daily_usd"),
            limit_tokens: n("budget.global_daily_tokens"),
        },
    )
}

/// Whether the classifier is asked: no rule matched and the budget is not spent.
pub fn needs_classifier(rule_matched: bool, allowance: &Allowance) -> bool {
    !rule_matched && !matches!(allowance, Allowance::Exhausted(_))
}

/// What routing decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The trace's route: the tier, or `handoff`.
    pub label: &'static str,
    /// Why (the trace's route reason).
    pub reason: String,
    pub tier: Tier,
    /// The tier has no model: the offline responder (or a person) answers.
    pub offline: bool,
    /// `Some`: decided without answering (routed to a person, budget spent, sensitive).
    pub decision: Option<Decision>,
}

/// What the router's inputs say.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteInput<'a> {
    pub rule: Option<(&'a Rule, &'a str)>,
    pub classified: Option<&'a Classified>,
    /// Why the classifier gave no label, when it gave none.
    pub note: Option<&'a str>,
    /// Customer messages on this issue (the last 30 minutes).
    pub recent: usize,
}

/// The route: rules, then the classifier's label, then the turn count; then the
/// budget (the cheaper tier past 80%, a handoff when spent) and whether the tier has a
/// model (`remote`). A sensitive topic (routed by rule or label to `reasoning`) with no
/// model goes to a person.
pub fn route(input: RouteInput<'_>, allowance: &Allowance, remote: impl Fn(Tier) -> bool) -> Routed {
    let (route, mut why) = router::decide(input.rule, input.classified, input.recent);
    if let Some(note) = input.note {
        why = format!("{why} ({note})");
    }
    let by_topic = input.rule.is_some() || input.classified.is_some();
    let mut tier = if route == Route::Reasoning {
        Tier::Reasoning
    } else {
        Tier::Commodity
    };
    let mut exhausted = None;
    if remote(tier) {
        match allowance {
            Allowance::Full => {}
            Allowance::Cheaper(r) if tier == Tier::Reasoning => {
                tier = Tier::Commodity;
                why = format!("{why}; {r}: commodity tier instead");
            }
            Allowance::Cheaper(_) => {}
            Allowance::Exhausted(r) => exhausted = Some(r.clone()),
        }
    }
    let label = if route == Route::Handoff {
        "handoff"
    } else {
        tier.as_str()
    };
    let routed = |reason: String, offline: bool, decision: Option<Decision>| Routed {
        label,
        reason,
        tier,
        offline,
        decision,
    };
    if route == Route::Handoff {
        let d = Decision::handoff(HandoffTrigger::Routed, format!("{why}: routed to a person"));
        return routed(why, false, Some(d));
    }
    if let Some(r) = exhausted {
        return routed(why, false, Some(Decision::handoff(HandoffTrigger::Budget, r)));
    }
    if remote(tier) {
        return routed(why, false, None);
    }
    let reason = format!("{why}; no model configured for this tier: offline responder");
    // Needs judgement and no model can give it: a person.
    let sensitive = (tier == Tier::Reasoning && by_topic)
        .then(|| Decision::handoff(HandoffTrigger::Sensitive, format!("{why}: a person should handle it")));
    routed(reason, true, sensitive)
}

/// What the bot says instead of handing off again right after a hand-back.
pub const SUPPRESSED_HANDOFF_TEXT: &str =
    "I'm not sure I can answer that one. Could you put it another way? You can also ask for a person any time.";

/// No handoff loops: right after a hand-back, the trigger that handed off then does not
/// hand off again (a customer asking for a person, or the kill switch, always does).
/// Returns the decision and, when a handoff was suppressed, the trace's guard line.
pub fn after_handback(
    decision: Decision,
    last: Option<&Handback>,
    now: i64,
    cooldown_ms: i64,
) -> (Decision, Option<String>) {
    match (decision, last) {
        (
            Decision::Handoff {
                trigger,
                reason,
                confidence,
            },
            Some(h),
        ) if trigger.suppressible() && h.trigger == trigger.as_str() && now - h.at < cooldown_ms => {
            let guard = format!("handoff suppressed ({trigger}: {reason}); handed back recently");
            let answer = Decision::Answer {
                text: SUPPRESSED_HANDOFF_TEXT.into(),
                confidence: confidence.unwrap_or(0.0),
                sources: Vec::new(),
            };
            (answer, Some(guard))
        }
        (d, _) => (d, None),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
