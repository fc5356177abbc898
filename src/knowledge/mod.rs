//! The knowledge base: ingest a team's documents, chunk them, embed them locally, and
//! search them with BM25 (FTS5), vectors (sqlite-vec) or both fused (RRF). The CLI, the
//! HTTP API and the engine all call `Knowledge::search`.

pub mod chunk;
pub mod embed;
pub mod eval;
pub mod fuse;
pub mod ingest;
pub mod parse;

use std::sync::Arc;

use serde::Serialize;

use crate::config::KnowledgeConfig;
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
    pub text: String,
}

/// The knowledge base: the store plus the embedder.
#[derive(Clone)]
pub struct Knowledge {
    pub store: Store,
    pub embedder: Arc<dyn Embedder>,
    pub config: KnowledgeConfig,
}

/// The embedder the config asks for.
pub fn embedder_from_config(config: &KnowledgeConfig) -> Result<Arc<dyn Embedder>> {
    match config.embedder.as_str() {
        "none" => Ok(Arc::new(NoEmbedder)),
        "local" => {
            let dir = embed::find_model_dir(config.model_dir.as_deref())?;
            Ok(Arc::new(LocalMiniLm::load(&dir)?))
        }
        other => Err(Error::Invalid(format!("knowledge.embedder = {other:?} is not one of \"local\", \"none\""))),
    }
}

impl Knowledge {
    pub fn new(store: Store, embedder: Arc<dyn Embedder>, config: KnowledgeConfig) -> Knowledge {
        Knowledge { store, embedder, config }
    }

    /// The best `k` chunks for `query`.
    pub async fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Vec<Hit>> {
        let mode = if self.embedder.dim() == 0 { Mode::Bm25 } else { mode };
        let depth = (k * 4).max(self.config.candidates);
        let vector = if mode == Mode::Bm25 {
            Vec::new()
        } else {
            let emb = self.embedder.clone();
            let q = query.to_string();
            tokio::task::spawn_blocking(move || emb.embed(&[q.as_str()]))
                .await
                .map_err(|e| Error::internal("embedding task", e))??
                .remove(0)
        };
        let q = query.to_string();
        let rrf_k = self.config.rrf_k;
        self.store
            .read(move |c| {
                let ranked: Vec<(i64, f64)> = match mode {
                    Mode::Bm25 => rows::bm25(c, &q, k)?,
                    Mode::Vector => rows::knn(c, &vector, k)?,
                    Mode::Hybrid => {
                        let a: Vec<i64> = rows::bm25(c, &q, depth)?.into_iter().map(|x| x.0).collect();
                        let b: Vec<i64> = rows::knn(c, &vector, depth)?.into_iter().map(|x| x.0).collect();
                        fuse::rrf(&[a, b], rrf_k).into_iter().take(k).collect()
                    }
                };
                let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
                let details = rows::chunks_by_id(c, &ids)?;
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
                            text: d.text.clone(),
                        })
                    })
                    .collect())
            })
            .await
    }
}
