//! The bridge outside the 24-hour window: a handoff that comes after the window closed
//! sends the configured approved template (`engine.bridge_template`) instead of free text
//! Meta would refuse, and the inbox says so.

use frontdesk::config::TemplateConfig;

use crate::engine::{owner, shop};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, get, login};
use crate::support::text_webhook_at;

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
        page.matches("The 24-hour window had closed when this conversation was handed off")
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
