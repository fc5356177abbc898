//! Knowledge-base rows: documents, chunks, their FTS5 entries and vectors (vec0). A
//! document is replaced whole in one write, so an interrupted ingest never leaves orphan
//! vectors or duplicate chunks.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::Result;

/// A chunk to store, with its vector (empty when vectors are off).
pub struct NewChunk<'a> {
    pub section: &'a str,
    pub text: &'a str,
    pub tokens: usize,
    pub vector: &'a [f32],
}

/// One document in the listing.
#[derive(Debug, Clone, Serialize)]
pub struct DocSummary {
    pub id: String,
    pub title: String,
    pub source: String,
    pub chunks: i64,
    pub updated_at: i64,
}

/// A chunk with its document, for search results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChunkRow {
    pub chunk_id: i64,
    pub doc_id: String,
    pub title: String,
    pub source: String,
    pub section: String,
    pub text: String,
}

/// The model and width the stored vectors came from.
pub fn vector_model(conn: &Connection) -> Result<Option<(String, usize)>> {
    let model: Option<String> = conn.query_row("SELECT value FROM kb_meta WHERE key = 'model'", [], |r| r.get(0)).optional()?;
    let dim: Option<String> = conn.query_row("SELECT value FROM kb_meta WHERE key = 'dim'", [], |r| r.get(0)).optional()?;
    Ok(model.zip(dim.and_then(|d| d.parse().ok())))
}

/// Makes the vector table fit `model`/`dim`. When the model changed, the old vectors are
/// dropped (never mixed) and `true` says every chunk needs re-embedding.
pub fn prepare_vectors(conn: &Connection, model: &str, dim: usize) -> Result<bool> {
    let current = vector_model(conn)?;
    if current.as_ref().is_some_and(|(m, d)| m == model && *d == dim) {
        return Ok(false);
    }
    conn.execute_batch("DROP TABLE IF EXISTS kb_vec")?;
    if dim > 0 {
        conn.execute_batch(&format!("CREATE VIRTUAL TABLE kb_vec USING vec0(embedding float[{dim}] distance_metric=cosine)"))?;
    }
    conn.execute("INSERT INTO kb_meta (key, value) VALUES ('model', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [model])?;
    conn.execute("INSERT INTO kb_meta (key, value) VALUES ('dim', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [dim.to_string()])?;
    Ok(dim > 0 && chunk_count(conn)? > 0)
}

/// How many chunks are stored.
pub fn chunk_count(conn: &Connection) -> Result<usize> {
    Ok(conn.query_row("SELECT COUNT(*) FROM kb_chunks", [], |r| r.get::<_, i64>(0))? as usize)
}

/// The stored content hash of a document.
pub fn document_hash(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT content_hash FROM kb_documents WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

fn has_vec_table(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM sqlite_master WHERE name = 'kb_vec'", [], |_| Ok(())).optional()?.is_some())
}

/// Replaces a document and all its chunks, FTS rows and vectors.
pub fn replace_document(conn: &Connection, id: &str, title: &str, source: &str, hash: &str, chunks: &[NewChunk<'_>], now: i64) -> Result<()> {
    delete_chunks(conn, id)?;
    conn.execute(
        "INSERT INTO kb_documents (id, title, source, content_hash, added_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title, source = excluded.source,
            content_hash = excluded.content_hash, updated_at = excluded.updated_at",
        params![id, title, source, hash, now],
    )?;
    let vec_table = has_vec_table(conn)?;
    for (ord, c) in chunks.iter().enumerate() {
        conn.execute(
            "INSERT INTO kb_chunks (doc_id, ord, section, text, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, ord as i64, c.section, c.text, c.tokens as i64],
        )?;
        let chunk_id = conn.last_insert_rowid();
        conn.execute("INSERT INTO kb_fts (rowid, title, section, text) VALUES (?1, ?2, ?3, ?4)", params![chunk_id, title, c.section, c.text])?;
        if vec_table && !c.vector.is_empty() {
            conn.execute("INSERT INTO kb_vec (rowid, embedding) VALUES (?1, ?2)", params![chunk_id, vector_bytes(c.vector)])?;
        }
    }
    Ok(())
}

fn delete_chunks(conn: &Connection, doc_id: &str) -> Result<()> {
    let vec_table = has_vec_table(conn)?;
    let ids: Vec<i64> = {
        let mut st = conn.prepare_cached("SELECT id FROM kb_chunks WHERE doc_id = ?1")?;
        st.query_map([doc_id], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for id in ids {
        conn.execute("DELETE FROM kb_fts WHERE rowid = ?1", [id])?;
        if vec_table {
            conn.execute("DELETE FROM kb_vec WHERE rowid = ?1", [id])?;
        }
    }
    conn.execute("DELETE FROM kb_chunks WHERE doc_id = ?1", [doc_id])?;
    Ok(())
}

/// Deletes a document with its chunks, FTS rows and vectors; `false` if it did not exist.
pub fn delete_document(conn: &Connection, id: &str) -> Result<bool> {
    delete_chunks(conn, id)?;
    Ok(conn.execute("DELETE FROM kb_documents WHERE id = ?1", [id])? == 1)
}

/// Stores vectors for existing chunks (re-embedding after a model change).
pub fn set_vectors(conn: &Connection, rows: &[(i64, Vec<f32>)]) -> Result<()> {
    for (id, v) in rows {
        conn.execute("DELETE FROM kb_vec WHERE rowid = ?1", [id])?;
        conn.execute("INSERT INTO kb_vec (rowid, embedding) VALUES (?1, ?2)", params![id, vector_bytes(v)])?;
    }
    Ok(())
}

/// Chunks with no vector yet: (id, text to embed), at most `limit`.
pub fn chunks_missing_vectors(conn: &Connection, limit: usize) -> Result<Vec<(i64, String)>> {
    if !has_vec_table(conn)? {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare(
        "SELECT c.id, d.title || '\n' || c.section || '\n' || c.text FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id
         WHERE c.id NOT IN (SELECT rowid FROM kb_vec) ORDER BY c.id LIMIT ?1",
    )?;
    let rows = st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every document, by id.
pub fn list_documents(conn: &Connection) -> Result<Vec<DocSummary>> {
    let mut st = conn.prepare(
        "SELECT d.id, d.title, d.source, (SELECT COUNT(*) FROM kb_chunks c WHERE c.doc_id = d.id), d.updated_at
         FROM kb_documents d ORDER BY d.id",
    )?;
    let rows = st
        .query_map([], |r| Ok(DocSummary { id: r.get(0)?, title: r.get(1)?, source: r.get(2)?, chunks: r.get(3)?, updated_at: r.get(4)? }))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// BM25 over title, section and text (title weighted double): (chunk id, score), best first.
pub fn bm25(conn: &Connection, query: &str, k: usize) -> Result<Vec<(i64, f64)>> {
    let Some(q) = fts_query(query) else { return Ok(Vec::new()) };
    let mut st = conn.prepare_cached("SELECT rowid, -bm25(kb_fts, 2.0, 1.0, 1.0) AS s FROM kb_fts WHERE kb_fts MATCH ?1 ORDER BY s DESC LIMIT ?2")?;
    let rows = st.query_map(params![q, k as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Nearest chunks by cosine distance: (chunk id, similarity), best first.
pub fn knn(conn: &Connection, vector: &[f32], k: usize) -> Result<Vec<(i64, f64)>> {
    if vector.is_empty() || !has_vec_table(conn)? {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare_cached("SELECT rowid, distance FROM kb_vec WHERE embedding MATCH ?1 AND k = ?2 ORDER BY distance")?;
    let rows = st
        .query_map(params![vector_bytes(vector), k as i64], |r| Ok((r.get::<_, i64>(0)?, 1.0 - r.get::<_, f64>(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The chunks with these ids (any order).
pub fn chunks_by_id(conn: &Connection, ids: &[i64]) -> Result<Vec<ChunkRow>> {
    let mut st = conn.prepare_cached(
        "SELECT c.id, c.doc_id, d.title, d.source, c.section, c.text FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id WHERE c.id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = st
            .query_row([id], |r| Ok(ChunkRow { chunk_id: r.get(0)?, doc_id: r.get(1)?, title: r.get(2)?, source: r.get(3)?, section: r.get(4)?, text: r.get(5)? }))
            .optional()?
        {
            out.push(row);
        }
    }
    Ok(out)
}

/// An FTS5 query matching any of the words (quoted, so punctuation cannot break it).
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

/// A vector as sqlite-vec's little-endian float32 blob.
fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}
