//! Soft launch through the real server: the live share (or pilot allow-list) decides, when
//! a conversation starts, whether the bot answers it or it goes straight to people; the
//! choice sticks; the inbox marks it; the dashboard compares both groups; ramps are
//! audited. The share itself over 1,000 conversations is a unit test of the pure
//! assignment (`domain::soft_launch`).

use frontdesk::domain::soft_launch::{LaunchGroup, SoftLaunch};

use crate::engine::{admin_cli, owner, say, shop};
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, login, post};
use crate::support::TestServer;

async fn set(s: &TestServer, key: &str, value: &str) {
    let r = reqwest::Client::new()
        .put(format!("{}/api/control/settings/{key}", s.base))
        .bearer_auth(s.app().control_token.expose())
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{key} = {value}");
}

/// How many messages went out to `number`.
fn sent_to(s: &TestServer, number: &str) -> usize {
    s.graph.sent().iter().filter(|m| m.body["to"] == number).count()
}

fn group_of(s: &TestServer, number: &str) -> String {
    let n = number.to_string();
    s.app()
        .store
        .call_blocking(move |c| {
            Ok(c.query_row(
                "SELECT c.launch_group FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = ?1",
                [&n],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

fn conversation_of(s: &TestServer, number: &str) -> i64 {
    s.query_i64(&format!(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{number}'"
    ))
}

/// The dashboard row of `group`: (conversations, resolved without handoff, median ms).
/// The dashboard's "customer wrote back" figures of `group`: (positive, negative).
fn wrote_back(page: &str, group: &str) -> (i64, i64) {
    let row = page.split(&format!("data-group=\"{group}\"")).nth(1).unwrap();
    let attr = |name: &str| -> i64 {
        row.split(&format!("{name}=\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (attr("data-positive"), attr("data-negative"))
}

fn dashboard_row(page: &str, group: &str) -> (i64, i64, Option<i64>) {
    let row = page
        .split(&format!("data-group=\"{group}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no {group} row in {page}"));
    let cell = |class: &str| -> String {
        let at = row.find(&format!("class=\"{class}\"")).unwrap();
        let rest = &row[at..];
        rest[rest.find('>').unwrap() + 1..rest.find("</td>").unwrap()].to_string()
    };
    let first_number = |t: String| t.split_whitespace().next().unwrap().parse::<i64>().unwrap();
    let ms = row
        .split("data-ms=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .filter(|m| !m.is_empty())
        .map(|m| m.parse().unwrap());
    (first_number(cell("conversations")), first_number(cell("resolved")), ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_soft_launch_routes_new_conversations_sticks_and_the_dashboard_compares_groups() {
    let s = shop(|_| {}).await;
    // Ramped live through the CLI beside the running server: no restart.
    let config = s.cli_config();
    let (ok, _, err) =
        tokio::task::block_in_place(|| admin_cli(&config, &["settings", "set", "soft_launch.percent", "10"]));
    assert!(ok, "{err}");
    let ten = SoftLaunch {
        percent: 10.0,
        allow: Vec::new(),
    };
    let numbers: Vec<String> = (0..100).map(|i| format!("3179000{i:04}")).collect();
    let expected_bot: Vec<&String> = numbers
        .iter()
        .filter(|n| ten.assign("P1", n, Some(n), None) == LaunchGroup::Bot)
        .collect();
    // 9 of these 100 (the 1,000-conversation share is the unit test's).
    assert!(
        (5..=15).contains(&expected_bot.len()),
        "{} of 100 on the bot at 10%",
        expected_bot.len()
    );
    for (i, n) in numbers.iter().enumerate() {
        say(&s, n, &format!("wamid.sl-{i}"), "when are you open?").await;
    }
    s.wait_until("the bot's answers", |s| s.graph.sent().len() >= expected_bot.len())
        .await;
    s.idle().await;
    for n in &numbers {
        let bot = expected_bot.contains(&n);
        assert_eq!(group_of(&s, n), if bot { "bot" } else { "people" }, "{n}");
        assert_eq!(owner(&s, n), if bot { "bot" } else { "human" }, "{n}");
        assert_eq!(sent_to(&s, n), usize::from(bot), "{n}: the bot answers only its group");
    }
    // Sticky: at 100% the people's conversations stay with people; a new one is the bot's.
    set(&s, "soft_launch.percent", "100").await;
    let people: Vec<&String> = numbers.iter().filter(|n| !expected_bot.contains(n)).collect();
    say(&s, people[0], "wamid.sl-again", "hello? when are you open?").await;
    say(&s, "31790009999", "wamid.sl-new", "when are you open?").await;
    s.wait_until("the new conversation's answer", |s| sent_to(s, "31790009999") == 1)
        .await;
    s.idle().await;
    assert_eq!(sent_to(&s, people[0]), 0, "still the people's");
    assert_eq!(owner(&s, people[0]), "human");
    // 0%: every new conversation goes to people.
    set(&s, "soft_launch.percent", "0").await;
    for i in 0..5 {
        say(
            &s,
            &format!("3179100{i:04}"),
            &format!("wamid.sl-zero-{i}"),
            "when are you open?",
        )
        .await;
    }
    s.idle().await;
    for i in 0..5 {
        let n = format!("3179100{i:04}");
        assert_eq!((group_of(&s, &n).as_str(), sent_to(&s, &n)), ("people", 0), "{n}");
    }

    // The inbox marks them: in the list and on the conversation page.
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (st, list, _) = get(&s, "/app?view=all", Some(&cookie)).await;
    assert_eq!(st, 200);
    assert!(list.contains("Straight to people: soft launch"), "{list}");
    let conv = conversation_of(&s, people[0]);
    let (_, page, _) = get(&s, &format!("/app/c/{conv}"), Some(&cookie)).await;
    assert!(
        page.contains("Soft launch: this conversation went straight to people"),
        "{page}"
    );
    let bot_conv = conversation_of(&s, expected_bot[0]);
    let (_, page, _) = get(&s, &format!("/app/c/{bot_conv}"), Some(&cookie)).await;
    assert!(!page.contains("Soft launch:"), "the bot's are not marked");
    // A person answers one of the people's conversations.
    let (_, page, _) = get(&s, &format!("/app/c/{conv}"), Some(&cookie)).await;
    let key = page.split("name=\"key\" value=\"").nth(1).unwrap()[..64].to_string();
    let (st, _) = post(
        &s,
        &format!("/app/c/{conv}/reply"),
        &cookie,
        &[("csrf", &csrf_of(&page)), ("key", &key), ("text", "We open at 9.")],
    )
    .await;
    assert!(st.is_redirection() || st.is_success(), "{st}");
    s.wait_until("the agent's reply", |s| sent_to(s, people[0]) == 1).await;
    // How each group's customers wrote back after the first reply.
    say(&s, people[0], "wamid.sl-thanks", "thanks, perfect 👍").await;
    say(&s, expected_bot[0], "wamid.sl-useless", "that is useless").await;
    s.idle().await;

    // The dashboard compares both groups.
    let (st, dash, _) = get(&s, "/admin/dashboard", Some(&cookie)).await;
    assert_eq!(st, 200);
    let bot_count = expected_bot.len() as i64 + 1;
    let people_count = (numbers.len() - expected_bot.len()) as i64 + 5;
    let (n, resolved, median) = dashboard_row(&dash, "bot");
    assert_eq!(n, bot_count, "{dash}");
    let handed = s.query_i64("SELECT COUNT(DISTINCT conversation_id) FROM handoffs");
    assert_eq!(resolved, bot_count - handed);
    assert!(median.is_some());
    assert_eq!(dashboard_row(&dash, "people").0, people_count);
    assert_eq!(dashboard_row(&dash, "people").1, 1, "the one a person answered");
    assert!(dashboard_row(&dash, "people").2.is_some());
    assert_eq!(wrote_back(&dash, "people"), (1, 0), "{dash}");
    assert_eq!(wrote_back(&dash, "bot"), (0, 1), "{dash}");

    // Every ramp is in the audit log.
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/control/audit", s.base))
        .bearer_auth(s.app().control_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ramps = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains("soft_launch.percent"))
        .count();
    assert_eq!(ramps, 3, "{audit}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_allow_list_puts_exactly_those_numbers_on_the_bot() {
    let s = shop(|_| {}).await;
    set(&s, "soft_launch.allow", "+31792220001, 31792220003").await;
    let numbers: Vec<String> = (1..=6).map(|i| format!("3179222000{i}")).collect();
    for (i, n) in numbers.iter().enumerate() {
        say(&s, n, &format!("wamid.pilot-{i}"), "when are you open?").await;
    }
    s.wait_until("the pilot's answers", |s| s.graph.sent().len() >= 2).await;
    s.idle().await;
    let on_bot: Vec<&String> = numbers.iter().filter(|n| group_of(&s, n) == "bot").collect();
    assert_eq!(on_bot, vec!["31792220001", "31792220003"]);
    for n in &numbers {
        assert_eq!(sent_to(&s, n), usize::from(on_bot.contains(&n)), "{n}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_allow_list_can_name_a_customer_known_only_by_bsuid() {
    use crate::senders::{OLD_BSUID, fixture, post};
    let s = shop(|_| {}).await;
    set(&s, "soft_launch.allow", &format!("31792230001, {OLD_BSUID}")).await;
    // A username-only customer (no number anywhere, only `contacts[].user_id`).
    post(&s, &fixture("derived/bsuid_only_text.json", "wamid.pilot-bsuid")).await;
    say(&s, "31792230002", "wamid.pilot-unlisted", "when are you open?").await;
    s.wait_until("the listed BSUID's answer", |s| !s.graph.sent().is_empty())
        .await;
    s.idle().await;
    let sent = s.graph.sent();
    assert_eq!(sent.len(), 1, "only the listed customer is answered: {sent:?}");
    assert_eq!(sent[0].body["recipient"], OLD_BSUID, "{}", sent[0].body);
    assert_eq!(group_of(&s, "31792230002"), "people");
    s.stop().await;
}
