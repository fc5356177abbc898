//! The database side of backups: a consistent copy while the server runs (`VACUUM INTO`
//! on a connection of its own, so the writer and the readers carry on), and the checks a
//! restore runs on a copy before trusting it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Writes a consistent, compacted copy of the database at `db` to `dest` (which must not exist).
pub fn vacuum_into(db: &Path, dest: &Path) -> Result<()> {
    let conn = super::connect(db)?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])?;
    Ok(())
}

/// What a checked copy holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopySummary {
    /// The newest applied migration.
    pub schema_version: i64,
    pub messages: i64,
    pub conversations: i64,
}

/// Opens a copy read-only and runs SQLite's full integrity check; an error says what is
/// wrong with it.
pub fn check_copy(path: &Path) -> Result<CopySummary> {
    super::register_sqlite_vec();
    let bad = |detail: String| Error::Invalid(format!("{} is not a usable database copy: {detail}", path.display()));
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| bad(e.to_string()))?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(|e| bad(e.to_string()))?;
    if problems != ["ok"] {
        return Err(bad(format!("integrity check: {}", problems.join("; "))));
    }
    let one = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| bad(e.to_string()))
    };
    Ok(CopySummary {
        schema_version: one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?,
        messages: one("SELECT COUNT(*) FROM messages")?,
        conversations: one("SELECT COUNT(*) FROM conversations")?,
    })
}
