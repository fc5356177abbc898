//! The child side of the sandbox (`frontdesk extract`): limit this process first, then
//! read one request and the file from stdin, parse, answer on stdout, exit. Nothing here
//! may assume the input is well-formed: a hostile file can at worst end this process.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use super::protocol::{Request, Response, encode_response};
use super::text::CollapsedText;
use crate::knowledge::parse::{parse_bytes, pdf_text};

/// The longest request line read.
const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// File descriptors the child may hold (stdin, stdout, stderr and a few for the runtime).
const MAX_OPEN_FILES: u64 = 16;

/// The exit code of a child that could not set its limits (and so read nothing).
pub(super) const EXIT_NO_LIMITS: i32 = 3;

/// Runs the child: limits, request, answer. Exit 0 with an answer, 2 for a bad request,
/// `EXIT_NO_LIMITS` when the limits cannot be set.
pub fn run_child(memory_mb: u64, cpu_seconds: u64) -> ExitCode {
    if let Err(e) = apply_limits(memory_mb, cpu_seconds) {
        eprintln!("the sandbox cannot set its limits: {e}");
        return ExitCode::from(EXIT_NO_LIMITS as u8);
    }
    let mut input = std::io::stdin().lock();
    let mut header = Vec::new();
    if let Err(e) = (&mut input).take(MAX_HEADER_BYTES).read_until(b'\n', &mut header) {
        eprintln!("cannot read the request: {e}");
        return ExitCode::from(2);
    }
    let request: Request = match serde_json::from_slice(&header) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("the request is not understood: {e}");
            return ExitCode::from(2);
        }
    };
    let response = answer(request, &mut input);
    let mut out = std::io::stdout().lock();
    match out.write_all(&encode_response(&response)).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

fn answer(request: Request, input: &mut impl Read) -> Response {
    match request {
        Request::DocumentText { mime, max_chars } => Response::DocumentText {
            text: document_text(&mime, max_chars, input),
        },
        Request::Knowledge {
            format,
            source,
            id_base,
            columns,
        } => {
            let mut bytes = Vec::new();
            if let Err(e) = input.read_to_end(&mut bytes) {
                let problem = crate::knowledge::parse::Problem {
                    source,
                    line: None,
                    message: format!("cannot read the upload: {e}"),
                };
                return Response::Knowledge {
                    docs: Vec::new(),
                    problems: vec![problem],
                };
            }
            let (docs, problems) = parse_bytes(format, &source, &id_base, &bytes, &columns);
            Response::Knowledge { docs, problems }
        }
    }
}

/// A document's text, whitespace collapsed, cut to `max_chars`. Plain text is streamed:
/// reading stops once enough is kept.
fn document_text(mime: &str, max_chars: usize, input: &mut impl Read) -> Result<String, String> {
    let mut text = CollapsedText::new(max_chars);
    match mime {
        "application/pdf" => {
            let mut bytes = Vec::new();
            input
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read the file: {e}"))?;
            text.push_str(&pdf_text(&bytes)?);
        }
        "text/plain" | "text/csv" => {
            let mut chunk = vec![0u8; 64 * 1024];
            while !text.is_full() {
                let n = input
                    .read(&mut chunk)
                    .map_err(|e| format!("cannot read the file: {e}"))?;
                if n == 0 {
                    break;
                }
                text.push_bytes(&chunk[..n])
                    .map_err(|e| format!("the text file is {e}"))?;
            }
        }
        other => return Err(format!("the bot reads PDF and plain-text documents, not {other}")),
    }
    text.finish().map_err(|e| format!("the text file is {e}"))
}

/// Address space, CPU time, no files written, no core dumps, few descriptors.
fn apply_limits(memory_mb: u64, cpu_seconds: u64) -> std::io::Result<()> {
    let mib = 1024 * 1024;
    set_limit(
        libc::RLIMIT_AS,
        memory_mb.saturating_mul(mib),
        memory_mb.saturating_mul(mib),
    )?;
    // Past the soft limit the kernel sends SIGXCPU; a second later SIGKILL.
    set_limit(libc::RLIMIT_CPU, cpu_seconds.max(1), cpu_seconds.max(1) + 1)?;
    set_limit(libc::RLIMIT_FSIZE, 0, 0)?;
    set_limit(libc::RLIMIT_CORE, 0, 0)?;
    set_limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
    Ok(())
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads a valid, initialised rlimit struct; it touches no Rust memory.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
