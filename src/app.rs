//! `App`: the handles every part shares (config, stores, queue, services, metrics, the
//! inbox's presence board). It is composed here and started by `server`, which wires it
//! to HTTP and the workers.

use std::time::Duration;

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
    /// The one way to send (ledger row + send job).
    pub outbound: crate::outbound::Outbound,
    /// Conversations a reply worker is answering right now (one reply at a time each).
    pub replying: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Who has which conversation open and who is typing in it (the inbox's collision
    /// warning): memory only, bounded, entries expire without heartbeats.
    pub presence: std::sync::Mutex<crate::domain::presence::Board>,
}

impl App {
    /// The handles the conversation engine uses.
    pub fn engine(&self) -> crate::engine::Deps<'_> {
        crate::engine::Deps {
            config: &self.config,
            store: &self.store,
            queue: &self.queue,
            knowledge: &self.knowledge,
            models: &self.models,
            classifier: &self.classifier,
            metrics: &self.metrics,
            labeled: &self.labeled,
            reply_stages: &self.reply_stages,
        }
    }
}

/// How long a login waits for a free hashing thread before it is told to retry.
const HASH_WAIT: Duration = Duration::from_secs(2);

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
        if let Some(problems) = crate::preflight::blocking_problems(&config) {
            return Err(Error::Invalid(format!("the configuration has problems:\n{problems}")));
        }
        let store = Store::open(&config.sqlite_path())?;
        let (queue, journal_note) = crate::journal_guard::open(&config, &store, journal)?;
        let control_token = Secret::new(crate::config::random_token());
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
        let outbound = crate::outbound::Outbound::new(store.clone(), queue.clone(), config.whatsapp.templates.clone());
        let presence = std::sync::Mutex::new(crate::domain::presence::Board::new(
            i64::try_from(config.inbox.presence_ttl_ms).unwrap_or(i64::MAX),
        ));
        let app = App {
            presence,
            outbound,
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

impl App {
    /// The handles reading a media message uses.
    pub fn media_deps(&self) -> crate::media::Deps<'_> {
        crate::media::Deps {
            store: &self.store,
            graph: &self.graph,
            models: &self.models,
            metrics: &self.metrics,
            config: &self.config.media,
            service: &self.media,
        }
    }
}
