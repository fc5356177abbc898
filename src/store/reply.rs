//! One reply's store work: what the engine reads before it decides
//! (`conversation_facts`, inside the caller's read transaction) and everything the reply
//! leaves behind (`record_reply`: opt-out, summary, handoff with its owner change, the bot
//! message's ledger row and the trace, in one write).

use rusqlite::Connection;

use super::handoffs::{self, Handback, NewHandoff, Spent, Trace};
use super::{contacts, conversations, ledger, summaries};
use crate::domain::outbound::OutboundBody;
use crate::domain::owner::Owner;
use crate::error::Result;

/// What to read about a conversation for one reply.
#[derive(Debug, Clone)]
pub struct FactsQuery<'a> {
    pub conversation_id: i64,
    /// The message being answered.
    pub wamid: &'a str,
    /// The first message of the burst the reply covers (history ends before it).
    pub burst_first: Option<i64>,
    /// Turns of history to read.
    pub history_turns: usize,
    /// Customer messages since this moment count as recent (Unix ms).
    pub recent_since: i64,
    /// Read model spend since this moment (Unix ms); `None`: no model is configured.
    pub spent_since: Option<i64>,
    /// Read the turns not yet in the rolling summary (for the models).
    pub memory: bool,
}

/// What the store holds about a conversation when a reply starts.
#[derive(Debug, Clone, Default)]
pub struct ConversationFacts {
    pub owner: Owner,
    pub opted_out: bool,
    /// The handoff this very message triggered, if one was recorded: (id, trigger).
    pub handoff_for_inbound: Option<(i64, String)>,
    /// Customer messages since `recent_since`.
    pub recent_inbound: usize,
    /// The message id where the reply's history ends.
    pub history_start: i64,
    /// The last turns before the reply (from the customer?, text), oldest first.
    pub history: Vec<(bool, String)>,
    pub bot_messages_sent: i64,
    pub last_handback: Option<Handback>,
    /// The rolling summary and the last message id it covers.
    pub summary: Option<(String, i64)>,
    /// Older turns not in the summary yet: (id, from the customer?, text), oldest first
    /// (read only when `memory`).
    pub unsummarized: Vec<(i64, bool, String)>,
    /// Read only when `spent_since` is set.
    pub spent: Option<Spent>,
}

/// The account-health state of a bridge template Meta will not send.
fn blocked_bridge(conn: &Connection, body: &OutboundBody) -> Result<Option<super::health::TemplateHealth>> {
    match body {
        OutboundBody::Template { name, language, .. } => super::health::blocked_template(conn, name, language),
        _ => Ok(None),
    }
}

/// Reads the facts of `q`; call it inside one read transaction so they are of one moment.
pub fn conversation_facts(conn: &Connection, q: &FactsQuery<'_>) -> Result<ConversationFacts> {
    let conv = q.conversation_id;
    let history_start = conversations::history_start(conn, q.wamid, q.burst_first)?;
    let summary = summaries::get(conn, conv)?;
    let unsummarized = if q.memory {
        let after = summary.as_ref().map(|s| s.1).unwrap_or(0);
        summaries::unsummarized(conn, conv, after, history_start, q.history_turns)?
    } else {
        Vec::new()
    };
    Ok(ConversationFacts {
        owner: handoffs::owner(conn, conv)?,
        opted_out: contacts::opted_out(conn, conv)?,
        handoff_for_inbound: handoffs::handoff_for_inbound(conn, q.wamid)?,
        recent_inbound: conversations::recent_inbound(conn, conv, q.recent_since)?,
        history_start,
        history: conversations::history(conn, conv, history_start, q.history_turns)?,
        bot_messages_sent: handoffs::bot_messages_sent(conn, conv)?,
        last_handback: handoffs::last_handback(conn, conv)?,
        summary,
        unsummarized,
        spent: q
            .spent_since
            .map(|since| handoffs::spent_since(conn, conv, since))
            .transpose()?,
    })
}

/// A refreshed rolling summary to store.
#[derive(Debug, Clone)]
pub struct NewSummary {
    pub text: String,
    /// The last message id it covers.
    pub through: i64,
    pub model: String,
}

/// A bot message to queue through the ledger.
#[derive(Debug, Clone)]
pub struct BotMessage {
    /// The idempotency key; `None`: `bridge:<id>` of this record's handoff.
    pub key: Option<String>,
    pub body: OutboundBody,
    /// Sent instead when the 24-hour window is closed (an approved template), with the
    /// note that tells the inbox so; `None`: nothing is sent then.
    pub outside_window: Option<(OutboundBody, String)>,
}

/// Everything one reply writes.
#[derive(Debug, Clone, Default)]
pub struct ReplyRecord {
    pub conversation_id: i64,
    /// STOP (`true`) or START changed the contact's opt-out.
    pub opt_out: Option<bool>,
    pub summary: Option<NewSummary>,
    pub handoff: Option<NewHandoff>,
    pub message: Option<BotMessage>,
    pub trace: Option<Trace>,
}

/// What `record_reply` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub handoff_id: Option<i64>,
    /// The message's ledger row: (id, created_at), to queue its send.
    pub queued: Option<(i64, i64)>,
    /// The message was refused: the 24-hour window is closed (the conversation is flagged
    /// and the message kept as a failed ledger row).
    pub window_closed: bool,
}

/// Writes `r` (call it inside one write); a re-run for the same message changes nothing
/// (the handoff, the ledger row and the trace are each keyed by the message).
pub fn record_reply(conn: &Connection, r: &ReplyRecord, now: i64) -> Result<Recorded> {
    let mut done = Recorded::default();
    if let Some(opt_out) = r.opt_out {
        contacts::set_opted_out(conn, r.conversation_id, opt_out, now)?;
    }
    if let Some(s) = &r.summary {
        summaries::put(conn, r.conversation_id, &s.text, s.through, &s.model, now)?;
    }
    if let Some(h) = &r.handoff {
        done.handoff_id = Some(handoffs::start_handoff(conn, h, now)?);
    }
    if let Some(m) = &r.message {
        let key = match (&m.key, done.handoff_id) {
            (Some(k), _) => k.clone(),
            (None, Some(id)) => format!("bridge:{id}"),
            (None, None) => return Err(crate::Error::Internal("a bridge message without a handoff".into())),
        };
        let req = ledger::NewOutbound {
            conversation_id: r.conversation_id,
            author: "bot".into(),
            body: m.body.clone(),
            reply_to: None,
            idempotency_key: key,
        };
        done.queued = ledger::insert_within_window(conn, &req, now)?;
        done.window_closed = done.queued.is_none();
        match (done.queued, &m.outside_window) {
            (None, Some((template, _))) if blocked_bridge(conn, template)?.is_some() => {
                // Meta rejected, paused or disabled the bridge template: not used. Kept as
                // a failed row like a bridge without a template, and the inbox says why.
                let why = blocked_bridge(conn, template)?.map(|t| t.why()).unwrap_or_default();
                let (id, new) = ledger::insert(conn, &req, now)?;
                ledger::mark_failed(conn, id, Some(131047), ledger::WINDOW_CLOSED_REASON, true, now)?;
                if new {
                    let note = format!(
                        "The 24-hour window had closed when this conversation was handed off, and the bridge template was not used: Meta has it {why}. Nothing reached the customer."
                    );
                    super::inbox::add_note(conn, r.conversation_id, "bot", &note, now)?;
                }
            }
            (None, Some((template, note))) => {
                let req = ledger::NewOutbound {
                    body: template.clone(),
                    ..req
                };
                let (id, new) = ledger::insert(conn, &req, now)?;
                done.queued = Some((id, ledger::created_at(conn, id)?));
                // Said once in the inbox; the conversation stays flagged as needing a
                // template for anything free-form after this.
                if new {
                    super::inbox::add_note(conn, r.conversation_id, "bot", note, now)?;
                }
            }
            (None, None) => {
                // Kept as a failed row, so the agent sees in the thread what the customer
                // never got, and why.
                let (id, _) = ledger::insert(conn, &req, now)?;
                ledger::mark_failed(conn, id, Some(131047), ledger::WINDOW_CLOSED_REASON, true, now)?;
            }
            (Some(_), _) => {}
        }
    }
    if let Some(t) = &r.trace {
        handoffs::record_trace(conn, t, now)?;
    }
    Ok(done)
}
