//! The journal's one open `Database`, shared by the writer thread and the readers. The
//! writer closes it after an I/O error (redb then refuses every later transaction with
//! "Previous I/O error") and puts a freshly opened one back; a reader that comes while
//! it is closed gets the store's `Unavailable` error, which names the cause.

use std::sync::{Arc, RwLock};

use redb::Database;

use crate::error::Result;
use crate::storage_health::StorageHealth;

/// Opens the journal again (the same file, or in tests the same simulated disk).
pub(super) type Opener = Box<dyn Fn() -> Result<Database> + Send>;

pub(super) struct DbSlot {
    db: RwLock<Option<Arc<Database>>>,
    pub(super) health: Arc<StorageHealth>,
}

impl DbSlot {
    pub(super) fn new(db: Database, health: Arc<StorageHealth>) -> Self {
        DbSlot {
            db: RwLock::new(Some(Arc::new(db))),
            health,
        }
    }

    /// The open database, for one read or one batch.
    pub(super) fn get(&self) -> Result<Arc<Database>> {
        let slot = self.db.read().unwrap_or_else(|p| p.into_inner());
        slot.clone().ok_or_else(|| self.health.unavailable())
    }

    pub(super) fn is_open(&self) -> bool {
        self.db.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Closes the database. Its file is released once the last reader holding it is done
    /// (until then a reopen finds it still locked and is retried).
    pub(super) fn close(&self) {
        let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(old);
    }

    pub(super) fn put(&self, db: Database) {
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
    }
}
