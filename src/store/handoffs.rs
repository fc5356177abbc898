//! Who answers a conversation and why it changed: handoffs (the owner moves to a person
//! in the same write), hand-backs and owner moves; the reply traces the engine leaves
//! and the model spend read from them. (`reply.rs` composes these into one reply's
//! reads and writes.)

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::domain::owner::Owner;
use crate::domain::webhook::EventKind;
use crate::error::Result;

/// A handoff to record.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub conversation_id: i64,
    pub inbound_wamid: String,
    pub trigger: String,
    pub reason: String,
    pub confidence: Option<f64>,
    pub summary: String,
    pub sources_json: String,
    pub cost_usd: f64,
}

/// A stored handoff, as the inbox shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HandoffRow {
    pub id: i64,
    pub conversation_id: i64,
    pub inbound_wamid: String,
    pub trigger: String,
    pub reason: String,
    pub confidence: Option<f64>,
    pub summary: String,
    pub sources: serde_json::Value,
    pub cost_usd: f64,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
}

/// Hands the conversation to a human and records why, in one write. Returns the handoff
/// id; a second call for the same inbound message returns the first one's id.
pub fn start_handoff(conn: &Connection, h: &NewHandoff, now: i64) -> Result<i64> {
    if let Some(id) = conn
        .query_row(
            "SELECT id FROM handoffs WHERE inbound_wamid = ?1",
            [&h.inbound_wamid],
            |r| r.get(0),
        )
        .optional()?
    {
        return Ok(id);
    }
    // Whoever owned it, a person does now (`Owner::start_handoff`).
    conn.execute(
        "UPDATE conversations SET owner = ?2 WHERE id = ?1",
        params![h.conversation_id, Owner::Bot.start_handoff().as_str()],
    )?;
    conn.execute(
        "INSERT INTO handoffs (conversation_id, inbound_wamid, trigger, reason, confidence, summary, sources_json, cost_usd, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![h.conversation_id, h.inbound_wamid, h.trigger, h.reason, h.confidence, h.summary, h.sources_json, h.cost_usd, now],
    )?;
    let id = conn.last_insert_rowid();
    super::webhooks::record_for_conversation(
        conn,
        EventKind::HandedOff,
        h.conversation_id,
        serde_json::json!({ "by": "bot", "trigger": h.trigger, "reason": h.reason, "inbound_wamid": h.inbound_wamid }),
    )?;
    Ok(id)
}

/// The handoff an inbound message triggered, if any: (id, trigger).
pub fn handoff_for_inbound(conn: &Connection, wamid: &str) -> Result<Option<(i64, String)>> {
    Ok(conn
        .query_row(
            "SELECT id, trigger FROM handoffs WHERE inbound_wamid = ?1",
            [wamid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// A conversation's handoffs, oldest first.
pub fn handoffs_for(conn: &Connection, conversation_id: i64) -> Result<Vec<HandoffRow>> {
    let mut st = conn.prepare_cached(
        "SELECT id, conversation_id, inbound_wamid, trigger, reason, confidence, summary, sources_json, cost_usd, created_at, resolved_at
         FROM handoffs WHERE conversation_id = ?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([conversation_id], |r| {
            Ok(HandoffRow {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                inbound_wamid: r.get(2)?,
                trigger: r.get(3)?,
                reason: r.get(4)?,
                confidence: r.get(5)?,
                summary: r.get(6)?,
                sources: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                cost_usd: r.get(8)?,
                created_at: r.get(9)?,
                resolved_at: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// How many messages the bot has sent (or queued) in a conversation.
pub fn bot_messages_sent(conn: &Connection, conversation_id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM outbound WHERE conversation_id = ?1 AND author = 'bot'",
        [conversation_id],
        |r| r.get(0),
    )?)
}

/// One reply's trace.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub conversation_id: i64,
    pub inbound_wamid: String,
    pub route: String,
    pub route_reason: String,
    pub model: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub confidence: Option<f64>,
    pub outcome: String,
    pub guard: String,
    pub retrieved: serde_json::Value,
    /// Each model tried along the tier's chain, with its outcome.
    pub attempts: serde_json::Value,
    pub stages_ms: serde_json::Value,
}

/// Stores a trace (the first one per inbound message wins: a re-run changes nothing).
pub fn record_trace(conn: &Connection, t: &Trace, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO reply_traces (conversation_id, inbound_wamid, route, route_reason, model, tokens_in, tokens_out, cost_usd,
            confidence, outcome, guard, retrieved_json, stages_json, created_at, attempts_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT(inbound_wamid) DO NOTHING",
        params![
            t.conversation_id,
            t.inbound_wamid,
            t.route,
            t.route_reason,
            t.model,
            t.tokens_in,
            t.tokens_out,
            t.cost_usd,
            t.confidence,
            t.outcome,
            t.guard,
            t.retrieved.to_string(),
            t.stages_ms.to_string(),
            now,
            t.attempts.to_string()
        ],
    )?;
    Ok(())
}

/// The trace of one inbound message.
pub fn trace_for(conn: &Connection, wamid: &str) -> Result<Option<Trace>> {
    Ok(conn
        .query_row(
            "SELECT conversation_id, inbound_wamid, route, route_reason, model, tokens_in, tokens_out, cost_usd, confidence, outcome, guard,
                    retrieved_json, stages_json, attempts_json FROM reply_traces WHERE inbound_wamid = ?1",
            [wamid],
            |r| {
                Ok(Trace {
                    conversation_id: r.get(0)?,
                    inbound_wamid: r.get(1)?,
                    route: r.get(2)?,
                    route_reason: r.get(3)?,
                    model: r.get(4)?,
                    tokens_in: r.get(5)?,
                    tokens_out: r.get(6)?,
                    cost_usd: r.get(7)?,
                    confidence: r.get(8)?,
                    outcome: r.get(9)?,
                    guard: r.get(10)?,
                    retrieved: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
                    stages_ms: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
                    attempts: serde_json::from_str(&r.get::<_, String>(13)?).unwrap_or_default(),
                })
            },
        )
        .optional()?)
}

/// Hands a conversation back to the bot: owner `bot`, open handoffs resolved with the
/// note. `false` when the conversation was not owned by a person.
pub fn hand_back(conn: &Connection, conversation_id: i64, actor: &str, note: &str, now: i64) -> Result<bool> {
    let from = Owner::Human;
    let changed = move_owner(
        conn,
        conversation_id,
        from,
        from.hand_back().expect("a person can hand back"),
    )?;
    conn.execute(
        "UPDATE handoffs SET resolved_at = ?2, resolved_by = ?3, handback_note = ?4 WHERE conversation_id = ?1 AND resolved_at IS NULL",
        params![conversation_id, now, actor, note],
    )?;
    if changed {
        super::settings::audit_conversation(conn, now, actor, "conversation.handback", conversation_id, note)?;
        super::webhooks::record_for_conversation(
            conn,
            EventKind::HandedBack,
            conversation_id,
            serde_json::json!({ "by": actor, "note": note }),
        )?;
    }
    Ok(changed)
}

/// Moves a conversation's owner from `from` to `to` (one transition of `Owner`); false
/// when it was not owned by `from`.
pub fn move_owner(conn: &Connection, conversation_id: i64, from: Owner, to: Owner) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE conversations SET owner = ?2 WHERE id = ?1 AND owner = ?3",
        params![conversation_id, to.as_str(), from.as_str()],
    )? == 1)
}

/// A conversation's owner (`NotFound` for an unknown conversation; an unknown stored
/// value reads as a person, so the bot stays silent).
pub fn owner(conn: &Connection, conversation_id: i64) -> Result<Owner> {
    let s: String = conn
        .query_row(
            "SELECT owner FROM conversations WHERE id = ?1",
            [conversation_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| crate::Error::NotFound(format!("conversation {conversation_id}")))?;
    Ok(stored_owner(&s))
}

/// A stored owner; a value this version does not know reads as a person (the bot stays
/// silent rather than answer a conversation it may not own).
pub fn stored_owner(s: &str) -> Owner {
    Owner::parse(s).unwrap_or(Owner::Human)
}

/// The latest handoff of a conversation that was handed back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handback {
    pub trigger: String,
    /// When it was handed back (Unix ms).
    pub at: i64,
    /// What the person told the bot (may be empty).
    pub note: String,
}

/// The latest handoff of a conversation that was handed back.
pub fn last_handback(conn: &Connection, conversation_id: i64) -> Result<Option<Handback>> {
    Ok(conn
        .query_row(
            "SELECT trigger, resolved_at, COALESCE(handback_note, '') FROM handoffs
             WHERE conversation_id = ?1 AND resolved_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            [conversation_id],
            |r| {
                Ok(Handback {
                    trigger: r.get(0)?,
                    at: r.get(1)?,
                    note: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Person-owned conversations whose last message is older than `before` (Unix ms); a
/// conversation soft launch gave to people stays theirs.
pub fn idle_human_conversations(conn: &Connection, before: i64) -> Result<Vec<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM conversations WHERE owner = ?2 AND COALESCE(last_message_at, created_at) < ?1
           AND COALESCE(launch_group, 'bot') <> 'people' LIMIT 500",
    )?;
    let rows = st
        .query_map(params![before, Owner::Human.as_str()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Model spend since a moment: for this conversation's contact and for everyone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub contact_usd: f64,
    pub contact_tokens: u64,
    pub global_usd: f64,
    pub global_tokens: u64,
}

/// The whole desk's model spend since `since` (Unix ms): (USD, tokens in + out).
pub fn global_spent_since(conn: &Connection, since: i64) -> Result<(f64, u64)> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(tokens_in + tokens_out), 0) FROM reply_traces WHERE created_at >= ?1",
        [since],
        |r| Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)? as u64)),
    )?)
}

/// Model spend since `since` (Unix ms).
pub fn spent_since(conn: &Connection, conversation_id: i64, since: i64) -> Result<Spent> {
    let row = |r: &rusqlite::Row| Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)? as u64));
    let contact = conn.query_row(
        "SELECT COALESCE(SUM(t.cost_usd), 0), COALESCE(SUM(t.tokens_in + t.tokens_out), 0) FROM reply_traces t
         WHERE t.created_at >= ?2 AND t.conversation_id IN
             (SELECT id FROM conversations WHERE contact_id = (SELECT contact_id FROM conversations WHERE id = ?1))",
        params![conversation_id, since],
        row,
    )?;
    let global = global_spent_since(conn, since)?;
    Ok(Spent {
        contact_usd: contact.0,
        contact_tokens: contact.1,
        global_usd: global.0,
        global_tokens: global.1,
    })
}
