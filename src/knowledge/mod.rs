//! The knowledge base: ingest a team's documents, chunk them, embed them locally, and
//! search them with BM25 (FTS5), vectors (sqlite-vec; a 1-bit quantized first pass with
//! exact rescoring on large indexes) or both fused (RRF), optionally diversified (MMR).
//! The CLI, the HTTP API and the engine all call `Knowledge::search`.

pub mod chunk;
pub mod embed;
pub mod embed_cache;
pub mod eval;
pub mod fetch;
pub mod fuse;
pub mod ingest;
pub mod parse;
pub mod remote_embed;

use std::sync::Arc;

use serde::Serialize;

use crate::config::{EmbedderKind, KnowledgeConfig};
use crate::domain::quant_index::QuantIndex;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::knowledge as rows;
use embed::{Embedder, LocalMiniLm, NoEmbedder};

/// How to rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Bm25,
    Vector,
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bm25" => Ok(Mode::Bm25),
            "vector" => Ok(Mode::Vector),
            "hybrid" => Ok(Mode::Hybrid),
            _ => Err(format!("{s:?} is not one of bm25, vector, hybrid")),
        }
    }
}

/// One search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub doc_id: String,
    pub chunk_id: i64,
    pub title: String,
    pub source: String,
    pub section: String,
    pub score: f64,
    /// Cosine similarity of the query and this chunk (absent without vectors): a
    /// scale-free confidence signal, unlike BM25 or fused scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    pub text: String,
}

/// The knowledge base: the store plus the embedder.
#[derive(Clone)]
pub struct Knowledge {
    pub store: Store,
    pub embedder: Arc<dyn Embedder>,
    pub config: KnowledgeConfig,
    /// The quantized first-pass index, rebuilt when the stored vectors change (by this
    /// process or another: the store keeps a generation counter).
    bits: Arc<std::sync::Mutex<Option<Arc<QuantIndex>>>>,
}

/// The embedder the config asks for.
pub fn embedder_from_config(config: &KnowledgeConfig) -> Result<Arc<dyn Embedder>> {
    match config.embedder {
        EmbedderKind::None => Ok(Arc::new(NoEmbedder)),
        EmbedderKind::Local => {
            let dir = embed::find_model_dir(config.model_dir.as_deref())?;
            Ok(embed_cache::CachedEmbedder::from_env(Arc::new(LocalMiniLm::load(
                &dir,
            )?)))
        }
        EmbedderKind::Openai => Ok(Arc::new(remote_embed::RemoteEmbedder::new(config.remote.clone())?)),
    }
}

/// What the knowledge base holds and how it searches, for the UI and the status API.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub documents: usize,
    pub chunks: usize,
    /// The embedder in use (`none` when retrieval is BM25 only).
    pub embedder: String,
    pub dim: usize,
    /// Chunks still waiting for a vector (re-embedding after a model change).
    pub chunks_without_vectors: usize,
    /// Things an owner should know, in plain words.
    pub warnings: Vec<String>,
}

/// The UI warning for BM25-only retrieval (also printed by `check-config`).
pub use crate::config::NO_EMBEDDER_WARNING;

impl Knowledge {
    /// Counts and warnings.
    pub async fn status(&self) -> Result<Status> {
        let (embedder, dim) = (self.embedder.model_id(), self.embedder.dim());
        let (documents, chunks, missing) = self
            .store
            .read(move |c| {
                Ok((
                    rows::document_count(c)?,
                    rows::chunk_count(c)?,
                    if dim > 0 { rows::missing_vector_count(c)? } else { 0 },
                ))
            })
            .await?;
        let mut warnings = Vec::new();
        if dim == 0 {
            warnings.push(NO_EMBEDDER_WARNING.to_string());
        }
        if documents == 0 {
            warnings.push("The knowledge base is empty: the bot can only hand conversations to people. Add documents with `frontdesk kb add`.".into());
        }
        if missing > 0 {
            warnings.push(format!(
                "{missing} chunks are waiting for vectors (re-embedding); they are found by keywords meanwhile."
            ));
        }
        Ok(Status {
            documents,
            chunks,
            embedder,
            dim,
            chunks_without_vectors: missing,
            warnings,
        })
    }

    pub fn new(store: Store, embedder: Arc<dyn Embedder>, config: KnowledgeConfig) -> Knowledge {
        Knowledge {
            store,
            embedder,
            config,
            bits: Default::default(),
        }
    }

    /// The best `k` chunks for `query`. Vector search without an embedder is an error
    /// (hybrid falls back to BM25, as the engine does).
    pub async fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Vec<Hit>> {
        if mode == Mode::Vector && self.embedder.dim() == 0 {
            return Err(Error::Invalid(
                "vector search is off: knowledge.embedder = \"none\" keeps no vectors; search with --mode bm25 \
                 (or hybrid, which is BM25 alone then), or set knowledge.embedder and re-run `frontdesk kb add`"
                    .into(),
            ));
        }
        let vector = if mode == Mode::Bm25 {
            Vec::new()
        } else {
            self.embed_query(query).await?
        };
        self.search_embedded(query, vector, k, mode).await
    }

    /// The query's vector (empty without an embedder), for `search_embedded`.
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        if self.embedder.dim() == 0 {
            return Ok(Vec::new());
        }
        let emb = self.embedder.clone();
        let q = query.to_string();
        Ok(tokio::task::spawn_blocking(move || emb.embed(&[q.as_str()]))
            .await
            .map_err(|e| Error::internal("embedding task", e))??
            .remove(0))
    }

    /// `search` with the query's vector already computed (the engine embeds once for
    /// the router's classifier and retrieval).
    #[tracing::instrument(name = "retrieve", skip_all, fields(k, mode = ?mode))]
    pub async fn search_embedded(&self, query: &str, vector: Vec<f32>, k: usize, mode: Mode) -> Result<Vec<Hit>> {
        let mode = if self.embedder.dim() == 0 || vector.is_empty() {
            Mode::Bm25
        } else {
            mode
        };
        let depth = (k * 4).max(self.config.candidates);
        let q = query.to_string();
        let cfg = self.config.clone();
        let bits = self.bits.clone();
        self.store
            .read(move |c| {
                let quantized = match cfg.quantized.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => rows::chunk_id_high_water(c)? >= cfg.quantized_min_chunks,
                };
                let knn = |n: usize| {
                    if quantized {
                        rows::quantized_knn(c, &bits, &vector, n, cfg.rescore_factor)
                    } else {
                        rows::knn(c, &vector, n)
                    }
                };
                let diverse = cfg.mmr_lambda < 1.0 && mode != Mode::Bm25;
                // MMR needs a pool larger than k to choose from.
                let pool = if diverse { depth } else { k };
                let mut ranked: Vec<(i64, f64)> = match mode {
                    Mode::Bm25 => rows::bm25(c, &q, k)?,
                    Mode::Vector => knn(pool)?,
                    Mode::Hybrid => {
                        let a: Vec<i64> = rows::bm25(c, &q, depth)?.into_iter().map(|x| x.0).collect();
                        let b: Vec<i64> = knn(depth)?.into_iter().map(|x| x.0).collect();
                        fuse::rrf_weighted(&[a, b], &[cfg.bm25_weight, 1.0], cfg.rrf_k)
                            .into_iter()
                            .take(pool)
                            .collect()
                    }
                };
                if diverse {
                    let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
                    let vectors: std::collections::HashMap<i64, Vec<f32>> =
                        rows::vectors_by_id(c, &ids)?.into_iter().collect();
                    ranked = fuse::mmr(&ranked, &vectors, k, cfg.mmr_lambda);
                }
                ranked.truncate(k);
                let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
                let details = rows::chunks_by_id(c, &ids)?;
                let similarity: std::collections::HashMap<i64, f64> = rows::vectors_by_id(c, &ids)?
                    .into_iter()
                    .map(|(id, v)| (id, crate::domain::dot(&vector, &v) as f64))
                    .collect();
                Ok(ranked
                    .into_iter()
                    .filter_map(|(id, score)| {
                        details.iter().find(|d| d.chunk_id == id).map(|d| Hit {
                            doc_id: d.doc_id.clone(),
                            chunk_id: id,
                            title: d.title.clone(),
                            source: d.source.clone(),
                            section: d.section.clone(),
                            score,
                            similarity: if vector.is_empty() {
                                None
                            } else {
                                similarity.get(&id).copied()
                            },
                            text: d.text.clone(),
                        })
                    })
                    .collect())
            })
            .await
    }
}
