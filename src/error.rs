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
    /// A file that could not be written.
    pub fn writing(path: &std::path::Path, err: std::io::Error) -> Self {
        Error::unavailable(&format!("writing {}", path.display()), err)
    }
}

impl From<std::io::Error> for Error {
    /// By what the failure means for the caller: a missing file is `NotFound`, data or an
    /// argument the OS refused is `Invalid`, a permission problem is `Internal` (retrying
    /// cannot fix it; an operator must); the rest — a full disk, an interrupted or failing
    /// device, a dropped connection — is `Unavailable`, which may pass.
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let message = format!("I/O: {err}");
        match err.kind() {
            K::NotFound => Error::NotFound(message),
            K::InvalidInput | K::InvalidData | K::InvalidFilename => Error::Invalid(message),
            K::PermissionDenied => Error::Internal(message),
            _ => Error::Unavailable(message),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Invalid(format!("JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error as IoError, ErrorKind};

    use super::Error;

    #[test]
    fn io_errors_keep_their_meaning() {
        let kind = |k: ErrorKind| Error::from(IoError::new(k, "x"));
        assert!(matches!(kind(ErrorKind::NotFound), Error::NotFound(m) if m == "I/O: x"));
        assert!(matches!(kind(ErrorKind::InvalidData), Error::Invalid(_)));
        assert!(matches!(kind(ErrorKind::PermissionDenied), Error::Internal(_)));
        assert!(matches!(kind(ErrorKind::StorageFull), Error::Unavailable(_)));
        assert!(matches!(kind(ErrorKind::ConnectionReset), Error::Unavailable(_)));
        assert!(matches!(
            Error::from(IoError::from_raw_os_error(28)),
            Error::Unavailable(m) if m.contains("No space left")
        ));
    }
}
