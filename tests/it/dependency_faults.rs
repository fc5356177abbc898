//! The fault matrix for failing dependencies, black-box through the real server: the
//! Graph API rate-limiting with and without `Retry-After`, resetting the connection,
//! answering with a late body, and failing across a `kill -9` of the real binary; the
//! vision model down while an image arrives. Each test holds the same contract: nothing
//! acknowledged is lost, nothing is sent twice, the customer is never left in silence,
//! and the operator can see why.

use frontdesk::http::fake_graph::Failure;

use crate::support::{TestServer, text_webhook};

/// The customer's question; the default bot answers it.
async fn ask(s: &TestServer, from: &str, wamid: &str) {
    let body = text_webhook("P1", from, wamid, "Are you open on Sunday?");
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200, "acknowledged");
}

/// Messages the fake Graph API accepted for `wa_id`.
fn sent_to(s: &TestServer, wa_id: &str) -> usize {
    s.graph.sent().iter().filter(|m| m.body["to"] == wa_id).count()
}

/// The reply's ledger row: (state, attempts, error reason).
fn reply_row(s: &TestServer) -> (String, i64, Option<String>) {
    s.app()
        .store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT state, attempts, error_reason FROM outbound ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap()
}

/// Waits for exactly one reply to `wa_id`, then for the server to go idle, and proves no
/// second one followed.
async fn exactly_one_reply(s: &TestServer, wa_id: &str) {
    s.wait_until("the reply", |s| sent_to(s, wa_id) >= 1).await;
    s.idle().await;
    assert_eq!(sent_to(s, wa_id), 1, "one reply, never two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_429_with_retry_after_waits_that_long_then_sends_once() {
    let s = TestServer::start().await;
    s.graph.fail_next(Failure::RateLimited { retry_after_s: Some(1) }, 1);
    ask(&s, "31695000001", "wamid.ra-1").await;
    exactly_one_reply(&s, "31695000001").await;
    let attempts = s.graph.send_attempts();
    assert_eq!(attempts.len(), 2, "the 429, then the send: {attempts:?}");
    // The queue's own backoff is 20 ms here: only the header explains a second's wait.
    assert!(
        attempts[1] - attempts[0] >= 1_000,
        "Retry-After: 1 was not honoured: resent after {} ms",
        attempts[1] - attempts[0]
    );
    let (state, tries, _) = reply_row(&s);
    assert!(["accepted", "sent", "delivered", "read"].contains(&state.as_str()), "{state}");
    assert_eq!(tries, 2, "the operator sees the retried attempt");
    assert_eq!(s.metric("sends_retried_total"), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_429_without_retry_after_backs_off_then_sends_once() {
    let s = TestServer::start_with(|c| c.queue.max_attempts = 4).await;
    s.graph.fail_next(Failure::RateLimited { retry_after_s: None }, 2);
    ask(&s, "31695000002", "wamid.ra-2").await;
    exactly_one_reply(&s, "31695000002").await;
    assert_eq!(s.graph.send_attempts().len(), 3, "two 429s, then the send");
    assert_eq!(reply_row(&s).1, 3);
    assert_eq!(s.metric("sends_retried_total"), 2);
    // Out of attempts, the reason stays on the row for the operator.
    s.graph
        .fail_next(Failure::RateLimited { retry_after_s: None }, 10);
    ask(&s, "31695000003", "wamid.ra-3").await;
    s.wait_until("the reply failed", |s| reply_row(s).0 == "failed").await;
    s.idle().await;
    let (_, _, reason) = reply_row(&s);
    assert!(
        reason.as_deref().unwrap_or_default().contains("Too Many Requests"),
        "{reason:?}"
    );
    assert_eq!(sent_to(&s, "31695000003"), 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_or_a_late_body_is_never_resent_blindly() {
    let s = TestServer::start_with(|c| {
        c.whatsapp.request_timeout_ms = 300;
        c.send.reconcile_grace_ms = 600;
    })
    .await;
    // Meta took the message, then the connection broke: the status webhook settles it.
    s.graph.fail_next(Failure::Reset { accepted: true }, 1);
    ask(&s, "31695000011", "wamid.reset-1").await;
    exactly_one_reply(&s, "31695000011").await;
    assert_eq!(s.graph.send_attempts().len(), 1, "not resent");
    assert!(["sent", "delivered", "read"].contains(&reply_row(&s).0.as_str()));

    // Headers at once, the body after the client's timeout: the same.
    s.graph.fail_next(Failure::SlowBody { ms: 1_000 }, 1);
    ask(&s, "31695000012", "wamid.slow-body-1").await;
    exactly_one_reply(&s, "31695000012").await;
    assert_eq!(s.graph.send_attempts().len(), 2, "not resent");
    assert!(["sent", "delivered", "read"].contains(&reply_row(&s).0.as_str()));

    // The connection broke before Meta took it: no status comes, so after the grace
    // period it goes again, once.
    s.graph.fail_next(Failure::Reset { accepted: false }, 1);
    ask(&s, "31695000013", "wamid.reset-2").await;
    exactly_one_reply(&s, "31695000013").await;
    assert_eq!(s.graph.send_attempts().len(), 4, "sent again after the grace period");
    assert_eq!(reply_row(&s).1, 2, "the operator sees two attempts");
    s.stop().await;
}
