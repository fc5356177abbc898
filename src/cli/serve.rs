//! `frontdesk serve`: run until SIGTERM or SIGINT, then drain and exit 0.

use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::app::{App, Running};

pub fn serve(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let telemetry = crate::telemetry::init(&config.log, Some(runtime.handle()))?;
    let result = runtime.block_on(async move {
        let listener = bind(&config.server.listen).await?;
        let mut app = App::open(config)?;
        app.config_path = Some(config_path.to_path_buf());
        run_app(app, listener, |_| {}).await
    });
    // The runtime still runs: the last batch of spans goes out through it.
    telemetry.shutdown();
    // Everything was drained above; a blocking task still running (a hung file system, a
    // stuck library call) must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

/// Binds the listen address with a message that says what to do when it is taken.
pub(crate) async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("server.listen = {listen:?} is not an address like 127.0.0.1:8080: {e}"))?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (is another server using it? change server.listen)"))
}

/// Serves `app` on `listener`: prints `frontdesk listening on ADDR` as the first line of
/// stdout (tests and scripts read it), calls `started`, and returns after a stop signal
/// once everything drained.
pub(crate) async fn run_app(app: App, listener: tokio::net::TcpListener, started: impl FnOnce(&Running)) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    let running = crate::app::start_with(app, listener, shutdown.clone()).await?;
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
