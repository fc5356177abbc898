//! The running server: opens the `App`, recovers what a previous run left, and serves it
//! on a listener (HTTP, TLS/ACME) with the workers until shutdown. The start-up wiring
//! lives here, above everything it wires, so the modules below never import it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::demo::DemoInfo;

/// A running server: its address and the switch that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    /// Starts a graceful shutdown and waits for it.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after `stop` or the shutdown token).
    pub async fn wait(self) -> Result<()> {
        self.task.await.map_err(|e| Error::internal("server task", e))?
    }

    /// The token that stops this server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Opens the stores and serves on `listener` until `shutdown` is cancelled: the HTTP
/// server drains in-flight requests, workers finish their batch, then it returns.
pub async fn start(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Result<Running> {
    start_with(App::open(config)?, None, listener, shutdown).await
}

/// As `start`, with an already opened `App` (to set `config_path` or other handles), and
/// the simulator's routes in demo mode.
pub async fn start_with(
    mut app: App,
    demo: Option<DemoInfo>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<Running> {
    // Long-lived responses (the inbox's event streams) end when the server stops.
    app.stopping = shutdown.child_token();
    let app = Arc::new(app);
    let addr = listener.local_addr()?;
    let control = serde_json::json!({ "addr": addr.to_string(), "token": app.control_token.expose() });
    let control_file = app.config.control_file_path();
    crate::private_fs::replace(&control_file, control.to_string().as_bytes())
        .map_err(|e| Error::writing(&control_file, e))?;
    match app.queue.recover_orphaned_leases(crate::workers::crash_limit).await? {
        0 => {}
        n => tracing::warn!(jobs = n, "recovered jobs held by a previous run that stopped abruptly"),
    }
    match app.outbound.requeue_pending().await? {
        0 => {}
        n => tracing::warn!(messages = n, "queued unsent ledger rows that had no send job"),
    }
    crate::workers::hooks::sync_endpoints(&app).await?;
    let mut workers = JoinSet::new();
    let worker_stop = CancellationToken::new();
    // A changed embedding model re-embeds in the background; BM25 serves meanwhile. Each
    // batch commits on its own, so stopping midway is safe (the next start continues).
    let kb = app.knowledge.clone();
    tokio::spawn(async move {
        match kb
            .prepare(&|done, total| tracing::info!(done, total, "re-embedding the knowledge base"))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, model = %kb.embedder.model_id(), "knowledge base re-embedded"),
            Err(e) => {
                tracing::error!(error = %e, "re-embedding the knowledge base failed; vector search is incomplete")
            }
        }
    });
    // The centroid and kNN classifiers embed their examples now rather than on the first message.
    if app.config.router.classifier.uses_embeddings() {
        let a = app.clone();
        tokio::spawn(async move {
            if let Err(e) = a.classifier.fitted(&a.knowledge.embedder).await {
                tracing::error!(error = %e, "embedding the routing examples failed; messages route without the classifier");
            }
        });
    }
    for i in 0..app.config.workers.ingest {
        workers.spawn(crate::workers::ingest::run(app.clone(), i, worker_stop.clone()));
    }
    for i in 0..app.config.workers.send {
        workers.spawn(crate::workers::send::run(app.clone(), i, worker_stop.clone()));
    }
    for i in 0..app.config.workers.media {
        workers.spawn(crate::workers::media::run(app.clone(), i, worker_stop.clone()));
    }
    for i in 0..app.config.workers.reply {
        workers.spawn(crate::workers::reply::run(app.clone(), i, worker_stop.clone()));
    }
    workers.spawn(crate::workers::maintenance::run(app.clone(), worker_stop.clone()));
    workers.spawn(crate::workers::hooks::run(app.clone(), worker_stop.clone()));
    // Awaited with the workers, so nothing holds the stores once the server stopped.
    workers.spawn(crate::workers::send::probe_while_paused(
        app.clone(),
        worker_stop.clone(),
    ));
    let router = crate::http::router(app.clone(), demo);
    let grace = Duration::from_millis(app.config.server.shutdown_grace_ms);
    let http_stop = shutdown.clone();
    let task_app = app.clone();
    let acme = &app.config.server.acme;
    let certificates = Arc::new(crate::tls::Certificates::default());
    let acme_dir = crate::tls::acme::dir(&app.config.storage.data_dir);
    let mut saved_not_after = None;
    let tls = if acme.enabled() {
        match crate::tls::acme::load_saved(&acme_dir, &certificates) {
            Ok(n) => saved_not_after = n,
            Err(e) => tracing::error!(error = %e, "the saved certificate is unusable; a new one is ordered"),
        }
        Some(crate::tls::resolving_server_config(certificates.clone())?)
    } else if app.config.server.tls_cert_file.as_os_str().is_empty() {
        None
    } else {
        Some(crate::tls::server_config(
            &app.config.server.tls_cert_file,
            &app.config.server.tls_key_file,
        )?)
    };
    // HTTP-01 answers come from a plain listener (port 80), bound now so a taken port
    // stops the start with a clear error.
    let http01 = if acme.enabled() && acme.challenge == crate::config::AcmeChallenge::Http01 {
        let l = TcpListener::bind(&acme.http_listen)
            .await
            .map_err(|e| Error::unavailable(&format!("binding server.acme.http_listen {}", acme.http_listen), e))?;
        Some(l)
    } else {
        None
    };
    // Connections served at once, over every listener of this server.
    let slots = Arc::new(tokio::sync::Semaphore::new(app.config.server.max_connections));
    let header_timeout = Duration::from_millis(app.config.server.header_read_timeout_ms);
    let http01_slots = slots.clone();
    let task = tokio::spawn(async move {
        let stop = async move { http_stop.cancelled().await };
        let served = match tls {
            Some(config) => {
                let listener = crate::tls::TlsListener::new(listener, config, slots)
                    .map_err(|e| Error::unavailable("TLS listener", e))?;
                crate::http::serve::serve(listener, router, header_timeout, stop).await;
                Ok(())
            }
            None => {
                crate::http::serve::serve(
                    crate::http::serve::Plain { listener, slots },
                    router,
                    header_timeout,
                    stop,
                )
                .await;
                Ok(())
            }
        };
        // Requests are drained; now stop the workers and let them finish their batch.
        worker_stop.cancel();
        if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "workers did not stop within the grace period; their leases will expire and the jobs re-run"
            );
            workers.abort_all();
        }
        let _ = std::fs::remove_file(task_app.config.control_file_path());
        tracing::info!("frontdesk stopped");
        served
    });
    if acme.enabled() {
        if let Some(l) = http01 {
            let plain = crate::http::serve::Plain {
                listener: l,
                slots: http01_slots,
            };
            tokio::spawn(crate::http::acme_challenge::serve(
                plain,
                header_timeout,
                certificates.clone(),
                app.config.server.public_url.clone(),
                shutdown.child_token(),
            ));
        }
        tokio::spawn(crate::tls::acme::keep_current(
            acme.clone(),
            acme_dir,
            certificates,
            saved_not_after,
            shutdown.child_token(),
        ));
    }
    tracing::info!(%addr, "frontdesk listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        task,
    })
}
