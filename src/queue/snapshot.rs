//! The journal side of backups: every table copied, inside one read transaction (a
//! consistent snapshot while workers keep writing), into a fresh redb file; and the check
//! a restore runs on a copy.

use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, WriteTransaction,
};

use super::Queue;
use super::tables::{DEAD, DEDUPE, DEDUPE_EXPIRY, JOBS, LEASED, META, PAYLOADS, READY};
use crate::error::{Error, Result};

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("journal snapshot: {e}"))
}

/// Copies one table; a table the source never created is skipped.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    def: TableDefinition<K, V>,
    from: &ReadTransaction,
    to: &WriteTransaction,
) -> Result<u64> {
    let src = match from.open_table(def) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(internal(e)),
    };
    let mut dst = to.open_table(def).map_err(internal)?;
    let mut n = 0;
    for row in src.iter().map_err(internal)? {
        let (k, v) = row.map_err(internal)?;
        dst.insert(k.value(), v.value()).map_err(internal)?;
        n += 1;
    }
    Ok(n)
}

impl Queue {
    /// Writes a consistent copy of the journal to `dest` (which must not exist); returns
    /// the number of jobs in it.
    pub fn copy_to(&self, dest: &Path) -> Result<u64> {
        let read = self.db.get()?.begin_read().map_err(internal)?;
        let copy = Database::create(dest).map_err(internal)?;
        let write = copy.begin_write().map_err(internal)?;
        let jobs = copy_table(JOBS, &read, &write)?;
        copy_table(PAYLOADS, &read, &write)?;
        copy_table(READY, &read, &write)?;
        copy_table(LEASED, &read, &write)?;
        copy_table(DEAD, &read, &write)?;
        copy_table(DEDUPE, &read, &write)?;
        copy_table(DEDUPE_EXPIRY, &read, &write)?;
        copy_table(META, &read, &write)?;
        write.commit().map_err(internal)?;
        Ok(jobs)
    }
}

/// Whether a process (a running server) holds the journal at `path` open now. The file
/// is opened the way every check opens it (`damage::open_existing`: never created, redb's
/// panic on a truncated file caught).
pub fn open_elsewhere(path: &Path) -> bool {
    matches!(super::damage::open_existing(path), Err(Error::Conflict(_)))
}

/// Opens the journal at `path` (never creating one) and runs redb's integrity check;
/// returns its job count. A damaged file is `damage::refusal`'s error; a missing one
/// `NotFound`; one held by a running server `Conflict`.
pub fn check(path: &Path) -> Result<u64> {
    use super::damage::{Damage, refusal};
    let bad = |detail: String| refusal(path, &Damage::Unreadable(detail));
    let mut db = super::damage::open_existing(path)?;
    let checked = crate::panics::catch_quietly(|| db.check_integrity()).map_err(bad)?;
    if !checked.map_err(|e| bad(e.to_string()))? {
        return Err(bad("redb repaired it while checking, so it was damaged".into()));
    }
    let read = db.begin_read().map_err(|e| bad(e.to_string()))?;
    match read.open_table(JOBS) {
        Ok(t) => Ok(t.len().map_err(|e| bad(e.to_string()))?),
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// `check` for a backup's copy of the journal: errors say the copy is not usable.
pub fn check_copy(path: &Path) -> Result<u64> {
    check(path).map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "{} is open in another process (a running server)",
            path.display()
        )),
        Error::Invalid(msg) | Error::NotFound(msg) | Error::Unavailable(msg) | Error::Internal(msg) => {
            // What is wrong, without the advice for a live data dir.
            let what = msg
                .split(super::damage::AT_RISK)
                .next()
                .unwrap_or(&msg)
                .trim_end_matches([' ', '.']);
            Error::Invalid(format!("{} is not a usable journal copy: {what}", path.display()))
        }
    })
}
