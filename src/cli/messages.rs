//! `frontdesk messages list`: stored messages, read straight from SQLite (WAL lets this
//! run beside a live server).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::store::{Store, list_messages};

pub fn list(config_path: &Path, json: bool, limit: Option<usize>) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let path = config.sqlite_path();
    if !path.exists() {
        anyhow::bail!(
            "no database at {} yet; start the server once with `frontdesk serve`",
            path.display()
        );
    }
    let store = Store::open(&path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0i64;
    let mut printed = 0usize;
    let limit = limit.unwrap_or(usize::MAX);
    if !json {
        writeln!(
            out,
            "{:<28} {:>5} {:<3} {:<15} {:<12} {:<10} text",
            "id", "conv", "dir", "from", "type", "status"
        )?;
    }
    loop {
        let page = store.call_blocking(|c| list_messages(c, after, 1000.min(limit - printed)))?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if json {
                serde_json::to_writer(&mut out, row)?;
                writeln!(out)?;
            } else {
                let text: String = row.text.chars().take(60).collect::<String>().replace('\n', " ");
                writeln!(
                    out,
                    "{:<28} {:>5} {:<3} {:<15} {:<12} {:<10} {}",
                    row.id, row.conversation, row.direction, row.from, row.kind, row.status, text
                )?;
            }
        }
        printed += page.len();
        after = page.last().map_or(after, |r| r.row_id);
        if printed >= limit {
            break;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
