//! Answers from what this turn was given, through the real server with the demo
//! business's documents and a fake model: a wrong opening time that appears elsewhere in
//! the documents is not sent; a question that asks two things gets both documents'
//! passages (in the model's prompt; the offline responder quotes both); a question the documents do not answer gets the honest "I don't know" text
//! and a person, with a model and with the offline responder.

use frontdesk::config::EngineConfig;

use crate::engine::{owner, say, settle, texts};
use crate::engine_llm::{handoff_trigger, shop_with_models, trace};
use crate::fake_llm::{FakeLlm, reply};
use crate::support::TestServer;

/// The demo's documents a server gets: hours, holidays, shipping, repairs and rentals.
const DOCS: [&str; 6] = [
    "opening-hours.md",
    "holiday-hours.md",
    "shipping-and-delivery.md",
    "puncture-repair.md",
    "rental-terms.md",
    "returns-policy.md",
];

async fn load_demo_docs(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let kb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/kb");
    for d in DOCS {
        std::fs::copy(kb.join(d), dir.path().join(d)).unwrap();
    }
    let report = s
        .app()
        .knowledge
        .add_paths(&[dir.path().to_path_buf()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

async fn demo_shop_with_model(a: &FakeLlm, o: &FakeLlm) -> TestServer {
    let s = shop_with_models(a, o, |_| {}).await;
    load_demo_docs(&s).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_opening_time_that_appears_elsewhere_is_not_sent() {
    let (a, o) = crate::engine_llm::fakes().await;
    // 9:00 is an opening time on Tuesday to Saturday; on Sunday the shop opens at 12:00.
    a.script(vec![
        reply("On Sunday we open at 9:00 and close at 16:00.", 0.9),
        reply("On Sunday we're open from 12:00 to 16:00.", 0.9),
    ]);
    let s = demo_shop_with_model(&a, &o).await;
    say(&s, "31720000001", "wamid.s-1", "what time do you open on sunday?").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    let sent = texts(&s);
    assert_eq!(sent, vec![EngineConfig::default().bridge_text], "{sent:?}");
    assert_eq!(handoff_trigger(&s, "wamid.s-1").as_deref(), Some("ungrounded"));
    let t = trace(&s, "wamid.s-1");
    assert_eq!(t.guard, "blocked: 9:00 (sun, opens)", "{t:?}");
    // The passage that holds 9:00 (Tuesday to Saturday) was in the prompt: presence alone
    // would have let it through.
    let system = a.requests()[0]["system"].as_str().unwrap().to_string();
    assert!(system.contains("Tuesday: 09:00 - 18:00"), "{system}");

    // The right time, for another customer, is sent.
    say(&s, "31720000002", "wamid.s-2", "what time do you open on sunday?").await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 2).await;
    settle(&s).await;
    assert!(texts(&s)[1].contains("from 12:00 to 16:00"), "{:?}", texts(&s));
    assert_eq!(trace(&s, "wamid.s-2").guard, "passed");
    assert_eq!(owner(&s, "31720000002"), "bot");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_that_asks_two_things_gets_both_passages() {
    let (a, o) = crate::engine_llm::fakes().await;
    a.script(vec![reply(
        "We're open Tuesday to Saturday from 9:00, and yes: DHL ships to Belgium for €9.95.",
        0.9,
    )]);
    // One passage per search: the whole message alone would bring one of the two.
    let s = shop_with_models(&a, &o, |c| c.engine.retrieval_k = 1).await;
    load_demo_docs(&s).await;
    say(
        &s,
        "31720000003",
        "wamid.s-3",
        "what are your opening hours on saturday and do you ship to Belgium?",
    )
    .await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    let t = trace(&s, "wamid.s-3");
    let docs: Vec<&str> = t
        .retrieved
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["doc_id"].as_str())
        .collect();
    assert!(
        docs.contains(&"opening-hours") && docs.contains(&"shipping-and-delivery"),
        "{docs:?}"
    );
    assert!(docs.len() <= EngineConfig::default().max_passages, "{docs:?}");
    let system = a.requests()[0]["system"].as_str().unwrap().to_string();
    assert!(
        system.contains("[opening-hours#") && system.contains("[shipping-and-delivery#"),
        "{system}"
    );
    assert!(texts(&s)[0].contains("€9.95"), "{:?}", texts(&s));
    assert_eq!(t.guard, "passed");
    s.stop().await;

    // The offline responder quotes both passages, each cited.
    let s = crate::engine::shop(|c| c.engine.retrieval_k = 1).await;
    load_demo_docs(&s).await;
    let question = "what are your opening hours on saturday and do you ship to Belgium?";
    say(&s, "31720000006", "wamid.s-6", question).await;
    s.wait_until("the answer", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    let answer = &texts(&s)[0];
    assert!(
        answer.contains("Saturday: 09:00 - 17:00")
            && answer.contains("(From: Opening Hours › Shop hours)")
            && answer.contains("€9.95")
            && answer.contains("(From: Shipping and Delivery › Belgium"),
        "{answer}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_the_documents_do_not_answer_gets_the_honest_reply_and_a_person() {
    let (a, o) = crate::engine_llm::fakes().await;
    // Were the model asked, it would quote the nearest passage.
    a.otherwise(reply("Returns are free within 30 days.", 0.9));
    // The floor for a multilingual embedder (the default, 0.1, suits the English one).
    let s = shop_with_models(&a, &o, |c| c.engine.answer_floor = 0.3).await;
    load_demo_docs(&s).await;
    let question = "what is the capital of france?";
    say(&s, "31720000004", "wamid.s-4", question).await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    let unknown = EngineConfig::default().unknown_text;
    assert_eq!(texts(&s), vec![unknown.clone()]);
    assert_eq!(handoff_trigger(&s, "wamid.s-4").as_deref(), Some("no_answer"));
    assert_eq!(owner(&s, "31720000004"), "human");
    assert!(a.requests().is_empty(), "no model call for a question nothing answers");
    s.stop().await;

    // The offline responder says the same.
    let s = crate::engine::shop(|_| {}).await;
    load_demo_docs(&s).await;
    say(&s, "31720000005", "wamid.s-5", question).await;
    s.wait_until("the reply", |s| s.graph.sent().len() == 1).await;
    settle(&s).await;
    assert_eq!(texts(&s), vec![unknown]);
    assert_eq!(handoff_trigger(&s, "wamid.s-5").as_deref(), Some("no_answer"));
    s.stop().await;
}
