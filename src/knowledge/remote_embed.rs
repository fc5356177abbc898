//! `RemoteEmbedder`: an OpenAI-compatible `POST {base_url}/embeddings` endpoint (OpenAI,
//! Ollama, vLLM, llama.cpp server). Batched, with a timeout, two retries with backoff on
//! 429/5xx and connection errors, a dimension check on every vector, and L2 norm (some
//! servers return unnormalised vectors). `embed` is synchronous like every embedder: it
//! is called on blocking threads and drives the request on the ambient tokio runtime.

use std::time::Duration;

use serde::Deserialize;

use super::embed::Embedder;
use crate::config::RemoteEmbedderConfig;
use crate::error::{Error, Result};

/// A remote embeddings endpoint.
pub struct RemoteEmbedder {
    config: RemoteEmbedderConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingRow>,
}

#[derive(Deserialize)]
struct EmbeddingRow {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl RemoteEmbedder {
    pub fn new(config: RemoteEmbedderConfig) -> Result<RemoteEmbedder> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .build()
            .map_err(|e| Error::internal("building the embeddings HTTP client", e))?;
        Ok(RemoteEmbedder { config, client })
    }

    fn url(&self) -> String {
        format!("{}/embeddings", self.config.base_url.trim_end_matches('/'))
    }

    async fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let body = serde_json::json!({ "model": self.config.model, "input": texts });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.client.post(self.url()).json(&body);
            if !self.config.api_key.is_empty() {
                req = req.bearer_auth(self.config.api_key.expose());
            }
            let retry = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let parsed: EmbeddingsResponse = resp.json().await.map_err(|e| {
                        Error::Unavailable(format!(
                            "embeddings endpoint {} sent an unreadable response: {e}",
                            self.url()
                        ))
                    })?;
                    return self.check(parsed, texts.len());
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let excerpt: String = text.chars().take(300).collect();
                    let err = Error::Unavailable(format!(
                        "embeddings endpoint {} answered {status}: {excerpt}",
                        self.url()
                    ));
                    if status.as_u16() == 429 || status.is_server_error() {
                        Some(err)
                    } else {
                        return Err(err);
                    }
                }
                Err(e) => Some(Error::Unavailable(format!(
                    "embeddings endpoint {} unreachable: {e}",
                    self.url()
                ))),
            };
            match retry {
                Some(err) if attempt >= 3 => return Err(err),
                _ => tokio::time::sleep(Duration::from_millis(250 * (1 << attempt))).await,
            }
        }
    }

    fn check(&self, parsed: EmbeddingsResponse, expected: usize) -> Result<Vec<Vec<f32>>> {
        if parsed.data.len() != expected {
            return Err(Error::Unavailable(format!(
                "embeddings endpoint returned {} vectors for {expected} texts",
                parsed.data.len()
            )));
        }
        let mut rows = parsed.data;
        if rows.iter().all(|r| r.index.is_some()) {
            rows.sort_by_key(|r| r.index);
        }
        rows.into_iter()
            .map(|r| {
                let mut v = r.embedding;
                if v.len() != self.config.dimensions {
                    return Err(Error::Invalid(format!(
                        "embeddings endpoint returned {}-dimensional vectors but knowledge.remote.dimensions = {}; set it to {}",
                        v.len(),
                        self.config.dimensions,
                        v.len()
                    )));
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                Ok(v)
            })
            .collect()
    }

    async fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}

impl Embedder for RemoteEmbedder {
    fn model_id(&self) -> String {
        format!(
            "openai:{}@{}",
            self.config.model,
            self.config.base_url.trim_end_matches('/')
        )
    }

    fn dim(&self) -> usize {
        self.config.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match tokio::runtime::Handle::try_current() {
            // A blocking thread of a runtime (every caller in this crate).
            Ok(handle) => handle.block_on(self.embed_all(texts)),
            // No runtime (benches, scripts): a small one for this call.
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal("starting a runtime for embeddings", e))?
                .block_on(self.embed_all(texts)),
        }
    }
}
