//! A SQLite VFS on simulated storage: every file lives in memory as a `Volatile` (a write
//! is volatile until `xSync`), every I/O call ticks the machine's `Power`, and the WAL
//! index (`-shm`) is plain shared memory, gone after a power cycle as after a reboot.
//! Locks are real and shared by this process's connections, so the store's writer and
//! reader connections behave as they do on disk.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use rusqlite::ffi;

use super::power::{Power, SharedFile, Tear, lock};

#[derive(Default)]
struct Locks {
    shared: u32,
    reserved: Option<usize>,
    pending: Option<usize>,
    exclusive: Option<usize>,
}

#[derive(Default)]
struct Shm {
    regions: Vec<Box<[u8]>>,
    shared: [u32; 8],
    exclusive: [Option<usize>; 8],
    mappers: u32,
}

#[derive(Default)]
struct Node {
    data: SharedFile,
    locks: Mutex<Locks>,
    shm: Mutex<Shm>,
}

struct State {
    power: Power,
    files: Mutex<HashMap<String, Arc<Node>>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An open file, as SQLite allocates it (`szOsFile` bytes; `base` first).
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    node: *const Node,
    state: *const State,
    /// Set for files SQLite asked to delete on close.
    name: *mut String,
    level: c_int,
    shm_shared: u8,
    shm_excl: u8,
    shm_mapped: bool,
}

/// The VFS, registered under a name of its own while this value lives.
pub(crate) struct SimVfs {
    name: CString,
    state: Arc<State>,
    vfs: *mut ffi::sqlite3_vfs,
}

impl SimVfs {
    /// Registers a VFS whose files share `power`.
    pub(crate) fn new(power: &Power) -> SimVfs {
        let state = Arc::new(State {
            power: power.clone(),
            files: Mutex::default(),
        });
        let name = CString::new(format!("fd_sim_{:p}", Arc::as_ptr(&state))).unwrap();
        let vfs = Box::into_raw(Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: std::mem::size_of::<File>() as c_int,
            mxPathname: 512,
            pNext: std::ptr::null_mut(),
            zName: name.as_ptr(),
            pAppData: Arc::as_ptr(&state) as *mut c_void,
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: None,
            xDlError: None,
            xDlSym: None,
            xDlClose: None,
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_i64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: `vfs` and what it points to (name, state) live until `drop` unregisters it.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        assert_eq!(rc, ffi::SQLITE_OK, "registering the simulated VFS");
        SimVfs { name, state, vfs }
    }

    /// The name to open connections with.
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap()
    }

    /// Brings every file back after a power cut (no connection may be open); the WAL
    /// index is gone. Returns how many unsynced writes were lost.
    pub(crate) fn power_cycle(&self, tear: Tear, rng: &mut impl Rng) -> usize {
        let files = guard(&self.state.files);
        let mut lost = 0;
        for node in files.values() {
            lost += lock(&node.data).power_cycle(tear, rng);
            *guard(&node.shm) = Shm::default();
            *guard(&node.locks) = Locks::default();
        }
        lost
    }
}

impl Drop for SimVfs {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; no connection uses it any more (they are closed first).
        unsafe {
            ffi::sqlite3_vfs_unregister(self.vfs);
            drop(Box::from_raw(self.vfs));
        }
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// SAFETY (for every callback below): SQLite passes the `sqlite3_vfs` registered in `new`
/// (its `pAppData` is the live `State`) and files this VFS opened in `x_open`.
unsafe fn state<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a State {
    unsafe { &*((*vfs).pAppData as *const State) }
}

unsafe fn file<'a>(f: *mut ffi::sqlite3_file) -> &'a mut File {
    unsafe { &mut *(f as *mut File) }
}

unsafe fn node<'a>(f: &File) -> &'a Node {
    unsafe { &*f.node }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let st = state(vfs);
        (*f).pMethods = std::ptr::null();
        if st.power.tick().is_err() {
            return ffi::SQLITE_CANTOPEN;
        }
        let (n, name) = if z_name.is_null() {
            (Arc::new(Node::default()), None)
        } else {
            let name = CStr::from_ptr(z_name).to_string_lossy().into_owned();
            let mut files = guard(&st.files);
            let n = match files.get(&name) {
                Some(n) => n.clone(),
                None if flags & ffi::SQLITE_OPEN_CREATE != 0 => files.entry(name.clone()).or_default().clone(),
                None => return ffi::SQLITE_CANTOPEN,
            };
            (n, Some(name))
        };
        let delete = flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0;
        std::ptr::write(
            f as *mut File,
            File {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                node: Arc::into_raw(n),
                state: st,
                name: match name {
                    Some(name) if delete => Box::into_raw(Box::new(name)),
                    _ => std::ptr::null_mut(),
                },
                level: ffi::SQLITE_LOCK_NONE,
                shm_shared: 0,
                shm_excl: 0,
                shm_mapped: false,
            },
        );
        if !out_flags.is_null() {
            *out_flags = flags;
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, z_name: *const c_char, _sync_dir: c_int) -> c_int {
    unsafe {
        let st = state(vfs);
        if st.power.tick().is_err() {
            return ffi::SQLITE_IOERR_DELETE;
        }
        let name = CStr::from_ptr(z_name).to_string_lossy().into_owned();
        guard(&st.files).remove(&name);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    flags: c_int,
    res: *mut c_int,
) -> c_int {
    unsafe {
        let name = CStr::from_ptr(z_name).to_string_lossy().into_owned();
        let files = guard(&state(vfs).files);
        let found = files.get(&name);
        // As the unix VFS: an empty file does not "exist".
        *res = c_int::from(match flags {
            ffi::SQLITE_ACCESS_EXISTS => found.is_some_and(|n| lock(&n.data).len() > 0),
            _ => found.is_some(),
        });
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    n_out: c_int,
    z_out: *mut c_char,
) -> c_int {
    unsafe {
        let name = CStr::from_ptr(z_name).to_bytes_with_nul();
        if name.len() > n_out as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        std::ptr::copy_nonoverlapping(name.as_ptr() as *const c_char, z_out, name.len());
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_randomness(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    unsafe {
        let bytes = std::slice::from_raw_parts_mut(out as *mut u8, n as usize);
        rand::rng().fill(bytes);
        n
    }
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    std::thread::sleep(std::time::Duration::from_micros(micros as u64));
    micros
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    unsafe { *out = 2_440_587.5 + crate::domain::now_ms() as f64 / 86_400_000.0 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_current_time_i64(_vfs: *mut ffi::sqlite3_vfs, out: *mut ffi::sqlite3_int64) -> c_int {
    unsafe { *out = 210_866_760_000_000 + crate::domain::now_ms() };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(_vfs: *mut ffi::sqlite3_vfs, _n: c_int, _out: *mut c_char) -> c_int {
    0
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        x_unlock(f, ffi::SQLITE_LOCK_NONE);
        x_shm_unmap(f, 0);
        let fl = file(f);
        let n = Arc::from_raw(fl.node);
        if !fl.name.is_null() {
            let name = Box::from_raw(fl.name);
            guard(&(*fl.state).files).remove(name.as_str());
        }
        drop(n);
        fl.base.pMethods = std::ptr::null();
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_read(f: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, off: i64) -> c_int {
    unsafe {
        let fl = file(f);
        if (*fl.state).power.tick().is_err() {
            return ffi::SQLITE_IOERR_READ;
        }
        let out = std::slice::from_raw_parts_mut(buf as *mut u8, amt as usize);
        let data = lock(&node(fl).data);
        let got = data.read(off as u64, amt as usize);
        out[..got.len()].copy_from_slice(got);
        if got.len() < out.len() {
            out[got.len()..].fill(0);
            return ffi::SQLITE_IOERR_SHORT_READ;
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_write(f: *mut ffi::sqlite3_file, buf: *const c_void, amt: c_int, off: i64) -> c_int {
    unsafe {
        let fl = file(f);
        if (*fl.state).power.tick().is_err() {
            return ffi::SQLITE_IOERR_WRITE;
        }
        let data = std::slice::from_raw_parts(buf as *const u8, amt as usize);
        lock(&node(fl).data).write(off as u64, data);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        let fl = file(f);
        if (*fl.state).power.tick().is_err() {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        lock(&node(fl).data).set_len(size as u64);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    unsafe {
        let fl = file(f);
        if (*fl.state).power.tick().is_err() {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        lock(&node(fl).data).sync();
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    unsafe {
        let fl = file(f);
        if (*fl.state).power.tick().is_err() {
            return ffi::SQLITE_IOERR_FSTAT;
        }
        *size = lock(&node(fl).data).len() as i64;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        let fl = file(f);
        if fl.level >= level {
            return ffi::SQLITE_OK;
        }
        let me = f as usize;
        let other = |o: Option<usize>| o.is_some_and(|o| o != me);
        let mut l = guard(&node(fl).locks);
        match level {
            ffi::SQLITE_LOCK_SHARED => {
                if other(l.pending) || other(l.exclusive) {
                    return ffi::SQLITE_BUSY;
                }
                l.shared += 1;
            }
            ffi::SQLITE_LOCK_RESERVED => {
                if other(l.reserved) || other(l.exclusive) {
                    return ffi::SQLITE_BUSY;
                }
                l.reserved = Some(me);
            }
            _ => {
                if other(l.pending) || other(l.exclusive) {
                    return ffi::SQLITE_BUSY;
                }
                l.pending = Some(me);
                if l.shared > 1 {
                    fl.level = ffi::SQLITE_LOCK_PENDING;
                    return ffi::SQLITE_BUSY;
                }
                l.exclusive = Some(me);
            }
        }
        fl.level = level;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        let fl = file(f);
        if fl.level <= level {
            return ffi::SQLITE_OK;
        }
        let me = Some(f as usize);
        let mut l = guard(&node(fl).locks);
        if l.exclusive == me {
            l.exclusive = None;
        }
        if l.pending == me {
            l.pending = None;
        }
        if level < ffi::SQLITE_LOCK_RESERVED && l.reserved == me {
            l.reserved = None;
        }
        if level == ffi::SQLITE_LOCK_NONE {
            l.shared = l.shared.saturating_sub(1);
        }
        fl.level = level;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, res: *mut c_int) -> c_int {
    unsafe {
        let l = guard(&node(file(f)).locks);
        *res = c_int::from(l.reserved.is_some() || l.pending.is_some() || l.exclusive.is_some());
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_file_control(_f: *mut ffi::sqlite3_file, _op: c_int, _arg: *mut c_void) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_f: *mut ffi::sqlite3_file) -> c_int {
    512
}

unsafe extern "C" fn x_device_characteristics(_f: *mut ffi::sqlite3_file) -> c_int {
    0
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        let fl = file(f);
        let mut shm = guard(&node(fl).shm);
        if !fl.shm_mapped {
            fl.shm_mapped = true;
            shm.mappers += 1;
        }
        let region = region as usize;
        if region >= shm.regions.len() {
            if extend == 0 {
                *out = std::ptr::null_mut();
                return ffi::SQLITE_OK;
            }
            while shm.regions.len() <= region {
                shm.regions.push(vec![0u8; size as usize].into_boxed_slice());
            }
        }
        // The box's heap memory stays put while the region lives (until the last unmap).
        *out = shm.regions[region].as_mut_ptr() as *mut c_void;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_shm_lock(f: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    unsafe {
        let fl = file(f);
        let me = f as usize;
        let mut shm = guard(&node(fl).shm);
        let slots = offset as usize..(offset + n) as usize;
        let bit = |i: usize| 1u8 << i;
        if flags & ffi::SQLITE_SHM_UNLOCK != 0 {
            for i in slots {
                if fl.shm_shared & bit(i) != 0 {
                    shm.shared[i] -= 1;
                    fl.shm_shared &= !bit(i);
                }
                if fl.shm_excl & bit(i) != 0 {
                    shm.exclusive[i] = None;
                    fl.shm_excl &= !bit(i);
                }
            }
            return ffi::SQLITE_OK;
        }
        let exclusive = flags & ffi::SQLITE_SHM_EXCLUSIVE != 0;
        for i in slots.clone() {
            let theirs_shared = shm.shared[i] - u32::from(fl.shm_shared & bit(i) != 0);
            if shm.exclusive[i].is_some_and(|o| o != me) || (exclusive && theirs_shared > 0) {
                return ffi::SQLITE_BUSY;
            }
        }
        for i in slots {
            if exclusive {
                shm.exclusive[i] = Some(me);
                fl.shm_excl |= bit(i);
            } else if fl.shm_shared & bit(i) == 0 {
                shm.shared[i] += 1;
                fl.shm_shared |= bit(i);
            }
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_shm_barrier(_f: *mut ffi::sqlite3_file) {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe {
        let fl = file(f);
        if !fl.shm_mapped {
            return ffi::SQLITE_OK;
        }
        let me = f as usize;
        let mut shm = guard(&node(fl).shm);
        for i in 0..8 {
            if fl.shm_shared & (1 << i) != 0 {
                shm.shared[i] -= 1;
            }
            if shm.exclusive[i] == Some(me) {
                shm.exclusive[i] = None;
            }
        }
        fl.shm_shared = 0;
        fl.shm_excl = 0;
        fl.shm_mapped = false;
        shm.mappers -= 1;
        if shm.mappers == 0 && delete != 0 {
            shm.regions.clear();
        }
        ffi::SQLITE_OK
    }
}
