//! The journal's job life: retry with backoff, dead letters and their retry, lease
//! expiry after a worker "crashes", lease renewal, release, and dedupe expiry.

use std::time::{Duration, Instant};

use frontdesk::config::QueueConfig;
use frontdesk::queue::{Ingress, JobOutcome, NewJob, Queue};

fn queue(dir: &std::path::Path) -> Queue {
    let config = QueueConfig {
        backoff_base_ms: 40,
        backoff_max_ms: 400,
        lease_ms: 150,
        ..QueueConfig::default()
    };
    Queue::open(&dir.join("q.redb"), &config).unwrap()
}

fn job(payload: &str, max_attempts: u32) -> NewJob {
    NewJob {
        queue: "test".into(),
        payload: payload.as_bytes().to_vec(),
        max_attempts,
        run_at_ms: 0,
    }
}

#[tokio::test]
async fn failing_job_backs_off_then_dead_letters_then_retries() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    let id = q.enqueue(job("boom", 3)).await.unwrap();
    let mut claim_times = Vec::new();
    let start = Instant::now();
    for attempt in 1..=3u32 {
        let claimed = loop {
            let c = q.claim("test", 10).await.unwrap();
            if !c.is_empty() {
                break c;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "job never came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        claim_times.push(start.elapsed());
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, id);
        assert_eq!(claimed[0].attempt, attempt);
        assert_eq!(claimed[0].payload, b"boom");
        // Nothing else is claimable while it is held.
        assert!(q.claim("test", 10).await.unwrap().is_empty());
        let outcome = q.retry_later(attempt, format!("failure {attempt}"));
        assert!(q.finish(&claimed[0], outcome).await.unwrap());
    }
    // Backoff: the second wait (>= 40 ms) is at least the first's jittered floor.
    let gap1 = claim_times[1] - claim_times[0];
    let gap2 = claim_times[2] - claim_times[1];
    assert!(gap1 >= Duration::from_millis(20), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(40), "{gap2:?}");
    // Out of attempts: dead, with its last error, and not claimable.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(q.claim("test", 10).await.unwrap().is_empty());
    let dead = q.dead(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("failure 3"));
    assert_eq!(q.stats().unwrap().dead, 1);
    // Retrying a dead job brings it back with fresh attempts and its payload.
    q.retry_dead(id).await.unwrap();
    assert!(q.retry_dead(id).await.is_err(), "second retry of the same id");
    let again = q.claim("test", 10).await.unwrap();
    assert_eq!(
        (again[0].id, again[0].attempt, again[0].payload.as_slice()),
        (id, 1, &b"boom"[..])
    );
    assert!(q.finish(&again[0], JobOutcome::Done).await.unwrap());
    assert_eq!(q.stats().unwrap().dead, 0);
    assert!(q.claim("test", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn permanent_failure_goes_straight_to_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    q.enqueue(job("x", 5)).await.unwrap();
    let c = q.claim("test", 1).await.unwrap();
    q.finish(
        &c[0],
        JobOutcome::Failed {
            error: "bad input".into(),
            retry_in_ms: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(q.dead(10).unwrap()[0].attempts, 1);
}

#[tokio::test]
async fn crashed_workers_job_returns_after_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    let id = q.enqueue(job("work", 5)).await.unwrap();
    let crashed = q.claim("test", 1).await.unwrap().remove(0);
    // The worker "crashes": it never finishes. Before the lease runs out nothing moves.
    assert_eq!(q.reap_expired().await.unwrap(), 0);
    assert!(q.claim("test", 1).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(q.reap_expired().await.unwrap(), 1);
    let start = Instant::now();
    let second = loop {
        let c = q.claim("test", 1).await.unwrap();
        if let Some(j) = c.into_iter().next() {
            break j;
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((second.id, second.attempt), (id, 2));
    // The crashed worker's late answer is ignored; the new holder's counts.
    assert!(!q.finish(&crashed, JobOutcome::Done).await.unwrap());
    assert!(!q.renew(&crashed).await.unwrap());
    assert!(q.renew(&second).await.unwrap());
    assert!(q.finish(&second, JobOutcome::Done).await.unwrap());
    assert_eq!(q.stats().unwrap().leased, 0);
}

#[tokio::test]
async fn renewed_lease_is_not_reaped_and_release_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    q.enqueue(job("long", 2)).await.unwrap();
    let held = q.claim("test", 1).await.unwrap().remove(0);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(q.renew(&held).await.unwrap());
        assert_eq!(q.reap_expired().await.unwrap(), 0);
    }
    assert_eq!(q.release(vec![(held.id, held.lease_token)]).await.unwrap(), 1);
    let again = q.claim("test", 1).await.unwrap().remove(0);
    assert_eq!(again.attempt, 1, "a released claim is not an attempt");
}

#[tokio::test]
async fn ingress_dedupes_until_keys_expire_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = queue(dir.path());
        let keys = vec!["m:wamid.A".to_string(), "m:wamid.B".to_string()];
        assert!(matches!(
            q.ingress(keys.clone(), b"1".to_vec()).await.unwrap(),
            Ingress::Enqueued(_)
        ));
        assert_eq!(
            q.ingress(keys.clone(), b"2".to_vec()).await.unwrap(),
            Ingress::Duplicate
        );
        // One new key among old ones is new work.
        let mixed = vec!["m:wamid.B".to_string(), "m:wamid.C".to_string()];
        assert!(matches!(
            q.ingress(mixed, b"3".to_vec()).await.unwrap(),
            Ingress::Enqueued(_)
        ));
    }
    // Durable across a reopen.
    let q = queue(dir.path());
    assert_eq!(
        q.ingress(vec!["m:wamid.A".into()], b"4".to_vec()).await.unwrap(),
        Ingress::Duplicate
    );
    assert_eq!(q.stats().unwrap().dedupe_keys, 3);
    // Keys live 8 days: a purge "now" removes nothing, a purge 8 days + 1 min later removes all.
    assert_eq!(q.purge_dedupe(1000).await.unwrap(), 0);
    let later = frontdesk::domain::now_ms() as u64 + 8 * 24 * 3_600_000 + 60_000;
    assert_eq!(q.purge_dedupe_at(later, 1000).await.unwrap(), 3);
    assert!(!q.has_dedupe_key("m:wamid.A").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path());
    let mut tasks = Vec::new();
    for i in 0..400 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            q.ingress(vec![format!("m:{i}")], vec![0; 100]).await.unwrap()
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ingress::Enqueued(_)));
    }
    let s = q.commit_stats();
    let commits = s.commits.load(std::sync::atomic::Ordering::Relaxed);
    let ops = s.ops.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(ops, 400);
    assert!(
        commits < 200,
        "group commit should fold concurrent writes: {commits} commits for {ops} ops"
    );
}

#[tokio::test]
async fn leases_of_a_dead_process_are_recovered_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = queue(dir.path());
        q.enqueue(job("a", 5)).await.unwrap();
        q.enqueue(job("b", 1)).await.unwrap();
        let held = q.claim_with_lease("test", 10, 3_600_000).await.unwrap();
        assert_eq!(held.len(), 2);
        // The process "dies" holding both (an hour-long lease).
    }
    let q = queue(dir.path());
    assert_eq!(q.recover_orphaned_leases(|_| 2).await.unwrap(), 2);
    let again = q.claim("test", 10).await.unwrap();
    assert_eq!(again.len(), 1, "the job on its last attempt is dead-lettered");
    assert_eq!(again[0].attempt, 2);
    assert_eq!(q.dead(10).unwrap().len(), 1);
}

/// A job the process died running is a possible poison pill: after `crash_limit` deaths
/// it goes to dead letters (with the reason) instead of crash-looping at every start,
/// whatever attempts it has left; `queue retry` gives it a fresh count.
#[tokio::test]
async fn a_job_that_keeps_killing_its_process_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let limit = |q: &str| if q == "media" { 1 } else { 2 };
    let die_holding = |queue: &'static str| {
        let path = dir.path().to_path_buf();
        async move {
            let q = self::queue(&path);
            let held = q.claim_with_lease(queue, 10, 3_600_000).await.unwrap();
            assert_eq!(held.len(), 1, "{queue}: one job held when the process dies");
        }
    };
    {
        let q = queue(dir.path());
        q.enqueue(NewJob {
            queue: "media".into(),
            ..job("pdf", 5)
        })
        .await
        .unwrap();
        q.enqueue(NewJob {
            queue: "webhook".into(),
            ..job("w", 5)
        })
        .await
        .unwrap();
    }
    die_holding("media").await;
    die_holding("webhook").await;
    {
        let q = queue(dir.path());
        assert_eq!(q.recover_orphaned_leases(limit).await.unwrap(), 2);
        let dead = q.dead(10).unwrap();
        assert_eq!(dead.len(), 1, "the media job is set aside after one death: {dead:?}");
        assert!(
            dead[0].last_error.as_deref().unwrap_or("").contains("poison pill"),
            "{dead:?}"
        );
        assert_eq!(
            q.stats().unwrap().queues.iter().map(|r| r.ready).sum::<u64>(),
            1,
            "the webhook job runs again"
        );
    }
    die_holding("webhook").await;
    let q = queue(dir.path());
    assert_eq!(q.recover_orphaned_leases(limit).await.unwrap(), 1);
    assert_eq!(
        q.dead(10).unwrap().len(),
        2,
        "the second death sets the webhook job aside too"
    );
    let media_id = q.dead(10).unwrap().iter().find(|d| d.queue == "media").unwrap().id;
    q.retry_dead(media_id).await.unwrap();
    assert_eq!(q.claim("media", 1).await.unwrap().len(), 1, "retried by hand, it runs");
}
