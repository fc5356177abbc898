//! Media rows: created pending with their message, then done (file stored, text derived)
//! or failed (with why); the burst view the reply uses; retention of stored files.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::media::BurstPart;
use crate::domain::message::{InboundMessage, Media, MessageKind};
use crate::error::Result;

/// One media row.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRow {
    pub id: i64,
    pub wamid: String,
    pub conversation_id: i64,
    pub media_type: String,
    pub media_id: String,
    pub declared_mime: Option<String>,
    pub status: String,
    pub sha256: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub derived_kind: Option<String>,
    pub derived_text: Option<String>,
    pub language: Option<String>,
    pub error: Option<String>,
}

const COLUMNS: &str =
    "id, wamid, conversation_id, media_type, media_id, declared_mime, status, sha256, mime_type, size_bytes,
                       derived_kind, derived_text, language, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaRow> {
    Ok(MediaRow {
        id: r.get(0)?,
        wamid: r.get(1)?,
        conversation_id: r.get(2)?,
        media_type: r.get(3)?,
        media_id: r.get(4)?,
        declared_mime: r.get(5)?,
        status: r.get(6)?,
        sha256: r.get(7)?,
        mime_type: r.get(8)?,
        size_bytes: r.get(9)?,
        derived_kind: r.get(10)?,
        derived_text: r.get(11)?,
        language: r.get(12)?,
        error: r.get(13)?,
    })
}

/// Records a media message to be read (nothing if it already is).
pub fn insert_pending(conn: &Connection, wamid: &str, conversation_id: i64, media: &Media, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO media (wamid, conversation_id, media_type, media_id, declared_mime, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (wamid) DO NOTHING",
        params![
            wamid,
            conversation_id,
            media.media_type.as_str(),
            media.media_id,
            media.mime_type,
            now
        ],
    )?;
    Ok(())
}

/// The media row of message `wamid` with what the webhook said of it.
pub fn get(conn: &Connection, wamid: &str) -> Result<Option<(MediaRow, Media)>> {
    let found = conn
        .query_row(&format!("SELECT {COLUMNS}, (SELECT body_json FROM messages WHERE wamid = media.wamid) FROM media WHERE wamid = ?1"), [wamid], |r| {
            Ok((row(r)?, r.get::<_, Option<String>>(14)?))
        })
        .optional()?;
    Ok(found.and_then(|(row, body)| {
        let media = body
            .and_then(|b| serde_json::from_str::<InboundMessage>(&b).ok())
            .and_then(|m| match m.kind {
                MessageKind::Media(media) => Some(media),
                _ => None,
            })?;
        Some((row, media))
    }))
}

/// The media row shown with inbox message `message_id`.
pub fn for_message(conn: &Connection, message_id: i64) -> Result<Option<MediaRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM media WHERE wamid = (SELECT wamid FROM messages WHERE id = ?1)"),
            [message_id],
            row,
        )
        .optional()?)
}

/// The media rows of a conversation's messages, with their message ids (inbox thread).
pub fn for_conversation(conn: &Connection, conversation_id: i64) -> Result<Vec<(i64, MediaRow)>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, (SELECT id FROM messages WHERE wamid = media.wamid) FROM media WHERE conversation_id = ?1"
    ))?;
    let rows = st.query_map([conversation_id], |r| Ok((r.get::<_, Option<i64>>(14)?, row(r)?)))?;
    let mut out = Vec::new();
    for r in rows {
        if let (Some(id), media) = r? {
            out.push((id, media));
        }
    }
    Ok(out)
}

/// What a finished media job found.
#[derive(Debug, Clone, Default)]
pub struct MediaReading {
    pub sha256: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub derived_kind: Option<String>,
    pub derived_text: Option<String>,
    pub language: Option<String>,
}

/// Marks the media read; the message's text becomes `turn_text` when given (what the bot
/// and the inbox search see).
pub fn finish(conn: &Connection, wamid: &str, o: &MediaReading, turn_text: Option<&str>, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE media SET status = 'done', sha256 = ?2, mime_type = ?3, size_bytes = ?4, derived_kind = ?5, derived_text = ?6,
                          language = ?7, error = NULL, updated_at = ?8 WHERE wamid = ?1",
        params![wamid, o.sha256, o.mime_type, o.size_bytes, o.derived_kind, o.derived_text, o.language, now],
    )?;
    if let Some(text) = turn_text {
        conn.execute("UPDATE messages SET text = ?2 WHERE wamid = ?1", params![wamid, text])?;
    }
    Ok(())
}

/// Marks the media unusable, keeping whatever was stored of it.
pub fn fail(conn: &Connection, wamid: &str, o: &MediaReading, error: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE media SET status = 'failed', sha256 = ?2, mime_type = ?3, size_bytes = ?4, error = ?5, updated_at = ?6 WHERE wamid = ?1",
        params![wamid, o.sha256, o.mime_type, o.size_bytes, error, now],
    )?;
    Ok(())
}

/// The burst from message id `first_id` up to `wamid` in a conversation, each message
/// with its media status.
pub fn burst_parts(conn: &Connection, conversation_id: i64, first_id: i64, wamid: &str) -> Result<Vec<BurstPart>> {
    let mut st = conn.prepare_cached(
        "SELECT m.text, m.body_json, md.status, md.media_type FROM messages m LEFT JOIN media md ON md.wamid = m.wamid
         WHERE m.conversation_id = ?1 AND m.direction = 'in' AND m.id >= ?2
           AND m.id <= (SELECT id FROM messages WHERE wamid = ?3) ORDER BY m.id",
    )?;
    let rows = st.query_map(params![conversation_id, first_id, wamid], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut parts = Vec::new();
    for r in rows {
        let (text, body, status, media_type) = r?;
        let media = serde_json::from_str::<InboundMessage>(&body)
            .ok()
            .and_then(|m| match m.kind {
                MessageKind::Media(media) => Some(media),
                _ => None,
            });
        parts.push(match (status, media) {
            // Stickers are kept, never waited for or answered.
            (Some(status), Some(m)) if m.media_type != crate::domain::message::MediaType::Sticker => BurstPart {
                media_status: Some(status),
                media_type: media_type.unwrap_or_default(),
                voice: m.voice,
                has_text: m.caption.as_deref().is_some_and(|c| !c.trim().is_empty()),
            },
            _ => BurstPart {
                media_status: None,
                media_type: String::new(),
                voice: false,
                has_text: !text.trim().is_empty(),
            },
        });
    }
    Ok(parts)
}

/// Forgets the stored files of media created before `before`; returns their names (the
/// caller deletes those no other row still uses).
pub fn expire_files(conn: &Connection, before: i64, limit: usize) -> Result<Vec<String>> {
    let mut pick =
        conn.prepare_cached("SELECT id, sha256 FROM media WHERE created_at < ?1 AND sha256 IS NOT NULL LIMIT ?2")?;
    let picked: Vec<(i64, String)> = pick
        .query_map(params![before, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, _) in &picked {
        conn.execute("UPDATE media SET sha256 = NULL WHERE id = ?1", [id])?;
    }
    Ok(picked.into_iter().map(|(_, sha)| sha).collect())
}

/// Whether any media row still names the file `sha256`.
pub fn file_in_use(conn: &Connection, sha256: &str) -> Result<bool> {
    Ok(
        conn.query_row("SELECT EXISTS(SELECT 1 FROM media WHERE sha256 = ?1)", [sha256], |r| {
            r.get(0)
        })?,
    )
}

/// Every file name media rows use (for sweeping files left by deleted messages).
pub fn files_in_use(conn: &Connection) -> Result<std::collections::HashSet<String>> {
    let mut st = conn.prepare_cached("SELECT DISTINCT sha256 FROM media WHERE sha256 IS NOT NULL")?;
    let names = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(names)
}
