//! Backups and restores. A backup is a directory: a consistent copy of the database
//! (`VACUUM INTO`), a consistent copy of the journal (every table inside one read
//! transaction), and `manifest.json` with versions, counts and a SHA-256 per file. It is
//! taken while the server runs (through the control API) or from a stopped data dir, and
//! written under a temporary name, renamed only when complete. A restore checks the
//! manifest, the checksums and both stores' integrity before it touches the data dir, and
//! keeps the files it replaces. Customers' media files go along under `media/` (linked
//! where the file system allows: they never change), each checked against its name, which
//! is its SHA-256. A manifest is checked before any of its names is used as a path (only
//! the two store files, checksums 64 hex digits). Backups are owner-only (0700 / 0600).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::store::Store;
use crate::store::backup::CopySummary;

/// The manifest's file name inside a backup.
pub const MANIFEST: &str = "manifest.json";
/// The store files' names, in a data dir and in a backup.
pub const DATABASE_FILE: &str = "frontdesk.db";
pub const JOURNAL_FILE: &str = "queue.redb";
const FORMAT: u32 = 1;

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub frontdesk_version: String,
    pub created_at_ms: i64,
    pub database: CopySummary,
    pub journal_jobs: u64,
    pub files: Vec<FileEntry>,
    /// The media store's files copied along (absent in backups made before media).
    #[serde(default)]
    pub media: MediaSummary,
    pub seconds: f64,
}

/// How many media files a backup holds, and their size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct MediaSummary {
    pub files: u64,
    pub bytes: u64,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Unavailable(format!("cannot {what} {}: {e}", path.display()))
}

fn file_entry(dir: &Path, name: &str) -> Result<FileEntry> {
    let path = dir.join(name);
    let mut file = std::fs::File::open(&path).map_err(|e| io("read", &path, e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| io("read", &path, e))?;
    Ok(FileEntry {
        name: name.into(),
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Takes a backup of both stores into the new directory `out`.
pub async fn snapshot(store: &Store, queue: &Queue, out: &Path) -> Result<Manifest> {
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Conflict(format!(
            "{} already exists and is not empty; pick a new directory for the backup",
            out.display()
        )));
    }
    let started = std::time::Instant::now();
    let partial = partial_path(out);
    let _ = std::fs::remove_dir_all(&partial);
    crate::private_fs::create_dir_all(&partial).map_err(|e| io("create", &partial, e))?;
    let (db, queue, dir) = (store.path().to_path_buf(), queue.clone(), partial.clone());
    let made = tokio::task::spawn_blocking(move || -> Result<Manifest> {
        crate::store::backup::vacuum_into(&db, &dir.join(DATABASE_FILE))?;
        queue.copy_to(&dir.join(JOURNAL_FILE))?;
        for f in [DATABASE_FILE, JOURNAL_FILE] {
            crate::private_fs::restrict(&dir.join(f)).map_err(|e| io("restrict", &dir.join(f), e))?;
        }
        let database = crate::store::backup::check_copy(&dir.join(DATABASE_FILE))?;
        let journal_jobs = crate::queue::snapshot::check_copy(&dir.join(JOURNAL_FILE))?;
        let files = vec![file_entry(&dir, DATABASE_FILE)?, file_entry(&dir, JOURNAL_FILE)?];
        // After the database copy: every file it names is already stored.
        let live = crate::media::MediaFiles::new(db.parent().unwrap_or(Path::new(".")));
        let (media_files, media_bytes) = live.copy_all_to(&crate::media::MediaFiles::new(&dir))?;
        let manifest = Manifest {
            format: FORMAT,
            frontdesk_version: env!("CARGO_PKG_VERSION").into(),
            created_at_ms: crate::domain::now_ms(),
            database,
            journal_jobs,
            files,
            media: MediaSummary {
                files: media_files,
                bytes: media_bytes,
            },
            seconds: started.elapsed().as_secs_f64(),
        };
        let path = dir.join(MANIFEST);
        crate::private_fs::write(&path, &serde_json::to_vec_pretty(&manifest)?).map_err(|e| io("write", &path, e))?;
        Ok(manifest)
    })
    .await
    .map_err(|e| Error::Internal(format!("backup task: {e}")))?;
    let manifest = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| io("replace the empty directory", out, e))?;
    }
    crate::durable_fs::rename(&partial, out).map_err(|e| io("finish the backup at", out, e))?;
    Ok(manifest)
}

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "backup".into());
    out.with_file_name(format!(".{name}.partial"))
}

/// Checks a backup: its manifest, every file's size and checksum, and both copies'
/// integrity and counts. The error says what is wrong and what to do.
pub fn verify(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "{} has no {MANIFEST}, so it is not a frontdesk backup (a stopped data dir copied with `cp -a` needs no restore: \
                 point storage.data_dir at the copy)",
                dir.display()
            )));
        }
        Err(e) => return Err(io("read", &path, e)),
    };
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("{} is damaged: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(Error::Invalid(format!(
            "{} has backup format {}; this frontdesk reads format {FORMAT}",
            path.display(),
            manifest.format
        )));
    }
    check_entries(&manifest.files).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e}; the manifest was changed or is not frontdesk's, use another backup",
            path.display()
        ))
    })?;
    for want in &manifest.files {
        let got = file_entry(dir, &want.name)?;
        if got.bytes != want.bytes || got.sha256 != want.sha256 {
            return Err(Error::Invalid(format!(
                "{} is damaged: {} differs from the backup's checksum ({} bytes, sha256 {}…; expected {} bytes, {}…); use another backup",
                dir.display(),
                want.name,
                got.bytes,
                &got.sha256[..12],
                want.bytes,
                &want.sha256[..12]
            )));
        }
    }
    let database = crate::store::backup::check_copy(&dir.join(DATABASE_FILE))?;
    let jobs = crate::queue::snapshot::check_copy(&dir.join(JOURNAL_FILE))?;
    if database != manifest.database || jobs != manifest.journal_jobs {
        return Err(Error::Invalid(format!(
            "{}: the copies do not hold what the manifest says; use another backup",
            dir.display()
        )));
    }
    let (files, bytes) = crate::media::MediaFiles::new(dir)
        .check()
        .map_err(|e| Error::Invalid(format!("{}: {e}; use another backup", dir.display())))?;
    if (files, bytes) != (manifest.media.files, manifest.media.bytes) {
        return Err(Error::Invalid(format!(
            "{}: {files} media files ({bytes} bytes) where the manifest says {} ({} bytes); use another backup",
            dir.display(),
            manifest.media.files,
            manifest.media.bytes
        )));
    }
    Ok(manifest)
}

/// Checks the manifest's file list before any name is used as a path or any checksum
/// read: exactly the two store files, each once, each with a SHA-256 of 64 lowercase hex
/// digits. (Media files are not listed: each is checked against its own name.)
pub fn check_entries(files: &[FileEntry]) -> std::result::Result<(), String> {
    for (i, f) in files.iter().enumerate() {
        if f.name != DATABASE_FILE && f.name != JOURNAL_FILE {
            return Err(format!(
                "file entry {i} names {:?}, which is not one of a backup's files ({DATABASE_FILE}, {JOURNAL_FILE})",
                f.name
            ));
        }
        if files[..i].iter().any(|g| g.name == f.name) {
            return Err(format!("file entry {i} names {:?} a second time", f.name));
        }
        if f.sha256.len() != 64
            || !f
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "file entry {i} ({}) has the checksum {:?}, which is not 64 lowercase hex digits",
                f.name,
                f.sha256.chars().take(80).collect::<String>()
            ));
        }
    }
    for want in [DATABASE_FILE, JOURNAL_FILE] {
        if !files.iter().any(|f| f.name == want) {
            return Err(format!("no file entry for {want}"));
        }
    }
    Ok(())
}

/// Restores the backup `from` into `data_dir` after verifying it. A data dir that already
/// holds stores is refused unless `force`; then its files are kept beside the restored
/// ones as `NAME.before-restore-<ms>`. A running server on `data_dir` is always refused.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<(Manifest, Vec<PathBuf>)> {
    let manifest = verify(from)?;
    crate::private_fs::create_dir_all(data_dir).map_err(|e| io("create", data_dir, e))?;
    let existing: Vec<PathBuf> = [DATABASE_FILE, JOURNAL_FILE]
        .iter()
        .map(|f| data_dir.join(f))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        if !force {
            return Err(Error::Conflict(format!(
                "{} already holds frontdesk's stores; stop the server and add --force to replace them (they are kept as *.before-restore-<time>)",
                data_dir.display()
            )));
        }
        let journal = data_dir.join(JOURNAL_FILE);
        if journal.exists() && crate::queue::snapshot::open_elsewhere(&journal) {
            return Err(Error::Conflict(format!(
                "a frontdesk server is running on {}; stop it before restoring",
                data_dir.display()
            )));
        }
    }
    let stamp = crate::domain::now_ms();
    let mut kept = Vec::new();
    for name in [DATABASE_FILE, JOURNAL_FILE]
        .iter()
        .flat_map(|f| [f.to_string(), format!("{f}-wal"), format!("{f}-shm")])
    {
        let p = data_dir.join(&name);
        if p.exists() {
            let aside = data_dir.join(format!("{name}.before-restore-{stamp}"));
            crate::durable_fs::rename(&p, &aside).map_err(|e| io("move aside", &p, e))?;
            kept.push(aside);
        }
    }
    for f in &manifest.files {
        let (src, tmp, dst) = (
            from.join(&f.name),
            data_dir.join(format!("{}.restoring", f.name)),
            data_dir.join(&f.name),
        );
        std::fs::copy(&src, &tmp)
            .and_then(|_| crate::private_fs::restrict(&tmp))
            .map_err(|e| io("copy", &src, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("sync", &tmp, e))?;
        crate::durable_fs::rename(&tmp, &dst).map_err(|e| io("place", &dst, e))?;
    }
    // Media files are added to what the data dir has (same name, same content).
    crate::media::MediaFiles::new(from).copy_all_to(&crate::media::MediaFiles::new(data_dir))?;
    Ok((manifest, kept))
}

/// Scheduled backups in `dir` are named `backup-<unix ms>`.
const SCHEDULED_PREFIX: &str = "backup-";

/// The scheduled backups in `dir`, oldest first, with when they were taken.
fn scheduled(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let ms = name.strip_prefix(SCHEDULED_PREFIX)?.parse().ok()?;
            Some((ms, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Takes a scheduled backup into `dir` when the newest is older than `every_ms` (or there
/// is none), then deletes the oldest beyond `keep`. Returns the new backup's path.
pub async fn scheduled_backup(
    store: &Store,
    queue: &Queue,
    dir: &Path,
    every_ms: i64,
    keep: usize,
    now: i64,
) -> Result<Option<PathBuf>> {
    let newest = scheduled(dir).last().map(|b| b.0);
    if newest.is_some_and(|t| now - t < every_ms) {
        return Ok(None);
    }
    let out = dir.join(format!("{SCHEDULED_PREFIX}{now}"));
    snapshot(store, queue, &out).await?;
    let all = scheduled(dir);
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_dir_all(old).map_err(|e| io("remove the old backup", old, e))?;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_entries_are_the_two_stores_with_hex_checksums() {
        let sha = "0123456789abcdef".repeat(4);
        let entry = |name: &str, sha256: &str| FileEntry {
            name: name.into(),
            bytes: 1,
            sha256: sha256.into(),
        };
        let good = vec![entry(DATABASE_FILE, &sha), entry(JOURNAL_FILE, &sha)];
        assert_eq!(check_entries(&good), Ok(()));
        // (entries, part of the error)
        let cases: Vec<(Vec<FileEntry>, &str)> = vec![
            (
                vec![good[0].clone(), good[1].clone(), entry("../evil.txt", &sha)],
                "entry 2 names \"../evil.txt\"",
            ),
            (
                vec![entry("/etc/passwd", &sha), good[1].clone()],
                "entry 0 names \"/etc/passwd\"",
            ),
            (
                vec![entry("sub/frontdesk.db", &sha), good[1].clone()],
                "\"sub/frontdesk.db\", which is not one of a backup's files",
            ),
            (
                vec![entry("./frontdesk.db", &sha), good[1].clone()],
                "\"./frontdesk.db\"",
            ),
            (
                vec![entry(&format!("media/{sha}"), &sha), good[0].clone(), good[1].clone()],
                "entry 0 names \"media/",
            ),
            (vec![entry("", &sha), good[1].clone()], "entry 0 names \"\""),
            (
                vec![good[0].clone(), good[1].clone(), good[0].clone()],
                "names \"frontdesk.db\" a second time",
            ),
            (vec![good[0].clone()], "no file entry for queue.redb"),
            (
                vec![entry(DATABASE_FILE, &format!("a{}", "é".repeat(40))), good[1].clone()],
                "is not 64 lowercase hex digits",
            ),
            (
                vec![entry(DATABASE_FILE, &sha.to_uppercase()), good[1].clone()],
                "is not 64 lowercase hex digits",
            ),
            (
                vec![entry(DATABASE_FILE, &sha[..63]), good[1].clone()],
                "is not 64 lowercase hex digits",
            ),
            (
                vec![entry(DATABASE_FILE, ""), good[1].clone()],
                "is not 64 lowercase hex digits",
            ),
        ];
        for (entries, want) in cases {
            let e = check_entries(&entries).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[tokio::test]
    async fn scheduled_backups_are_taken_when_due_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(DATABASE_FILE)).unwrap();
        let queue = Queue::open(&dir.path().join(JOURNAL_FILE), &Default::default()).unwrap();
        let backups = dir.path().join("backups");
        std::fs::create_dir(&backups).unwrap();
        let hour = 3_600_000;
        assert!(
            scheduled_backup(&store, &queue, &backups, hour, 2, 1_000)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            scheduled_backup(&store, &queue, &backups, hour, 2, 1_000 + hour / 2)
                .await
                .unwrap()
                .is_none(),
            "not due yet"
        );
        assert!(
            scheduled_backup(&store, &queue, &backups, hour, 2, 1_000 + hour)
                .await
                .unwrap()
                .is_some()
        );
        let third = scheduled_backup(&store, &queue, &backups, hour, 2, 1_000 + 2 * hour)
            .await
            .unwrap()
            .unwrap();
        let left: Vec<i64> = scheduled(&backups).into_iter().map(|b| b.0).collect();
        assert_eq!(left, vec![1_000 + hour, 1_000 + 2 * hour], "the oldest went");
        verify(&third).unwrap();
    }
}
