//! Housekeeping: returns jobs with expired leases to their queue and purges expired
//! dedupe keys, on a timer.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Runs until shutdown.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let every = Duration::from_millis((app.config.queue.lease_ms / 3).clamp(50, 5_000));
    let mut last_purge = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        match app.queue.reap_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "queue: leases expired; jobs returned to their queue"),
            Err(e) => tracing::error!(error = %e, "queue: reaping leases failed"),
        }
        match crate::engine::auto_hand_back(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(conversations = n, "handed idle conversations back to the bot"),
            Err(e) => tracing::error!(error = %e, "auto hand-back failed"),
        }
        if last_purge.elapsed() > Duration::from_secs(60) {
            last_purge = std::time::Instant::now();
            match app.queue.purge_dedupe(50_000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "queue: purged expired dedupe keys"),
                Err(e) => tracing::error!(error = %e, "queue: purging dedupe keys failed"),
            }
            let now = crate::domain::now_ms();
            let (idle, max) = (now - app.config.auth.idle_ms(), now - app.config.auth.max_ms());
            match app.store.write(move |c| crate::store::users::prune_sessions(c, idle, max)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "ended expired inbox sessions"),
                Err(e) => tracing::error!(error = %e, "pruning sessions failed"),
            }
        }
    }
}
