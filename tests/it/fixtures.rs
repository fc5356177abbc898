//! Every real payload under tests/fixtures/webhooks parses to the right domain events
//! (checked by kind here, and in full by insta snapshots), and goes through the live
//! webhook into rows.

use std::path::PathBuf;

use frontdesk::domain::event::WebhookEvent;
use frontdesk::whatsapp::parse::parse_webhook;

use crate::support::TestServer;

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks/pywa");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                let name = format!(
                    "{}/{}",
                    dir.file_name().unwrap().to_string_lossy(),
                    f.file_stem().unwrap().to_string_lossy()
                );
                out.push((name, std::fs::read(&f).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A short label per event: `message:<type>`, `status:<state>`, `health:<kind>`, or `unhandled`.
fn labels(events: &[WebhookEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WebhookEvent::Message { message, .. } => format!("message:{}", message.kind.type_name()),
            WebhookEvent::Status { status, .. } => format!("status:{}", status.status),
            WebhookEvent::Health { health, .. } => format!("health:{}", health.kind()),
            WebhookEvent::Unhandled { .. } => "unhandled".into(),
        })
        .collect()
}

const EXPECTED: &[(&str, &[&str])] = &[
    ("call_permission_update/accept", &["message:interactive"]),
    ("call_permission_update/reject", &["message:interactive"]),
    ("callback_button/button", &["message:button_reply"]),
    ("callback_button/quick_reply", &["message:button"]),
    ("callback_button/quick_reply_without_context", &["message:button"]),
    ("callback_selection/callback", &["message:list_reply"]),
    ("callback_selection/description", &["message:list_reply"]),
    ("deleted_message/revoke", &["message:revoke"]),
    ("edited_message/image", &["message:edit"]),
    ("flow_completion/completion", &["message:flow_reply"]),
    ("flow_completion/without_flow_token", &["message:flow_reply"]),
    ("message/animated_sticker", &["message:sticker"]),
    ("message/audio", &["message:audio"]),
    ("message/chosen_location", &["message:location"]),
    ("message/contacts", &["message:contacts"]),
    ("message/current_location", &["message:location"]),
    ("message/document", &["message:document"]),
    ("message/forwarded", &["message:text"]),
    ("message/forwarded_many_times", &["message:text"]),
    ("message/image", &["message:image"]),
    (
        "message/interactive_message_with_err",
        &["message:interactive", "unhandled"],
    ),
    ("message/media_with_url", &["message:image"]),
    ("message/order", &["message:order"]),
    ("message/reaction", &["message:reaction"]),
    ("message/referral", &["message:text"]),
    ("message/reply", &["message:text"]),
    ("message/static_sticker", &["message:sticker"]),
    ("message/text", &["message:text"]),
    ("message/unreaction_empty", &["message:reaction"]),
    ("message/unreaction_no_emoji", &["message:reaction"]),
    ("message/unsupported", &["message:unsupported"]),
    ("message/unsupported_with_type", &["message:unsupported"]),
    ("message/video", &["message:video"]),
    ("message/voice", &["message:audio"]),
    ("message_status/delivered", &["status:delivered"]),
    ("message_status/failed", &["status:failed"]),
    ("message_status/group", &["status:read"]),
    ("message_status/played", &["status:played"]),
    ("message_status/read", &["status:read"]),
    ("message_status/sent", &["status:sent"]),
    ("message_status/with_tracker", &["status:sent"]),
    ("system/identity_change", &["message:system"]),
    ("system/phone_number_change", &["message:system"]),
];

#[test]
fn every_fixture_parses_to_the_right_kind() {
    let files = fixture_files();
    assert!(files.len() >= 74, "fixtures missing: {}", files.len());
    for (name, body) in &files {
        let events = parse_webhook(body);
        assert!(!events.is_empty(), "{name}: no events");
        let got = labels(&events);
        match EXPECTED.iter().find(|(n, _)| n == name) {
            Some((_, want)) => assert_eq!(got, *want, "{name}"),
            // The health fields are typed; other fields (calls, echoes, ...) are kept raw.
            None => {
                let want = match name.split('/').next().unwrap_or("") {
                    "account_update" => "health:account",
                    "template_status_update" => "health:template_status",
                    "template_category_update" => "health:template_category",
                    "template_quality_update" => "health:template_quality",
                    _ => "unhandled",
                };
                assert!(got.iter().all(|l| l == want), "{name}: {got:?}, want {want}");
            }
        }
        let json = serde_json::to_string_pretty(&events).unwrap();
        insta::assert_snapshot!(name.replace('/', "__"), json);
    }
}

#[test]
fn notable_fields_survive() {
    let get = |name: &str| -> Vec<WebhookEvent> {
        let (_, body) = fixture_files().into_iter().find(|(n, _)| n == name).unwrap();
        parse_webhook(&body)
    };
    let json = |name: &str| serde_json::to_value(get(name)).unwrap();
    assert_eq!(json("message/voice")[0]["message"]["kind"]["voice"], true);
    assert_eq!(json("message/reaction")[0]["message"]["kind"]["emoji"], "\u{1F62E}");
    assert!(
        json("message/unreaction_empty")[0]["message"]["kind"]
            .get("emoji")
            .is_none()
    );
    assert_eq!(
        json("flow_completion/completion")[0]["message"]["kind"]["response"]["delivery_rating"],
        "4"
    );
    assert!(json("message_status/with_tracker")[0]["status"]["callback_data"].is_string());
    assert_eq!(json("message_status/failed")[0]["status"]["errors"][0]["code"], 130472);
    assert_eq!(
        json("message/forwarded_many_times")[0]["message"]["context"]["frequently_forwarded"],
        true
    );
    assert_eq!(
        json("system/phone_number_change")[0]["message"]["kind"]["new_wa_id"],
        "972912345678"
    );
    assert!(json("message/referral")[0]["message"]["referral"]["ctwa_clid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_goes_through_the_webhook() {
    let s = TestServer::start().await;
    let files = fixture_files();
    for (name, body) in &files {
        assert_eq!(s.post_webhook(body).await, 200, "{name}");
    }
    s.drain().await;
    let msgs = s.inbound();
    // Fixtures reuse ids (e.g. wamid.xyzxyz) across files: one row per id, whatever the file.
    let distinct: std::collections::BTreeSet<String> = files
        .iter()
        .flat_map(|(_, b)| parse_webhook(b))
        .filter_map(|e| match e {
            WebhookEvent::Message { message, .. } => Some(message.wamid),
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), distinct.len());
    // The other webhook fields (calls, echoes, preferences, …) are kept raw; the health
    // fields (17 account updates, 4 template updates) are typed and stored as health.
    assert!(s.query_i64("SELECT COUNT(*) FROM raw_events") >= 8);
    let health: std::collections::BTreeSet<String> = files
        .iter()
        .flat_map(|(_, b)| parse_webhook(b))
        .filter(|e| matches!(e, WebhookEvent::Health { .. }))
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect();
    assert!(health.len() >= 20, "{}", health.len());
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM health_events"), health.len() as i64);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM template_health"), 4);
    assert!(s.query_i64("SELECT COUNT(*) FROM status_events") >= 5);
    s.stop().await;
}
