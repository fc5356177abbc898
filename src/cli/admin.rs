//! `frontdesk settings list|set|unset`, `conversation handback`, `contact erase` and
//! `user add|list`: the live switches, the privacy command and inbox accounts. They write to SQLite directly (WAL lets them run beside a
//! live server, which reads settings for every message, so a change applies to the next
//! one) and leave an audit entry.

use std::path::Path;
use std::process::ExitCode;

use crate::store::Store;

fn open(config_path: &Path) -> anyhow::Result<(crate::config::Config, Store)> {
    let config = super::load_config(config_path)?;
    crate::private_fs::create_dir_all(&config.storage.data_dir)?;
    let store = Store::open(&config.sqlite_path())?;
    Ok((config, store))
}

/// Who is acting, for the audit log.
fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

pub fn settings_list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (config, store) = open(config_path)?;
    let effective = crate::settings::current_blocking(&store, &config)?;
    if json {
        for row in crate::settings::to_json(&effective).as_array().into_iter().flatten() {
            println!("{row}");
        }
    } else {
        for (k, v, s) in effective.list() {
            let source = match s {
                crate::domain::settings::Source::Config => "config",
                crate::domain::settings::Source::Live => "live",
            };
            println!("{k:<22} {source:<6} {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn settings_set(config_path: &Path, key: &str, value: &str) -> anyhow::Result<ExitCode> {
    let (config, store) = open(config_path)?;
    let (k, v, who, providers) = (key.to_string(), value.to_string(), actor(), config.llm.provider_names());
    let stored = store.call_blocking(move |c| crate::store::settings::set_checked(c, &k, &v, &who, &providers))?;
    println!("{key} = {stored} (applies to the next message)");
    Ok(ExitCode::SUCCESS)
}

pub fn settings_unset(config_path: &Path, key: &str) -> anyhow::Result<ExitCode> {
    let (_, store) = open(config_path)?;
    let (k, who) = (key.to_string(), actor());
    if store.call_blocking(move |c| crate::store::settings::unset_checked(c, &k, &who))? {
        println!("{key}: back to the config file's value");
    } else {
        println!("{key} had no live value; the config file's value applies");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn contact_erase(config_path: &Path, wa_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    if wa_id.is_empty() || !wa_id.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("{wa_id:?} is not a WhatsApp id: digits only, with country code, e.g. 31612345678");
    }
    let (_, store) = open(config_path)?;
    let (w, who) = (wa_id.to_string(), actor());
    // One transaction: all of it goes, or none.
    let erased =
        store.transaction_blocking(move |c| crate::store::contacts::erase(c, &w, &who, crate::domain::now_ms()))?;
    let Some(e) = erased else {
        anyhow::bail!("no contact {wa_id}; nothing erased");
    };
    // Their stored media files go now, unless another message uses the same file.
    let config = super::load_config(config_path)?;
    let files = crate::media::MediaFiles::new(&config.storage.data_dir);
    for sha in &e.media_files {
        let s = sha.clone();
        if !store.call_blocking(move |c| crate::store::media::file_in_use(c, &s))? {
            files.delete(sha)?;
        }
    }
    if json {
        println!("{}", serde_json::to_string(&e)?);
    } else {
        println!(
            "erased contact {wa_id}: {} conversation(s), {} message(s), {} media file(s), {} outbound, {} status record(s), {} handoff(s), {} trace(s), {} summar(y/ies); audit subject {}",
            e.conversations,
            e.messages,
            e.media,
            e.outbound,
            e.statuses,
            e.handoffs,
            e.traces,
            e.summaries,
            crate::store::contacts::subject_hash(wa_id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn handback(config_path: &Path, id: i64, note: &str) -> anyhow::Result<ExitCode> {
    let (_, store) = open(config_path)?;
    let (who, n) = (actor(), note.to_string());
    let changed = store
        .transaction_blocking(move |c| crate::store::handoffs::hand_back(c, id, &who, &n, crate::domain::now_ms()))?;
    if !changed {
        anyhow::bail!("conversation {id} is not owned by a person (or does not exist); nothing to hand back");
    }
    println!("conversation {id} is the bot's again");
    Ok(ExitCode::SUCCESS)
}

pub fn user_add(config_path: &Path, email: &str, role: &str, password_stdin: bool) -> anyhow::Result<ExitCode> {
    let role =
        crate::domain::auth::Role::parse(role).ok_or_else(|| anyhow::anyhow!("--role {role:?}: use agent or admin"))?;
    let (generated, password) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        (false, line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        (true, crate::accounts::generate_password())
    };
    let (_, store) = open(config_path)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(crate::accounts::add_user(
        &store,
        email,
        role,
        &password,
        generated,
        &actor(),
    ))?;
    if generated {
        println!(
            "added {} {email}; one-time password (shown once; they choose their own at first login):\n{password}",
            role.as_str()
        );
    } else {
        println!("added {} {email}", role.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn user_list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = open(config_path)?;
    let users = store.call_blocking(|c| crate::store::users::list(c))?;
    for u in &users {
        if json {
            println!("{}", serde_json::to_string(u)?);
        } else {
            println!(
                "{:<6} {}{}",
                u.role.as_str(),
                u.email,
                if u.must_change_password {
                    "  (has not chosen a password yet)"
                } else {
                    ""
                }
            );
        }
    }
    if users.is_empty() && !json {
        println!("no users; add one with `frontdesk user add EMAIL --role admin`");
    }
    Ok(ExitCode::SUCCESS)
}
