//! Conversation reads and flags used by the workers and the send path.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// What the reply worker needs about an inbound message and its conversation.
#[derive(Debug, Clone)]
pub struct InboundForReply {
    pub conversation_id: i64,
    pub phone_number_id: String,
    /// `bot` or `human`.
    pub owner: String,
    pub name: Option<String>,
    pub text: String,
}

/// The inbound message `wamid` with its conversation, if stored.
pub fn inbound_for_reply(conn: &Connection, wamid: &str) -> Result<Option<InboundForReply>> {
    Ok(conn
        .query_row(
            "SELECT m.conversation_id, c.phone_number_id, c.owner, k.name, m.text
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id
             WHERE m.wamid = ?1 AND m.direction = 'in'",
            [wamid],
            |r| Ok(InboundForReply { conversation_id: r.get(0)?, phone_number_id: r.get(1)?, owner: r.get(2)?, name: r.get(3)?, text: r.get(4)? }),
        )
        .optional()?)
}

/// When the customer last wrote (Unix ms); `NotFound` for an unknown conversation.
pub fn last_inbound_at(conn: &Connection, conversation_id: i64) -> Result<Option<i64>> {
    conn.query_row("SELECT last_inbound_at FROM conversations WHERE id = ?1", [conversation_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("conversation {conversation_id}")))
}

/// Marks the conversation as needing a template (its 24-hour window closed).
pub fn flag_needs_template(conn: &Connection, conversation_id: i64) -> Result<()> {
    conn.execute("UPDATE conversations SET needs_template = 1 WHERE id = ?1", [conversation_id])?;
    Ok(())
}
