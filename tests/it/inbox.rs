//! The conversation page over real HTTP: a handoff's packet and thread (customer text
//! inert, delivery ticks), the agent's reply through the real send path (a double submit
//! sends once), notes, assignment, hand back (the bot answers again), take over (the bot
//! goes silent), and the closed 24-hour window refusing free text.

use reqwest::StatusCode;

use crate::engine::{say, settle, shop, texts};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_a_handoff_and_hands_it_back() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(&s, "31656600001", "wamid.in-1", "<i>hey</i> can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, list, _) = get(&s, "/app", Some(&cookie)).await;
    assert!(list.contains(&format!("href=\"/app/c/{id}\"")), "{list}");
    assert!(
        list.contains("<span class=\"window\">reply window closes in 23 h</span>"),
        "the list's countdown: {list}"
    );
    let path = format!("/app/c/{id}");
    let (st, page, _) = get(&s, &path, Some(&cookie)).await;
    assert_eq!(st, 200);
    assert!(
        page.contains("Why it was handed over") && page.contains("the customer asked for a person"),
        "{page}"
    );
    assert!(
        page.contains("&lt;i&gt;hey&lt;/i&gt;") && !page.contains("<i>hey"),
        "customer text is inert"
    );
    assert!(page.contains("pulling in a teammate"), "the bridge is in the thread");
    assert!(page.contains("Reply window: 23 h"), "{page}");
    assert!(
        page.contains("Ctrl+Enter (⌘+Enter on a Mac) sends.") && !page.contains("Type / in an empty reply"),
        "no canned replies configured: no \"/\" hint"
    );
    // Reply: the real send path; the same form twice sends once.
    let csrf = csrf_of(&page);
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    for _ in 0..2 {
        let (st, _) = post(
            &s,
            &format!("{path}/reply"),
            &cookie,
            &[
                ("csrf", &csrf),
                ("key", &key),
                ("text", "Hi, Sam here: how can I help?"),
            ],
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
    }
    s.wait_until("the agent's reply", |s| s.graph.sent().len() == 2).await;
    settle(&s).await;
    assert_eq!(texts(&s)[1], "Hi, Sam here: how can I help?");
    assert_eq!(s.graph.sent().len(), 2, "one message for a double submit");
    let (_, page, _) = get(&s, &format!("{path}?notice=sent"), Some(&cookie)).await;
    assert!(
        page.contains("Sent. The ticks show") && page.contains(ADMIN) && page.contains("✓"),
        "{page}"
    );
    // A note, an assignment.
    assert_eq!(
        post(
            &s,
            &format!("{path}/note"),
            &cookie,
            &[("csrf", &csrf), ("text", "Asked about <b>frames</b>")]
        )
        .await
        .0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(&s, &format!("{path}/assign"), &cookie, &[("csrf", &csrf), ("to", "me")])
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    let (_, page, _) = get(&s, &path, Some(&cookie)).await;
    assert!(
        page.contains("Note by owner@shop.example") && page.contains("Asked about &lt;b&gt;frames&lt;/b&gt;"),
        "{page}"
    );
    assert!(page.contains(&format!("Assigned to: {ADMIN}.")));
    // While a person owns it, the bot is silent.
    say(&s, "31656600001", "wamid.in-2", "are you open on sunday?").await;
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 2);
    // Hand back with a note: the bot answers the next message.
    assert_eq!(
        post(
            &s,
            &format!("{path}/handback"),
            &cookie,
            &[("csrf", &csrf), ("note", "sorted out the frame size")]
        )
        .await
        .0,
        StatusCode::SEE_OTHER
    );
    let (_, page, _) = get(&s, &path, Some(&cookie)).await;
    assert!(
        page.contains("Handed back to the bot by user:owner@shop.example. Note: sorted out the frame size"),
        "{page}"
    );
    say(&s, "31656600001", "wamid.in-3", "are you open on sunday?").await;
    s.wait_until("the bot's answer", |s| s.graph.sent().len() == 3).await;
    assert!(texts(&s)[2].contains("Sunday"), "{:?}", texts(&s));
    // Take over: silent again.
    assert_eq!(
        post(&s, &format!("{path}/takeover"), &cookie, &[("csrf", &csrf)])
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    say(&s, "31656600001", "wamid.in-4", "and monday?").await;
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 3);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('conversation.takeover', 'conversation.handback', 'conversation.assign')"), 3);
    // The window closes: free text is refused with the reason; the page offers templates.
    s.app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE conversations SET last_inbound_at = 0 WHERE id = ?1", [id])?))
        .unwrap();
    let (_, page, _) = get(&s, &path, Some(&cookie)).await;
    assert!(
        page.contains("The 24-hour window is closed") && !page.contains("name=\"text\" rows=\"3\""),
        "{page}"
    );
    let (st, body) = post(
        &s,
        &format!("{path}/reply"),
        &cookie,
        &[("csrf", &csrf), ("key", &"a".repeat(64)), ("text", "late")],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("24-hour window is closed"),
        "{body}"
    );
    assert_eq!(get(&s, "/app/c/999999", Some(&cookie)).await.0, StatusCode::NOT_FOUND);
    s.stop().await;
}

/// Reads the event stream until an event of `kind` arrives: its `id:` line.
async fn next_event(r: &mut reqwest::Response, kind: &str, buf: &mut String) -> String {
    next_event_field(r, kind, "id: ", buf).await
}

/// Reads the event stream until an event of `kind` arrives (within 10 s): the value of
/// its line starting with `field` (`"id: "`, `"data: "`).
pub(crate) async fn next_event_field(r: &mut reqwest::Response, kind: &str, field: &str, buf: &mut String) -> String {
    loop {
        if let Some(at) = buf.find(&format!("event: {kind}\n")) {
            let rest = buf[at..].to_string();
            if let Some(end) = rest.find("\n\n") {
                let event = rest[..end].to_string();
                *buf = rest[end + 2..].to_string();
                return event
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .unwrap_or_default()
                    .to_string();
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream is open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_messages_reach_an_open_inbox_within_a_second() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, page, _) = get(&s, "/app", Some(&cookie)).await;
    assert!(
        page.contains("src=\"/app/static/app.js\"") && page.contains("data-page=\"inbox\""),
        "{page}"
    );
    assert!(get(&s, "/app/static/app.js", None).await.1.contains("EventSource"));
    let open = || {
        crate::inbox_auth::http()
            .get(format!("{}/app/events", s.base))
            .header("cookie", &cookie)
    };
    let mut r = open().send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let mut worst = std::time::Duration::ZERO;
    let mut first_id = String::new();
    for i in 0..5 {
        let started = std::time::Instant::now();
        say(
            &s,
            &format!("3165770000{i}"),
            &format!("wamid.ev-{i}"),
            "are you open on sunday?",
        )
        .await;
        let id = next_event(&mut r, "message", &mut buf).await;
        worst = worst.max(started.elapsed());
        if i == 0 {
            first_id = id;
        }
        settle(&s).await;
    }
    assert!(
        worst < std::time::Duration::from_secs(1),
        "webhook acknowledged → event: {worst:?}"
    );
    println!("webhook acknowledged → inbox event, worst of 5: {worst:?}");
    // A reconnect with Last-Event-ID gets what happened since.
    let mut again = open().header("last-event-id", &first_id).send().await.unwrap();
    let mut buf2 = String::new();
    next_event(&mut again, "message", &mut buf2).await;
    // Stopping the server ends open streams (shutdown does not hang on them).
    tokio::time::timeout(std::time::Duration::from_secs(10), s.stop())
        .await
        .expect("a prompt shutdown with open event streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_search_and_mark_unread() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(
        &s,
        "31658800001",
        "wamid.ls-1",
        "please let me talk to a human about my saddle",
    )
    .await;
    say(
        &s,
        "31658800002",
        "wamid.ls-2",
        "I need a person, my derailleur is broken",
    )
    .await;
    say(&s, "31658800003", "wamid.ls-3", "are you open on sunday?").await;
    s.wait_until("three answers", |s| s.graph.sent().len() == 3).await;
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let list = |q: &'static str| {
        let c = cookie.clone();
        let s = &s;
        async move { get(s, &format!("/app?{q}"), Some(&c)).await.1 }
    };
    let human = list("view=human").await;
    assert!(human.contains("31658800001") && human.contains("31658800002") && !human.contains("31658800003"));
    assert_eq!(human.matches("class=\"unread\"").count(), 2, "{human}");
    assert!(list("view=bot").await.contains("31658800003"));
    // Search: text (word prefix), number, name.
    let found = list("view=all&q=derail").await;
    assert!(
        found.contains("31658800002") && !found.contains("31658800001"),
        "{found}"
    );
    assert!(list("view=all&q=8800003").await.contains("31658800003"));
    assert!(
        !list("view=all&q=%25").await.contains("31658800001"),
        "LIKE wildcards are literal"
    );
    for odd in ["%22unbalanced", "AND%20OR%20NOT", "*", "%2D%2D"] {
        assert_eq!(
            get(&s, &format!("/app?view=all&q={odd}"), Some(&cookie)).await.0,
            200,
            "search {odd} is plain text"
        );
    }
    // Opening a conversation marks it read; assigning puts it under Mine.
    let id = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31658800001'",
    );
    let page = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await.1;
    assert_eq!(list("view=human").await.matches("class=\"unread\"").count(), 1);
    let csrf = csrf_of(&page);
    post(
        &s,
        &format!("/app/c/{id}/assign"),
        &cookie,
        &[("csrf", &csrf), ("to", "me")],
    )
    .await;
    let mine = list("view=mine").await;
    assert!(mine.contains("31658800001") && !mine.contains("31658800002"), "{mine}");
    let unassigned = list("view=unassigned").await;
    assert!(unassigned.contains("31658800002") && !unassigned.contains("31658800001"));
    // A new customer message makes it unread again.
    say(&s, "31658800001", "wamid.ls-4", "hello again").await;
    settle(&s).await;
    assert_eq!(list("view=human").await.matches("class=\"unread\"").count(), 2);
    // Closing: out of the working lists, into Closed, the bot owns it; the customer's
    // next message reopens it (and the bot answers).
    let id2 = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31658800002'",
    );
    assert_eq!(
        post(&s, &format!("/app/c/{id2}/close"), &cookie, &[("csrf", &csrf)])
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    assert!(!list("view=human").await.contains("31658800002"));
    assert!(list("view=closed").await.contains("31658800002"));
    let before = s.graph.sent().len();
    say(&s, "31658800002", "wamid.ls-5", "are you open on sunday?").await;
    s.wait_until("the bot's answer", |s| s.graph.sent().len() == before + 1)
        .await;
    assert!(
        !list("view=closed").await.contains("31658800002"),
        "reopened by the customer"
    );
    // The paused-sending alert shows as a banner. (Once every send is done: a send that
    // succeeds lifts the pause, as a working token should.)
    settle(&s).await;
    s.app().send_pause.pause("the access token was refused (190)".into());
    assert!(
        list("view=human")
            .await
            .contains("Sending is paused: the access token was refused (190)")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_flip_live_settings_from_the_page() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let page = get(&s, "/admin/settings", Some(&cookie)).await.1;
    assert!(
        page.contains("Kill switch is")
            && page.contains("router.rules")
            && page.contains("budget.contact_daily_tokens"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (st, _) = post(
        &s,
        "/admin/settings",
        &cookie,
        &[("csrf", &csrf), ("key", "kill_switch"), ("value", "on")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    say(&s, "31659900001", "wamid.st-1", "are you open on sunday?").await;
    s.wait_until("the static reply", |s| s.graph.sent().len() == 1).await;
    assert_eq!(texts(&s)[0], frontdesk::config::EngineConfig::default().static_reply);
    let (st, body) = post(
        &s,
        "/admin/settings",
        &cookie,
        &[("csrf", &csrf), ("key", "confidence_threshold"), ("value", "7")],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("confidence_threshold must be a number from 0 to 1"),
        "{body}"
    );
    let (st, body) = post(
        &s,
        "/admin/settings",
        &cookie,
        &[
            ("csrf", &csrf),
            ("key", "router.rules"),
            ("value", "legal: /(lawyer/ => handoff"),
        ],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("bad regex"),
        "{body}"
    );
    // Back to the config file's value: the bot answers again.
    assert_eq!(
        post(
            &s,
            "/admin/settings",
            &cookie,
            &[("csrf", &csrf), ("key", "kill_switch"), ("action", "unset")]
        )
        .await
        .0,
        StatusCode::SEE_OTHER
    );
    say(&s, "31659900002", "wamid.st-2", "are you open on sunday?").await;
    s.wait_until("the bot's answer", |s| s.graph.sent().len() == 2).await;
    assert!(texts(&s)[1].contains("Sunday"));
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM audit_log WHERE actor = 'user:owner@shop.example' AND action LIKE 'setting%'"
        ),
        2
    );
    s.stop().await;
}

/// While the bot is rolled back — the kill switch on, or the desk's daily budget spent —
/// every inbox and admin page says so in a banner (admins with the way to Settings);
/// without a rollback no page has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_a_banner_while_the_bot_is_rolled_back() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, "agent@shop.example", "agent", Some(ADMIN_PW));
    });
    say(&s, "31659900031", "wamid.rb-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let agent = login(&s, "agent@shop.example", ADMIN_PW).await.1.unwrap();
    let conversation = format!("/app/c/{id}");
    let admin_pages = [
        "/app",
        "/app?view=all",
        conversation.as_str(),
        "/account",
        "/admin/dashboard",
        "/admin/health",
        "/admin/settings",
        "/admin/kb",
        "/admin/users",
    ];
    let agent_pages = ["/app", conversation.as_str(), "/account"];
    assert!(banners(&s, &admin, &admin_pages).await.iter().all(Option::is_none));
    let csrf = csrf_of(&get(&s, "/admin/settings", Some(&admin)).await.1);
    let set = |key: &'static str, value: &'static str| set_setting(&s, &admin, &csrf, key, value);
    set("kill_switch", "on").await;
    for b in banners(&s, &admin, &admin_pages).await {
        let b = b.expect("a banner on every admin's page");
        assert!(
            b.contains("The kill switch is on") && b.contains("href=\"/admin/settings\""),
            "{b}"
        );
    }
    for b in banners(&s, &agent, &agent_pages).await {
        let b = b.expect("a banner on every agent's page");
        assert!(b.contains("static reply") && !b.contains("/admin/settings"), "{b}");
    }
    set("kill_switch", "off").await;
    // The desk's budget: spent today → the same banner, saying why.
    set("budget.global_daily_usd", "0.5").await;
    let now = frontdesk::domain::now_ms();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.execute(
                "INSERT INTO reply_traces (conversation_id, inbound_wamid, route, route_reason, model, cost_usd, outcome, guard, retrieved_json, stages_json, created_at)
                 VALUES (?1, 'wamid.rb-spent', 'commodity', 'test', 'test:model', 0.75, 'answered', 'passed', '[]', '{}', ?2)",
                [id, now],
            )?)
        })
        .unwrap();
    for b in banners(&s, &admin, &admin_pages).await {
        let b = b.expect("a banner while the budget is spent");
        assert!(b.contains("daily budget of $0.5000 is spent ($0.7500)"), "{b}");
    }
    set("budget.global_daily_usd", "0").await;
    assert!(banners(&s, &agent, &agent_pages).await.iter().all(Option::is_none));
    s.stop().await;
}

/// Handoff reasons read as a sentence an agent understands — in the list, the packet and
/// the thread — never the engine's scores, trigger names or costs; admins get those in a
/// "Raw details" disclosure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_reasons_read_plainly_with_raw_details_for_admins() {
    use frontdesk::engine::HandoffTrigger;
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, "agent@shop.example", "agent", Some(ADMIN_PW));
    });
    say(
        &s,
        "31659900041",
        "wamid.hr-1",
        "Do you also repair vintage typewriters from the fifties?",
    )
    .await;
    s.wait_until("the handoff", |s| s.query_i64("SELECT COUNT(*) FROM handoffs") == 1)
        .await;
    settle(&s).await;
    let (id, trigger, reason): (i64, String, String) = s
        .app()
        .store
        .call_blocking(|c| {
            Ok(
                c.query_row("SELECT conversation_id, trigger, reason FROM handoffs", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?,
            )
        })
        .unwrap();
    assert_eq!(trigger, "no_answer", "{reason}");
    assert!(reason.contains("similar") && reason.contains("threshold"), "{reason}");
    let plain = HandoffTrigger::NoAnswer.for_agent();
    let agent = login(&s, "agent@shop.example", ADMIN_PW).await.1.unwrap();
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    for page in [
        get(&s, "/app", Some(&agent)).await.1,
        get(&s, &path, Some(&agent)).await.1,
    ] {
        assert!(page.contains(plain), "{page}");
        for raw in ["no_answer", "similar;", "threshold", "$0.0000", "Raw details"] {
            assert!(!page.contains(raw), "an agent's page shows {raw:?}: {page}");
        }
    }
    let agent_page = get(&s, &path, Some(&agent)).await.1;
    // (Beside the thread, the list column says it too: counted without it.)
    let agent_page = agent_page
        .split("<div class=\"split-main\">")
        .nth(1)
        .unwrap_or_default();
    assert_eq!(
        agent_page.matches(plain).count(),
        2,
        "the packet and the thread's handoff entry"
    );
    let page = get(&s, &path, Some(&admin)).await.1;
    assert!(page.contains(plain), "{page}");
    let raw = page
        .split("<details class=\"raw\">")
        .nth(1)
        .expect("the raw details for an admin");
    assert!(
        raw.contains("<code>no_answer</code>") && raw.contains("threshold") && raw.contains("$0.0000"),
        "{raw}"
    );
    s.stop().await;
}

/// Each page's rollback banner (its inner HTML), or None.
async fn banners(s: &crate::support::TestServer, cookie: &str, pages: &[&str]) -> Vec<Option<String>> {
    let mut found = Vec::new();
    for p in pages {
        let (st, page, _) = get(s, p, Some(cookie)).await;
        assert_eq!(st, 200, "{p}");
        found.push(
            page.split("class=\"banner rollback\"")
                .nth(1)
                .map(|b| b[..b.find("</div>").unwrap()].to_string()),
        );
    }
    found
}

/// Sets a live setting from the admin page.
async fn set_setting(s: &crate::support::TestServer, cookie: &str, csrf: &str, key: &str, value: &str) {
    let form = [("csrf", csrf), ("key", key), ("value", value), ("action", "set")];
    assert_eq!(post(s, "/admin/settings", cookie, &form).await.0, StatusCode::SEE_OTHER);
}

/// A multipart body with `files` parts: (body, content type).
fn multipart(files: &[(&str, &str)]) -> (Vec<u8>, String) {
    let boundary = "fdboundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, content) in files {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n").as_bytes());
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_upload_search_and_remove_documents() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let page = get(&s, "/admin/kb", Some(&cookie)).await.1;
    assert!(
        page.contains("3 documents") && page.contains("enctype=\"multipart/form-data\""),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let upload = |csrf: String, files: Vec<(&'static str, &'static str)>| {
        let (body, ct) = multipart(&files);
        let c = cookie.clone();
        let url = format!("{}/admin/kb/upload?csrf={csrf}", s.base);
        async move {
            let r = crate::inbox_auth::http()
                .post(url)
                .header("cookie", c)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (st, body) = upload(
        csrf.clone(),
        vec![(
            "../../etc/warranty.md",
            "# Warranty\n\nEvery frame has a five year warranty against defects.",
        )],
    )
    .await;
    assert!(st == 200 && body.contains("1 added, 0 updated"), "{body}");
    assert!(body.contains("4 documents"));
    let found = get(
        &s,
        "/admin/kb?q=how%20long%20is%20the%20frame%20warranty",
        Some(&cookie),
    )
    .await
    .1;
    assert!(
        found.contains("five year warranty") && found.contains("warranty#"),
        "{found}"
    );
    // The engine uses it at once.
    say(
        &s,
        "31650000001",
        "wamid.kb-1",
        "how long is the warranty on the frame?",
    )
    .await;
    s.wait_until("an answer", |s| s.graph.sent().len() == 1).await;
    assert!(texts(&s)[0].contains("five year warranty"), "{:?}", texts(&s));
    // Bad files are reported; no token, no upload.
    let (st, body) = upload(csrf.clone(), vec![("tool.exe", "MZ")]).await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("tool.exe: not a supported file"),
        "{body}"
    );
    assert_eq!(
        upload("0".repeat(64), vec![("a.md", "# A\n\ntext")]).await.0,
        StatusCode::FORBIDDEN
    );
    // Remove.
    let (st, _) = post(&s, "/admin/kb/remove", &cookie, &[("csrf", &csrf), ("doc", "warranty")]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        get(&s, "/admin/kb?notice=removed", Some(&cookie))
            .await
            .1
            .contains("3 documents")
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('kb.upload', 'kb.remove')"),
        3
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_charts_what_the_bot_did() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(&s, "31651100001", "wamid.db-1", "are you open on sunday?").await;
    say(&s, "31651100002", "wamid.db-2", "let me talk to a human").await;
    s.wait_until("two replies", |s| s.graph.sent().len() == 2).await;
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (st, page, _) = get(&s, "/admin/dashboard", Some(&cookie)).await;
    assert_eq!(st, 200);
    assert!(
        page.contains("1 answered by the bot, 1 handed to people (50% resolved by the bot)"),
        "{page}"
    );
    assert_eq!(
        page.matches("<svg").count(),
        4 + 2,
        "four charts and a meter per route: {page}"
    );
    assert!(
        page.contains("<span class=\"route\">commodity</span> 1 (50%)")
            && page.contains("<span class=\"route\">rule</span> 1 (50%)"),
        "{page}"
    );
    assert!(
        page.contains("<td>2</td>"),
        "today's two customer messages in the numbers table"
    );
    s.stop().await;
}

/// A message that failed to send is sent again once: after the retry its Retry button is
/// gone ("Sent again below."), and a second retry of it (another tab's form, a
/// resubmitted form, each with its own one-time key) is refused with why and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_is_retried_once() {
    use frontdesk::http::fake_graph::Failure;
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    s.graph.fail_next(Failure::code(131026), 1);
    say(&s, "31652200009", "wamid.rt-1", "are you open on sunday?").await;
    s.wait_until("the failed answer", |s| {
        s.query_i64("SELECT COUNT(*) FROM outbound WHERE state = 'failed'") == 1
    })
    .await;
    let (id, failed) = (
        s.query_i64("SELECT id FROM conversations"),
        s.query_i64("SELECT id FROM outbound WHERE state = 'failed'"),
    );
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    // Two tabs open on the failed message, each with its own form key.
    let (first_tab, second_tab) = (
        get(&s, &path, Some(&cookie)).await.1,
        get(&s, &path, Some(&cookie)).await.1,
    );
    let retry_field = format!("name=\"ledger\" value=\"{failed}\"");
    assert!(first_tab.contains(&retry_field), "{first_tab}");
    let key_of = |page: &str| page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let failed_id = failed.to_string();
    let (st, _) = post(
        &s,
        &format!("{path}/retry"),
        &cookie,
        &[
            ("csrf", &csrf_of(&first_tab)),
            ("key", &key_of(&first_tab)),
            ("ledger", &failed_id),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("the retry went out", |s| s.graph.sent().len() == 1).await;
    let (st, body) = post(
        &s,
        &format!("{path}/retry"),
        &cookie,
        &[
            ("csrf", &csrf_of(&second_tab)),
            ("key", &key_of(&second_tab)),
            ("ledger", &failed_id),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already sent again"), "{body}");
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), 1, "one copy went out");
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM outbound"),
        2,
        "the failed row and its one retry"
    );
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(
        !page.contains(&retry_field),
        "no Retry button on a retried message: {page}"
    );
    assert!(page.contains("Sent again below."), "{page}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canned_replies_fill_the_composer_or_go_as_they_are() {
    let s = shop(|c| {
        c.inbox.canned_replies = vec![frontdesk::config::CannedReply {
            title: "Hours".into(),
            text: "We're open Tuesday to Saturday, 9:00-18:00.".into(),
        }]
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(&s, "31652200001", "wamid.cr-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let page = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await.1;
    assert!(
        page.contains("data-text=\"We're open Tuesday to Saturday, 9:00-18:00.\">Hours</option>"),
        "{page}"
    );
    // The composer names its shortcuts: Ctrl/⌘+Enter, and "/" for these canned replies.
    assert!(
        page.contains("aria-keyshortcuts=\"Control+Enter Meta+Enter\"")
            && page.contains("Type / in an empty reply to pick a canned reply."),
        "{page}"
    );
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let (st, _) = post(
        &s,
        &format!("/app/c/{id}/reply"),
        &cookie,
        &[("csrf", &csrf_of(&page)), ("key", &key), ("text", ""), ("canned", "0")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("the canned reply", |s| s.graph.sent().len() == 2).await;
    assert_eq!(texts(&s)[1], "We're open Tuesday to Saturday, 9:00-18:00.");
    let (st, body) = post(
        &s,
        &format!("/app/c/{id}/reply"),
        &cookie,
        &[("csrf", &csrf_of(&page)), ("key", &"b".repeat(64)), ("text", " ")],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("Write something to send."),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_media_shows_in_the_thread_and_downloads_safely() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    s.graph.add_media("770001", "image/jpeg", jpeg.clone());
    s.graph
        .add_media("770002", "text/html", b"<script>alert(1)</script>".to_vec());
    let media = |wamid: &str, kind: &str, id: &str, extra: serde_json::Value| {
        let mut part =
            serde_json::json!({ "id": id, "mime_type": if kind == "image" { "image/jpeg" } else { "text/html" } });
        if let (Some(p), Some(e)) = (part.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": { "phone_number_id": "P1" },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "31653300001" }],
            "messages": [{ "from": "31653300001", "id": wamid, "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(), "type": kind, kind: part }] } }] }] })
        .to_string()
    };
    assert_eq!(
        s.post_webhook(
            media(
                "wamid.md-1",
                "image",
                "770001",
                serde_json::json!({ "caption": "my broken <b>wheel</b>" })
            )
            .as_bytes()
        )
        .await,
        200
    );
    assert_eq!(
        s.post_webhook(
            media(
                "wamid.md-2",
                "document",
                "770002",
                serde_json::json!({ "filename": "../invoice.html" })
            )
            .as_bytes()
        )
        .await,
        200
    );
    s.wait_until("both stored", |s| {
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 2
    })
    .await;
    // The media jobs download both files (neither can be read without a vision model or
    // as a document, but both are kept for the inbox).
    s.wait_until("both downloaded", |s| {
        s.query_i64("SELECT COUNT(*) FROM media WHERE sha256 IS NOT NULL") == 2
    })
    .await;
    let id = s.query_i64("SELECT id FROM conversations");
    let (img_id, doc_id) = (
        s.query_i64("SELECT id FROM messages WHERE wamid = 'wamid.md-1'"),
        s.query_i64("SELECT id FROM messages WHERE wamid = 'wamid.md-2'"),
    );
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let page = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await.1;
    assert!(
        page.contains(&format!("<img src=\"/app/c/{id}/media/{img_id}\""))
            && page.contains("my broken &lt;b&gt;wheel&lt;/b&gt;"),
        "{page}"
    );
    assert!(page.contains("Download document (../invoice.html)"), "{page}");
    let (st, _, h) = get(&s, &format!("/app/c/{id}/media/{img_id}"), Some(&cookie)).await;
    assert_eq!(
        (st, h["content-type"].to_str().unwrap()),
        (StatusCode::OK, "image/jpeg")
    );
    let r = crate::inbox_auth::http()
        .get(format!("{}/app/c/{id}/media/{img_id}", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), jpeg);
    // A hostile type is only ever a download, under a cleaned name.
    let (_, _, h) = get(&s, &format!("/app/c/{id}/media/{doc_id}"), Some(&cookie)).await;
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-disposition"], "attachment; filename=\"..invoice.html\"");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    // Another conversation's id, or no login: nothing.
    assert_eq!(
        get(&s, &format!("/app/c/{}/media/{img_id}", id + 1), Some(&cookie))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, &format!("/app/c/{id}/media/{img_id}"), None).await.0,
        StatusCode::SEE_OTHER
    );
    s.stop().await;
}

/// A 130-entry thread opens on its newest 50 with "Earlier messages"; following the links
/// pages back 50 at a time to the first message, each entry on exactly one page, each
/// older page with a way back to the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_thread_is_paged_newest_first() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(&s, "31656600077", "wamid.long-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let start = frontdesk::domain::now_ms() - 86_400_000;
    s.insert_history(id, start, 128);
    let total = s.query_i64(&format!(
        "SELECT (SELECT COUNT(*) FROM messages WHERE conversation_id = {id} AND direction = 'in')
              + (SELECT COUNT(*) FROM outbound WHERE conversation_id = {id})
              + (SELECT COUNT(*) FROM handoffs WHERE conversation_id = {id})"
    )) as usize;
    assert!(total > 130, "{total}");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let keys = |page: &str| -> Vec<String> {
        page.split("data-key=\"")
            .skip(1)
            .map(|k| k.split('"').next().unwrap().to_string())
            .collect()
    };
    let earlier = |page: &str| {
        page.split("class=\"earlier\" href=\"")
            .nth(1)
            .map(|h| h.split('"').next().unwrap().to_string())
    };
    let (st, newest, _) = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await;
    assert_eq!(st, 200);
    assert_eq!(
        keys(&newest).len(),
        frontdesk::store::inbox::THREAD_PAGE,
        "the newest page is bounded"
    );
    assert!(newest.contains("can I talk to a human"), "the newest message is on it");
    assert!(!newest.contains("history line 000."), "the oldest is not");
    assert!(!newest.contains("Newest messages"), "the newest page needs no way back");
    let mut seen = keys(&newest);
    let mut next = earlier(&newest).expect("an Earlier messages link");
    let mut pages = 1;
    loop {
        assert!(next.starts_with(&format!("/app/c/{id}?before=")), "{next}");
        let (st, page, _) = get(&s, &next, Some(&cookie)).await;
        assert_eq!(st, 200);
        pages += 1;
        let these = keys(&page);
        assert!(!these.is_empty() && these.len() <= frontdesk::store::inbox::THREAD_PAGE);
        assert!(these.iter().all(|k| !seen.contains(k)), "no entry on two pages");
        assert!(
            page.contains(&format!("href=\"/app/c/{id}\">Newest messages")),
            "a way back"
        );
        seen.extend(these);
        match earlier(&page) {
            Some(n) => next = n.replace("&amp;", "&"),
            None => {
                assert!(
                    page.contains("history line 000."),
                    "the last page holds the first message"
                );
                break;
            }
        }
    }
    assert_eq!(
        (pages, seen.len()),
        (3, total),
        "every entry once, in three pages: {seen:?}"
    );
    s.stop().await;
}

/// Assigning to any teammate: the page offers the desk's users in "Assign to"; picking
/// one puts the conversation under their Mine (not the assigner's), audited with the
/// teammate's id; an unknown user is refused (422) and changes nothing; "nobody" clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_assigned_to_any_teammate() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, "sam@shop.example", "agent", Some("sam's long password"));
    });
    say(&s, "31656600088", "wamid.assign-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let sam = s.query_i64("SELECT id FROM users WHERE email = 'sam@shop.example'");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(
        page.contains(&format!("<option value=\"{sam}\">sam@shop.example</option>")),
        "the teammate is offered: {page}"
    );
    let csrf = csrf_of(&page);
    let (st, _) = post(
        &s,
        &format!("{path}/assign"),
        &cookie,
        &[("csrf", &csrf), ("to", &sam.to_string())],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        s.query_i64(&format!("SELECT assigned_to FROM conversations WHERE id = {id}")),
        sam
    );
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.assign' AND actor = 'user:{ADMIN}' AND detail = '{{\"user_id\":{sam}}}'"
        )),
        1,
        "audited with the teammate"
    );
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(page.contains("Assigned to: sam@shop.example."), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{sam}\" selected>sam@shop.example</option>")),
        "the picker shows who has it"
    );
    // Under Sam's Mine, not the admin's.
    let sam_cookie = login(&s, "sam@shop.example", "sam's long password").await.1.unwrap();
    assert!(
        get(&s, "/app?view=mine", Some(&sam_cookie))
            .await
            .1
            .contains("31656600088")
    );
    assert!(!get(&s, "/app?view=mine", Some(&cookie)).await.1.contains("31656600088"));
    // A user who does not exist: refused, nothing changes.
    let (st, body) = post(
        &s,
        &format!("{path}/assign"),
        &cookie,
        &[("csrf", &csrf), ("to", "999999")],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("No such teammate"), "{body}");
    let (st, _) = post(
        &s,
        &format!("{path}/assign"),
        &cookie,
        &[("csrf", &csrf), ("to", "someone")],
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.query_i64(&format!("SELECT assigned_to FROM conversations WHERE id = {id}")),
        sam
    );
    // Nobody: unassigned again (in the Unassigned tab).
    post(
        &s,
        &format!("{path}/assign"),
        &cookie,
        &[("csrf", &csrf), ("to", "nobody")],
    )
    .await;
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM conversations WHERE id = {id} AND assigned_to IS NULL"
        )),
        1
    );
    assert!(
        get(&s, "/app?view=unassigned", Some(&cookie))
            .await
            .1
            .contains("31656600088")
    );
    s.stop().await;
}

/// Priority and labels: set on the conversation page (labels normalised, odd ones and one
/// too many refused, escaped), audited, shown in the list and filterable by label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_and_labels_are_set_shown_and_filtered() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    say(&s, "31656600091", "wamid.lab-1", "can I talk to a human").await;
    say(&s, "31656600092", "wamid.lab-2", "can I talk to a human too").await;
    s.wait_until("the bridges", |s| s.graph.sent().len() == 2).await;
    let id = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31656600091'",
    );
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    let csrf = csrf_of(&get(&s, &path, Some(&cookie)).await.1);
    let act = |what: &'static str, form: Vec<(&'static str, String)>| {
        let (s, cookie, csrf, path) = (&s, cookie.clone(), csrf.clone(), path.clone());
        async move {
            let mut f: Vec<(&str, String)> = vec![("csrf", csrf)];
            f.extend(form);
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(s, &format!("{path}/{what}"), &cookie, &f).await
        }
    };
    assert_eq!(
        act("priority", vec![("priority", "urgent".into())]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        act("priority", vec![("priority", "critical".into())]).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        act("labels", vec![("add", "  VIP Customer ".into())]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        act("labels", vec![("add", "refund".into())]).await.0,
        StatusCode::SEE_OTHER
    );
    let (st, body) = act("labels", vec![("add", "<b>x</b>".into())]).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("A label is one or a few words"), "{body}");
    for i in 0..6 {
        act("labels", vec![("add", format!("extra{i}"))]).await;
    }
    let (st, body) = act("labels", vec![("add", "one-too-many".into())]).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("at most 8 labels"), "{body}");
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM conversation_labels WHERE conversation_id = {id}"
        )),
        8
    );
    assert_eq!(
        act("labels", vec![("remove", "extra5".into())]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        s.query_i64(&format!("SELECT priority FROM conversations WHERE id = {id}")),
        3
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('conversation.priority', 'conversation.label')"),
        1 + 8 + 1,
        "every change audited"
    );
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(
        page.contains("<option value=\"urgent\" selected>urgent</option>"),
        "{page}"
    );
    assert!(page.contains("<span class=\"label\">vip-customer</span>"), "{page}");
    // In the list, and filterable by label.
    let (_, all, _) = get(&s, "/app?view=all", Some(&cookie)).await;
    assert!(
        all.contains("priority: urgent") && all.contains(">vip-customer</a>"),
        "{all}"
    );
    assert!(all.contains("31656600092"));
    let (_, only, _) = get(&s, "/app?view=all&label=VIP%20customer", Some(&cookie)).await;
    assert!(only.contains("31656600091") && !only.contains("31656600092"), "{only}");
    assert!(only.contains("Only conversations labelled"), "{only}");
    let (_, none, _) = get(&s, "/app?view=all&label=extra5", Some(&cookie)).await;
    assert!(!none.contains("31656600091"), "a removed label no longer matches");
    s.stop().await;
}

/// The conversation page carries the inbox tab the agent came from as its left column
/// (`split.rs`; shown on a wide screen): the tab's conversations, the open one marked,
/// every customer name escaped, the tab the inbox page remembered; `split.js` is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_page_carries_the_tabs_list_beside_the_thread() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let hostile = "<img src=x onerror=alert(1)>";
    for (wa_id, name) in [("31656600071", "Ada Anchor"), ("31656600072", hostile)] {
        let body = crate::support::text_webhook("P1", wa_id, &format!("wamid.{wa_id}"), "can I talk to a human")
            .replace(
                "\"name\":\"Customer\"",
                &format!("\"name\":{}", serde_json::Value::from(name)),
            );
        assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    }
    s.wait_until("two handoffs", |s| s.query_i64("SELECT COUNT(*) FROM handoffs") == 2)
        .await;
    settle(&s).await;
    let id_of = |wa_id: &str| {
        s.query_i64(&format!(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{wa_id}'"
        ))
    };
    let (ada, other) = (id_of("31656600071"), id_of("31656600072"));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();

    let (st, page, _) = get(&s, &format!("/app/c/{ada}"), Some(&cookie)).await;
    assert_eq!(st, 200);
    let column = page
        .split("<nav class=\"split-list\"")
        .nth(1)
        .and_then(|rest| rest.split("</nav>").next())
        .unwrap_or_else(|| panic!("no list column: {page}"));
    assert!(column.contains("Needs a human"), "{column}");
    assert!(
        column.contains(&format!(
            "current\"><div class=\"who\"><a class=\"open\" href=\"/app/c/{ada}\" aria-current=\"page\">"
        )),
        "the open one is marked: {column}"
    );
    assert!(column.contains(&format!("href=\"/app/c/{other}\"")), "{column}");
    assert!(column.contains("&lt;img src=x onerror=alert(1)&gt;"), "{column}");
    assert!(!page.contains("<img src=x"), "the hostile name stays text: {page}");
    assert_eq!(
        column.matches("aria-current=\"page\"").count(),
        1,
        "one marked conversation"
    );
    assert!(page.contains("<div class=\"split-main\">"), "{page}");
    assert!(page.contains("src=\"/app/static/split.js\""), "{page}");

    // The inbox page remembers its tab (a cookie); the conversation page lists that tab.
    let (_, _, headers) = get(&s, "/app?view=all", Some(&cookie)).await;
    let tab = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("fd_tab="))
        .expect("the tab is remembered");
    assert_eq!(tab, "fd_tab=all; Path=/app; HttpOnly; SameSite=Strict");
    let (_, all, _) = get(&s, &format!("/app/c/{other}"), Some(&format!("{cookie}; fd_tab=all"))).await;
    assert!(all.contains("<a href=\"/app?view=all\">All</a>"), "{all}");
    assert!(all.contains(&format!("href=\"/app/c/{ada}\"")), "{all}");
    let (_, bot, _) = get(&s, &format!("/app/c/{ada}"), Some(&format!("{cookie}; fd_tab=bot"))).await;
    assert!(bot.contains("Bot handling") && bot.contains("Nothing here."), "{bot}");

    let (st, script, headers) = get(&s, "/app/static/split.js", None).await;
    assert_eq!(st, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.contains("frontdesk:swapped"));
    s.stop().await;
}
