//! The conversation engine end to end with the offline responder: webhook in → answer or
//! handoff out through the fake Graph API. Covers answering from the knowledge base with
//! the first-contact disclosure, each rule and confidence handoff trigger, the bridge
//! sent exactly once (also across a crash between the handoff and the bridge), the bot
//! staying silent while a person owns the conversation, and the trace of each reply.

use frontdesk::config::EngineConfig;
use frontdesk::store::conversations::inbound_for_reply;
use frontdesk::store::handoffs::{handoffs_for, trace_for};

use crate::support::{TestServer, text_webhook};

/// A server whose knowledge base holds three short bike-shop documents, answering from them (the offline responder's
/// confidence comes from vector similarity, so the local embedder is on).
pub async fn shop(tweak: impl FnOnce(&mut frontdesk::config::Config)) -> TestServer {
    let s = TestServer::start_with(|c| {
        crate::support::with_local_embedder(c);
        tweak(c)
    })
    .await;
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("opening-hours.md"), "# Opening hours\n\nThe shop is open Tuesday to Saturday from 9:00 to 18:00. We are closed on Sundays and Mondays.").unwrap();
    std::fs::write(
        docs.path().join("rental.md"),
        "# Bike rental\n\nCity bikes rent for 15 euro a day, e-bikes for 35 euro a day. We ask a 50 euro deposit.",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("repairs.md"),
        "# Repairs\n\n## Punctures\n\nA puncture repair costs 15 euro for a front wheel and 20 euro for a rear wheel.",
    )
    .unwrap();
    s.app()
        .knowledge
        .add_paths(&[docs.path().to_path_buf()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    s
}

pub fn texts(s: &TestServer) -> Vec<String> {
    s.graph
        .sent()
        .iter()
        .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub async fn say(s: &TestServer, from: &str, wamid: &str, text: &str) {
    assert_eq!(
        s.post_webhook(text_webhook("P1", from, wamid, text).as_bytes()).await,
        200
    );
}

/// Waits until every queued job (webhook, reply, send) is done.
pub async fn settle(s: &TestServer) {
    s.idle().await;
}

pub fn owner(s: &TestServer, wa_id: &str) -> String {
    let wa = wa_id.to_string();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.query_row(
                "SELECT c.owner FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = ?1",
                [&wa],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_the_knowledge_base_and_discloses_once() {
    let s = shop(|_| {}).await;
    say(&s, "31611110001", "wamid.e-1", "are you open on sunday?").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    let first = &texts(&s)[0];
    assert!(
        first.starts_with("Hi Customer! I'm the automated assistant of our team"),
        "{first}"
    );
    assert!(
        first.contains("We are closed on Sundays and Mondays.") && first.contains("(From: Opening hours)"),
        "{first}"
    );
    say(
        &s,
        "31611110001",
        "wamid.e-2",
        "how much is it to rent an e-bike for a day",
    )
    .await;
    s.wait_until("a second answer", |s| s.graph.sent().len() == 2).await;
    let second = &texts(&s)[1];
    assert!(
        !second.contains("automated assistant"),
        "disclosed on first contact only: {second}"
    );
    assert!(second.contains("e-bikes for 35 euro a day"), "{second}");
    assert_eq!(owner(&s, "31611110001"), "bot");
    let trace = s
        .app()
        .store
        .call_blocking(|c| trace_for(c, "wamid.e-2"))
        .unwrap()
        .expect("a trace");
    assert_eq!(
        (trace.route.as_str(), trace.model.as_str(), trace.outcome.as_str()),
        ("commodity", "offline", "answered")
    );
    assert!(trace.confidence.unwrap() >= EngineConfig::default().confidence_threshold);
    assert_eq!(trace.retrieved[0]["doc_id"], "rental");
    for stage in ["retrieval", "llm", "send", "total"] {
        assert!(trace.stages_ms.get(stage).is_some(), "{stage}");
    }
    assert_eq!(s.metric("bot_answers_total"), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_handoff_trigger_sends_one_bridge_and_silences_the_bot() {
    let s = shop(|c| {
        c.engine.bridge_text = "A teammate will take it from here.".into();
        c.engine.unknown_text = "I don't know that; a teammate will take it from here.".into();
    })
    .await;
    let cases = [
        ("31622220001", "Can I talk to a real person please?", "asked_for_human"),
        (
            "31622220002",
            "My bike was stolen outside your shop, I want compensation",
            "sensitive",
        ),
        ("31622220003", "what is the capital of france", "no_answer"),
    ];
    for (i, (from, text, _)) in cases.iter().enumerate() {
        say(&s, from, &format!("wamid.h-{i}"), text).await;
    }
    s.wait_until("three bridges", |s| s.graph.sent().len() == 3).await;
    for (i, (from, text, trigger)) in cases.iter().enumerate() {
        assert_eq!(owner(&s, from), "human", "{text}");
        let conv = s.app().store.call_blocking({
            let w = format!("wamid.h-{i}");
            move |c| Ok(inbound_for_reply(c, &w)?.unwrap().conversation_id)
        });
        let handoffs = s
            .app()
            .store
            .call_blocking(move |c| handoffs_for(c, conv.unwrap()))
            .unwrap();
        assert_eq!(handoffs.len(), 1, "{text}");
        assert_eq!(handoffs[0].trigger, *trigger, "{text}");
        assert!(handoffs[0].summary.contains(text), "{:?}", handoffs[0]);
        assert!(!handoffs[0].reason.is_empty());
        let trace = s.app().store.call_blocking({
            let w = format!("wamid.h-{i}");
            move |c| trace_for(c, &w)
        });
        assert_eq!(trace.unwrap().unwrap().outcome, "handoff");
    }
    // The documents do not answer the third: the customer is told so.
    let mut sent = texts(&s);
    sent.sort();
    assert_eq!(
        sent,
        vec![
            "A teammate will take it from here.",
            "A teammate will take it from here.",
            "I don't know that; a teammate will take it from here."
        ],
    );
    // Meta re-delivers one of them, and the customers write again: no second bridge, no bot reply.
    say(&s, "31622220001", "wamid.h-0", "Can I talk to a real person please?").await;
    say(&s, "31622220001", "wamid.h-more", "hello? are you open on sunday?").await;
    say(&s, "31622220003", "wamid.h-more3", "what are your opening hours").await;
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 3, "{:?}", texts(&s));
    assert_eq!(s.metric("handoffs_total"), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_recorded_before_a_crash_still_gets_its_bridge_once() {
    // No reply jobs are queued (bot off): the test plays the engine's part by hand.
    let s = shop(|c| c.bot.enabled = false).await;
    say(&s, "31633330001", "wamid.c-1", "I need to speak to someone").await;
    s.drain().await;
    let inbound = s
        .app()
        .store
        .call_blocking(|c| inbound_for_reply(c, "wamid.c-1"))
        .unwrap()
        .unwrap();
    let h = frontdesk::store::handoffs::NewHandoff {
        conversation_id: inbound.conversation_id,
        inbound_wamid: "wamid.c-1".into(),
        trigger: "asked_for_human".into(),
        reason: "asked".into(),
        confidence: None,
        summary: "wants a person".into(),
        sources_json: "[]".into(),
        cost_usd: 0.0,
    };
    // The handoff committed, then the process died before queueing the bridge.
    s.app()
        .store
        .write(move |c| frontdesk::store::handoffs::start_handoff(c, &h, 1))
        .await
        .unwrap();
    let inbound = s
        .app()
        .store
        .call_blocking(|c| inbound_for_reply(c, "wamid.c-1"))
        .unwrap()
        .unwrap();
    assert_eq!(inbound.owner, frontdesk::domain::owner::Owner::Human);
    // The re-run of the reply job finishes the job, twice over without harm.
    for _ in 0..2 {
        let out = frontdesk::engine::respond(&s.app().engine(), "wamid.c-1", &inbound, None)
            .await
            .unwrap();
        assert_eq!(out, frontdesk::engine::ReplyOutcome::Silent);
    }
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    assert_eq!(texts(&s), vec![EngineConfig::default().bridge_text]);
    s.stop().await;
}

pub fn admin_cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    crate::support::cli(config, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_settings_flip_the_kill_switch_for_the_next_message() {
    let s = shop(|_| {}).await;
    // The CLI writes beside the running server, as an owner would.
    let config = s.cli_config();
    let (ok, out, err) = tokio::task::block_in_place(|| admin_cli(&config, &["settings", "set", "kill_switch", "on"]));
    assert!(ok, "{err}");
    assert!(out.contains("kill_switch = on"), "{out}");
    let (ok, _, err) = tokio::task::block_in_place(|| admin_cli(&config, &["settings", "set", "kill_switch", "maybe"]));
    assert!(!ok && err.contains("on or off"), "{err}");
    // A model chain naming a provider the config does not have is refused, not saved.
    let (ok, _, err) = tokio::task::block_in_place(|| {
        admin_cli(&config, &["settings", "set", "tier.commodity", "nosuchprovider:gpt-9"])
    });
    assert!(
        !ok && err.contains("no configured provider \"nosuchprovider\""),
        "{err}"
    );
    let (ok, out, _) = tokio::task::block_in_place(|| admin_cli(&config, &["settings", "list"]));
    assert!(ok && !out.contains("nosuchprovider"), "{out}");
    say(&s, "31644440001", "wamid.k-1", "are you open on sunday?").await;
    s.wait_until("the static reply", |s| s.graph.sent().len() == 1).await;
    assert_eq!(texts(&s)[0], EngineConfig::default().static_reply);
    assert_eq!(owner(&s, "31644440001"), "human", "queued for people");
    // Off again through the admin API: the next customer gets the bot.
    let http = reqwest::Client::new();
    let token = s.app().control_token.expose().to_string();
    let r = http
        .put(format!("{}/api/control/settings/kill_switch", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "value": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .put(format!("{}/api/control/settings/confidence_threshold", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "value": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "validated");
    assert_eq!(
        http.put(format!("{}/api/control/settings/kill_switch", s.base))
            .json(&serde_json::json!({ "value": "on" }))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = http
        .put(format!("{}/api/control/settings/bridge_text", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "value": "Hold on, a colleague is coming." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    say(&s, "31644440002", "wamid.k-2", "are you open on sunday?").await;
    say(&s, "31644440003", "wamid.k-3", "I want to speak to someone").await;
    s.wait_until("an answer and a bridge", |s| s.graph.sent().len() == 3)
        .await;
    let t = texts(&s);
    assert!(t.iter().any(|x| x.contains("closed on Sundays")), "{t:?}");
    assert!(t.iter().any(|x| x == "Hold on, a colleague is coming."), "{t:?}");
    let list: serde_json::Value = http
        .get(format!("{}/api/control/settings", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kill = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "kill_switch")
        .unwrap();
    assert_eq!(
        (kill["value"].as_str(), kill["source"].as_str()),
        (Some("off"), Some("live"))
    );
    let (ok, out, _) = tokio::task::block_in_place(|| admin_cli(&config, &["settings", "list", "--json"]));
    assert!(
        ok && out.lines().count() == frontdesk::domain::settings::SPECS.len(),
        "{out}"
    );
    let audit: serde_json::Value = http
        .get(format!("{}/api/control/audit", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit.as_array().unwrap().len(),
        3,
        "three accepted changes, each audited: {audit}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_opts_out_and_start_opts_back_in() {
    let s = shop(|_| {}).await;
    say(&s, "31655550001", "wamid.s-1", "STOP").await;
    s.wait_until("the confirmation", |s| s.graph.sent().len() == 1).await;
    assert!(texts(&s)[0].contains("unsubscribed"), "{:?}", texts(&s));
    say(&s, "31655550001", "wamid.s-2", "are you open on sunday?").await;
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 1, "no bot message after STOP");
    say(&s, "31655550001", "wamid.s-3", "start").await;
    s.wait_until("the opt-in confirmation", |s| s.graph.sent().len() == 2)
        .await;
    say(&s, "31655550001", "wamid.s-4", "are you open on sunday?").await;
    s.wait_until("an answer again", |s| s.graph.sent().len() == 3).await;
    assert!(texts(&s)[2].contains("closed on Sundays"), "{:?}", texts(&s));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_messages_gets_one_answer() {
    let s = shop(|c| c.engine.debounce_ms = 1_500).await;
    say(&s, "31666660001", "wamid.b-1", "hi").await;
    say(&s, "31666660001", "wamid.b-2", "quick question").await;
    say(
        &s,
        "31666660001",
        "wamid.b-3",
        "how much is it to rent an e-bike for a day",
    )
    .await;
    s.wait_until("one answer", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 1, "{:?}", texts(&s));
    assert!(texts(&s)[0].contains("e-bikes for 35 euro a day"), "{:?}", texts(&s));
    let trace = s
        .app()
        .store
        .call_blocking(|c| trace_for(c, "wamid.b-3"))
        .unwrap()
        .expect("the last message carries the trace");
    assert_eq!(trace.outcome, "answered");
    assert!(
        s.app()
            .store
            .call_blocking(|c| trace_for(c, "wamid.b-1"))
            .unwrap()
            .is_none()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_a_contact_and_keeps_an_audit_entry() {
    let s = shop(|_| {}).await;
    say(&s, "31677770001", "wamid.x-1", "are you open on sunday?").await;
    say(&s, "31677770002", "wamid.x-2", "are you open on sunday?").await;
    s.wait_until("two answers", |s| s.graph.sent().len() == 2).await;
    // Every status webhook has arrived (the fake reports sent, delivered, read), so none
    // lands after the erasure.
    s.wait_until("read ticks", |s| {
        s.query_i64("SELECT COUNT(*) FROM message_statuses WHERE state = 'read'") >= 2
    })
    .await;
    settle(&s).await;
    let config = s.cli_config();
    let (ok, out, err) =
        tokio::task::block_in_place(|| admin_cli(&config, &["contact", "erase", "31677770001", "--json"]));
    assert!(ok, "{err}");
    let erased: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // Two message rows (the question and the answer), one ledger row, one trace.
    assert_eq!(
        (
            erased["messages"].as_u64(),
            erased["outbound"].as_u64(),
            erased["traces"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{erased}"
    );
    for sql in [
        "SELECT COUNT(*) FROM contacts WHERE wa_id = '31677770001'",
        "SELECT COUNT(*) FROM messages WHERE sender = '31677770001' OR text LIKE '%31677770001%'",
        "SELECT COUNT(*) FROM reply_traces WHERE inbound_wamid = 'wamid.x-1'",
        "SELECT COUNT(*) FROM message_statuses WHERE recipient = '31677770001'",
        "SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%31677770001%' OR subject LIKE '%31677770001%'",
    ] {
        assert_eq!(s.query_i64(sql), 0, "{sql}");
    }
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM contacts WHERE wa_id = '31677770002'"),
        1,
        "other contacts untouched"
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.erase'"),
        1
    );
    let (ok, _, err) = tokio::task::block_in_place(|| admin_cli(&config, &["contact", "erase", "31677770001"]));
    assert!(!ok && err.contains("no contact"), "{err}");
    let (ok, _, err) = tokio::task::block_in_place(|| admin_cli(&config, &["contact", "erase", "+31 6"]));
    assert!(!ok && err.contains("digits only"), "{err}");
    // A late status for the erased contact's message stores nothing that names them.
    let late = serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages",
        "value": { "metadata": { "phone_number_id": "P1" }, "statuses": [{ "id": "wamid.late-for-erased", "status": "read",
            "timestamp": "1764600000", "recipient_id": "31677770001" }] } }] }] });
    assert_eq!(s.post_webhook(late.to_string().as_bytes()).await, 200);
    settle(&s).await;
    for sql in [
        "SELECT COUNT(*) FROM message_statuses WHERE recipient = '31677770001' OR wamid = 'wamid.late-for-erased'",
        "SELECT COUNT(*) FROM status_events WHERE wamid = 'wamid.late-for-erased' OR body_json LIKE '%31677770001%'",
    ] {
        assert_eq!(s.query_i64(sql), 0, "{sql}");
    }
    // Writing again makes a new contact, whose statuses are kept as usual.
    say(&s, "31677770001", "wamid.x-3", "are you open on sunday?").await;
    // (SQLite may give the erased ledger row's id to the new answer: its send job must
    // still be queued.)
    s.wait_until("a fresh answer and its read tick", |s| {
        s.query_i64("SELECT COUNT(*) FROM message_statuses WHERE recipient = '31677770001' AND state = 'read'") == 1
    })
    .await;
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM erased_contacts"), 0);
    s.stop().await;
}

/// Ingests one text message into `app` (no server, no workers) and answers it directly,
/// counting the store's round trips of the reply alone.
async fn respond_counted(
    app: &frontdesk::app::App,
    from: &str,
    wamid: &str,
    text: &str,
) -> (frontdesk::engine::ReplyOutcome, frontdesk::store::RoundTrips) {
    let events = frontdesk::whatsapp::parse::parse_webhook(text_webhook("P1", from, wamid, text).as_bytes());
    app.store
        .write(move |c| frontdesk::store::apply_events(c, 0, &events, &[], &Default::default(), None).map(|_| ()))
        .await
        .unwrap();
    let w = wamid.to_string();
    let (inbound, burst) = app
        .store
        .read(move |c| {
            Ok(inbound_for_reply(c, &w)?
                .zip(frontdesk::store::conversations::burst(c, &w)?)
                .unwrap())
        })
        .await
        .unwrap();
    let before = app.store.round_trips();
    let outcome = frontdesk::engine::respond(&app.engine(), wamid, &inbound, Some(&burst))
        .await
        .unwrap();
    (outcome, app.store.round_trips().since(before))
}

/// Gather (one read) and act (one write) are the reply's conversation-store round trips;
/// each retrieval search adds one knowledge-store read (a follow-up searches twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_takes_at_most_three_store_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(dir.path());
    crate::support::with_local_embedder(&mut config);
    let app = frontdesk::app::App::open(config).unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("opening-hours.md"), "# Opening hours\n\nThe shop is open Tuesday to Saturday from 9:00 to 18:00. We are closed on Sundays and Mondays.").unwrap();
    app.knowledge.prepare(&|_, _| {}).await.unwrap();
    app.knowledge
        .add_paths(&[docs.path().to_path_buf()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    // A bot answer: gather, one search, act.
    let (outcome, trips) = respond_counted(&app, "31655550001", "wamid.rt-1", "are you open on sunday?").await;
    assert_eq!(outcome, frontdesk::engine::ReplyOutcome::Answered);
    assert_eq!((trips.reads, trips.writes), (2, 1), "{trips:?}");
    assert!(trips.total() <= 3);
    // A handoff (asks for a person): gather and act, no retrieval.
    let (outcome, trips) = respond_counted(&app, "31655550002", "wamid.rt-2", "I want to talk to a person").await;
    assert_eq!(outcome, frontdesk::engine::ReplyOutcome::HandedOff);
    assert_eq!((trips.reads, trips.writes), (1, 1), "{trips:?}");
    // Silent while a person owns it: gather and the trace.
    let (outcome, trips) = respond_counted(&app, "31655550002", "wamid.rt-3", "hello?").await;
    assert_eq!(outcome, frontdesk::engine::ReplyOutcome::Silent);
    assert_eq!((trips.reads, trips.writes), (1, 1), "{trips:?}");
    // A follow-up searches twice (the turn, and with the previous message): still one
    // gather read and one act write on the conversation.
    let (_, trips) = respond_counted(&app, "31655550001", "wamid.rt-4", "and on saturday?").await;
    assert_eq!((trips.reads, trips.writes), (3, 1), "{trips:?}");
    // Everything the reply wrote is there: the answer's ledger row and trace.
    let answered = app
        .store
        .read(|c| Ok(trace_for(c, "wamid.rt-1")?.map(|t| t.outcome)))
        .await
        .unwrap();
    assert_eq!(answered.as_deref(), Some("answered"));
}
