//! `frontdesk init` (write a starter config; `--force` keeps the old one as a .bak file)
//! and `frontdesk check-config`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Severity;

/// The commented starter config; `{VERIFY_TOKEN}` and `{DATA_DIR}` are filled in.
const TEMPLATE: &str = include_str!("../../packaging/config.example.toml");

pub fn init(config_path: &Path, data_dir: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if config_path.exists() && !force {
        anyhow::bail!(
            "{} already exists; pass --force to overwrite it (the old one is kept as a .bak file)",
            config_path.display()
        );
    }
    let kept = if config_path.exists() {
        Some(keep_old(config_path)?)
    } else {
        None
    };
    crate::private_fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    let text = render_config(&data_dir, &crate::config::random_token(), "", "127.0.0.1:8080");
    if let Some(parent) = config_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::private_fs::replace(config_path, text.as_bytes()).map_err(|e| crate::Error::writing(config_path, e))?;
    println!("wrote {} (data dir {})", config_path.display(), data_dir.display());
    if let Some(kept) = kept {
        println!(
            "kept the old config as {}: it has the old verify token and secrets; the new verify token must be \
             entered in the Meta App Dashboard, or copy the old values over",
            kept.display()
        );
    }
    println!("next: set whatsapp.app_secret and whatsapp.access_token, then run");
    println!("  frontdesk check-config --config {}", config_path.display());
    Ok(ExitCode::SUCCESS)
}

/// Copies the config about to be overwritten to `FILE.bak-<unix seconds>` (owner-only:
/// it holds secrets); returns that path.
fn keep_old(config_path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {} to keep a copy", config_path.display()))?;
    let secs = crate::domain::now_ms() / 1000;
    let mut kept = std::path::PathBuf::from(format!("{}.bak-{secs}", config_path.display()));
    let mut n = 1;
    while kept.exists() {
        kept = std::path::PathBuf::from(format!("{}.bak-{secs}-{n}", config_path.display()));
        n += 1;
    }
    crate::private_fs::replace(&kept, text.as_bytes())
        .with_context(|| format!("cannot keep a copy as {}", kept.display()))?;
    Ok(kept)
}

/// The starter config with the given values.
pub(crate) fn render_config(data_dir: &Path, verify_token: &str, app_secret: &str, listen: &str) -> String {
    TEMPLATE
        .replace("{VERIFY_TOKEN}", verify_token)
        .replace("{APP_SECRET}", app_secret)
        .replace("{LISTEN}", listen)
        .replace("{DATA_DIR}", &data_dir.display().to_string().replace('\\', "\\\\"))
}

pub fn check_config(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    // Secret fields print as `***`; passwords inside URLs are blanked by the redactor.
    print!("{}", config.redactor().redact(&config.to_redacted_toml()));
    let problems = crate::preflight::problems(&config);
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.iter().any(|p| p.severity == Severity::Error) {
        eprintln!("configuration has errors; fix them and run check-config again");
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("configuration OK");
    Ok(ExitCode::SUCCESS)
}
