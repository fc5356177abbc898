//! What the inbox search shows beyond the list (`inbox::list` picks the conversations):
//! per conversation the newest customer message that matched, and the page of a
//! conversation's thread that holds a given message (a search result opens there).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// A conversation's newest customer message matching the search.
#[derive(Debug, Clone)]
pub struct Hit {
    pub message_id: i64,
    /// What the customer wrote (shown escaped, cut to a snippet).
    pub text: String,
}

/// For each of `conversations`, its newest customer message among the newest 2,000 that
/// match `q` (the same bound as the list's search, which keeps common words fast).
pub fn hits(conn: &Connection, q: &str, conversations: &[i64]) -> Result<HashMap<i64, Hit>> {
    let mut out = HashMap::new();
    let Some(fts) = super::inbox::fts_query(q) else {
        return Ok(out);
    };
    if conversations.is_empty() {
        return Ok(out);
    }
    let wanted: std::collections::HashSet<i64> = conversations.iter().copied().collect();
    let mut st = conn.prepare_cached(
        "SELECT m.conversation_id, MAX(m.id) FROM messages m
         WHERE m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rowid DESC LIMIT 2000)
           AND m.direction = 'in'
         GROUP BY m.conversation_id",
    )?;
    let found: Vec<(i64, i64)> = st
        .query_map([fts], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut text = conn.prepare_cached("SELECT text FROM messages WHERE id = ?1")?;
    for (conversation, message_id) in found.into_iter().filter(|(c, _)| wanted.contains(c)) {
        let t: String = text.query_row([message_id], |r| r.get(0))?;
        out.insert(conversation, Hit { message_id, text: t });
    }
    Ok(out)
}

/// Entries of the thread shown after the wanted message on its page.
const AFTER: i64 = 25;

/// The page of conversation `id`'s thread holding customer message `message_id`: `None`
/// when it is not this conversation's, `Some(None)` when the newest page holds it, else
/// `Some(Some(before))`, the cursor of a page with it and up to 25 entries after it.
pub fn page_of(conn: &Connection, id: i64, message_id: i64) -> Result<Option<Option<i64>>> {
    let at: Option<i64> = conn
        .query_row(
            "SELECT created_at FROM messages WHERE id = ?1 AND conversation_id = ?2 AND direction = 'in'",
            params![message_id, id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(at) = at else { return Ok(None) };
    let mut st = conn.prepare_cached(
        "SELECT created_at FROM (
             SELECT created_at FROM messages INDEXED BY messages_conversation WHERE conversation_id = ?1 AND direction = 'in' AND created_at > ?2
             UNION ALL SELECT created_at FROM outbound INDEXED BY outbound_conversation WHERE conversation_id = ?1 AND created_at > ?2
             UNION ALL SELECT created_at FROM conversation_notes INDEXED BY conversation_notes_conversation WHERE conversation_id = ?1 AND created_at > ?2)
         ORDER BY created_at LIMIT ?3",
    )?;
    let after: Vec<i64> = st
        .query_map(params![id, at, AFTER], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(match after.last() {
        Some(last) if after.len() as i64 == AFTER => Some(last + 1),
        _ => None,
    }))
}
