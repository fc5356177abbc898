//! The signature matrix: only a correct HMAC over the exact bytes gets in, and a
//! refused POST stores nothing.

use frontdesk::whatsapp::signature::sign;

use crate::support::{SECRET, TestServer, text_webhook};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_matrix() {
    let s = TestServer::start().await;
    let body = text_webhook("P1", "31611111111", "wamid.sig-1", "hello").into_bytes();
    let good = sign(SECRET.as_bytes(), &body);
    let mut changed = body.clone();
    let i = changed.iter().position(|&b| b == b'h').unwrap();
    changed[i] = b'j';
    let bad_cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        ("wrong prefix", body.clone(), Some(good.replace("sha256=", "sha1="))),
        (
            "no prefix",
            body.clone(),
            Some(good.trim_start_matches("sha256=").to_string()),
        ),
        ("bad hex", body.clone(), Some("sha256=".to_string() + &"zz".repeat(32))),
        ("short hex", body.clone(), Some("sha256=abcd".into())),
        ("wrong secret", body.clone(), Some(sign(b"not-the-secret", &body))),
        ("one byte changed", changed, Some(good.clone())),
        ("empty", body.clone(), Some(String::new())),
    ];
    for (name, b, sig) in bad_cases {
        assert_eq!(s.post_raw(&b, sig.as_deref()).await, 401, "{name}");
    }
    let stats = s.app().queue.stats().unwrap();
    assert!(
        stats.queues.is_empty() && stats.dedupe_keys == 0,
        "a refused POST stored something: {stats:?}"
    );
    assert_eq!(s.metric("webhooks_rejected_signature_total"), 8);

    // Escaped unicode (as Meta sends it) and raw UTF-8 both verify over the exact bytes.
    let escaped = text_webhook("P1", "31611111111", "wamid.sig-esc", "caf\u{e9} \u{1F600}")
        .replace('\u{e9}', "\\u00e9")
        .replace('\u{1F600}', "\\ud83d\\ude00");
    assert!(escaped.is_ascii());
    assert_eq!(s.post_webhook(escaped.as_bytes()).await, 200, "escaped unicode");
    let raw = text_webhook("P1", "31611111111", "wamid.sig-raw", "caf\u{e9} \u{1F600}");
    assert!(!raw.is_ascii());
    assert_eq!(s.post_webhook(raw.as_bytes()).await, 200, "raw UTF-8");
    // The escaped body signed after re-encoding as raw UTF-8 must fail: we hash bytes, not JSON.
    let reencoded = serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&escaped).unwrap()).unwrap();
    assert_eq!(
        s.post_raw(escaped.as_bytes(), Some(&sign(SECRET.as_bytes(), &reencoded)))
            .await,
        401
    );
    assert_eq!(s.post_webhook(&body).await, 200, "the good signature");
    s.drain().await;
    let texts: Vec<String> = s.inbound().into_iter().map(|m| m.text).collect();
    assert!(texts.contains(&"caf\u{e9} \u{1F600}".to_string()), "{texts:?}");
    assert_eq!(texts.len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_and_stores_nothing() {
    let s = TestServer::start_with(|c| c.server.body_limit_bytes = 4096).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    assert_eq!(s.post_webhook(big.as_bytes()).await, 413);
    assert!(s.app().queue.stats().unwrap().queues.is_empty());
    assert_eq!(s.metric("webhooks_rejected_body_total"), 1);
    s.stop().await;
}
