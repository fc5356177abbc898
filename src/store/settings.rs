//! Live settings rows and the audit log.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// Every stored override: (key, value).
pub fn overrides(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached("SELECT key, value FROM settings ORDER BY key")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Validates and stores a live value for `key` (audited as `actor`); returns it normalised.
/// A model chain must name `providers` only (the configured ones, see
/// `LlmConfig::provider_names`).
pub fn set_checked(conn: &Connection, key: &str, value: &str, actor: &str, providers: &[String]) -> Result<String> {
    let v = crate::domain::settings::normalize(key, value).map_err(Error::Invalid)?;
    crate::domain::settings::check_providers(key, &v, providers).map_err(Error::Invalid)?;
    set(conn, key, &v, actor, crate::domain::now_ms())?;
    Ok(v)
}

/// Drops the live value for `key` (the config file's applies again); `false` if none was set.
pub fn unset_checked(conn: &Connection, key: &str, actor: &str) -> Result<bool> {
    crate::domain::settings::spec(key).map_err(Error::Invalid)?;
    unset(conn, key, actor, crate::domain::now_ms())
}

/// Stores an override (already validated) and audits the change.
pub fn set(conn: &Connection, key: &str, value: &str, actor: &str, now: i64) -> Result<()> {
    let old: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    conn.execute(
        "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        params![key, value, now, actor],
    )?;
    audit(
        conn,
        now,
        actor,
        "settings.set",
        key,
        &format!("{} -> {value}", old.as_deref().unwrap_or("(config)")),
    )
}

/// Removes an override (the config file's value applies again); `false` if none was set.
pub fn unset(conn: &Connection, key: &str, actor: &str, now: i64) -> Result<bool> {
    let removed = conn.execute("DELETE FROM settings WHERE key = ?1", [key])? == 1;
    if removed {
        audit(
            conn,
            now,
            actor,
            "settings.unset",
            key,
            "back to the config file's value",
        )?;
    }
    Ok(removed)
}

/// Appends an audit entry.
pub fn audit(conn: &Connection, now: i64, actor: &str, action: &str, subject: &str, detail: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now, actor, action, subject, detail],
    )?;
    Ok(())
}

/// Appends an audit entry about conversation `id` (subject `conversation:<id>`).
pub fn audit_conversation(conn: &Connection, now: i64, actor: &str, action: &str, id: i64, detail: &str) -> Result<()> {
    audit(conn, now, actor, action, &format!("conversation:{id}"), detail)
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// The latest audit entries, newest first.
pub fn audit_entries(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>> {
    let mut st =
        conn.prepare_cached("SELECT at, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
    let rows = st
        .query_map([limit as i64], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                subject: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
