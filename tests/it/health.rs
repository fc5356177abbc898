//! Account health from Meta's webhooks, end to end: a signed webhook of each health
//! field → the state stored per number, account and template → `/metrics` shows it →
//! a fake Slack hears of the change once (a redelivery or re-run announces nothing).

use frontdesk::config::Secret;

use crate::support::TestServer;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/webhooks/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_webhooks_are_stored_measured_and_announced_once() {
    let (slack_url, slack) = crate::engine_llm::fake_slack().await;
    let s = TestServer::start_with(move |c| c.engine.slack_webhook_url = Secret::new(slack_url)).await;
    for path in [
        "meta/phone_number_quality_update/flagged.json",
        "pywa/account_update/account_restriction.json",
        "meta/message_template_status_update/paused.json",
        "pywa/template_status_update/rejected.json",
    ] {
        assert_eq!(s.post_webhook(&fixture(path)).await, 200, "{path}");
    }
    s.idle().await;
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM number_health WHERE display_phone_number = '15550783881' AND quality_rating = 'RED' AND limit_tier = 'TIER_10K'"),
        1
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM account_health WHERE restricted = 1"),
        1
    );
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM template_health WHERE status IN ('PAUSED', 'REJECTED') AND reason IS NOT NULL"
        ),
        2
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM raw_events"), 0, "nothing parked raw");

    let (_, metrics) = s.get("/metrics").await;
    for line in [
        "frontdesk_number_quality_rating{number=\"15550783881\",limit_tier=\"TIER_10K\"} 3",
        "frontdesk_account_restricted{waba_id=\"102290129340398\"} 1",
        "frontdesk_templates_blocked 2",
        "frontdesk_health_changes_total{kind=\"number_quality\"} 1",
        "frontdesk_health_changes_total{kind=\"template_status\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }

    let notes: Vec<String> = slack
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[0].contains("/admin/health|Open the health panel>"),
        "{}",
        notes[0]
    );
    let all = notes.join("\n");
    for want in [
        "number 15550783881: FLAGGED, quality RED, messaging limit TIER_10K",
        "account: ACCOUNT_RESTRICTION, RESTRICTED_BIZ_INITIATED_MESSAGING",
        "template bridge_to_team (en_US): PAUSED: FIRST_PAUSE",
        "template abandoned_cart (en): REJECTED: INVALID_FORMAT",
    ] {
        assert!(all.contains(want), "{want} not in {all}");
    }

    // The same change again (Meta's retry with a new body, or a re-run job): recorded
    // once, announced once.
    let mut again: serde_json::Value =
        serde_json::from_slice(&fixture("meta/phone_number_quality_update/flagged.json")).unwrap();
    again["entry"][0]["time"] = serde_json::json!(1674864999);
    assert_eq!(s.post_webhook(&serde_json::to_vec(&again).unwrap()).await, 200);
    s.idle().await;
    assert_eq!(slack.lock().unwrap().len(), 4);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM health_events"), 4);
    s.stop().await;
}

/// The inbox shows a banner while the number is RED, the admin panel shows the health,
/// and a paused template is neither offered in the composer, nor accepted from it, nor
/// used as the bridge template — with Meta's reason shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_warns_and_a_paused_template_is_neither_offered_nor_used_as_the_bridge() {
    use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login, post};
    use frontdesk::config::TemplateConfig;
    let s = crate::engine::shop(|c| {
        for name in ["bridge_to_team", "order_update"] {
            c.whatsapp.templates.push(TemplateConfig {
                name: name.into(),
                language: "en_US".into(),
                params: 0,
                description: String::new(),
            });
        }
        c.engine.bridge_template = "bridge_to_team".into();
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, inbox, _) = get(&s, "/app", Some(&cookie)).await;
    assert!(!inbox.contains("WhatsApp account health"), "no banner while healthy");

    for path in [
        "meta/phone_number_quality_update/flagged.json",
        "meta/message_template_status_update/paused.json",
    ] {
        assert_eq!(s.post_webhook(&fixture(path)).await, 200, "{path}");
    }
    // Delivered late: the window is closed, so the handoff's bridge would be the template.
    let written = frontdesk::domain::now_ms() / 1000 - 25 * 3600;
    let body = crate::support::text_webhook_at(
        "P1",
        "31793330002",
        "wamid.late-h",
        "I want to speak to someone",
        written,
    );
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.idle().await;
    assert!(s.graph.sent().is_empty(), "the paused bridge template was not sent");
    assert_eq!(crate::engine::owner(&s, "31793330002"), "human");

    let (_, inbox, _) = get(&s, "/app", Some(&cookie)).await;
    assert!(inbox.contains("Number 15550783881 quality rating is RED"), "{inbox}");

    let (st, panel, _) = get(&s, "/admin/health", Some(&cookie)).await;
    assert_eq!(st, 200);
    for want in [
        "15550783881",
        "TIER_10K",
        "RED",
        "bridge_to_team",
        "PAUSED",
        "FIRST_PAUSE",
        "order_update",
    ] {
        assert!(panel.contains(want), "{want} missing from the panel: {panel}");
    }

    let conv = s.query_i64("SELECT id FROM conversations");
    let (_, page, _) = get(&s, &format!("/app/c/{conv}"), Some(&cookie)).await;
    assert!(page.contains("value=\"order_update|en_US\""), "{page}");
    assert!(
        !page.contains("value=\"bridge_to_team|en_US\""),
        "a paused template is offered: {page}"
    );
    assert!(
        page.contains("Not offered: bridge_to_team (en_US), Meta has it PAUSED: FIRST_PAUSE"),
        "{page}"
    );
    assert!(
        page.contains("the bridge template was not used: Meta has it PAUSED"),
        "{page}"
    );
    assert!(
        page.contains("quality rating is RED"),
        "the banner on the conversation page too"
    );

    let key = "k".repeat(64);
    let csrf = csrf_of(&page);
    let (st, refused) = post(
        &s,
        &format!("/app/c/{conv}/template"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("key", &key),
            ("template", "bridge_to_team|en_US"),
            ("params", ""),
        ],
    )
    .await;
    assert_eq!(st, 422, "{refused}");
    assert!(refused.contains("was not sent: Meta has it PAUSED"), "{refused}");
    s.idle().await;
    assert!(s.graph.sent().is_empty());
    s.stop().await;
}

/// `frontdesk doctor` reports the same health, from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_account_health_from_the_store() {
    let s = TestServer::start().await;
    let config = s.cli_config();
    let run = |config: std::path::PathBuf| {
        let o = std::process::Command::new(crate::support::bin())
            .args(["doctor", "--config"])
            .arg(&config)
            .env("FRONTDESK_LOG", "warn")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let c = config.clone();
    let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
    assert!(
        out.contains("WARN  account health: no health webhook received yet"),
        "{out}"
    );
    for path in [
        "meta/phone_number_quality_update/flagged.json",
        "pywa/account_update/account_restriction.json",
        "pywa/template_status_update/rejected.json",
    ] {
        assert_eq!(s.post_webhook(&fixture(path)).await, 200, "{path}");
    }
    s.idle().await;
    let out = tokio::task::spawn_blocking(move || run(config)).await.unwrap();
    for line in [
        "WARN  account health: number 15550783881: quality RED, messaging limit TIER_10K",
        "FAIL  account health: WhatsApp account 102290129340398 is restricted: account: ACCOUNT_RESTRICTION",
        "WARN  account health: template abandoned_cart (en) is not used: Meta has it REJECTED: INVALID_FORMAT",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    s.stop().await;
}
