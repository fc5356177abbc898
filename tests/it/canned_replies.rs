//! Canned replies kept in the admin UI (`/admin/canned`) over real HTTP: only admins
//! (with the CSRF token) add, edit and remove them; titles ≤ 60 and texts ≤ 4,096
//! characters, unique titles and at most 200 are refused in words; every change is
//! audited; the config file's replies show read-only; agents get a change in the
//! composer on their next page, and a picked reply goes out as it was stored.

use reqwest::StatusCode;

use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login, post};
use crate::support::{TestServer, text_webhook};

const AGENT: &str = "agent@shop.example";
const AGENT_PW: &str = "agent password 1";

async fn audit_actions(s: &TestServer) -> Vec<String> {
    s.app()
        .store
        .read(|c| frontdesk::store::settings::audit_entries(c, 100))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("canned."))
        .map(|e| format!("{} {} {}", e.action, e.actor, e.detail))
        .collect()
}

fn stored_id(s: &TestServer, title: &str) -> i64 {
    s.query_i64(&format!("SELECT id FROM canned_replies WHERE title = '{title}'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_keep_canned_replies_that_agents_use_at_once() {
    let s = TestServer::start_with(|c| {
        c.inbox.canned_replies = vec![frontdesk::config::CannedReply {
            title: "Hours".into(),
            text: "We're open Tuesday to Saturday, 9:00-18:00.".into(),
        }]
    })
    .await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, AGENT, "agent", Some(AGENT_PW));
    });
    let body = text_webhook("P1", "31652200009", "wamid.canned-1", "can I talk to a human");
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let conversation = s.query_i64("SELECT id FROM conversations");
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let agent = login(&s, AGENT, AGENT_PW).await.1.unwrap();

    // The page: the config file's reply, read-only; the way to add one.
    let (st, page, _) = get(&s, "/admin/canned", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("From the config file") && page.contains("open Tuesday to Saturday"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/admin/canned\"") && page.contains("href=\"/admin/canned\""),
        "{page}"
    );
    let csrf = csrf_of(&page);

    // Agents may neither see nor change them; nobody without the CSRF token.
    assert_eq!(get(&s, "/admin/canned", Some(&agent)).await.0, StatusCode::FORBIDDEN);
    let agent_csrf = csrf_of(&get(&s, "/app", Some(&agent)).await.1);
    let form = [("csrf", agent_csrf.as_str()), ("title", "Sneaky"), ("text", "x")];
    assert_eq!(post(&s, "/admin/canned", &agent, &form).await.0, StatusCode::FORBIDDEN);
    let form = [
        ("csrf", "f".repeat(64)),
        ("title", "Forged".into()),
        ("text", "x".into()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post(&s, "/admin/canned", &admin, &form).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM canned_replies"), 0);

    // Added: a hostile title stays text; the text keeps its lines.
    let hostile = "<script>alert(1)</script> Deposit";
    let (st, _) = post(
        &s,
        "/admin/canned",
        &admin,
        &[
            ("csrf", &csrf),
            ("title", hostile),
            ("text", "E-bikes need a 50 euro deposit.\r\nCash or card."),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let deposit = s.query_i64("SELECT id FROM canned_replies");
    let (_, page, _) = get(&s, "/admin/canned?notice=added", Some(&admin)).await;
    assert!(page.contains("Canned reply added."), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt; Deposit") && !page.contains("<script>alert"),
        "{page}"
    );

    // The agent's composer has both at once, the config file's first, keyed stably.
    let path = format!("/app/c/{conversation}");
    let (_, page, _) = get(&s, &path, Some(&agent)).await;
    let hours = page.find(">Hours</option>").expect("the config file's reply");
    let stored = page
        .find(&format!(
            "<option value=\"s{deposit}\" data-text=\"E-bikes need a 50 euro deposit.\nCash or card.\">&lt;script&gt;"
        ))
        .unwrap_or_else(|| panic!("the stored reply: {page}"));
    assert!(hours < stored && page.contains("option value=\"c0\""), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    // Picked without script: the stored text goes as it is.
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let agent_csrf = csrf_of(&page);
    let picked = format!("s{deposit}");
    let (st, _) = post(
        &s,
        &format!("{path}/reply"),
        &agent,
        &[("csrf", &agent_csrf), ("key", &key), ("text", ""), ("canned", &picked)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("the canned reply", |s| s.graph.sent().len() == 2).await;
    assert_eq!(
        s.graph.sent()[1].body["text"]["body"],
        "E-bikes need a 50 euro deposit.\nCash or card."
    );

    // Bounds, each refused in words with what was typed kept.
    let long_title = "t".repeat(61);
    let arabic_ok = "ش".repeat(4096);
    let arabic_long = "ش".repeat(4097);
    for (title, text, says) in [
        (long_title.as_str(), "x", "61 characters long; at most 60"),
        (
            "Too long",
            arabic_long.as_str(),
            "4097 characters long; WhatsApp takes at most 4096",
        ),
        ("  ", "x", "Give the canned reply a title"),
        ("Empty", " \r\n ", "Write the text"),
        ("HOURS", "x", ""),
        ("<SCRIPT>alert(1)</SCRIPT> deposit", "x", "already exists"),
    ] {
        let (st, page) = post(
            &s,
            "/admin/canned",
            &admin,
            &[("csrf", &csrf), ("title", title), ("text", text)],
        )
        .await;
        if says.is_empty() {
            // A config file title may be taken again by a stored one (different lists).
            assert_eq!(st, StatusCode::SEE_OTHER, "{title}");
            continue;
        }
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{title}: {page}");
        assert!(page.contains(says), "{title}: {page}");
        assert!(page.contains("role=\"alert\""), "{page}");
    }
    // 4,096 Arabic letters (8 KiB of UTF-8) fit.
    let (st, page) = post(
        &s,
        "/admin/canned",
        &admin,
        &[("csrf", &csrf), ("title", "Arabic"), ("text", &arabic_ok)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM canned_replies"), 3);

    // Edited: the next composer shows the new text; a taken title is refused.
    let (st, _) = post(
        &s,
        "/admin/canned/edit",
        &admin,
        &[
            ("csrf", &csrf),
            ("id", &deposit.to_string()),
            ("title", "Deposit"),
            ("text", "A 50 euro deposit, returned with the bike."),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, page) = post(
        &s,
        "/admin/canned/edit",
        &admin,
        &[
            ("csrf", &csrf),
            ("id", &deposit.to_string()),
            ("title", "arabic"),
            ("text", "x"),
        ],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && page.contains("already exists"),
        "{page}"
    );
    let (_, page, _) = get(&s, &path, Some(&agent)).await;
    assert!(
        page.contains("data-text=\"A 50 euro deposit, returned with the bike.\">Deposit</option>"),
        "{page}"
    );
    // Removed: gone from the composer; a stale form for it is a 404 in words, and a
    // reply naming it sends nothing.
    let arabic = stored_id(&s, "Arabic");
    let (st, _) = post(
        &s,
        "/admin/canned/remove",
        &admin,
        &[("csrf", &csrf), ("id", &arabic.to_string())],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, page) = post(
        &s,
        "/admin/canned/remove",
        &admin,
        &[("csrf", &csrf), ("id", &arabic.to_string())],
    )
    .await;
    assert!(
        st == StatusCode::NOT_FOUND && page.contains("No such canned reply"),
        "{page}"
    );
    let (_, page, _) = get(&s, &path, Some(&agent)).await;
    assert!(!page.contains(">Arabic</option>"), "{page}");
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let gone = format!("s{arabic}");
    let (st, page) = post(
        &s,
        &format!("{path}/reply"),
        &agent,
        &[("csrf", &agent_csrf), ("key", &key), ("text", ""), ("canned", &gone)],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && page.contains("Write something to send."),
        "{page}"
    );

    // Every change is audited, by whom.
    let audit = audit_actions(&s).await;
    let actions: Vec<&str> = audit.iter().map(|a| a.split(' ').next().unwrap()).collect();
    assert_eq!(
        actions,
        ["canned.remove", "canned.edit", "canned.add", "canned.add", "canned.add"],
        "{audit:?}"
    );
    assert!(audit.iter().all(|a| a.contains(&format!("user:{ADMIN}"))), "{audit:?}");

    // At most 200: the 201st is refused, and the page says so instead of a form.
    let have = s.query_i64("SELECT COUNT(*) FROM canned_replies");
    s.app()
        .store
        .call_blocking(move |c| {
            for i in have..200 {
                c.execute(
                    "INSERT INTO canned_replies (title, text, created_at, updated_at, updated_by) VALUES (?1, 'x', 0, 0, 'test')",
                    [format!("filler {i}")],
                )?;
            }
            Ok(())
        })
        .unwrap();
    let (st, page) = post(
        &s,
        "/admin/canned",
        &admin,
        &[("csrf", &csrf), ("title", "One more"), ("text", "x")],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && page.contains("already 200 canned replies"),
        "{page}"
    );
    assert!(
        page.contains("remove one to add another") && !page.contains("action=\"/admin/canned\""),
        "{page}"
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM canned_replies"), 200);
    s.stop().await;
}
