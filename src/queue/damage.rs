//! A journal file that cannot be used: how it is found at open (an empty file, redb's
//! errors, and redb's panics on a truncated file, caught so no stack trace reaches the
//! operator), and the refusal that names the file, what is at risk and the way out.
//! The journal is never re-created over a file that is there.

use std::path::Path;

use redb::{Database, DatabaseError, StorageError};

use crate::error::{Error, Result};

/// The journal file as found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// There, but 0 bytes: truncated, or never written.
    Empty,
    Present,
}

/// Looks at the file without opening it as a journal.
pub fn file_state(path: &Path) -> Result<FileState> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => Ok(FileState::Empty),
        Ok(_) => Ok(FileState::Present),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileState::Missing),
        Err(e) => Err(Error::Unavailable(format!(
            "cannot look at the queue journal {}: {e}",
            path.display()
        ))),
    }
}

/// Why a journal cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Missing, though the database records that this data dir had one.
    Missing,
    Empty,
    /// redb refused it or panicked on it; the detail says how.
    Unreadable(String),
}

/// What the journal holds that a damaged one may have lost.
pub const AT_RISK: &str = "It holds the webhooks already acknowledged to Meta but not yet stored, the jobs \
    waiting to run (replies, sends, media) and dead letters, and the dedupe keys that keep Meta's re-deliveries \
    from being processed twice";

/// The two ways out.
pub const WAY_OUT: &str = "Restore it from the latest backup (`frontdesk restore --from DIR --data-dir DIR \
    --force`, with the server stopped), or start with an empty journal: `frontdesk serve --discard-journal` \
    moves the file aside (kept as queue.redb.damaged-<ms>) and drops what it held";

/// One sentence: what is wrong with the journal at `path`.
pub fn describe(path: &Path, damage: &Damage) -> String {
    let p = path.display();
    match damage {
        Damage::Missing => format!(
            "the queue journal {p} is missing, but the database beside it records that one was created; \
             frontdesk does not replace it with an empty one by itself"
        ),
        Damage::Empty => format!(
            "the queue journal {p} is empty (0 bytes): it was cut short or never written; frontdesk does not \
             replace it with an empty one by itself"
        ),
        Damage::Unreadable(detail) => format!("cannot open the queue journal {p}: it is damaged ({detail})"),
    }
}

/// The refusal: what is wrong, what is at risk, what to do. The file is left as it is.
pub fn refusal(path: &Path, damage: &Damage) -> Error {
    Error::Invalid(format!("{}. {AT_RISK}. {WAY_OUT}.", describe(path, damage)))
}

/// Opens the journal at `path`, creating it only when there is no file at all. An empty
/// or unreadable file is refused (`Error::Invalid`, see `refusal`); another process
/// holding it is `Error::Conflict`; anything else (permissions, I/O) `Unavailable`.
pub fn open_database(path: &Path) -> Result<Database> {
    let state = file_state(path)?;
    if state == FileState::Empty {
        return Err(refusal(path, &Damage::Empty));
    }
    let opened = crate::panics::catch_quietly(|| {
        if state == FileState::Missing {
            Database::create(path)
        } else {
            Database::open(path)
        }
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(path, e)),
        Err(panic) => Err(refusal(path, &Damage::Unreadable(panic_detail(&panic)))),
    }
}

/// Opens an existing journal file read for checks (doctor, backups), with the same
/// errors as `open_database`; never creates one.
pub fn open_existing(path: &Path) -> Result<Database> {
    match file_state(path)? {
        FileState::Missing => Err(Error::NotFound(format!("no queue journal at {}", path.display()))),
        FileState::Empty => Err(refusal(path, &Damage::Empty)),
        FileState::Present => match crate::panics::catch_quietly(|| Database::open(path)) {
            Ok(Ok(db)) => Ok(db),
            Ok(Err(e)) => Err(open_error(path, e)),
            Err(panic) => Err(refusal(path, &Damage::Unreadable(panic_detail(&panic)))),
        },
    }
}

/// redb's assertion text, said plainly.
fn panic_detail(panic: &str) -> String {
    if panic.contains("raw_file_len") || panic.contains("layout") {
        format!("the file is shorter than its header says: it was truncated; redb: {panic}")
    } else {
        format!("redb could not read it: {panic}")
    }
}

fn open_error(path: &Path, e: DatabaseError) -> Error {
    match e {
        DatabaseError::DatabaseAlreadyOpen => Error::Conflict(format!(
            "{} is open in another frontdesk process (is the server running?)",
            path.display()
        )),
        DatabaseError::UpgradeRequired(v) => refusal(
            path,
            &Damage::Unreadable(format!(
                "it is in redb file format {v}, which this frontdesk cannot read; the frontdesk that wrote it can"
            )),
        ),
        DatabaseError::Storage(StorageError::Corrupted(detail)) => refusal(path, &Damage::Unreadable(detail)),
        DatabaseError::Storage(StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            refusal(path, &Damage::Unreadable(io.to_string()))
        }
        other => Error::Unavailable(format!("cannot open the queue journal {}: {other}", path.display())),
    }
}
