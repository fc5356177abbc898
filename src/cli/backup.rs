//! `frontdesk backup` and `frontdesk restore`. While the server runs it holds the journal
//! open, so a backup is taken by the server through the control API; otherwise the stores
//! are opened here. A restore verifies the backup before it touches the data dir.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::backup::Manifest;
use crate::error::Error;

pub fn backup(config_path: &Path, out: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    // The server may run elsewhere on disk: give it an absolute path.
    let out = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()?.join(out)
    };
    let store = crate::store::Store::open(&config.sqlite_path())?;
    // A damaged or missing journal is refused here too, never backed up as a new empty one.
    let manifest: Manifest = match crate::journal_guard::open(&config, &store, Default::default()) {
        Ok((queue, _)) => super::kb::runtime()?.block_on(crate::backup::snapshot(&store, &queue, &out))?,
        Err(Error::Conflict(_)) => {
            eprintln!("the server is running: it takes the backup…");
            serde_json::from_value(super::queue::control(
                &config,
                "POST",
                "/backup",
                Some(serde_json::json!({ "out": out })),
            )?)
            .context("the server's answer is not a backup manifest")?
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        print_manifest("backup written to", &out, &manifest);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(from: &Path, data_dir: &Path, verify_only: bool, force: bool) -> anyhow::Result<ExitCode> {
    if verify_only {
        let m = crate::backup::verify(from)?;
        print_manifest("backup verified:", from, &m);
        return Ok(ExitCode::SUCCESS);
    }
    let (m, kept) = crate::backup::restore(from, data_dir, force)?;
    print_manifest("restored into", data_dir, &m);
    for k in kept {
        println!("  kept the replaced file as {}", k.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_manifest(what: &str, dir: &Path, m: &Manifest) {
    println!(
        "{what} {} (taken {} ms after the epoch by frontdesk {}, in {:.1} s): {} messages in {} conversations, schema {}, {} journal jobs",
        dir.display(),
        m.created_at_ms,
        m.frontdesk_version,
        m.seconds,
        m.database.messages,
        m.database.conversations,
        m.database.schema_version,
        m.journal_jobs
    );
    for f in &m.files {
        println!("  {} {} bytes sha256 {}", f.name, f.bytes, f.sha256);
    }
    println!(
        "  media/ {} files, {} bytes (each named by its sha256)",
        m.media.files, m.media.bytes
    );
}
