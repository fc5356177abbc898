//! The inbox's bounds against anonymous abuse, over real HTTP: parallel guesses are
//! counted before they are checked, a guesser elsewhere cannot lock a user out, every
//! `X-Forwarded-For` line counts, small forms have small body limits and long emails
//! never become limiter keys, the current-password check is limited, only strict local
//! paths are followed after login, the event stream ends with its session, parallel
//! logins stay within bounded memory (the real binary), and slow or idle connections
//! are closed and capped.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, http, login, post};
use crate::support::{BinServer, SECRET, TestServer, peak_kib, text_webhook, write_config_file};

/// A login attempt with `next`, sent from `forwarded` (header lines, in order).
async fn attempt(s: &TestServer, email: &str, password: &str, forwarded: &[&str]) -> reqwest::Response {
    let mut req = http().post(format!("{}/login", s.base));
    for line in forwarded {
        req = req.header("x-forwarded-for", *line);
    }
    req.form(&[("email", email), ("password", password), ("next", "/app")])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let tries = (0..40).map(|_| attempt(&s, ADMIN, "not the password", &[]));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let checked = statuses.iter().filter(|st| **st == StatusCode::UNAUTHORIZED).count();
    let limited = statuses
        .iter()
        .filter(|st| **st == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        (1..=5).contains(&checked),
        "at most the limit (5) were checked: {statuses:?}"
    );
    assert_eq!(
        checked + limited,
        40,
        "the others were refused as rate-limited: {statuses:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_elsewhere_cannot_lock_the_user_out() {
    let s = TestServer::start_with(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.auth.login_max_failures_per_email = 8;
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    for _ in 0..5 {
        assert_eq!(
            attempt(&s, ADMIN, "guess", &["203.0.113.66"]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(&s, ADMIN, ADMIN_PW, &["203.0.113.66"]).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address is limited"
    );
    let r = attempt(&s, ADMIN, ADMIN_PW, &["198.51.100.7"]).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the user logs in from her own address"
    );
    assert!(r.headers().contains_key("set-cookie"));
    // Guessing from many addresses hits the per-email brake (8 here): then every
    // address waits.
    for _ in 0..3 {
        assert_eq!(
            attempt(&s, ADMIN, "guess", &["203.0.113.67"]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(&s, ADMIN, ADMIN_PW, &["198.51.100.8"]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forwarded_for_line_counts_and_the_proxys_own_wins() {
    let s = TestServer::start_with(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.auth.login_max_failures = 1; // per address: 4
    })
    .await;
    // The client sends a line of its own (a new address each time); the proxy appends
    // the address it saw as a second line.
    for i in 0..4 {
        let r = attempt(
            &s,
            &format!("a{i}@x.example"),
            "wrong password",
            &[&format!("10.0.{i}.1"), "203.0.113.9"],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attempt(&s, "a9@x.example", "wrong password", &["10.0.9.1", "203.0.113.9"]).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the fifth from the proxy-seen address, whatever the client's own line says"
    );
    assert_eq!(
        attempt(&s, "b@x.example", "wrong password", &["203.0.113.9", "198.51.100.7"])
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "another client is not"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_forms_have_small_limits_and_long_emails_are_not_keys() {
    let s = TestServer::start().await;
    // A form over 8 KiB (here a 20 kB email) is refused unread, with a readable page.
    let r = attempt(&s, &"e".repeat(20_000), "x", &[]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("too large"));
    // Emails longer than any address: failures for the client address only.
    for i in 0..3 {
        let long = format!("{i}{}@x.example", "a".repeat(400));
        assert_eq!(attempt(&s, &long, "x", &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        s.app().login_limiter.lock().unwrap().len(),
        1,
        "only the address is a key"
    );
    // Keys are normalised: spacing and case do not give more tries.
    for email in [" Kim@X.example", "kim@x.example ", "KIM@x.EXAMPLE"] {
        assert_eq!(attempt(&s, email, "x", &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        s.app().login_limiter.lock().unwrap().len(),
        3,
        "one pair and one email key for kim, whatever the spelling"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_password_check_is_rate_limited() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let csrf = csrf_of(&get(&s, "/account", Some(&cookie)).await.1);
    let change = |current: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let s = &s;
        async move {
            post(
                s,
                "/account/password",
                &cookie,
                &[("csrf", &csrf), ("current", current), ("new", "a brand new secret")],
            )
            .await
        }
    };
    for _ in 0..5 {
        let (st, body) = change("a wrong guess").await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("current password is wrong"),
            "{st}"
        );
    }
    let (st, body) = change(ADMIN_PW).await;
    assert!(
        st == StatusCode::TOO_MANY_REQUESTS && body.contains("Too many wrong passwords"),
        "{st}: the sixth check is refused, even with the right password"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_strict_local_paths_are_followed_after_login() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    for (next, to) in [
        ("/\t/evil.example", "/app"),
        ("/\n/", "/app"),
        ("/\\evil.example", "/app"),
        ("/account", "/account"),
    ] {
        let r = http()
            .post(format!("{}/login", s.base))
            .form(&[("email", ADMIN), ("password", ADMIN_PW), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.headers()["location"], to, "{next:?}");
        // The login page's form carries the same rule.
        let (st, page, _) = get(&s, &format!("/login?next={}", urlencode(next)), None).await;
        assert!(st == 200 && page.contains(&format!("value=\"{to}\"")), "{next:?}");
    }
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_ends_when_the_session_does() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let csrf = csrf_of(&get(&s, "/app", Some(&cookie)).await.1);
    let mut stream = http()
        .get(format!("{}/app/events", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The stream is live: a new message arrives on it.
    assert_eq!(
        s.post_webhook(text_webhook("PN1", "31611111111", "wamid.sse-1", "hello").as_bytes())
            .await,
        200
    );
    let first = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
        .await
        .expect("an event within 30 s")
        .unwrap();
    assert!(first.is_some_and(|c| String::from_utf8_lossy(&c).contains("event:")));
    assert_eq!(
        post(&s, "/logout", &cookie, &[("csrf", csrf.as_str())]).await.0,
        StatusCode::SEE_OTHER
    );
    // After logout the server ends the stream (reading it to the end finishes).
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(_chunk) = stream.chunk().await.unwrap() {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream went on after logout");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_parallel_logins_stay_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Limits high enough that every login reaches the password check; no embedding
    // model, so the baseline is the server alone.
    let extra =
        "[auth]\nlogin_max_failures = 10000\nlogin_max_failures_per_email = 100000\n[knowledge]\nembedder = \"none\"\n";
    let config = write_config_file(dir.path(), extra);
    let server = tokio::task::block_in_place(|| BinServer::start(&config));
    let pid = server.child.id();
    let Some(before) = peak_kib(pid) else {
        println!("SKIPPED: /proc/{pid}/status is not readable here; cannot measure the server's memory");
        return;
    };
    let client = http();
    let tries = (0..64).map(|i| {
        let client = client.clone();
        let url = format!("{}/login", server.base);
        async move {
            client
                .post(url)
                .form(&[
                    ("email", format!("nobody{i}@x.example")),
                    ("password", "wrong password".into()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    let checked = statuses.iter().filter(|st| **st == StatusCode::UNAUTHORIZED).count();
    let busy = statuses
        .iter()
        .filter(|st| **st == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(checked >= 1 && checked + busy == 64, "{statuses:?}");
    let peak = peak_kib(pid).unwrap();
    println!(
        "VmHWM before {} MiB, after 64 parallel logins {} MiB ({checked} checked, {busy} told to retry)",
        before / 1024,
        peak / 1024
    );
    assert!(peak < 150 * 1024, "peak RSS {} MiB", peak / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_do_not_starve_the_server() {
    let s = TestServer::start_with(|c| c.server.header_read_timeout_ms = 1_000).await;
    let addr = s.running.as_ref().unwrap().addr;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await
            .unwrap();
        slow.push(c);
    }
    // A signed webhook and the health check still answer.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let body = text_webhook("PN1", "31622222222", "wamid.slow-1", "hi");
    let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let r = client
        .post(format!("{}/webhook", s.base))
        .header("x-hub-signature-256", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        client.get(format!("{}/healthz", s.base)).send().await.unwrap().status(),
        200
    );
    // The server closes every slow connection after its header timeout.
    for c in &mut slow {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a half-sent request was kept open");
    }
    // An idle keep-alive connection is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), idle.read_to_end(&mut got)).await;
    assert!(closed.is_ok(), "an idle keep-alive connection was kept open");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "it was answered first"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let s = TestServer::start_with(|c| {
        c.server.max_connections = 16;
        c.server.header_read_timeout_ms = 1_000;
    })
    .await;
    let addr = s.running.as_ref().unwrap().addr;
    // Plain sockets: a read below is one system call, not a cached readiness.
    let held: Vec<std::net::TcpStream> = tokio::task::block_in_place(|| {
        (0..16)
            .map(|_| {
                use std::io::Write;
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
                c
            })
            .collect()
    });
    // The 17th is served only once a slot frees: by then the server has closed one of
    // the 16 (a socket is closed before its slot is given back).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(
        client.get(format!("{}/healthz", s.base)).send().await.unwrap().status(),
        200
    );
    let closed = held
        .iter()
        .filter(|c| {
            use std::io::Read;
            c.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 512];
            !matches!((&mut &**c).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert!(
        closed >= 1,
        "the 17th connection was served while all 16 slots were held"
    );
    s.stop().await;
}
