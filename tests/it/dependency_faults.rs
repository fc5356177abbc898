//! The fault matrix for failing dependencies, black-box through the real server: the
//! Graph API rate-limiting with and without `Retry-After`, resetting the connection,
//! answering with a late body, and failing across a `kill -9` of the real binary; the
//! vision model down while an image arrives; the model providers failing and hanging
//! across a `kill -9` with reply jobs in flight. Each test holds the same contract: nothing
//! acknowledged is lost, nothing is sent twice, the customer is never left in silence,
//! and the operator can see why.

use std::time::{Duration, Instant};

use frontdesk::http::fake_graph::{Failure, FakeGraph, StatusScript};
use frontdesk::whatsapp::signature::sign;
use serde_json::json;

use crate::engine_llm::{fakes, shop_with_models};
use crate::fake_llm::{FakeLlm, KEY, Step, reply};
use crate::media::media_webhook;
use crate::support::{BinServer, SECRET, TOKEN, TestServer, open_store, text_webhook, write_config_file};

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
async fn a_bare_429_with_retry_after_in_seconds_or_as_a_date_waits_that_long_then_sends_once() {
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
    assert!(
        ["accepted", "sent", "delivered", "read"].contains(&state.as_str()),
        "{state}"
    );
    assert_eq!(tries, 2, "the operator sees the retried attempt");
    assert_eq!(s.metric("sends_retried_total"), 1);
    // The HTTP-date form (RFC 9110) is honoured the same way. The date has whole seconds,
    // so three seconds ahead is at least two seconds' wait.
    s.graph.fail_next(Failure::RateLimitedUntil { in_s: 3 }, 1);
    ask(&s, "31695000003", "wamid.ra-3").await;
    exactly_one_reply(&s, "31695000003").await;
    let attempts = s.graph.send_attempts();
    assert_eq!(attempts.len(), 4, "the 429, then the send: {attempts:?}");
    assert!(
        attempts[3] - attempts[2] >= 1_500,
        "Retry-After as an HTTP-date was not honoured: resent after {} ms",
        attempts[3] - attempts[2]
    );
    assert_eq!(s.metric("sends_retried_total"), 2);
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
    s.graph.fail_next(Failure::RateLimited { retry_after_s: None }, 10);
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
        c.send.reconcile_grace_ms = 1_500;
    })
    .await;
    // Statuses come later than any retry backoff (at most 200 ms here) but well within
    // the grace period: a blind resend would beat the status and show as a second send.
    s.graph.set_statuses(Some(StatusScript {
        steps: vec![("sent".into(), 500), ("delivered".into(), 20)],
        ..Default::default()
    }));
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

/// The Graph API fails every send (500s and bare 429s, alternating) while the real binary
/// is killed with `kill -9` mid-retry and restarted; then it recovers. Every acknowledged
/// message gets exactly one reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_failing_across_a_kill_9_every_acknowledged_message_gets_one_reply() {
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Attempts are plenty (the outage outlasts the default 8); the grace period is short
    // because nothing is accepted before the recovery, so no row can be on Meta's side.
    let config = write_config_file(
        dir.path(),
        &format!(
            "access_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n[queue]\nbackoff_base_ms = 20\nbackoff_max_ms = 200\nmax_attempts = 10000\n[send]\npair_interval_ms = 0\nreconcile_grace_ms = 300\n[engine]\ndebounce_ms = 0\n[knowledge]\nembedder = \"none\"\n",
            graph.base_url()
        ),
    );
    for _ in 0..20_000 {
        graph.fail_next(Failure::code(131000), 1);
        graph.fail_next(Failure::RateLimited { retry_after_s: None }, 1);
    }
    let mut server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let client = reqwest::Client::new();
    let customers: Vec<String> = (0..12).map(|i| format!("316960000{i:02}")).collect();
    for (i, from) in customers.iter().enumerate() {
        let body = text_webhook("P1", from, &format!("wamid.across-{i}"), "Are you open on Sunday?");
        post_signed(&client, &server.base, body).await;
    }
    // Mid-outage: the sends are being refused and retried.
    tokio::task::block_in_place(|| wait_for("failing sends before the kill", &|| graph.send_attempts().len() >= 24));
    assert!(graph.sent().is_empty(), "nothing got through the outage");
    server.kill9();

    // Restarted into the same outage, then the Graph API recovers.
    let server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let before = graph.send_attempts().len();
    tokio::task::block_in_place(|| {
        wait_for("failing sends after the restart", &|| {
            graph.send_attempts().len() >= before + 12
        })
    });
    graph.clear_failures();
    let replies = |from: &str| graph.sent().iter().filter(|m| m.body["to"] == from).count();
    tokio::task::block_in_place(|| {
        wait_for("a reply to every customer", &|| {
            customers.iter().all(|c| replies(c) >= 1)
        })
    });
    idle_from_outside(&server).await;
    // A clean stop ends every worker: nothing can be sent after it.
    let mut server = server;
    assert!(server.sigterm().success());
    for c in &customers {
        assert_eq!(replies(c), 1, "{c}: one reply, never two");
    }
    let store = open_store(&dir.path().join("data"));
    let (rows, unsettled): (i64, i64) = store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE state NOT IN ('accepted', 'sent', 'delivered', 'read')) FROM outbound",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!((rows, unsettled), (12, 0), "one settled ledger row per customer");
}

/// Idle as seen from outside the real binary: every queue empty, on two looks.
async fn idle_from_outside(server: &BinServer) {
    let metrics = format!("{}/metrics", server.base);
    let client = reqwest::Client::new();
    let mut quiet_looks = 0;
    let start = Instant::now();
    while quiet_looks < 2 {
        let text = client.get(&metrics).send().await.unwrap().text().await.unwrap();
        let waiting: u64 = text
            .lines()
            .filter(|l| l.starts_with("frontdesk_queue_ready{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        quiet_looks = if waiting == 0 { quiet_looks + 1 } else { 0 };
        assert!(start.elapsed() < Duration::from_secs(30), "never idle: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (blocking the thread, so call it under `block_in_place`) until `cond` holds.
fn wait_for(what: &str, cond: &dyn Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The model providers fail while the real binary is killed with `kill -9` with reply
/// jobs in flight: the primary answers 500s, the fallback takes the request and never
/// answers (well inside its timeout, so no reply job has given up). Restarted with both
/// providers healthy, every acknowledged message gets exactly one answer, none twice, and
/// no handoff was needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_failing_and_hanging_across_a_kill_9_every_acknowledged_message_gets_one_reply() {
    const ANSWER: &str = "We're closed on Sundays and Mondays.";
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    let (a, o) = fakes().await;
    a.otherwise(Step::Status(500));
    o.otherwise(Step::Delay(600_000, Box::new(reply("too late", 0.9))));
    let dir = tempfile::tempdir().unwrap();
    let config = models_config(
        dir.path(),
        &graph,
        (&a, &o),
        1,
        "\"anthropic:claude-haiku-4-5\", \"openai:gpt-4o-mini\"",
    );
    let mut server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let client = reqwest::Client::new();
    let customers: Vec<String> = (0..6).map(|i| format!("316970000{i:02}")).collect();
    for (i, from) in customers.iter().enumerate() {
        let body = text_webhook("P1", from, &format!("wamid.llm-across-{i}"), "Are you open on Sunday?");
        post_signed(&client, &server.base, body).await;
    }
    // A reply job is inside a model call on the hanging fallback, after the failing
    // primary (asked twice); the other jobs are claimed behind it or waiting.
    tokio::task::block_in_place(|| {
        wait_for("a reply job hanging on the fallback model", &|| {
            !o.requests().is_empty() && a.requests().len() >= 2
        })
    });
    assert!(graph.sent().is_empty(), "nothing answered before the kill");
    server.kill9();

    a.otherwise(reply(ANSWER, 0.9));
    o.otherwise(reply(ANSWER, 0.9));
    let mut server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let replies = |from: &str| graph.sent().iter().filter(|m| m.body["to"] == from).count();
    tokio::task::block_in_place(|| {
        wait_for("a reply to every customer", &|| {
            customers.iter().all(|c| replies(c) >= 1)
        })
    });
    idle_from_outside(&server).await;
    // A clean stop ends every worker: nothing can be sent after it.
    assert!(server.sigterm().success());
    for c in &customers {
        let got: Vec<String> = graph
            .sent()
            .iter()
            .filter(|m| m.body["to"] == *c)
            .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got.len(), 1, "{c}: one reply, never two: {got:?}");
        assert!(got[0].contains(ANSWER), "{c}: the model's answer: {got:?}");
    }
    let store = open_store(&dir.path().join("data"));
    let (rows, unsettled, handoffs): (i64, i64, i64) = store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE state NOT IN ('accepted', 'sent', 'delivered', 'read')), (SELECT COUNT(*) FROM handoffs) FROM outbound",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!(
        (rows, unsettled, handoffs),
        (6, 0, 0),
        "one settled reply per customer, no handoff"
    );
}

/// Posts a webhook signed with the app secret to the real binary at `base`; it must be
/// acknowledged (200).
async fn post_signed(client: &reqwest::Client, base: &str, body: String) {
    let r = client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "acknowledged");
}

/// A config file for the real binary: the fake Graph API, the two fake model providers
/// (anthropic `a`, openai `o`) with a long timeout, `max_retries`, and the commodity
/// chain `commodity` (TOML array items); keyword retrieval, no debounce.
fn models_config(
    dir: &std::path::Path,
    graph: &FakeGraph,
    (a, o): (&FakeLlm, &FakeLlm),
    max_retries: u32,
    commodity: &str,
) -> std::path::PathBuf {
    let provider = |name: &str, base: String| {
        format!(
            "[llm.providers.{name}]\nkind = \"{name}\"\nbase_url = \"{base}\"\napi_key = \"{KEY}\"\ntimeout_ms = 120000\n"
        )
    };
    write_config_file(
        dir,
        &format!(
            "access_token = \"{TOKEN}\"\ngraph_base_url = \"{}\"\n[send]\npair_interval_ms = 0\n[engine]\ndebounce_ms = 0\n[knowledge]\nembedder = \"none\"\n[llm]\nmax_retries = {max_retries}\n{}{}[llm.tiers]\ncommodity = [{commodity}]\nreasoning = [\"openai:gpt-4o\"]\n",
            graph.base_url(),
            provider("anthropic", a.base_url()),
            provider("openai", o.base_url()),
        ),
    )
}

/// A reply caught mid-answer by two stops in a row (the model hangs each time; a crash, a
/// kill or a power cut ends the process) is not set aside as a poison pill in silence: its
/// third run asks no model and hands the conversation to a person, so the customer gets
/// the bridge, once, and an agent sees why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_interrupted_twice_goes_to_a_person_not_to_silence() {
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    let (a, o) = fakes().await;
    a.otherwise(Step::Delay(600_000, Box::new(reply("too late", 0.9))));
    o.otherwise(Step::Delay(600_000, Box::new(reply("too late", 0.9))));
    let dir = tempfile::tempdir().unwrap();
    let config = models_config(dir.path(), &graph, (&a, &o), 0, "\"anthropic:claude-haiku-4-5\"");
    const FROM: &str = "31697000099";
    let mut server = BinServer::start(&config);
    graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    let body = text_webhook("P1", FROM, "wamid.interrupted-1", "Are you open on Sunday?");
    post_signed(&reqwest::Client::new(), &server.base, body).await;
    // Two runs, each stopped while the model call hangs.
    for run in 1..=2 {
        tokio::task::block_in_place(|| wait_for("the reply job inside a model call", &|| a.requests().len() >= run));
        server.kill9();
        server = BinServer::start(&config);
        graph.set_webhook(&format!("{}/webhook", server.base), SECRET);
    }
    let to_customer = || -> Vec<String> {
        graph
            .sent()
            .iter()
            .filter(|m| m.body["to"] == FROM)
            .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    tokio::task::block_in_place(|| wait_for("a message to the customer", &|| !to_customer().is_empty()));
    idle_from_outside(&server).await;
    assert!(server.sigterm().success());
    let got = to_customer();
    assert_eq!(got.len(), 1, "one message, never two: {got:?}");
    assert!(got[0].contains("teammate"), "the bridge: {got:?}");
    assert_eq!(a.requests().len(), 2, "the third run asked no model");
    let store = open_store(&dir.path().join("data"));
    let (trigger, owner): (String, String) = store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT h.trigger, c.owner FROM handoffs h JOIN conversations c ON c.id = h.conversation_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!((trigger.as_str(), owner.as_str()), ("reply_interrupted", "human"));
}

/// The vision model is down (500s, or hanging past its timeout) while a customer sends a
/// photo: after `media.max_attempts` the customer is asked to type, never left in
/// silence, and the media row says why. (`media.on_failure = "handoff"` — a person
/// instead — is proven in `media::unusable_media_gets_a_request_to_type_or_a_person_never_silence`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vision_model_down_asks_the_customer_to_type_and_says_why() {
    let (a, o) = fakes().await;
    let vision_down: Vec<Step> = (0..4).map(|_| Step::Status(500)).collect();
    let vision_hangs: Vec<Step> = (0..4)
        .map(|_| Step::Delay(1_500, Box::new(Step::Status(500))))
        .collect();
    let s = shop_with_models(&a, &o, |c| {
        c.media.vision_models = vec!["openai:gpt-4o-mini".into()];
        c.media.max_attempts = 2;
        if let Some(p) = c.llm.providers.get_mut("openai") {
            p.timeout_ms = 300;
        }
    })
    .await;
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[7u8; 300]].concat();
    for (from, id, steps) in [
        ("31695000021", "down", vision_down),
        ("31695000022", "hangs", vision_hangs),
    ] {
        o.script(steps);
        s.graph.add_media(id, "image/png", png.clone());
        let body = media_webhook(
            from,
            &format!("wamid.img-{id}"),
            "image",
            json!({ "id": id, "mime_type": "image/png" }),
        );
        assert_eq!(s.post_webhook(body.as_bytes()).await, 200, "acknowledged");
        s.wait_until("the request to type", |s| sent_to(s, from) >= 1).await;
        s.idle().await;
        let got: Vec<String> = s
            .graph
            .sent()
            .iter()
            .filter(|m| m.body["to"] == from)
            .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got.len(), 1, "{id}: one message, never two: {got:?}");
        assert!(
            got[0].contains("open your image") && got[0].contains("Could you type your message instead?"),
            "{id}: {got:?}"
        );
        let w = format!("wamid.img-{id}");
        let row = s
            .app()
            .store
            .read(move |c| frontdesk::store::media::get(c, &w))
            .await
            .unwrap()
            .expect("a media row")
            .0;
        assert_eq!(row.status, "failed", "{id}");
        assert!(
            row.error.as_deref().unwrap_or_default().contains("vision model"),
            "{id}: the operator sees why: {:?}",
            row.error
        );
    }
    assert_eq!(s.metric("media_failed_total"), 2);
    s.stop().await;
}
