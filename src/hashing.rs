//! Password hashing (argon2id) and the threads it runs on. argon2 needs 19 MiB per hash;
//! unbounded, parallel anonymous logins could take the process's memory with them. So
//! every hash and verify of the server runs on a few dedicated threads (`HashPool`), each
//! reusing one memory buffer, behind a semaphore: at most `threads` hashes run at once,
//! at most `threads` × 19 MiB is ever held, and a caller that cannot get a thread within
//! a short wait is told the server is busy instead of queueing without bound.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// An argon2id hash (PHC string) of `password` with the default parameters, computed in
/// `memory` (grown to the size the parameters need and kept for the next call).
pub fn hash_in(memory: &mut Vec<Block>, password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = blocks_for(memory, &params);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        .map_err(|e| Error::internal("password hash", e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal("password salt", e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| Error::internal("password hash parameters", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| Error::internal("password hash output", e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash`, computed in `memory`.
pub fn verify_in(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(phc.algorithm), Params::try_from(&phc)) else {
        return false;
    };
    let Ok(version) = phc.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = blocks_for(memory, &params);
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
        .is_err()
    {
        return false;
    }
    use subtle::ConstantTimeEq;
    bool::from(out.ct_eq(expected.as_bytes()))
}

/// The blocks `params` needs, from `memory` (grown once; never shrunk).
fn blocks_for<'a>(memory: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// The message a caller gets when every hashing thread stays busy.
pub const BUSY: &str = "too many logins at once; try again in a few seconds";

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A few threads that hash and verify passwords, one at a time each.
pub struct HashPool {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    wait: Duration,
    threads: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("threads", &self.threads)
            .field("wait", &self.wait)
            .finish()
    }
}

impl HashPool {
    /// The number of hashing threads for this machine: its cores, at least 2, at most 4
    /// (4 × 19 MiB is the most logins can ever hold).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4)
    }

    /// Starts `threads` hashing threads; a caller waits at most `wait` for one. The
    /// threads end when the pool is dropped.
    pub fn new(threads: usize, wait: Duration) -> Result<HashPool> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ()));
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(()) => return,
                        }
                    }
                })
                .map_err(|e| Error::internal("starting the password hashing threads", e))?;
        }
        Ok(HashPool {
            permits: Arc::new(Semaphore::new(threads)),
            jobs: tx,
            wait,
            threads,
        })
    }

    /// Runs `f` on a hashing thread, or answers `Unavailable` (`BUSY`) when none is free
    /// within the wait. The slot is held until `f` has run, even if the caller gives up.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Result<T> {
        let permit: OwnedSemaphorePermit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err(Error::Unavailable(BUSY.into())),
            };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(f(memory));
            drop(permit);
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal("the password hashing threads stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("a password hashing thread failed".into()))
    }

    /// An argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |m| hash_in(m, &password)).await?
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.run(move |m| verify_in(m, &password, &hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_match_the_standard_encoding_both_ways() {
        let mut m = Vec::new();
        let ours = hash_in(&mut m, "correct horse battery").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok(),
            "the library accepts ours"
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(
            verify_in(&mut m, "correct horse battery", &theirs),
            "we accept the library's"
        );
        assert!(!verify_in(&mut m, "correct horse batterY", &theirs));
        assert!(!verify_in(&mut m, "x", "not a hash"));
        assert_eq!(m.len(), Params::default().block_count(), "one buffer, reused");
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_instead_of_queueing() {
        let pool = Arc::new(HashPool::new(1, Duration::from_millis(10)).unwrap());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let held = tokio::spawn(async move { p.run(move |_| wait.recv().ok()).await });
        // The one thread is taken until `release`: another caller is refused.
        let mut refused = false;
        for _ in 0..1000 {
            match pool.verify("x".into(), "y".into()).await {
                Err(Error::Unavailable(m)) => {
                    refused = m == BUSY;
                    break;
                }
                _ => tokio::task::yield_now().await,
            }
        }
        assert!(refused, "a second caller is refused while the only thread is busy");
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert!(!pool.verify("x".into(), "y".into()).await.unwrap(), "free again");
    }
}
