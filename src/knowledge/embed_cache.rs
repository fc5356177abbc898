//! A content-addressed vector cache in front of an embedder, for development and CI:
//! when `FRONTDESK_EMBED_CACHE` names a directory, a text the same model embedded
//! before is read back from a file instead of run through the model again. The test
//! suite and the eval gates embed the same demo documents a dozen times per run; with
//! the cache that work is done once. Off unless the variable is set; the server, the
//! CLI and the evals behave the same either way (the vectors are the model's own).
//!
//! Layout: `<dir>/<2 hex>/<64 hex>` where the name is SHA-256 of model id, a zero byte
//! and the text; the file is the vector's f32s, little-endian. Files are written to a
//! temporary name and renamed, so parallel writers never leave a torn vector; a file of
//! the wrong length is ignored (and replaced). Nothing is ever evicted: the directory
//! is a build artefact (`target/embed-cache` under `./scripts/test`).

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::embed::Embedder;
use crate::error::Result;

/// The environment variable naming the cache directory.
pub const CACHE_DIR_VAR: &str = "FRONTDESK_EMBED_CACHE";

/// `inner`, with its vectors cached under `dir`.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    dir: PathBuf,
    model_id: String,
}

impl CachedEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, dir: PathBuf) -> CachedEmbedder {
        let model_id = inner.model_id();
        CachedEmbedder { inner, dir, model_id }
    }

    /// `inner` wrapped in the cache when `FRONTDESK_EMBED_CACHE` is set (and the embedder
    /// makes vectors at all), else `inner` itself.
    pub fn from_env(inner: Arc<dyn Embedder>) -> Arc<dyn Embedder> {
        match std::env::var_os(CACHE_DIR_VAR) {
            Some(dir) if !dir.is_empty() && inner.dim() > 0 => Arc::new(CachedEmbedder::new(inner, dir.into())),
            _ => inner,
        }
    }

    fn path(&self, text: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.model_id.as_bytes());
        h.update([0u8]);
        h.update(text.as_bytes());
        let name = hex::encode(h.finalize());
        self.dir.join(&name[..2]).join(name)
    }

    fn read(&self, text: &str) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(text)).ok()?;
        if bytes.len() != self.inner.dim() * 4 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    /// Best effort: a cache that cannot be written only costs the next run the model time.
    fn write(&self, text: &str, vector: &[f32]) {
        let path = self.path(text);
        let Some(parent) = path.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        let tmp = parent.join(format!(".{}.{}", std::process::id(), rand::random::<u64>()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

impl Embedder for CachedEmbedder {
    fn model_id(&self) -> String {
        self.model_id.clone()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| self.read(t)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let batch: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let vectors = self.inner.embed(&batch)?;
            for (&i, v) in missing.iter().zip(vectors) {
                self.write(texts[i], &v);
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the texts it embeds; the vector is the text's length and first byte.
    struct Counting(AtomicUsize);
    impl Embedder for Counting {
        fn model_id(&self) -> String {
            "counting".into()
        }
        fn dim(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts
                .iter()
                .map(|t| vec![t.len() as f32, t.bytes().next().unwrap_or(0) as f32])
                .collect())
        }
    }

    #[test]
    fn a_text_is_embedded_once_and_read_back_in_order_after() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = CachedEmbedder::new(inner.clone(), dir.path().to_path_buf());
        let first = cache.embed(&["alpha", "be"]).unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        // A second cache over the same directory (another process) embeds only the new text.
        let again = CachedEmbedder::new(inner.clone(), dir.path().to_path_buf());
        let second = again.embed(&["be", "gamma", "alpha"]).unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
        assert_eq!(second, vec![first[1].clone(), vec![5.0, b'g' as f32], first[0].clone()]);
    }

    #[test]
    fn a_vector_file_of_the_wrong_length_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = CachedEmbedder::new(inner.clone(), dir.path().to_path_buf());
        let path = cache.path("torn");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, [1u8, 2, 3]).unwrap();
        assert_eq!(cache.embed(&["torn"]).unwrap(), vec![vec![4.0, b't' as f32]]);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        assert_eq!(std::fs::read(&path).unwrap().len(), 8);
    }
}
