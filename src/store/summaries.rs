//! Rolling conversation summaries (seed layer 3 memory): one row per conversation with
//! the messages it covers, and the older turns not yet in it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// A conversation's summary and the last message id it covers.
pub fn get(conn: &Connection, conversation_id: i64) -> Result<Option<(String, i64)>> {
    Ok(conn
        .query_row(
            "SELECT summary, through_message_id FROM conversation_summaries WHERE conversation_id = ?1",
            [conversation_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Messages after `after_id` and before `before_id` except the newest `keep_last` of
/// them (those go to the model as turns): `(id, from the customer?, text)`, oldest first.
pub fn unsummarized(
    conn: &Connection,
    conversation_id: i64,
    after_id: i64,
    before_id: i64,
    keep_last: usize,
) -> Result<Vec<(i64, bool, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT id, direction, text FROM messages WHERE conversation_id = ?1 AND id > ?2 AND id < ?3 AND text <> '' ORDER BY id DESC LIMIT -1 OFFSET ?4",
    )?;
    let mut rows: Vec<(i64, bool, String)> = st
        .query_map(params![conversation_id, after_id, before_id, keep_last as i64], |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)? == "in", r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.reverse();
    Ok(rows)
}

/// Stores a refreshed summary.
pub fn put(
    conn: &Connection,
    conversation_id: i64,
    summary: &str,
    through_message_id: i64,
    model: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO conversation_summaries (conversation_id, summary, through_message_id, model, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(conversation_id) DO UPDATE SET summary = excluded.summary, through_message_id = excluded.through_message_id,
             model = excluded.model, updated_at = excluded.updated_at",
        params![conversation_id, summary, through_message_id, model, now],
    )?;
    Ok(())
}
