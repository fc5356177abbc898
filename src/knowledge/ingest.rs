//! `kb add`: walks files and directories (and fetches URLs), parses, skips unchanged documents (content
//! hash), chunks, embeds and writes each document in one transaction. Problems are
//! reported with file and line; nothing is half-written.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Knowledge;
use super::chunk::chunk;
use super::fetch::{fetch_documents, is_url};
use super::parse::{CsvColumns, Problem, SourceDoc, parse_file, supported};
use crate::error::{Error, Result};
use crate::store::knowledge::{self as rows, NewChunk};

/// What an ingest did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub chunks: usize,
    pub problems: Vec<String>,
}

/// A file to load and the root its document id is relative to.
pub type FileUnderRoot = (PathBuf, PathBuf);

/// Every supported file under `paths` (directories recursively, sorted), each with the
/// root its document id is relative to.
pub fn collect_files(paths: &[PathBuf]) -> Result<(Vec<FileUnderRoot>, Vec<Problem>)> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| Error::Invalid(format!("cannot read directory {}: {e}", dir.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                entries.sort();
                for e in entries {
                    if e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                        continue;
                    }
                    if e.is_dir() {
                        stack.push(e);
                    } else if supported(&e) {
                        files.push((e, p.clone()));
                    } else if e.file_name().is_none_or(|n| n != "README.md") {
                        problems.push(Problem {
                            source: e.display().to_string(),
                            line: None,
                            message: "skipped: not a supported file type".into(),
                        });
                    }
                }
            }
        } else if p.is_file() {
            files.push((p.clone(), p.parent().map(Path::to_path_buf).unwrap_or_default()));
        } else {
            return Err(Error::Invalid(format!("{} does not exist", p.display())));
        }
    }
    files.sort();
    Ok((files, problems))
}

/// The document id of a file: its path below `root`, without extension, `/`-separated.
pub fn file_doc_id(file: &Path, root: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let stem = rel.with_extension("");
    stem.components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn content_hash(doc: &SourceDoc) -> String {
    let mut h = Sha256::new();
    h.update(doc.title.as_bytes());
    h.update([0]);
    h.update(doc.text.as_bytes());
    hex::encode(h.finalize())
}

impl Knowledge {
    /// Makes sure the stored vectors belong to this embedder; re-embeds every chunk (with
    /// `progress` called per batch) when the model changed.
    pub async fn prepare(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<usize> {
        let (model, dim) = (self.embedder.model_id(), self.embedder.dim());
        let changed = self.store.write(move |c| rows::prepare_vectors(c, &model, dim)).await?;
        if !changed {
            return Ok(0);
        }
        let total = self.store.read(rows::chunk_count).await?;
        let mut done = 0;
        loop {
            let batch = self.store.read(|c| rows::chunks_missing_vectors(c, 256)).await?;
            if batch.is_empty() {
                break;
            }
            let emb = self.embedder.clone();
            let texts: Vec<String> = batch.iter().map(|b| b.1.clone()).collect();
            let vecs =
                tokio::task::spawn_blocking(move || emb.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>()))
                    .await
                    .map_err(|e| Error::internal("embedding task", e))??;
            let rows_v: Vec<(i64, Vec<f32>)> = batch.iter().map(|b| b.0).zip(vecs).collect();
            done += rows_v.len();
            self.store.write(move |c| rows::set_vectors(c, &rows_v)).await?;
            progress(done, total);
        }
        Ok(done)
    }

    /// Ingests documents already read: unchanged ones (same content hash) are skipped,
    /// the rest are chunked, embedded together (batched), and written in one transaction
    /// with a savepoint per document — each document lands whole or not at all.
    pub async fn add_documents(&self, docs: Vec<SourceDoc>, report: &mut IngestReport) -> Result<()> {
        let ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
        let existing: Vec<Option<String>> = self
            .store
            .read(move |c| ids.iter().map(|id| rows::document_hash(c, id)).collect())
            .await?;
        let mut todo = Vec::new();
        for (doc, old) in docs.into_iter().zip(existing) {
            let hash = content_hash(&doc);
            if old.as_deref() == Some(hash.as_str()) {
                report.unchanged += 1;
                continue;
            }
            let pieces = chunk(
                &doc.text,
                self.config.chunk_target_tokens,
                self.config.chunk_max_tokens,
                self.config.chunk_overlap_tokens,
            );
            if pieces.is_empty() {
                report.problems.push(format!("{}: no text to index", doc.source));
                continue;
            }
            if old.is_some() {
                report.updated += 1;
            } else {
                report.added += 1;
            }
            report.chunks += pieces.len();
            todo.push((doc, hash, pieces));
        }
        if todo.is_empty() {
            return Ok(());
        }
        // What is embedded: title and section give short chunks their context.
        let inputs: Vec<String> = todo
            .iter()
            .flat_map(|(doc, _, pieces)| {
                pieces
                    .iter()
                    .map(move |p| format!("{}\n{}\n{}", doc.title, p.section, p.text))
            })
            .collect();
        let emb = self.embedder.clone();
        let mut vectors =
            tokio::task::spawn_blocking(move || emb.embed(&inputs.iter().map(String::as_str).collect::<Vec<_>>()))
                .await
                .map_err(|e| Error::internal("embedding task", e))??
                .into_iter();
        let now = crate::domain::now_ms();
        let todo: Vec<_> = todo
            .into_iter()
            .map(|(doc, hash, pieces)| {
                let vs: Vec<Vec<f32>> = vectors.by_ref().take(pieces.len()).collect();
                (doc, hash, pieces, vs)
            })
            .collect();
        self.store
            .write(move |tx| {
                for (doc, hash, pieces, vectors) in &todo {
                    let sp = tx.savepoint()?;
                    let chunks: Vec<NewChunk<'_>> = pieces
                        .iter()
                        .zip(vectors)
                        .map(|(p, v)| NewChunk {
                            section: &p.section,
                            text: &p.text,
                            tokens: p.tokens,
                            vector: v,
                        })
                        .collect();
                    rows::replace_document(&sp, &doc.id, &doc.title, &doc.source, hash, &chunks, now)?;
                    sp.commit()?;
                }
                Ok(())
            })
            .await
    }

    /// Ingests files, directories and `http(s)://` URLs, in batches of documents;
    /// `progress(done, total, name)` per file or URL.
    pub async fn add_paths(
        &self,
        paths: &[PathBuf],
        columns: &CsvColumns,
        progress: &(dyn Fn(usize, usize, &str) + Sync),
    ) -> Result<IngestReport> {
        let (urls, local): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| is_url(&p.to_string_lossy()));
        let local: Vec<PathBuf> = local.into_iter().cloned().collect();
        let (files, problems) = if local.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            collect_files(&local)?
        };
        let mut report = IngestReport {
            problems: problems.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        let total = files.len() + urls.len();
        for (i, url) in urls.iter().enumerate() {
            let url = url.to_string_lossy().to_string();
            progress(i, total, &url);
            let timeout = std::time::Duration::from_millis(self.config.fetch_timeout_ms);
            let check = super::fetch::address_check(self.config.allow_private_urls);
            let (docs, probs) = fetch_documents(&url, self.config.max_document_bytes, timeout, check, columns).await;
            report.problems.extend(probs.iter().map(|p| p.to_string()));
            self.add_in_batches(docs, &mut report).await?;
        }
        for (i, (file, root)) in files.iter().enumerate() {
            progress(urls.len() + i, total, &file.display().to_string());
            let bytes = match std::fs::read(file) {
                Ok(b) => b,
                Err(e) => {
                    report.problems.push(format!("{}: cannot read: {e}", file.display()));
                    continue;
                }
            };
            let (docs, probs) = parse_file(file, &file_doc_id(file, root), &bytes, columns);
            report.problems.extend(probs.iter().map(|p| p.to_string()));
            self.add_in_batches(docs, &mut report).await?;
        }
        progress(total, total, "");
        Ok(report)
    }

    /// Big files (CSV, JSONL) go in batches, so a kill loses at most one batch.
    async fn add_in_batches(&self, mut docs: Vec<SourceDoc>, report: &mut IngestReport) -> Result<()> {
        while !docs.is_empty() {
            let rest = docs.split_off(docs.len().min(64));
            self.add_documents(docs, report).await?;
            docs = rest;
        }
        Ok(())
    }
}
