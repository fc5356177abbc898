//! Contact-level rows: STOP/START opt-outs and erasure of everything stored about a
//! contact (messages, ledger, statuses, handoffs, traces, conversations), leaving only an
//! audit entry that names a hash of the number, never the number.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// Records an opt-out (`true`) or opt-in for the contact of a conversation.
pub fn set_opted_out(conn: &Connection, conversation_id: i64, opted_out: bool, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE contacts SET opted_out_at = ?2, updated_at = ?3 WHERE id = (SELECT contact_id FROM conversations WHERE id = ?1)",
        params![conversation_id, opted_out.then_some(now), now],
    )?;
    Ok(())
}

/// Whether the contact of a conversation opted out of bot messages.
pub fn opted_out(conn: &Connection, conversation_id: i64) -> Result<bool> {
    let at: Option<Option<i64>> = conn
        .query_row(
            "SELECT k.opted_out_at FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = ?1",
            [conversation_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(at.flatten().is_some())
}

/// What an erasure removed.
#[derive(Debug, Default, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Erased {
    pub conversations: usize,
    pub messages: usize,
    pub outbound: usize,
    pub statuses: usize,
    pub handoffs: usize,
    pub traces: usize,
    pub summaries: usize,
    pub media: usize,
    /// Stored media files the erased rows named (the caller deletes those no longer used).
    #[serde(skip)]
    pub media_files: Vec<String>,
}

/// A stable, non-reversible label for a WhatsApp id in the audit log.
pub fn subject_hash(wa_id: &str) -> String {
    let h = Sha256::digest(format!("frontdesk-contact:{wa_id}").as_bytes());
    format!("contact:{}", &hex::encode(h)[..16])
}

/// Whether `wa_id` was erased (and has not written since).
pub fn erased(conn: &Connection, wa_id: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM erased_contacts WHERE subject = ?1)",
        [subject_hash(wa_id)],
        |r| r.get(0),
    )?)
}

/// Deletes everything stored about `wa_id`; `None` when no such contact exists. Leaves a
/// tombstone (a hash of the number) so late delivery statuses do not store it again.
pub fn erase(conn: &Connection, wa_id: &str, actor: &str, now: i64) -> Result<Option<Erased>> {
    let Some(contact) = conn
        .query_row("SELECT id FROM contacts WHERE wa_id = ?1", [wa_id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let convs: Vec<i64> = {
        let mut st = conn.prepare("SELECT id FROM conversations WHERE contact_id = ?1")?;
        st.query_map([contact], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut e = Erased {
        conversations: convs.len(),
        ..Default::default()
    };
    for c in &convs {
        // Delivery records of both directions' messages.
        e.statuses += conn.execute(
            "DELETE FROM message_statuses WHERE wamid IN (SELECT wamid FROM messages WHERE conversation_id = ?1)
                OR wamid IN (SELECT wamid FROM outbound WHERE conversation_id = ?1 AND wamid IS NOT NULL)",
            [c],
        )?;
        conn.execute(
            "DELETE FROM status_events WHERE wamid IN (SELECT wamid FROM messages WHERE conversation_id = ?1)
                OR wamid IN (SELECT wamid FROM outbound WHERE conversation_id = ?1 AND wamid IS NOT NULL)",
            [c],
        )?;
        let mut st =
            conn.prepare_cached("SELECT sha256 FROM media WHERE conversation_id = ?1 AND sha256 IS NOT NULL")?;
        e.media_files.extend(
            st.query_map([c], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
        e.media += conn.execute("DELETE FROM media WHERE conversation_id = ?1", [c])?;
        e.traces += conn.execute("DELETE FROM reply_traces WHERE conversation_id = ?1", [c])?;
        e.summaries += conn.execute("DELETE FROM conversation_summaries WHERE conversation_id = ?1", [c])?;
        e.handoffs += conn.execute("DELETE FROM handoffs WHERE conversation_id = ?1", [c])?;
        conn.execute("DELETE FROM conversation_notes WHERE conversation_id = ?1", [c])?;
        e.outbound += conn.execute("DELETE FROM outbound WHERE conversation_id = ?1", [c])?;
        e.messages += conn.execute("DELETE FROM messages WHERE conversation_id = ?1", [c])?;
        conn.execute("DELETE FROM conversation_reads WHERE conversation_id = ?1", [c])?;
        conn.execute("DELETE FROM conversations WHERE id = ?1", [c])?;
    }
    // Raw webhook parts kept for inspection may quote the number.
    let pattern = format!("%{wa_id}%");
    conn.execute("DELETE FROM raw_events WHERE raw LIKE ?1", [&pattern])?;
    conn.execute("DELETE FROM contacts WHERE id = ?1", [contact])?;
    conn.execute(
        "INSERT OR REPLACE INTO erased_contacts (subject, erased_at) VALUES (?1, ?2)",
        params![subject_hash(wa_id), now],
    )?;
    let detail = serde_json::to_string(&e).unwrap_or_default();
    super::settings::audit(conn, now, actor, "contact.erase", &subject_hash(wa_id), &detail)?;
    Ok(Some(e))
}
