//! The outbound-webhook worker (docs/webhooks.md). Two loops: the relay queues a job
//! (`hook:<delivery id>`, queue `outbound_webhook`) for the oldest undelivered event of
//! each line (endpoint × conversation or account) — woken by the store after a commit
//! that wrote events, and by the sender after a delivery freed a line —; the sender POSTs
//! each job's frozen JSON body, signed, and records the outcome. A failure is retried
//! with the queue's backoff; after `webhooks.max_attempts` the job is a dead letter and
//! its line waits until it is retried, so a later event never overtakes an earlier one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::WebhookEndpoint;
use crate::metrics::Metrics;
use crate::queue::{ClaimedJob, JobOutcome, NewJob};
use crate::store::webhooks::{self, Delivery, EndpointRow};

/// The queue of outbound-webhook deliveries (shown by `frontdesk queue`).
pub const HOOKS_QUEUE: &str = "outbound_webhook";
/// Deliveries one sender takes at a time (each of a different line).
const BATCH: usize = 16;
/// Rows the relay queues per write.
const RELAY_BATCH: usize = 256;
/// The most of a receiver's answer read (kept in the error when it failed).
const MAX_ANSWER_BYTES: usize = 1024;
/// The most of that answer kept in the error text.
const MAX_ERROR_CHARS: usize = 200;

/// Makes the store's endpoints those of the config; call at start, before any worker.
pub async fn sync_endpoints(app: &App) -> crate::Result<()> {
    let hooks = app.config.webhooks.clone();
    let dropped = app
        .store
        .write(move |tx| {
            let rows: Vec<EndpointRow<'_>> = hooks
                .endpoints
                .iter()
                .map(|e| EndpointRow {
                    name: &e.name,
                    events: &e.events,
                    max_pending: hooks.max_pending,
                })
                .collect();
            webhooks::sync_endpoints(tx, &rows)
        })
        .await?;
    if dropped > 0 {
        tracing::warn!(
            events = dropped,
            "dropped undelivered webhook events of endpoints no longer configured"
        );
    }
    Ok(())
}

/// Runs the relay and the sender until shutdown (nothing when no endpoint is configured).
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    if app.config.webhooks.endpoints.is_empty() {
        return;
    }
    let hooks = &app.config.webhooks;
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(hooks.timeout_ms))
        .connect_timeout(Duration::from_millis(hooks.timeout_ms.min(5_000)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "outbound webhooks: cannot build the HTTP client; nothing is delivered");
            return;
        }
    };
    let freed = Arc::new(Notify::new());
    let relay = relay_loop(&app, &freed, &shutdown);
    let send = super::claim_loop(&app.queue, HOOKS_QUEUE, BATCH, &shutdown, |jobs| {
        deliver_batch(app.clone(), client.clone(), freed.clone(), jobs)
    });
    tokio::join!(relay, send);
}

async fn relay_loop(app: &App, freed: &Notify, shutdown: &CancellationToken) {
    let mut written = app.store.webhook_signal();
    let mut dropped_seen = 0;
    loop {
        written.borrow_and_update();
        let pause = match relay(app).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "outbound webhooks: queueing deliveries failed; trying again in 1 s");
                Some(Duration::from_secs(1))
            }
        };
        dropped_seen = note_dropped(app, dropped_seen).await;
        let timer = async {
            match pause {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = written.changed() => {}
            _ = freed.notified() => {}
            _ = timer => {}
        }
    }
}

/// Queues a job for every line's oldest undelivered event that has none yet. A crash
/// between the queueing and the `queued` mark is harmless: the job's key dedupes it.
async fn relay(app: &App) -> crate::Result<()> {
    loop {
        let heads = app.store.read(|c| webhooks::unqueued_heads(c, RELAY_BATCH)).await?;
        if heads.is_empty() {
            return Ok(());
        }
        let jobs = heads
            .iter()
            .map(|id| {
                let job = NewJob {
                    queue: HOOKS_QUEUE.into(),
                    payload: id.to_string().into_bytes(),
                    max_attempts: app.config.webhooks.max_attempts,
                    run_at_ms: crate::domain::now_ms() as u64,
                };
                (format!("hook:{id}"), job)
            })
            .collect();
        app.queue.enqueue_unique_many(jobs).await?;
        let n = heads.len();
        app.store
            .write(move |tx| webhooks::mark_queued(tx, &heads, true))
            .await?;
        if n < RELAY_BATCH {
            return Ok(());
        }
    }
}

/// Logs and counts events dropped because an endpoint was full; returns the total seen.
async fn note_dropped(app: &App, seen: u64) -> u64 {
    let Ok(counts) = app.store.read(webhooks::endpoint_counts).await else {
        return seen;
    };
    let total: u64 = counts.iter().map(|(_, _, d)| *d as u64).sum();
    if total > seen {
        app.metrics
            .outbound_webhooks_dropped_total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        for (name, pending, dropped) in counts.iter().filter(|c| c.2 > 0) {
            tracing::warn!(
                endpoint = %name, pending, dropped,
                "outbound webhooks: the endpoint has webhooks.max_pending undelivered events; new ones are dropped"
            );
        }
    }
    total.max(seen)
}

async fn deliver_batch(app: Arc<App>, client: reqwest::Client, freed: Arc<Notify>, jobs: Vec<ClaimedJob>) {
    let mut running = JoinSet::new();
    for job in jobs {
        let (app, client) = (app.clone(), client.clone());
        running.spawn(async move {
            let outcome = deliver(&app, &client, &job).await;
            (job, outcome)
        });
    }
    let mut done = Vec::new();
    let mut any_delivered = false;
    while let Some(r) = running.join_next().await {
        if let Ok((job, (outcome, delivered))) = r {
            any_delivered |= delivered;
            done.push((job.id, job.lease_token, outcome));
        }
    }
    if let Err(e) = app.queue.finish_many(done).await {
        tracing::error!(error = %e, "outbound webhooks: recording job outcomes failed; they run again");
    }
    if any_delivered {
        freed.notify_one();
    }
}

/// One job: `(outcome, delivered)`.
async fn deliver(app: &App, client: &reqwest::Client, job: &ClaimedJob) -> (JobOutcome, bool) {
    let id: i64 = String::from_utf8_lossy(&job.payload).parse().unwrap_or(-1);
    let row = match app.store.read(move |c| webhooks::get(c, id)).await {
        Ok(r) => r,
        Err(e) => return (super::retry_or_wait(app, job.attempt, e.to_string()), false),
    };
    let Some(d) = row else {
        return (JobOutcome::Done, false); // erased, or its endpoint was removed
    };
    if d.delivered {
        return (JobOutcome::Done, false);
    }
    if d.behind_earlier {
        // Not its turn (cannot happen through the relay; kept safe): back to the relay.
        return match app.store.write(move |tx| webhooks::mark_queued(tx, &[id], false)).await {
            Ok(()) => (JobOutcome::Done, false),
            Err(e) => (super::retry_or_wait(app, job.attempt, e.to_string()), false),
        };
    }
    let Some(endpoint) = app.config.webhooks.endpoints.iter().find(|e| e.name == d.endpoint) else {
        return (JobOutcome::Done, false);
    };
    match post(client, endpoint, &d).await {
        Ok(()) => {
            let now = crate::domain::now_ms();
            match app.store.write(move |tx| webhooks::mark_delivered(tx, id, now)).await {
                Ok(()) => {
                    Metrics::add(&app.metrics.outbound_webhooks_delivered_total, 1);
                    (JobOutcome::Done, true)
                }
                // Delivered but not recorded: it goes again (receivers dedupe on the id).
                Err(e) => (super::retry_or_wait(app, job.attempt, e.to_string()), false),
            }
        }
        Err(why) => {
            let dead = job.attempt >= job.max_attempts;
            let error = format!("{} {}: {why}", endpoint.name, d.event_id);
            let recorded = error.clone();
            if let Err(e) = app
                .store
                .write(move |tx| webhooks::mark_attempt_failed(tx, id, &recorded, dead))
                .await
            {
                tracing::warn!(error = %e, "outbound webhooks: recording a failed attempt failed");
            }
            if dead {
                Metrics::add(&app.metrics.outbound_webhooks_dead_total, 1);
                tracing::error!(
                    endpoint = %endpoint.name, event = %d.event_id, attempts = job.attempt, error = %why,
                    "outbound webhook: out of attempts; a dead letter now (`frontdesk queue dead`), later events of its conversation wait until it is retried"
                );
            } else {
                Metrics::add(&app.metrics.outbound_webhooks_retried_total, 1);
                tracing::debug!(endpoint = %endpoint.name, event = %d.event_id, attempt = job.attempt, error = %why, "outbound webhook failed; retrying");
            }
            (super::retry_or_wait(app, job.attempt, error), false)
        }
    }
}

/// POSTs the event, signed now. `Err` says why it did not count as delivered; only a 2xx
/// does (a redirect is not followed).
async fn post(client: &reqwest::Client, endpoint: &WebhookEndpoint, d: &Delivery) -> Result<(), String> {
    let now_s = crate::domain::now_ms() / 1000;
    let signature =
        crate::domain::webhook::signature_header(endpoint.secret.expose().as_bytes(), now_s, d.body.as_bytes());
    let sent = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Frontdesk-Signature", signature)
        .header("X-Frontdesk-Event-Id", &d.event_id)
        .header("X-Frontdesk-Event-Type", &d.kind)
        .header("Idempotency-Key", &d.event_id)
        .body(d.body.clone())
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        // Without the URL: it may hold credentials.
        Err(e) if e.is_timeout() => return Err("timed out".into()),
        Err(e) if e.is_connect() => return Err(format!("cannot connect ({})", e.without_url())),
        Err(e) => return Err(e.without_url().to_string()),
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    // A little of the answer, for the error; never more than MAX_ANSWER_BYTES read.
    let mut answer = Vec::new();
    while answer.len() < MAX_ANSWER_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => answer.extend_from_slice(&c[..c.len().min(MAX_ANSWER_BYTES - answer.len())]),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&answer)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect();
    Err(format!("HTTP {}: {}", status.as_u16(), text.trim()))
}
