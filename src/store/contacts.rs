//! Contact-level rows: STOP/START opt-outs, merging two contacts that turn out to be one
//! customer (a re-key onto a number or BSUID another contact already holds), and erasure
//! of everything stored about a contact (messages, ledger, statuses, handoffs, traces,
//! conversations), leaving only an audit entry that names a hash of the number, never the
//! number.

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

/// The tables whose rows belong to a conversation (by `conversation_id`) and move with its
/// history when two conversations become one.
const CONVERSATION_ROWS: [&str; 5] = ["messages", "outbound", "handoffs", "reply_traces", "conversation_notes"];

/// Folds contact `gone` into contact `keep` (the same customer under two keys: the
/// customer wrote from a new number or BSUID before the system message announcing it
/// arrived): each of `gone`'s conversations joins `keep`'s conversation on the same
/// business number — messages, ledger, handoffs, traces, notes and media keep their ids,
/// so the thread reads in order — or, when `keep` has none there, becomes `keep`'s. The
/// joined conversation is a person's if either was, keeps its assignee (else takes the
/// other's), and its window and last activity are the later of the two. `keep` takes
/// `gone`'s name and username when it has none, and stays opted out if either was. `gone`
/// is deleted (its keys are free for `keep` after this). Audited with the two ids only.
pub fn merge(conn: &Connection, keep: i64, gone: i64, now: i64) -> Result<()> {
    if keep == gone {
        return Ok(());
    }
    let convs: Vec<(i64, String)> = {
        let mut st = conn.prepare("SELECT id, phone_number_id FROM conversations WHERE contact_id = ?1 ORDER BY id")?;
        st.query_map([gone], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (from, number) in convs {
        let into: Option<i64> = conn
            .query_row(
                "SELECT id FROM conversations WHERE contact_id = ?1 AND phone_number_id = ?2",
                params![keep, number],
                |r| r.get(0),
            )
            .optional()?;
        let Some(into) = into else {
            conn.execute(
                "UPDATE conversations SET contact_id = ?1 WHERE id = ?2",
                params![keep, from],
            )?;
            continue;
        };
        for table in CONVERSATION_ROWS {
            conn.execute(
                &format!("UPDATE {table} SET conversation_id = ?1 WHERE conversation_id = ?2"),
                params![into, from],
            )?;
        }
        conn.execute(
            "UPDATE media SET conversation_id = ?1 WHERE conversation_id = ?2",
            params![into, from],
        )?;
        // The kept conversation's summary and read markers stand; the other's go.
        conn.execute("DELETE FROM conversation_summaries WHERE conversation_id = ?1", [from])?;
        conn.execute("DELETE FROM conversation_reads WHERE conversation_id = ?1", [from])?;
        conn.execute(
            "UPDATE conversations SET
                owner = CASE WHEN conversations.owner = 'human' OR f.owner = 'human' THEN 'human' ELSE 'bot' END,
                assigned_to = COALESCE(conversations.assigned_to, f.assigned_to),
                needs_template = CASE WHEN COALESCE(f.last_inbound_at, 0) > COALESCE(conversations.last_inbound_at, 0)
                                      THEN f.needs_template ELSE conversations.needs_template END,
                closed_at = CASE WHEN f.closed_at IS NULL OR conversations.closed_at IS NULL THEN NULL
                                 ELSE MAX(conversations.closed_at, f.closed_at) END,
                last_inbound_at = MAX(COALESCE(conversations.last_inbound_at, 0), COALESCE(f.last_inbound_at, 0)),
                last_message_at = MAX(COALESCE(conversations.last_message_at, 0), COALESCE(f.last_message_at, 0))
             FROM (SELECT owner, assigned_to, needs_template, closed_at, last_inbound_at, last_message_at
                   FROM conversations WHERE id = ?2) AS f
             WHERE conversations.id = ?1",
            params![into, from],
        )?;
        conn.execute("DELETE FROM conversations WHERE id = ?1", [from])?;
    }
    conn.execute(
        "UPDATE contacts SET
            name = COALESCE(contacts.name, g.name), username = COALESCE(contacts.username, g.username),
            opted_out_at = COALESCE(contacts.opted_out_at, g.opted_out_at), updated_at = ?3
         FROM (SELECT name, username, opted_out_at FROM contacts WHERE id = ?2) AS g
         WHERE contacts.id = ?1",
        params![keep, gone, now],
    )?;
    conn.execute("DELETE FROM contacts WHERE id = ?1", [gone])?;
    super::settings::audit(
        conn,
        now,
        "system",
        "contact.merge",
        &format!("contact:{keep}"),
        &serde_json::json!({ "merged": gone }).to_string(),
    )?;
    Ok(())
}

/// Deletes everything stored about `wa_id`; `None` when no such contact exists. Leaves a
/// tombstone (a hash of the number) so late delivery statuses do not store it again.
pub fn erase(conn: &Connection, wa_id: &str, actor: &str, now: i64) -> Result<Option<Erased>> {
    if wa_id.is_empty() {
        return Ok(None);
    }
    let Some(contact) = conn
        .query_row("SELECT id FROM contacts WHERE wa_id = ?1", [wa_id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    erase_contact(conn, contact, actor, now)
}

/// Deletes everything stored about contact `contact` (the inbox's erase action, which
/// knows the contact by its conversation): as `erase`, for a contact known by its number
/// or, when that is all we know, its BSUID (then the tombstone and the audit subject are
/// a hash of the BSUID). `None` when no such contact exists.
pub fn erase_contact(conn: &Connection, contact: i64, actor: &str, now: i64) -> Result<Option<Erased>> {
    let Some((wa_id, user_id)) = conn
        .query_row("SELECT wa_id, user_id FROM contacts WHERE id = ?1", [contact], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    // The subject: the number, else the BSUID (a contact always has one of the two).
    let subject_key = if wa_id.is_empty() {
        user_id.as_str()
    } else {
        wa_id.as_str()
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
        conn.execute("DELETE FROM conversation_labels WHERE conversation_id = ?1", [c])?;
        // Webhook events not yet delivered carry the number and the messages: not sent.
        super::webhooks::erase_conversation(conn, *c)?;
        conn.execute("DELETE FROM conversations WHERE id = ?1", [c])?;
    }
    // Raw webhook parts kept for inspection may quote the number or the BSUID.
    for key in [&wa_id, &user_id].into_iter().filter(|k| !k.is_empty()) {
        let pattern = format!(
            "%{}%",
            key.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        conn.execute("DELETE FROM raw_events WHERE raw LIKE ?1 ESCAPE '\\'", [&pattern])?;
    }
    conn.execute("DELETE FROM contacts WHERE id = ?1", [contact])?;
    if !subject_key.is_empty() {
        conn.execute(
            "INSERT OR REPLACE INTO erased_contacts (subject, erased_at) VALUES (?1, ?2)",
            params![subject_hash(subject_key), now],
        )?;
    }
    let detail = serde_json::to_string(&e).unwrap_or_default();
    let subject = if subject_key.is_empty() {
        format!("contact:{contact}")
    } else {
        subject_hash(subject_key)
    };
    super::settings::audit(conn, now, actor, "contact.erase", &subject, &detail)?;
    Ok(Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_joins_conversations_per_number_and_keeps_the_stricter_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '31', 1, 1);
                     INSERT INTO contacts (id, wa_id, name, opted_out_at, created_at, updated_at) VALUES (2, '32', 'Ann', 5, 1, 1);
                     INSERT INTO conversations (id, phone_number_id, contact_id, owner, last_inbound_at, closed_at, created_at)
                         VALUES (10, 'P1', 1, 'bot', 100, 150, 1);
                     INSERT INTO conversations (id, phone_number_id, contact_id, owner, last_inbound_at, created_at)
                         VALUES (20, 'P1', 2, 'human', 200, 2);
                     INSERT INTO conversations (id, phone_number_id, contact_id, created_at) VALUES (21, 'P2', 2, 2);
                     INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at)
                         VALUES ('w1', 10, 'in', '31', 'text', 'a', '{}', 'received', 1, 1),
                                ('w2', 20, 'in', '32', 'text', 'b', '{}', 'received', 2, 2),
                                ('w3', 21, 'in', '32', 'text', 'c', '{}', 'received', 3, 3);",
                )?;
                merge(c, 1, 2, 9)?;
                let convs: Vec<(i64, String, String, Option<i64>, i64)> = c
                    .prepare("SELECT id, phone_number_id, owner, closed_at, COALESCE(last_inbound_at, 0) FROM conversations ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                assert_eq!(
                    convs,
                    vec![(10, "P1".into(), "human".into(), None, 200), (21, "P2".into(), "bot".into(), None, 0)]
                );
                let owners: Vec<(String, i64)> = c
                    .prepare("SELECT wamid, conversation_id FROM messages ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                assert_eq!(owners, vec![("w1".into(), 10), ("w2".into(), 10), ("w3".into(), 21)]);
                let (contacts, name, opted): (i64, Option<String>, Option<i64>) = c.query_row(
                    "SELECT (SELECT COUNT(*) FROM contacts), name, opted_out_at FROM contacts WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                assert_eq!((contacts, name.as_deref(), opted), (1, Some("Ann"), Some(5)));
                let c21: i64 = c.query_row("SELECT contact_id FROM conversations WHERE id = 21", [], |r| r.get(0))?;
                assert_eq!(c21, 1);
                Ok(())
            })
            .unwrap();
    }
}
