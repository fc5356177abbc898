//! Message retention: deletes what is older than the configured age, a batch per write so
//! the writer is never held for long — messages with their delivery records, finished
//! sends, reply traces and unrouted raw events. Conversations, contacts, handoffs and
//! summaries stay (erase a contact to remove those).

use rusqlite::{Connection, params};

use crate::error::Result;

/// Deletes up to `batch` messages stored before `cutoff_ms` (and the rest of that age);
/// returns how many messages went.
pub fn delete_before(conn: &Connection, cutoff_ms: i64, batch: usize) -> Result<usize> {
    conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS retention_batch (id INTEGER PRIMARY KEY, wamid TEXT NOT NULL); DELETE FROM retention_batch;")?;
    conn.execute(
        "INSERT INTO retention_batch (id, wamid) SELECT id, wamid FROM messages WHERE created_at < ?1 ORDER BY id LIMIT ?2",
        params![cutoff_ms, batch as i64],
    )?;
    conn.execute(
        "DELETE FROM message_statuses WHERE wamid IN (SELECT wamid FROM retention_batch)",
        [],
    )?;
    conn.execute(
        "DELETE FROM status_events WHERE wamid IN (SELECT wamid FROM retention_batch)",
        [],
    )?;
    // Their media rows go too; the files they named are swept by the maintenance worker.
    conn.execute(
        "DELETE FROM media WHERE wamid IN (SELECT wamid FROM retention_batch)",
        [],
    )?;
    let messages = conn.execute("DELETE FROM messages WHERE id IN (SELECT id FROM retention_batch)", [])?;
    conn.execute(
        "DELETE FROM outbound WHERE state NOT IN ('queued', 'sending') AND updated_at < ?1",
        [cutoff_ms],
    )?;
    conn.execute("DELETE FROM reply_traces WHERE created_at < ?1", [cutoff_ms])?;
    conn.execute("DELETE FROM raw_events WHERE created_at < ?1", [cutoff_ms])?;
    Ok(messages)
}
