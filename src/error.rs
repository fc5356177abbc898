//! The crate's one error type. Every message says what was wrong and, where it
//! can, what to do about it; none of them ever carries a secret.

use std::fmt::Display;

/// What went wrong, by the kind of answer a caller should give.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The input was wrong; the message says how to fix it.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The request clashes with the current state (a duplicate, a stale lease).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A store or outside service cannot be used right now; retrying may help.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure of a dependency.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps any displayable error as `Internal`, with a short note of what was being done.
    pub fn internal(doing: &str, err: impl Display) -> Self {
        Error::Internal(format!("{doing}: {err}"))
    }
    /// Wraps any displayable error as `Unavailable`, with a note of what was being done.
    pub fn unavailable(doing: &str, err: impl Display) -> Self {
        Error::Unavailable(format!("{doing}: {err}"))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        match err {
            rusqlite::Error::QueryReturnedNoRows => Error::NotFound("no matching row".into()),
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Error::Unavailable(format!("the SQLite database is busy: {err}"))
            }
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                Error::Unavailable(format!("the SQLite database cannot be written: {err}"))
            }
            other => Error::Internal(format!("SQLite: {other}")),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Unavailable(format!("I/O: {err}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Invalid(format!("JSON: {err}"))
    }
}
