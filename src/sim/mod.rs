//! Test-only simulated storage for the power-loss tests: `power` (the power switch every
//! simulated file shares and the volatile layer of one file), `redb_disk` (a redb
//! `StorageBackend` on it) and `sqlite_vfs` (a SQLite VFS on it).

pub(crate) mod power;
pub(crate) mod redb_disk;
pub(crate) mod sqlite_vfs;
