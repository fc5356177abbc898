//! Conversation reads and flags used by the workers and the send path.

use rusqlite::{Connection, OptionalExtension};

use crate::domain::owner::Owner;
use crate::error::{Error, Result};

/// What the reply worker needs about an inbound message and its conversation.
#[derive(Debug, Clone)]
pub struct InboundForReply {
    pub conversation_id: i64,
    pub phone_number_id: String,
    pub owner: Owner,
    pub name: Option<String>,
    pub text: String,
    /// The customer's WhatsApp id (empty for username-only users).
    pub wa_id: String,
}

/// The inbound message `wamid` with its conversation, if stored.
pub fn inbound_for_reply(conn: &Connection, wamid: &str) -> Result<Option<InboundForReply>> {
    Ok(conn
        .query_row(
            "SELECT m.conversation_id, c.phone_number_id, c.owner, k.name, m.text, COALESCE(k.wa_id, '')
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id
             WHERE m.wamid = ?1 AND m.direction = 'in'",
            [wamid],
            |r| {
                Ok(InboundForReply {
                    conversation_id: r.get(0)?,
                    phone_number_id: r.get(1)?,
                    owner: super::handoffs::stored_owner(&r.get::<_, String>(2)?),
                    name: r.get(3)?,
                    text: r.get(4)?,
                    wa_id: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// When the customer last wrote (Unix ms); `NotFound` for an unknown conversation.
pub fn last_inbound_at(conn: &Connection, conversation_id: i64) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT last_inbound_at FROM conversations WHERE id = ?1",
        [conversation_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("conversation {conversation_id}")))
}

/// Marks the conversation as needing a template (its 24-hour window closed).
pub fn flag_needs_template(conn: &Connection, conversation_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET needs_template = 1 WHERE id = ?1",
        [conversation_id],
    )?;
    Ok(())
}

/// The customer messages one reply should cover: every inbound message of the
/// conversation after the last one the engine handled (has a trace or handoff), up to
/// and including `wamid`.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Texts, oldest first.
    pub texts: Vec<String>,
    /// When the oldest of them was stored (Unix ms).
    pub oldest_at: i64,
    /// A newer customer message exists: its own reply job will cover this one too.
    pub newer_exists: bool,
    /// The message id where the burst starts (history is what came before).
    pub first_id: i64,
    /// Each message of the burst with its media state (the reply waits for media being
    /// read; a burst of only unusable media gets the fallback).
    pub parts: Vec<crate::domain::media::BurstPart>,
}

/// The burst ending at inbound message `wamid`.
pub fn burst(conn: &Connection, wamid: &str) -> Result<Option<Burst>> {
    let Some((id, conv)) = conn
        .query_row(
            "SELECT id, conversation_id FROM messages WHERE wamid = ?1 AND direction = 'in'",
            [wamid],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let handled: i64 = conn.query_row(
        "SELECT COALESCE(MAX(m.id), 0) FROM messages m WHERE m.conversation_id = ?1 AND m.direction = 'in' AND m.id < ?2
           AND (m.wamid IN (SELECT inbound_wamid FROM reply_traces WHERE conversation_id = ?1)
             OR m.wamid IN (SELECT inbound_wamid FROM handoffs WHERE conversation_id = ?1))",
        [conv, id],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare_cached(
        "SELECT text, created_at FROM messages WHERE conversation_id = ?1 AND direction = 'in' AND id > ?2 AND id <= ?3 ORDER BY id",
    )?;
    let rows: Vec<(String, i64)> = st
        .query_map([conv, handled, id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let newer_exists = conn
        .query_row(
            "SELECT 1 FROM messages WHERE conversation_id = ?1 AND direction = 'in' AND id > ?2 LIMIT 1",
            [conv, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let first_id: i64 = conn.query_row(
        "SELECT COALESCE(MIN(id), ?3) FROM messages WHERE conversation_id = ?1 AND direction = 'in' AND id > ?2 AND id <= ?3",
        [conv, handled, id],
        |r| r.get(0),
    )?;
    let parts = super::media::burst_parts(conn, conv, first_id, wamid)?;
    Ok(Some(Burst {
        parts,
        first_id,
        oldest_at: rows.first().map(|r| r.1).unwrap_or(0),
        texts: rows.into_iter().map(|r| r.0).filter(|t| !t.trim().is_empty()).collect(),
        newer_exists,
    }))
}

/// The conversation before message id `before`: the last `n` turns, oldest first, as
/// (from the customer?, text).
pub fn history(conn: &Connection, conversation_id: i64, before: i64, n: usize) -> Result<Vec<(bool, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT direction, text FROM messages WHERE conversation_id = ?1 AND id < ?2 AND text <> '' ORDER BY id DESC LIMIT ?3",
    )?;
    let mut rows: Vec<(bool, String)> = st
        .query_map(rusqlite::params![conversation_id, before, n as i64], |r| {
            Ok((r.get::<_, String>(0)? == "in", r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.reverse();
    Ok(rows)
}

/// Where the history before a reply ends: the burst's first message, else the message itself.
pub fn history_start(conn: &Connection, wamid: &str, burst_first: Option<i64>) -> Result<i64> {
    Ok(match burst_first {
        Some(id) => id,
        None => message_id(conn, wamid)?.unwrap_or(i64::MAX),
    })
}

/// The id of an inbound message.
pub fn message_id(conn: &Connection, wamid: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT id FROM messages WHERE wamid = ?1", [wamid], |r| r.get(0))
        .optional()?)
}

/// How many customer messages the conversation had since `since_ms` (Unix ms).
pub fn recent_inbound(conn: &Connection, conversation_id: i64, since_ms: i64) -> Result<usize> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND direction = 'in' AND created_at >= ?2",
        rusqlite::params![conversation_id, since_ms],
        |r| r.get::<_, i64>(0),
    )? as usize)
}
