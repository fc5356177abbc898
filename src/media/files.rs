//! The media file store: files under `data_dir/media/`, named by the SHA-256 of their
//! bytes (`ab/abcdef…`), so a file sent twice is stored once and a name always means the
//! same bytes. Writes go to a temporary name first and are renamed into place.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct MediaFiles {
    dir: PathBuf,
}

impl MediaFiles {
    pub fn new(data_dir: &Path) -> MediaFiles {
        MediaFiles { dir: data_dir.join("media") }
    }

    /// Where file `sha256` lives; `None` for a name that is not 64 hex digits.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| self.dir.join(&sha256[..2]).join(sha256))
    }

    /// Stores `bytes`; returns their name (hex SHA-256).
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path(&sha).expect("a hex digest is a valid name");
        if path.exists() {
            return Ok(sha);
        }
        let parent = path.parent().expect("files live in a subdirectory");
        std::fs::create_dir_all(parent).map_err(|e| Error::unavailable(&format!("creating {}", parent.display()), e))?;
        let tmp = parent.join(format!(".{sha}.{}.tmp", rand::random::<u32>()));
        std::fs::write(&tmp, bytes).map_err(|e| Error::unavailable(&format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::unavailable(&format!("storing {}", path.display()), e))?;
        Ok(sha)
    }

    /// The bytes of file `sha256`.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path(sha256).ok_or_else(|| Error::Invalid(format!("{sha256:?} is not a media file name")))?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!("media file {sha256} (deleted by retention?)")),
            _ => Error::unavailable(&format!("reading {}", path.display()), e),
        })
    }

    /// Deletes file `sha256`; false if it was not there.
    pub fn delete(&self, sha256: &str) -> Result<bool> {
        let Some(path) = self.path(sha256) else { return Ok(false) };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::unavailable(&format!("deleting {}", path.display()), e)),
        }
    }

    /// The names of every stored file.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.dir) else { return out };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else { continue };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if self.path(&name).is_some() {
                    out.push(name);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_by_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::new(dir.path());
        let a = files.put(b"voice note bytes").unwrap();
        assert_eq!(a, hex::encode(Sha256::digest(b"voice note bytes")));
        assert_eq!(files.put(b"voice note bytes").unwrap(), a, "stored once");
        assert_eq!(files.read(&a).unwrap(), b"voice note bytes");
        assert_eq!(files.names(), vec![a.clone()]);
        assert!(files.path("../../etc/passwd").is_none());
        assert!(files.read("../x").is_err());
        assert!(files.delete(&a).unwrap());
        assert!(!files.delete(&a).unwrap());
        assert!(matches!(files.read(&a), Err(Error::NotFound(_))));
    }
}
