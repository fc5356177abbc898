//! Every sender kind: a username-only customer known by their BSUID alone is stored,
//! answered and replied to through the `recipient` field, and `user_changed_number` /
//! `user_changed_user_id` system messages re-key the contact without losing history.
//! Signed webhooks to the real server; the fake Graph API records what was sent.

use serde_json::Value;

use crate::engine::{owner, say, shop};
use crate::support::TestServer;

pub(crate) const OLD_BSUID: &str = "US.13491208655302741918";
const NEW_BSUID: &str = "US.99999999999999999999";

/// A fixture from `tests/fixtures/webhooks/`, addressed to P1, with its wamid, sent now.
pub(crate) fn fixture(path: &str, wamid: &str) -> Value {
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

pub(crate) async fn post(s: &TestServer, body: &Value) {
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

/// The conversation each inbound message is stored in, by wamid.
fn conversation_of(s: &TestServer, wamid: &str) -> i64 {
    let w = wamid.to_string();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(
                c.query_row("SELECT conversation_id FROM messages WHERE wamid = ?1", [&w], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_number_that_wrote_first_merges_both_histories_into_one_conversation() {
    let s = shop(|_| {}).await;
    say(&s, "31780000011", "wamid.merge-1", "hello, do you rent bikes?").await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    // The customer writes from the new number before Meta's system message arrives.
    say(&s, "31780000012", "wamid.merge-2", "and e-bikes?").await;
    s.wait_until("the second reply", |s| s.graph.sent().len() == 2).await;
    s.idle().await;
    assert_eq!(counts(&s), (2, 2, 2), "two keys, two contacts so far");
    let mut change = fixture("pywa/system/phone_number_change.json", "wamid.merge-sys");
    let m = &mut change["entry"][0]["changes"][0]["value"]["messages"][0];
    m["from"] = "31780000011".into();
    m["system"]["wa_id"] = "31780000012".into();
    post(&s, &change).await;
    s.idle().await;
    assert_eq!(
        counts(&s),
        (1, 1, 3),
        "one contact, one conversation, the whole history"
    );
    assert_eq!(contact_keys(&s).0.as_deref(), Some("31780000012"));
    let conv = s.query_i64("SELECT id FROM conversations");
    for wamid in ["wamid.merge-1", "wamid.merge-2", "wamid.merge-sys"] {
        assert_eq!(conversation_of(&s, wamid), conv, "{wamid}");
    }
    assert_eq!(
        s.query_i64(&format!("SELECT COUNT(*) FROM outbound WHERE conversation_id = {conv}")),
        2,
        "both replies in the thread"
    );
    // "and e-bikes?" alone, from a stranger, was handed to a person: the joined
    // conversation stays theirs, so the next message lands in it and the bot stays silent.
    assert_eq!(owner(&s, "31780000012"), "human");
    say(&s, "31780000012", "wamid.merge-3", "how much is the deposit?").await;
    s.idle().await;
    assert_eq!(counts(&s), (1, 1, 4));
    assert_eq!(conversation_of(&s, "wamid.merge-3"), conv);
    assert_eq!(s.graph.sent().len(), 2, "a person owns it: the bot is silent");
    assert_eq!(s.graph.sent()[1].body["to"], "31780000012");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_bsuid_that_wrote_first_merges_both_histories_into_one_conversation() {
    let s = shop(|_| {}).await;
    post(&s, &fixture("derived/bsuid_only_text.json", "wamid.bmerge-1")).await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    let mut early = fixture("derived/bsuid_only_text.json", "wamid.bmerge-2");
    early["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = NEW_BSUID.into();
    post(&s, &early).await;
    s.wait_until("the second reply", |s| s.graph.sent().len() == 2).await;
    s.idle().await;
    assert_eq!(counts(&s), (2, 2, 2));
    post(&s, &fixture("derived/user_changed_user_id.json", "wamid.bmerge-sys")).await;
    s.idle().await;
    assert_eq!(
        counts(&s),
        (1, 1, 3),
        "one contact, one conversation, the whole history"
    );
    assert_eq!(contact_keys(&s), (None, Some(NEW_BSUID.into())));
    let conv = s.query_i64("SELECT id FROM conversations");
    for wamid in ["wamid.bmerge-1", "wamid.bmerge-2", "wamid.bmerge-sys"] {
        assert_eq!(conversation_of(&s, wamid), conv, "{wamid}");
    }
    s.stop().await;
}
