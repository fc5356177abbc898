//! Outbound webhooks end to end, against a fake receiver on port 0: every event kind
//! arrives signed (a tampered body fails the check), and an erased contact's events go;
//! a receiver that fails for a while still gets every event, in order per conversation,
//! with one id across retries; an event out of attempts is a dead letter in
//! `frontdesk queue dead` and holds its conversation's later events until retried; and a
//! `kill -9` of the real binary with events queued loses none and keeps the order.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use frontdesk::config::{Secret, WebhookEndpoint};
use frontdesk::domain::webhook::{SignatureProblem, verify};
use frontdesk::http::fake_graph::Failure;
use reqwest::StatusCode;

use crate::fake_receiver::{FakeReceiver, Hit, Misbehave};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login, post};
use crate::support::{BinServer, SECRET, TestServer, open_store, queue_cli, text_webhook, write_config_file};

const HOOK_SECRET: &str = "whsec-test-0123456789abcdef";

fn endpoint(url: &str, events: &[&str]) -> WebhookEndpoint {
    WebhookEndpoint {
        name: "crm".into(),
        url: url.into(),
        secret: Secret::new(HOOK_SECRET),
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

fn now_s() -> i64 {
    frontdesk::domain::now_ms() / 1000
}

async fn say(s: &TestServer, from: &str, wamid: &str, text: &str) {
    assert_eq!(
        s.post_webhook(text_webhook("P1", from, wamid, text).as_bytes()).await,
        200
    );
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (ordering key, event id) of every event for endpoint `crm`, in the order the changes
/// were committed.
fn committed_order(store: &frontdesk::store::Store) -> Vec<(String, String)> {
    store
        .call_blocking(|c| {
            let mut st =
                c.prepare("SELECT ordering_key, event_id FROM webhook_deliveries WHERE endpoint = 'crm' ORDER BY id")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
            Ok(rows)
        })
        .unwrap()
}

/// Every committed event was delivered (answered 200) at least once; no request for an
/// event came before every earlier event of its conversation was delivered; every
/// attempt of one event carried the same id, idempotency key and body.
fn assert_delivered_in_order(expected: &[(String, String)], hits: &[Hit]) {
    let delivered: HashSet<&str> = hits
        .iter()
        .filter(|h| h.status == 200)
        .map(|h| h.event_id.as_str())
        .collect();
    for (_, id) in expected {
        assert!(delivered.contains(id.as_str()), "event {id} never delivered");
    }
    let mut line: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, id) in expected {
        line.entry(key.as_str()).or_default().push(id.as_str());
    }
    let mut done: HashSet<&str> = HashSet::new();
    for h in hits {
        let (key, _) = expected
            .iter()
            .find(|(_, id)| *id == h.event_id)
            .unwrap_or_else(|| panic!("unknown event {}", h.event_id));
        for earlier in line[key.as_str()].iter().take_while(|id| **id != h.event_id) {
            assert!(
                done.contains(earlier),
                "{} ({key}) was sent before the earlier {earlier} was delivered",
                h.event_id
            );
        }
        if h.status == 200 {
            done.insert(h.event_id.as_str());
        }
    }
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for h in hits {
        assert_eq!(h.idempotency_key, h.event_id);
        assert_eq!(h.json()["id"], h.event_id.as_str());
        let first = bodies.entry(h.event_id.as_str()).or_insert(&h.body);
        assert_eq!(*first, h.body.as_slice(), "a retry of {} changed the body", h.event_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_kind_arrives_signed_and_a_tampered_body_fails() {
    let receiver = FakeReceiver::start().await;
    let url = receiver.url.clone();
    let s = TestServer::start_with(move |c| c.webhooks.endpoints = vec![endpoint(&url, &[])]).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // message.received, conversation.handed_off (the bot), message.sent (the bridge).
    say(&s, "31656700001", "wamid.hook-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    let (_, page, _) = get(&s, &path, Some(&cookie)).await;
    let csrf = csrf_of(&page);
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![("csrf", csrf.clone())];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let act = |what: &'static str, extra: &'static [(&'static str, &'static str)]| {
        let (path, cookie, fields) = (format!("{path}/{what}"), cookie.clone(), form(extra));
        let s = &s;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(
                post(s, &path, &cookie, &fields).await.0,
                StatusCode::SEE_OTHER,
                "{what}"
            );
        }
    };
    act("assign", &[("to", "me")]).await;
    act("handback", &[("note", "all good")]).await;
    act("takeover", &[]).await;
    // message.failed: the agent's reply is refused for good by the Graph API.
    s.graph.fail_next(Failure::code(131026), 1);
    let (_, page, _) = get(&s, &path, Some(&cookie)).await;
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let fields = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("text", "Hello from Sam"),
    ];
    assert_eq!(
        post(&s, &format!("{path}/reply"), &cookie, &fields).await.0,
        StatusCode::SEE_OTHER
    );
    s.wait_until("the refused reply", |s| {
        s.query_i64("SELECT COUNT(*) FROM outbound WHERE state = 'failed'") == 1
    })
    .await;
    act("close", &[]).await;
    // account.health_changed.
    let fixture = std::fs::read(format!(
        "{}/tests/fixtures/webhooks/meta/phone_number_quality_update/flagged.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(s.post_webhook(&fixture).await, 200);

    let expected = [
        "message.received",
        "conversation.handed_off",
        "message.sent",
        "conversation.assigned",
        "conversation.handed_back",
        "conversation.handed_off",
        "message.failed",
        "conversation.handed_back",
        "conversation.resolved",
        "account.health_changed",
    ];
    wait_for("every event", || receiver.delivered().len() >= expected.len()).await;
    s.idle().await;
    let hits = receiver.hits();
    // The account's line and the conversation's are independent: compare each.
    let kinds: Vec<String> = hits
        .iter()
        .filter(|h| h.event_type != "account.health_changed")
        .map(|h| h.event_type.clone())
        .collect();
    assert_eq!(
        kinds,
        expected[..9],
        "one event per change of the conversation, in order"
    );
    let hits: Vec<Hit> = hits
        .iter()
        .filter(|h| h.event_type != "account.health_changed")
        .chain(hits.iter().filter(|h| h.event_type == "account.health_changed"))
        .cloned()
        .collect();
    assert_eq!(hits.len(), 10, "and one for the account");
    assert_delivered_in_order(&committed_order(&s.app().store), &hits);
    for h in &hits {
        let body = h.json();
        assert_eq!(body["type"], h.event_type.as_str());
        assert_eq!(
            verify(HOOK_SECRET.as_bytes(), &h.signature, &h.body, now_s(), 300),
            Ok(()),
            "{}",
            h.event_type
        );
        let mut tampered = h.body.clone();
        let at = tampered.len() / 2;
        tampered[at] ^= 1;
        assert_eq!(
            verify(HOOK_SECRET.as_bytes(), &h.signature, &tampered, now_s(), 300),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret-0123456789", &h.signature, &h.body, now_s(), 300),
            Err(SignatureProblem::Mismatch)
        );
        if h.event_type != "account.health_changed" {
            assert_eq!(body["data"]["conversation_id"], id, "{body}");
            assert_eq!(body["data"]["contact"]["wa_id"], "31656700001", "{body}");
        }
    }
    let data = |i: usize| hits[i].json()["data"].clone();
    assert_eq!(data(0)["message"]["text"], "can I talk to a human");
    assert_eq!(data(1)["by"], "bot");
    assert_eq!(data(3)["assignee"]["email"], ADMIN);
    assert_eq!(data(4)["note"], "all good");
    assert_eq!(data(5)["trigger"], "take_over");
    assert_eq!(data(6)["error"]["code"], 131026);
    assert_eq!(data(9)["waba_id"].as_str().map(|w| !w.is_empty()), Some(true));
    // Erasing the contact deletes its conversation's events, delivered or not.
    let erased = s
        .app()
        .store
        .write(|c| frontdesk::store::contacts::erase(c, "31656700001", "test", frontdesk::domain::now_ms()))
        .await
        .unwrap();
    assert!(erased.is_some());
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM webhook_deliveries WHERE ordering_key LIKE 'conversation:%'"),
        0
    );
    // The secret is never in the journal or the database.
    s.idle().await;
    for f in ["frontdesk.db", "queue.redb"] {
        let bytes = std::fs::read(s.dir.path().join(f)).unwrap();
        assert!(
            !bytes.windows(HOOK_SECRET.len()).any(|w| w == HOOK_SECRET.as_bytes()),
            "{f}"
        );
    }
    s.stop().await;
}

/// Twelve 500s, then 200s: every event of three interleaved conversations arrives, each
/// conversation's in the order committed, retries with the same id and body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_a_while_gets_every_event_in_order_with_one_id() {
    let receiver = FakeReceiver::start().await;
    receiver.fail_next(12);
    let url = receiver.url.clone();
    let s = TestServer::start_with(move |c| c.webhooks.endpoints = vec![endpoint(&url, &["message.received"])]).await;
    for i in 0..5 {
        for c in 0..3 {
            say(
                &s,
                &format!("3165680000{c}"),
                &format!("wamid.order-{c}-{i}"),
                &format!("message {i}"),
            )
            .await;
        }
    }
    wait_for("15 events delivered", || {
        receiver.delivered().into_iter().collect::<HashSet<_>>().len() == 15
    })
    .await;
    s.idle().await;
    let hits = receiver.hits();
    assert_eq!(hits.iter().filter(|h| h.status == 500).count(), 12);
    let expected = committed_order(&s.app().store);
    assert_eq!(expected.len(), 15);
    assert_delivered_in_order(&expected, &hits);
    // Each failed attempt was retried under the same id.
    let delivered: HashSet<String> = receiver.delivered().into_iter().collect();
    assert!(hits.iter().all(|h| delivered.contains(&h.event_id)));
    s.stop().await;
}

/// Out of attempts, an event is a dead letter listed by `frontdesk queue dead`, and its
/// conversation's later events wait behind it; retried, it and then they are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_out_of_attempts_is_a_dead_letter_and_holds_its_conversation() {
    let receiver = FakeReceiver::start().await;
    receiver.set_failing(true);
    let url = receiver.url.clone();
    let s = TestServer::start_with(move |c| {
        c.webhooks.endpoints = vec![endpoint(&url, &["message.received"])];
        c.webhooks.max_attempts = 3;
    })
    .await;
    say(&s, "31656900001", "wamid.dead-1", "first").await;
    say(&s, "31656900001", "wamid.dead-2", "second").await;
    wait_for("three attempts", || receiver.hits().len() >= 3).await;
    s.idle().await;
    let expected = committed_order(&s.app().store);
    assert_eq!(expected.len(), 2);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "three attempts, then no more");
    assert!(
        hits.iter().all(|h| h.event_id == expected[0].1),
        "the second event waits behind the dead first one"
    );
    let config = s.cli_config();
    let (ok, out, err) = tokio::task::block_in_place(|| queue_cli(&config, &["dead"]));
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("outbound_webhook"))
        .unwrap_or_else(|| panic!("no dead webhook job in {out}"));
    assert!(
        line.contains("attempts=3") && line.contains(&expected[0].1) && line.contains("HTTP 500"),
        "{line}"
    );
    assert!(!out.contains(HOOK_SECRET));
    let job = line.split_whitespace().next().unwrap().to_string();
    receiver.set_failing(false);
    let (ok, _, err) = tokio::task::block_in_place(|| queue_cli(&config, &["retry", &job]));
    assert!(ok, "{err}");
    wait_for("both delivered", || receiver.delivered().len() == 2).await;
    assert_delivered_in_order(&expected, &receiver.hits());
    s.stop().await;
}

/// The real binary, its receiver failing, is killed with `kill -9` while events are
/// queued; restarted (still failing for a while, then not) it delivers every event, each
/// conversation's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_events_queued_loses_none_and_keeps_the_order() {
    let receiver = FakeReceiver::start().await;
    receiver.set_failing(true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(
        dir.path(),
        &format!(
            "[queue]\nbackoff_base_ms = 20\nbackoff_max_ms = 200\n[engine]\ndebounce_ms = 0\n[knowledge]\nembedder = \"none\"\n\
             [webhooks]\nmax_attempts = 10000\n[[webhooks.endpoints]]\nname = \"crm\"\nurl = \"{}\"\nsecret = \"{HOOK_SECRET}\"\nevents = [\"message.received\"]\n",
            receiver.url
        ),
    );
    let mut server = BinServer::start(&config);
    let client = reqwest::Client::new();
    let post_all = |base: String, round: usize| {
        let client = client.clone();
        async move {
            for i in 0..3 {
                for c in 0..4 {
                    let body = text_webhook(
                        "P1",
                        &format!("3165710000{c}"),
                        &format!("wamid.k9-{round}-{c}-{i}"),
                        "hi",
                    );
                    let r = client
                        .post(format!("{base}/webhook"))
                        .header(
                            "x-hub-signature-256",
                            frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes()),
                        )
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                }
            }
        }
    };
    post_all(server.base.clone(), 0).await;
    wait_for("failing attempts before the kill", || receiver.hits().len() >= 12).await;
    server.kill9();
    let before = receiver.hits().len();
    let server = BinServer::start(&config);
    // More changes after the restart join the same lines.
    post_all(server.base.clone(), 1).await;
    wait_for("failing attempts after the restart", || {
        receiver.hits().len() >= before + 4
    })
    .await;
    receiver.set_failing(false);
    wait_for("24 events delivered", || {
        receiver.delivered().into_iter().collect::<HashSet<_>>().len() == 24
    })
    .await;
    let mut server = server;
    assert!(server.sigterm().success());
    let expected = committed_order(&open_store(&dir.path().join("data")));
    assert_eq!(expected.len(), 24);
    assert_delivered_in_order(&expected, &receiver.hits());
}

/// A receiver that answers 500 with an endless body is read for at most 1 KiB (the
/// attempt ends with the status and the start of the body, not with a timeout); one that
/// never answers is cut off at `webhooks.timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_or_silent_receiver_is_cut_off() {
    let receiver = FakeReceiver::start().await;
    receiver.misbehave(Misbehave::EndlessBody);
    let url = receiver.url.clone();
    let s = TestServer::start_with(move |c| {
        c.webhooks.endpoints = vec![endpoint(&url, &["message.received"])];
        c.webhooks.max_attempts = 2;
        c.webhooks.timeout_ms = 1_000;
    })
    .await;
    let last_error = |s: &TestServer| {
        s.app()
            .store
            .call_blocking(|c| {
                Ok(c.query_row(
                    "SELECT COALESCE(last_error, '') FROM webhook_deliveries ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get::<_, String>(0),
                )?)
            })
            .unwrap()
    };
    say(&s, "31657200001", "wamid.endless-1", "hello").await;
    wait_for("two attempts", || receiver.hits().len() == 2).await;
    s.idle().await;
    let error = last_error(&s);
    assert!(error.contains("HTTP 500: xxxx"), "{error}");
    // Read to its end, the body would have run into the timeout instead.
    assert!(
        error.len() < 300,
        "the answer kept in the error is short: {} bytes",
        error.len()
    );
    receiver.misbehave(Misbehave::Hang);
    say(&s, "31657200002", "wamid.silent-1", "hello").await;
    wait_for("two more attempts", || receiver.hits().len() == 4).await;
    s.idle().await;
    let error = last_error(&s);
    assert!(error.contains("timed out"), "{error}");
    s.stop().await;
}
