//! A simulated disk for redb: a `StorageBackend` over one `Volatile` file and a `Power`
//! switch, so the journal can lose its unsynced writes at any backend call.

use std::io;

use rand::Rng;

use super::power::{Power, SharedFile, Tear, lock};

/// The journal's disk; clones share it. Each open of the database takes a `backend()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimDisk {
    pub(crate) power: Power,
    file: SharedFile,
}

impl SimDisk {
    /// A disk on `power` (shared with other simulated files of the same machine).
    pub(crate) fn on(power: &Power) -> SimDisk {
        SimDisk {
            power: power.clone(),
            file: SharedFile::default(),
        }
    }

    pub(crate) fn backend(&self) -> SimBackend {
        SimBackend(self.clone())
    }

    /// Brings the file back after a power cut (the caller restores the power).
    pub(crate) fn power_cycle(&self, tear: Tear, rng: &mut impl Rng) -> usize {
        lock(&self.file).power_cycle(tear, rng)
    }
}

/// One open of the simulated disk.
#[derive(Debug)]
pub(crate) struct SimBackend(SimDisk);

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> io::Result<u64> {
        self.0.power.tick()?;
        Ok(lock(&self.0.file).len())
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.0.power.tick()?;
        let f = lock(&self.0.file);
        let bytes = f.read(offset, len);
        if bytes.len() < len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        Ok(bytes.to_vec())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.power.tick()?;
        lock(&self.0.file).set_len(len);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.0.power.tick()?;
        lock(&self.0.file).sync();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.power.tick()?;
        lock(&self.0.file).write(offset, data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use redb::StorageBackend;

    use super::*;

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let disk = SimDisk::default();
        let b = disk.backend();
        b.write(0, b"synced").unwrap();
        b.sync_data(false).unwrap();
        b.write(0, b"SYNCED").unwrap();
        b.write(6, b" tail").unwrap();
        assert_eq!(b.read(0, 11).unwrap(), b"SYNCED tail");
        disk.power.crash_after(1);
        assert!(b.write(0, b"never").is_err());
        assert!(b.read(0, 1).is_err(), "nothing works after the power went");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(disk.power_cycle(Tear::DropAll, &mut rng), 2);
        disk.power.restore();
        let b = disk.backend();
        assert_eq!(b.len().unwrap(), 6);
        assert_eq!(b.read(0, 6).unwrap(), b"synced");
    }
}
