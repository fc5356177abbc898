//! Owner-only files and directories. The data dir, the media store, the ACME directory
//! and backups hold customers' messages, files and keys: directories are created 0700 and
//! files 0600, with the mode set explicitly after creation so the umask cannot widen it
//! (outside the packaged service nothing else guarantees it).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory frontdesk creates for its data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every data file frontdesk writes.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents, each 0700 and each made durable (its parent
/// fsynced); existing directories are left as they are.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
            // The new entry is durable only once its parent directory is fsynced.
            crate::durable_fs::sync_parent(dir)
        }
        // Made by someone else meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the file at `path` owner-only (0600).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

/// Restricts each of `paths` that exists (SQLite's `-wal`/`-shm` come and go).
pub fn restrict_existing(paths: &[std::path::PathBuf]) -> std::io::Result<()> {
    for p in paths {
        match restrict(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` (created or truncated), readable by the owner only, and
/// fsyncs the file (its name is made durable by the caller's rename).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `path` as an empty owner-only file if it does not exist, so that what SQLite
/// later creates beside it (`-wal`, `-shm`, which take the database file's mode) is
/// owner-only too.
pub fn precreate(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(f) => f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes`, readable by the owner only: a temp file beside it,
/// fsync, then a durable rename, so a crash leaves the old file or the new one, never a
/// torn one.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", rand::random::<u32>()));
    let replaced = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| crate::durable_fs::rename(&tmp, path));
    if replaced.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a").join("b").join("c");
        create_dir_all(&deep).unwrap();
        create_dir_all(&deep).unwrap();
        for d in [tmp.path().join("a"), tmp.path().join("a/b"), deep.clone()] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        let f = deep.join("f");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&f, b"y").unwrap();
        assert_eq!(
            (mode(&f), std::fs::read(&f).unwrap()),
            (0o600, b"y".to_vec()),
            "an existing file is narrowed too"
        );
        let g = deep.join("g");
        precreate(&g).unwrap();
        precreate(&g).unwrap();
        assert_eq!(mode(&g), 0o600);
        restrict_existing(&[deep.join("missing"), g.clone()]).unwrap();
        assert!(create_dir_all(&f.join("under-a-file")).is_err());
    }
}
