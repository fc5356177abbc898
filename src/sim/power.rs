//! The power switch of a simulated machine and the volatile layer of one simulated file.
//! Every storage call ticks the switch; at a chosen call the power goes and that call and
//! every later one fail. A file keeps what the process sees (`live`), what a sync made
//! durable (`synced`) and the writes in between; `power_cycle` keeps the synced bytes plus
//! none, a prefix (the last write torn at a sector boundary) or any subset of the others:
//! a disk may reorder what was never synced.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

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
struct Switch {
    calls: AtomicU64,
    /// 0: no crash planned.
    crash_at: AtomicU64,
    crashed: AtomicBool,
}

/// The power switch; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Power(Arc<Switch>);

impl Power {
    /// Counts a storage call; fails it (and every later one) once the power is gone.
    pub(crate) fn tick(&self) -> io::Result<()> {
        let n = self.0.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.0.crash_at.load(Ordering::SeqCst);
        if at != 0 && n >= at {
            self.0.crashed.store(true, Ordering::SeqCst);
        }
        if self.0.crashed.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated power loss"));
        }
        Ok(())
    }

    /// Cuts the power at the `n`th storage call from now (1 = the next call).
    pub(crate) fn crash_after(&self, n: u64) {
        let now = self.0.calls.load(Ordering::SeqCst);
        self.0.crash_at.store(now + n.max(1), Ordering::SeqCst);
    }

    /// Storage calls so far.
    pub(crate) fn calls(&self) -> u64 {
        self.0.calls.load(Ordering::SeqCst)
    }

    /// The power is back (call after every file's `power_cycle`).
    pub(crate) fn restore(&self) {
        self.0.crash_at.store(0, Ordering::SeqCst);
        self.0.crashed.store(false, Ordering::SeqCst);
    }
}

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

/// One file's bytes: as the process sees them, and as they would survive a power cut.
#[derive(Debug, Default)]
pub(crate) struct Volatile {
    synced: Vec<u8>,
    live: Vec<u8>,
    pending: Vec<Pending>,
}

impl Volatile {
    pub(crate) fn len(&self) -> u64 {
        self.live.len() as u64
    }

    /// The bytes at `offset`, as many as there are up to `len`.
    pub(crate) fn read(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset as usize).min(self.live.len());
        let end = (offset as usize + len).min(self.live.len());
        &self.live[start..end]
    }

    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let p = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        p.apply(&mut self.live);
        self.pending.push(p);
    }

    pub(crate) fn set_len(&mut self, len: u64) {
        let p = Pending::SetLen(len);
        p.apply(&mut self.live);
        self.pending.push(p);
    }

    /// Makes everything written so far durable.
    pub(crate) fn sync(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            p.apply(&mut self.synced);
        }
    }

    /// The power went and came back: the file holds what survived, by `tear`. Returns
    /// how many unsynced writes were lost.
    pub(crate) fn power_cycle(&mut self, tear: Tear, rng: &mut impl Rng) -> usize {
        let pending = std::mem::take(&mut self.pending);
        let mut image = std::mem::take(&mut self.synced);
        let mut lost = 0;
        match tear {
            Tear::DropAll => lost = pending.len(),
            Tear::Prefix => {
                let keep = rng.random_range(0..=pending.len());
                for (i, p) in pending.iter().enumerate() {
                    if i < keep {
                        p.apply(&mut image);
                        continue;
                    }
                    if i == keep
                        && let Pending::Write { offset, data } = p
                    {
                        // The write in flight: only its first sectors reached the disk.
                        let sectors = data.len().div_ceil(512);
                        let cut = (rng.random_range(0..=sectors) * 512).min(data.len());
                        Pending::Write {
                            offset: *offset,
                            data: data[..cut].to_vec(),
                        }
                        .apply(&mut image);
                    }
                    lost += 1;
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
        self.live = image.clone();
        self.synced = image;
        lost
    }
}

/// A shared `Volatile`.
pub(crate) type SharedFile = Arc<Mutex<Volatile>>;

pub(crate) fn lock(f: &SharedFile) -> std::sync::MutexGuard<'_, Volatile> {
    f.lock().unwrap_or_else(|p| p.into_inner())
}
