//! Duplicates and odd deliveries: the same delivery twice, the same message id in
//! another batch, several business numbers, and signed bodies that do not parse.

use crate::support::{TestServer, text_webhook, text_webhook_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_delivery_twice_is_one_row() {
    let s = TestServer::start().await;
    let body = text_webhook("P1", "31622222222", "wamid.dup-1", "where is my order?");
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.drain().await;
    assert_eq!(s.metric("webhooks_duplicate_total"), 1);
    assert_eq!(s.inbound().len(), 1);
    // Same message id inside a different batch, next to a new one.
    let batch = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
            "metadata": { "phone_number_id": "P1" },
            "contacts": [{ "profile": { "name": "C" }, "wa_id": "31622222222" }],
            "messages": [
                { "from": "31622222222", "id": "wamid.dup-1", "timestamp": "1700000000", "type": "text", "text": { "body": "where is my order?" } },
                { "from": "31622222222", "id": "wamid.dup-2", "timestamp": "1700000001", "type": "text", "text": { "body": "hello?" } }
            ]}}]}]
    })
    .to_string();
    assert_eq!(s.post_webhook(batch.as_bytes()).await, 200);
    s.drain().await;
    let ids: Vec<String> = s.inbound().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec!["wamid.dup-1", "wamid.dup-2"]);
    // Re-running an already processed job (as after a lost lease) changes nothing.
    let jobs = vec![frontdesk::queue::ClaimedJob {
        id: 999,
        queue: "webhook".into(),
        attempt: 1,
        max_attempts: 3,
        crashes: 0,
        lease_token: 0,
        payload: batch.into_bytes(),
    }];
    let app = std::sync::Arc::clone(&s.running.as_ref().unwrap().app);
    frontdesk::workers::ingest::process_batch(&app, jobs).await;
    assert_eq!(s.inbound().len(), 2);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM conversations"), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_business_number() {
    let s = TestServer::start_with(|c| c.whatsapp.phone_number_ids = vec!["P1".into(), "P2".into()]).await;
    for (pn, id) in [("P1", "wamid.r1"), ("P2", "wamid.r2"), ("P3", "wamid.r3")] {
        assert_eq!(
            s.post_webhook(text_webhook_at(pn, "31633333333", id, "hi", 1_700_000_000).as_bytes())
                .await,
            200
        );
    }
    s.drain().await;
    let msgs = s.inbound();
    assert_eq!(msgs.len(), 2, "P3 is not served: {msgs:?}");
    assert_ne!(
        msgs[0].conversation, msgs[1].conversation,
        "one conversation per business number"
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM contacts"), 1);
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM raw_events WHERE reason LIKE '%\"P3\" is not served%'"),
        1
    );
    let window: i64 = s.query_i64("SELECT MIN(last_inbound_at) FROM conversations");
    assert_eq!(
        window, 1_700_000_000_000,
        "24 h window starts at the customer's message time"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_garbage_is_kept_raw_and_acknowledged() {
    let s = TestServer::start().await;
    let cases: [&[u8]; 4] = [
        b"{not json",
        br#"{"object":"page","entry":[]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"mystery":[1]}}]}]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"contacts":[{"wa_id":"31644444444"}],"messages":[{"from":"31644444444","id":"wamid.poll","timestamp":"1700000000","type":"poll","poll":{"q":"?"}}]}}]}]}"#,
    ];
    for body in cases {
        assert_eq!(s.post_webhook(body).await, 200);
    }
    s.drain().await;
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM raw_events"), 3);
    let msgs = s.inbound();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, "poll");
    assert_eq!(msgs[0].text, "[unknown message type: poll]");
    assert_eq!(s.metric("ingest_raw_events_total"), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_only_move_forward() {
    let s = TestServer::start().await;
    let status = |state: &str, ts: u64| {
        let mut st = serde_json::json!({ "id": "wamid.out-1", "status": state, "timestamp": ts.to_string(), "recipient_id": "31655555555" });
        if state == "failed" {
            st["errors"] = serde_json::json!([{ "code": 131047, "title": "Re-engagement message", "error_data": { "details": "more than 24 hours" } }]);
        }
        serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages",
            "value": { "metadata": { "phone_number_id": "P1" }, "statuses": [st] } }] }] })
        .to_string()
    };
    let state = |s: &TestServer| -> String {
        s.app()
            .store
            .call_blocking(|c| {
                Ok(c.query_row(
                    "SELECT state FROM message_statuses WHERE wamid = 'wamid.out-1'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    };
    // read arrives before delivered; the late delivered must not win.
    for (st, want) in [
        ("sent", "sent"),
        ("read", "read"),
        ("delivered", "read"),
        ("sent", "read"),
        ("failed", "read"),
    ] {
        assert_eq!(s.post_webhook(status(st, 1700000000).as_bytes()).await, 200);
        s.drain().await;
        assert_eq!(state(&s), want, "after {st}");
    }
    // A failed message keeps its error.
    let failed = status("failed", 1).replace("wamid.out-1", "wamid.out-2");
    let sent = status("sent", 1).replace("wamid.out-1", "wamid.out-2");
    let delivered = status("delivered", 2).replace("wamid.out-1", "wamid.out-2");
    for b in [sent, failed, delivered] {
        assert_eq!(s.post_webhook(b.as_bytes()).await, 200);
        s.drain().await;
    }
    let (state2, code, title): (String, i64, String) = s
        .app()
        .store
        .call_blocking(|c| {
            Ok(c.query_row(
                "SELECT state, error_code, error_title FROM message_statuses WHERE wamid = 'wamid.out-2'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    assert_eq!(
        (state2.as_str(), code, title.as_str()),
        ("failed", 131047, "Re-engagement message")
    );
    s.stop().await;
}
