//! The journal (`queue.redb`) is opened only as it is: a damaged, empty or missing
//! journal gets the same treatment as a damaged `frontdesk.db` — a refusal naming the
//! file, what is at risk and the way out — and is never re-created empty by itself.
//! The database records when the data dir got its journal (`store::journal_marker`), so
//! a journal that disappeared is told apart from a first start. `--discard-journal`
//! is the explicit way out: the file is moved aside (kept), an empty journal started,
//! and what was dropped is said.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::queue::damage::{self, Damage, FileState};
use crate::store::Store;

/// What to do with a journal that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Refuse to start (the default).
    #[default]
    Refuse,
    /// Move it aside and start with an empty journal (`serve --discard-journal`).
    Discard,
}

/// Opens the data dir's journal under `policy`. Returns the queue and, when the policy
/// is `Discard`, what was done (for the operator).
pub fn open(config: &Config, store: &Store, policy: Policy) -> Result<(Queue, Option<String>)> {
    let path = config.queue_path();
    let recorded = store.call_blocking(|c| crate::store::journal_marker::recorded(c))?;
    let damage = match damage::file_state(&path)? {
        FileState::Missing if recorded.is_some() => Some(Damage::Missing),
        FileState::Empty => Some(Damage::Empty),
        FileState::Missing | FileState::Present => None,
    };
    if let Some(d) = damage {
        return match policy {
            Policy::Refuse => Err(damage::refusal(&path, &d)),
            Policy::Discard => discard(config, store, &path, &d),
        };
    }
    match Queue::open(&path, &config.queue) {
        Ok(queue) => {
            if recorded.is_none() {
                store.call_blocking(|c| crate::store::journal_marker::record(c, crate::domain::now_ms()))?;
            }
            let note = (policy == Policy::Discard).then(|| {
                format!(
                    "--discard-journal: the journal {} opened fine, so nothing was discarded",
                    path.display()
                )
            });
            Ok((queue, note))
        }
        // `Invalid` is a damaged file (see `queue::damage::open_database`).
        Err(Error::Invalid(msg)) if policy == Policy::Discard => {
            let what = msg
                .split(damage::AT_RISK)
                .next()
                .unwrap_or(&msg)
                .trim_end_matches([' ', '.']);
            let detail = what.split("damaged (").nth(1).map_or(what, |d| d.trim_end_matches(')'));
            discard(config, store, &path, &Damage::Unreadable(detail.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// Moves the journal aside (when there is a file), starts an empty one and records it.
fn discard(config: &Config, store: &Store, path: &Path, damage: &Damage) -> Result<(Queue, Option<String>)> {
    let now = crate::domain::now_ms();
    let kept: Option<PathBuf> = if path.exists() {
        let aside = PathBuf::from(format!("{}.damaged-{now}", path.display()));
        crate::durable_fs::rename(path, &aside)
            .map_err(|e| Error::unavailable(&format!("moving {} aside", path.display()), e))?;
        Some(aside)
    } else {
        None
    };
    let queue = Queue::open(path, &config.queue)?;
    store.call_blocking(|c| crate::store::journal_marker::record(c, now))?;
    let was = damage::describe(path, damage);
    let kept = match kept {
        Some(k) => format!("the old file is kept as {}", k.display()),
        None => "there was no file to keep".into(),
    };
    Ok((
        queue,
        Some(format!(
            "--discard-journal: {was}. Started with an empty journal; {kept}. Dropped with it: webhooks \
             acknowledged but not yet stored, waiting replies, sends and media jobs, dead letters, and the \
             dedupe keys (a message Meta delivers again is still stored once: messages are unique by id)"
        )),
    ))
}
