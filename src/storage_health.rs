//! Whether a store takes writes right now and, if not, why: a full disk or an I/O error.
//! Each store's writer thread keeps one `StorageHealth`: it records every failed write,
//! logs the first one and then at most one reminder a minute (not one line per request),
//! and clears the fault on the next write that commits. `/readyz` names the cause,
//! `/metrics` counts the errors, and callers get an `Unavailable` error that says it.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// How often a store that keeps failing is mentioned in the log again.
const REMIND_EVERY_MS: i64 = 60_000;

/// What kind of storage failure stops writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// No space left on the device (or the quota is used up).
    DiskFull,
    /// Any other I/O error from the operating system.
    Io,
}

impl FaultKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk_full",
            FaultKind::Io => "io_error",
        }
    }

    /// What an operator reads.
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk full",
            FaultKind::Io => "I/O error",
        }
    }

    /// The kind of an operating-system error.
    pub fn of_io(e: &std::io::Error) -> FaultKind {
        let full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            || matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            );
        if full { FaultKind::DiskFull } else { FaultKind::Io }
    }
}

/// A store's current fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// When writes started failing (Unix ms).
    pub since_ms: i64,
    /// The first error, as the storage engine reported it.
    pub detail: String,
}

#[derive(Debug, Default)]
struct State {
    fault: Option<Fault>,
    last_log_ms: i64,
}

/// One store's write health and error counters.
#[derive(Debug)]
pub struct StorageHealth {
    store: &'static str,
    state: Mutex<State>,
    disk_full_errors: AtomicU64,
    io_errors: AtomicU64,
    reopens: AtomicU64,
}

impl StorageHealth {
    /// `store` names the store in logs, errors and metric labels ("journal", "sqlite").
    pub fn new(store: &'static str) -> Self {
        StorageHealth {
            store,
            state: Mutex::default(),
            disk_full_errors: AtomicU64::new(0),
            io_errors: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
        }
    }

    /// The current fault, if writes are failing.
    pub fn fault(&self) -> Option<Fault> {
        self.lock().fault.clone()
    }

    /// Times the store was closed and opened again to recover from an I/O error.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    /// Records a failed write. Logs when the store starts failing and then once a minute.
    pub fn failed(&self, kind: FaultKind, detail: &str) {
        let counter = match kind {
            FaultKind::DiskFull => &self.disk_full_errors,
            FaultKind::Io => &self.io_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = crate::domain::now_ms();
        let mut state = self.lock();
        match &state.fault {
            None => {
                state.fault = Some(Fault {
                    kind,
                    since_ms: now,
                    detail: detail.to_string(),
                });
                state.last_log_ms = now;
                tracing::error!(
                    store = self.store,
                    cause = kind.label(),
                    error = detail,
                    "{}: writes fail ({}); webhooks are answered 503 until it recovers, which it does by \
                     itself once the cause is gone (for a full disk: free space in the data directory)",
                    self.store,
                    kind.describe()
                );
            }
            Some(f) if now - state.last_log_ms >= REMIND_EVERY_MS => {
                let secs = (now - f.since_ms) / 1000;
                state.last_log_ms = now;
                tracing::error!(
                    store = self.store,
                    cause = kind.label(),
                    error = detail,
                    "{}: writes still fail ({}) after {secs} s",
                    self.store,
                    kind.describe()
                );
            }
            Some(_) => {}
        }
    }

    /// Records a write that committed: a fault, if any, is over.
    pub fn committed(&self) {
        let mut state = self.lock();
        if let Some(f) = state.fault.take() {
            let secs = (crate::domain::now_ms() - f.since_ms) / 1000;
            tracing::warn!(
                store = self.store,
                "{}: writes work again after {secs} s of {}",
                self.store,
                f.kind.describe()
            );
        }
    }

    /// Records that the store was closed and opened again.
    pub fn reopened(&self) {
        self.reopens.fetch_add(1, Ordering::Relaxed);
    }

    /// The error callers get while the store is failing (or a generic one if it is not).
    pub fn unavailable(&self) -> Error {
        match self.fault() {
            Some(f) => Error::Unavailable(format!(
                "{}: {} ({}); retrying by itself",
                self.store,
                f.kind.describe(),
                f.detail
            )),
            None => Error::Unavailable(format!("{}: reopening after a storage error", self.store)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The storage families for `/metrics`, one series per store (and kind).
pub fn render(stores: &[&StorageHealth]) -> String {
    let mut out = String::new();
    let name = "frontdesk_storage_write_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} Writes a store refused, by cause (disk_full, io_error).\n# TYPE {name} counter"
    );
    for s in stores {
        for (kind, n) in [
            (FaultKind::DiskFull, &s.disk_full_errors),
            (FaultKind::Io, &s.io_errors),
        ] {
            let _ = writeln!(
                out,
                "{name}{{store=\"{}\",kind=\"{}\"}} {}",
                s.store,
                kind.label(),
                n.load(Ordering::Relaxed)
            );
        }
    }
    let name = "frontdesk_storage_fault";
    let _ = writeln!(
        out,
        "# HELP {name} 1 while a store's writes fail, labelled with the cause.\n# TYPE {name} gauge"
    );
    for s in stores {
        let fault = s.fault().map(|f| f.kind);
        for kind in [FaultKind::DiskFull, FaultKind::Io] {
            let on = u8::from(fault == Some(kind));
            let _ = writeln!(out, "{name}{{store=\"{}\",kind=\"{}\"}} {on}", s.store, kind.label());
        }
    }
    let name = "frontdesk_storage_reopens_total";
    let _ = writeln!(
        out,
        "# HELP {name} Times a store was closed and opened again to recover from an I/O error.\n# TYPE {name} counter"
    );
    for s in stores {
        let _ = writeln!(out, "{name}{{store=\"{}\"}} {}", s.store, s.reopens());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_named_counted_and_cleared_by_a_commit() {
        let h = StorageHealth::new("journal");
        assert!(h.fault().is_none());
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(FaultKind::of_io(&enospc), FaultKind::DiskFull);
        assert_eq!(
            FaultKind::of_io(&std::io::Error::from_raw_os_error(libc::EIO)),
            FaultKind::Io
        );
        h.failed(FaultKind::DiskFull, "No space left on device");
        h.failed(FaultKind::DiskFull, "No space left on device");
        let first = h.fault().unwrap();
        assert_eq!(first.kind, FaultKind::DiskFull);
        let msg = h.unavailable().to_string();
        assert!(msg.contains("journal: disk full"), "{msg}");
        let text = render(&[&h]);
        assert!(text.contains("frontdesk_storage_write_errors_total{store=\"journal\",kind=\"disk_full\"} 2"));
        assert!(text.contains("frontdesk_storage_fault{store=\"journal\",kind=\"disk_full\"} 1"));
        assert!(text.contains("frontdesk_storage_fault{store=\"journal\",kind=\"io_error\"} 0"));
        h.committed();
        assert!(h.fault().is_none());
        assert!(render(&[&h]).contains("frontdesk_storage_fault{store=\"journal\",kind=\"disk_full\"} 0"));
    }
}
