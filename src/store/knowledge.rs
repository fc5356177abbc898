//! Knowledge-base rows: documents, chunks, their FTS5 entries and vectors (vec0). A
//! document is replaced whole in one write, so an interrupted ingest never leaves orphan
//! vectors or duplicate chunks.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use std::sync::Arc;

use crate::domain::quant_index::QuantIndex;
use crate::error::{Error, Result};

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
    let model: Option<String> = conn
        .query_row("SELECT value FROM kb_meta WHERE key = 'model'", [], |r| r.get(0))
        .optional()?;
    let dim: Option<String> = conn
        .query_row("SELECT value FROM kb_meta WHERE key = 'dim'", [], |r| r.get(0))
        .optional()?;
    Ok(model.zip(dim.and_then(|d| d.parse().ok())))
}

/// Makes the vector tables fit `model`/`dim`. When the model changed, the old vectors are
/// dropped (never mixed) and `true` says every chunk needs re-embedding. Beside the vec0
/// table `kb_vec` (exact KNN) sits `kb_vectors`, a plain copy keyed by chunk id.
pub fn prepare_vectors(conn: &Connection, model: &str, dim: usize) -> Result<bool> {
    let current = vector_model(conn)?;
    if current.as_ref().is_some_and(|(m, d)| m == model && *d == dim) {
        if dim > 0 && has_table(conn, "kb_vec")? {
            // An index from before the plain copy existed: derive it.
            let copied = conn.execute("INSERT OR IGNORE INTO kb_vectors (chunk_id, embedding) SELECT rowid, embedding FROM kb_vec WHERE rowid NOT IN (SELECT chunk_id FROM kb_vectors)", [])?;
            if copied > 0 {
                bump_generation(conn)?;
            }
        }
        return Ok(false);
    }
    conn.execute_batch("DROP TABLE IF EXISTS kb_vec; DELETE FROM kb_vectors;")?;
    if dim > 0 {
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE kb_vec USING vec0(embedding float[{dim}] distance_metric=cosine)"
        ))?;
    }
    conn.execute(
        "INSERT INTO kb_meta (key, value) VALUES ('model', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [model],
    )?;
    conn.execute(
        "INSERT INTO kb_meta (key, value) VALUES ('dim', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [dim.to_string()],
    )?;
    bump_generation(conn)?;
    Ok(dim > 0 && chunk_count(conn)? > 0)
}

/// Marks the vectors as changed, so in-memory indexes (in any process) rebuild.
fn bump_generation(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO kb_meta (key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )?;
    Ok(())
}

/// The vectors' change counter (see `bump_generation`).
pub fn vector_generation(conn: &Connection) -> Result<i64> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM kb_meta WHERE key = 'generation'", [], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Every stored vector, by chunk id (to build an in-memory index).
pub fn all_vectors(conn: &Connection) -> Result<Vec<(i64, Vec<f32>)>> {
    let mut st = conn.prepare("SELECT chunk_id, embedding FROM kb_vectors ORDER BY chunk_id")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, floats(&r.get::<_, Vec<u8>>(1)?))))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// How many chunks are stored.
pub fn chunk_count(conn: &Connection) -> Result<usize> {
    Ok(conn.query_row("SELECT COUNT(*) FROM kb_chunks", [], |r| r.get::<_, i64>(0))? as usize)
}

/// How many documents are stored.
pub fn document_count(conn: &Connection) -> Result<usize> {
    Ok(conn.query_row("SELECT COUNT(*) FROM kb_documents", [], |r| r.get::<_, i64>(0))? as usize)
}

/// How many chunks have no vector (0 when vectors are off).
pub fn missing_vector_count(conn: &Connection) -> Result<usize> {
    if !has_table(conn, "kb_vec")? {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM kb_chunks WHERE id NOT IN (SELECT rowid FROM kb_vec)",
        [],
        |r| r.get::<_, i64>(0),
    )? as usize)
}

/// The stored content hash of a document.
pub fn document_hash(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT content_hash FROM kb_documents WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_master WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

fn insert_vector(conn: &Connection, vec0: bool, id: i64, v: &[f32]) -> Result<()> {
    let blob = vector_bytes(v);
    if vec0 {
        conn.execute(
            "INSERT INTO kb_vec (rowid, embedding) VALUES (?1, ?2)",
            params![id, blob],
        )?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO kb_vectors (chunk_id, embedding) VALUES (?1, ?2)",
        params![id, blob],
    )?;
    Ok(())
}

fn delete_vector(conn: &Connection, vec0: bool, id: i64) -> Result<()> {
    if vec0 {
        conn.execute("DELETE FROM kb_vec WHERE rowid = ?1", [id])?;
    }
    conn.execute("DELETE FROM kb_vectors WHERE chunk_id = ?1", [id])?;
    Ok(())
}

/// Replaces a document and all its chunks, FTS rows and vectors.
pub fn replace_document(
    conn: &Connection,
    id: &str,
    title: &str,
    source: &str,
    hash: &str,
    chunks: &[NewChunk<'_>],
    now: i64,
) -> Result<()> {
    let vec0 = has_table(conn, "kb_vec")?;
    delete_chunks(conn, vec0, id)?;
    conn.execute(
        "INSERT INTO kb_documents (id, title, source, content_hash, added_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title, source = excluded.source,
            content_hash = excluded.content_hash, updated_at = excluded.updated_at",
        params![id, title, source, hash, now],
    )?;
    for (ord, c) in chunks.iter().enumerate() {
        conn.execute(
            "INSERT INTO kb_chunks (doc_id, ord, section, text, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, ord as i64, c.section, c.text, c.tokens as i64],
        )?;
        let chunk_id = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO kb_fts (rowid, title, section, text) VALUES (?1, ?2, ?3, ?4)",
            params![chunk_id, title, c.section, c.text],
        )?;
        if !c.vector.is_empty() {
            insert_vector(conn, vec0, chunk_id, c.vector)?;
        }
    }
    bump_generation(conn)?;
    Ok(())
}

fn delete_chunks(conn: &Connection, vec0: bool, doc_id: &str) -> Result<()> {
    let ids: Vec<i64> = {
        let mut st = conn.prepare_cached("SELECT id FROM kb_chunks WHERE doc_id = ?1")?;
        st.query_map([doc_id], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for id in ids {
        conn.execute("DELETE FROM kb_fts WHERE rowid = ?1", [id])?;
        delete_vector(conn, vec0, id)?;
    }
    conn.execute("DELETE FROM kb_chunks WHERE doc_id = ?1", [doc_id])?;
    Ok(())
}

/// Deletes a document with its chunks, FTS rows and vectors; `false` if it did not exist.
pub fn delete_document(conn: &Connection, id: &str) -> Result<bool> {
    delete_chunks(conn, has_table(conn, "kb_vec")?, id)?;
    bump_generation(conn)?;
    Ok(conn.execute("DELETE FROM kb_documents WHERE id = ?1", [id])? == 1)
}

/// Stores vectors for existing chunks (re-embedding after a model change).
pub fn set_vectors(conn: &Connection, rows: &[(i64, Vec<f32>)]) -> Result<()> {
    let vec0 = has_table(conn, "kb_vec")?;
    for (id, v) in rows {
        delete_vector(conn, vec0, *id)?;
        insert_vector(conn, vec0, *id, v)?;
    }
    bump_generation(conn)?;
    Ok(())
}

/// Chunks with no vector yet: (id, text to embed), at most `limit`.
pub fn chunks_missing_vectors(conn: &Connection, limit: usize) -> Result<Vec<(i64, String)>> {
    if !has_table(conn, "kb_vec")? {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare(
        "SELECT c.id, d.title || '\n' || c.section || '\n' || c.text FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id
         WHERE c.id NOT IN (SELECT rowid FROM kb_vec) ORDER BY c.id LIMIT ?1",
    )?;
    let rows = st
        .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every document, by id.
pub fn list_documents(conn: &Connection) -> Result<Vec<DocSummary>> {
    let mut st = conn.prepare(
        "SELECT d.id, d.title, d.source, (SELECT COUNT(*) FROM kb_chunks c WHERE c.doc_id = d.id), d.updated_at
         FROM kb_documents d ORDER BY d.id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(DocSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                source: r.get(2)?,
                chunks: r.get(3)?,
                updated_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// BM25 over title, section and text (title weighted double): (chunk id, score), best first.
pub fn bm25(conn: &Connection, query: &str, k: usize) -> Result<Vec<(i64, f64)>> {
    let Some(q) = fts_query(query) else {
        return Ok(Vec::new());
    };
    let mut st = conn.prepare_cached(
        "SELECT rowid, -bm25(kb_fts, 2.0, 1.0, 1.0) AS s FROM kb_fts WHERE kb_fts MATCH ?1 ORDER BY s DESC LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![q, k as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The most neighbours sqlite-vec returns from one KNN query.
const KNN_LIMIT: usize = 4096;

/// Nearest chunks by cosine distance, exact: (chunk id, similarity), best first.
pub fn knn(conn: &Connection, vector: &[f32], k: usize) -> Result<Vec<(i64, f64)>> {
    if vector.is_empty() || !has_table(conn, "kb_vec")? {
        return Ok(Vec::new());
    }
    let mut st = conn
        .prepare_cached("SELECT rowid, distance FROM kb_vec WHERE embedding MATCH ?1 AND k = ?2 ORDER BY distance")?;
    let rows = st
        .query_map(params![vector_bytes(vector), k.min(KNN_LIMIT) as i64], |r| {
            Ok((r.get::<_, i64>(0)?, 1.0 - r.get::<_, f64>(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The stored (exact) vectors of these chunks, in the order asked; chunks without a
/// vector are left out.
pub fn vectors_by_id(conn: &Connection, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
    let mut st = conn.prepare_cached("SELECT embedding FROM kb_vectors WHERE chunk_id = ?1")?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(blob) = st.query_row([id], |r| r.get::<_, Vec<u8>>(0)).optional()? {
            out.push((id, floats(&blob)));
        }
    }
    Ok(out)
}

fn floats(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// An upper bound on the chunk count that is cheap at any size (the highest chunk id).
pub fn chunk_id_high_water(conn: &Connection) -> Result<usize> {
    Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM kb_chunks", [], |r| r.get::<_, i64>(0))? as usize)
}

/// The chunks with these ids (any order).
pub fn chunks_by_id(conn: &Connection, ids: &[i64]) -> Result<Vec<ChunkRow>> {
    let mut st = conn.prepare_cached(
        "SELECT c.id, c.doc_id, d.title, d.source, c.section, c.text FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id WHERE c.id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = st
            .query_row([id], |r| {
                Ok(ChunkRow {
                    chunk_id: r.get(0)?,
                    doc_id: r.get(1)?,
                    title: r.get(2)?,
                    source: r.get(3)?,
                    section: r.get(4)?,
                    text: r.get(5)?,
                })
            })
            .optional()?
        {
            out.push(row);
        }
    }
    Ok(out)
}

/// English function words left out of keyword queries: they match nearly every chunk,
/// add little to BM25 and make large indexes slow (each is a long posting list).
const STOPWORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "he", "her", "him", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "me", "my", "of", "on", "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "u", "up", "us", "was", "we", "were", "what", "when", "where", "which", "who",
    "why", "will", "with", "would", "you", "your",
];

/// An FTS5 query matching any of the content words (quoted, so punctuation cannot break
/// it); a query of only function words keeps them all.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let content: Vec<&String> = words.iter().filter(|w| !STOPWORDS.contains(&w.as_str())).collect();
    let chosen: Vec<&String> = if content.is_empty() {
        words.iter().collect()
    } else {
        content
    };
    (!chosen.is_empty()).then(|| {
        chosen
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

/// A vector as sqlite-vec's little-endian float32 blob.
fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Nearest chunks in three passes: Hamming distance over the in-memory bit codes keeps
/// `k * rescore_factor * 10` candidates, int8 dot products keep `k * rescore_factor`, and
/// those are rescored with their exact stored vectors. The index is (re)built here when
/// the store's vector generation moved.
pub fn quantized_knn(
    conn: &Connection,
    cache: &std::sync::Mutex<Option<Arc<QuantIndex>>>,
    vector: &[f32],
    k: usize,
    rescore_factor: usize,
) -> Result<Vec<(i64, f64)>> {
    if vector.is_empty() {
        return Ok(Vec::new());
    }
    let generation = vector_generation(conn)?;
    let index = {
        let mut slot = cache
            .lock()
            .map_err(|_| Error::Internal("bit index lock poisoned".into()))?;
        match slot.as_ref() {
            Some(ix) if ix.generation == generation => ix.clone(),
            _ => {
                let started = std::time::Instant::now();
                let ix = Arc::new(QuantIndex::build(generation, &all_vectors(conn)?));
                tracing::info!(
                    chunks = ix.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "built the quantized vector index"
                );
                *slot = Some(ix.clone());
                ix
            }
        }
    };
    let keep = k * rescore_factor.max(1);
    let candidates = index.nearest(vector, keep * 10, keep);
    let mut scored: Vec<(i64, f64)> = vectors_by_id(conn, &candidates)?
        .into_iter()
        .map(|(id, v)| (id, crate::domain::dot(vector, &v) as f64))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    Ok(scored)
}
