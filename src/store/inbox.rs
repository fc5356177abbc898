//! What the inbox lists: conversations with their contact, last message and open
//! handoff, newest activity first.

use rusqlite::{Connection, params};

use crate::error::Result;

/// Which conversations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A person owns it (handed off).
    NeedsHuman,
    /// The bot is handling it.
    Bot,
    All,
}

impl View {
    pub fn parse(s: &str) -> View {
        match s {
            "bot" => View::Bot,
            "all" => View::All,
            _ => View::NeedsHuman,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::NeedsHuman => "human",
            View::Bot => "bot",
            View::All => "all",
        }
    }
}

/// One row of the list. Every text here may come from a customer.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: i64,
    pub name: Option<String>,
    pub wa_id: Option<String>,
    pub owner: String,
    pub last_message_at: Option<i64>,
    /// What the customer said last.
    pub last_text: Option<String>,
    /// The open handoff's reason, when a person owns it.
    pub handoff_reason: Option<String>,
}

/// Up to `limit` conversations of `view`, newest activity first.
pub fn list(conn: &Connection, view: View, limit: usize) -> Result<Vec<ConversationRow>> {
    let owner = match view {
        View::NeedsHuman => Some("human"),
        View::Bot => Some("bot"),
        View::All => None,
    };
    let mut st = conn.prepare_cached(
        "SELECT c.id, k.name, k.wa_id, c.owner, c.last_message_at,
                (SELECT text FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1),
                (SELECT reason FROM handoffs h WHERE h.conversation_id = c.id AND h.resolved_at IS NULL ORDER BY h.id DESC LIMIT 1)
         FROM conversations c JOIN contacts k ON k.id = c.contact_id
         WHERE ?1 IS NULL OR c.owner = ?1
         ORDER BY c.last_message_at DESC LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![owner, limit as i64], |r| {
            Ok(ConversationRow {
                id: r.get(0)?,
                name: r.get(1)?,
                wa_id: r.get(2)?,
                owner: r.get(3)?,
                last_message_at: r.get(4)?,
                last_text: r.get(5)?,
                handoff_reason: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
