//! What the conversation page's contact panel reads in one go: who the customer is (name,
//! number or BSUID, first seen), every conversation of theirs (status and dates), the
//! labels and the agents' notes across those conversations. Every text here may come
//! from a customer or an agent: the page escapes it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// At most this many of a contact's conversations are listed (a contact has one per
/// business number, so this is rarely reached).
pub const CONVERSATIONS_SHOWN: usize = 20;
/// At most this many notes (the newest) are listed.
pub const NOTES_SHOWN: usize = 10;

/// The contact of a conversation and what the desk knows across their conversations.
#[derive(Debug, Clone)]
pub struct ContactPanel {
    pub contact_id: i64,
    pub name: Option<String>,
    /// The number (digits), when known.
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID), when sent.
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// When the desk first stored this contact (Unix ms).
    pub first_seen: i64,
    pub opted_out: bool,
    /// Their conversations, newest activity first (the one shown included).
    pub conversations: Vec<ContactConversation>,
    /// Every label on any of their conversations, sorted, once each.
    pub labels: Vec<String>,
    /// The newest agents' notes over their conversations.
    pub notes: Vec<ContactNote>,
}

impl ContactPanel {
    /// What identifies the customer to a person: the number, else the BSUID (the erase
    /// form asks for it typed back).
    pub fn key(&self) -> Option<&str> {
        self.wa_id
            .as_deref()
            .filter(|w| !w.is_empty())
            .or(self.user_id.as_deref().filter(|u| !u.is_empty()))
    }
}

/// One conversation of the contact.
#[derive(Debug, Clone)]
pub struct ContactConversation {
    pub id: i64,
    /// The business number it is on.
    pub phone_number_id: String,
    pub owner: crate::domain::owner::Owner,
    pub closed: bool,
    pub created_at: i64,
    pub last_message_at: Option<i64>,
}

/// One agent's note, with the conversation it is on.
#[derive(Debug, Clone)]
pub struct ContactNote {
    pub conversation_id: i64,
    pub author: String,
    pub text: String,
    pub created_at: i64,
}

/// The panel for conversation `conversation_id`; `None` when it does not exist. Each
/// read goes by an index: the contact by primary key, their conversations by
/// `conversations_contact`, labels and notes by their conversation's.
pub fn for_conversation(conn: &Connection, conversation_id: i64) -> Result<Option<ContactPanel>> {
    let found = conn
        .query_row(
            "SELECT k.id, k.name, k.wa_id, k.user_id, k.username, k.created_at, k.opted_out_at IS NOT NULL
             FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = ?1",
            [conversation_id],
            |r| {
                Ok(ContactPanel {
                    contact_id: r.get(0)?,
                    name: r.get(1)?,
                    wa_id: r.get(2)?,
                    user_id: r.get(3)?,
                    username: r.get(4)?,
                    first_seen: r.get(5)?,
                    opted_out: r.get(6)?,
                    conversations: Vec::new(),
                    labels: Vec::new(),
                    notes: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut panel) = found else {
        return Ok(None);
    };
    let mut st = conn.prepare_cached(
        "SELECT id, phone_number_id, owner, closed_at IS NOT NULL, created_at, last_message_at
         FROM conversations WHERE contact_id = ?1
         ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT ?2",
    )?;
    panel.conversations = st
        .query_map(params![panel.contact_id, CONVERSATIONS_SHOWN as i64], |r| {
            Ok(ContactConversation {
                id: r.get(0)?,
                phone_number_id: r.get(1)?,
                owner: super::handoffs::stored_owner(&r.get::<_, String>(2)?),
                closed: r.get(3)?,
                created_at: r.get(4)?,
                last_message_at: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT l.label FROM conversations c JOIN conversation_labels l ON l.conversation_id = c.id
         WHERE c.contact_id = ?1 ORDER BY l.label",
    )?;
    panel.labels = st
        .query_map([panel.contact_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare_cached(
        "SELECT n.conversation_id, n.author, n.text, n.created_at
         FROM conversations c JOIN conversation_notes n ON n.conversation_id = c.id
         WHERE c.contact_id = ?1 ORDER BY n.created_at DESC, n.id DESC LIMIT ?2",
    )?;
    panel.notes = st
        .query_map(params![panel.contact_id, NOTES_SHOWN as i64], |r| {
            Ok(ContactNote {
                conversation_id: r.get(0)?,
                author: r.get(1)?,
                text: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(panel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_gathers_every_conversation_label_and_note_of_the_contact() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO contacts (id, wa_id, name, created_at, updated_at) VALUES (1, '31', 'Ann', 7, 7);
                     INSERT INTO contacts (id, wa_id, user_id, created_at, updated_at) VALUES (2, '', 'US.9', 8, 8);
                     INSERT INTO conversations (id, phone_number_id, contact_id, owner, last_message_at, closed_at, created_at)
                         VALUES (10, 'P1', 1, 'bot', 100, 150, 10), (11, 'P2', 1, 'human', 300, NULL, 20),
                                (20, 'P1', 2, 'bot', 500, NULL, 30);
                     INSERT INTO conversation_labels (conversation_id, label) VALUES (10, 'vip'), (11, 'vip'), (11, 'bikes'), (20, 'other');
                     INSERT INTO conversation_notes (conversation_id, author, text, created_at)
                         VALUES (10, 'a@x', 'old note', 1), (11, 'b@x', 'new note', 2), (20, 'c@x', 'not hers', 3);",
                )?;
                let p = for_conversation(c, 10)?.expect("conversation 10");
                assert_eq!((p.contact_id, p.name.as_deref(), p.key(), p.first_seen), (1, Some("Ann"), Some("31"), 7));
                assert_eq!(p.conversations.iter().map(|c| c.id).collect::<Vec<_>>(), [11, 10]);
                assert!(p.conversations[1].closed && !p.conversations[0].closed);
                assert_eq!(p.labels, ["bikes", "vip"]);
                assert_eq!(
                    p.notes.iter().map(|n| (n.conversation_id, n.text.as_str())).collect::<Vec<_>>(),
                    [(11, "new note"), (10, "old note")]
                );
                // Known only by the BSUID: that is the key.
                assert_eq!(for_conversation(c, 20)?.expect("conversation 20").key(), Some("US.9"));
                assert!(for_conversation(c, 99)?.is_none());
                Ok(())
            })
            .unwrap();
    }
}
