//! Inbound media becomes text the bot understands: a media job per media message
//! downloads the file through the Graph API (size limit per type, type checked against the
//! bytes, size and SHA-256 against what Meta announced), stores it content-addressed, then
//! reads it — voice notes transcribed, images described by a vision model, documents'
//! text extracted — and the message's text becomes that. Failures are recorded with why;
//! the reply then asks the customer to type or hands over (`media.on_failure`), never
//! silence.

pub mod describe;
pub mod files;
pub mod transcribe;

use std::time::Duration;

use crate::domain::media::{self as rules, Problem};
use crate::error::Result;
use crate::store::media::{self as rows, MediaReading};
use crate::whatsapp::graph::GraphError;

pub use files::MediaFiles;

/// What reading a media message uses, borrowed from the running app.
pub struct Deps<'a> {
    pub store: &'a crate::store::Store,
    pub graph: &'a crate::whatsapp::graph::GraphClient,
    pub models: &'a crate::llm::Models,
    pub metrics: &'a crate::metrics::Metrics,
    pub config: &'a crate::config::MediaConfig,
    pub service: &'a MediaService,
}

/// The media handles the app keeps: the file store, an HTTP client for services, and the
/// sandbox that reads documents (customers' files and knowledge-base uploads).
#[derive(Debug, Clone)]
pub struct MediaService {
    pub files: MediaFiles,
    pub extractor: crate::extract::Extractor,
    http: reqwest::Client,
}

impl MediaService {
    pub fn new(data_dir: &std::path::Path, extract: &crate::config::ExtractConfig) -> MediaService {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        MediaService {
            files: MediaFiles::new(data_dir),
            extractor: crate::extract::Extractor::new(extract),
            http,
        }
    }
}

/// What one attempt at a media job came to.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Read (or already settled): nothing more to do.
    Settled,
    /// Failed for good; recorded.
    Failed(Problem),
    /// Failed in a way that may pass; try again later.
    Retry(Problem),
}

/// Downloads, checks, stores and reads the media of message `wamid`. On the last attempt
/// a passing failure is recorded as final.
pub async fn process(app: &Deps<'_>, wamid: &str, last_attempt: bool) -> Result<Step> {
    let w = wamid.to_string();
    let Some((row, media)) = app.store.read(move |c| rows::get(c, &w)).await? else {
        tracing::warn!(%wamid, "media job for a message that is not stored (erased?); nothing to do");
        return Ok(Step::Settled);
    };
    if row.status != "pending" {
        return Ok(Step::Settled);
    }
    let mut found = MediaReading::default();
    let result = read(app, &row, &media, &mut found).await;
    let now = crate::domain::now_ms();
    let w = wamid.to_string();
    match result {
        Ok((kind, text, language)) => {
            let turn = (kind != "sticker").then(|| {
                rules::turn_text(
                    &row.media_type,
                    media.caption.as_deref(),
                    media.filename.as_deref(),
                    &text,
                )
            });
            if kind != "sticker" {
                found.derived_kind = Some(kind.to_string());
                found.derived_text = Some(text);
            }
            found.language = language;
            app.store
                .write(move |c| rows::finish(c, &w, &found, turn.as_deref(), now))
                .await?;
            crate::metrics::Metrics::add(&app.metrics.media_read_total, 1);
            Ok(Step::Settled)
        }
        Err(problem) if problem.transient() && !last_attempt => Ok(Step::Retry(problem)),
        Err(problem) => {
            let error = problem.to_string();
            tracing::warn!(%wamid, media_type = %row.media_type, %error, "media could not be used");
            app.store.write(move |c| rows::fail(c, &w, &found, &error, now)).await?;
            crate::metrics::Metrics::add(&app.metrics.media_failed_total, 1);
            Ok(Step::Failed(problem))
        }
    }
}

/// The file's text: (kind, text, language).
async fn read(
    app: &Deps<'_>,
    row: &rows::MediaRow,
    media: &crate::domain::message::Media,
    found: &mut MediaReading,
) -> std::result::Result<(&'static str, String, Option<String>), Problem> {
    if row.media_type == "video" {
        return Err(Problem::Unsupported("videos are not watched by the bot".into()));
    }
    let limit = app.config.max_bytes(&row.media_type);
    let (info, bytes) = app
        .graph
        .download_media(&row.media_id, limit)
        .await
        .map_err(|e| download_problem(e, limit))?;
    found.size_bytes = Some(bytes.len() as i64);
    let checksums: Vec<&str> = [media.sha256.as_deref(), info.sha256.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let declared = media.mime_type.as_deref().or(info.mime_type.as_deref());
    let mime = rules::check(&row.media_type, declared, &bytes, info.file_size, &checksums)?;
    found.mime_type = Some(mime.clone());
    let service = app.service;
    // The bytes go to the blocking pool and come back (no copy of a 16 MB voice note).
    let files = service.files.clone();
    let (stored, bytes) = tokio::task::spawn_blocking(move || (files.put(&bytes), bytes))
        .await
        .map_err(|e| Problem::Unavailable(format!("storing the file: {e}")))?;
    found.sha256 = Some(stored.map_err(|e| Problem::Unavailable(format!("storing the file: {e}")))?);
    match row.media_type.as_str() {
        "sticker" => Ok(("sticker", String::new(), None)),
        "audio" => {
            let t = transcribe::transcribe(&service.http, app.config, bytes, &mime).await?;
            Ok(("transcript", t.text, t.language))
        }
        "image" => Ok((
            "description",
            describe::image(app, &bytes, &mime, media.caption.as_deref()).await?,
            None,
        )),
        _ => Ok((
            "document_text",
            describe::document(&service.extractor, bytes, &mime, app.config.document_max_chars).await?,
            None,
        )),
    }
}

fn download_problem(e: GraphError, limit: u64) -> Problem {
    match &e {
        GraphError::Refused(why) => Problem::Refused(why.clone()),
        GraphError::Api { http_status: 413, .. } => Problem::TooLarge { limit },
        GraphError::Api { title, .. } if title.contains("expired") => Problem::Expired,
        // Media ids last about 7 days; an unknown id will not come back.
        GraphError::Api {
            http_status: 400 | 404,
            code,
            ..
        } if *code != Some(190) => Problem::Expired,
        _ => Problem::Unavailable(format!("downloading: {e}")),
    }
}
