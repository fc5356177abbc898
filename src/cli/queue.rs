//! `frontdesk queue stats|dead|retry`. The journal can be open in one process only, so
//! when the server runs these go through its local control API (address and token from
//! the owner-only control.json it writes in the data dir); otherwise they open the file directly.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::QueueCommand;
use crate::config::Config;
use crate::error::Error;
use crate::queue::{DeadJob, Queue, QueueStats};

pub fn run(command: QueueCommand) -> anyhow::Result<ExitCode> {
    match command {
        QueueCommand::Stats { config, json } => {
            let config = super::load_config(&config.config)?;
            let stats: QueueStats = match with_queue(&config, |q| q.stats())? {
                Some(s) => s,
                None => serde_json::from_value(control(&config, "GET", "/queue/stats", None)?)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("{:<16} {:>8} {:>8} {:>16}", "queue", "waiting", "due", "oldest age (s)");
                for q in &stats.queues {
                    println!(
                        "{:<16} {:>8} {:>8} {:>16.1}",
                        q.queue,
                        q.ready,
                        q.due,
                        q.oldest_ready_age_ms as f64 / 1000.0
                    );
                }
                println!("held by workers: {}", stats.leased);
                println!("dead letters:    {}", stats.dead);
                println!("dedupe keys:     {}", stats.dedupe_keys);
            }
        }
        QueueCommand::Dead { config, json } => {
            let config = super::load_config(&config.config)?;
            let dead: Vec<DeadJob> = match with_queue(&config, |q| q.dead(10_000))? {
                Some(d) => d,
                None => serde_json::from_value(control(&config, "GET", "/queue/dead", None)?)?,
            };
            for d in &dead {
                if json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    println!(
                        "{:>8}  {:<16} attempts={:<3} {}",
                        d.id,
                        d.queue,
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            if dead.is_empty() && !json {
                println!("no dead jobs");
            }
        }
        QueueCommand::Retry { id, config } => {
            let config = super::load_config(&config.config)?;
            let direct = with_queue(&config, |q| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(q.retry_dead(id))
            })?;
            if direct.is_none() {
                control(&config, "POST", &format!("/queue/retry/{id}"), None)?;
            }
            println!("job {id} is back in its queue");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` on the journal opened directly, or returns `None` when a server holds it.
fn with_queue<T>(config: &Config, f: impl FnOnce(&Queue) -> crate::error::Result<T>) -> anyhow::Result<Option<T>> {
    let path = config.queue_path();
    if !path.exists() {
        let db = config.sqlite_path();
        if db.exists() && matches!(crate::store::journal_marker::recorded_in(&db), Ok(Some(_))) {
            use crate::queue::damage::{Damage, refusal};
            return Err(refusal(&path, &Damage::Missing).into());
        }
        anyhow::bail!(
            "no queue journal at {} yet; start the server once with `frontdesk serve`",
            path.display()
        );
    }
    match Queue::open(&path, &config.queue) {
        Ok(q) => Ok(Some(f(&q)?)),
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Calls the running server's control API (with a JSON body, if given).
pub(super) fn control(config: &Config, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let file = config.control_file_path();
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "the journal is in use but {} is unreadable; run this as the server's user",
            file.display()
        )
    })?;
    let control: Value = serde_json::from_str(&text).with_context(|| format!("{} is damaged", file.display()))?;
    let token = control["token"].as_str().unwrap_or_default().to_string();
    let addr: std::net::SocketAddr = control["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("{} has no server address", file.display()))?;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let url = format!("http://{host}/api/control{path}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = match method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        };
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .bearer_auth(token.trim())
            .timeout(std::time::Duration::from_secs(if body.is_some() { 3_600 } else { 10 }))
            .send()
            .await
            .with_context(|| format!("the journal is in use, but the server at {host} did not answer"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body.get("error").and_then(Value::as_str).unwrap_or("no detail");
            anyhow::bail!("server answered {status}: {msg}");
        }
        Ok(body)
    })
}
