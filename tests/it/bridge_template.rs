//! The bridge outside the 24-hour window: a handoff that comes after the window closed
//! sends the configured approved template (`engine.bridge_template`) instead of free text
//! Meta would refuse, and the inbox says so. The late case too: a bridge text queued while
//! the window was open but refused by Meta (131047, at once or as a `failed` status)
//! because it had closed by the time it went out gives way to the template, once.

use frontdesk::config::TemplateConfig;

use frontdesk::http::fake_graph::Failure;

use crate::engine::{owner, say, shop};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, get, login};
use crate::support::{TestServer, text_webhook_at};

/// What the late fallback's note starts with.
const LATE_NOTE: &str = "The bridge text could not go out: the 24-hour window had closed by the time it was sent";

/// A shop with `bridge_to_team` (en_US) configured, and as the bridge template when `use_it`.
async fn shop_with_bridge_template(use_it: bool) -> TestServer {
    shop(|c| {
        c.whatsapp.templates.push(TemplateConfig {
            name: "bridge_to_team".into(),
            language: "en_US".into(),
            params: 0,
            description: "A teammate will follow up".into(),
        });
        if use_it {
            c.engine.bridge_template = "bridge_to_team".into();
        }
    })
    .await
}

/// The conversation page as the admin sees it.
async fn conversation_page(s: &TestServer) -> String {
    tokio::task::block_in_place(|| cli_add(s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(s, ADMIN, ADMIN_PW).await.1.unwrap();
    let conv = s.query_i64("SELECT id FROM conversations");
    let (st, page, _) = get(s, &format!("/app/c/{conv}"), Some(&cookie)).await;
    assert_eq!(st, 200);
    page
}

/// (kind, state, error code) of every ledger row, oldest first.
fn ledger(s: &TestServer) -> Vec<(String, String, Option<i64>)> {
    s.app()
        .store
        .call_blocking(|c| {
            let mut st = c.prepare("SELECT kind, state, error_code FROM outbound ORDER BY id")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_meta_refuses_for_a_closed_window_falls_back_to_the_template_once() {
    let s = shop_with_bridge_template(true).await;
    // Open by our clock, closed by Meta's by the time the bridge goes out: 131047.
    s.graph.fail_next(Failure::code(131047), 1);
    say(&s, "31793330011", "wamid.late-sync", "I want to speak to someone").await;
    s.wait_until("the template", |s| !s.graph.sent().is_empty()).await;
    s.idle().await;
    assert_eq!(owner(&s, "31793330011"), "human");
    let sent = s.graph.sent();
    assert_eq!(sent.len(), 1, "the template only");
    assert_eq!(sent[0].body["type"], "template", "{}", sent[0].body);
    assert_eq!(sent[0].body["template"]["name"], "bridge_to_team");
    assert_eq!(s.graph.send_attempts().len(), 2, "the refused text, then the template");
    let rows = ledger(&s);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], ("text".into(), "failed".into(), Some(131047)));
    assert_eq!(rows[1].0, "template");
    assert_ne!(rows[1].1, "failed");
    let page = conversation_page(&s).await;
    assert_eq!(in_thread(&page).matches(LATE_NOTE).count(), 1, "{page}");
    assert!(page.contains("the customer got the approved template"), "{page}");
    s.stop().await;
}

/// Meta's `failed` status for the accepted bridge text, with 131047.
fn failed_status(wamid: &str, ledger_id: i64) -> String {
    let st = serde_json::json!({ "id": wamid, "status": "failed", "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(),
        "recipient_id": "31793330012", "biz_opaque_callback_data": format!("fd:{ledger_id}"),
        "errors": [{ "code": 131047, "title": "Re-engagement message", "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." } }] });
    serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages",
        "value": { "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" }, "statuses": [st] } }] }] })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_for_a_closed_window_sends_the_bridge_template_once() {
    let s = shop_with_bridge_template(true).await;
    s.graph.set_statuses(None);
    say(&s, "31793330012", "wamid.late-async", "I want to speak to someone").await;
    s.wait_until("the bridge text", |s| !s.graph.sent().is_empty()).await;
    s.idle().await;
    let text = s.graph.sent()[0].clone();
    assert_eq!(text.body["type"], "text");
    let id = s.query_i64("SELECT id FROM outbound");
    // Meta accepted it, then reports it failed: the window had closed. Twice (a
    // redelivery with another timestamp): one template all the same.
    for _ in 0..2 {
        assert_eq!(s.post_webhook(failed_status(&text.wamid, id).as_bytes()).await, 200);
        s.wait_until("the template", |s| s.graph.sent().len() >= 2).await;
        s.idle().await;
    }
    let sent = s.graph.sent();
    assert_eq!(sent.len(), 2, "the text, then the template once");
    assert_eq!(sent[1].body["type"], "template", "{}", sent[1].body);
    assert_eq!(sent[1].body["template"]["name"], "bridge_to_team");
    let rows = ledger(&s);
    assert_eq!(rows[0], ("text".into(), "failed".into(), Some(131047)));
    assert_eq!(rows.len(), 2, "{rows:?}");
    let page = conversation_page(&s).await;
    assert_eq!(in_thread(&page).matches(LATE_NOTE).count(), 1, "{page}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_refused_bridge_stays_failed_without_a_usable_template() {
    // A paused template is not used: the note says why.
    let s = shop_with_bridge_template(true).await;
    let paused = std::fs::read(format!(
        "{}/tests/fixtures/webhooks/meta/message_template_status_update/paused.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(s.post_webhook(&paused).await, 200);
    s.graph.fail_next(Failure::code(131047), 1);
    say(&s, "31793330013", "wamid.late-paused", "I want to speak to someone").await;
    s.wait_until("the refused bridge", |s| !s.graph.send_attempts().is_empty())
        .await;
    s.idle().await;
    assert!(s.graph.sent().is_empty(), "nothing reached the customer");
    assert_eq!(ledger(&s), vec![("text".into(), "failed".into(), Some(131047))]);
    let page = conversation_page(&s).await;
    assert_eq!(in_thread(&page).matches(LATE_NOTE).count(), 1, "{page}");
    assert!(
        page.contains("(en_US) was not used: Meta has it PAUSED: FIRST_PAUSE"),
        "{page}"
    );
    s.stop().await;

    // No bridge template configured: the failed text stays the thread's only trace.
    let s = shop_with_bridge_template(false).await;
    s.graph.fail_next(Failure::code(131047), 1);
    say(&s, "31793330014", "wamid.late-none", "I want to speak to someone").await;
    s.wait_until("the refused bridge", |s| !s.graph.send_attempts().is_empty())
        .await;
    s.idle().await;
    assert!(s.graph.sent().is_empty());
    assert_eq!(ledger(&s), vec![("text".into(), "failed".into(), Some(131047))]);
    let page = conversation_page(&s).await;
    assert!(!page.contains(LATE_NOTE), "{page}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_after_the_window_closed_sends_the_bridge_template_and_the_inbox_says_so() {
    let s = shop(|c| {
        c.whatsapp.templates.push(TemplateConfig {
            name: "teammate_follow_up".into(),
            language: "en_US".into(),
            params: 0,
            description: "A teammate will follow up".into(),
        });
        c.engine.bridge_template = "teammate_follow_up".into();
    })
    .await;
    // Delivered late (Meta retries for days): written 25 hours ago, the window is closed.
    let written = frontdesk::domain::now_ms() / 1000 - 25 * 3600;
    let body = text_webhook_at(
        "P1",
        "31793330001",
        "wamid.late-1",
        "I want to speak to someone",
        written,
    );
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.wait_until("the bridge", |s| !s.graph.sent().is_empty()).await;
    s.idle().await;
    assert_eq!(owner(&s, "31793330001"), "human");
    let sent = s.graph.sent();
    assert_eq!(sent.len(), 1, "the template only, no free text");
    assert_eq!(sent[0].body["type"], "template", "{}", sent[0].body);
    assert_eq!(sent[0].body["template"]["name"], "teammate_follow_up");
    assert_eq!(sent[0].body["template"]["language"]["code"], "en_US");
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM outbound WHERE kind = 'template' AND state <> 'failed'"),
        1
    );
    // The inbox says so, once.
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let conv = s.query_i64("SELECT id FROM conversations");
    let (st, page, _) = get(&s, &format!("/app/c/{conv}"), Some(&cookie)).await;
    assert_eq!(st, 200);
    assert_eq!(
        in_thread(&page)
            .matches("The 24-hour window had closed when this conversation was handed off")
            .count(),
        1,
        "{page}"
    );
    assert!(page.contains("teammate_follow_up"), "{page}");
    s.stop().await;
}

#[test]
fn the_bridge_template_must_be_a_configured_template_without_parameters() {
    let mut c = crate::support::test_config(std::path::Path::new("/tmp"));
    c.engine.bridge_template = "missing".into();
    let problems = format!("{:?}", c.problems());
    assert!(problems.contains("engine.bridge_template"), "{problems}");
    c.whatsapp.templates.push(TemplateConfig {
        name: "missing".into(),
        language: "en_US".into(),
        params: 1,
        description: String::new(),
    });
    let problems = format!("{:?}", c.problems());
    assert!(problems.contains("must take none"), "{problems}");
    c.whatsapp.templates[0].params = 0;
    let problems = format!("{:?}", c.problems());
    assert!(!problems.contains("engine.bridge_template"), "{problems}");
}

/// The thread of a conversation page (the contact panel above it lists the same notes
/// among the customer's notes).
fn in_thread(page: &str) -> &str {
    page.split("class=\"thread\"").nth(1).unwrap_or_default()
}
