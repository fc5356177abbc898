//! Snoozed conversations: the stored wake time and the customer's wake (set by ingest in
//! the message's own write), read as `domain::snooze::SnoozeState` with the clock. A
//! snooze, a "Wake now" and the end of a woken mark are audited like assignment and
//! priority (`conversation.snooze`, `conversation.wake`). The lists' conditions are
//! `inbox::View::filter`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::snooze::SnoozeState;
use crate::error::Result;

/// Conversation `id`'s snooze at `now`.
pub fn state(conn: &Connection, id: i64, now: i64) -> Result<SnoozeState> {
    let found: Option<(Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT snoozed_until, snooze_woke_at FROM conversations WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(found.map_or(SnoozeState::Awake, |(until, woke)| SnoozeState::of(until, woke, now)))
}

/// Snoozes conversation `id` until `until` (a new snooze replaces any earlier one or its
/// woken mark), audited.
pub fn snooze(conn: &Connection, id: i64, until: i64, actor: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET snoozed_until = ?2, snooze_woke_at = NULL WHERE id = ?1",
        params![id, until],
    )?;
    let detail = serde_json::json!({ "until": until }).to_string();
    super::settings::audit_conversation(conn, now, actor, "conversation.snooze", id, &detail)
}

/// "Wake now": ends a snooze (or clears a woken mark), audited when there was one.
pub fn wake(conn: &Connection, id: i64, actor: &str, now: i64) -> Result<()> {
    let was = state(conn, id, now)?;
    if was == SnoozeState::Awake {
        return Ok(());
    }
    conn.execute(
        "UPDATE conversations SET snoozed_until = NULL, snooze_woke_at = NULL WHERE id = ?1",
        [id],
    )?;
    let detail = serde_json::json!({ "was": if was.is_snoozed() { "snoozed" } else { "woken" } }).to_string();
    super::settings::audit_conversation(conn, now, actor, "conversation.wake", id, &detail)
}

/// An agent dealt with conversation `id` (replied): a woken mark goes; a snooze still
/// running stays (an agent may answer, then snooze, in either order).
pub fn handled(conn: &Connection, id: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET snoozed_until = NULL, snooze_woke_at = NULL
         WHERE id = ?1 AND snoozed_until IS NOT NULL AND (snooze_woke_at IS NOT NULL OR snoozed_until <= ?2)",
        params![id, now],
    )?;
    Ok(())
}

/// Conversation `id` was closed: any snooze or mark goes with it.
pub fn closed(conn: &Connection, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET snoozed_until = NULL, snooze_woke_at = NULL WHERE id = ?1 AND snoozed_until IS NOT NULL",
        [id],
    )?;
    Ok(())
}

/// Conversations whose snooze ran out in `(after, through]` (Unix ms) while nobody woke
/// them: what the live stream announces. A range of the partial index.
pub fn woken(conn: &Connection, after: i64, through: i64) -> Result<Vec<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM conversations INDEXED BY conversations_snoozed
         WHERE snoozed_until > ?1 AND snoozed_until <= ?2 AND snooze_woke_at IS NULL",
    )?;
    let ids = st
        .query_map(params![after, through], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::snooze::WakeCause;
    use crate::store::inbox::View;

    fn store() -> (tempfile::TempDir, crate::store::Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let id = store
            .call_blocking(|c| {
                c.execute(
                    "INSERT INTO contacts (wa_id, name, created_at, updated_at) VALUES ('3161', 'A', 0, 0)",
                    [],
                )?;
                c.execute(
                    "INSERT INTO conversations (phone_number_id, contact_id, owner, last_message_at, created_at) VALUES ('P1', 1, 'human', 5, 0)",
                    [],
                )?;
                Ok(c.last_insert_rowid())
            })
            .unwrap();
        (dir, store, id)
    }

    #[test]
    fn snooze_wake_and_the_list_condition() {
        let (_dir, store, id) = store();
        store
            .call_blocking(move |c| {
                snooze(c, id, 1_000, "user:a", 10)?;
                assert_eq!(state(c, id, 500)?, SnoozeState::Snoozed { until: 1_000 });
                let asleep = |now: i64| -> Result<bool> {
                    Ok(c.query_row(
                        &format!(
                            "SELECT COUNT(*) FROM conversations c WHERE c.id = ?1 AND ?2 = ?2 AND {}",
                            View::Snoozed.filter()
                        ),
                        params![id, 0, now],
                        |r| r.get::<_, i64>(0),
                    )? == 1)
                };
                let awake = |now: i64| -> Result<bool> {
                    Ok(c.query_row(
                        &format!(
                            "SELECT COUNT(*) FROM conversations c WHERE c.id = ?1 AND ?2 = ?2 AND {}",
                            View::NeedsHuman.filter()
                        ),
                        params![id, 0, now],
                        |r| r.get::<_, i64>(0),
                    )? == 1)
                };
                assert!(asleep(999)? && !awake(999)?);
                assert!(!asleep(1_000)? && awake(1_000)?);
                assert_eq!(woken(c, 500, 999)?, Vec::<i64>::new());
                assert_eq!(woken(c, 999, 1_000)?, vec![id]);
                // A reply before the time: the snooze stays.
                handled(c, id, 600)?;
                assert_eq!(state(c, id, 600)?, SnoozeState::Snoozed { until: 1_000 });
                // After it: the woken mark goes.
                handled(c, id, 1_200)?;
                assert_eq!(state(c, id, 1_200)?, SnoozeState::Awake);
                snooze(c, id, 5_000, "user:a", 1_300)?;
                c.execute("UPDATE conversations SET snooze_woke_at = 1400 WHERE id = ?1", [id])?;
                assert_eq!(
                    state(c, id, 1_500)?,
                    SnoozeState::Woke {
                        at: 1_400,
                        cause: WakeCause::Customer
                    }
                );
                assert!(awake(1_500)? && !asleep(1_500)?);
                wake(c, id, "user:a", 1_600)?;
                assert_eq!(state(c, id, 1_600)?, SnoozeState::Awake);
                wake(c, id, "user:a", 1_700)?;
                let audited: i64 = c.query_row(
                    "SELECT COUNT(*) FROM audit_log WHERE action IN ('conversation.snooze', 'conversation.wake')",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(audited, 3, "two snoozes and one wake (the second found nothing)");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_snoozed_list_and_the_stream_use_the_partial_index() {
        let (_dir, store, _) = store();
        store
            .call_blocking(|c| {
                let plan = |sql: &str| -> Result<String> {
                    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = st
                        .query_map([], |r| r.get::<_, String>(3))?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows.join("; "))
                };
                // The list's shape (`inbox::list`): the snoozed tab walks the partial index
                // in its order; a working tab still walks the recent-activity index.
                let from = "FROM conversations c JOIN contacts k ON k.id = c.contact_id LEFT JOIN users u ON u.id = c.assigned_to";
                let list = plan(&format!(
                    "SELECT c.id {from} WHERE {} ORDER BY c.snoozed_until ASC LIMIT 50",
                    View::Snoozed.filter().replace("?3", "12345")
                ))?;
                assert!(list.contains("conversations_snoozed"), "{list}");
                assert!(!list.contains("TEMP B-TREE"), "no sort: {list}");
                let working = plan(&format!(
                    "SELECT c.id {from} WHERE {} ORDER BY c.last_message_at DESC LIMIT 50",
                    View::NeedsHuman.filter().replace("?3", "12345").replace("?2", "1")
                ))?;
                assert!(working.contains("conversations_recent"), "{working}");
                let stream = plan("SELECT id FROM conversations WHERE snoozed_until > 1 AND snoozed_until <= 2 AND snooze_woke_at IS NULL")?;
                assert!(stream.contains("conversations_snoozed"), "{stream}");
                Ok(())
            })
            .unwrap();
    }
}
