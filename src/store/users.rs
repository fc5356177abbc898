//! Users and their browser sessions. Session rows hold a hash of the cookie token, never
//! the token.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::auth::Role;
use crate::error::{Error, Result};

/// A user as the app sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub must_change_password: bool,
    pub created_at: i64,
}

fn user(r: &rusqlite::Row) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Agent),
        must_change_password: r.get::<_, i64>(3)? != 0,
        created_at: r.get(4)?,
    })
}

const USER_COLUMNS: &str = "id, email, role, must_change_password, created_at";

/// Adds a user; an existing email is an error naming it.
pub fn create(
    conn: &Connection,
    email: &str,
    role: Role,
    password_hash: &str,
    must_change: bool,
    now: i64,
) -> Result<i64> {
    let taken: bool = conn.query_row("SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1)", [email], |r| {
        r.get(0)
    })?;
    if taken {
        return Err(Error::Invalid(format!("a user {email} exists already")));
    }
    conn.execute(
        "INSERT INTO users (email, role, password_hash, must_change_password, created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![email, role.as_str(), password_hash, must_change as i64, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// A user and their password hash, by email (any case).
pub fn by_email(conn: &Connection, email: &str) -> Result<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
            [email],
            |r| Ok((user(r)?, r.get(5)?)),
        )
        .optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = ?1"),
            [id],
            |r| Ok((user(r)?, r.get(5)?)),
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let mut st = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"))?;
    Ok(st.query_map([], user)?.collect::<Result<_, _>>()?)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

/// Sets a new password and ends every session of the user except `keep` (a token hash).
pub fn set_password(conn: &Connection, id: i64, password_hash: &str, keep: Option<&str>, now: i64) -> Result<usize> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = 0, password_changed_at = ?3 WHERE id = ?1",
        params![id, password_hash, now],
    )?;
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IS NOT ?2",
        params![id, keep],
    )?)
}

pub fn create_session(conn: &Connection, token_hash: &str, user_id: i64, csrf: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![token_hash, user_id, csrf, now],
    )?;
    Ok(())
}

/// A session: (user id, CSRF token, created at, last seen at).
pub fn session(conn: &Connection, token_hash: &str) -> Result<Option<(i64, String, i64, i64)>> {
    Ok(conn
        .query_row(
            "SELECT user_id, csrf_token, created_at, last_seen_at FROM sessions WHERE token_hash = ?1",
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

/// Whether the session with this token hash is live at `now` and its user still exists
/// (two primary-key lookups; the inbox's event stream asks on every poll).
pub fn session_alive(conn: &Connection, token_hash: &str, now: i64, idle_ms: i64, max_ms: i64) -> Result<bool> {
    let Some((user_id, _, created, seen)) = session(conn, token_hash)? else {
        return Ok(false);
    };
    let live = crate::domain::auth::session_live(created, seen, now, idle_ms, max_ms);
    Ok(live
        && conn
            .query_row("SELECT 1 FROM users WHERE id = ?1", [user_id], |_| Ok(()))
            .optional()?
            .is_some())
}

pub fn touch_session(conn: &Connection, token_hash: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
        params![token_hash, now],
    )?;
    Ok(())
}

pub fn delete_session(conn: &Connection, token_hash: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])? > 0)
}

/// Drops sessions past their lifetime (the maintenance worker calls this).
pub fn prune_sessions(conn: &Connection, idle_before: i64, created_before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2",
        params![idle_before, created_before],
    )?)
}

/// Removes a user with their sessions; refuses to remove the last admin.
pub fn remove(conn: &Connection, id: i64) -> Result<Option<String>> {
    let Some((user, _)) = by_id(conn, id)? else {
        return Ok(None);
    };
    if user.role == Role::Admin {
        let admins: i64 = conn.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| r.get(0))?;
        if admins <= 1 {
            return Err(Error::Invalid("this is the last admin; add another admin first".into()));
        }
    }
    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
    conn.execute(
        "UPDATE conversations SET assigned_to = NULL WHERE assigned_to = ?1",
        [id],
    )?;
    conn.execute("DELETE FROM conversation_reads WHERE user_id = ?1", [id])?;
    conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
    Ok(Some(user.email))
}
