//! The conversation page's contact panel over real HTTP: the customer's name, number,
//! first seen, conversations, labels and notes across them (customer and agent text
//! inert); "Erase this contact" for admins only (agents neither see it nor may post it),
//! behind CSRF and a typed confirmation, deleting the data and the media files no other
//! message uses, audited, back to the inbox with a notice; a contact known only by its
//! BSUID; and the inbox's unread counts per tab.

use reqwest::StatusCode;

use crate::engine::say;
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, http, login, post};
use crate::support::TestServer;

const AGENT: &str = "agent@shop.example";
const AGENT_PW: &str = "agent password 1";

/// A second conversation of `contact` on another business number: closed, labelled.
fn second_conversation(s: &TestServer, contact: i64) -> i64 {
    s.app()
        .store
        .call_blocking(move |c| {
            c.execute(
                "INSERT INTO conversations (phone_number_id, contact_id, owner, closed_at, last_message_at, created_at)
                 VALUES ('P2', ?1, 'bot', 5000, 4000, 3000)",
                [contact],
            )?;
            Ok(c.last_insert_rowid())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_panel_shows_the_customer_across_conversations() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, AGENT, "agent", Some(AGENT_PW));
    });
    say(&s, "31656600011", "wamid.cp-1", "<b>hi</b> there").await;
    s.wait_until("the conversation", |s| {
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 1
    })
    .await;
    let id = s.query_i64("SELECT id FROM conversations");
    let contact = s.query_i64("SELECT contact_id FROM conversations");
    let other = second_conversation(&s, contact);
    let cookie = login(&s, AGENT, AGENT_PW).await.1.unwrap();
    let (_, page, _) = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await;
    let csrf = csrf_of(&page);
    // Labels and notes on both conversations.
    for (conv, label, note) in [
        (id, "vip", "Prefers <i>email</i>"),
        (other, "returns", "Old case, sorted"),
    ] {
        let (st, _) = post(
            &s,
            &format!("/app/c/{conv}/labels"),
            &cookie,
            &[("csrf", &csrf), ("add", label)],
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let (st, _) = post(
            &s,
            &format!("/app/c/{conv}/note"),
            &cookie,
            &[("csrf", &csrf), ("text", note)],
        )
        .await;
        assert_eq!(st, StatusCode::SEE_OTHER);
    }
    let (st, page, _) = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await;
    assert_eq!(st, StatusCode::OK);
    let panel = page
        .split("<details class=\"card contact-panel\" id=\"contact\">")
        .nth(1)
        .expect("the contact panel")
        .split("</details>")
        .next()
        .unwrap()
        .to_string();
    assert!(
        panel.contains("<dd class=\"contact-number\">+31656600011</dd>"),
        "{panel}"
    );
    assert!(panel.contains("First seen") && panel.contains("UTC</time>"), "{panel}");
    // Both conversations, with status and date; the other is a link.
    assert!(panel.contains("This conversation"), "{panel}");
    assert!(
        panel.contains(&format!("<a href=\"/app/c/{other}\">Conversation {other}</a>")),
        "{panel}"
    );
    assert!(
        panel.contains("<span class=\"status\">closed</span>") && panel.contains("on P2"),
        "{panel}"
    );
    assert!(
        panel.contains("1 January 1970"),
        "the other conversation's date: {panel}"
    );
    // Labels and notes across both; agent text inert.
    assert!(panel.contains(">returns</a>") && panel.contains(">vip</a>"), "{panel}");
    assert!(
        panel.contains("Prefers &lt;i&gt;email&lt;/i&gt;") && panel.contains("Old case, sorted"),
        "{panel}"
    );
    assert!(
        panel.contains(&format!("<a href=\"/app/c/{other}\">conversation {other}</a>")),
        "{panel}"
    );
    // An agent sees no erase action.
    assert!(
        !page.contains("Erase this contact") && !page.contains("/erase\""),
        "agents see no erase"
    );
    // The customer's text stays inert on the page.
    assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;") && !page.contains("<b>hi"));
    // An admin does.
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, page, _) = get(&s, &format!("/app/c/{id}"), Some(&admin)).await;
    assert!(
        page.contains("Erase this contact") && page.contains(&format!("action=\"/app/c/{id}/erase\"")),
        "{page}"
    );
    assert!(page.contains("To confirm, type <code>31656600011</code>"), "{page}");
    // The keyboard help is on the page.
    assert!(page.contains("Keyboard shortcuts") && page.contains("/app/static/nav.js"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_erase_a_contact_and_their_files_agents_may_not() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, AGENT, "agent", Some(AGENT_PW));
    });
    say(&s, "31656600021", "wamid.er-1", "please forget me").await;
    say(&s, "31656600022", "wamid.er-2", "someone else").await;
    s.wait_until("both conversations", |s| {
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 2
    })
    .await;
    s.idle().await;
    let conv = |wa: &str| {
        s.query_i64(&format!(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{wa}'"
        ))
    };
    let (id, keep) = (conv("31656600021"), conv("31656600022"));
    let contact = s.query_i64(&format!("SELECT contact_id FROM conversations WHERE id = {id}"));
    let other = second_conversation(&s, contact);
    // Two stored files: one only this customer's, one the other customer sent too.
    let files = s.app().media.files.clone();
    let (own, shared) = (
        files.put(b"own photo bytes").unwrap(),
        files.put(b"shared photo bytes").unwrap(),
    );
    let rows = [
        ("wamid.er-m1", id, own.clone()),
        ("wamid.er-m2", other, shared.clone()),
        ("wamid.er-m3", keep, shared.clone()),
    ];
    s.app()
        .store
        .call_blocking(move |c| {
            for (wamid, conv, sha) in rows {
                c.execute(
                    "INSERT INTO media (wamid, conversation_id, media_type, media_id, status, sha256, mime_type, created_at, updated_at)
                     VALUES (?1, ?2, 'image', 'm1', 'done', ?3, 'image/jpeg', 1, 1)",
                    rusqlite::params![wamid, conv, sha],
                )?;
            }
            Ok(())
        })
        .unwrap();
    let path = format!("/app/c/{id}/erase");
    // An agent: refused (403), nothing gone.
    let agent = login(&s, AGENT, AGENT_PW).await.1.unwrap();
    let agent_csrf = csrf_of(&get(&s, &format!("/app/c/{id}"), Some(&agent)).await.1);
    let (st, _) = post(&s, &path, &agent, &[("csrf", &agent_csrf), ("confirm", "31656600021")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // An admin without the CSRF token, or from another site: refused.
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let csrf = csrf_of(&get(&s, &format!("/app/c/{id}"), Some(&admin)).await.1);
    let (st, _) = post(&s, &path, &admin, &[("confirm", "31656600021")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let r = http()
        .post(format!("{}{path}", s.base))
        .header("cookie", &admin)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("confirm", "31656600021")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The wrong confirmation: the page again, with the reason.
    let (st, body) = post(&s, &path, &admin, &[("csrf", &csrf), ("confirm", "31656600022")]).await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("Nothing was erased: type 31656600021"),
        "{st} {body}"
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM contacts WHERE wa_id = '31656600021'"),
        1
    );
    assert!(files.path(&own).unwrap().exists());
    // The admin confirms (typed as people type numbers): gone, back to the inbox.
    let r = http()
        .post(format!("{}{path}", s.base))
        .header("cookie", &admin)
        .form(&[("csrf", csrf.as_str()), ("confirm", "+31 656 600 021")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/app?notice=erased");
    let (_, inbox, _) = get(&s, "/app?view=all&notice=erased", Some(&admin)).await;
    assert!(inbox.contains("The contact was erased"), "{inbox}");
    assert!(
        !inbox.contains("31656600021") && inbox.contains("31656600022"),
        "{inbox}"
    );
    for sql in [
        "SELECT COUNT(*) FROM contacts WHERE wa_id = '31656600021'".to_string(),
        format!("SELECT COUNT(*) FROM conversations WHERE id IN ({id}, {other})"),
        format!("SELECT COUNT(*) FROM messages WHERE conversation_id IN ({id}, {other})"),
        format!("SELECT COUNT(*) FROM conversation_notes WHERE conversation_id IN ({id}, {other})"),
        format!("SELECT COUNT(*) FROM media WHERE conversation_id IN ({id}, {other})"),
        "SELECT COUNT(*) FROM messages WHERE text LIKE '%forget me%'".to_string(),
    ] {
        assert_eq!(s.query_i64(&sql), 0, "{sql}");
    }
    assert!(!files.path(&own).unwrap().exists(), "their own file is deleted");
    assert!(
        files.path(&shared).unwrap().exists(),
        "a file another customer's message uses stays"
    );
    assert_eq!(
        get(&s, &format!("/app/c/{id}"), Some(&admin)).await.0,
        StatusCode::NOT_FOUND
    );
    // The other customer is untouched; the erasure is audited without the number.
    assert_eq!(
        s.query_i64(&format!("SELECT COUNT(*) FROM conversations WHERE id = {keep}")),
        1
    );
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'contact.erase' AND actor = 'user:{ADMIN}'"
        )),
        1
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%31656600021%' OR subject LIKE '%31656600021%'"),
        0
    );
    // A second erase of the same (gone) conversation: 404.
    let (st, _) = post(&s, &path, &admin, &[("csrf", &csrf), ("confirm", "31656600021")]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_known_only_by_bsuid_is_shown_and_erased_by_it() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let id = s
        .app()
        .store
        .call_blocking(|c| {
            c.execute_batch(
                "INSERT INTO contacts (wa_id, user_id, name, created_at, updated_at) VALUES (NULL, 'US.4242', 'Bea', 1000, 1000);
                 INSERT INTO conversations (phone_number_id, contact_id, created_at) VALUES ('P1', last_insert_rowid(), 1000);",
            )?;
            Ok(c.last_insert_rowid())
        })
        .unwrap();
    s.insert_history(id, 2_000, 2);
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, page, _) = get(&s, &format!("/app/c/{id}"), Some(&admin)).await;
    assert!(
        page.contains("WhatsApp user id (BSUID)") && page.contains("<dd class=\"contact-number\">US.4242</dd>"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (st, _) = post(
        &s,
        &format!("/app/c/{id}/erase"),
        &admin,
        &[("csrf", &csrf), ("confirm", "US.4242")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM contacts"), 0);
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM erased_contacts WHERE subject = '{}'",
            frontdesk::store::contacts::subject_hash("US.4242")
        )),
        1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tab_counts_its_unread_conversations() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    for (i, wa) in ["31656600031", "31656600032", "31656600033"].iter().enumerate() {
        say(&s, wa, &format!("wamid.un-{i}"), "hello").await;
    }
    s.wait_until("three conversations", |s| {
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 3
    })
    .await;
    s.idle().await;
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let count = |page: &str, view: &str| -> Option<i64> {
        let marker = format!("<span class=\"count\" data-view=\"{view}\">");
        page.split(&marker)
            .nth(1)
            .map(|rest| rest.split('<').next().unwrap().parse().unwrap())
    };
    let (_, page, _) = get(&s, "/app?view=all", Some(&admin)).await;
    let all = s.query_i64("SELECT COUNT(*) FROM conversations");
    assert_eq!(count(&page, "all"), Some(all), "{page}");
    assert_eq!(count(&page, "mine"), None, "nothing is assigned: no count");
    // Opening one reads it: one fewer.
    let first = s.query_i64("SELECT MIN(id) FROM conversations");
    get(&s, &format!("/app/c/{first}"), Some(&admin)).await;
    let (_, page, _) = get(&s, "/app?view=all", Some(&admin)).await;
    assert_eq!(count(&page, "all"), Some(all - 1), "{page}");
    assert!(
        page.contains(" unread</span>"),
        "the count is labelled for screen readers"
    );
    // The customer writes again: unread again.
    say(&s, "31656600031", "wamid.un-again", "still there?").await;
    s.wait_until("the new message", |s| {
        s.query_i64("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 4
    })
    .await;
    let (_, page, _) = get(&s, "/app?view=all", Some(&admin)).await;
    assert_eq!(count(&page, "all"), Some(all), "{page}");
    s.stop().await;
}
