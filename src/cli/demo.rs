//! `frontdesk demo`: a self-contained instance with generated secrets and a local data
//! dir, no API keys. It posts a signed sample webhook through the real path on start so
//! there is something to look at, and prints what to open.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::whatsapp::signature;

pub fn demo(data_dir: &Path, listen: &str) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let config_path = data_dir.join("config.toml");
    if !config_path.exists() {
        let text = super::init::render_config(&data_dir, &crate::app::random_token(), &crate::app::random_token(), listen);
        crate::app::write_private(&config_path, &text)?;
    }
    let mut config = Config::load(Some(&config_path))?;
    config.server.listen = listen.to_string();
    super::init_logging(&config.log);
    let secret = config.whatsapp.app_secret.clone();
    let config_shown = config_path.display().to_string();
    super::serve::run_with(config, move |running| {
        let base = format!("http://{}", running.addr);
        println!();
        println!("frontdesk demo is running at {base}");
        println!("  webhook:   {base}/webhook  (signed with the app secret in {config_shown})");
        println!("  health:    {base}/readyz   metrics: {base}/metrics");
        println!("  messages:  frontdesk messages list --config {config_shown}");
        println!("Stop with Ctrl-C.");
        let url = format!("{base}/webhook");
        tokio::spawn(async move {
            let body = sample_webhook();
            let sig = signature::sign(secret.expose().as_bytes(), body.as_bytes());
            let sent = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) => tracing::info!(status = %r.status(), "demo: posted a signed sample webhook"),
                Err(e) => tracing::warn!(error = %e, "demo: could not post the sample webhook"),
            }
        });
    })
}

fn sample_webhook() -> String {
    let now = crate::domain::now_ms() / 1000;
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "DEMO-WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": "demo-number" },
            "contacts": [{ "profile": { "name": "Demo Customer" }, "wa_id": "31600000001" }],
            "messages": [{ "from": "31600000001", "id": format!("wamid.demo-{now}"), "timestamp": now.to_string(),
                           "type": "text", "text": { "body": "Hi! Are you open on Sunday?" } }]
        }}]}]
    })
    .to_string()
}
