//! Reading stored messages (for `frontdesk messages list` and tests).

use rusqlite::Connection;
use serde::Serialize;

use crate::error::Result;

/// One stored message as the CLI prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageRow {
    /// Storage order (for paging); not printed.
    #[serde(skip)]
    pub row_id: i64,
    /// The WhatsApp message id.
    pub id: String,
    pub conversation: i64,
    pub direction: String,
    pub from: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub status: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Messages in storage order, after row id `after` (0 for all), at most `limit`.
pub fn list_messages(conn: &Connection, after: i64, limit: usize) -> Result<Vec<MessageRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, wamid, conversation_id, direction, sender, kind, text, status,
                strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch')
         FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![after, limit as i64], |r| {
        Ok(MessageRow {
            row_id: r.get(0)?,
            id: r.get(1)?,
            conversation: r.get(2)?,
            direction: r.get(3)?,
            from: r.get(4)?,
            kind: r.get(5)?,
            text: r.get(6)?,
            status: r.get(7)?,
            created_at: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
