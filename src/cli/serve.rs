//! `frontdesk serve`: run until SIGTERM or SIGINT, then drain and exit 0. A damaged,
//! empty or missing journal is refused unless `--discard-journal` (see `journal_guard`).

use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::server::Running;

pub fn serve(config_path: &Path, discard_journal: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let policy = if discard_journal {
        crate::journal_guard::Policy::Discard
    } else {
        crate::journal_guard::Policy::Refuse
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let telemetry = crate::telemetry::init(&config.log, config.redactor(), Some(runtime.handle()))?;
    let result = runtime.block_on(async move {
        let listener = bind(&config.server.listen).await?;
        let (mut app, journal_note) = App::open_with(config, policy)?;
        if let Some(note) = journal_note {
            // Said on stderr whatever the log level: the operator asked for it.
            eprintln!("{note}");
        }
        app.config_path = Some(config_path.to_path_buf());
        run_app(app, None, listener, |_| {}).await
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
pub(crate) async fn run_app(
    app: App,
    demo: Option<crate::http::demo::DemoInfo>,
    listener: tokio::net::TcpListener,
    started: impl FnOnce(&Running),
) -> anyhow::Result<ExitCode> {
    // Handlers first: a signal during start-up must not take the default action (for
    // SIGHUP, death).
    let signals = Signals::install()?;
    let shutdown = CancellationToken::new();
    let running = crate::server::start_with(app, demo, listener, shutdown.clone()).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "frontdesk listening on {}", running.addr);
        let _ = out.flush();
    }
    started(&running);
    tokio::spawn(async move {
        signals.wait_for_stop().await;
        tracing::info!("stop signal received; draining");
        shutdown.cancel();
    });
    running.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// The signals `serve` answers: SIGTERM and SIGINT drain and stop; SIGHUP (a logrotate
/// hook, a closed terminal, `systemctl reload`) is logged and ignored — logs go to
/// stderr, so there is no file to reopen, and live settings are read per message.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Returns at SIGTERM or SIGINT.
    async fn wait_for_stop(mut self) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => tracing::warn!(
                    "SIGHUP received and ignored: nothing to reload (logs go to stderr; live settings apply per message); still serving"
                ),
            }
        }
    }
}
