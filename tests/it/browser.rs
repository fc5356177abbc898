//! The inbox and the demo's simulator in a real browser: Debian chromium driven by
//! playwright-core (npm, with axe-core for accessibility checks; installed by
//! `./scripts/test`) through `tests/browser/inbox.mjs`, `thread.mjs`, `contact.mjs`,
//! `teamwork.mjs` (two agents in two browser contexts), `canned.mjs`, `split.mjs` (the list
//! beside the conversation) and `tests/browser/simulator.mjs`,
//! against this real server. Screenshots land in `target/browser-screenshots/`. Set
//! FRONTDESK_SKIP_BROWSER=1 to skip on a machine without chromium (CI never does).

use std::path::Path;

use crate::engine::shop;
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add};

/// Whether the browser tests can run here (chromium and the npm packages present); `false`
/// when FRONTDESK_SKIP_BROWSER=1.
fn browser_ready() -> bool {
    if std::env::var("FRONTDESK_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("FRONTDESK_SKIP_BROWSER=1: browser test skipped");
        return false;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: run ./scripts/test (it installs it) or set FRONTDESK_SKIP_BROWSER=1"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            root.join("tests/browser/node_modules").join(package).exists(),
            "{package} is missing: run ./scripts/test (npm ci in tests/browser)"
        );
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = shop(|c| {
        c.whatsapp.templates = vec![frontdesk::config::TemplateConfig {
            name: "order_update".into(),
            language: "en_US".into(),
            params: 1,
            description: "Your order {{1}} has news".into(),
        }];
        c.inbox.canned_replies = vec![
            frontdesk::config::CannedReply {
                title: "Hours".into(),
                text: "We're open Tuesday to Saturday, 9:00-18:00.".into(),
            },
            frontdesk::config::CannedReply {
                title: "Deposit".into(),
                text: "E-bikes need a 50 euro deposit, returned when you bring the bike back.".into(),
            },
        ];
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // A conversation whose 24-hour window has closed, for the template step.
    crate::engine::say(&s, "31699900009", "wamid.browser-old", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let closed = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31699900009'",
    );
    s.app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE conversations SET last_inbound_at = 0 WHERE id = ?1", [closed])?))
        .unwrap();
    // Its customer wrote two days ago, for the day separators.
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.execute(
                "UPDATE messages SET created_at = created_at - 2 * 86400000 WHERE conversation_id = ?1",
                [closed],
            )?)
        })
        .unwrap();
    let shots = root.join("target/browser-screenshots");
    let base = s.base.clone();
    let graph = format!("http://{}", s.graph.addr);
    run_flow(
        root,
        "tests/browser/inbox.mjs",
        vec![
            ("FD_BASE", base),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_SECRET", crate::support::SECRET.into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_CLOSED_CONVERSATION", closed.to_string()),
            ("FD_GRAPH", graph),
        ],
    )
    .await;
    assert_eq!(
        s.graph
            .sent()
            .iter()
            .filter(|m| m.body["text"]["body"].as_str() == Some("Hi, this is Sam from the shop. How can I help?"))
            .count(),
        1
    );
    // The canned reply picked with "/" went once per width, as typed on top of it.
    for width in [1280, 390] {
        let picked = format!("E-bikes need a 50 euro deposit, returned when you bring the bike back. ({width})");
        assert_eq!(
            s.graph
                .sent()
                .iter()
                .filter(|m| m.body["text"]["body"].as_str() == Some(picked.as_str()))
                .count(),
            1,
            "{picked}"
        );
    }
    let ups = s.graph.uploads();
    assert_eq!(
        (ups.len(), ups[0].mime_type.as_str(), ups[0].file_name.as_str()),
        (1, "image/png", "new-wheel.png"),
        "{ups:?}"
    );
    let photo = s
        .graph
        .sent()
        .into_iter()
        .find(|m| m.body["type"] == "image")
        .expect("the photo was sent");
    assert_eq!(
        photo.body["image"],
        serde_json::json!({ "id": ups[0].id, "caption": "Your new wheel is ready" })
    );
    let template = s
        .graph
        .sent()
        .into_iter()
        .find(|m| m.body["type"] == "template")
        .expect("the template was sent");
    assert_eq!(template.body["template"]["name"], "order_update");
    assert!(template.body.to_string().contains("SS-10421"), "{}", template.body);
    s.stop().await;
}

/// A long conversation (130+ entries) at 390 and 1280 px: only the newest page renders,
/// the page opens on the newest message with the composer on screen, "Earlier messages"
/// loads the pages before in place (and works as a plain link without script), a live
/// message joins the end; the conversation is assigned to a teammate and back to nobody
/// (`tests/browser/thread.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_thread_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = shop(|_| {}).await;
    // A long address: the "Assign to" picker must still fit a phone.
    let teammate = "sam.from.the.workshop.with.a.long.address@bicycle-repairs-and-rentals.example";
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, teammate, "agent", Some("sam's long password"));
    });
    let wa_id = "31699900077";
    crate::engine::say(&s, wa_id, "wamid.thread-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let start = frontdesk::domain::now_ms() - 3_600_000;
    s.insert_history(id, start, 128);
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/thread.mjs",
        vec![
            ("FD_BASE", s.base.clone()),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_SECRET", crate::support::SECRET.into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_CONVERSATION", id.to_string()),
            ("FD_WA_ID", wa_id.into()),
            ("FD_TEAMMATE", teammate.into()),
        ],
    )
    .await;
    s.stop().await;
}

/// The contact panel, erasing a contact and the keyboard moves between conversations at
/// 1280 and 390 px (`tests/browser/contact.mjs`): three customers (one with a hostile
/// name), an admin and an agent; afterwards the erased customer's rows are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_panel_erase_and_keyboard_moves_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = crate::support::TestServer::start().await;
    let agent = "agent@shop.example";
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, agent, "agent", Some("agent password 1"));
    });
    let victim_wa_id = "31699900051";
    let people = [
        (victim_wa_id, "<img src=x onerror=alert(1)>"),
        ("31699900052", "Bea Bikes"),
        ("31699900053", "Cas Cargo"),
    ];
    for (i, (wa_id, name)) in people.iter().enumerate() {
        let body = crate::support::text_webhook("P1", wa_id, &format!("wamid.contact-{i}"), "hello, a question")
            .replace(
                "\"name\":\"Customer\"",
                &format!("\"name\":{}", serde_json::Value::from(*name)),
            );
        assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
        // One after the other, so the list's order is fixed.
        s.wait_until("the conversation", |s| {
            s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == i as i64 + 1
        })
        .await;
    }
    s.idle().await;
    let victim = s.query_i64(&format!(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{victim_wa_id}'"
    ));
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/contact.mjs",
        vec![
            ("FD_BASE", s.base.clone()),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_AGENT", agent.into()),
            ("FD_AGENT_PASSWORD", "agent password 1".into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_VICTIM", victim.to_string()),
            ("FD_VICTIM_WA_ID", victim_wa_id.into()),
        ],
    )
    .await;
    assert_eq!(
        s.query_i64(&format!("SELECT COUNT(*) FROM contacts WHERE wa_id = '{victim_wa_id}'")),
        0
    );
    assert_eq!(
        s.query_i64(&format!("SELECT COUNT(*) FROM conversations WHERE id = {victim}")),
        0
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM conversations"), 2);
    s.stop().await;
}

/// Two agents on one conversation, each in a browser context of their own, at 1280 and
/// 390 px: the collision warning (viewing, typing, a Send held until "Send anyway") and
/// snoozing until a picked time in the owner's time zone, woken by the customer
/// (`tests/browser/teamwork.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_and_a_snooze_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = shop(|_| {}).await;
    let (teammate, teammate_pw) = ("sam@shop.example", "sam's long password");
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, teammate, "agent", Some(teammate_pw));
    });
    let wa_id = "31699900088";
    crate::engine::say(&s, wa_id, "wamid.teamwork-1", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/teamwork.mjs",
        vec![
            ("FD_BASE", s.base.clone()),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_TEAMMATE", teammate.into()),
            ("FD_TEAMMATE_PASSWORD", teammate_pw.into()),
            ("FD_SECRET", crate::support::SECRET.into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_CONVERSATION", id.to_string()),
            ("FD_WA_ID", wa_id.into()),
        ],
    )
    .await;
    crate::engine::settle(&s).await;
    // Each held reply went once, after "Send anyway".
    for width in [1280, 390] {
        for text in [
            format!("Sam answers at {width}."),
            format!("The owner answers at {width}."),
        ] {
            let sent = s
                .graph
                .sent()
                .iter()
                .filter(|m| m.body["text"]["body"].as_str() == Some(text.as_str()))
                .count();
            assert_eq!(sent, 1, "{text}");
        }
    }
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.snooze'"),
        4,
        "a picked time and an hour, at each width"
    );
    s.stop().await;
}

/// Canned replies, search and notifications at 1280 and 390 px
/// (`tests/browser/canned.mjs`): the admin adds a canned reply on `/admin/canned`, the
/// agent picks it with "/" and sends it (once, as stored); a search from the list opens
/// the long thread at the matching message; with notifications allowed and the sound on,
/// a handoff arriving while the list is open notifies and chimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canned_replies_search_and_notifications_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = crate::support::TestServer::start().await;
    let agent = "agent@shop.example";
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, agent, "agent", Some("agent password 1"));
    });
    let body = crate::support::text_webhook("P1", "31699900061", "wamid.canned-browser", "can I talk to a human");
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let id = s.query_i64("SELECT id FROM conversations");
    s.insert_history(id, frontdesk::domain::now_ms() - 3_600_000, 300);
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/canned.mjs",
        vec![
            ("FD_BASE", s.base.clone()),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_AGENT", agent.into()),
            ("FD_AGENT_PASSWORD", "agent password 1".into()),
            ("FD_SECRET", crate::support::SECRET.into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_CONVERSATION", id.to_string()),
        ],
    )
    .await;
    s.idle().await;
    for width in [1280, 390] {
        let text = format!("Your bike is ready for pickup, see you soon! ({width})");
        let sent = s
            .graph
            .sent()
            .iter()
            .filter(|m| m.body["text"]["body"].as_str() == Some(text.as_str()))
            .count();
        assert_eq!(sent, 1, "{text}");
    }
    s.stop().await;
}

/// The inbox list beside the conversation at 1280 px and a single column at 390 px
/// (`tests/browser/split.mjs`): three customers handed to people (one with a hostile name);
/// another conversation picked in the column, a reply and a note are put in place without
/// a page load, a new customer joins the column live; the replies went once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_beside_the_conversation_in_chromium() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let people = [
        ("31699900091", "Ada Anchor"),
        ("31699900092", "Ben Brakes"),
        ("31699900090", "<img src=x onerror=alert(1)>"),
    ];
    for (i, (wa_id, name)) in people.iter().enumerate() {
        let body = crate::support::text_webhook("P1", wa_id, &format!("wamid.split-{i}"), "can I talk to a human")
            .replace(
                "\"name\":\"Customer\"",
                &format!("\"name\":{}", serde_json::Value::from(*name)),
            );
        assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
        s.wait_until("the handoff", |s| {
            s.query_i64("SELECT COUNT(*) FROM handoffs") == i as i64 + 1
        })
        .await;
    }
    crate::engine::settle(&s).await;
    let id_of = |wa_id: &str| {
        s.query_i64(&format!(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{wa_id}'"
        ))
    };
    let (first, second) = (id_of(people[0].0), id_of(people[1].0));
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/split.mjs",
        vec![
            ("FD_BASE", s.base.clone()),
            ("FD_EMAIL", ADMIN.into()),
            ("FD_PASSWORD", ADMIN_PW.into()),
            ("FD_SECRET", crate::support::SECRET.into()),
            ("FD_SHOTS", shots.display().to_string()),
            ("FD_FIRST", first.to_string()),
            ("FD_SECOND", second.to_string()),
        ],
    )
    .await;
    crate::engine::settle(&s).await;
    // Each reply went once (a fetch post is still one post).
    let texts: Vec<String> = s
        .graph
        .sent()
        .iter()
        .filter_map(|m| m.body["text"]["body"].as_str().map(str::to_string))
        .collect();
    for prefix in ["A reply without a reload", "A reply on a phone"] {
        assert_eq!(
            texts.iter().filter(|t| t.starts_with(prefix)).count(),
            1,
            "{prefix}: {texts:?}"
        );
    }
    s.stop().await;
}

/// The demo's WhatsApp simulator (an in-process server in demo mode, as `frontdesk demo`
/// runs it) at 1280 and 390 px: the text limit counts characters (4,096 Arabic letters
/// go, 4,097 are refused with the reason and kept in the box), a refusal from the server
/// is shown and the text kept, bubbles read right to left, the chat logs are reachable
/// by keyboard, and axe-core finds nothing serious.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_in_chromium() {
    use frontdesk::http::demo::DemoInfo;
    use frontdesk::http::fake_graph::FakeGraph;
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(crate::support::TOKEN).await.unwrap();
    let mut config = crate::support::test_config(dir.path());
    config.whatsapp.graph_base_url = graph.base_url();
    config.whatsapp.phone_number_ids = vec!["100000000000001".into()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let demo = DemoInfo {
        phone_number_id: "100000000000001".into(),
        addr,
        graph: graph.clone(),
    };
    let app = frontdesk::app::App::open(config).unwrap();
    let running = frontdesk::server::start_with(app, Some(demo), listener, Default::default())
        .await
        .unwrap();
    let base = format!("http://{addr}");
    graph.set_webhook(&format!("{base}/webhook"), crate::support::SECRET);
    let shots = root.join("target/browser-screenshots");
    run_flow(
        root,
        "tests/browser/simulator.mjs",
        vec![("FD_BASE", base), ("FD_SHOTS", shots.display().to_string())],
    )
    .await;
    // The 4,096-character message arrived whole; the refused ones never did.
    let inbound: Vec<String> = running
        .app
        .store
        .call_blocking(|c| {
            let mut st = c.prepare("SELECT text FROM messages WHERE direction = 'in'")?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap();
    assert!(
        inbound.iter().any(|t| t.chars().count() == 4096),
        "the longest allowed message arrived"
    );
    assert!(
        inbound.iter().all(|t| t.chars().count() <= 4096),
        "nothing over the limit arrived"
    );
    running.stop().await.unwrap();
}

/// Runs one browser flow (`node SCRIPT` from the crate root, with `env`), prints its
/// output, and fails the test with it when the flow fails.
async fn run_flow(root: &'static Path, script: &'static str, env: Vec<(&'static str, String)>) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .current_dir(root)
            .envs(env)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser flow {script} failed:\n{stdout}\n{stderr}"
    );
}
