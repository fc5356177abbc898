//! Housekeeping: returns jobs with expired leases to their queue and purges expired
//! dedupe keys, on a timer; once a minute also ends expired sessions, takes the scheduled
//! backup when one is due, deletes messages past their retention and media files past
//! theirs; hourly sweeps media files no message uses any more.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Runs until shutdown.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let every = Duration::from_millis((app.config.queue.lease_ms / 3).clamp(50, 5_000));
    let mut last_purge = std::time::Instant::now();
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        match app.queue.reap_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "queue: leases expired; jobs returned to their queue"),
            // A storage fault is logged by the journal itself, once.
            Err(e) if app.queue.health().fault().is_some() => {
                tracing::debug!(error = %e, "queue: reaping leases failed")
            }
            Err(e) => tracing::error!(error = %e, "queue: reaping leases failed"),
        }
        match crate::engine::auto_hand_back(&app.store, app.config.engine.auto_handback_minutes).await {
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
            match app
                .store
                .write(move |c| crate::store::users::prune_sessions(c, idle, max))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "ended expired inbox sessions"),
                Err(e) => tracing::error!(error = %e, "pruning sessions failed"),
            }
            scheduled_backup(&app, now).await;
            retention(&app, now).await;
            media_retention(&app, now).await;
            if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(3_600)) {
                last_sweep = Some(std::time::Instant::now());
                sweep_media_files(&app).await;
                prune_webhook_deliveries(&app, now).await;
            }
        }
    }
}

/// Takes the scheduled backup when due (`storage.backup_dir`); a failure is logged loudly
/// and retried at the next tick.
async fn scheduled_backup(app: &App, now: i64) {
    let s = &app.config.storage;
    if s.backup_dir.as_os_str().is_empty() {
        return;
    }
    let every = (s.backup_every_hours * 3_600_000.0) as i64;
    match crate::backup::scheduled_backup(&app.store, &app.queue, &s.backup_dir, every, s.backup_keep, now).await {
        Ok(Some(path)) => tracing::info!(path = %path.display(), "scheduled backup written"),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "scheduled backup failed; retrying in a minute"),
    }
}

/// Deletes outbound-webhook events delivered more than a week ago (kept that long for
/// inspection), a batch per write.
async fn prune_webhook_deliveries(app: &App, now: i64) {
    let cutoff = now - 7 * 86_400_000;
    loop {
        match app
            .store
            .write(move |c| crate::store::webhooks::prune_delivered(c, cutoff, 2_000))
            .await
        {
            Ok(2_000) => {}
            Ok(_) => break,
            Err(e) => {
                tracing::error!(error = %e, "pruning delivered webhook events failed");
                break;
            }
        }
    }
}

/// Deletes messages older than `storage.message_retention_days`, a batch per write.
async fn retention(app: &App, now: i64) {
    let days = app.config.storage.message_retention_days;
    if days == 0 {
        return;
    }
    let cutoff = now - i64::from(days) * 86_400_000;
    let mut total = 0;
    loop {
        match app
            .store
            .write(move |c| crate::store::retention::delete_before(c, cutoff, 2_000))
            .await
        {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                tracing::error!(error = %e, "message retention failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(messages = total, days, "deleted messages past their retention");
    }
}

/// Deletes stored media files older than `media.retention_days` (the messages and their
/// transcripts stay).
async fn media_retention(app: &App, now: i64) {
    let days = app.config.media.retention_days;
    if days == 0 {
        return;
    }
    let cutoff = now - i64::from(days) * 86_400_000;
    let mut deleted = 0;
    loop {
        let names = match app
            .store
            .write(move |c| crate::store::media::expire_files(c, cutoff, 500))
            .await
        {
            Ok(n) if n.is_empty() => break,
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "media retention failed");
                return;
            }
        };
        deleted += delete_unused(app, names).await;
    }
    if deleted > 0 {
        tracing::info!(files = deleted, days, "deleted media files past their retention");
    }
}

/// Deletes media files no row names (left by message retention or erasure), sparing
/// files younger than an hour (a media job may be about to record them).
async fn sweep_media_files(app: &App) {
    let files = app.media.files.clone();
    let in_use = match app.store.read(crate::store::media::files_in_use).await {
        Ok(s) => s,
        Err(e) => return tracing::error!(error = %e, "media sweep failed"),
    };
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        for name in files.names() {
            let young = files
                .path(&name)
                .and_then(|p| std::fs::metadata(p).ok())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(3_600));
            if !in_use.contains(&name) && !young && files.delete(&name).unwrap_or(false) {
                removed += 1;
            }
        }
        removed
    })
    .await
    .unwrap_or(0);
    if removed > 0 {
        tracing::info!(files = removed, "deleted media files no message uses");
    }
}

async fn delete_unused(app: &App, names: Vec<String>) -> usize {
    let mut deleted = 0;
    for name in names {
        let n = name.clone();
        if let Ok(false) = app.store.read(move |c| crate::store::media::file_in_use(c, &n)).await
            && app.media.files.delete(&name).unwrap_or(false)
        {
            deleted += 1;
        }
    }
    deleted
}
