//! Embeddings behind one trait. `LocalMiniLm` runs all-MiniLM-L6-v2 on the CPU with
//! candle: the tokenizer's fixed padding/128 truncation is replaced by longest-in-batch
//! padding and truncation at 256, then mean pooling over real tokens and L2 norm — the
//! sentence-transformers recipe. `NoEmbedder` turns vectors off (BM25 only).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// Turns texts into unit-length vectors.
pub trait Embedder: Send + Sync {
    /// Names the model; stored with the index so a change of model re-embeds.
    fn model_id(&self) -> String;
    /// Vector length; 0 means "no vectors" (BM25 only).
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// No vectors: retrieval is BM25 only.
pub struct NoEmbedder;

impl Embedder for NoEmbedder {
    fn model_id(&self) -> String {
        "none".into()
    }
    fn dim(&self) -> usize {
        0
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(vec![Vec::new(); texts.len()])
    }
}

/// all-MiniLM-L6-v2 (or any BERT sentence model in the same layout) on the CPU.
pub struct LocalMiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    name: String,
}

/// Where to look for the model when the config names no directory, in order.
pub fn default_model_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(d) = std::env::var("FRONTDESK_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/usr/share/frontdesk/model"));
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        dirs.push(prefix.join("share/frontdesk/model"));
    }
    dirs.push(PathBuf::from("models/all-MiniLM-L6-v2"));
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"));
    dirs
}

/// The first directory holding a model (`model.safetensors`, `tokenizer.json`, `config.json`).
pub fn find_model_dir(configured: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match configured {
        Some(p) => vec![p.to_path_buf()],
        None => default_model_dirs(),
    };
    for d in &candidates {
        if ["model.safetensors", "tokenizer.json", "config.json"]
            .iter()
            .all(|f| d.join(f).is_file())
        {
            return Ok(d.clone());
        }
    }
    Err(Error::Unavailable(format!(
        "no embedding model found (looked in {}); run ./scripts/fetch-model, set knowledge.model_dir, \
         or set knowledge.embedder = \"none\" for BM25-only retrieval",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

impl LocalMiniLm {
    /// Loads the model from `dir`.
    pub fn load(dir: &Path) -> Result<LocalMiniLm> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Unavailable(format!("embedding model in {}: {what}: {e}", dir.display()))
        };
        let config_text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| fail("config.json", &e))?;
        let config: BertConfig = serde_json::from_str(&config_text).map_err(|e| fail("config.json", &e))?;
        let dim = serde_json::from_str::<serde_json::Value>(&config_text)
            .ok()
            .and_then(|v| v.get("hidden_size").and_then(|h| h.as_u64()))
            .unwrap_or(384) as usize;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| fail("tokenizer.json", &e))?;
        // The packaged tokenizer pads every input to 128 and truncates at 128: use the
        // longest input of each batch instead, and keep up to 256 tokens.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: 256,
                ..Default::default()
            }))
            .map_err(|e| fail("tokenizer truncation", &e))?;
        // SAFETY: the safetensors file is memory-mapped read-only; it must not change while
        // mapped, which holds for a model directory nothing else writes to.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu) }
                .map_err(|e| fail("model.safetensors", &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| fail("loading weights", &e))?;
        let name = format!(
            "local:{}",
            dir.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "minilm".into())
        );
        Ok(LocalMiniLm {
            model,
            tokenizer,
            dim,
            name: if name == "local:model" {
                "local:all-MiniLM-L6-v2".into()
            } else {
                name
            },
        })
    }

    fn embed_batch(&self, texts: &[&str]) -> candle_core::Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::wrap)?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> candle_core::Result<Tensor> {
            let v: Vec<Tensor> = enc
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), &Device::Cpu))
                .collect::<candle_core::Result<_>>()?;
            Tensor::stack(&v, 0)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let types = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over real tokens, then L2 normalise.
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

impl Embedder for LocalMiniLm {
    fn model_id(&self) -> String {
        self.name.clone()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        // Similar lengths batch together: less padding, less work.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut vecs: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for group in order.chunks(32) {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            let embedded = self.embed_batch(&batch).map_err(|e| Error::internal("embedding", e))?;
            for (&i, v) in group.iter().zip(embedded) {
                vecs[i] = Some(v);
            }
        }
        for v in vecs {
            out.push(v.expect("every text embedded"));
        }
        Ok(out)
    }
}

pub use crate::domain::dot;
