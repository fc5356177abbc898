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

const COLUMNS: &str = "m.id, m.wamid, m.conversation_id, m.direction, m.sender, m.kind, m.text, m.status,
    strftime('%Y-%m-%dT%H:%M:%fZ', m.created_at / 1000.0, 'unixepoch')";

/// Messages in storage order, after row id `after` (0 for all), at most `limit`.
pub fn list_messages(conn: &Connection, after: i64, limit: usize) -> Result<Vec<MessageRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages m WHERE m.id > ?1 ORDER BY m.id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(rusqlite::params![after, limit as i64], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One customer's conversation with one business number, oldest first, at most `limit`.
pub fn list_contact_messages(
    conn: &Connection,
    wa_id: &str,
    phone_number_id: &str,
    limit: usize,
) -> Result<Vec<MessageRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages m JOIN conversations v ON v.id = m.conversation_id JOIN contacts k ON k.id = v.contact_id
         WHERE k.wa_id = ?1 AND v.phone_number_id = ?2 ORDER BY m.created_at, m.id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(rusqlite::params![wa_id, phone_number_id, limit as i64], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
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
}
