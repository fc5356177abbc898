//! Panics as an operator sees them. The CLI installs `install_hook`: a panic prints one
//! short report (what, where, that it is a bug) with every configured secret blanked, and
//! a stack trace only when `RUST_BACKTRACE` asks for one. `catch_quietly` runs a
//! dependency's call that may panic on bad input (redb on a damaged file) and turns the
//! panic into an error without any report, so no stack trace reaches the terminal.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, PanicHookInfo};

use crate::config::Redactor;

thread_local! {
    /// Set while `catch_quietly` runs on this thread: the hook stays silent.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside it becomes `Err(its message)`, and the hook prints nothing.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Replaces the panic hook (the CLI calls it at start and again once the config, and so
/// its secrets, are known; the latest wins).
pub fn install_hook(redactor: Redactor) {
    std::panic::set_hook(Box::new(move |info| {
        if QUIET.with(Cell::get) {
            return;
        }
        let backtrace = std::backtrace::Backtrace::capture();
        let mut report = report(info, &redactor);
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            report.push_str(&format!("\n{}", redactor.redact(&backtrace.to_string())));
        }
        eprintln!("{report}");
    }));
}

/// The lines a panic prints.
fn report(info: &PanicHookInfo<'_>, redactor: &Redactor) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let place = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
    report_text(&message, &place, &thread, redactor)
}

fn report_text(message: &str, place: &str, thread: &str, redactor: &Redactor) -> String {
    redactor
        .redact(&format!(
            "frontdesk: internal error (a bug) in thread {thread} at {place}: {message}\n\
             please report it with the line above; RUST_BACKTRACE=1 adds a stack trace"
        ))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_error_with_its_message() {
        let r: Result<(), String> = catch_quietly(|| panic!("assertion failed: storage too short"));
        assert_eq!(r.unwrap_err(), "assertion failed: storage too short");
        assert_eq!(catch_quietly(|| 7).unwrap(), 7);
        assert!(!QUIET.with(Cell::get), "quiet is reset afterwards");
    }

    #[test]
    fn the_report_never_shows_a_secret() {
        let r = Redactor::new(["hunter2-secret".to_string()]);
        let text = report_text("bad token hunter2-secret", "src/x.rs:1", "main", &r);
        assert!(
            !text.contains("hunter2-secret") && text.contains("bad token ***"),
            "{text}"
        );
        assert!(text.contains("internal error") && text.contains("src/x.rs:1"), "{text}");
    }
}
