//! Sending, against the fake Graph API: exact request bodies, limits checked before a
//! request, the 24-hour window, each error code's outcome, rate limits under a burst,
//! token pause and resume, timeouts, and the crash between Meta's accept and our commit.

use std::time::{Duration, Instant};

use frontdesk::domain::outbound::{Button, ListRow, ListSection, MediaSource, OutboundBody};
use frontdesk::http::fake_graph::{Failure, StatusScript};
use frontdesk::store::ledger::NewOutbound;
use serde_json::json;

use crate::support::{TestServer, text_webhook};

/// Posts an inbound message from `wa_id` and returns its conversation id.
async fn conversation(s: &TestServer, wa_id: &str) -> i64 {
    let wamid = format!("wamid.in-{wa_id}-{}", frontdesk::domain::now_ms());
    assert_eq!(
        s.post_webhook(text_webhook("P1", wa_id, &wamid, "hello").as_bytes())
            .await,
        200
    );
    s.drain().await;
    s.query_i64(&format!(
        "SELECT v.id FROM conversations v JOIN contacts k ON k.id = v.contact_id WHERE k.wa_id = '{wa_id}'"
    ))
}

fn send_req(conversation_id: i64, key: &str, body: OutboundBody) -> NewOutbound {
    NewOutbound {
        conversation_id,
        author: "agent:test".into(),
        body,
        reply_to: None,
        idempotency_key: key.into(),
    }
}

fn text(body: &str) -> OutboundBody {
    OutboundBody::Text {
        body: body.into(),
        preview_url: false,
    }
}

/// (state, attempts, error_reason) of a ledger row.
fn ledger(s: &TestServer, id: i64) -> (String, i64, Option<String>) {
    s.app()
        .store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT state, attempts, error_reason FROM outbound WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap()
}

async fn wait_state(s: &TestServer, id: i64, states: &[&str]) {
    s.wait_until(&format!("ledger {id} in {states:?}"), |s| {
        states.contains(&ledger(s, id).0.as_str())
    })
    .await;
}

fn no_bot(c: &mut frontdesk::config::Config) {
    c.bot.enabled = false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_replies_once_with_read_receipt_and_ticks() {
    let s = TestServer::start().await;
    let body = text_webhook("P1", "31690000001", "wamid.ask-1", "Are you open on Sunday?");
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.wait_until("a reply", |s| s.graph.sent().len() == 1).await;
    let sent = &s.graph.sent()[0];
    assert_eq!(sent.body["to"], "31690000001");
    // The knowledge base is empty, so the engine hands off, saying it does not know.
    assert_eq!(
        sent.body["text"]["body"],
        frontdesk::config::EngineConfig::default().unknown_text
    );
    assert!(
        sent.body["biz_opaque_callback_data"]
            .as_str()
            .unwrap()
            .starts_with("fd:")
    );
    let reads = s.graph.reads();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0]["message_id"], "wamid.ask-1");
    assert_eq!(reads[0]["typing_indicator"], json!({ "type": "text" }));
    // Status webhooks move the ledger and the conversation's message to read.
    s.wait_until("read ticks", |s| {
        s.messages().iter().any(|m| m.direction == "out" && m.status == "read")
    })
    .await;
    assert_eq!(ledger(&s, 1).0, "read");
    // Meta re-delivers the customer's message: still one answer.
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.drain().await;
    s.idle().await;
    assert_eq!(s.graph.sent().len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_owned_conversation_gets_no_bot_reply() {
    let s = TestServer::start().await;
    assert_eq!(
        s.post_webhook(text_webhook("P1", "31690000002", "wamid.h-1", "hi").as_bytes())
            .await,
        200
    );
    s.wait_until("first reply", |s| s.graph.sent().len() == 1).await;
    s.app()
        .store
        .call_blocking(|c| Ok(c.execute("UPDATE conversations SET owner = 'human'", [])?))
        .unwrap();
    assert_eq!(
        s.post_webhook(text_webhook("P1", "31690000002", "wamid.h-2", "hello?").as_bytes())
            .await,
        200
    );
    s.drain().await;
    s.wait_until("the reply job to finish", |s| {
        s.app().queue.stats().unwrap().queues.iter().all(|q| q.ready == 0) && s.app().queue.stats().unwrap().leased == 0
    })
    .await;
    s.idle().await;
    assert_eq!(
        s.graph.sent().len(),
        1,
        "the bot must stay silent while a human owns the conversation"
    );
    assert_eq!(s.messages().len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_has_its_exact_request_body() {
    let s = TestServer::start_with(no_bot).await;
    let conv = conversation(&s, "31690000003").await;
    let cases = [
        (
            OutboundBody::Buttons {
                body: "Is this about an order?".into(),
                buttons: vec![
                    Button {
                        id: "yes".into(),
                        title: "Yes".into(),
                    },
                    Button {
                        id: "no".into(),
                        title: "No".into(),
                    },
                ],
                header: Some("Quick question".into()),
                footer: None,
            },
            json!({"type":"interactive","interactive":{"type":"button","header":{"type":"text","text":"Quick question"},"body":{"text":"Is this about an order?"},
                   "action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}},{"type":"reply","reply":{"id":"no","title":"No"}}]}}}),
        ),
        (
            OutboundBody::List {
                body: "Pick a service".into(),
                button: "Services".into(),
                sections: vec![ListSection {
                    title: "Workshop".into(),
                    rows: vec![ListRow {
                        id: "std".into(),
                        title: "Standard service".into(),
                        description: Some("€79".into()),
                    }],
                }],
            },
            json!({"type":"interactive","interactive":{"type":"list","body":{"text":"Pick a service"},"action":{"button":"Services",
                   "sections":[{"title":"Workshop","rows":[{"id":"std","title":"Standard service","description":"€79"}]}]}}}),
        ),
        (
            OutboundBody::Template {
                name: "order_update".into(),
                language: "en_US".into(),
                params: vec!["SS-10421".into()],
            },
            json!({"type":"template","template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"SS-10421"}]}]}}),
        ),
        (
            OutboundBody::Media {
                media_type: "image".into(),
                source: MediaSource::Id("998877".into()),
                caption: Some("Your receipt".into()),
                filename: None,
            },
            json!({"type":"image","image":{"id":"998877","caption":"Your receipt"}}),
        ),
        (
            OutboundBody::Media {
                media_type: "document".into(),
                source: MediaSource::Link("https://example.com/i.pdf".into()),
                caption: None,
                filename: Some("invoice.pdf".into()),
            },
            json!({"type":"document","document":{"link":"https://example.com/i.pdf","filename":"invoice.pdf"}}),
        ),
    ];
    let mut ids = Vec::new();
    let mut req = send_req(conv, "k-text", text("Reply in context"));
    req.reply_to = Some("wamid.in-ctx".into());
    ids.push(s.app().outbound.enqueue(req).await.unwrap());
    for (i, (body, _)) in cases.iter().enumerate() {
        ids.push(
            s.app()
                .outbound
                .enqueue(send_req(conv, &format!("k-{i}"), body.clone()))
                .await
                .unwrap(),
        );
    }
    s.wait_until("all sends", |s| s.graph.sent().len() == ids.len()).await;
    let sent = s.graph.sent();
    // They left in order, each with the ledger id as callback data.
    for (n, (id, m)) in ids.iter().zip(&sent).enumerate() {
        assert_eq!(m.body["biz_opaque_callback_data"], format!("fd:{id}"), "message {n}");
        assert_eq!(m.body["messaging_product"], "whatsapp");
        assert_eq!(m.body["recipient_type"], "individual");
        assert_eq!(m.body["to"], "31690000003");
    }
    assert_eq!(
        sent[0].body["text"],
        json!({"body":"Reply in context","preview_url":false})
    );
    assert_eq!(sent[0].body["context"], json!({"message_id":"wamid.in-ctx"}));
    for ((_, want), got) in cases.iter().zip(&sent[1..]) {
        let mut got = got.body.clone();
        for k in ["messaging_product", "recipient_type", "to", "biz_opaque_callback_data"] {
            got.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(&got, want);
    }
    // The same idempotency key again is the same row and no second send.
    let again = s
        .app()
        .outbound
        .enqueue(send_req(conv, "k-0", cases[0].0.clone()))
        .await
        .unwrap();
    assert_eq!(again, ids[1]);
    s.idle().await;
    assert_eq!(s.graph.sent().len(), ids.len());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_checked_before_sending() {
    let s = TestServer::start_with(no_bot).await;
    let conv = conversation(&s, "31690000004").await;
    let four = OutboundBody::Buttons {
        body: "b".into(),
        buttons: (0..4)
            .map(|i| Button {
                id: format!("{i}"),
                title: format!("B{i}"),
            })
            .collect(),
        header: None,
        footer: None,
    };
    let long_title = OutboundBody::Buttons {
        body: "b".into(),
        buttons: vec![Button {
            id: "x".into(),
            title: "A title over twenty chars".into(),
        }],
        header: None,
        footer: None,
    };
    let eleven = OutboundBody::List {
        body: "b".into(),
        button: "Menu".into(),
        sections: vec![ListSection {
            title: "s".into(),
            rows: (0..11)
                .map(|i| ListRow {
                    id: format!("{i}"),
                    title: format!("R{i}"),
                    description: None,
                })
                .collect(),
        }],
    };
    for (body, want) in [
        (four, "1 to 3"),
        (long_title, "at most 20"),
        (eleven, "1 to 10"),
        (text(&"x".repeat(5000)), "at most 4096"),
    ] {
        let err = s
            .app()
            .outbound
            .enqueue(send_req(conv, "bad", body))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM outbound"), 0);
    assert!(s.graph.sent().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_form_is_refused_24h_and_1s_after_the_last_message_but_a_template_goes() {
    let s = TestServer::start_with(no_bot).await;
    let conv = conversation(&s, "31690000005").await;
    let stale = frontdesk::domain::now_ms() - 24 * 3_600_000 - 1_000;
    s.app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE conversations SET last_inbound_at = ?1", [stale])?))
        .unwrap();
    let err = s
        .app()
        .outbound
        .enqueue(send_req(conv, "late", text("Sorry for the wait!")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("24-hour window"), "{err}");
    assert_eq!(s.query_i64("SELECT needs_template FROM conversations"), 1);
    let template = OutboundBody::Template {
        name: "follow_up".into(),
        language: "en_US".into(),
        params: vec![],
    };
    let id = s.app().outbound.enqueue(send_req(conv, "tpl", template)).await.unwrap();
    wait_state(&s, id, &["accepted", "sent", "delivered", "read"]).await;
    let sent = s.graph.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["type"], "template");
    // A new customer message reopens the window.
    conversation(&s, "31690000005").await;
    assert_eq!(s.query_i64("SELECT needs_template FROM conversations"), 0);
    s.app()
        .outbound
        .enqueue(send_req(conv, "now-ok", text("Thanks!")))
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_code_has_its_outcome() {
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.queue.max_attempts = 4;
    })
    .await;
    let conv = conversation(&s, "31690000006").await;
    // 131047: not retried; the conversation needs a template.
    s.graph.fail_next(Failure::code(131047), 1);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "e1", text("one")))
        .await
        .unwrap();
    wait_state(&s, id, &["failed"]).await;
    let (_, attempts, reason) = ledger(&s, id);
    assert_eq!(attempts, 1);
    assert!(reason.unwrap().contains("131047"));
    assert_eq!(s.query_i64("SELECT needs_template FROM conversations"), 1);
    // 131026: permanent failure with a readable reason.
    s.graph.fail_next(Failure::code(131026), 1);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "e2", text("two")))
        .await
        .unwrap();
    wait_state(&s, id, &["failed"]).await;
    assert!(ledger(&s, id).2.unwrap().contains("cannot receive"));
    // 131056 and 500/131000: retried with backoff, then accepted.
    s.graph.fail_next(Failure::code(131056), 1);
    s.graph.fail_next(Failure::code(131000), 1);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "e3", text("three")))
        .await
        .unwrap();
    wait_state(&s, id, &["accepted", "sent", "delivered", "read"]).await;
    assert_eq!(ledger(&s, id).1, 3);
    // Out of attempts: failed, with the last reason.
    s.graph.fail_next(Failure::code(130429), 10);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "e4", text("four")))
        .await
        .unwrap();
    wait_state(&s, id, &["failed"]).await;
    let reason = ledger(&s, id).2.unwrap();
    assert!(
        reason.contains("gave up after 4 attempts") && reason.contains("130429"),
        "{reason}"
    );
    assert_eq!(s.graph.sent().len(), 1, "only the retried message was accepted");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_pauses_sending_visibly_and_resumes_when_fixed() {
    let s = TestServer::start_with(no_bot).await;
    let conv = conversation(&s, "31690000007").await;
    s.graph.set_token("rotated-token");
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "t1", text("hello")))
        .await
        .unwrap();
    s.wait_until("the pause", |s| s.app().send_pause.reason().is_some())
        .await;
    let (status, ready) = s.get("/readyz").await;
    assert_eq!(status, 200, "webhooks must keep flowing");
    assert!(ready.contains("paused") && ready.contains("190"), "{ready}");
    assert!(s.get("/metrics").await.1.contains("frontdesk_sending_paused 1"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ledger(&s, id).0, "queued", "nothing is dropped while paused");
    assert!(ledger(&s, id).2.unwrap().contains("access token"));
    // The operator fixes the token: sending resumes by itself.
    s.app().graph.set_token(frontdesk::config::Secret::new("rotated-token"));
    wait_state(&s, id, &["accepted", "sent", "delivered", "read"]).await;
    assert!(s.app().send_pause.reason().is_none());
    assert!(s.get("/readyz").await.1.contains("\"sending\":\"ok\""));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_graph_api_retries_then_fails_with_a_reason() {
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.whatsapp.graph_base_url = "http://127.0.0.1:9".into();
        c.queue.max_attempts = 3;
    })
    .await;
    let conv = conversation(&s, "31690000008").await;
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "u1", text("hello")))
        .await
        .unwrap();
    wait_state(&s, id, &["failed"]).await;
    let (_, attempts, reason) = ledger(&s, id);
    assert_eq!(attempts, 3);
    let reason = reason.unwrap();
    assert!(reason.contains("gave up") && reason.contains("unreachable"), "{reason}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_graph_api_is_not_resent_blindly() {
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.whatsapp.request_timeout_ms = 300;
        c.send.reconcile_grace_ms = 600;
    })
    .await;
    let conv = conversation(&s, "31690000009").await;
    // Meta accepted it, but its answer never reached us: the status webhook reconciles it.
    s.graph.fail_next(Failure::AcceptThenHang { ms: 1_500 }, 1);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "s1", text("accepted but unanswered")))
        .await
        .unwrap();
    wait_state(&s, id, &["sent", "delivered", "read"]).await;
    s.idle().await;
    assert_eq!(
        s.graph.sent().len(),
        1,
        "reconciled from the status webhook, not resent"
    );
    assert!(
        s.messages()
            .iter()
            .any(|m| m.direction == "out" && m.id == s.graph.sent()[0].wamid)
    );
    // A slow failure (nothing accepted, no status): sent again after the grace period.
    s.graph.fail_next(Failure::Slow { ms: 1_000 }, 1);
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "s2", text("slow then ok")))
        .await
        .unwrap();
    wait_state(&s, id, &["accepted", "sent", "delivered", "read"]).await;
    assert_eq!(s.graph.sent().len(), 2);
    assert_eq!(ledger(&s, id).1, 2, "two attempts");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_limit_and_number_cap_hold_under_a_burst() {
    // Pair limit: one per 400 ms after a burst of 2, to one customer.
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.send.pair_interval_ms = 400;
        c.send.pair_burst = 2;
        c.send.number_rate_per_s = 0.0;
    })
    .await;
    let conv = conversation(&s, "31690000010").await;
    for i in 0..5 {
        s.app()
            .outbound
            .enqueue(send_req(conv, &format!("p{i}"), text(&format!("part {i}"))))
            .await
            .unwrap();
    }
    s.wait_until("5 sends", |s| s.graph.sent().len() == 5).await;
    let at: Vec<u64> = s.graph.sent().iter().map(|m| m.at_ms).collect();
    let texts: Vec<String> = s
        .graph
        .sent()
        .iter()
        .map(|m| m.body["text"]["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        (0..5).map(|i| format!("part {i}")).collect::<Vec<_>>(),
        "order kept"
    );
    assert!(at[1] - at[0] < 250, "burst of two: {at:?}");
    // A token bucket: the k-th message (k >= burst) leaves no sooner than (k - 1) intervals
    // after the first.
    for k in 2..at.len() {
        assert!(
            at[k] - at[0] >= (k as u64 - 1) * 400 - 30,
            "pair limit not held: {at:?}"
        );
    }
    s.stop().await;

    // Number cap: 40 msg/s across 60 customers.
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.send.number_rate_per_s = 40.0;
    })
    .await;
    let mut convs = Vec::new();
    for i in 0..60 {
        let wamid = format!("wamid.cap-{i}");
        assert_eq!(
            s.post_webhook(text_webhook("P1", &format!("3169100{i:04}"), &wamid, "hi").as_bytes())
                .await,
            200
        );
    }
    s.drain().await;
    s.app()
        .store
        .call_blocking(|c| {
            let mut st = c.prepare("SELECT id FROM conversations ORDER BY id")?;
            convs.extend(st.query_map([], |r| r.get::<_, i64>(0))?.map(|r| r.unwrap()));
            Ok(())
        })
        .unwrap();
    let start = Instant::now();
    for (i, conv) in convs.iter().enumerate() {
        s.app()
            .outbound
            .enqueue(send_req(*conv, &format!("c{i}"), text("news")))
            .await
            .unwrap();
    }
    s.wait_until("60 sends", |s| s.graph.sent().len() == 60).await;
    let at: Vec<u64> = s.graph.sent().iter().map(|m| m.at_ms).collect();
    let span_ms = at.iter().max().unwrap() - at.iter().min().unwrap();
    // 60 messages at 40/s with a burst of 4: at least (60-4)/40 s = 1.4 s.
    assert!(span_ms >= 1_300, "cap exceeded: 60 sends in {span_ms} ms");
    assert!(span_ms <= 2_600, "far slower than the cap: {span_ms} ms");
    eprintln!(
        "number cap 40/s: 60 sends in {span_ms} ms ({:.1}/s); enqueue+send total {:?}",
        59_000.0 / span_ms as f64,
        start.elapsed()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_webhooks_reorder_and_duplicate_safely() {
    let s = TestServer::start_with(no_bot).await;
    s.graph.set_statuses(Some(StatusScript {
        steps: vec![("sent".into(), 10), ("delivered".into(), 10), ("read".into(), 10)],
        duplicate: true,
        reverse: true,
    }));
    let conv = conversation(&s, "31690000011").await;
    let id = s
        .app()
        .outbound
        .enqueue(send_req(conv, "r1", text("hello")))
        .await
        .unwrap();
    wait_state(&s, id, &["read"]).await;
    s.idle().await;
    assert_eq!(ledger(&s, id).0, "read", "late sent/delivered never move it back");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_templates_are_enforced() {
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.whatsapp.templates = vec![frontdesk::config::TemplateConfig {
            name: "order_update".into(),
            language: "en_US".into(),
            params: 1,
            description: "Your order {{1}} has an update".into(),
        }];
    })
    .await;
    let conv = conversation(&s, "31690000012").await;
    let t = |name: &str, params: Vec<&str>| OutboundBody::Template {
        name: name.into(),
        language: "en_US".into(),
        params: params.into_iter().map(String::from).collect(),
    };
    let err = s
        .app()
        .outbound
        .enqueue(send_req(conv, "t1", t("promo", vec![])))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not configured") && err.contains("order_update"), "{err}");
    let err = s
        .app()
        .outbound
        .enqueue(send_req(conv, "t2", t("order_update", vec![])))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes 1 parameter"), "{err}");
    s.app()
        .outbound
        .enqueue(send_req(conv, "t3", t("order_update", vec!["SS-10421"])))
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_download_refetches_an_expired_url_and_enforces_the_size_limit() {
    let s = TestServer::start_with(no_bot).await;
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    s.graph.add_media("4490709327384033", "image/jpeg", bytes.clone());
    let graph = &s.app().graph;
    let (info, got) = graph.download_media("4490709327384033", 1_000_000).await.unwrap();
    assert_eq!(got, bytes);
    assert_eq!(info.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(info.file_size, Some(50_000));
    // The short-lived URL expired: one refetch of the URL, then the bytes.
    s.graph.expire_media_url_once("4490709327384033");
    let before = s.graph.media_url_fetches();
    let (_, got) = graph.download_media("4490709327384033", 1_000_000).await.unwrap();
    assert_eq!(got, bytes);
    assert_eq!(s.graph.media_url_fetches() - before, 2);
    // Too large: refused from the declared size, before downloading.
    let err = graph
        .download_media("4490709327384033", 10_000)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than the 10000-byte limit"), "{err}");
    // A wrong token is a Graph error 190.
    graph.set_token(frontdesk::config::Secret::new("nope"));
    let err = graph.download_media("4490709327384033", 1_000_000).await.unwrap_err();
    assert!(
        matches!(err, frontdesk::whatsapp::graph::GraphError::Api { code: Some(190), .. }),
        "{err:?}"
    );
    s.stop().await;
}

/// A ledger row that cannot be read (here: its stored body is not JSON) is not taken for
/// "nothing to send": its job retries and ends as a dead letter an operator sees, with
/// the reason, and nothing is sent for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ledger_row_retries_and_is_dead_lettered_not_dropped() {
    let s = TestServer::start_with(|c| {
        no_bot(c);
        c.queue.max_attempts = 3;
    })
    .await;
    let conv = conversation(&s, "31690000031").await;
    s.app().send_pause.pause("held by the test".into());
    let bad = s
        .app()
        .outbound
        .enqueue(send_req(conv, "bad", text("broken")))
        .await
        .unwrap();
    s.app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE outbound SET body_json = '{' WHERE id = ?1", [bad])?))
        .unwrap();
    s.app().send_pause.resume();
    s.wait_until("the unreadable row's job in the dead letters", |s| {
        s.app().queue.dead(10).unwrap().iter().any(|d| d.queue == "send")
    })
    .await;
    let dead = s.app().queue.dead(10).unwrap();
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot read the ledger row")),
        "{dead:?}"
    );
    assert_eq!(dead[0].attempts, 3, "retried, not finished at the first read");
    assert_eq!(ledger(&s, bad).0, "queued", "never marked sent");
    assert!(s.graph.sent().is_empty());
    s.stop().await;
}

/// A send whose outcome cannot be recorded (here: the Graph API answers with a wamid the
/// ledger already holds, as a fake restarted with its counter at 1 did) does not sit in
/// "sending" unseen: the row is marked failed with why, the agent reads it in the
/// conversation page, and the conversation's later messages still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_outcome_cannot_be_recorded_is_failed_visibly() {
    use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, get, login};
    let s = TestServer::start_with(no_bot).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let conv = conversation(&s, "31690000077").await;
    let first = s
        .app()
        .outbound
        .enqueue(send_req(conv, "r1", text("first")))
        .await
        .unwrap();
    wait_state(&s, first, &["accepted", "sent", "delivered", "read"]).await;
    s.graph.fail_next(Failure::ReuseWamid, 1);
    let second = s
        .app()
        .outbound
        .enqueue(send_req(conv, "r2", text("second")))
        .await
        .unwrap();
    wait_state(&s, second, &["failed"]).await;
    let reason = ledger(&s, second).2.unwrap();
    assert!(
        reason.contains("accepted it") && reason.contains("recording that failed") && reason.contains("UNIQUE"),
        "{reason}"
    );
    let third = s
        .app()
        .outbound
        .enqueue(send_req(conv, "r3", text("third")))
        .await
        .unwrap();
    wait_state(&s, third, &["accepted", "sent", "delivered", "read"]).await;
    s.idle().await;
    assert_ne!(ledger(&s, first).0, "failed", "the other row's outcome is untouched");
    let (_, cookie, _) = login(&s, ADMIN, ADMIN_PW).await;
    let (status, page, _) = get(&s, &format!("/app/c/{conv}"), cookie.as_deref()).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("failed") && page.contains("recording that failed"),
        "{page}"
    );
    s.stop().await;
}

/// The bot's answer to a message whose 24-hour window had already closed when it arrived
/// (Meta delivered it late) is not sent, and not lost from view either: it is kept as a
/// failed ledger row with the reason, so the thread shows what the customer never got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_answer_refused_for_a_closed_window_is_kept_as_failed() {
    let s = TestServer::start().await;
    let long_ago = frontdesk::domain::now_ms() / 1000 - 25 * 3600;
    let late = crate::support::text_webhook_at("P1", "31690000088", "wamid.late-1", "hello, anyone there?", long_ago);
    assert_eq!(s.post_webhook(late.as_bytes()).await, 200);
    s.wait_until("the bot's answer in the ledger", |s| {
        s.query_i64("SELECT COUNT(*) FROM outbound") == 1
    })
    .await;
    s.idle().await;
    let (state, code, reason, author): (String, Option<i64>, Option<String>, String) = s
        .app()
        .store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT state, error_code, error_reason, author FROM outbound",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?)
        })
        .unwrap();
    assert_eq!((state.as_str(), code, author.as_str()), ("failed", Some(131047), "bot"));
    assert!(reason.unwrap().contains("24-hour window"));
    assert!(s.graph.sent().is_empty(), "nothing went to the Graph API");
    s.stop().await;
}
