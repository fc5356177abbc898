//! Canned replies admins keep in the inbox (`canned_replies`): listed for the admin page
//! and the composer, added, edited and removed with the bounds of `domain::canned`, each
//! change audited (`canned.add`, `canned.edit`, `canned.remove`).

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use crate::domain::canned::{MAX_STORED, check};
use crate::error::{Error, Result};

/// One stored canned reply.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub title: String,
    pub text: String,
    pub updated_at: i64,
    /// Who changed it last (`user:<email>`).
    pub updated_by: String,
}

/// Every stored canned reply, by title (ignoring case).
pub fn list(conn: &Connection) -> Result<Vec<Stored>> {
    let mut st = conn.prepare_cached(
        "SELECT id, title, text, updated_at, updated_by FROM canned_replies ORDER BY title COLLATE NOCASE, id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(Stored {
                id: r.get(0)?,
                title: r.get(1)?,
                text: r.get(2)?,
                updated_at: r.get(3)?,
                updated_by: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The text of stored canned reply `id`.
pub fn text(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT text FROM canned_replies WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// A title another reply holds is refused in words, not as a constraint error.
fn taken(e: rusqlite::Error, title: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => Error::Invalid(format!(
            "A canned reply titled \"{title}\" already exists; choose another title."
        )),
        _ => e.into(),
    }
}

/// Adds a canned reply (checked, audited); its id.
pub fn add(conn: &Connection, title: &str, text: &str, actor: &str, now: i64) -> Result<i64> {
    let (title, text) = check(title, text).map_err(Error::Invalid)?;
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM canned_replies", [], |r| r.get(0))?;
    if count as usize >= MAX_STORED {
        return Err(Error::Invalid(format!(
            "There are already {MAX_STORED} canned replies, the most the inbox keeps; remove one first."
        )));
    }
    conn.execute(
        "INSERT INTO canned_replies (title, text, created_at, updated_at, updated_by) VALUES (?1, ?2, ?3, ?3, ?4)",
        params![title, text, now, actor],
    )
    .map_err(|e| taken(e, &title))?;
    let id = conn.last_insert_rowid();
    let detail = serde_json::json!({ "title": title }).to_string();
    super::settings::audit(conn, now, actor, "canned.add", &format!("canned:{id}"), &detail)?;
    Ok(id)
}

/// Changes canned reply `id` (checked, audited); false when there is no such reply.
pub fn edit(conn: &Connection, id: i64, title: &str, text: &str, actor: &str, now: i64) -> Result<bool> {
    let (title, text) = check(title, text).map_err(Error::Invalid)?;
    let old: Option<String> = conn
        .query_row("SELECT title FROM canned_replies WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(old) = old else { return Ok(false) };
    conn.execute(
        "UPDATE canned_replies SET title = ?2, text = ?3, updated_at = ?4, updated_by = ?5 WHERE id = ?1",
        params![id, title, text, now, actor],
    )
    .map_err(|e| taken(e, &title))?;
    let detail = serde_json::json!({ "title": title, "was": old }).to_string();
    super::settings::audit(conn, now, actor, "canned.edit", &format!("canned:{id}"), &detail)?;
    Ok(true)
}

/// Removes canned reply `id` (audited); false when there was none.
pub fn remove(conn: &Connection, id: i64, actor: &str, now: i64) -> Result<bool> {
    let old: Option<String> = conn
        .query_row("SELECT title FROM canned_replies WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(old) = old else { return Ok(false) };
    conn.execute("DELETE FROM canned_replies WHERE id = ?1", [id])?;
    let detail = serde_json::json!({ "title": old }).to_string();
    super::settings::audit(conn, now, actor, "canned.remove", &format!("canned:{id}"), &detail)?;
    Ok(true)
}
