//! Writes the events of one webhook delivery: contacts, conversations, messages,
//! delivery statuses and raw leftovers. Every write is idempotent, so re-running a job
//! (after a crash or a lost lease) changes nothing.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::domain::delivery::{DeliveryState, next_state};
use crate::domain::event::{ContactProfile, StatusUpdate, WebhookEvent};
use crate::domain::health::HealthEvent;
use crate::domain::message::{InboundMessage, MessageKind};
use crate::domain::outbound::OutboundBody;
use crate::domain::owner::Owner;
use crate::domain::soft_launch::{LaunchGroup, SoftLaunch};
use crate::domain::webhook::EventKind;
use crate::error::Result;

/// What one delivery changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub messages_new: usize,
    pub messages_duplicate: usize,
    pub statuses_applied: usize,
    pub statuses_ignored: usize,
    pub raw_events: usize,
    /// Ids of conversations that got a new inbound message.
    pub conversations_touched: Vec<i64>,
    /// Wamids of inbound messages the bot should answer (new or seen before: the reply
    /// queue dedupes them, so a re-run after a crash loses none and doubles none).
    pub answerable: Vec<String>,
    /// Health events seen for the first time (a re-run reports none): metrics, Slack.
    pub health_changes: Vec<HealthEvent>,
    /// Wamids of inbound media to download and read (queued like `answerable`).
    pub media: Vec<String>,
    /// Ledger rows to queue for sending: (id, created_at) — the bridge template that
    /// replaces a bridge text Meta refused with a `failed` status for a closed window.
    pub sends: Vec<(i64, i64)>,
}

/// Applies `events` from journal job `job_id`. `served` limits the business numbers
/// accepted (empty = all); `launch` puts each new conversation in its soft-launch group;
/// `bridge_template` (`engine.bridge_template`, if any) replaces a bridge text that a
/// status reports refused for a closed 24-hour window. Call inside a transaction.
pub fn apply_events(
    conn: &Connection,
    job_id: u64,
    events: &[WebhookEvent],
    served: &[String],
    launch: &SoftLaunch,
    bridge_template: Option<&OutboundBody>,
) -> Result<IngestReport> {
    let now = crate::domain::now_ms();
    let mut report = IngestReport::default();
    for event in events {
        match event {
            WebhookEvent::Message { phone_number_id, .. } | WebhookEvent::Status { phone_number_id, .. }
                if !served.is_empty() && !served.contains(phone_number_id) =>
            {
                let raw = serde_json::to_value(event)?;
                let reason = format!("phone_number_id {phone_number_id:?} is not served by this instance");
                report.raw_events += insert_raw(conn, job_id, &reason, &raw, now)?;
            }
            WebhookEvent::Message {
                phone_number_id,
                contact,
                message,
            } => {
                if message.kind.is_answerable() {
                    report.answerable.push(message.wamid.clone());
                }
                let contact_id = upsert_contact(conn, contact, message, now)?;
                let number = Some(contact.wa_id.as_str())
                    .filter(|n| !n.is_empty())
                    .or(Some(message.from.as_str()).filter(|n| !n.is_empty()));
                let bsuid = message.from_user_id.as_deref().or(contact.user_id.as_deref());
                let customer = number.or(bsuid).unwrap_or("");
                let group = launch.assign(phone_number_id, customer, number, bsuid);
                let conversation_id = upsert_conversation(conn, phone_number_id, contact_id, group, now)?;
                let inserted = insert_message(conn, conversation_id, message, now)?;
                // Stickers too: kept for the inbox, though never read or answered.
                if let MessageKind::Media(m) = &message.kind {
                    super::media::insert_pending(conn, &message.wamid, conversation_id, m, now)?;
                    report.media.push(message.wamid.clone());
                }
                if inserted {
                    report.messages_new += 1;
                    if !report.conversations_touched.contains(&conversation_id) {
                        report.conversations_touched.push(conversation_id);
                    }
                    if let MessageKind::System {
                        new_wa_id, new_user_id, ..
                    } = &message.kind
                    {
                        rekey_contact(conn, contact_id, new_wa_id.as_deref(), new_user_id.as_deref(), now)?;
                    }
                } else {
                    report.messages_duplicate += 1;
                }
            }
            WebhookEvent::Status {
                phone_number_id,
                status,
            } => {
                if apply_status(conn, phone_number_id, status, bridge_template, now, &mut report.sends)? {
                    report.statuses_applied += 1;
                } else {
                    report.statuses_ignored += 1;
                }
            }
            WebhookEvent::Health { waba_id, health } => {
                if super::health::apply(conn, job_id, waba_id, health, now)? {
                    report.health_changes.push(health.clone());
                }
            }
            WebhookEvent::Unhandled { reason, raw } => {
                report.raw_events += insert_raw(conn, job_id, reason, raw, now)?;
            }
        }
    }
    Ok(report)
}

fn upsert_contact(conn: &Connection, profile: &ContactProfile, msg: &InboundMessage, now: i64) -> Result<i64> {
    let wa_id = if profile.wa_id.is_empty() {
        msg.from.as_str()
    } else {
        profile.wa_id.as_str()
    };
    // Someone erased who writes again is a new contact: the tombstone goes.
    if !wa_id.is_empty() {
        conn.execute(
            "DELETE FROM erased_contacts WHERE subject = ?1",
            [super::contacts::subject_hash(wa_id)],
        )?;
    }
    // The message's own sender id first: on a `user_changed_user_id` system message the
    // contact entry may already carry the new BSUID while the sender is the old one.
    let user_id = msg
        .from_user_id
        .as_deref()
        .filter(|u| !u.is_empty())
        .or(profile.user_id.as_deref())
        .filter(|u| !u.is_empty());
    // The same for one erased while known only by the BSUID (`contacts::erase_contact`).
    if let Some(uid) = user_id {
        conn.execute(
            "DELETE FROM erased_contacts WHERE subject = ?1",
            [super::contacts::subject_hash(uid)],
        )?;
    }
    let mut existing: Option<i64> = None;
    if let Some(uid) = user_id {
        existing = conn
            .query_row("SELECT id FROM contacts WHERE user_id = ?1", [uid], |r| r.get(0))
            .optional()?;
    }
    if existing.is_none() && !wa_id.is_empty() {
        existing = conn
            .query_row("SELECT id FROM contacts WHERE wa_id = ?1", [wa_id], |r| r.get(0))
            .optional()?;
    }
    match existing {
        Some(id) => {
            conn.execute(
                "UPDATE OR IGNORE contacts SET
                    name = COALESCE(?1, name), username = COALESCE(?2, username),
                    wa_id = CASE WHEN wa_id IS NULL OR wa_id = '' THEN NULLIF(?3, '') ELSE wa_id END,
                    user_id = COALESCE(user_id, ?4), updated_at = ?5
                 WHERE id = ?6",
                params![profile.name, profile.username, wa_id, user_id, now, id],
            )?;
            Ok(id)
        }
        None => {
            conn.execute(
                "INSERT INTO contacts (wa_id, user_id, name, username, created_at, updated_at)
                 VALUES (NULLIF(?1, ''), ?2, ?3, ?4, ?5, ?5)",
                params![wa_id, user_id, profile.name, profile.username, now],
            )?;
            Ok(conn.last_insert_rowid())
        }
    }
}

/// A `user_changed_number` / `user_changed_user_id` system message: the same contact row
/// (and so its conversations and their history) takes the new number or BSUID. When
/// another contact already holds the new key (the customer wrote from it before this
/// message arrived), that contact is merged into this one first (`contacts::merge`), so
/// the history is one thread under one contact.
fn rekey_contact(
    conn: &Connection,
    contact_id: i64,
    new_wa_id: Option<&str>,
    new_user_id: Option<&str>,
    now: i64,
) -> Result<()> {
    for (column, new) in [("wa_id", new_wa_id), ("user_id", new_user_id)] {
        let Some(new) = new.filter(|k| !k.is_empty()) else {
            continue;
        };
        let holder: Option<i64> = conn
            .query_row(
                &format!("SELECT id FROM contacts WHERE {column} = ?1 AND id <> ?2"),
                params![new, contact_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = holder {
            super::contacts::merge(conn, contact_id, other, now)?;
        }
        conn.execute(
            &format!("UPDATE contacts SET {column} = ?1, updated_at = ?2 WHERE id = ?3"),
            params![new, now, contact_id],
        )?;
    }
    Ok(())
}

/// The conversation of this number and contact; a new one gets its soft-launch `group`
/// (kept for good) and, for `People`, a person as its owner from the start.
fn upsert_conversation(
    conn: &Connection,
    phone_number_id: &str,
    contact_id: i64,
    group: LaunchGroup,
    now: i64,
) -> Result<i64> {
    let owner = match group {
        LaunchGroup::Bot => Owner::Bot,
        LaunchGroup::People => Owner::Human,
    };
    conn.execute(
        "INSERT INTO conversations (phone_number_id, contact_id, created_at, launch_group, owner)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (phone_number_id, contact_id) DO NOTHING",
        params![phone_number_id, contact_id, now, group.as_str(), owner.as_str()],
    )?;
    Ok(conn.query_row(
        "SELECT id FROM conversations WHERE phone_number_id = ?1 AND contact_id = ?2",
        params![phone_number_id, contact_id],
        |r| r.get(0),
    )?)
}

/// Inserts the message; `false` when that wamid is already stored.
fn insert_message(conn: &Connection, conversation_id: i64, msg: &InboundMessage, now: i64) -> Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json,
                               context_wamid, status, wa_timestamp, created_at)
         VALUES (?1, ?2, 'in', ?3, ?4, ?5, ?6, ?7, 'received', ?8, ?9)
         ON CONFLICT (wamid) DO NOTHING",
        params![
            msg.wamid,
            conversation_id,
            if msg.from.is_empty() {
                msg.from_user_id.as_deref().unwrap_or("")
            } else {
                msg.from.as_str()
            },
            msg.kind.type_name(),
            msg.kind.text(),
            serde_json::to_string(msg)?,
            msg.context.as_ref().and_then(|c| c.replied_to.as_deref()),
            msg.timestamp,
            now,
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    let sent_at_ms = msg.timestamp.saturating_mul(1000);
    conn.execute(
        "UPDATE conversations SET
            last_inbound_at = MAX(COALESCE(last_inbound_at, 0), ?1),
            last_message_at = MAX(COALESCE(last_message_at, 0), ?1),
            needs_template = 0,
            closed_at = NULL,
            snooze_woke_at = CASE WHEN snoozed_until > ?3 AND snooze_woke_at IS NULL THEN ?3 ELSE snooze_woke_at END
         WHERE id = ?2",
        params![sent_at_ms, conversation_id, now],
    )?;
    super::webhooks::record_for_conversation(
        conn,
        EventKind::MessageReceived,
        conversation_id,
        serde_json::json!({ "message": {
            "wamid": msg.wamid,
            "type": msg.kind.type_name(),
            "text": msg.kind.text(),
            "timestamp": msg.timestamp,
            "reply_to": msg.context.as_ref().and_then(|c| c.replied_to.as_deref()),
        }}),
    )?;
    Ok(true)
}

/// Records the callback and moves the current state forward if it may. `true` when the
/// current state changed. A bridge text it fails for a closed window falls back to
/// `bridge_template`, whose row is added to `sends`.
fn apply_status(
    conn: &Connection,
    phone_number_id: &str,
    s: &StatusUpdate,
    bridge_template: Option<&OutboundBody>,
    now: i64,
    sends: &mut Vec<(i64, i64)>,
) -> Result<bool> {
    // A late status for a message to an erased contact: keep nothing that names them.
    if !s.recipient.is_empty() && super::contacts::erased(conn, &s.recipient)? {
        return Ok(false);
    }
    let current: Option<String> = conn
        .query_row("SELECT state FROM message_statuses WHERE wamid = ?1", [&s.wamid], |r| {
            r.get(0)
        })
        .optional()?;
    let current_state = current.as_deref().and_then(DeliveryState::parse);
    let next = s.state.and_then(|reported| next_state(current_state, reported));
    conn.execute(
        "INSERT INTO status_events (wamid, status, wa_timestamp, applied, body_json, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (wamid, status) DO NOTHING",
        params![
            s.wamid,
            s.status,
            s.timestamp,
            next.is_some(),
            serde_json::to_string(s)?,
            now
        ],
    )?;
    let Some(next) = next else { return Ok(false) };
    let err = s.errors.first();
    conn.execute(
        "INSERT INTO message_statuses (wamid, state, phone_number_id, recipient, callback_data,
                                       error_code, error_title, error_detail, wa_timestamp, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (wamid) DO UPDATE SET
            state = excluded.state,
            callback_data = COALESCE(excluded.callback_data, message_statuses.callback_data),
            error_code = COALESCE(excluded.error_code, message_statuses.error_code),
            error_title = COALESCE(excluded.error_title, message_statuses.error_title),
            error_detail = COALESCE(excluded.error_detail, message_statuses.error_detail),
            wa_timestamp = excluded.wa_timestamp,
            updated_at = excluded.updated_at",
        params![
            s.wamid,
            next.as_str(),
            phone_number_id,
            s.recipient,
            s.callback_data,
            err.map(|e| e.code),
            err.map(|e| e.title.as_str()),
            err.and_then(|e| e.details.as_deref()),
            s.timestamp,
            now
        ],
    )?;
    conn.execute(
        "UPDATE messages SET status = ?1 WHERE wamid = ?2 AND direction = 'out'",
        params![next.as_str(), s.wamid],
    )?;
    let moved = super::ledger::reconcile(
        conn,
        &s.wamid,
        s.callback_data.as_deref(),
        next.into(),
        err.map(|e| e.code),
        err.map(|e| crate::whatsapp::error_codes::describe(Some(e.code), &e.title))
            .as_deref(),
        now,
    )?;
    if let Some(id) = moved {
        sends.extend(super::ledger::bridge_fallback(conn, id, bridge_template, now)?);
    }
    Ok(true)
}

/// Stores a leftover once (by fingerprint); returns 1 when new.
fn insert_raw(conn: &Connection, job_id: u64, reason: &str, raw: &serde_json::Value, now: i64) -> Result<usize> {
    let raw_text = raw.to_string();
    let mut h = Sha256::new();
    h.update(reason.as_bytes());
    h.update([0]);
    h.update(raw_text.as_bytes());
    let fingerprint = hex::encode(h.finalize());
    Ok(conn.execute(
        "INSERT INTO raw_events (fingerprint, reason, raw, job_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (fingerprint) DO NOTHING",
        params![fingerprint, reason, raw_text, job_id as i64, now],
    )?)
}
