//! `frontdesk serve`: run until SIGTERM or SIGINT, then drain and exit 0.

use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub fn serve(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    super::init_logging(&config.log);
    run_until_signal(config)
}

/// Starts the server on the configured address and waits for a stop signal.
pub(crate) fn run_until_signal(config: Config) -> anyhow::Result<ExitCode> {
    run_with(config, |_| {})
}

/// As `run_until_signal`, calling `started` with the running server first.
pub(crate) fn run_with(config: Config, started: impl FnOnce(&crate::app::Running)) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let addr = config.listen_addr()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (is another server using it? change server.listen)"))?;
        let shutdown = CancellationToken::new();
        let running = crate::app::start(config, listener, shutdown.clone()).await?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "frontdesk listening on {}", running.addr);
            let _ = out.flush();
        }
        started(&running);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop signal received; draining");
            shutdown.cancel();
        });
        running.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
