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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_each_conversations_newest_match_and_pages_hold_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO contacts (id, wa_id, name, created_at, updated_at) VALUES (1, '31', 'Ann', 1, 1), (2, '32', 'Bo', 1, 1);
                     INSERT INTO conversations (id, phone_number_id, contact_id, owner, last_message_at, created_at)
                         VALUES (10, 'P1', 1, 'bot', 1, 1), (20, 'P1', 2, 'bot', 1, 1);",
                )?;
                let add = |conversation: i64, at: i64, text: &str| -> Result<i64> {
                    c.execute(
                        "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at)
                         VALUES (?1, ?2, 'in', 'customer', 'text', ?3, '{}', 'received', ?4, ?4)",
                        params![format!("w{conversation}.{at}"), conversation, text, at],
                    )?;
                    Ok(c.last_insert_rowid())
                };
                let mut ids = Vec::new();
                for i in 0..100 {
                    ids.push(add(10, 1_000 + i, &format!("line {i} {}", if i % 10 == 3 { "refund" } else { "hello" }))?);
                }
                let other = add(20, 5_000, "a REFUNDS question")?;
                let found = hits(c, "refund", &[10, 20])?;
                assert_eq!(found[&10].message_id, ids[93], "the newest match of the conversation");
                assert_eq!(found[&20].message_id, other);
                // Only the listed conversations; nothing for a query without words.
                assert_eq!(hits(c, "refund", &[20])?.len(), 1);
                assert!(hits(c, "?!", &[10, 20])?.is_empty());
                // Near the end: the newest page. Further up: a page with 25 entries after it.
                assert_eq!(page_of(c, 10, ids[90])?, Some(None));
                assert_eq!(page_of(c, 10, ids[40])?, Some(Some(1_000 + 65 + 1)));
                // Another conversation's message: not found.
                assert_eq!(page_of(c, 20, ids[40])?, None);
                let page = crate::store::inbox::thread(c, 10, Some(1_066), crate::store::inbox::THREAD_PAGE)?;
                assert!(page.items.iter().any(|i| i.key == format!("m{}", ids[40])));
                Ok(())
            })
            .unwrap();
    }
}
