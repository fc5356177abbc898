//! `App`: the handles every part shares (config, stores, metrics), and `start`, which
//! runs the HTTP server and the workers on a given listener until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::domain::rate::SendLimiter;
use crate::error::{Error, Result};
use crate::knowledge::Knowledge;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::store::Store;
use crate::whatsapp::graph::GraphClient;

/// Everything a handler or worker needs.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub queue: Queue,
    pub metrics: Metrics,
    /// Labelled counters: handoffs by trigger, failed sends by error code.
    pub labeled: crate::metrics::Labeled,
    /// Bearer token for the local control API (written to `data_dir/control.json`).
    pub control_token: Secret,
    /// The Graph API client (its token can be replaced live).
    pub graph: GraphClient,
    /// Per-number and per-recipient send limits, shared by all send workers.
    pub limiter: std::sync::Mutex<SendLimiter>,
    /// Set while sending is paused (e.g. the access token was refused).
    pub send_pause: SendPause,
    /// The config file this instance was started from (re-read to pick up a fixed token).
    pub config_path: Option<std::path::PathBuf>,
    /// A business number to check the token against while sending is paused.
    pub probe_number: std::sync::Mutex<Option<String>>,
    /// Set in demo mode: the simulator's business number and this server's address.
    pub demo: Option<DemoInfo>,
    /// The knowledge base (store + embedder) the engine and the search API use.
    pub knowledge: Knowledge,
    /// The model providers, with a circuit breaker each.
    pub models: crate::llm::Models,
    /// Latency histograms of the engine's reply stages.
    pub reply_stages: crate::metrics::ReplyStages,
    /// The router's classifier (examples loaded; centroids computed on first use).
    pub classifier: crate::engine::classifier::Classifier,
    /// Cancelled when the server starts to stop: event streams end so shutdown can drain.
    pub stopping: CancellationToken,
    /// Inbox login attempts per (email, client address), per address, per email, and
    /// current-password checks per user.
    pub login_limiter: std::sync::Mutex<crate::domain::auth::LoginLimiter>,
    /// The threads every password hash and verify runs on (bounded memory and CPU).
    pub hasher: crate::hashing::HashPool,
    /// Inbound media: the file store and the services' HTTP client.
    pub media: crate::media::MediaService,
    /// Conversations a reply worker is answering right now (one reply at a time each).
    pub replying: std::sync::Mutex<std::collections::HashSet<i64>>,
}

/// How long a login waits for a free hashing thread before it is told to retry.
const HASH_WAIT: Duration = Duration::from_secs(2);

/// What the demo routes need.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub phone_number_id: String,
    pub addr: SocketAddr,
    /// The in-process fake Graph API: the simulator's documents are served from it.
    pub graph: crate::http::fake_graph::FakeGraph,
}

/// Whether sending is paused, and why: a visible alert, never a silent drop.
#[derive(Debug, Default)]
pub struct SendPause {
    reason: std::sync::Mutex<Option<String>>,
}

impl SendPause {
    /// The reason sending is paused, or `None` when it runs.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("pause lock").clone()
    }
    /// Pauses sending; returns true if it was running.
    pub fn pause(&self, reason: String) -> bool {
        self.reason.lock().expect("pause lock").replace(reason).is_none()
    }
    /// Resumes sending; returns true if it was paused.
    pub fn resume(&self) -> bool {
        self.reason.lock().expect("pause lock").take().is_some()
    }
}

impl App {
    /// Opens both stores in the configured data directory; a damaged or missing journal
    /// is refused (`journal_guard`).
    pub fn open(config: Config) -> Result<App> {
        Self::open_with(config, crate::journal_guard::Policy::Refuse).map(|(app, _)| app)
    }

    /// As `open`, with a policy for a journal that cannot be used; returns what was done
    /// about it, if anything (`serve --discard-journal`).
    pub fn open_with(config: Config, journal: crate::journal_guard::Policy) -> Result<(App, Option<String>)> {
        if let Some(problems) = config.blocking_problems() {
            return Err(Error::Invalid(format!("the configuration has problems:\n{problems}")));
        }
        let store = Store::open(&config.sqlite_path())?;
        let (queue, journal_note) = crate::journal_guard::open(&config, &store, journal)?;
        let control_token = Secret::new(random_token());
        let graph = GraphClient::new(
            &config.whatsapp.graph_base_url,
            &config.whatsapp.api_version,
            config.whatsapp.access_token.clone(),
            Duration::from_millis(config.whatsapp.request_timeout_ms),
        );
        let limiter = std::sync::Mutex::new(SendLimiter::new(
            config.send.number_rate_per_s,
            config.send.pair_interval_ms,
            config.send.pair_burst,
        ));
        let embedder = crate::knowledge::embedder_from_config(&config.knowledge)?;
        let knowledge = Knowledge::new(store.clone(), embedder, config.knowledge.clone());
        let models = crate::llm::Models::from_config(&config.llm)?;
        let classifier = crate::engine::classifier::Classifier::from_config(&config.router)?;
        let send_pause = SendPause::default();
        if config.whatsapp.access_token.is_empty() {
            send_pause.pause("whatsapp.access_token is not set; replies wait until it is".into());
        }
        let config_data_dir = config.storage.data_dir.clone();
        let media = crate::media::MediaService::new(&config_data_dir, &config.extract);
        let app = App {
            config,
            store,
            queue,
            metrics: Metrics::default(),
            labeled: Default::default(),
            control_token,
            graph,
            limiter,
            send_pause,
            config_path: None,
            probe_number: std::sync::Mutex::new(None),
            demo: None,
            knowledge,
            replying: Default::default(),
            media,
            login_limiter: Default::default(),
            hasher: crate::hashing::HashPool::new(crate::hashing::HashPool::default_threads(), HASH_WAIT)?,
            stopping: CancellationToken::new(),
            classifier,
            models,
            reply_stages: Default::default(),
        };
        Ok((app, journal_note))
    }
}

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
    start_with(App::open(config)?, listener, shutdown).await
}

/// As `start`, with an already opened `App` (to set `config_path` or other handles).
pub async fn start_with(mut app: App, listener: TcpListener, shutdown: CancellationToken) -> Result<Running> {
    // Long-lived responses (the inbox's event streams) end when the server stops.
    app.stopping = shutdown.child_token();
    let app = Arc::new(app);
    let addr = listener.local_addr()?;
    let control = serde_json::json!({ "addr": addr.to_string(), "token": app.control_token.expose() });
    write_private(&app.config.control_file_path(), &control.to_string())?;
    match app.queue.recover_orphaned_leases(crate::workers::crash_limit).await? {
        0 => {}
        n => tracing::warn!(jobs = n, "recovered jobs held by a previous run that stopped abruptly"),
    }
    match crate::outbound::requeue_pending(&app).await? {
        0 => {}
        n => tracing::warn!(messages = n, "queued unsent ledger rows that had no send job"),
    }
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
    // The centroid classifier embeds its examples now rather than on the first message.
    if app.config.router.classifier == "centroid" {
        let a = app.clone();
        tokio::spawn(async move {
            if let Err(e) = a.classifier.centroids(&a.knowledge.embedder).await {
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
    // Awaited with the workers, so nothing holds the stores once the server stopped.
    workers.spawn(crate::workers::send::probe_while_paused(
        app.clone(),
        worker_stop.clone(),
    ));
    let router = crate::http::router(app.clone());
    let grace = Duration::from_millis(app.config.server.shutdown_grace_ms);
    let http_stop = shutdown.clone();
    let task_app = app.clone();
    let acme = &app.config.server.acme;
    let certificates = Arc::new(crate::http::tls::Certificates::default());
    let acme_dir = crate::acme::dir(&app.config.storage.data_dir);
    let mut saved_not_after = None;
    let tls = if acme.enabled() {
        match crate::acme::load_saved(&acme_dir, &certificates) {
            Ok(n) => saved_not_after = n,
            Err(e) => tracing::error!(error = %e, "the saved certificate is unusable; a new one is ordered"),
        }
        Some(crate::http::tls::resolving_server_config(certificates.clone())?)
    } else if app.config.server.tls_cert_file.as_os_str().is_empty() {
        None
    } else {
        Some(crate::http::tls::server_config(
            &app.config.server.tls_cert_file,
            &app.config.server.tls_key_file,
        )?)
    };
    // HTTP-01 answers come from a plain listener (port 80), bound now so a taken port
    // stops the start with a clear error.
    let http01 = if acme.enabled() && acme.challenge == "http-01" {
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
                let listener = crate::http::tls::TlsListener::new(listener, config, slots)
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
        tokio::spawn(crate::acme::keep_current(
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

/// A random 256-bit token as hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Writes `contents` to `path` readable by the owner only.
pub fn write_private(path: &std::path::Path, contents: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", rand::random::<u32>()));
    let failed = |e: std::io::Error| Error::unavailable(&format!("writing {}", path.display()), e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| crate::durable_fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(())
}
