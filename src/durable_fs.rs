//! Durable names on disk. A new directory entry (a created file or directory, or a
//! rename's target) survives a power cut only once its parent directory has been fsynced
//! (POSIX; ext4's ordered mode hides this, other filesystems and mount options do not).
//! Every place that creates a store or a file whose existence matters, or renames one
//! into place, goes through here; directories are created by `private_fs::create_dir_all`,
//! which syncs each new one's parent the same way.

use std::io;
use std::path::{Path, PathBuf};

/// Fsyncs a directory, making the entries created or renamed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Fsyncs the directory that holds `path` (the current directory for a bare name).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(&parent_of(path))
}

/// Renames `from` to `to` and fsyncs the target's directory (and the source's, when it
/// is another one), so the new name is durable when this returns.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    let (src, dst) = (parent_of(from), parent_of(to));
    sync_dir(&dst)?;
    if src != dst {
        sync_dir(&src)?;
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_across_directories() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let (from, to) = (root.path().join("a/x.tmp"), deep.join("x"));
        std::fs::write(&from, b"1").unwrap();
        rename(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"1");
        assert!(sync_parent(Path::new("relative-name")).is_ok());
    }
}
