//! The send ledger: one row per outbound message, written before it is sent, moved
//! forward by the send worker and by status webhooks, never backwards.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::ledger::{LedgerState, ledger_id_from_callback};
use crate::domain::outbound::{OutboundBody, Recipient};
use crate::domain::webhook::EventKind;
use crate::error::{Error, Result};

/// A request to send one message.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub conversation_id: i64,
    pub author: String,
    pub body: OutboundBody,
    pub reply_to: Option<String>,
    pub idempotency_key: String,
}

/// A ledger row with what the sender needs from its conversation.
#[derive(Debug, Clone)]
pub struct OutboundRow {
    pub id: i64,
    pub conversation_id: i64,
    pub phone_number_id: String,
    /// The customer: their number, or their BSUID when that is all we know.
    pub to: Recipient,
    pub author: String,
    pub body: OutboundBody,
    pub reply_to: Option<String>,
    pub state: LedgerState,
    pub wamid: Option<String>,
    pub attempts: i64,
    pub sending_at: Option<i64>,
    pub last_inbound_at: Option<i64>,
    pub error_reason: Option<String>,
}

/// Why a message was not sent because the 24-hour window had closed.
pub const WINDOW_CLOSED_REASON: &str =
    "not sent: the 24-hour window closed before it could go out; send an approved template";

/// Inserts the row unless its idempotency key exists; returns (id, newly created).
pub fn insert(conn: &Connection, new: &NewOutbound, now: i64) -> Result<(i64, bool)> {
    let n = conn.execute(
        "INSERT INTO outbound (conversation_id, author, kind, body_json, text, reply_to, idempotency_key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (idempotency_key) DO NOTHING",
        params![
            new.conversation_id,
            new.author,
            new.body.kind(),
            serde_json::to_string(&new.body)?,
            new.body.text(),
            new.reply_to,
            new.idempotency_key,
            now
        ],
    )?;
    let id = conn.query_row(
        "SELECT id FROM outbound WHERE idempotency_key = ?1",
        [&new.idempotency_key],
        |r| r.get(0),
    )?;
    Ok((id, n == 1))
}

/// Inserts `req` (as `insert`) unless it is free-form and the conversation's 24-hour
/// window is closed at `now`: then the conversation is flagged as needing a template and
/// nothing is inserted (`None`). Returns the row's (id, created_at).
pub fn insert_within_window(conn: &Connection, req: &NewOutbound, now: i64) -> Result<Option<(i64, i64)>> {
    let last_inbound = super::conversations::last_inbound_at(conn, req.conversation_id)?;
    if !req.body.allowed_outside_window() && !crate::domain::window::is_open(last_inbound, now) {
        super::conversations::flag_needs_template(conn, req.conversation_id)?;
        return Ok(None);
    }
    let id = insert(conn, req, now)?.0;
    Ok(Some((id, created_at(conn, id)?)))
}

/// The row that went out as the retry of failed row `id`, if one did: its key is
/// `domain::ledger::retry_key`, or (retries made before a retry became once-only)
/// that key followed by `:` and the form's one-time key.
pub fn retry_of(conn: &Connection, id: i64) -> Result<Option<i64>> {
    let key = crate::domain::ledger::retry_key(id);
    Ok(conn
        .query_row(
            "SELECT id FROM outbound WHERE idempotency_key = ?1 OR (idempotency_key > ?1 || ':' AND idempotency_key < ?1 || ';')
             ORDER BY id LIMIT 1",
            [&key],
            |r| r.get(0),
        )
        .optional()?)
}

/// The row with its conversation's number, recipient and window.
pub fn get(conn: &Connection, id: i64) -> Result<OutboundRow> {
    conn.query_row(
        "SELECT o.id, o.conversation_id, c.phone_number_id, k.wa_id, o.author, o.body_json,
                o.reply_to, o.state, o.wamid, o.attempts, o.sending_at, c.last_inbound_at, o.error_reason, k.user_id
         FROM outbound o JOIN conversations c ON c.id = o.conversation_id JOIN contacts k ON k.id = c.contact_id
         WHERE o.id = ?1",
        [id],
        |r| {
            let body: String = r.get(5)?;
            let state: String = r.get(7)?;
            Ok(OutboundRow {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                phone_number_id: r.get(2)?,
                // Every stored contact has one or the other; an empty number is refused by Meta.
                to: Recipient::of_contact(
                    r.get::<_, Option<String>>(3)?.as_deref(),
                    r.get::<_, Option<String>>(13)?.as_deref(),
                )
                .unwrap_or(Recipient::Number(String::new())),
                author: r.get(4)?,
                body: serde_json::from_str(&body).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
                })?,
                reply_to: r.get(6)?,
                state: LedgerState::parse(&state).unwrap_or(LedgerState::Queued),
                wamid: r.get(8)?,
                attempts: r.get(9)?,
                sending_at: r.get(10)?,
                last_inbound_at: r.get(11)?,
                error_reason: r.get(12)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("outbound message {id}")))
}

fn set_state(
    conn: &Connection,
    id: i64,
    next: LedgerState,
    extra_sql: &str,
    extra: &[&dyn rusqlite::ToSql],
    now: i64,
) -> Result<bool> {
    let cur: Option<String> = conn
        .query_row("SELECT state FROM outbound WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(cur) = cur.as_deref().and_then(LedgerState::parse) else {
        return Ok(false);
    };
    if !cur.may_become(next) {
        return Ok(false);
    }
    let sql = format!("UPDATE outbound SET state = ?1, updated_at = ?2 {extra_sql} WHERE id = ?3");
    let state = next.as_str();
    let mut p: Vec<&dyn rusqlite::ToSql> = vec![&state, &now, &id];
    p.extend_from_slice(extra);
    conn.execute(&sql, p.as_slice())?;
    Ok(true)
}

/// queued → sending, counting the attempt. `false` if the row was not queued.
pub fn mark_sending(conn: &Connection, id: i64, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE outbound SET state = 'sending', attempts = attempts + 1, sending_at = ?2, updated_at = ?2
         WHERE id = ?1 AND state IN ('queued', 'sending')",
        params![id, now],
    )? == 1)
}

/// Meta accepted it: record the wamid and show it in the conversation.
pub fn mark_accepted(conn: &Connection, id: i64, wamid: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE outbound SET wamid = COALESCE(wamid, ?2), accepted_at = COALESCE(accepted_at, ?3) WHERE id = ?1",
        params![id, wamid, now],
    )?;
    if set_state(conn, id, LedgerState::Accepted, "", &[], now)? {
        outbound_event(conn, id, EventKind::MessageSent)?;
    }
    insert_conversation_message(conn, id, wamid, now)
}

/// Records `message.sent` / `message.failed` for ledger row `id` (docs/webhooks.md).
fn outbound_event(conn: &Connection, id: i64, kind: EventKind) -> Result<()> {
    let row = conn
        .query_row(
            "SELECT conversation_id, wamid, author, kind, text, error_code, error_reason FROM outbound WHERE id = ?1",
            [id],
            |r| {
                let message = serde_json::json!({ "message": {
                    "id": id,
                    "wamid": r.get::<_, Option<String>>(1)?,
                    "author": r.get::<_, String>(2)?,
                    "type": r.get::<_, String>(3)?,
                    "text": r.get::<_, Option<String>>(4)?,
                }});
                let error = serde_json::json!({
                    "code": r.get::<_, Option<i64>>(5)?,
                    "reason": r.get::<_, Option<String>>(6)?,
                });
                Ok((r.get::<_, i64>(0)?, message, error))
            },
        )
        .optional()?;
    let Some((conversation_id, mut extra, error)) = row else {
        return Ok(());
    };
    if kind == EventKind::MessageFailed {
        extra["error"] = error;
    }
    super::webhooks::record_for_conversation(conn, kind, conversation_id, extra)?;
    Ok(())
}

/// A failed attempt that will be retried: back to queued with the reason.
pub fn mark_retrying(conn: &Connection, id: i64, code: Option<i64>, reason: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE outbound SET state = 'queued', error_code = ?2, error_reason = ?3, updated_at = ?4
         WHERE id = ?1 AND state IN ('queued', 'sending')",
        params![id, code, reason, now],
    )?;
    Ok(())
}

/// The message will not be delivered; `needs_template` flags the conversation.
pub fn mark_failed(
    conn: &Connection,
    id: i64,
    code: Option<i64>,
    reason: &str,
    needs_template: bool,
    now: i64,
) -> Result<()> {
    if set_state(
        conn,
        id,
        LedgerState::Failed,
        ", error_code = ?4, error_reason = ?5",
        &[&code, &reason],
        now,
    )? {
        outbound_event(conn, id, EventKind::MessageFailed)?;
    }
    if needs_template {
        conn.execute(
            "UPDATE conversations SET needs_template = 1 WHERE id = (SELECT conversation_id FROM outbound WHERE id = ?1)",
            [id],
        )?;
    }
    Ok(())
}

/// What one send attempt came to, for `record_outcomes`.
pub enum SendOutcome {
    /// Meta accepted it with this wamid.
    Accepted(i64, String),
    /// Failed; will be retried (code, reason).
    Retrying(i64, Option<i64>, String),
    /// Failed for good (code, reason, needs a template).
    Failed(i64, Option<i64>, String, bool),
}

impl SendOutcome {
    /// The ledger row it is about.
    pub fn ledger_id(&self) -> i64 {
        match self {
            SendOutcome::Accepted(id, _) | SendOutcome::Retrying(id, ..) | SendOutcome::Failed(id, ..) => *id,
        }
    }
}

/// Applies each outcome in its own savepoint, so one that cannot be recorded (a wamid
/// another row already has, a broken row) does not take the others with it. A row whose
/// outcome failed to record is marked `failed` with why, so it never sits in `sending`
/// unseen; returns those rows and their errors.
pub fn record_outcomes(
    tx: &mut rusqlite::Savepoint<'_>,
    updates: Vec<SendOutcome>,
    now: i64,
) -> Result<Vec<(i64, Error)>> {
    let mut unrecorded = Vec::new();
    for u in updates {
        let sp = tx.savepoint()?;
        let applied = match &u {
            SendOutcome::Accepted(id, wamid) => mark_accepted(&sp, *id, wamid, now),
            SendOutcome::Retrying(id, code, reason) => mark_retrying(&sp, *id, *code, reason, now),
            SendOutcome::Failed(id, code, reason, nt) => mark_failed(&sp, *id, *code, reason, *nt, now),
        };
        match applied {
            Ok(()) => sp.commit()?,
            Err(e) => {
                drop(sp); // rolls back this outcome alone
                let reason = unrecorded_reason(&u, &e);
                mark_failed(tx, u.ledger_id(), None, &reason, false, now)?;
                unrecorded.push((u.ledger_id(), e));
            }
        }
    }
    Ok(unrecorded)
}

/// What the agent reads on a row whose send outcome could not be recorded.
fn unrecorded_reason(u: &SendOutcome, e: &Error) -> String {
    match u {
        SendOutcome::Accepted(_, wamid) => format!(
            "the Graph API accepted it (message id {wamid}) but recording that failed ({e}); \
             it may have reached the customer, so check before sending it again"
        ),
        SendOutcome::Retrying(_, _, reason) | SendOutcome::Failed(_, _, reason, _) => {
            format!("not sent: {reason}; recording that failed too ({e})")
        }
    }
}

/// Whether a failure means the 24-hour window had closed (Meta's 131047, or 470 as older
/// API versions said it).
fn window_closed_code(code: Option<i64>) -> bool {
    matches!(code, Some(131047 | 470))
}

/// A handoff's bridge text (key `bridge:<handoff id>`) that failed because the 24-hour
/// window had closed by the time it went out — refused by Meta (131047 at once or as a
/// `failed` status) or held back by the send worker — falls back to `template` (the
/// configured `engine.bridge_template`): one ledger row keyed `bridge:<handoff id>:template`
/// and one note in the inbox, whatever the number of calls. Not when Meta has the
/// template rejected, paused or disabled (the note says so instead), nor for any other
/// row or failure; with no template the failed row stays as the thread's only trace.
/// Returns the template row's (id, created_at) while it is still to be sent.
pub fn bridge_fallback(
    conn: &Connection,
    id: i64,
    template: Option<&OutboundBody>,
    now: i64,
) -> Result<Option<(i64, i64)>> {
    let row = conn
        .query_row(
            "SELECT conversation_id, idempotency_key, kind, state, error_code FROM outbound WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((conversation_id, key, kind, state, code)) = row else {
        return Ok(None);
    };
    let is_bridge = key.starts_with("bridge:") && !key.ends_with(":template") && kind != "template";
    if !is_bridge || LedgerState::parse(&state) != Some(LedgerState::Failed) || !window_closed_code(code) {
        return Ok(None);
    }
    let Some(template @ OutboundBody::Template { name, language, .. }) = template else {
        return Ok(None);
    };
    if let Some(blocked) = super::health::blocked_template(conn, name, language)? {
        let note = format!(
            "The bridge text could not go out: the 24-hour window had closed by the time it was sent, and the bridge template \"{name}\" ({language}) was not used: Meta has it {}. Nothing reached the customer.",
            blocked.why()
        );
        let said: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM conversation_notes WHERE conversation_id = ?1 AND text = ?2)",
            params![conversation_id, note],
            |r| r.get(0),
        )?;
        if !said {
            super::inbox::add_note(conn, conversation_id, "bot", &note, now)?;
        }
        return Ok(None);
    }
    let req = NewOutbound {
        conversation_id,
        author: "bot".into(),
        body: template.clone(),
        reply_to: None,
        idempotency_key: format!("{key}:template"),
    };
    let (template_id, new) = insert(conn, &req, now)?;
    if new {
        let note = format!(
            "The bridge text could not go out: the 24-hour window had closed by the time it was sent, so the customer got the approved template \"{name}\" ({language}) instead. Anything free-form has to wait until the customer writes again."
        );
        super::inbox::add_note(conn, conversation_id, "bot", &note, now)?;
    }
    let pending: bool = conn.query_row(
        "SELECT state IN ('queued', 'sending') FROM outbound WHERE id = ?1",
        [template_id],
        |r| r.get(0),
    )?;
    Ok(pending.then_some((template_id, created_at(conn, template_id)?)))
}

/// `bridge_fallback` for each of `ids`, each in its own savepoint: one that cannot be
/// written is logged and rolled back alone (its failed row stays visible). Returns the
/// template rows to queue.
pub fn bridge_fallbacks(
    tx: &mut rusqlite::Savepoint<'_>,
    ids: &[i64],
    template: Option<&OutboundBody>,
    now: i64,
) -> Result<Vec<(i64, i64)>> {
    let mut queued = Vec::new();
    if template.is_none() {
        return Ok(queued);
    }
    for &id in ids {
        let sp = tx.savepoint()?;
        match bridge_fallback(&sp, id, template, now) {
            Ok(q) => {
                sp.commit()?;
                queued.extend(q);
            }
            Err(e) => tracing::error!(ledger = id, error = %e, "could not fall back to the bridge template"),
        }
    }
    Ok(queued)
}

/// Whether an earlier message of the same conversation is still waiting to go out
/// (messages to one customer leave in order).
pub fn earlier_pending(conn: &Connection, conversation_id: i64, id: i64) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM outbound WHERE conversation_id = ?1 AND id < ?2 AND state IN ('queued', 'sending') LIMIT 1",
            params![conversation_id, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Ids of rows still to be sent (re-enqueued at start, idempotently).
pub fn pending_ids(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut stmt =
        conn.prepare("SELECT id, created_at FROM outbound WHERE state IN ('queued', 'sending') ORDER BY id")?;
    let ids = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// When ledger row `id` was written (part of its send job's key).
pub fn created_at(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn.query_row("SELECT created_at FROM outbound WHERE id = ?1", [id], |r| r.get(0))?)
}

/// Applies a status webhook to the ledger: finds the row by wamid, or by the ledger id
/// in `biz_opaque_callback_data` (which also recovers a send whose acceptance was never
/// recorded because the process died), and moves it forward. Returns the row's id when it moved.
pub fn reconcile(
    conn: &Connection,
    wamid: &str,
    callback: Option<&str>,
    state: LedgerState,
    code: Option<i64>,
    reason: Option<&str>,
    now: i64,
) -> Result<Option<i64>> {
    let by_wamid: Option<i64> = conn
        .query_row("SELECT id FROM outbound WHERE wamid = ?1", [wamid], |r| r.get(0))
        .optional()?;
    let id = match by_wamid.or_else(|| callback.and_then(ledger_id_from_callback)) {
        Some(id) => id,
        None => return Ok(None),
    };
    let row_wamid: Option<Option<String>> = conn
        .query_row("SELECT wamid FROM outbound WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    match row_wamid {
        None => return Ok(None),
        Some(Some(w)) if w != wamid => return Ok(None),
        Some(None) => {
            // Meta has it but we never recorded the acceptance: record it now.
            conn.execute(
                "UPDATE outbound SET wamid = ?2, accepted_at = COALESCE(accepted_at, ?3) WHERE id = ?1",
                params![id, wamid, now],
            )?;
            if set_state(conn, id, LedgerState::Accepted, "", &[], now)? {
                outbound_event(conn, id, EventKind::MessageSent)?;
            }
            insert_conversation_message(conn, id, wamid, now)?;
        }
        Some(Some(_)) => {}
    }
    let moved = if state == LedgerState::Failed {
        set_state(
            conn,
            id,
            state,
            ", error_code = ?4, error_reason = ?5",
            &[&code, &reason],
            now,
        )?
    } else {
        set_state(conn, id, state, "", &[], now)?
    };
    if moved && state == LedgerState::Failed {
        outbound_event(conn, id, EventKind::MessageFailed)?;
    }
    if moved && code == Some(131047) {
        conn.execute("UPDATE conversations SET needs_template = 1 WHERE id = (SELECT conversation_id FROM outbound WHERE id = ?1)", [id])?;
    }
    Ok(moved.then_some(id))
}

/// Shows an accepted outbound message in its conversation (`messages`, direction out).
fn insert_conversation_message(conn: &Connection, id: i64, wamid: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, context_wamid, status, wa_timestamp, created_at)
         SELECT ?2, o.conversation_id, 'out', c.phone_number_id, o.kind, o.text, o.body_json, o.reply_to, 'accepted', ?3 / 1000, ?3
         FROM outbound o JOIN conversations c ON c.id = o.conversation_id WHERE o.id = ?1
         ON CONFLICT (wamid) DO NOTHING",
        params![id, wamid, now],
    )?;
    conn.execute(
        "UPDATE conversations SET last_message_at = MAX(COALESCE(last_message_at, 0), ?2)
         WHERE id = (SELECT conversation_id FROM outbound WHERE id = ?1)",
        params![id, now],
    )?;
    Ok(())
}

/// The newest ledger row of conversation `id` (0 when none): what a conversation page
/// was made after, for the collision check of its reply.
pub fn newest_in(conn: &Connection, conversation_id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM outbound WHERE conversation_id = ?1",
        [conversation_id],
        |r| r.get(0),
    )?)
}

/// The newest message another agent (an `agent:` author other than `author`) queued in
/// conversation `id` after ledger row `after`: (their email, the text).
pub fn agent_reply_since(
    conn: &Connection,
    conversation_id: i64,
    after: i64,
    author: &str,
) -> Result<Option<(String, String)>> {
    Ok(conn
        .query_row(
            "SELECT author, text FROM outbound INDEXED BY outbound_conversation
             WHERE conversation_id = ?1 AND id > ?2 AND author LIKE 'agent:%' AND author <> ?3
             ORDER BY id DESC LIMIT 1",
            params![conversation_id, after, author],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .map(|(who, text)| (who.trim_start_matches("agent:").to_string(), text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(conversation_id: i64, key: &str) -> NewOutbound {
        NewOutbound {
            conversation_id,
            author: "bot".into(),
            body: OutboundBody::Text {
                body: "A teammate will answer.".into(),
                preview_url: false,
            },
            reply_to: None,
            idempotency_key: key.into(),
        }
    }

    #[test]
    fn only_a_bridge_failed_for_a_closed_window_falls_back_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let template = OutboundBody::Template {
            name: "bridge_to_team".into(),
            language: "en_US".into(),
            params: Vec::new(),
        };
        store
            .transaction_blocking(|c| {
                c.execute(
                    "INSERT INTO contacts (wa_id, created_at, updated_at) VALUES ('31', 1, 1)",
                    [],
                )?;
                c.execute(
                    "INSERT INTO conversations (phone_number_id, contact_id, created_at) VALUES ('P1', 1, 1)",
                    [],
                )?;
                let (bridge, _) = insert(c, &text(1, "bridge:7"), 10)?;
                let (answer, _) = insert(c, &text(1, "reply:wamid.1"), 10)?;
                let (other, _) = insert(c, &text(1, "bridge:8"), 10)?;
                for id in [bridge, answer] {
                    mark_failed(c, id, Some(131047), WINDOW_CLOSED_REASON, true, 11)?;
                }
                mark_failed(c, other, Some(131026), "undeliverable", false, 11)?;
                assert_eq!(bridge_fallback(c, bridge, None, 12)?, None, "no template configured");
                assert_eq!(bridge_fallback(c, answer, Some(&template), 12)?, None, "not a bridge");
                assert_eq!(bridge_fallback(c, other, Some(&template), 12)?, None, "another failure");
                let first = bridge_fallback(c, bridge, Some(&template), 12)?.expect("the template row");
                assert_eq!(
                    bridge_fallback(c, bridge, Some(&template), 13)?,
                    Some(first),
                    "the same row"
                );
                assert_eq!(
                    bridge_fallback(c, first.0, Some(&template), 13)?,
                    None,
                    "the template row is no bridge text"
                );
                let row = get(c, first.0)?;
                assert_eq!(row.body, template);
                let notes: i64 = c.query_row("SELECT COUNT(*) FROM conversation_notes", [], |r| r.get(0))?;
                assert_eq!(notes, 1, "said once");
                let rows: i64 = c.query_row("SELECT COUNT(*) FROM outbound", [], |r| r.get(0))?;
                assert_eq!(rows, 4);
                Ok(())
            })
            .unwrap();
    }
}
