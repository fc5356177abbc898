//! The checks before a start (and `doctor`, `check-config`, `init`): the config's own
//! problems plus what only the machine and the other modules can say — the data and
//! backup directories can be created and written, the certificate files load, the
//! embedding model's files are there. Creating the data directory is what a first start
//! does, so it happens here and nowhere in `config`.

use std::path::Path;

use crate::config::{Config, Problem, Severity};

/// Every problem found; an empty list means the config is good to serve with.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut out = config.problems();
    let mut err = |key, message: String| {
        out.push(Problem {
            severity: Severity::Error,
            key,
            message,
        })
    };
    if let Err(e) = check_writable(&config.storage.data_dir) {
        err("storage.data_dir", e);
    }
    if !config.storage.backup_dir.as_os_str().is_empty()
        && let Err(e) = check_writable(&config.storage.backup_dir)
    {
        err("storage.backup_dir", e);
    }
    let (cert, key) = (&config.server.tls_cert_file, &config.server.tls_key_file);
    if !cert.as_os_str().is_empty()
        && !key.as_os_str().is_empty()
        && let Err(e) = crate::tls::server_config(cert, key)
    {
        err("server.tls_cert_file", e.to_string());
    }
    let kb = &config.knowledge;
    if kb.embedder == crate::config::EmbedderKind::Local
        && let Err(e) = crate::knowledge::embed::find_model_dir(kb.model_dir.as_deref())
    {
        err("knowledge.model_dir", e.to_string());
    }
    out
}

/// The error-level problems joined into one message, or `None` when there are none.
pub fn blocking_problems(config: &Config) -> Option<String> {
    let errs: Vec<String> = problems(config)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect();
    (!errs.is_empty()).then(|| errs.join("\n"))
}

/// Creates `dir` if needed and proves a file can be written in it.
fn check_writable(dir: &Path) -> Result<(), String> {
    crate::private_fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create {}: {e}; choose a directory this user can write",
            dir.display()
        )
    })?;
    let probe = dir.join(".frontdesk-write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| {
        format!(
            "{} is not writable: {e}; fix its permissions or choose another",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn an_unwritable_data_dir_and_missing_certificates_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.whatsapp.app_secret = Secret::new("s");
        c.whatsapp.verify_token = Secret::new("t");
        c.knowledge.embedder = crate::config::EmbedderKind::None;
        c.storage.data_dir = dir.path().join("data");
        assert!(blocking_problems(&c).is_none(), "{:?}", blocking_problems(&c));
        assert!(c.storage.data_dir.is_dir(), "a first start creates the data dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        c.storage.data_dir = file.join("data");
        c.server.tls_cert_file = dir.path().join("missing.pem");
        c.server.tls_key_file = dir.path().join("missing.key");
        let msg = blocking_problems(&c).unwrap();
        assert!(msg.contains("storage.data_dir"), "{msg}");
        assert!(msg.contains("server.tls_cert_file"), "{msg}");
        // The config on its own touches no file.
        let fresh = dir.path().join("untouched");
        c.storage.data_dir = fresh.clone();
        let _ = c.problems();
        assert!(!fresh.exists());
    }
}
