//! Routing and memory end to end, with fake model servers: live routing rules (to a
//! person, to the reasoning tier), the nearest-centroid classifier over labelled
//! examples, the zero-shot label call, daily token budgets, and the rolling summary
//! (refreshed past the token threshold, shown to the model, erased with the contact).

use frontdesk::config::ClassifierKind;
use serde_json::json;

use crate::engine::{admin_cli, say, settle, texts};
use crate::engine_llm::{fakes, handoff_trigger, shop_with_models, trace};
use crate::fake_llm::{Step, reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_rules_route_to_a_person_or_the_reasoning_tier() {
    let (a, o) = fakes().await;
    let s = shop_with_models(&a, &o, |_| {}).await;
    let config = s.cli_config();
    let rules = "legal: /\\blawyers?\\b/ => handoff\nrental: rent, rental => reasoning";
    let (ok, out, err) =
        tokio::task::block_in_place(|| admin_cli(&config, &["settings", "set", "router.rules", rules]));
    assert!(ok, "{err}");
    assert!(out.contains("legal: /\\blawyers?\\b/ => handoff"), "{out}");
    let (ok, _, err) = tokio::task::block_in_place(|| {
        admin_cli(
            &config,
            &["settings", "set", "router.rules", "legal: /(lawyer/ => handoff"],
        )
    });
    assert!(!ok && err.contains("bad regex"), "{err}");
    // A rule to a person: no model call, the bridge.
    say(&s, "31790000001", "wamid.ru-1", "My Lawyer says your bike is faulty").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    assert_eq!(handoff_trigger(&s, "wamid.ru-1").as_deref(), Some("routed"));
    let t = trace(&s, "wamid.ru-1");
    assert_eq!(
        (t.route.as_str(), t.route_reason.as_str()),
        ("handoff", "rule legal (\"Lawyer\")")
    );
    assert!(a.requests().is_empty() && o.requests().is_empty());
    // A rule to the reasoning tier.
    o.script(vec![reply("City bikes rent for 15 euro a day.", 0.9)]);
    say(&s, "31790000002", "wamid.ru-2", "how much to rent a city bike?").await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 2).await;
    let t = trace(&s, "wamid.ru-2");
    assert_eq!(
        (t.route.as_str(), t.route_reason.as_str(), t.model.as_str()),
        ("reasoning", "rule rental (\"rent\")", "openai:gpt-4o")
    );
    // The built-in sensitive rule is gone with the override; unset restores it.
    let (ok, _, err) = tokio::task::block_in_place(|| admin_cli(&config, &["settings", "unset", "router.rules"]));
    assert!(ok, "{err}");
    o.script(vec![reply(
        "I'm sorry to hear that; a teammate will look at your repair.",
        0.9,
    )]);
    say(
        &s,
        "31790000003",
        "wamid.ru-3",
        "I want to file a complaint about my repair",
    )
    .await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 3).await;
    assert_eq!(trace(&s, "wamid.ru-3").route_reason, "rule sensitive (\"complaint\")");
    s.stop().await;
}

fn examples_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("routing.jsonl");
    let rows = [
        ("what time do you open", "hours"),
        ("are you open on saturday", "hours"),
        ("when do you close today", "hours"),
        ("opening hours please", "hours"),
        ("you charged my card twice for one rental", "billing_dispute"),
        ("I was billed for a repair I never had", "billing_dispute"),
        (
            "there is a payment on my statement I don't recognise",
            "billing_dispute",
        ),
        ("the deposit was never returned to my account", "billing_dispute"),
        ("my e-bike battery caught fire", "safety"),
        ("the brakes failed and I fell off the bike", "safety"),
    ];
    std::fs::write(
        &p,
        rows.iter()
            .map(|(t, l)| json!({ "text": t, "label": l }).to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_centroid_classifier_routes_by_label() {
    an_embedding_classifier_routes_by_label(ClassifierKind::Centroid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knn_classifier_routes_by_label() {
    an_embedding_classifier_routes_by_label(ClassifierKind::Knn).await;
}

/// `classifier` (centroid or knn) over the examples file labels messages and routes them.
async fn an_embedding_classifier_routes_by_label(classifier: ClassifierKind) {
    let (a, o) = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let examples = examples_file(dir.path());
    let s = shop_with_models(&a, &o, move |c| {
        crate::support::with_local_embedder(c);
        c.router.classifier = classifier;
        c.router.examples = Some(examples);
        c.router.label_routes = [
            ("billing_dispute".to_string(), "reasoning".to_string()),
            ("safety".to_string(), "handoff".to_string()),
        ]
        .into();
        c.router.rules = vec![frontdesk::config::RuleConfig {
            name: "none".into(),
            keywords: vec!["xyzzy".into()],
            ..Default::default()
        }];
        c.router.rules[0].route = "commodity".into();
    })
    .await;
    o.script(vec![reply("A teammate will check the double charge.", 0.9)]);
    say(
        &s,
        "31791000001",
        "wamid.rc-1",
        "why did you take money from my card two times?",
    )
    .await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 1).await;
    let t = trace(&s, "wamid.rc-1");
    assert_eq!(t.route, "reasoning", "{t:?}");
    assert!(
        t.route_reason
            .starts_with(&format!("{classifier} label billing_dispute (")),
        "{}",
        t.route_reason
    );
    say(
        &s,
        "31791000002",
        "wamid.rc-2",
        "smoke is coming out of the battery of my e-bike",
    )
    .await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 2).await;
    assert_eq!(handoff_trigger(&s, "wamid.rc-2").as_deref(), Some("routed"));
    assert!(
        trace(&s, "wamid.rc-2")
            .route_reason
            .starts_with(&format!("{classifier} label safety ("))
    );
    a.script(vec![reply("We're closed on Sundays.", 0.9)]);
    say(
        &s,
        "31791000003",
        "wamid.rc-3",
        "until what time are you open on friday?",
    )
    .await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 3).await;
    let t = trace(&s, "wamid.rc-3");
    assert_eq!(t.route, "commodity");
    assert!(
        t.route_reason.starts_with(&format!("{classifier} label hours (")),
        "{}",
        t.route_reason
    );
    // Far from every example: no label, routine.
    a.script(vec![reply("We're closed on Sundays.", 0.9)]);
    say(&s, "31791000004", "wamid.rc-4", "qwerty").await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 4).await;
    assert!(
        trace(&s, "wamid.rc-4").route_reason.contains("is below 0.40"),
        "{}",
        trace(&s, "wamid.rc-4").route_reason
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_shot_labels_come_from_the_commodity_tier() {
    let (a, o) = fakes().await;
    let s = shop_with_models(&a, &o, |c| {
        c.router.classifier = frontdesk::config::ClassifierKind::ZeroShot;
        c.router.label_routes = [
            ("refund_dispute".to_string(), "reasoning".to_string()),
            ("hours".to_string(), "commodity".to_string()),
        ]
        .into();
    })
    .await;
    a.script(vec![Step::Json(json!({ "label": "refund_dispute" }))]);
    o.script(vec![reply("A teammate will look at the refund.", 0.9)]);
    say(
        &s,
        "31792000001",
        "wamid.rz-1",
        "you still owe me for the returned helmet",
    )
    .await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 1).await;
    let label_call = &a.requests()[0];
    assert!(
        label_call["system"].as_str().unwrap().contains("hours, refund_dispute"),
        "{label_call}"
    );
    assert_eq!(
        label_call["tools"][0]["input_schema"]["properties"]["label"]["enum"],
        json!(["hours", "refund_dispute", "none"])
    );
    let t = trace(&s, "wamid.rz-1");
    assert_eq!(
        (t.route.as_str(), t.route_reason.as_str()),
        ("reasoning", "zero_shot label refund_dispute (1.00)")
    );
    // The label call's tokens count: 800 for it and 800 for the answer.
    assert_eq!(t.tokens_in + t.tokens_out, 1600);
    // An unusable label: routine, with the reason recorded.
    a.script(vec![
        Step::Json(json!({ "label": "weather" })),
        reply("We're closed on Sundays.", 0.9),
    ]);
    say(&s, "31792000002", "wamid.rz-2", "are you open on sunday?").await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 2).await;
    let t = trace(&s, "wamid.rz-2");
    assert_eq!(t.route, "commodity");
    assert!(
        t.route_reason.contains("zero-shot: unusable answer"),
        "{}",
        t.route_reason
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budgets_go_cheaper_then_stop() {
    let (a, o) = fakes().await;
    // Each fake call is 800 tokens: the first reply passes 80% of 1,000, the second 100%.
    let s = shop_with_models(&a, &o, |c| c.engine.budget_contact_daily_tokens = 1_000).await;
    a.script(vec![
        reply("We're closed on Sundays.", 0.9),
        reply("We're closed on Sundays.", 0.9),
    ]);
    say(&s, "31793000001", "wamid.bt-1", "are you open on sunday?").await;
    s.wait_until("the first answer", |s| s.graph.sent().len() == 1).await;
    say(
        &s,
        "31793000001",
        "wamid.bt-2",
        "I have a complaint: are you open on sunday?",
    )
    .await;
    s.wait_until("the second answer", |s| s.graph.sent().len() == 2).await;
    let t = trace(&s, "wamid.bt-2");
    assert_eq!(t.route, "commodity");
    assert!(
        t.route_reason
            .contains("over 80% of this contact's daily budget (800 tokens of 1000 tokens)"),
        "{}",
        t.route_reason
    );
    say(&s, "31793000001", "wamid.bt-3", "and monday?").await;
    s.wait_until("the static reply", |s| s.graph.sent().len() == 3).await;
    assert_eq!(handoff_trigger(&s, "wamid.bt-3").as_deref(), Some("budget"));
    assert!(o.requests().is_empty());
    // Live: raise the limit and the bot answers again.
    let (ok, _, err) = tokio::task::block_in_place(|| {
        admin_cli(
            &s.cli_config(),
            &["settings", "set", "budget.contact_daily_tokens", "1000000"],
        )
    });
    assert!(ok, "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rolling_summary_is_refreshed_shown_and_erased() {
    let (a, o) = fakes().await;
    // A tiny threshold: a couple of turns beyond the last six trigger a refresh.
    let s = shop_with_models(&a, &o, |c| c.engine.summary_after_tokens = 10).await;
    let wa = "31794000001";
    let questions = [
        "hello, I bought a red city bike from you last week",
        "the bell is loose",
        "and the saddle squeaks",
        "can you fix both",
    ];
    for (i, q) in questions.iter().enumerate() {
        // Past three turns on one issue the reasoning tier answers.
        if i < 3 { &a } else { &o }.script(vec![reply("We're closed on Sundays.", 0.9)]);
        say(&s, wa, &format!("wamid.sm-{i}"), q).await;
        s.wait_until("an answer", |s| s.graph.sent().len() == i + 1).await;
    }
    assert_eq!(
        (a.requests().len(), o.requests().len()),
        (3, 1),
        "no summary yet: nothing older than the last six turns"
    );
    // Eight stored turns now: the two oldest pass 10 tokens. The summary comes from the
    // commodity tier, the answer from the reasoning tier.
    a.script(vec![Step::Json(json!({ "summary": "The customer bought a red city bike last week; its bell is loose and its saddle squeaks." }))]);
    o.script(vec![reply("We're closed on Sundays.", 0.9)]);
    say(&s, wa, "wamid.sm-6", "is monday ok?").await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 5).await;
    let summary_req = a.requests().last().unwrap().clone();
    assert!(
        summary_req["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Customer: hello, I bought a red city bike"),
        "{summary_req}"
    );
    let answer_req = o.requests().last().unwrap().clone();
    assert!(
        answer_req["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Summary of the earlier conversation:\nThe customer bought a red city bike"),
        "{answer_req}"
    );
    let t = trace(&s, "wamid.sm-6");
    assert_eq!(t.tokens_in + t.tokens_out, 1600, "the summary call counts");
    assert!(
        t.attempts.to_string().contains("refreshed from 2 older message(s)"),
        "{}",
        t.attempts
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM conversation_summaries"), 1);
    // An invented number in a summary is refused; the old summary stays.
    a.script(vec![
        Step::Json(json!({ "summary": "The customer paid 499 euro for the bike." })),
        Step::Json(json!({ "summary": "A red bike with a loose bell." })),
    ]);
    o.script(vec![
        reply("We're closed on Sundays.", 0.9),
        reply("We're closed on Sundays.", 0.9),
    ]);
    for (i, q) in ["what about tuesday", "fine, tuesday then"].iter().enumerate() {
        say(&s, wa, &format!("wamid.sm-{}", 7 + i), q).await;
        s.wait_until("an answer", |s| s.graph.sent().len() == 6 + i).await;
    }
    assert!(
        trace(&s, "wamid.sm-7")
            .attempts
            .to_string()
            .contains("summary refused: it states 499"),
        "{}",
        trace(&s, "wamid.sm-7").attempts
    );
    assert!(trace(&s, "wamid.sm-8").stages_ms["summary"].as_u64().is_some());
    // A handoff packet starts with the summary.
    say(&s, wa, "wamid.sm-9", "let me talk to a human please").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 8).await;
    let conv = trace(&s, "wamid.sm-9").conversation_id;
    let packet = s
        .app()
        .store
        .call_blocking(move |c| frontdesk::store::handoffs::handoffs_for(c, conv))
        .unwrap()
        .pop()
        .unwrap();
    assert!(
        packet.summary.starts_with("Earlier: A red bike with a loose bell. "),
        "{}",
        packet.summary
    );
    settle(&s).await;
    let (ok, out, err) =
        tokio::task::block_in_place(|| admin_cli(&s.cli_config(), &["contact", "erase", wa, "--json"]));
    assert!(ok, "{err}");
    assert!(out.contains("\"summaries\":1"), "{out}");
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM conversation_summaries"), 0);
    assert_eq!(texts(&s).len(), 8);
    s.stop().await;
}

/// Runs `frontdesk eval routing ARGS --json`: exit code and the report.
fn eval_routing(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = std::process::Command::new(crate::support::bin())
        .args(["eval", "routing", "--json"])
        .args(args)
        .env("FRONTDESK_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn write_jsonl(path: &std::path::Path, rows: &[(&str, &str)]) {
    let text: String = rows
        .iter()
        .map(|(text, label)| format!("{}\n", json!({ "text": text, "label": label })))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn eval_routing_held_out_calibrates_the_floor_on_the_training_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.jsonl");
    write_jsonl(
        &train,
        &[
            ("what time do you open", "hours"),
            ("are you open on sunday", "hours"),
            ("until when are you open today", "hours"),
            ("what are your opening hours", "hours"),
            ("when do you close on saturday", "hours"),
            ("I want my money back", "refund"),
            ("can I get a refund for my order", "refund"),
            ("please refund the broken bike", "refund"),
            ("how do I return this for a refund", "refund"),
            ("refund me the helmet", "refund"),
            ("where is my parcel", "delivery"),
            ("when will my order arrive", "delivery"),
            ("my package has not been delivered", "delivery"),
            ("track my delivery please", "delivery"),
            ("how long does shipping take", "delivery"),
            ("who won the football match yesterday", "oos"),
            ("tell me a joke about penguins", "oos"),
            ("what is the capital of australia", "oos"),
        ],
    );
    let test = dir.path().join("test.jsonl");
    write_jsonl(
        &test,
        &[
            ("are you open tomorrow morning", "hours"),
            ("I'd like a refund please", "refund"),
            ("has my order shipped yet", "delivery"),
            ("recommend a good movie", "oos"),
        ],
    );
    // Another test file: a floor looked up on the scored data would move with it.
    let other = dir.path().join("other.jsonl");
    write_jsonl(
        &other,
        &[
            ("what is the weather like on mars", "oos"),
            ("sing me a song", "oos"),
            ("closing time on friday?", "hours"),
        ],
    );
    for classifier in ["centroid", "knn"] {
        let args = |t: &std::path::Path| {
            let (code, report, err) = eval_routing(&[
                "--classifier",
                classifier,
                "--train",
                train.to_str().unwrap(),
                "--test",
                t.to_str().unwrap(),
                "--oos-label",
                "oos",
                "--calibrate",
            ]);
            assert_eq!(code, 0, "{classifier}: {err}");
            report
        };
        let (a, b) = (args(&test), args(&other));
        assert_eq!(a["classifier"], classifier);
        assert!(
            a["mode"].as_str().unwrap().contains("calibrated on the training file"),
            "{a}"
        );
        assert_eq!(a["at"]["examples"], 4, "only the test file is scored: {a}");
        assert_eq!(b["at"]["examples"], 3);
        let floor = a["floor"].as_f64().unwrap();
        assert!(floor > 0.0 && floor < 1.0, "{classifier}: {a}");
        assert_eq!(
            a["floor"], b["floor"],
            "{classifier}: the floor depends on the training file only"
        );
        assert_eq!(a["at"]["min_similarity"], a["floor"]);
    }
    // Calibrating needs a held-out file: never on the data being scored.
    let (code, _, err) = eval_routing(&["--data", train.to_str().unwrap(), "--oos-label", "oos", "--calibrate"]);
    assert_ne!(code, 0);
    assert!(err.contains("--train"), "{err}");
}
