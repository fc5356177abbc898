//! The media file store: files under `data_dir/media/`, named by the SHA-256 of their
//! bytes (`ab/abcdef…`), so a file sent twice is stored once and a name always means the
//! same bytes. Writes go to a temporary name first and are renamed into place; directories
//! are 0700 and files 0600.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct MediaFiles {
    dir: PathBuf,
}

impl MediaFiles {
    pub fn new(data_dir: &Path) -> MediaFiles {
        MediaFiles {
            dir: data_dir.join("media"),
        }
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
        crate::private_fs::create_dir_all(parent)
            .map_err(|e| Error::unavailable(&format!("creating {}", parent.display()), e))?;
        let tmp = parent.join(format!(".{sha}.{}.tmp", rand::random::<u32>()));
        crate::private_fs::write(&tmp, bytes)
            .map_err(|e| Error::unavailable(&format!("writing {}", tmp.display()), e))?;
        crate::durable_fs::rename(&tmp, &path)
            .map_err(|e| Error::unavailable(&format!("storing {}", path.display()), e))?;
        Ok(sha)
    }

    /// The bytes of file `sha256`.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self
            .path(sha256)
            .ok_or_else(|| Error::Invalid(format!("{sha256:?} is not a media file name")))?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!("media file {sha256} (deleted by retention?)")),
            _ => Error::unavailable(&format!("reading {}", path.display()), e),
        })
    }

    /// Deletes file `sha256`; false if it was not there.
    pub fn delete(&self, sha256: &str) -> Result<bool> {
        let Some(path) = self.path(sha256) else {
            return Ok(false);
        };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::unavailable(&format!("deleting {}", path.display()), e)),
        }
    }

    /// Puts every file of this store into `dest` (a hard link where the file system
    /// allows, else a copy; files are never changed in place, so a link is a safe copy).
    /// Files `dest` already has are skipped. Returns (files, bytes) now in `dest` from here.
    pub fn copy_all_to(&self, dest: &MediaFiles) -> Result<(u64, u64)> {
        let (mut files, mut bytes) = (0, 0);
        for name in self.names() {
            let (src, dst) = (
                self.path(&name).expect("listed names are valid"),
                dest.path(&name).expect("same name"),
            );
            let size = match std::fs::metadata(&src) {
                Ok(m) => m.len(),
                // Deleted by retention since it was listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::unavailable(&format!("reading {}", src.display()), e)),
            };
            if !dst.exists() {
                let parent = dst.parent().expect("files live in a subdirectory");
                crate::private_fs::create_dir_all(parent)
                    .map_err(|e| Error::unavailable(&format!("creating {}", parent.display()), e))?;
                if std::fs::hard_link(&src, &dst).is_err() {
                    let tmp = parent.join(format!(".{name}.copy"));
                    match std::fs::copy(&src, &tmp).and_then(|_| crate::private_fs::restrict(&tmp)) {
                        Ok(()) => crate::durable_fs::rename(&tmp, &dst)
                            .map_err(|e| Error::unavailable(&format!("placing {}", dst.display()), e))?,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::unavailable(&format!("copying {}", src.display()), e)),
                    }
                }
            }
            files += 1;
            bytes += size;
        }
        Ok((files, bytes))
    }

    /// Checks that every file still has the content its name says; returns (files, bytes)
    /// or the first damaged file's name.
    pub fn check(&self) -> Result<(u64, u64)> {
        let (mut files, mut bytes) = (0, 0);
        for name in self.names() {
            let path = self.path(&name).expect("listed names are valid");
            let mut file = std::fs::File::open(&path)
                .map_err(|e| Error::unavailable(&format!("reading {}", path.display()), e))?;
            let mut hasher = Sha256::new();
            bytes += std::io::copy(&mut file, &mut hasher)
                .map_err(|e| Error::unavailable(&format!("reading {}", path.display()), e))?;
            if hex::encode(hasher.finalize()) != name {
                return Err(Error::Invalid(format!(
                    "media file {} is damaged (its content no longer matches its name)",
                    path.display()
                )));
            }
            files += 1;
        }
        Ok((files, bytes))
    }

    /// The names of every stored file.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
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
        // Copies (links) into another store, and the check of names against contents.
        let other_dir = tempfile::tempdir().unwrap();
        let other = MediaFiles::new(other_dir.path());
        assert_eq!(files.copy_all_to(&other).unwrap(), (1, 16));
        assert_eq!(files.copy_all_to(&other).unwrap(), (1, 16), "again: nothing new");
        assert_eq!(other.check().unwrap(), (1, 16));
        let copy = other.path(&a).unwrap();
        std::fs::remove_file(&copy).unwrap();
        std::fs::write(&copy, b"tampered").unwrap();
        assert!(other.check().unwrap_err().to_string().contains("is damaged"));
        assert!(files.delete(&a).unwrap());
        assert!(!files.delete(&a).unwrap());
        assert!(matches!(files.read(&a), Err(Error::NotFound(_))));
    }
}
