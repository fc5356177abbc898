//! Account health kept per phone number, account and template: each health event is
//! recorded once (by fingerprint, so a re-run changes nothing) and moves the current
//! state; the health panel, the inbox banner, the composer and `doctor` read it back.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::domain::health::{HealthEvent, QualityRating, TemplateStatus};
use crate::domain::webhook::EventKind;
use crate::error::Result;

/// Records `event` (from webhook job `job_id`) and updates the state it is about.
/// `false`: seen before, nothing changed. Call inside a transaction.
pub fn apply(conn: &Connection, job_id: u64, waba_id: &str, event: &HealthEvent, now: i64) -> Result<bool> {
    let json = serde_json::to_string(event)?;
    let mut h = Sha256::new();
    h.update(waba_id.as_bytes());
    h.update([0]);
    h.update(json.as_bytes());
    let fingerprint = hex::encode(h.finalize());
    let inserted = conn.execute(
        "INSERT INTO health_events (fingerprint, waba_id, kind, summary, event_json, job_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (fingerprint) DO NOTHING",
        params![
            fingerprint,
            waba_id,
            event.kind(),
            event.summary(),
            json,
            job_id as i64,
            now
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    super::webhooks::record(
        conn,
        EventKind::AccountHealthChanged,
        &format!("account:{waba_id}"),
        || {
            Ok(serde_json::json!({
                "waba_id": waba_id,
                "kind": event.kind(),
                "summary": event.summary(),
                "event": event,
            }))
        },
    )?;
    match event {
        HealthEvent::NumberQuality {
            display_phone_number,
            event: name,
            limit_tier,
            rating,
        } => {
            conn.execute(
                "INSERT INTO number_health (display_phone_number, quality_rating, limit_tier, last_event, updated_at)
                 VALUES (?1, COALESCE(?2, 'UNKNOWN'), ?3, ?4, ?5)
                 ON CONFLICT (display_phone_number) DO UPDATE SET
                   quality_rating = COALESCE(?2, quality_rating), limit_tier = COALESCE(?3, limit_tier),
                   last_event = ?4, updated_at = ?5",
                params![
                    display_phone_number,
                    rating.map(QualityRating::as_str),
                    limit_tier,
                    name,
                    now
                ],
            )?;
        }
        HealthEvent::Account { event: name, .. } => {
            let restricted = event.restricts_account();
            conn.execute(
                "INSERT INTO account_health (waba_id, restricted, last_event, detail, updated_at)
                 VALUES (?1, COALESCE(?2, 0), ?3, ?4, ?5)
                 ON CONFLICT (waba_id) DO UPDATE SET
                   restricted = COALESCE(?2, restricted), last_event = ?3, detail = ?4, updated_at = ?5",
                params![waba_id, restricted, name, event.summary(), now],
            )?;
        }
        HealthEvent::TemplateStatus {
            template,
            status,
            reason,
            category,
            ..
        } => {
            conn.execute(
                "INSERT INTO template_health (name, language, template_id, status, reason, category, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (name, language) DO UPDATE SET
                   template_id = ?3, status = ?4, reason = ?5, category = COALESCE(?6, category), updated_at = ?7",
                params![
                    template.name,
                    template.language,
                    template.id,
                    status.as_str(),
                    reason,
                    category,
                    now
                ],
            )?;
        }
        HealthEvent::TemplateCategory {
            template, new_category, ..
        } => {
            conn.execute(
                "INSERT INTO template_health (name, language, template_id, category, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name, language) DO UPDATE SET category = ?4, updated_at = ?5",
                params![template.name, template.language, template.id, new_category, now],
            )?;
        }
        HealthEvent::TemplateQuality { template, new, .. } => {
            conn.execute(
                "INSERT INTO template_health (name, language, template_id, quality, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name, language) DO UPDATE SET quality = ?4, updated_at = ?5",
                params![template.name, template.language, template.id, new.as_str(), now],
            )?;
        }
    }
    Ok(true)
}

/// One business number's current health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberHealth {
    pub display_phone_number: String,
    pub rating: QualityRating,
    pub limit_tier: Option<String>,
    pub last_event: String,
    pub updated_at: i64,
}

/// One account's current health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHealth {
    pub waba_id: String,
    pub restricted: bool,
    pub detail: String,
    pub updated_at: i64,
}

/// One template's current health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateHealth {
    pub name: String,
    pub language: String,
    pub status: Option<TemplateStatus>,
    pub reason: Option<String>,
    pub category: Option<String>,
    pub quality: Option<QualityRating>,
}

impl TemplateHealth {
    /// Known to be rejected, paused, disabled, deleted, …: not offered, not used.
    pub fn is_blocked(&self) -> bool {
        self.status
            .is_some_and(|s| !s.is_usable() && s != TemplateStatus::Pending && s != TemplateStatus::Other)
    }
}

/// A recorded health change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    pub kind: String,
    pub summary: String,
    pub created_at: i64,
}

/// Everything known about account health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    pub numbers: Vec<NumberHealth>,
    pub accounts: Vec<AccountHealth>,
    pub templates: Vec<TemplateHealth>,
    /// The newest changes first.
    pub recent: Vec<HealthChange>,
}

impl HealthSnapshot {
    /// Why the inbox shows a banner: numbers YELLOW/RED, accounts restricted.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .numbers
            .iter()
            .filter(|n| n.rating.is_degraded())
            .map(|n| {
                format!(
                    "Number {} quality rating is {}",
                    n.display_phone_number,
                    n.rating.as_str()
                )
            })
            .collect();
        out.extend(
            self.accounts
                .iter()
                .filter(|a| a.restricted)
                .map(|a| format!("WhatsApp account {} is restricted ({})", a.waba_id, a.detail)),
        );
        out
    }

    /// The template `name` (any language) when it is blocked, with its state.
    pub fn blocked_template(&self, name: &str) -> Option<&TemplateHealth> {
        self.templates.iter().find(|t| t.name == name && t.is_blocked())
    }
}

/// The template `name`/`language` when Meta has it rejected, paused, disabled, ….
pub fn blocked_template(conn: &Connection, name: &str, language: &str) -> Result<Option<TemplateHealth>> {
    let t = conn
        .query_row(
            "SELECT status, reason, category, quality FROM template_health WHERE name = ?1 AND language = ?2",
            params![name, language],
            |r| {
                Ok(TemplateHealth {
                    name: name.to_string(),
                    language: language.to_string(),
                    status: r.get::<_, Option<String>>(0)?.map(|x| TemplateStatus::parse(&x)),
                    reason: r.get(1)?,
                    category: r.get(2)?,
                    quality: r.get::<_, Option<String>>(3)?.map(|x| QualityRating::parse(&x)),
                })
            },
        )
        .optional()?;
    Ok(t.filter(TemplateHealth::is_blocked))
}

impl TemplateHealth {
    /// "PAUSED: FIRST_PAUSE: …" — the status and Meta's reason, for a person.
    pub fn why(&self) -> String {
        let status = self.status.map(TemplateStatus::as_str).unwrap_or("UNKNOWN");
        match &self.reason {
            Some(r) => format!("{status}: {}", r.trim_end_matches('.')),
            None => status.to_string(),
        }
    }
}

/// The health recorded in the database file at `db` (for `frontdesk doctor`, beside a
/// running server); `None` when its schema predates account health.
pub fn read_file(db: &std::path::Path, recent: usize) -> Result<Option<HealthSnapshot>> {
    let conn = super::connect(db)?;
    let known: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'health_events'",
        [],
        |r| r.get(0),
    )?;
    if known == 0 {
        return Ok(None);
    }
    Ok(Some(snapshot(&conn, recent)?))
}

/// Reads the current health and the `recent` newest changes.
pub fn snapshot(conn: &Connection, recent: usize) -> Result<HealthSnapshot> {
    let mut s = HealthSnapshot::default();
    let mut q = conn.prepare(
        "SELECT display_phone_number, quality_rating, limit_tier, last_event, updated_at
         FROM number_health ORDER BY display_phone_number",
    )?;
    s.numbers = q
        .query_map([], |r| {
            Ok(NumberHealth {
                display_phone_number: r.get(0)?,
                rating: QualityRating::parse(&r.get::<_, String>(1)?),
                limit_tier: r.get(2)?,
                last_event: r.get(3)?,
                updated_at: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut q = conn.prepare("SELECT waba_id, restricted, detail, updated_at FROM account_health ORDER BY waba_id")?;
    s.accounts = q
        .query_map([], |r| {
            Ok(AccountHealth {
                waba_id: r.get(0)?,
                restricted: r.get(1)?,
                detail: r.get(2)?,
                updated_at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut q = conn.prepare(
        "SELECT name, language, status, reason, category, quality FROM template_health ORDER BY name, language",
    )?;
    s.templates = q
        .query_map([], |r| {
            Ok(TemplateHealth {
                name: r.get(0)?,
                language: r.get(1)?,
                status: r.get::<_, Option<String>>(2)?.map(|x| TemplateStatus::parse(&x)),
                reason: r.get(3)?,
                category: r.get(4)?,
                quality: r.get::<_, Option<String>>(5)?.map(|x| QualityRating::parse(&x)),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut q =
        conn.prepare("SELECT kind, summary, created_at FROM health_events ORDER BY created_at DESC, id DESC LIMIT ?1")?;
    s.recent = q
        .query_map([recent as i64], |r| {
            Ok(HealthChange {
                kind: r.get(0)?,
                summary: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::TemplateRef;

    fn template(status: &str, reason: Option<&str>) -> HealthEvent {
        HealthEvent::TemplateStatus {
            template: TemplateRef {
                id: "7".into(),
                name: "bridge".into(),
                language: "en_US".into(),
            },
            status: TemplateStatus::parse(status),
            event: status.into(),
            reason: reason.map(str::to_string),
            category: Some("UTILITY".into()),
        }
    }

    #[test]
    fn events_count_once_and_move_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction_blocking(|c| {
                let flagged = HealthEvent::NumberQuality {
                    display_phone_number: "155".into(),
                    event: "FLAGGED".into(),
                    limit_tier: Some("TIER_1K".into()),
                    rating: Some(QualityRating::Red),
                };
                assert!(apply(c, 1, "W", &flagged, 10)?);
                assert!(!apply(c, 1, "W", &flagged, 11)?, "a re-run changes nothing");
                let upgrade = HealthEvent::NumberQuality {
                    display_phone_number: "155".into(),
                    event: "UPGRADE".into(),
                    limit_tier: Some("TIER_10K".into()),
                    rating: None,
                };
                assert!(apply(c, 2, "W", &upgrade, 12)?);
                assert!(apply(c, 3, "W", &template("PAUSED", Some("low quality")), 13)?);
                let s = snapshot(c, 10)?;
                assert_eq!(s.numbers.len(), 1);
                assert_eq!(s.numbers[0].rating, QualityRating::Red, "an upgrade keeps the rating");
                assert_eq!(s.numbers[0].limit_tier.as_deref(), Some("TIER_10K"));
                assert_eq!(s.warnings(), vec!["Number 155 quality rating is RED".to_string()]);
                assert_eq!(s.recent.len(), 3);
                assert_eq!(s.recent[0].kind, "template_status");
                let blocked = s.blocked_template("bridge").expect("paused is blocked");
                assert_eq!(blocked.reason.as_deref(), Some("low quality"));
                assert!(apply(c, 4, "W", &template("APPROVED", None), 14)?);
                let s = snapshot(c, 10)?;
                assert!(s.blocked_template("bridge").is_none());
                Ok(())
            })
            .unwrap();
    }
}
