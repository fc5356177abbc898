//! The GET handshake matrix.

use crate::support::{TestServer, VERIFY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_matrix() {
    let s = TestServer::start().await;
    let cases: &[(&str, u16, Option<&str>)] = &[
        (
            &format!("hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"),
            200,
            Some("1158201444"),
        ),
        (
            &format!("hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=abc%20def"),
            200,
            Some("abc def"),
        ),
        ("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", 403, None),
        (
            &format!("hub.mode=unsubscribe&hub.verify_token={VERIFY}&hub.challenge=1"),
            403,
            None,
        ),
        (&format!("hub.verify_token={VERIFY}&hub.challenge=1"), 403, None),
        ("hub.mode=subscribe&hub.challenge=1", 403, None),
        (
            &format!("hub.mode=subscribe&hub.verify_token={VERIFY}x&hub.challenge=1"),
            403,
            None,
        ),
        (&format!("hub.mode=subscribe&hub.verify_token={VERIFY}"), 400, None),
        ("", 403, None),
    ];
    for (query, status, body) in cases {
        let r = s
            .client
            .get(format!("{}/webhook?{query}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{query}");
        if let Some(want) = body {
            assert_eq!(r.headers()["content-type"], "text/plain", "{query}");
            assert_eq!(
                r.text().await.unwrap(),
                *want,
                "{query}: body must be the bare challenge"
            );
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/healthz").await, (200, "ok".into()));
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sqlite"], "ok");
    assert_eq!(v["queue"], "ok");
    let (status, metrics) = s.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("frontdesk_webhooks_received_total 0"), "{metrics}");
    s.stop().await;
}
