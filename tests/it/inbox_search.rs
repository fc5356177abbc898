//! The inbox search over real HTTP: it looks through every tab, each result shows the
//! matching customer message with the match in `<mark>` and everything else escaped (a
//! hostile `<script>` message stays text), and links to that message, whose thread page
//! opens on the page holding it.

use reqwest::StatusCode;

use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, get, login};
use crate::support::{TestServer, text_webhook};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_results_show_the_matching_message_escaped_and_open_at_it() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // One conversation (closed below, so not in the default tab) whose customer wrote something hostile around the word searched for.
    let hostile = "<script>alert(1)</script> where is my parcel? <img src=x onerror=alert(2)>";
    for (wa_id, wamid, text) in [
        ("31652300001", "wamid.search-1", "hello there"),
        ("31652300001", "wamid.search-2", hostile),
        ("31652300002", "wamid.search-3", "can I talk to a human"),
    ] {
        let before = s.query_i64("SELECT COUNT(*) FROM messages");
        assert_eq!(
            s.post_webhook(text_webhook("P1", wa_id, wamid, text).as_bytes()).await,
            200
        );
        s.wait_until("the message", |s| s.query_i64("SELECT COUNT(*) FROM messages") > before)
            .await;
    }
    s.idle().await;
    let closed = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31652300001'",
    );
    let hit = s.query_i64("SELECT id FROM messages WHERE wamid = 'wamid.search-2'");
    // Closed (back with the bot): not in the default "Needs a human" tab.
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET owner = 'bot', closed_at = 1 WHERE id = ?1",
                [closed],
            )?)
        })
        .unwrap();
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    // The default tab does not hold it, a search finds it anyway.
    let (_, list, _) = get(&s, "/app", Some(&cookie)).await;
    assert!(!list.contains(&format!("href=\"/app/c/{closed}\"")), "{list}");
    let (st, list, _) = get(&s, "/app?view=human&q=parcel", Some(&cookie)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(list.contains("Results from all tabs"), "{list}");
    let link = format!("href=\"/app/c/{closed}?m={hit}#m{hit}\"");
    assert!(list.contains(&link), "the result links to the message: {list}");
    assert!(
        list.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; where is my <mark>parcel</mark>? &lt;img src=x onerror=alert(2)&gt;"
        ),
        "the snippet: the match marked, the rest escaped: {list}"
    );
    assert!(
        !list.contains("<script>alert") && !list.contains("<img src=x"),
        "{list}"
    );
    // A search for a word inside the markup marks only text, never makes markup.
    let (_, list, _) = get(&s, "/app?q=script", Some(&cookie)).await;
    assert!(
        list.contains("&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;"),
        "{list}"
    );
    // The conversation without a matching message does not show.
    assert!(!list.contains("can I talk to a human"), "{list}");

    // A long thread: the message searched for sits far above the newest page; the link
    // opens the page holding it, with the entries after it, and an anchor to land on.
    let long = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31652300002'",
    );
    s.insert_history(long, frontdesk::domain::now_ms() - 3_600_000, 300);
    let wanted = s.query_i64("SELECT id FROM messages WHERE wamid = 'wamid.history-40'");
    let (_, list, _) = get(&s, "/app?q=040", Some(&cookie)).await;
    assert!(
        list.contains(&format!("href=\"/app/c/{long}?m={wanted}#m{wanted}\"")),
        "{list}"
    );
    assert!(list.contains("history line <mark>040</mark>."), "{list}");
    let (_, newest, _) = get(&s, &format!("/app/c/{long}"), Some(&cookie)).await;
    assert!(!newest.contains(&format!("id=\"m{wanted}\"")), "not on the newest page");
    let (st, page, _) = get(&s, &format!("/app/c/{long}?m={wanted}"), Some(&cookie)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains(&format!("id=\"m{wanted}\"")),
        "the page holds the message"
    );
    assert!(
        page.contains("history line 039.") && page.contains("history line 064."),
        "context on both sides"
    );
    assert!(
        page.contains("Earlier messages") && page.contains("Newest messages"),
        "{page}"
    );
    // Another conversation's message id opens the newest page, nothing else.
    let (st, page, _) = get(&s, &format!("/app/c/{closed}?m={wanted}"), Some(&cookie)).await;
    // (In the thread: the list column beside it shows each conversation's last message.)
    let thread = page.split("class=\"thread\"").nth(1).unwrap_or_default();
    assert!(st == StatusCode::OK && !thread.contains("history line"), "{page}");
    s.stop().await;
}
