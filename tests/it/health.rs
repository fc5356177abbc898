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
