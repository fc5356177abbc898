//! A simulated disk for the power-loss tests: a `redb::StorageBackend` over memory that
//! keeps, besides what the process sees, what has been synced. Every write since the last
//! `sync_data` is volatile. At a chosen backend call the power goes: that call and every
//! later one fail, and `power_cycle` builds what a restart would find — the synced bytes
//! plus some of the unsynced writes (none, a prefix with the last one torn at a sector,
//! or any subset: a disk may reorder what was never synced).

use std::io;
use std::sync::{Arc, Mutex};

use rand::Rng;

/// A write or a length change not yet synced.
#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Pending {
    fn apply(&self, to: &mut Vec<u8>) {
        match self {
            Pending::Write { offset, data } => {
                let (start, end) = (*offset as usize, *offset as usize + data.len());
                if to.len() < end {
                    to.resize(end, 0);
                }
                to[start..end].copy_from_slice(data);
            }
            Pending::SetLen(len) => to.resize(*len as usize, 0),
        }
    }
}

/// Which unsynced writes survive the power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tear {
    /// None of them.
    DropAll,
    /// The oldest few, the last of those cut at a random sector boundary.
    Prefix,
    /// Any of them, each with even odds (length changes are kept).
    Subset,
}

#[derive(Debug, Default)]
struct State {
    synced: Vec<u8>,
    live: Vec<u8>,
    pending: Vec<Pending>,
    calls: u64,
    crash_at: Option<u64>,
    crashed: bool,
}

/// The disk; clones share it. Each open of the database takes a `backend()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimDisk(Arc<Mutex<State>>);

impl SimDisk {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn backend(&self) -> SimBackend {
        SimBackend(self.clone())
    }

    /// Cuts the power at the `n`th backend call from now (1 = the next call).
    pub(crate) fn crash_after(&self, n: u64) {
        let mut s = self.lock();
        s.crash_at = Some(s.calls + n);
    }

    /// Backend calls so far.
    pub(crate) fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Cuts the power now (if it has not gone yet) and brings it back: the disk then
    /// holds what survived, by `tear`. Returns how many unsynced writes were lost.
    pub(crate) fn power_cycle(&self, tear: Tear, rng: &mut impl Rng) -> usize {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        let mut image = std::mem::take(&mut s.synced);
        let mut lost = 0;
        match tear {
            Tear::DropAll => lost = pending.len(),
            Tear::Prefix => {
                let keep = rng.random_range(0..=pending.len());
                for (i, p) in pending.iter().enumerate() {
                    if i < keep {
                        p.apply(&mut image);
                    } else if i == keep {
                        // The write in flight: only its first sectors reached the disk.
                        if let Pending::Write { offset, data } = p {
                            let sectors = data.len().div_ceil(512);
                            let cut = (rng.random_range(0..=sectors) * 512).min(data.len());
                            Pending::Write {
                                offset: *offset,
                                data: data[..cut].to_vec(),
                            }
                            .apply(&mut image);
                        }
                        lost += 1;
                    } else {
                        lost += 1;
                    }
                }
            }
            Tear::Subset => {
                for p in &pending {
                    if matches!(p, Pending::SetLen(_)) || rng.random_bool(0.5) {
                        p.apply(&mut image);
                    } else {
                        lost += 1;
                    }
                }
            }
        }
        s.live = image.clone();
        s.synced = image;
        s.crash_at = None;
        s.crashed = false;
        lost
    }
}

/// One open of the simulated disk.
#[derive(Debug)]
pub(crate) struct SimBackend(SimDisk);

impl SimBackend {
    /// Counts a call; fails it (and every later one) once the power is gone.
    fn tick(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        let mut s = self.0.lock();
        s.calls += 1;
        if s.crash_at.is_some_and(|at| s.calls >= at) {
            s.crashed = true;
        }
        if s.crashed {
            return Err(io::Error::other("simulated power loss"));
        }
        Ok(s)
    }
}

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.tick()?.live.len() as u64)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let s = self.tick()?;
        let (start, end) = (offset as usize, offset as usize + len);
        if end > s.live.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        Ok(s.live[start..end].to_vec())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.tick()?;
        s.live.resize(len as usize, 0);
        s.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        let mut s = self.tick()?;
        let pending = std::mem::take(&mut s.pending);
        for p in &pending {
            p.apply(&mut s.synced);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.tick()?;
        let p = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        p.apply(&mut s.live);
        s.pending.push(p);
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
        disk.crash_after(1);
        assert!(b.write(0, b"never").is_err());
        assert!(b.read(0, 1).is_err(), "nothing works after the power went");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(disk.power_cycle(Tear::DropAll, &mut rng), 2);
        let b = disk.backend();
        assert_eq!(b.len().unwrap(), 6);
        assert_eq!(b.read(0, 6).unwrap(), b"synced");
    }
}
