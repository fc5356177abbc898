//! Schema migrations, compiled into the binary and applied at start. Append-only: an
//! applied migration whose text changed is refused rather than silently skipped.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Every migration, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../../migrations/0001_foundation.sql")),
    (2, "outbound", include_str!("../../migrations/0002_outbound.sql")),
    (3, "knowledge", include_str!("../../migrations/0003_knowledge.sql")),
    (4, "engine", include_str!("../../migrations/0004_engine.sql")),
    (
        5,
        "vector_copies",
        include_str!("../../migrations/0005_vector_copies.sql"),
    ),
    (
        6,
        "settings_and_privacy",
        include_str!("../../migrations/0006_settings_and_privacy.sql"),
    ),
    (
        7,
        "routing_and_memory",
        include_str!("../../migrations/0007_routing_and_memory.sql"),
    ),
    (8, "accounts", include_str!("../../migrations/0008_accounts.sql")),
    (9, "inbox", include_str!("../../migrations/0009_inbox.sql")),
    (
        10,
        "inbox_events",
        include_str!("../../migrations/0010_inbox_events.sql"),
    ),
    (
        11,
        "inbox_search_and_reads",
        include_str!("../../migrations/0011_inbox_search_and_reads.sql"),
    ),
    (
        12,
        "dashboard_and_close",
        include_str!("../../migrations/0012_dashboard_and_close.sql"),
    ),
    (
        13,
        "erasure_tombstones",
        include_str!("../../migrations/0013_erasure_tombstones.sql"),
    ),
    (14, "media", include_str!("../../migrations/0014_media.sql")),
    (
        15,
        "journal_marker",
        include_str!("../../migrations/0015_journal_marker.sql"),
    ),
    (16, "soft_launch", include_str!("../../migrations/0016_soft_launch.sql")),
    (
        17,
        "account_health",
        include_str!("../../migrations/0017_account_health.sql"),
    ),
    (
        18,
        "outbound_webhooks",
        include_str!("../../migrations/0018_outbound_webhooks.sql"),
    ),
    (
        19,
        "labels_and_priority",
        include_str!("../../migrations/0019_labels_and_priority.sql"),
    ),
    (
        20,
        "contact_panel_and_unread",
        include_str!("../../migrations/0020_contact_panel_and_unread.sql"),
    ),
    (21, "snooze", include_str!("../../migrations/0021_snooze.sql")),
    (
        22,
        "canned_replies",
        include_str!("../../migrations/0022_canned_replies.sql"),
    ),
];

/// Applies what is missing; checks what was applied before. Runs under SQLite's write
/// lock, so a server and a CLI command starting together never both migrate.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let conn = &tx;
    let newest_known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    let newest_applied: Option<i64> = conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))?;
    if let Some(v) = newest_applied.filter(|v| *v > newest_known) {
        return Err(Error::Invalid(format!(
            "the database has schema version {v}, newer than this binary knows ({newest_known}); \
             run a newer frontdesk or restore a backup made by this version"
        )));
    }
    for &(version, name, sql) in MIGRATIONS {
        let digest = hex::encode(Sha256::digest(sql.as_bytes()));
        let applied: Option<String> = conn
            .query_row(
                "SELECT sha256 FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        match applied {
            Some(d) if d == digest => continue,
            Some(_) => {
                return Err(Error::Internal(format!(
                    "migration {version:04}_{name} differs from the one applied to this database; \
                     migrations are append-only"
                )));
            }
            None => {
                conn.execute_batch(sql)
                    .map_err(|e| Error::Internal(format!("migration {version:04}_{name} failed: {e}")))?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    params![version, name, digest, crate::domain::now_ms()],
                )?;
                tracing::info!(version, name, "applied migration");
            }
        }
    }
    tx.commit()?;
    Ok(())
}
