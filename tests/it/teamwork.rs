//! Working as a team over real HTTP: snoozing a conversation (out of the working tabs into
//! Snoozed, back when the customer writes or its time passes, the live stream announcing
//! the end, audited), and the collision warning (who else is viewing or typing, pushed to
//! the other page and expiring; a reply held back once when a teammate answered since the
//! page loaded or is typing now).

use reqwest::StatusCode;

use crate::engine::{say, settle, shop};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, http, login, post};
use crate::support::TestServer;

const SAM: &str = "sam@shop.example";
const SAM_PW: &str = "sam's long password";

/// A value of the page's hidden field `name`.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("a {name} field")) + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// The phone numbers listed under `view`.
async fn listed(s: &TestServer, cookie: &str, view: &str) -> String {
    let (st, page, _) = get(s, &format!("/app?view={view}"), Some(cookie)).await;
    assert_eq!(st, 200);
    page
}

/// A handed-off conversation of `wa_id`: its id.
async fn handed_off(s: &TestServer, wa_id: &str) -> i64 {
    let before = s.graph.sent().len();
    say(s, wa_id, &format!("wamid.{wa_id}-1"), "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() > before).await;
    s.query_i64(&format!(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{wa_id}'"
    ))
}

/// Reads the event stream until an event of `kind` arrives: its `data:` line.
async fn next_data(r: &mut reqwest::Response, kind: &str, buf: &mut String) -> String {
    crate::inbox::next_event_field(r, kind, "data: ", buf).await
}

/// Days since the epoch → "YYYY-MM-DD".
fn date(day: i64) -> String {
    let (y, m, d) = frontdesk::domain::calendar::civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_conversation_waits_in_snoozed_until_its_time_or_the_customer() {
    use frontdesk::domain::calendar::DAY_MS;
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let wa = "31656600301";
    let id = handed_off(&s, wa).await;
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let path = format!("/app/c/{id}");
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(
        page.contains("Snooze until") && page.contains("Tomorrow 9:00"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    post(&s, &format!("{path}/assign"), &cookie, &[("csrf", &csrf), ("to", "me")]).await;
    for view in ["human", "mine", "all"] {
        assert!(listed(&s, &cookie, view).await.contains(wa), "{view} before the snooze");
    }
    let snooze = |form: Vec<(&'static str, String)>| {
        let (s, cookie, csrf, path) = (&s, cookie.clone(), csrf.clone(), path.clone());
        async move {
            let mut f: Vec<(&str, String)> = vec![("csrf", csrf)];
            f.extend(form);
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(s, &format!("{path}/snooze"), &cookie, &f).await
        }
    };

    // Tomorrow at 9:00 for an agent an hour east of UTC: 08:00 UTC.
    let before = frontdesk::domain::now_ms();
    let (st, _) = snooze(vec![("preset", "tomorrow".into()), ("tz", "60".into())]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let until = s.query_i64(&format!("SELECT snoozed_until FROM conversations WHERE id = {id}"));
    assert_eq!(until.rem_euclid(DAY_MS), 8 * 3_600_000, "08:00 UTC");
    // 09:00 on the agent's next day is 9 to 33 hours away.
    assert!(
        (9 * 3_600_000..=33 * 3_600_000).contains(&(until - before)),
        "tomorrow: {until}, now {before}"
    );
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.snooze' AND actor = 'user:{ADMIN}'
             AND subject = 'conversation:{id}' AND detail = '{{\"until\":{until}}}'"
        )),
        1,
        "audited with its wake time"
    );
    // Out of the working tabs; in Snoozed (and All) with its wake time.
    for view in ["human", "mine", "unassigned"] {
        assert!(!listed(&s, &cookie, view).await.contains(wa), "{view} while snoozed");
    }
    let snoozed = listed(&s, &cookie, "snoozed").await;
    assert!(
        snoozed.contains(wa) && snoozed.contains("Snoozed until <time class=\"local\""),
        "{snoozed}"
    );
    assert!(listed(&s, &cookie, "all").await.contains(wa));
    let page = get(&s, &format!("{path}?notice=snoozed"), Some(&cookie)).await.1;
    assert!(
        page.contains("Snoozed: it leaves the working tabs") && page.contains("Wake now"),
        "{page}"
    );

    // The customer writes: awake at once, marked.
    say(&s, wa, "wamid.snooze-2", "hello? anyone there?").await;
    settle(&s).await;
    let human = listed(&s, &cookie, "human").await;
    assert!(
        human.contains(wa) && human.contains("woke from snooze: the customer wrote"),
        "{human}"
    );
    assert!(!listed(&s, &cookie, "snoozed").await.contains(wa));
    // An agent's reply deals with the mark.
    let page = get(&s, &path, Some(&cookie)).await.1;
    assert!(page.contains("Woke from snooze: the customer wrote."), "{page}");
    let (st, _) = post(
        &s,
        &format!("{path}/reply"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("key", &field(&page, "key")),
            ("seen", &field(&page, "seen")),
            ("text", "Yes, Sam here. One moment."),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(!listed(&s, &cookie, "human").await.contains("woke from snooze"));

    // A picked date and time, read in the agent's offset (UTC here): two days ahead, 10:30.
    let day = frontdesk::domain::calendar::utc_day(frontdesk::domain::now_ms()) + 2;
    let at = format!("{}T10:30", date(day));
    let (st, _) = snooze(vec![
        ("preset", "custom".into()),
        ("at", at.clone()),
        ("tz", "0".into()),
    ])
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{at}");
    assert_eq!(
        s.query_i64(&format!("SELECT snoozed_until FROM conversations WHERE id = {id}")),
        day * DAY_MS + 10 * 3_600_000 + 30 * 60_000
    );
    assert!(listed(&s, &cookie, "snoozed").await.contains(wa));
    // Refused: a past time, a non-time, an unknown preset; nothing changes.
    for (form, why) in [
        (
            vec![("preset", "custom".into()), ("at", "2020-01-01T09:00".into())],
            "That time has passed",
        ),
        (
            vec![("preset", "custom".into()), ("at", "tomorrow".into())],
            "Pick a date and a time",
        ),
        (vec![("preset", "forever".into())], "Pick how long"),
    ] {
        let (st, body) = snooze(form).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains(why), "{body}");
    }

    // Its time passes (the clock moved on): back in the working tabs without any write,
    // marked; nothing in Snoozed.
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET snoozed_until = ?2 WHERE id = ?1",
                rusqlite::params![id, frontdesk::domain::now_ms() - 1_000],
            )?)
        })
        .unwrap();
    let human = listed(&s, &cookie, "human").await;
    assert!(
        human.contains(wa) && human.contains("woke from snooze: its time came"),
        "{human}"
    );
    assert!(!listed(&s, &cookie, "snoozed").await.contains(wa));

    // An open page hears the moment a snooze ends.
    let mut stream = http()
        .get(format!("{}/app/events", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET snoozed_until = ?2, snooze_woke_at = NULL WHERE id = ?1",
                rusqlite::params![id, frontdesk::domain::now_ms() + 500],
            )?)
        })
        .unwrap();
    let mut buf = String::new();
    assert_eq!(
        next_data(&mut stream, "snooze", &mut buf).await,
        format!("{{\"conversation_id\":{id}}}")
    );
    drop(stream);

    // "Wake now" ends a running snooze (audited); closing clears one too.
    snooze(vec![("preset", "hour".into())]).await;
    assert!(listed(&s, &cookie, "snoozed").await.contains(wa));
    let (st, _) = snooze(vec![("preset", "wake".into())]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(listed(&s, &cookie, "human").await.contains(wa));
    assert!(!listed(&s, &cookie, "human").await.contains("woke from snooze"));
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.wake' AND detail = '{\"was\":\"snoozed\"}'"
        ),
        1
    );
    snooze(vec![("preset", "next_week".into())]).await;
    post(&s, &format!("{path}/close"), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM conversations WHERE id = {id} AND snoozed_until IS NULL"
        )),
        1,
        "closing clears the snooze"
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.snooze'"),
        4,
        "tomorrow, the picked time, an hour, next week"
    );
    s.stop().await;
}

/// A presence heartbeat: (status, JSON answer).
async fn beat(s: &TestServer, id: i64, cookie: &str, csrf: &str, state: &str) -> (StatusCode, serde_json::Value) {
    let (st, body) = post(
        s,
        &format!("/app/c/{id}/presence"),
        cookie,
        &[("csrf", csrf), ("state", state)],
    )
    .await;
    (st, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teammates_see_who_is_viewing_or_typing_until_it_expires() {
    let s = shop(|c| c.inbox.presence_ttl_ms = 3_000).await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, SAM, "agent", Some(SAM_PW));
    });
    let id = handed_off(&s, "31656600302").await;
    let path = format!("/app/c/{id}");
    let owner = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let sam = login(&s, SAM, SAM_PW).await.1.unwrap();
    let owner_csrf = csrf_of(&get(&s, &path, Some(&owner)).await.1);
    let sam_csrf = csrf_of(&get(&s, &path, Some(&sam)).await.1);

    let (st, answer) = beat(&s, id, &owner, &owner_csrf, "viewing").await;
    assert_eq!((st, &answer["accepted"]), (StatusCode::OK, &serde_json::json!(true)));
    assert_eq!(answer["others"], serde_json::json!([]));
    let (_, answer) = beat(&s, id, &sam, &sam_csrf, "viewing").await;
    assert_eq!(
        answer["others"],
        serde_json::json!([{ "name": ADMIN, "typing": false }])
    );
    // The page Sam opens says so; its stream keeps it current.
    let page = get(&s, &path, Some(&sam)).await.1;
    assert!(
        page.contains(&format!("{ADMIN} is also viewing")) && page.contains("data-ttl=\"3000\""),
        "{page}"
    );
    let mut stream = http()
        .get(format!("{}/app/events?conversation={id}", s.base))
        .header("cookie", &sam)
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let first = next_data(&mut stream, "presence", &mut buf).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first).unwrap(),
        serde_json::json!({ "conversation_id": id, "others": [{ "name": ADMIN, "typing": false }] })
    );
    // The owner types: taken at once (not rate-limited), pushed to Sam.
    let (st, _) = beat(&s, id, &owner, &owner_csrf, "typing").await;
    assert_eq!(st, StatusCode::OK);
    let typing = next_data(&mut stream, "presence", &mut buf).await;
    assert!(typing.contains("\"typing\":true"), "{typing}");
    // Beating faster than once a second: not taken, nothing changes.
    let r = http()
        .post(format!("{}{path}/presence", s.base))
        .header("cookie", &owner)
        .form(&[("csrf", owner_csrf.as_str()), ("state", "viewing")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer = r.json::<serde_json::Value>().await.unwrap();
    assert_eq!(answer["accepted"], serde_json::json!(false), "{answer}");
    let wait = answer["retry_after_ms"].as_i64().unwrap();
    assert!((1..=1000).contains(&wait), "{answer}");
    // No CSRF token, or a state that does not exist: refused.
    assert_eq!(
        post(&s, &format!("{path}/presence"), &owner, &[("state", "viewing")])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        beat(&s, id, &owner, &owner_csrf, "lurking").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The owner's page stops beating: gone from Sam's page after the time to live.
    let started = std::time::Instant::now();
    let gone = next_data(&mut stream, "presence", &mut buf).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&gone).unwrap()["others"],
        serde_json::json!([]),
        "{gone}"
    );
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(4), "expired after {waited:?}");
    // Back, then leaving the page: gone at once.
    beat(&s, id, &owner, &owner_csrf, "viewing").await;
    let back = next_data(&mut stream, "presence", &mut buf).await;
    assert!(back.contains(ADMIN), "{back}");
    let (st, _) = beat(&s, id, &owner, &owner_csrf, "gone").await;
    assert_eq!(st, StatusCode::OK);
    let left = next_data(&mut stream, "presence", &mut buf).await;
    assert!(left.contains("\"others\":[]"), "{left}");
    drop(stream);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_waits_for_a_second_press_when_a_teammate_answered_or_is_typing() {
    let s = shop(|_| {}).await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, SAM, "agent", Some(SAM_PW));
    });
    let id = handed_off(&s, "31656600303").await;
    let path = format!("/app/c/{id}");
    let owner = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let sam = login(&s, SAM, SAM_PW).await.1.unwrap();
    // Both open the conversation.
    let owner_page = get(&s, &path, Some(&owner)).await.1;
    let sam_page = get(&s, &path, Some(&sam)).await.1;
    let reply = |cookie: String, page: String, text: &'static str, confirm: bool| {
        let (s, path) = (&s, path.clone());
        async move {
            let (csrf, key, seen) = (csrf_of(&page), field(&page, "key"), field(&page, "seen"));
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("key", key.as_str()),
                ("seen", seen.as_str()),
                ("text", text),
            ];
            if confirm {
                form.push(("confirm", "1"));
            }
            post(s, &format!("{path}/reply"), &cookie, &form).await
        }
    };
    // The owner answers first.
    let sent = s.graph.sent().len();
    let (st, _) = reply(owner.clone(), owner_page, "Hi, the owner here <b>now</b>.", false).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("the owner's reply", |s| s.graph.sent().len() == sent + 1)
        .await;
    // Sam's page was made before it: held, with what the owner said, Sam's text kept.
    let (st, body) = reply(sam.clone(), sam_page.clone(), "Hello from Sam!", false).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(
        body.contains(&format!(
            "{ADMIN} replied since you opened this conversation: “Hi, the owner here &lt;b&gt;now&lt;/b&gt;.”"
        )) && body.contains("Send anyway")
            && body.contains("name=\"confirm\" value=\"1\"")
            && body.contains("Hello from Sam!</textarea>"),
        "{body}"
    );
    settle(&s).await;
    assert_eq!(s.graph.sent().len(), sent + 1, "nothing sent on the first press");
    // "Send anyway" (the held page's form) sends it.
    let (st, _) = reply(sam.clone(), body, "Hello from Sam!", true).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("Sam's reply", |s| s.graph.sent().len() == sent + 2).await;

    // The owner is typing: Sam, on a fresh page, is held too.
    let owner_csrf = csrf_of(&get(&s, &path, Some(&owner)).await.1);
    assert_eq!(beat(&s, id, &owner, &owner_csrf, "typing").await.0, StatusCode::OK);
    let sam_page = get(&s, &path, Some(&sam)).await.1;
    assert!(sam_page.contains(&format!("{ADMIN} is typing…")), "{sam_page}");
    let (st, body) = reply(sam.clone(), sam_page.clone(), "Me again.", false).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(
        body.contains(&format!("{ADMIN} is typing a reply here right now.")) && !body.contains("replied since"),
        "{body}"
    );
    let (st, _) = reply(sam, body, "Me again.", true).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    s.wait_until("Sam's second reply", |s| s.graph.sent().len() == sent + 3)
        .await;
    s.stop().await;
}
