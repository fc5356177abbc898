//! The engine with models: fake Anthropic and OpenAI-compatible servers (real HTTP)
//! drive table-driven scenarios from webhook in to reply out through the fake Graph API:
//! grounded answers, the guard blocking an invented price, malformed output repaired
//! once then handed off, the model handing off, low confidence, fallback when the
//! primary fails, hangs mid-answer or answers with a body that is not JSON, retries on
//! 429, the circuit breaker opening and closing, routing of a
//! sensitive message to the reasoning tier, and the cost in the trace.

use std::time::Duration;

use frontdesk::config::{EngineConfig, ProviderConfig, Secret};
use frontdesk::store::handoffs::{handoffs_for, trace_for};
use serde_json::json;

use crate::engine::{owner, say, settle, shop, texts};
use crate::fake_llm::{FakeLlm, KEY, Kind, Step, reply};
use crate::support::TestServer;

pub async fn fakes() -> (FakeLlm, FakeLlm) {
    (
        FakeLlm::start(Kind::Anthropic).await,
        FakeLlm::start(Kind::OpenAi).await,
    )
}

pub async fn shop_with_models(
    a: &FakeLlm,
    o: &FakeLlm,
    tweak: impl FnOnce(&mut frontdesk::config::Config),
) -> TestServer {
    let (ab, ob) = (a.base_url(), o.base_url());
    shop(move |c| {
        let p = |kind: &str, base: String| ProviderConfig {
            kind: kind.into(),
            base_url: base,
            api_key: Secret::new(KEY),
            timeout_ms: 2_000,
            ..Default::default()
        };
        c.llm.providers.insert("anthropic".into(), p("anthropic", ab));
        c.llm.providers.insert("openai".into(), p("openai", ob));
        c.llm.tiers.commodity = vec!["anthropic:claude-haiku-4-5".into(), "openai:gpt-4o-mini".into()];
        c.llm.tiers.reasoning = vec!["openai:gpt-4o".into()];
        c.llm.max_retries = 1;
        tweak(c);
    })
    .await
}

pub fn trace(s: &TestServer, wamid: &str) -> frontdesk::store::handoffs::Trace {
    let w = wamid.to_string();
    s.app()
        .store
        .call_blocking(move |c| trace_for(c, &w))
        .unwrap()
        .expect("a trace")
}

pub fn handoff_trigger(s: &TestServer, wamid: &str) -> Option<String> {
    let conv = trace(s, wamid).conversation_id;
    s.app()
        .store
        .call_blocking(move |c| handoffs_for(c, conv))
        .unwrap()
        .last()
        .map(|h| h.trigger.clone())
}

/// What a scenario should end in.
enum Want {
    /// Sent, containing this text, answered by this model.
    Answer(&'static str, &'static str),
    /// Handed off for this trigger (the bridge is the one message sent).
    Handoff(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_scenarios_end_to_end() {
    let bridge = EngineConfig::default().bridge_text;
    // (name, Anthropic script, OpenAI script, customer message, expected end)
    type Case = (&'static str, Vec<Step>, Vec<Step>, &'static str, Want);
    let cases: Vec<Case> = vec![
        (
            "grounded answer",
            vec![reply(
                "We're closed on Sundays and Mondays; Tuesday to Saturday 9:00-18:00.",
                0.9,
            )],
            vec![],
            "are you open on sunday?",
            Want::Answer("closed on Sundays", "anthropic:claude-haiku-4-5"),
        ),
        (
            "invented price",
            vec![reply("An e-bike is 99 euro a day.", 0.9)],
            vec![],
            "how much to rent an e-bike",
            Want::Handoff("ungrounded"),
        ),
        (
            "repaired once",
            vec![
                Step::Malformed("Sure! We rent e-bikes.".into()),
                reply("E-bikes rent for 35 euro a day.", 0.8),
            ],
            vec![],
            "how much to rent an e-bike",
            Want::Answer("35 euro", "anthropic:claude-haiku-4-5"),
        ),
        (
            "malformed twice",
            vec![Step::Malformed("hmm".into()), Step::Malformed("{\"reply\": 3}".into())],
            vec![],
            "how much to rent an e-bike",
            Want::Handoff("malformed_reply"),
        ),
        (
            "model hands off",
            vec![Step::Reply {
                reply: String::new(),
                handoff: true,
                confidence: 0.3,
            }],
            vec![],
            "my wheel makes a noise",
            Want::Handoff("model_handoff"),
        ),
        (
            "low confidence",
            vec![reply("Maybe 15 euro.", 0.2)],
            vec![],
            "how much is a repair",
            Want::Handoff("low_confidence"),
        ),
        (
            "primary fails, fallback answers",
            vec![Step::Status(500), Step::Status(500)],
            vec![reply("A rear wheel puncture is 20 euro.", 0.9)],
            "puncture rear wheel price",
            Want::Answer("20 euro", "openai:gpt-4o-mini"),
        ),
        (
            "429 retried",
            vec![Step::Status(429), reply("A front wheel puncture is 15 euro.", 0.9)],
            vec![],
            "puncture front wheel price",
            Want::Answer("15 euro", "anthropic:claude-haiku-4-5"),
        ),
        (
            "slow primary times out",
            vec![
                Step::Delay(3_000, Box::new(reply("late", 0.9))),
                Step::Delay(3_000, Box::new(reply("late", 0.9))),
            ],
            vec![reply("We open at 9:00.", 0.9)],
            "when do you open",
            Want::Answer("9:00", "openai:gpt-4o-mini"),
        ),
        (
            "primary's answer hangs mid-body",
            vec![Step::StallBody(60_000)],
            vec![reply("We open at 9:00.", 0.9)],
            "when do you open",
            Want::Answer("9:00", "openai:gpt-4o-mini"),
        ),
        (
            "primary answers 200 with a body that is not JSON",
            vec![Step::NotJson, Step::NotJson],
            vec![reply("We're closed on Sundays and Mondays.", 0.9)],
            "are you open on sunday?",
            Want::Answer("closed on Sundays", "openai:gpt-4o-mini"),
        ),
        (
            "all models down",
            vec![Step::Status(529), Step::Status(529)],
            vec![Step::Status(503), Step::Status(503)],
            "are you open on sunday?",
            Want::Handoff("model_unavailable"),
        ),
    ];
    for (i, (name, a_script, o_script, question, want)) in cases.into_iter().enumerate() {
        let (a, o) = fakes().await;
        a.script(a_script);
        o.script(o_script);
        let s = shop_with_models(&a, &o, |_| {}).await;
        let from = format!("3170000{i:04}");
        let wamid = format!("wamid.m-{i}");
        say(&s, &from, &wamid, question).await;
        s.wait_until(name, |s| s.graph.sent().len() == 1).await;
        settle(&s).await;
        let sent = texts(&s);
        assert_eq!(sent.len(), 1, "{name}: {sent:?}");
        let t = trace(&s, &wamid);
        match want {
            Want::Answer(contains, model) => {
                assert!(sent[0].contains(contains), "{name}: {sent:?}");
                assert!(
                    sent[0].starts_with("Hi Customer! I'm the automated assistant"),
                    "{name}: disclosure first: {sent:?}"
                );
                assert_eq!(t.model, model, "{name}");
                assert_eq!(t.guard, "passed", "{name}");
                assert_eq!(owner(&s, &from), "bot", "{name}");
            }
            Want::Handoff(trigger) => {
                assert_eq!(sent[0], bridge, "{name}");
                assert_eq!(handoff_trigger(&s, &wamid).as_deref(), Some(trigger), "{name}: {t:?}");
                assert_eq!(owner(&s, &from), "human", "{name}");
            }
        }
        assert_eq!(t.route, "commodity", "{name}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_the_context_and_the_trace_the_cost() {
    let (a, o) = fakes().await;
    a.script(vec![reply("We're closed on Sundays.", 0.9)]);
    let s = shop_with_models(&a, &o, |_| {}).await;
    say(&s, "31710000001", "wamid.r-1", "are you open on sunday?").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    let req = &a.requests()[0];
    assert_eq!(req["model"], "claude-haiku-4-5");
    assert_eq!(req["tool_choice"], json!({ "type": "any" }));
    assert_eq!(req["tools"].as_array().unwrap().last().unwrap()["name"], "reply");
    let system = req["system"].as_str().unwrap();
    assert!(
        system.contains("WhatsApp assistant of our team")
            && system.contains("[opening-hours#")
            && system.contains("closed on Sundays and Mondays"),
        "{system}"
    );
    assert_eq!(
        req["messages"][0]["content"][0]["text"],
        "Customer: are you open on sunday?"
    );
    assert_eq!(a.headers(0).get("anthropic-version").unwrap(), "2023-06-01");
    let t = trace(&s, "wamid.r-1");
    assert_eq!((t.tokens_in, t.tokens_out), (600, 200));
    // claude-haiku-4-5 list price: 600 × $1/M + 200 × $5/M.
    assert!((t.cost_usd - 0.0016).abs() < 1e-9, "{}", t.cost_usd);
    assert!(
        t.stages_ms["llm"].as_u64().is_some() && t.retrieved.as_array().is_some_and(|r| !r.is_empty()),
        "{t:?}"
    );
    // The next message carries the history.
    a.script(vec![reply("On Monday we're closed too.", 0.9)]);
    say(&s, "31710000001", "wamid.r-2", "and monday?").await;
    s.wait_until("a second answer", |s| s.graph.sent().len() == 2).await;
    let msgs = &a.requests()[1]["messages"];
    assert_eq!(msgs[0]["content"][0]["text"], "are you open on sunday?");
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(
        msgs[1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("closed on Sundays")
    );
    assert_eq!(msgs[2]["content"][0]["text"], "Customer: and monday?");
    assert!(!texts(&s)[1].contains("automated assistant"), "disclosed once");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_messages_go_to_the_reasoning_tier() {
    let (a, o) = fakes().await;
    o.script(vec![Step::Reply {
        reply: String::new(),
        handoff: true,
        confidence: 0.4,
    }]);
    let s = shop_with_models(&a, &o, |_| {}).await;
    say(
        &s,
        "31720000001",
        "wamid.z-1",
        "I want to file a complaint about my repair",
    )
    .await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    assert!(a.requests().is_empty(), "the commodity model was not asked");
    assert_eq!(o.requests()[0]["model"], "gpt-4o");
    let t = trace(&s, "wamid.z-1");
    assert_eq!(
        (t.route.as_str(), t.route_reason.as_str()),
        ("reasoning", "rule sensitive (\"complaint\")")
    );
    // OpenAI requests ask for the reply schema as strict JSON.
    assert_eq!(o.requests()[0]["response_format"]["json_schema"]["strict"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tool_calls_get_an_error_result_and_the_model_goes_on() {
    let (a, o) = fakes().await;
    o.script(vec![
        Step::Tool {
            name: "order_status".into(),
            arguments: json!({ "order": "SS-1042" }),
        },
        reply("We're closed on Sundays.", 0.9),
    ]);
    let s = shop_with_models(&a, &o, |c| c.llm.tiers.commodity = vec!["openai:gpt-4o-mini".into()]).await;
    say(&s, "31730000001", "wamid.t-1", "are you open on sunday?").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    let second = &o.requests()[1]["messages"];
    let n = second.as_array().unwrap().len();
    assert_eq!(second[n - 2]["tool_calls"][0]["function"]["name"], "order_status");
    assert_eq!(second[n - 1]["role"], "tool");
    assert!(second[n - 1]["content"].as_str().unwrap().contains("no tool named"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_after_failures_and_closes_after_a_good_trial() {
    let (a, o) = fakes().await;
    a.script(vec![Step::Status(529), Step::Status(529)]);
    o.script(vec![
        reply("We're closed on Sundays.", 0.9),
        reply("We're closed on Sundays.", 0.9),
    ]);
    let s = shop_with_models(&a, &o, |c| {
        c.llm.breaker_failures = 1;
        // Long enough that a loaded machine still asks and scrapes inside the cooldown.
        c.llm.breaker_cooldown_ms = 3_000;
    })
    .await;
    say(&s, "31740000001", "wamid.cb-1", "are you open on sunday?").await;
    s.wait_until("the first answer", |s| s.graph.sent().len() == 1).await;
    assert_eq!(a.requests().len(), 2, "one call plus one retry, then the fallback");
    say(&s, "31740000002", "wamid.cb-2", "are you open on sunday?").await;
    s.wait_until("the second answer", |s| s.graph.sent().len() == 2).await;
    assert_eq!(a.requests().len(), 2, "circuit open: anthropic skipped");
    assert!(
        trace(&s, "wamid.cb-2")
            .attempts
            .to_string()
            .contains("skipped: circuit open")
    );
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("frontdesk_model_circuit_open{provider=\"anthropic\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("frontdesk_reply_stage_seconds_count{stage=\"total\"} 2"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    a.script(vec![reply("We're closed on Sundays.", 0.9)]);
    say(&s, "31740000003", "wamid.cb-3", "are you open on sunday?").await;
    s.wait_until("the third answer", |s| s.graph.sent().len() == 3).await;
    assert_eq!(a.requests().len(), 3, "after the cooldown one trial goes through");
    assert_eq!(
        trace(&s, "wamid.cb-3").model,
        "anthropic:claude-haiku-4-5",
        "and closes the circuit"
    );
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("frontdesk_model_circuit_open{provider=\"anthropic\"} 0"),
        "{metrics}"
    );
    s.stop().await;
}

/// A fake Slack incoming webhook: records each JSON body.
pub(crate) async fn fake_slack() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/services/T0/B0/x",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/services/T0/B0/x"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_back_resumes_with_a_note_without_handoff_loops_and_slack_hears_of_handoffs() {
    let (a, o) = fakes().await;
    let (slack_url, slack) = fake_slack().await;
    a.script(vec![Step::Reply {
        reply: String::new(),
        handoff: true,
        confidence: 0.3,
    }]);
    let s = shop_with_models(&a, &o, move |c| {
        c.engine.slack_webhook_url = Secret::new(slack_url);
        c.server.public_url = "https://desk.example".into();
    })
    .await;
    say(&s, "31750000001", "wamid.hb-1", "my wheel makes a clicking noise").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let conv = trace(&s, "wamid.hb-1").conversation_id;
    s.wait_until("the Slack message", |_| slack.lock().unwrap().len() == 1)
        .await;
    let note = slack.lock().unwrap()[0]["text"].as_str().unwrap().to_string();
    assert!(
        note.contains(&format!("<https://desk.example/app/c/{conv}|")) && note.contains("model handoff"),
        "{note}"
    );
    // The link, as Slack received it, opens the conversation page for a logged-in agent
    // (not a 404, not a redirect to the login page).
    let path = note
        .split("<https://desk.example")
        .nth(1)
        .and_then(|r| r.split('|').next())
        .unwrap()
        .to_string();
    let (agent, agent_pw) = ("agent@shop.example", "agent horse battery staple");
    tokio::task::block_in_place(|| crate::inbox_auth::cli_add(&s, agent, "agent", Some(agent_pw)));
    let cookie = crate::inbox_auth::login(&s, agent, agent_pw).await.1.unwrap();
    let (st, page, _) = crate::inbox_auth::get(&s, &path, Some(&cookie)).await;
    assert!(st == 200 && page.contains("31750000001"), "{path}: {st}");
    let (anonymous, _, _) = crate::inbox_auth::get(&s, &path, None).await;
    assert_ne!(anonymous, 200, "the page is behind the login");
    // An agent hands it back with a note.
    let http = reqwest::Client::new();
    let token = s.app().control_token.expose().to_string();
    let url = format!("{}/api/control/conversations/{conv}/handback", s.base);
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "note": "Sam checked the wheel: the hub needs grease." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(owner(&s, "31750000001"), "bot");
    assert_eq!(
        http.post(&url)
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        409,
        "already the bot's"
    );
    // The model sees the note; its handoff for the same reason right away is suppressed.
    a.script(vec![Step::Reply {
        reply: String::new(),
        handoff: true,
        confidence: 0.3,
    }]);
    say(&s, "31750000001", "wamid.hb-2", "so what do I do now").await;
    s.wait_until("a reply", |s| s.graph.sent().len() == 2).await;
    let system = a.requests()[1]["system"].as_str().unwrap().to_string();
    assert!(
        system.contains("Sam checked the wheel: the hub needs grease."),
        "{system}"
    );
    assert_eq!(texts(&s)[1], frontdesk::engine::SUPPRESSED_HANDOFF_TEXT);
    assert_eq!(owner(&s, "31750000001"), "bot", "no handoff loop");
    // Asking for a person always works.
    say(&s, "31750000001", "wamid.hb-3", "let me talk to a person").await;
    s.wait_until("the second bridge", |s| s.graph.sent().len() == 3).await;
    assert_eq!(owner(&s, "31750000001"), "human");
    s.wait_until("the second Slack message", |_| slack.lock().unwrap().len() == 2)
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_conversations_are_handed_back_automatically_and_the_cli_hands_back() {
    let s = shop(|c| c.engine.auto_handback_minutes = 0.02).await;
    say(&s, "31760000001", "wamid.ah-1", "I want to speak to someone").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    assert_eq!(owner(&s, "31760000001"), "human");
    s.wait_until("the automatic hand-back", |s| owner(s, "31760000001") == "bot")
        .await;
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM handoffs WHERE resolved_by = 'auto'"),
        1
    );
    s.stop().await;

    let s = shop(|_| {}).await;
    say(&s, "31760000002", "wamid.ah-2", "I want to speak to someone").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let conv = trace_or_handoff_conversation(&s, "wamid.ah-2");
    let config = s.cli_config();
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(crate::support::bin())
            .args(["conversation", "handback", &conv.to_string(), "--note", "done"])
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(owner(&s, "31760000002"), "bot");
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.handback'"),
        1
    );
    s.stop().await;
}

fn trace_or_handoff_conversation(s: &TestServer, wamid: &str) -> i64 {
    let w = wamid.to_string();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.query_row(
                "SELECT conversation_id FROM handoffs WHERE inbound_wamid = ?1",
                [&w],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_budgets_go_cheaper_then_stop_calling_models() {
    let (a, o) = fakes().await;
    // Each fake call costs 600 in / 200 out tokens: $0.0016 on claude-haiku-4-5, $0.0025 on gpt-4o.
    a.script(vec![
        reply("We're closed on Sundays.", 0.9),
        reply("We're closed on Sundays.", 0.9),
    ]);
    o.script(vec![reply("We're closed on Sundays.", 0.9)]);
    let s = shop_with_models(&a, &o, |c| c.engine.budget_contact_daily_usd = 0.0019).await;
    say(&s, "31770000001", "wamid.bu-1", "are you open on sunday?").await;
    s.wait_until("the first answer", |s| s.graph.sent().len() == 1).await;
    // Over 80% of the contact's budget: a sensitive message stays on the cheaper tier.
    say(
        &s,
        "31770000001",
        "wamid.bu-2",
        "I have a complaint: are you open on sunday?",
    )
    .await;
    s.wait_until("the second answer", |s| s.graph.sent().len() == 2).await;
    let t = trace(&s, "wamid.bu-2");
    assert_eq!(
        (t.route.as_str(), t.model.as_str()),
        ("commodity", "anthropic:claude-haiku-4-5"),
        "{t:?}"
    );
    assert!(
        t.route_reason.contains("80% of this contact's daily budget"),
        "{}",
        t.route_reason
    );
    assert!(o.requests().is_empty(), "the reasoning model was not called");
    // Spent: the static reply and a handoff; no model call.
    say(&s, "31770000001", "wamid.bu-3", "and on monday?").await;
    s.wait_until("the static reply", |s| s.graph.sent().len() == 3).await;
    assert_eq!(texts(&s)[2], EngineConfig::default().static_reply);
    assert_eq!(handoff_trigger(&s, "wamid.bu-3").as_deref(), Some("budget"));
    assert_eq!(a.requests().len(), 2);
    // Other contacts are not affected by one contact's budget.
    a.script(vec![reply("We're closed on Sundays.", 0.9)]);
    say(&s, "31770000002", "wamid.bu-4", "are you open on sunday?").await;
    s.wait_until("another contact's answer", |s| s.graph.sent().len() == 4)
        .await;
    assert_eq!(trace(&s, "wamid.bu-4").outcome, "answered");
    s.stop().await;
}

/// A fake order API: `GET /orders/{id}?wa_id=…` answers for customer 31780000001 only;
/// `/orders/BROKEN` answers 500. Records each query string.
async fn fake_orders() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::{Path, RawQuery};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/orders/{id}",
        axum::routing::get(
            move |Path(id): Path<String>, RawQuery(q): RawQuery, headers: axum::http::HeaderMap| {
                let s = s.clone();
                async move {
                    s.lock().unwrap().push(format!(
                        "{id}?{} auth={}",
                        q.clone().unwrap_or_default(),
                        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("")
                    ));
                    if id == "BROKEN" {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            "database down".to_string(),
                        );
                    }
                    if q.as_deref() != Some("wa_id=31780000001") {
                        return (
                            axum::http::StatusCode::NOT_FOUND,
                            "no such order for this customer".to_string(),
                        );
                    }
                    (
                        axum::http::StatusCode::OK,
                        json!({ "order_id": id, "status": "shipped", "carrier": "PostNL", "eta": "2026-11-28" })
                            .to_string(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tools_feed_the_model_and_their_success_is_counted() {
    let (a, o) = fakes().await;
    let (orders, seen) = fake_orders().await;
    // SAFETY: set once, before the server reads it; no other test reads this variable.
    unsafe { std::env::set_var("FD_TEST_ORDER_TOKEN", "s3cret") };
    o.script(vec![
        Step::Tool {
            name: "order_status".into(),
            arguments: json!({ "order_id": "SS-777", "customer_wa_id": "31799999999" }),
        },
        reply(
            "Your order SS-777 shipped with PostNL and should arrive 2026-11-28.",
            0.9,
        ),
        Step::Tool {
            name: "order_status".into(),
            arguments: json!({ "order_id": "BROKEN" }),
        },
        Step::Reply {
            reply: String::new(),
            handoff: true,
            confidence: 0.2,
        },
    ]);
    let s = shop_with_models(&a, &o, move |c| {
        c.llm.tiers.commodity = vec!["openai:gpt-4o-mini".into()];
        c.llm.tools.push(frontdesk::config::ToolConfig {
            name: "order_status".into(),
            description: "Look up an order".into(),
            parameters: json!({ "type": "object", "properties": { "order_id": { "type": "string" } }, "required": ["order_id"] }),
            url: format!("{orders}/orders/{{order_id}}?wa_id={{customer_wa_id}}"),
            headers: [("Authorization".to_string(), Secret::new("Bearer ${FD_TEST_ORDER_TOKEN}"))].into(),
            ..Default::default()
        });
    })
    .await;
    say(&s, "31780000001", "wamid.tool-1", "where is my order SS-777").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    assert!(texts(&s)[0].contains("should arrive 2026-11-28"), "{:?}", texts(&s));
    assert_eq!(
        seen.lock().unwrap()[0],
        "SS-777?wa_id=31780000001 auth=Bearer s3cret",
        "the engine's customer id, not the model's; env in headers"
    );
    let first = &o.requests()[0];
    assert_eq!(first["tools"][0]["function"]["name"], "order_status");
    let second = o.requests()[1]["messages"].clone();
    let last = second.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "tool");
    assert!(
        last["content"].as_str().unwrap().contains("\"status\":\"shipped\""),
        "{last}"
    );
    let t = trace(&s, "wamid.tool-1");
    assert!(t.attempts.to_string().contains("tool:order_status"));
    // Per-stage latency: tools and guard apart from the model calls that contain them.
    let st = &t.stages_ms;
    assert!(
        st["tools"].as_u64().unwrap() <= st["llm"].as_u64().unwrap() && st["guard"].as_u64().is_some(),
        "{st}"
    );
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("frontdesk_reply_stage_seconds_count{stage=\"tools\"} 1"),
        "{metrics}"
    );
    // A failing tool: the model hears the error and hands off; the failure is counted.
    say(&s, "31780000001", "wamid.tool-2", "and order BROKEN?").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 2).await;
    assert_eq!(handoff_trigger(&s, "wamid.tool-2").as_deref(), Some("model_handoff"));
    assert_eq!(
        (s.metric("tool_calls_total"), s.metric("tool_calls_failed_total")),
        (2, 1)
    );
    s.stop().await;
}

/// A fake shop backend that records every request as (method, path as sent, query, body)
/// and answers 200 with a shipped order.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, serde_json::Value)>>>;
async fn recording_backend() -> (String, Seen) {
    let seen: Seen = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
        let s = s.clone();
        async move {
            let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            s.lock().unwrap().push((
                method.to_string(),
                uri.path().to_string(),
                uri.query().unwrap_or_default().to_string(),
                body,
            ));
            json!({ "status": "shipped" }).to_string()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

/// The model cannot choose whose data a tool sees, add keys the schema does not declare,
/// or move the request to another path: a POST body is built from the declared
/// properties plus the engine's customer id, an undeclared key or a `..` is refused back
/// to the model (nothing sent), and a path value stays one segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_carry_the_real_customer_declared_keys_and_one_path_segment() {
    let (a, o) = fakes().await;
    let (backend, seen) = recording_backend().await;
    let tool = |arguments: serde_json::Value| Step::Tool {
        name: "order_status".into(),
        arguments,
    };
    o.script(vec![
        tool(json!({ "order_id": "SS-1", "customer_wa_id": "31799999999" })),
        tool(json!({ "order_id": "SS-2", "customer_wa_id": "31799999999", "tenant": "other-shop" })),
        tool(json!({ "order_id": ".." })),
        tool(json!({ "order_id": "a/../b?c=1#d" })),
        Step::Reply {
            reply: String::new(),
            handoff: true,
            confidence: 0.2,
        },
    ]);
    let s = shop_with_models(&a, &o, move |c| {
        c.llm.tiers.commodity = vec!["openai:gpt-4o-mini".into()];
        c.llm.max_tool_rounds = 5;
        c.llm.tools.push(frontdesk::config::ToolConfig {
            name: "order_status".into(),
            description: "Look up an order".into(),
            parameters: json!({ "type": "object", "properties": { "order_id": { "type": "string" } }, "required": ["order_id"] }),
            method: "POST".into(),
            url: format!("{backend}/api/orders/{{order_id}}?who={{customer_wa_id}}"),
            ..Default::default()
        });
    })
    .await;
    say(&s, "31780000002", "wamid.post-tool", "where is my order SS-1").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    let seen = seen.lock().unwrap().clone();
    let want = |path: &str, id: &str| {
        (
            "POST".to_string(),
            path.to_string(),
            "who=31780000002".to_string(),
            json!({ "order_id": id, "customer_wa_id": "31780000002" }),
        )
    };
    assert_eq!(
        seen,
        vec![
            want("/api/orders/SS-1", "SS-1"),
            want("/api/orders/a%2F..%2Fb%3Fc%3D1%23d", "a/../b?c=1#d")
        ],
        "the backend saw the real customer, no extra key, and only the tool's own path"
    );
    // The refused calls came back to the model as errors it can act on.
    let result = |i: usize| {
        o.requests()[i]["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        result(2).contains("unknown argument \"tenant\"; this tool takes only order_id"),
        "{}",
        result(2)
    );
    assert!(
        result(3).contains("argument \"order_id\" cannot be \"..\""),
        "{}",
        result(3)
    );
    assert_eq!(
        (s.metric("tool_calls_total"), s.metric("tool_calls_failed_total")),
        (4, 2)
    );
    s.stop().await;
}

/// The scrape test: after an answered message, a handoff and a send that fails for good,
/// `/metrics` shows model calls, tokens, cost and latency by model, handoffs by trigger,
/// failed sends by error code, queue age and the reply stages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_model_calls_handoffs_and_failed_sends() {
    let (a, o) = fakes().await;
    o.script(vec![reply("We're closed on Sundays and Mondays.", 0.9)]);
    let s = shop_with_models(&a, &o, |c| c.llm.tiers.commodity = vec!["openai:gpt-4o-mini".into()]).await;
    say(&s, "31740000001", "wamid.m-1", "are you open on sunday?").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    say(&s, "31740000002", "wamid.m-2", "can I talk to a real person please").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 2).await;
    s.graph.fail_next(frontdesk::http::fake_graph::Failure::code(131026), 1);
    say(&s, "31740000003", "wamid.m-3", "I want to speak to a human").await;
    settle(&s).await;
    let (status, text) = s.get("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "frontdesk_llm_calls_total{model=\"openai:gpt-4o-mini\",outcome=\"ok\"} 1",
        "frontdesk_llm_tokens_total{model=\"openai:gpt-4o-mini\",direction=\"in\"}",
        "frontdesk_llm_cost_usd_total{model=\"openai:gpt-4o-mini\"}",
        "frontdesk_llm_call_seconds_count{model=\"openai:gpt-4o-mini\"} 1",
        "frontdesk_handoffs_by_trigger_total{trigger=\"asked_for_human\"} 2",
        "frontdesk_sends_failed_by_code_total{code=\"131026\"} 1",
        "# TYPE frontdesk_queue_oldest_ready_age_seconds gauge",
        "frontdesk_reply_stage_seconds_count{stage=\"retrieval\"} 3",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    let tokens_in: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("frontdesk_llm_tokens_total{model=\"openai:gpt-4o-mini\",direction=\"in\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens_in > 0.0);
    assert!(s.metric("webhooks_received_total") >= 3);
    s.stop().await;
}
