//! Every sender kind: a username-only customer known by their BSUID alone is stored,
//! answered and replied to through the `recipient` field, and `user_changed_number` /
//! `user_changed_user_id` system messages re-key the contact without losing history.
//! Signed webhooks to the real server; the fake Graph API records what was sent.

use serde_json::Value;

use crate::engine::{say, shop};
use crate::support::TestServer;

const OLD_BSUID: &str = "US.13491208655302741918";
const NEW_BSUID: &str = "US.99999999999999999999";

/// A fixture from `tests/fixtures/webhooks/`, addressed to P1, with its wamid, sent now.
fn fixture(path: &str, wamid: &str) -> Value {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(path);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["metadata"]["phone_number_id"] = "P1".into();
    value["messages"][0]["id"] = wamid.into();
    value["messages"][0]["timestamp"] = (frontdesk::domain::now_ms() / 1000).to_string().into();
    if value["messages"][0]["type"] == "text" {
        value["messages"][0]["text"]["body"] = "when are you open?".into();
    }
    v
}

async fn post(s: &TestServer, body: &Value) {
    assert_eq!(s.post_webhook(body.to_string().as_bytes()).await, 200);
}

/// (contacts, conversations, inbound messages) stored.
fn counts(s: &TestServer) -> (i64, i64, i64) {
    (
        s.query_i64("SELECT COUNT(*) FROM contacts"),
        s.query_i64("SELECT COUNT(*) FROM conversations"),
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
    )
}

fn contact_keys(s: &TestServer) -> (Option<String>, Option<String>) {
    s.app()
        .store
        .call_blocking(|c| {
            Ok(c.query_row("SELECT wa_id, user_id FROM contacts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_known_only_by_bsuid_is_answered_through_the_recipient_field_and_rekeyed() {
    let s = shop(|_| {}).await;
    // No `from`, no `from_user_id`, an empty `wa_id`: only `contacts[].user_id`.
    post(&s, &fixture("derived/bsuid_only_text.json", "wamid.bsuid-1")).await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    assert_eq!(counts(&s), (1, 1, 1));
    assert_eq!(contact_keys(&s), (None, Some(OLD_BSUID.into())));
    let stored = s.messages();
    let first = stored.iter().find(|m| m.id == "wamid.bsuid-1").unwrap();
    assert_eq!(first.from, OLD_BSUID, "keyed on the BSUID");
    let sent = s.graph.sent()[0].body.clone();
    assert_eq!(sent["recipient"], OLD_BSUID, "{sent}");
    assert!(sent.get("to").is_none(), "no number to send to: {sent}");
    // The BSUID changes: same contact, same conversation, the reply goes to the new one.
    post(&s, &fixture("derived/user_changed_user_id.json", "wamid.bsuid-sys")).await;
    let mut again = fixture("derived/bsuid_only_text.json", "wamid.bsuid-2");
    again["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = NEW_BSUID.into();
    post(&s, &again).await;
    s.wait_until("the second reply", |s| s.graph.sent().len() == 2).await;
    s.idle().await;
    assert_eq!(
        counts(&s),
        (1, 1, 3),
        "one contact, one conversation, the whole history"
    );
    assert_eq!(contact_keys(&s), (None, Some(NEW_BSUID.into())));
    let sent = s.graph.sent()[1].body.clone();
    assert_eq!(sent["recipient"], NEW_BSUID, "{sent}");
    // The fake's status webhooks name the BSUID (`recipient_user_id`) and reconcile.
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM outbound WHERE wamid IS NULL"),
        0,
        "every reply accepted"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_number_keeps_the_contact_and_replies_go_to_the_new_number() {
    let s = shop(|_| {}).await;
    say(&s, "31780000001", "wamid.num-1", "hello, do you rent bikes?").await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    let mut change = fixture("pywa/system/phone_number_change.json", "wamid.num-sys");
    let m = &mut change["entry"][0]["changes"][0]["value"]["messages"][0];
    m["from"] = "31780000001".into();
    m["system"]["wa_id"] = "31780000002".into();
    post(&s, &change).await;
    say(&s, "31780000002", "wamid.num-2", "and e-bikes?").await;
    s.wait_until("the second reply", |s| s.graph.sent().len() == 2).await;
    s.idle().await;
    assert_eq!(
        counts(&s),
        (1, 1, 3),
        "one contact, one conversation, the whole history"
    );
    assert_eq!(contact_keys(&s).0.as_deref(), Some("31780000002"));
    assert_eq!(s.graph.sent()[1].body["to"], "31780000002");
    s.stop().await;
}
