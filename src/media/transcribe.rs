//! Voice notes to text through an OpenAI-compatible `POST {transcription_url}/audio/transcriptions`
//! (OpenAI Whisper, a whisper.cpp or faster-whisper server, …): the file as multipart with
//! the model name, `verbose_json` so the detected language comes back, and the configured
//! language hint.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use crate::config::MediaConfig;
use crate::domain::media::Problem;

/// What the service heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    text: String,
    #[serde(default)]
    language: Option<String>,
}

/// A file name the service can tell the format from.
fn file_name(mime: &str) -> &'static str {
    match mime {
        "audio/ogg" => "voice.ogg",
        "audio/mpeg" => "audio.mp3",
        "audio/wav" => "audio.wav",
        "audio/amr" => "audio.amr",
        "audio/aac" => "audio.aac",
        "audio/flac" => "audio.flac",
        _ => "audio.m4a",
    }
}

/// Transcribes `bytes` (of type `mime`).
pub async fn transcribe(
    http: &reqwest::Client,
    config: &MediaConfig,
    bytes: Vec<u8>,
    mime: &str,
) -> Result<Transcript, Problem> {
    if config.transcription_url.is_empty() {
        return Err(Problem::Unsupported(
            "voice notes are not transcribed here (media.transcription_url is not set)".into(),
        ));
    }
    let url = format!(
        "{}/audio/transcriptions",
        config.transcription_url.trim_end_matches('/')
    );
    let file = Part::bytes(bytes)
        .file_name(file_name(mime))
        .mime_str(mime)
        .map_err(|e| Problem::Unsupported(format!("audio type {mime:?}: {e}")))?;
    let mut form = Form::new()
        .part("file", file)
        .text("model", config.transcription_model.clone())
        .text("response_format", "verbose_json");
    if !config.transcription_language.is_empty() {
        form = form.text("language", config.transcription_language.clone());
    }
    let mut req = http
        .post(&url)
        .timeout(Duration::from_millis(config.transcription_timeout_ms))
        .multipart(form);
    if !config.transcription_api_key.is_empty() {
        req = req.bearer_auth(config.transcription_api_key.expose());
    }
    let resp = req.send().await.map_err(|e| {
        Problem::Unavailable(format!(
            "transcription service unreachable: {}",
            crate::error::Error::unavailable(&url, e)
        ))
    })?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        return Err(Problem::Unavailable(format!(
            "transcription service answered HTTP {status}"
        )));
    }
    if !status.is_success() {
        let detail: String = body.chars().take(200).collect();
        return Err(Problem::Unsupported(format!(
            "the transcription service refused the audio (HTTP {status}): {detail}"
        )));
    }
    let answer: Answer = serde_json::from_str(&body)
        .map_err(|e| Problem::Unavailable(format!("transcription service answered something unreadable: {e}")))?;
    let text = answer.text.trim().to_string();
    if text.is_empty() {
        return Err(Problem::Empty("nothing could be heard in the voice note".into()));
    }
    Ok(Transcript {
        text,
        language: answer.language.filter(|l| !l.is_empty()),
    })
}
