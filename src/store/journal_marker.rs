//! The record that this data dir has a queue journal (`journal_marker`): written when the
//! journal is first created, read at every start so that a missing `queue.redb` is
//! refused instead of silently re-created empty.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::Result;

/// When the journal was recorded (Unix ms; 0 = before records were kept), if it was.
pub fn recorded(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT created_at FROM journal_marker WHERE id = 1", [], |r| r.get(0))
        .optional()?)
}

/// Records that a journal exists from `now_ms` (a new one replaces the old record).
pub fn record(conn: &Connection, now_ms: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO journal_marker (id, created_at) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET created_at = excluded.created_at",
        [now_ms],
    )?;
    Ok(())
}

/// `recorded` from a database file opened read-only (doctor: no migration, no write).
/// A database too old to have the table has no record.
pub fn recorded_in(db: &Path) -> Result<Option<i64>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_marker')",
        [],
        |r| r.get(0),
    )?;
    if has_table { recorded(&conn) } else { Ok(None) }
}
