//! What the inbox lists: conversations with their contact, last message and open
//! handoff, newest activity first.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::labels::Priority;
use crate::domain::soft_launch::LaunchGroup;
use crate::domain::webhook::EventKind;
use crate::error::Result;

/// Not snoozed now (`?3` is the clock): never snoozed, its time came, or the customer
/// woke it (`domain::snooze::SnoozeState`).
macro_rules! awake {
    () => {
        "(c.snoozed_until IS NULL OR c.snoozed_until <= ?3 OR c.snooze_woke_at IS NOT NULL)"
    };
}

/// Which conversations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A person owns it (handed off).
    NeedsHuman,
    /// The bot is handling it.
    Bot,
    /// Assigned to the viewer.
    Mine,
    /// A person owns it and nobody is assigned.
    Unassigned,
    /// Closed by an agent (until the customer writes again).
    Closed,
    /// Snoozed until a time that has not come (and the customer has not written since):
    /// out of the working tabs (needs a human, mine, unassigned) until then.
    Snoozed,
    All,
}

impl View {
    pub fn parse(s: &str) -> View {
        match s {
            "bot" => View::Bot,
            "mine" => View::Mine,
            "unassigned" => View::Unassigned,
            "closed" => View::Closed,
            "snoozed" => View::Snoozed,
            "all" => View::All,
            _ => View::NeedsHuman,
        }
    }

    /// Every view, in the order the tabs show them.
    pub const ALL: [View; 7] = [
        View::NeedsHuman,
        View::Mine,
        View::Unassigned,
        View::Bot,
        View::Snoozed,
        View::Closed,
        View::All,
    ];

    /// The SQL condition on `conversations c` that keeps this view's conversations (`?2`
    /// is the viewer's user id, `?3` the clock): shared by the list and its unread counts
    /// per tab. The working tabs leave out what is snoozed now; Snoozed is the partial
    /// index's range (`conversations_snoozed`).
    pub fn filter(self) -> &'static str {
        match self {
            View::NeedsHuman => concat!("c.owner = 'human' AND ", awake!()),
            View::Bot => "c.owner = 'bot' AND c.closed_at IS NULL",
            View::Mine => concat!("c.assigned_to = ?2 AND c.closed_at IS NULL AND ", awake!()),
            View::Unassigned => concat!("c.owner = 'human' AND c.assigned_to IS NULL AND ", awake!()),
            View::Closed => "c.closed_at IS NOT NULL",
            View::Snoozed => "c.snoozed_until > ?3 AND c.snooze_woke_at IS NULL",
            View::All => "1",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::NeedsHuman => "human",
            View::Bot => "bot",
            View::Mine => "mine",
            View::Unassigned => "unassigned",
            View::Closed => "closed",
            View::Snoozed => "snoozed",
            View::All => "all",
        }
    }
}

/// One row of the list. Every text here may come from a customer.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: i64,
    pub name: Option<String>,
    pub wa_id: Option<String>,
    pub owner: crate::domain::owner::Owner,
    pub last_message_at: Option<i64>,
    /// What the customer said last.
    pub last_text: Option<String>,
    /// The open handoff's reason, when a person owns it.
    pub handoff_reason: Option<String>,
    /// The open handoff's trigger (its stored name: `engine::HandoffTrigger`).
    pub handoff_trigger: Option<String>,
    pub assigned_to: Option<String>,
    /// The customer wrote since this user last opened the conversation.
    pub unread: bool,
    pub closed: bool,
    /// Its soft-launch group: `People` started with a person ("soft launch").
    pub launch_group: LaunchGroup,
    /// The customer's last message (the 24-hour window runs from it).
    pub last_inbound_at: Option<i64>,
    pub priority: Priority,
    /// Agents' labels, sorted. Typed by agents: shown escaped like customer text.
    pub labels: Vec<String>,
    /// Snoozed (until when), woken from a snooze (why), or neither.
    pub snooze: crate::domain::snooze::SnoozeState,
}

/// A full-text query for FTS5 from what someone typed: each word quoted, prefix-matched.
pub(crate) fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Up to `limit` conversations of `view` for `user_id`, newest activity first; `search`
/// matches the name, the number or anything written in the conversation (through the
/// newest 2,000 matching messages, which keeps very common words fast); `label` keeps
/// the conversations carrying that label.
pub fn list(
    conn: &Connection,
    view: View,
    user_id: i64,
    search: Option<&str>,
    label: Option<&str>,
    limit: usize,
) -> Result<Vec<ConversationRow>> {
    let filter = view.filter();
    // Snoozed: the soonest to wake first (the partial index's order); else newest activity.
    let order = if view == View::Snoozed {
        "c.snoozed_until ASC"
    } else {
        "c.last_message_at DESC"
    };
    let now = crate::domain::now_ms();
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let (search_sql, like, fts) = match search {
        Some(q) => (
            "AND (k.name LIKE ?4 ESCAPE '\\' OR k.wa_id LIKE ?4 ESCAPE '\\'
                  OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.id IN
                      (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?5 ORDER BY rowid DESC LIMIT 2000)))",
            format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")),
            fts_query(q).unwrap_or_else(|| "\"\"".into()),
        ),
        None => ("", String::new(), String::new()),
    };
    let label_sql = if label.is_some() {
        "AND c.id IN (SELECT conversation_id FROM conversation_labels WHERE label = ?6)"
    } else {
        ""
    };
    let sql = format!(
        "SELECT c.id, k.name, k.wa_id, c.owner, c.last_message_at,
                (SELECT text FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1),
                (SELECT reason FROM handoffs h WHERE h.conversation_id = c.id AND h.resolved_at IS NULL ORDER BY h.id DESC LIMIT 1),
                u.email,
                COALESCE((SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in'), 0)
                    > COALESCE((SELECT last_read_id FROM conversation_reads r WHERE r.conversation_id = c.id AND r.user_id = ?2), 0),
                c.closed_at IS NOT NULL, c.launch_group,
                (SELECT trigger FROM handoffs h WHERE h.conversation_id = c.id AND h.resolved_at IS NULL ORDER BY h.id DESC LIMIT 1),
                c.last_inbound_at, c.priority,
                (SELECT group_concat(label, ' ') FROM (SELECT label FROM conversation_labels l WHERE l.conversation_id = c.id ORDER BY label)),
                c.snoozed_until, c.snooze_woke_at
         FROM conversations c JOIN contacts k ON k.id = c.contact_id LEFT JOIN users u ON u.id = c.assigned_to
         WHERE {filter} {search_sql} {label_sql}
         ORDER BY {order} LIMIT ?1"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let map = |r: &rusqlite::Row| {
        Ok(ConversationRow {
            id: r.get(0)?,
            name: r.get(1)?,
            wa_id: r.get(2)?,
            owner: super::handoffs::stored_owner(&r.get::<_, String>(3)?),
            last_message_at: r.get(4)?,
            last_text: r.get(5)?,
            handoff_reason: r.get(6)?,
            handoff_trigger: r.get(11)?,
            last_inbound_at: r.get(12)?,
            assigned_to: r.get(7)?,
            unread: r.get(8)?,
            closed: r.get(9)?,
            launch_group: LaunchGroup::parse(r.get::<_, Option<String>>(10)?.as_deref()),
            priority: Priority::from_stored(r.get(13)?),
            labels: split_labels(r.get(14)?),
            snooze: crate::domain::snooze::SnoozeState::of(r.get(15)?, r.get(16)?, now),
        })
    };
    // The statement binds as many values as its highest placeholder (?3, the clock, only
    // where a view leaves out snoozed conversations).
    use rusqlite::types::Value;
    let mut values: Vec<Value> = vec![
        Value::Integer(limit as i64),
        Value::Integer(user_id),
        Value::Integer(now),
        Value::Text(like),
        Value::Text(fts),
        Value::Text(label.unwrap_or_default().to_string()),
    ];
    let highest = (1..=values.len())
        .rev()
        .find(|i| sql.contains(&format!("?{i}")))
        .unwrap_or(0);
    values.truncate(highest);
    let rows = st
        .query_map(rusqlite::params_from_iter(values), map)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Labels as `group_concat` gives them (space-separated; a label has no spaces).
fn split_labels(joined: Option<String>) -> Vec<String> {
    joined
        .map(|j| j.split(' ').filter(|l| !l.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Sets the conversation's priority (audited).
pub fn set_priority(conn: &Connection, id: i64, priority: Priority, actor: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET priority = ?2 WHERE id = ?1",
        params![id, priority.stored()],
    )?;
    let detail = serde_json::json!({ "priority": priority.as_str() }).to_string();
    super::settings::audit_conversation(conn, now, actor, "conversation.priority", id, &detail)
}

/// Adds a label (already normalised by `domain::labels::label`), audited; false when the
/// conversation already carries `LABELS_PER_CONVERSATION` others.
pub fn add_label(conn: &Connection, id: i64, label: &str, actor: &str, now: i64) -> Result<bool> {
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM conversation_labels WHERE conversation_id = ?1 AND label <> ?2",
        params![id, label],
        |r| r.get(0),
    )?;
    if count as usize >= crate::domain::labels::LABELS_PER_CONVERSATION {
        return Ok(false);
    }
    let added = conn.execute(
        "INSERT OR IGNORE INTO conversation_labels (conversation_id, label) VALUES (?1, ?2)",
        params![id, label],
    )?;
    if added > 0 {
        let detail = serde_json::json!({ "added": label }).to_string();
        super::settings::audit_conversation(conn, now, actor, "conversation.label", id, &detail)?;
    }
    Ok(true)
}

/// Removes a label (audited when it was there).
pub fn remove_label(conn: &Connection, id: i64, label: &str, actor: &str, now: i64) -> Result<()> {
    let removed = conn.execute(
        "DELETE FROM conversation_labels WHERE conversation_id = ?1 AND label = ?2",
        params![id, label],
    )?;
    if removed > 0 {
        let detail = serde_json::json!({ "removed": label }).to_string();
        super::settings::audit_conversation(conn, now, actor, "conversation.label", id, &detail)?;
    }
    Ok(())
}

/// Marks the conversation read by `user_id` up to its newest customer message.
pub fn mark_read(conn: &Connection, conversation_id: i64, user_id: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO conversation_reads (user_id, conversation_id, last_read_id)
         SELECT ?1, ?2, COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = ?2 AND direction = 'in'
         ON CONFLICT(user_id, conversation_id) DO UPDATE SET last_read_id = excluded.last_read_id",
        params![user_id, conversation_id],
    )?;
    Ok(())
}

/// The head of a conversation page.
#[derive(Debug, Clone)]
pub struct ConversationHead {
    pub id: i64,
    pub closed: bool,
    pub name: Option<String>,
    pub wa_id: Option<String>,
    pub owner: crate::domain::owner::Owner,
    pub last_inbound_at: Option<i64>,
    pub needs_template: bool,
    pub assigned_to: Option<String>,
    pub opted_out: bool,
    /// The business number the conversation is on (uploads go there).
    pub phone_number_id: String,
    pub launch_group: LaunchGroup,
    pub priority: Priority,
    /// Agents' labels, sorted.
    pub labels: Vec<String>,
}

pub fn head(conn: &Connection, id: i64) -> Result<Option<ConversationHead>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT c.id, k.name, k.wa_id, c.owner, c.last_inbound_at, c.needs_template, u.email, k.opted_out_at IS NOT NULL, c.closed_at IS NOT NULL, c.phone_number_id, c.launch_group, c.priority,
                    (SELECT group_concat(label, ' ') FROM (SELECT label FROM conversation_labels l WHERE l.conversation_id = c.id ORDER BY label))
             FROM conversations c JOIN contacts k ON k.id = c.contact_id LEFT JOIN users u ON u.id = c.assigned_to WHERE c.id = ?1",
            [id],
            |r| {
                Ok(ConversationHead {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    wa_id: r.get(2)?,
                    owner: super::handoffs::stored_owner(&r.get::<_, String>(3)?),
                    last_inbound_at: r.get(4)?,
                    needs_template: r.get::<_, i64>(5)? != 0,
                    assigned_to: r.get(6)?,
                    opted_out: r.get(7)?,
                    closed: r.get(8)?,
                    phone_number_id: r.get(9)?,
                    launch_group: LaunchGroup::parse(r.get::<_, Option<String>>(10)?.as_deref()),
                    priority: Priority::from_stored(r.get(11)?),
                    labels: split_labels(r.get(12)?),
                })
            },
        )
        .optional()?)
}

/// Who wrote a thread item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Customer,
    Bot,
    /// An agent (their email).
    Agent(String),
    /// A private note (its author's email): never sent.
    Note(String),
    /// What happened (handoff, hand-back).
    System,
}

/// One entry of a conversation's thread. `text` may come from the customer.
#[derive(Debug, Clone)]
pub struct ThreadItem {
    /// Which row it is (`m12` message, `o3` sent, `n4` note, `h5`/`b5` handoff and its
    /// hand-back): unique in the conversation, so pages loaded later merge without repeats.
    pub key: String,
    pub at: i64,
    pub author: Author,
    pub text: String,
    /// Outbound: the ledger state (queued, sending, accepted, delivered, read, failed).
    pub state: Option<String>,
    /// Outbound failures: the reason, in words.
    pub error: Option<String>,
    /// Outbound: the ledger row (for a retry of a failed send).
    pub ledger_id: Option<i64>,
    /// Outbound failures: whether only a template can go now (closed 24-hour window).
    pub needs_template: bool,
    /// A handoff's entry: its stored trigger and the engine's reason (the page says it
    /// in plain words; the reason is an admin's detail).
    pub handoff: Option<(String, String)>,
    /// Outbound failures: the ledger row sent as this one's retry, if any (a failed
    /// message is retried once; the retry shows as a message of its own).
    pub retried_by: Option<i64>,
    /// An inbound media message: its row id (for the download link), type and file name.
    pub media: Option<MediaLink>,
}

/// What the thread shows for a customer's photo, voice note, video or document.
#[derive(Debug, Clone)]
pub struct MediaLink {
    pub message_id: i64,
    /// image, video, audio, document, sticker.
    pub media_type: String,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    /// What reading it gave: pending, done (the text is a transcript, description or
    /// document text) or failed (with why).
    pub status: Option<String>,
    pub derived_kind: Option<String>,
    pub language: Option<String>,
    pub problem: Option<String>,
}

/// The media of inbound message `message_id` of conversation `conversation_id`.
pub fn media_of(
    conn: &Connection,
    conversation_id: i64,
    message_id: i64,
) -> Result<Option<crate::domain::message::Media>> {
    use rusqlite::OptionalExtension;
    let body: Option<String> = conn
        .query_row(
            "SELECT body_json FROM messages WHERE id = ?1 AND conversation_id = ?2 AND direction = 'in'",
            params![message_id, conversation_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(body
        .and_then(|b| serde_json::from_str::<crate::domain::message::InboundMessage>(&b).ok())
        .and_then(|m| match m.kind {
            crate::domain::message::MessageKind::Media(media) => Some(media),
            _ => None,
        }))
}

/// How many thread entries a conversation page shows at once (newest first; "Earlier
/// messages" pages back by the same number).
pub const THREAD_PAGE: usize = 50;

/// One page of a conversation's thread, oldest first.
#[derive(Debug, Clone)]
pub struct ThreadPage {
    pub items: Vec<ThreadItem>,
    /// When older entries exist: the `before` cursor (a time in ms) of the page before.
    pub earlier: Option<i64>,
}

/// The newest `limit` entries of the thread written before `before` (ms; all when
/// `None`), oldest first: customer messages, everything sent (with its state), notes,
/// handoffs and hand-backs. Each source gives at most `limit + 1` rows, so a page costs
/// the same on a 2,000-message thread as on a short one. Entries sharing the boundary's
/// millisecond go to the earlier page together (unless they fill the page alone).
pub fn thread(conn: &Connection, id: i64, before: Option<i64>, limit: usize) -> Result<ThreadPage> {
    let limit = limit.max(1);
    let (before, take) = (before.unwrap_or(i64::MAX), limit as i64 + 1);
    let mut items: Vec<ThreadItem> = Vec::new();
    let read: std::collections::HashMap<i64, super::media::MediaRow> =
        super::media::for_conversation(conn, id)?.into_iter().collect();
    let mut st = conn.prepare_cached(
        "SELECT created_at, text, kind, id, body_json FROM messages INDEXED BY messages_conversation
         WHERE conversation_id = ?1 AND direction = 'in' AND created_at < ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let mut rows = st
        .query_map(params![id, before, take], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    for (at, text, kind, message_id, body) in rows {
        let media = serde_json::from_str::<crate::domain::message::InboundMessage>(&body)
            .ok()
            .and_then(|m| match m.kind {
                crate::domain::message::MessageKind::Media(media) => {
                    let row = read.get(&message_id);
                    Some(MediaLink {
                        message_id,
                        media_type: media.media_type.as_str().to_string(),
                        mime_type: row.and_then(|r| r.mime_type.clone()).or(media.mime_type),
                        filename: media.filename,
                        status: row.map(|r| r.status.clone()),
                        derived_kind: row.and_then(|r| r.derived_kind.clone()),
                        language: row.and_then(|r| r.language.clone()),
                        problem: row.and_then(|r| r.error.clone()),
                    })
                }
                _ => None,
            });
        let text = if text.is_empty() { format!("({kind})") } else { text };
        items.push(ThreadItem {
            key: format!("m{message_id}"),
            at,
            author: Author::Customer,
            text,
            state: None,
            error: None,
            ledger_id: None,
            needs_template: false,
            retried_by: None,
            handoff: None,
            media,
        });
    }
    let mut st = conn.prepare_cached(
        "SELECT created_at, author, text, state, error_reason, id, error_code FROM outbound INDEXED BY outbound_conversation
         WHERE conversation_id = ?1 AND created_at < ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let mut rows = st
        .query_map(params![id, before, take], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    for (at, author, text, state, error, ledger_id, code) in rows {
        let retried_by = if state == "failed" {
            super::ledger::retry_of(conn, ledger_id)?
        } else {
            None
        };
        let author = match author.strip_prefix("agent:") {
            Some(who) => Author::Agent(who.to_string()),
            None if author == "bot" => Author::Bot,
            None => Author::System,
        };
        items.push(ThreadItem {
            key: format!("o{ledger_id}"),
            at,
            author,
            text,
            state: Some(state),
            error,
            ledger_id: Some(ledger_id),
            needs_template: code == Some(131047),
            retried_by,
            handoff: None,
            media: None,
        });
    }
    let mut st = conn.prepare_cached(
        "SELECT created_at, author, text, id FROM conversation_notes INDEXED BY conversation_notes_conversation
         WHERE conversation_id = ?1 AND created_at < ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let mut rows = st
        .query_map(params![id, before, take], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    for (at, author, text, note_id) in rows {
        items.push(ThreadItem {
            key: format!("n{note_id}"),
            at,
            author: Author::Note(author),
            text,
            state: None,
            error: None,
            ledger_id: None,
            needs_template: false,
            retried_by: None,
            handoff: None,
            media: None,
        });
    }
    // Handoffs are few per conversation; each gives up to two entries (handed over, back).
    let mut st = conn.prepare_cached("SELECT created_at, reason, resolved_at, resolved_by, handback_note, trigger, id FROM handoffs WHERE conversation_id = ?1 ORDER BY id")?;
    for r in st.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })? {
        let (at, reason, resolved_at, by, note, trigger, handoff_id) = r?;
        if at < before {
            items.push(ThreadItem {
                key: format!("h{handoff_id}"),
                at,
                author: Author::System,
                text: "Handed to a person.".into(),
                state: None,
                error: None,
                ledger_id: None,
                needs_template: false,
                retried_by: None,
                handoff: Some((trigger, reason)),
                media: None,
            });
        }
        if let Some(when) = resolved_at.filter(|w| *w < before) {
            let note = note
                .filter(|n| !n.is_empty())
                .map(|n| format!(" Note: {n}"))
                .unwrap_or_default();
            items.push(ThreadItem {
                key: format!("b{handoff_id}"),
                at: when,
                author: Author::System,
                text: format!("Handed back to the bot by {}.{note}", by.unwrap_or_default()),
                state: None,
                error: None,
                ledger_id: None,
                needs_template: false,
                retried_by: None,
                handoff: None,
                media: None,
            });
        }
    }
    // A stable sort keeps each source's own order for equal times.
    items.sort_by_key(|i| i.at);
    let earlier = newest_page(&mut items, limit);
    Ok(ThreadPage { items, earlier })
}

/// Keeps the newest `limit` of `items` (sorted by time) and returns the cursor of the page
/// before them, if any. Entries sharing the cut's millisecond move to the earlier page
/// together, so paging by time never skips one (unless they alone fill a page).
fn newest_page(items: &mut Vec<ThreadItem>, limit: usize) -> Option<i64> {
    if items.len() <= limit {
        return None;
    }
    let cut = items.len() - limit;
    let boundary = items[cut - 1].at;
    let mut kept = items.split_off(cut);
    let tied = kept.iter().take_while(|i| i.at == boundary).count();
    if tied < kept.len() {
        kept.drain(..tied);
    }
    *items = kept;
    items.first().map(|i| i.at)
}

/// Makes a person the owner (an agent takes over without a handoff); true if it changed.
pub fn take_over(conn: &Connection, id: i64, actor: &str, now: i64) -> Result<bool> {
    let from = crate::domain::owner::Owner::Bot;
    let to = from.take_over().expect("a bot-owned conversation can be taken over");
    let changed = super::handoffs::move_owner(conn, id, from, to)?;
    if changed {
        super::settings::audit_conversation(conn, now, actor, "conversation.takeover", id, "{}")?;
        super::webhooks::record_for_conversation(
            conn,
            EventKind::HandedOff,
            id,
            serde_json::json!({ "by": actor, "trigger": "take_over", "reason": "an agent took over" }),
        )?;
    }
    Ok(changed)
}

/// Closes a conversation: the bot owns it again (a handoff is resolved with `note`),
/// nobody is assigned, and it leaves the working lists until the customer writes.
pub fn close(conn: &Connection, id: i64, actor: &str, now: i64) -> Result<()> {
    super::handoffs::hand_back(conn, id, actor, "closed", now)?;
    conn.execute(
        "UPDATE conversations SET closed_at = ?2, assigned_to = NULL WHERE id = ?1",
        params![id, now],
    )?;
    super::snooze::closed(conn, id)?;
    super::settings::audit_conversation(conn, now, actor, "conversation.close", id, "{}")?;
    super::webhooks::record_for_conversation(conn, EventKind::Resolved, id, serde_json::json!({ "by": actor }))?;
    Ok(())
}

/// Assigns the conversation to a user (or nobody).
pub fn assign(conn: &Connection, id: i64, user_id: Option<i64>, actor: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET assigned_to = ?2 WHERE id = ?1",
        params![id, user_id],
    )?;
    super::settings::audit_conversation(
        conn,
        now,
        actor,
        "conversation.assign",
        id,
        &format!(
            "{{\"user_id\":{}}}",
            user_id.map(|u| u.to_string()).unwrap_or("null".into())
        ),
    )?;
    let assignee: Option<String> = match user_id {
        Some(u) => conn
            .query_row("SELECT email FROM users WHERE id = ?1", [u], |r| r.get(0))
            .optional()?,
        None => None,
    };
    super::webhooks::record_for_conversation(
        conn,
        EventKind::Assigned,
        id,
        serde_json::json!({ "by": actor, "assignee": { "user_id": user_id, "email": assignee } }),
    )?;
    Ok(())
}

pub fn add_note(conn: &Connection, id: i64, author: &str, text: &str, now: i64) -> Result<i64> {
    conn.execute(
        "INSERT INTO conversation_notes (conversation_id, author, text, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, author, text, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Where an event stream is: the newest message id, ledger change time, handoff id and
/// note id it has told about. Written as the SSE event id `m.o.h.n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub message: i64,
    pub outbound: i64,
    pub handoff: i64,
    pub note: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        let v: Vec<i64> = s.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        match v[..] {
            [message, outbound, handoff, note] => Some(Cursor {
                message,
                outbound,
                handoff,
                note,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}.{}", self.message, self.outbound, self.handoff, self.note)
    }
}

/// The store's cursor now.
pub fn cursor(conn: &Connection) -> Result<Cursor> {
    Ok(conn.query_row(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM messages), (SELECT COALESCE(MAX(updated_at), 0) FROM outbound),
                (SELECT COALESCE(MAX(id), 0) FROM handoffs), (SELECT COALESCE(MAX(id), 0) FROM conversation_notes)",
        [],
        |r| {
            Ok(Cursor {
                message: r.get(0)?,
                outbound: r.get(1)?,
                handoff: r.get(2)?,
                note: r.get(3)?,
            })
        },
    )?)
}

/// What changed after `since` (up to `now`): `(kind, conversation id)` once each, kinds
/// `handoff`, `message`, `status`, `note`.
pub fn changes(conn: &Connection, since: &Cursor, now: &Cursor) -> Result<Vec<(&'static str, i64)>> {
    let mut out: Vec<(&'static str, i64)> = Vec::new();
    let mut collect = |kind: &'static str, sql: &str, a: i64, b: i64| -> Result<()> {
        let mut st = conn.prepare_cached(sql)?;
        for id in st.query_map(params![a, b], |r| r.get::<_, i64>(0))? {
            let id = id?;
            if !out.contains(&(kind, id)) {
                out.push((kind, id));
            }
        }
        Ok(())
    };
    collect(
        "handoff",
        "SELECT DISTINCT conversation_id FROM handoffs WHERE id > ?1 AND id <= ?2",
        since.handoff,
        now.handoff,
    )?;
    collect(
        "message",
        "SELECT DISTINCT conversation_id FROM messages WHERE id > ?1 AND id <= ?2",
        since.message,
        now.message,
    )?;
    collect(
        "status",
        "SELECT DISTINCT conversation_id FROM outbound WHERE updated_at > ?1 AND updated_at <= ?2",
        since.outbound,
        now.outbound,
    )?;
    collect(
        "note",
        "SELECT DISTINCT conversation_id FROM conversation_notes WHERE id > ?1 AND id <= ?2",
        since.note,
        now.note,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(at: i64) -> ThreadItem {
        ThreadItem {
            key: format!("m{at}"),
            at,
            author: Author::Customer,
            text: String::new(),
            state: None,
            error: None,
            ledger_id: None,
            needs_template: false,
            retried_by: None,
            handoff: None,
            media: None,
        }
    }

    fn ats(items: &[ThreadItem]) -> Vec<i64> {
        items.iter().map(|i| i.at).collect()
    }

    #[test]
    fn a_short_thread_is_one_page() {
        let mut items: Vec<_> = [1, 2, 3].into_iter().map(item).collect();
        assert_eq!(newest_page(&mut items, 3), None);
        assert_eq!(ats(&items), [1, 2, 3]);
    }

    #[test]
    fn a_long_thread_keeps_the_newest_and_points_before_them() {
        let mut items: Vec<_> = (1..=10).map(item).collect();
        assert_eq!(newest_page(&mut items, 4), Some(7));
        assert_eq!(ats(&items), [7, 8, 9, 10]);
    }

    #[test]
    fn entries_of_the_cut_millisecond_move_to_the_earlier_page_together() {
        let mut items: Vec<_> = [1, 2, 5, 5, 5, 6, 7].into_iter().map(item).collect();
        // The newest 4 would be 5, 5, 6, 7 with another 5 left behind: all 5s go back.
        assert_eq!(newest_page(&mut items, 4), Some(6));
        assert_eq!(ats(&items), [6, 7]);
    }

    #[test]
    fn a_page_all_of_one_millisecond_stays_whole() {
        let mut items: Vec<_> = [1, 5, 5, 5].into_iter().map(item).collect();
        assert_eq!(newest_page(&mut items, 2), Some(5));
        assert_eq!(ats(&items), [5, 5]);
    }
}
