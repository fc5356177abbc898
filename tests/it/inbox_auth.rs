//! The browser app's accounts and access rules over real HTTP: users added by the CLI,
//! login (wrong password, rate limit), cookie flags, CSRF and cross-site forms, logout,
//! first-login password change, a password change ending other sessions, idle expiry,
//! the authorization matrix over every page of `PAGES`, and customer text rendered inert.

use std::time::Duration;

use frontdesk::domain::auth::Role;
use frontdesk::http::ui::{Access, PAGES};
use reqwest::StatusCode;
use reqwest::redirect::Policy;

use crate::engine::say;
use crate::support::{TestServer, text_webhook};

pub const ADMIN: &str = "owner@shop.example";
pub const ADMIN_PW: &str = "correct horse battery";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Adds a user through the CLI: with a password on stdin, or a generated one (returned).
pub fn cli_add(s: &TestServer, email: &str, role: &str, password: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(["user", "add", email, "--role", role, "--config"])
        .arg(s.cli_config());
    if password.is_some() {
        cmd.arg("--password-stdin");
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(p) = password {
        writeln!(child.stdin.take().unwrap(), "{p}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    password
        .map(str::to_string)
        .unwrap_or_else(|| stdout.lines().last().unwrap().trim().to_string())
}

/// Logs in: (status, session cookie "name=value", Location).
pub async fn login(s: &TestServer, email: &str, password: &str) -> (StatusCode, Option<String>, Option<String>) {
    let r = http()
        .post(format!("{}/login", s.base))
        .form(&[("email", email), ("password", password), ("next", "/app")])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    (r.status(), cookie, location)
}

pub async fn get(s: &TestServer, path: &str, cookie: Option<&str>) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut req = http().get(format!("{}{path}", s.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let headers = r.headers().clone();
    (r.status(), r.text().await.unwrap(), headers)
}

pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_string()
}

pub async fn post(s: &TestServer, path: &str, cookie: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let r = http()
        .post(format!("{}{path}", s.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_csrf_and_passwords() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // Anonymous: pages send to the login page.
    let (st, _, h) = get(&s, "/app", None).await;
    assert_eq!(
        (st, h["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/login?next=/app")
    );
    let (st, body, h) = get(&s, "/login", None).await;
    assert_eq!(st, 200);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
            && !body.contains("<script"),
        "no inline script"
    );
    // Wrong password, then right: the cookie is HttpOnly, SameSite=Strict, whole site.
    assert_eq!(login(&s, ADMIN, "wrong password!").await.0, StatusCode::UNAUTHORIZED);
    let r = http()
        .post(format!("{}/login", s.base))
        .form(&[
            ("email", "OWNER@shop.example"),
            ("password", ADMIN_PW),
            ("next", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/app", "only local redirects after login");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("fd_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let (st, page, _) = get(&s, "/app", Some(&cookie)).await;
    assert_eq!(st, 200);
    assert!(page.contains(ADMIN));
    let csrf = csrf_of(&page);
    // State-changing requests need the CSRF token and a same-site origin.
    assert_eq!(post(&s, "/logout", &cookie, &[]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        post(&s, "/logout", &cookie, &[("csrf", "0".repeat(64).as_str())])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let cross = http()
        .post(format!("{}/logout", s.base))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&s, "/app", Some(&cookie)).await.0, 200, "still logged in");
    assert_eq!(
        post(&s, "/logout", &cookie, &[("csrf", csrf.as_str())]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&s, "/app", Some(&cookie)).await.0,
        StatusCode::SEE_OTHER,
        "the session ended"
    );

    // An agent added with a one-time password must choose a new one first.
    let one_time = tokio::task::block_in_place(|| cli_add(&s, "sam@shop.example", "agent", None));
    assert_eq!(one_time.len(), 20, "{one_time}");
    let (st, a1, to) = login(&s, "sam@shop.example", &one_time).await;
    assert_eq!((st, to.as_deref()), (StatusCode::SEE_OTHER, Some("/account")));
    let a1 = a1.unwrap();
    assert_eq!(get(&s, "/app", Some(&a1)).await.2["location"], "/account");
    let (_, a2, _) = login(&s, "sam@shop.example", &one_time).await;
    let a2 = a2.unwrap();
    let page = get(&s, "/account", Some(&a1)).await.1;
    let csrf = csrf_of(&page);
    let (st, body) = post(
        &s,
        "/account/password",
        &a1,
        &[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", "short"),
        ],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("at least 10"),
        "{body}"
    );
    let (st, body) = post(
        &s,
        "/account/password",
        &a1,
        &[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", "a much longer secret"),
        ],
    )
    .await;
    assert!(st == 200 && body.contains("1 other session(s) ended"), "{body}");
    assert_eq!(get(&s, "/app", Some(&a1)).await.0, 200, "this session goes on");
    assert_eq!(
        get(&s, "/app", Some(&a2)).await.0,
        StatusCode::SEE_OTHER,
        "the other one ended"
    );
    assert_eq!(
        login(&s, "sam@shop.example", &one_time).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('user.add', 'user.password', 'user.login')"),
        6
    );

    // Five failures for one email: the sixth try is refused, even with the right password.
    for _ in 0..5 {
        assert_eq!(login(&s, ADMIN, "not the password").await.0, StatusCode::UNAUTHORIZED);
    }
    let r = http()
        .post(format!("{}/login", s.base))
        .form(&[("email", ADMIN), ("password", ADMIN_PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // No password or token in the stored sessions.
    assert_eq!(
        s.query_i64(&format!(
            "SELECT COUNT(*) FROM sessions WHERE token_hash = '{}'",
            a1.split('=').nth(1).unwrap()
        )),
        0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end() {
    // 60 ms of idleness ends a session.
    let s = TestServer::start_with(|c| c.auth.session_idle_minutes = 0.001).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let (_, cookie, _) = login(&s, ADMIN, ADMIN_PW).await;
    let cookie = cookie.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(get(&s, "/app", Some(&cookie)).await.0, StatusCode::SEE_OTHER);
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM sessions"),
        0,
        "the expired session row is gone"
    );
    s.stop().await;
}

/// Whether a response means "you may not": a redirect to the login page, 401 or 403.
fn refused(st: StatusCode, location: Option<&str>) -> bool {
    st == StatusCode::UNAUTHORIZED
        || st == StatusCode::FORBIDDEN
        || location.is_some_and(|l| l.starts_with("/login?next="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_over_every_page() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| {
        cli_add(&s, ADMIN, "admin", Some(ADMIN_PW));
        cli_add(&s, "agent@shop.example", "agent", Some("agent password 1"));
    });
    type Who<'a> = (Option<Role>, Option<(&'a str, &'a str)>);
    let who: [Who; 3] = [
        (None, None),
        (Some(Role::Agent), Some(("agent@shop.example", "agent password 1"))),
        (Some(Role::Admin), Some((ADMIN, ADMIN_PW))),
    ];
    // A conversation for the pages that show one.
    say(&s, "31655510001", "wamid.m-1", "hello").await;
    s.wait_until("the conversation", |s| {
        s.query_i64("SELECT COUNT(*) FROM conversations") == 1
    })
    .await;
    let conv = s.query_i64("SELECT id FROM conversations").to_string();
    for page in PAGES {
        let path = page
            .path
            .replace("{file}", "app.css")
            .replace("{id}", &conv)
            .replace("{message_id}", "1");
        for (role, creds) in &who {
            // A fresh session each time (one of the pages is the logout).
            let (cookie, csrf) = match creds {
                Some((e, p)) => {
                    let cookie = login(&s, e, p).await.1.unwrap();
                    let csrf = csrf_of(&get(&s, "/account", Some(&cookie)).await.1);
                    (Some(cookie), csrf)
                }
                None => (None, String::new()),
            };
            let mut req = if page.method == "GET" {
                http().get(format!("{}{path}", s.base))
            } else {
                http()
                    .post(format!("{}{path}", s.base))
                    .form(&[("csrf", csrf.as_str())])
            };
            if let Some(c) = &cookie {
                req = req.header("cookie", c);
            }
            let r = req.send().await.unwrap();
            let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            let allowed = match page.access {
                Access::Public => true,
                Access::Agent => role.is_some(),
                Access::Admin => *role == Some(Role::Admin),
            };
            assert_eq!(
                !refused(r.status(), location.as_deref()),
                allowed,
                "{} {} as {role:?}: {} {location:?}",
                page.method,
                page.path,
                r.status()
            );
            assert!(
                r.status() != StatusCode::INTERNAL_SERVER_ERROR,
                "{} {}",
                page.method,
                page.path
            );
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_text_is_inert_in_the_inbox() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // A hostile name (from the webhook's contact profile) and message, handed off.
    let body = text_webhook(
        "P1",
        "31655500001",
        "wamid.xss-1",
        "<img src=x onerror=alert(1)> talk to a human <svg onload=alert(2)>",
    )
    .replace("\"name\":\"Customer\"", "\"name\":\"<script>alert(3)</script>\"");
    assert!(
        body.contains("<script>alert(3)</script>"),
        "the fixture carries the hostile name"
    );
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
    say(&s, "31655500002", "wamid.xss-2", "javascript:alert(4) \"><b>hi</b>").await;
    s.wait_until("a handoff", |s| s.query_i64("SELECT COUNT(*) FROM handoffs") == 1)
        .await;
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let (_, human, _) = get(&s, "/app?view=human", Some(&cookie)).await;
    let (_, all, _) = get(&s, "/app?view=all", Some(&cookie)).await;
    for page in [&human, &all] {
        assert!(
            !page.contains("<script>alert")
                && !page.contains("<img src=x")
                && !page.contains("<svg")
                && !page.contains("<b>hi"),
            "{page}"
        );
    }
    assert!(
        human.contains("&lt;script&gt;alert(3)&lt;/script&gt;") && human.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{human}"
    );
    assert!(all.contains("&lt;b&gt;hi&lt;/b&gt;"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_and_remove_users_from_the_page() {
    let s = TestServer::start().await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let admin = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let page = get(&s, "/admin/users", Some(&admin)).await.1;
    let csrf = csrf_of(&page);
    let (st, body) = post(
        &s,
        "/admin/users",
        &admin,
        &[("csrf", &csrf), ("email", "kim@shop.example"), ("role", "agent")],
    )
    .await;
    assert_eq!(st, 200);
    let one_time = body.split("One-time password: ").nth(1).unwrap()[..20].to_string();
    let (st, body) = post(
        &s,
        "/admin/users",
        &admin,
        &[("csrf", &csrf), ("email", "kim@shop.example"), ("role", "agent")],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("exists already"),
        "{body}"
    );
    let (st, kim, to) = login(&s, "kim@shop.example", &one_time).await;
    assert_eq!((st, to.as_deref()), (StatusCode::SEE_OTHER, Some("/account")));
    let kim = kim.unwrap();
    let kim_id = s
        .query_i64("SELECT id FROM users WHERE email = 'kim@shop.example'")
        .to_string();
    let admin_id = s
        .query_i64("SELECT id FROM users WHERE email = 'owner@shop.example'")
        .to_string();
    let (st, body) = post(
        &s,
        "/admin/users/remove",
        &admin,
        &[("csrf", &csrf), ("user_id", &admin_id)],
    )
    .await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY && body.contains("cannot remove yourself"),
        "{body}"
    );
    let (st, body) = post(
        &s,
        "/admin/users/remove",
        &admin,
        &[("csrf", &csrf), ("user_id", &kim_id)],
    )
    .await;
    assert!(st == 200 && body.contains("Removed kim@shop.example"), "{body}");
    assert_eq!(
        get(&s, "/account", Some(&kim)).await.0,
        StatusCode::SEE_OTHER,
        "the removed user's session ended"
    );
    assert_eq!(
        login(&s, "kim@shop.example", &one_time).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

/// Behind a trusted proxy the login limiter counts the forwarded client address; without
/// one, a client cannot escape the limit by sending `X-Forwarded-For` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limiter_counts_forwarded_addresses_only_from_trusted_proxies() {
    async fn attempt(s: &TestServer, from: &str, email: &str) -> StatusCode {
        http()
            .post(format!("{}/login", s.base))
            .header("x-forwarded-for", from)
            .form(&[("email", email), ("password", "wrong password")])
            .send()
            .await
            .unwrap()
            .status()
    }
    for trusted in [true, false] {
        let s = TestServer::start_with(|c| {
            c.auth.login_max_failures = 1; // per address: 4
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            }
        })
        .await;
        for i in 0..4 {
            assert_eq!(
                attempt(&s, "203.0.113.9", &format!("a{i}@x.example")).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            attempt(&s, "203.0.113.9", "a9@x.example").await,
            StatusCode::TOO_MANY_REQUESTS,
            "the fifth from one address"
        );
        let other = attempt(&s, "198.51.100.7", "b@x.example").await;
        if trusted {
            assert_eq!(
                other,
                StatusCode::UNAUTHORIZED,
                "another client behind the proxy is not limited"
            );
        } else {
            assert_eq!(
                other,
                StatusCode::TOO_MANY_REQUESTS,
                "an untrusted X-Forwarded-For is ignored"
            );
        }
        s.stop().await;
    }
}
