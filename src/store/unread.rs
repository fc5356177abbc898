//! The inbox's unread counts per tab: how many conversations of each view have a customer
//! message the viewer has not seen. One pass over the `conversations_unread` index
//! (conversations with a customer message, with the columns the views filter on) and the
//! viewer's read markers by primary key; never the messages.

use rusqlite::Connection;

use super::inbox::View;
use crate::error::Result;

/// Unread conversations per view for `user_id` at `now` (Unix ms: what is snoozed), in
/// `View::ALL` order.
pub fn counts(conn: &Connection, user_id: i64, now: i64) -> Result<Vec<(View, i64)>> {
    let sums: Vec<String> = View::ALL
        .iter()
        .map(|v| format!("COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0)", v.filter()))
        .collect();
    // `?2` is the viewer and `?3` the clock, as in `View::filter` (`?1` is unused).
    let sql = format!(
        "SELECT {} FROM conversations c INDEXED BY conversations_unread
         LEFT JOIN conversation_reads r ON r.user_id = ?2 AND r.conversation_id = c.id
         WHERE c.last_inbound_id > 0 AND c.last_inbound_id > COALESCE(r.last_read_id, 0)",
        sums.join(", ")
    );
    let mut st = conn.prepare_cached(&sql)?;
    let row = st.query_row(rusqlite::params![0, user_id, now], |r| {
        View::ALL
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((*v, r.get::<_, i64>(i)?)))
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_new_messages_reads_and_views_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO users (id, email, role, password_hash, created_at, password_changed_at) VALUES (7, 'a@x', 'agent', 'x', 1, 1);
                     INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '31', 1, 1), (2, '32', 1, 1), (3, '33', 1, 1);
                     INSERT INTO conversations (id, phone_number_id, contact_id, owner, assigned_to, closed_at, created_at)
                         VALUES (10, 'P1', 1, 'human', 7, NULL, 1), (11, 'P1', 2, 'bot', NULL, NULL, 1), (12, 'P1', 3, 'bot', NULL, 5, 1);
                     INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at)
                         VALUES ('w1', 10, 'in', '31', 'text', 'a', '{}', 'received', 1, 1),
                                ('w2', 11, 'in', '32', 'text', 'b', '{}', 'received', 2, 2),
                                ('w3', 11, 'out', 'P1', 'text', 'c', '{}', 'sent', 3, 3),
                                ('w4', 12, 'in', '33', 'text', 'd', '{}', 'received', 4, 4);",
                )?;
                let get = |c: &Connection| -> Result<Vec<i64>> { Ok(counts(c, 7, 100)?.into_iter().map(|(_, n)| n).collect()) };
                // human, mine, unassigned, bot, snoozed, closed, all
                assert_eq!(get(c)?, [1, 1, 0, 1, 0, 1, 3]);
                crate::store::inbox::mark_read(c, 10, 7)?;
                crate::store::inbox::mark_read(c, 11, 7)?;
                assert_eq!(get(c)?, [0, 0, 0, 0, 0, 1, 1]);
                // A new customer message makes it unread again (the trigger keeps the tally).
                c.execute_batch(
                    "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at)
                         VALUES ('w5', 11, 'in', '32', 'text', 'e', '{}', 'received', 5, 5);",
                )?;
                assert_eq!(get(c)?, [0, 0, 0, 1, 0, 1, 2]);
                // Another user has read nothing.
                assert_eq!(counts(c, 8, 100)?.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 0, 0, 1, 0, 1, 3]);
                // Snoozed until later: out of the working tabs, in Snoozed; after its time, back.
                c.execute_batch("UPDATE conversations SET snoozed_until = 200 WHERE id = 10;")?;
                assert_eq!(counts(c, 8, 100)?.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1, 3]);
                assert_eq!(counts(c, 8, 300)?.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 0, 0, 1, 0, 1, 3]);
                // The plan: the partial index, never a scan of the table or of messages.
                let plan: Vec<String> = c
                    .prepare(&format!("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM conversations c INDEXED BY conversations_unread LEFT JOIN conversation_reads r ON r.user_id = ?2 AND r.conversation_id = c.id WHERE c.last_inbound_id > 0 AND c.last_inbound_id > COALESCE(r.last_read_id, 0) AND ({})", View::Mine.filter()))?
                    .query_map(rusqlite::params![0, 7, 100], |r| r.get::<_, String>(3))?
                    .collect::<rusqlite::Result<_>>()?;
                assert!(plan.iter().any(|p| p.contains("USING COVERING INDEX conversations_unread")), "{plan:?}");
                assert!(!plan.iter().any(|p| p.contains("messages")), "{plan:?}");
                Ok(())
            })
            .unwrap();
    }
}
