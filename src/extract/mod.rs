//! The sandbox for untrusted files: every parser of bytes a customer or an uploader
//! controls (PDF, HTML, CSV, JSONL, Markdown, plain text) runs in a child process of this
//! binary (`frontdesk extract`, fed on stdin), never in the server. The child limits its
//! own address space, CPU time, file writes and core dumps before it reads a byte; the
//! parent kills it at a wall-clock deadline and reads at most a bounded answer. A crash,
//! an overrun or garbage becomes a `Failure` for that one file — the webhook, the journal
//! and every other conversation carry on.

mod child;
mod protocol;
pub mod text;

pub use child::run_child;
pub use protocol::{Request, Response};

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::ExtractConfig;
use crate::knowledge::parse::{CsvColumns, Format, Problem, SourceDoc};

/// The largest answer read from a child (documents and problems as JSON).
const MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;
/// The most of a child's stderr kept for the failure message.
const MAX_STDERR_BYTES: u64 = 4 * 1024;

/// Why a file could not be read in the sandbox. Each is final for that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The reader crashed (a stack overflow, an abort, killed by a signal or a limit).
    Crashed(String),
    /// It was still working at the deadline, or used up its CPU time.
    TimedOut { seconds: u64 },
    /// The child could not be started or did not answer in the expected form.
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Crashed(how) => write!(f, "the file made the reader crash ({how}); it was stopped safely"),
            Failure::TimedOut { seconds } => write!(f, "reading the file took longer than {seconds} s; it was stopped"),
            Failure::Broken(why) => write!(f, "the file reader could not run: {why}"),
        }
    }
}

/// A handle on the sandbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Extractor {
    binary: PathBuf,
    limits: ExtractConfig,
    slots: Arc<Semaphore>,
}

impl Extractor {
    /// The sandbox as configured: `extract.binary`, or this program.
    pub fn new(config: &ExtractConfig) -> Extractor {
        let binary = if config.binary.as_os_str().is_empty() {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("frontdesk"))
        } else {
            config.binary.clone()
        };
        Extractor {
            binary,
            limits: config.clone(),
            slots: Arc::new(Semaphore::new(config.max_parallel.max(1))),
        }
    }

    /// The readable text of a customer's document (`mime` as checked against its
    /// bytes), whitespace collapsed and cut to `max_chars`. `Ok(Err(..))` is the reader's
    /// own verdict (not a PDF, not UTF-8, an unsupported type).
    pub async fn document_text(
        &self,
        bytes: Vec<u8>,
        mime: &str,
        max_chars: usize,
    ) -> Result<Result<String, String>, Failure> {
        match self
            .run(
                Request::DocumentText {
                    mime: mime.to_string(),
                    max_chars,
                },
                bytes,
            )
            .await?
        {
            Response::DocumentText { text } => Ok(text),
            other => Err(Failure::Broken(format!("unexpected answer {other:?}"))),
        }
    }

    /// Documents read from an uploaded knowledge-base file, with the problems found; a
    /// sandbox failure becomes one problem naming the file.
    pub async fn knowledge(
        &self,
        format: Format,
        source: &str,
        id_base: &str,
        bytes: Vec<u8>,
        columns: &CsvColumns,
    ) -> (Vec<SourceDoc>, Vec<Problem>) {
        let request = Request::Knowledge {
            format,
            source: source.to_string(),
            id_base: id_base.to_string(),
            columns: columns.clone(),
        };
        let failed = |message: String| {
            (
                Vec::new(),
                vec![Problem {
                    source: source.to_string(),
                    line: None,
                    message,
                }],
            )
        };
        match self.run(request, bytes).await {
            Ok(Response::Knowledge { docs, problems }) => (docs, problems),
            Ok(other) => failed(format!("the file reader answered {other:?}")),
            Err(f) => failed(f.to_string()),
        }
    }

    /// Runs one request in a fresh child and returns its answer.
    pub async fn run(&self, request: Request, input: Vec<u8>) -> Result<Response, Failure> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Failure::Broken("the sandbox is closed".into()))?;
        let mut child = tokio::process::Command::new(&self.binary)
            .arg("extract")
            .arg("--memory-mb")
            .arg(self.limits.memory_mb.to_string())
            .arg("--cpu-seconds")
            .arg(self.limits.cpu_seconds.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Broken(format!("cannot start {} extract: {e}", self.binary.display())))?;
        let header = serde_json::to_vec(&request).map_err(|e| Failure::Broken(e.to_string()))?;
        let mut stdin = child.stdin.take().ok_or_else(|| Failure::Broken("no stdin".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| Failure::Broken("no stdout".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| Failure::Broken("no stderr".into()))?;
        // The child may stop reading early (a text cut short, a crash): a closed pipe is
        // not an error here; its answer (or death) says what happened.
        let feed = async move {
            let _ = stdin.write_all(&header).await;
            let _ = stdin.write_all(b"\n").await;
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let read_out = async move {
            let mut out = Vec::new();
            let _ = stdout.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut out).await;
            out
        };
        let read_err = async move {
            let mut err = Vec::new();
            let _ = stderr.take(MAX_STDERR_BYTES).read_to_end(&mut err).await;
            err
        };
        let deadline = Duration::from_millis(self.limits.timeout_ms.max(1));
        let work = async { tokio::join!(feed, read_out, read_err, child.wait()) };
        let (_, out, err, status) = match tokio::time::timeout(deadline, work).await {
            Ok(done) => done,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(Failure::TimedOut {
                    seconds: deadline.as_secs().max(1),
                });
            }
        };
        let status = status.map_err(|e| Failure::Broken(format!("waiting for the reader: {e}")))?;
        let stderr_tail = String::from_utf8_lossy(&err)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        if status.code() == Some(child::EXIT_NO_LIMITS) {
            return Err(Failure::Broken(format!(
                "{stderr_tail} (does a system-call filter forbid setrlimit?)"
            )));
        }
        if !status.success() {
            return Err(crash_of(status, &stderr_tail, self.limits.cpu_seconds));
        }
        if out.len() as u64 > MAX_OUTPUT_BYTES {
            return Err(Failure::Broken(format!(
                "the reader's answer is over {} MiB",
                MAX_OUTPUT_BYTES >> 20
            )));
        }
        protocol::decode_response(&out).map_err(|why| {
            Failure::Broken(format!(
                "{why} — is extract.binary ({}) the frontdesk program?",
                self.binary.display()
            ))
        })
    }
}

/// Names how a child ended badly.
fn crash_of(status: std::process::ExitStatus, stderr_tail: &str, cpu_seconds: u64) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        // SIGXCPU: the CPU-time limit (SIGKILL follows at the hard limit).
        Some(libc::SIGXCPU) => Failure::TimedOut { seconds: cpu_seconds },
        Some(sig) => {
            let name = match sig {
                libc::SIGABRT => "abort",
                libc::SIGKILL => "killed",
                libc::SIGSEGV => "segmentation fault",
                _ => "signal",
            };
            let detail = if stderr_tail.is_empty() {
                String::new()
            } else {
                format!(": {stderr_tail}")
            };
            Failure::Crashed(format!("{name}, signal {sig}{detail}"))
        }
        None => Failure::Crashed(format!(
            "exit status {}{}",
            status.code().unwrap_or(-1),
            if stderr_tail.is_empty() {
                String::new()
            } else {
                format!(": {stderr_tail}")
            }
        )),
    }
}
