//! The browser app's handlers: login (rate-limited per email and per address), logout,
//! the inbox list, the account page (password change ends other sessions) and the
//! admin's user list. Each runs after `check_access` put the `Session` in place.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Session, pages, session_cookie};
use crate::app::App;
use crate::domain::auth::{Role, check_password};
use crate::store::inbox::{self, View};
use crate::store::users;

/// The stylesheet (and any later static file), compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/app/"]
struct Assets;

pub async fn asset(Path(file): Path<String>) -> Response {
    match Assets::get(&file) {
        Some(f) => {
            let mime = if file.ends_with(".css") {
                "text/css; charset=utf-8"
            } else if file.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "public, max-age=300"),
                ],
                f.data.into_owned(),
            )
                .into_response()
        }
        None => pages::error(StatusCode::NOT_FOUND, "No such file.").into_response(),
    }
}

use pages::internal;

/// Where to go after login: a strict local path, else the inbox.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if crate::domain::auth::is_local_path(n) => n.to_string(),
        _ => "/app".into(),
    }
}

/// The 429 page a limited login or password check gets.
fn too_many(wait_ms: i64, page: maud::Markup) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, (wait_ms / 1000).max(1).to_string())],
        page,
    )
        .into_response()
}

fn too_many_text(wait_ms: i64, what: &str) -> String {
    format!("Too many {what}. Try again in {} min.", (wait_ms + 59_999) / 60_000)
}

/// The 503 page when every password hashing thread stays busy.
fn busy(page: maud::Markup) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")], page).into_response()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(Query(q): Query<NextQuery>) -> Response {
    pages::login(&safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Checks a login. Attempts are counted before the password is checked (all three
/// limits in one step, so parallel guesses cannot slip past the count) and given back
/// when the login succeeds: `auth.login_max_failures` per (email, client address), four
/// times that per address, `auth.login_max_failures_per_email` per email from anywhere.
/// Someone failing from one address therefore cannot lock the user out elsewhere.
pub async fn login(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let ip = super::client_ip(&app, peer.as_ref().map(|p| &p.0), &headers);
    let cfg = &app.config.auth;
    let now = crate::domain::now_ms();
    let ip_key = format!("ip:{ip}");
    let Some(email) = crate::domain::auth::login_email_key(&f.email) else {
        // No account has an email this long: a failure for the address only.
        let counted = app.login_limiter.lock().expect("limiter lock").reserve(
            &[(&ip_key, cfg.login_max_failures * 4)],
            now,
            cfg.window_ms(),
        );
        return match counted {
            Ok(()) => (
                StatusCode::UNAUTHORIZED,
                pages::login(&next, Some("Wrong email or password.")),
            )
                .into_response(),
            Err(wait) => too_many(wait, pages::login(&next, Some(&too_many_text(wait, "failed logins")))),
        };
    };
    let (pair_key, email_key) = (format!("pair:{email}|{ip}"), format!("email:{email}"));
    let limits = [
        (pair_key.as_str(), cfg.login_max_failures),
        (ip_key.as_str(), cfg.login_max_failures * 4),
        (email_key.as_str(), cfg.login_max_failures_per_email),
    ];
    if let Err(wait) = app
        .login_limiter
        .lock()
        .expect("limiter lock")
        .reserve(&limits, now, cfg.window_ms())
    {
        return too_many(wait, pages::login(&next, Some(&too_many_text(wait, "failed logins"))));
    }
    let refund = || {
        let mut limiter = app.login_limiter.lock().expect("limiter lock");
        limits.iter().for_each(|(k, _)| limiter.refund(k, now));
    };
    let user = match crate::accounts::check_login(&app.store, &app.hasher, &email, &f.password).await {
        Ok(u) => u,
        Err(crate::error::Error::Unavailable(_)) => {
            // Not checked: the attempt does not count.
            refund();
            return busy(pages::login(
                &next,
                Some("Too many logins at once. Try again in a few seconds."),
            ));
        }
        Err(e) => return internal(e),
    };
    let Some(user) = user else {
        tracing::info!("a failed inbox login");
        return (
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("Wrong email or password.")),
        )
            .into_response();
    };
    refund();
    app.login_limiter.lock().expect("limiter lock").clear(&pair_key);
    let (token, _) = match crate::accounts::start_session(&app.store, user.id).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let (id, when) = (user.email.clone(), crate::domain::now_ms());
    let written = app
        .store
        .write(move |c| crate::store::settings::audit(c, when, &format!("user:{id}"), "user.login", &id, "{}"))
        .await;
    audit_written(&app, "user.login", written);
    let to = if user.must_change_password {
        "/account".to_string()
    } else {
        next
    };
    ([(header::SET_COOKIE, session_cookie(&app, &token))], Redirect::to(&to)).into_response()
}

pub async fn logout(State(app): State<Arc<App>>, Extension(s): Extension<Session>) -> Response {
    let h = s.token_hash.clone();
    if let Err(e) = app.store.write(move |c| users::delete_session(c, &h)).await {
        return internal(e);
    }
    ([(header::SET_COOKIE, session_cookie(&app, ""))], Redirect::to("/login")).into_response()
}

#[derive(Deserialize)]
pub struct InboxQuery {
    view: Option<String>,
    q: Option<String>,
    /// Only conversations with this label.
    label: Option<String>,
    /// A notice a redirect carried (a fixed text per code, never the request's).
    notice: Option<String>,
}

/// The inbox's notices.
fn inbox_notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "erased" => {
            "The contact was erased: everything stored about them is gone. The audit log keeps the erasure, without their number."
        }
        _ => return None,
    })
}

/// Conversations a list shows at most.
const LIST_LIMIT: usize = 200;

pub async fn inbox(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Query(q): Query<InboxQuery>,
) -> Response {
    let view = View::parse(q.view.as_deref().unwrap_or("human"));
    let search: Option<String> = q.q.map(|t| t.chars().take(200).collect());
    let label = q.label.as_deref().and_then(crate::domain::labels::label);
    let (user, text, wanted) = (s.user.id, search.clone(), label.clone());
    // A search looks through every tab (the tab stays chosen for when it is cleared).
    let searching = search.as_deref().is_some_and(|t| !t.trim().is_empty());
    let list_view = if searching { View::All } else { view };
    let mut response = match app
        .store
        .read(move |c| {
            let rows = inbox::list(c, list_view, user, text.as_deref(), wanted.as_deref(), LIST_LIMIT)?;
            let hits = match text.as_deref().filter(|_| searching) {
                Some(q) => {
                    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    crate::store::search::hits(c, q, &ids)?
                }
                None => Default::default(),
            };
            let unread = crate::store::unread::counts(c, user, crate::domain::now_ms())?;
            Ok((rows, hits, crate::store::health::snapshot(c, 0)?.warnings(), unread))
        })
        .await
    {
        Ok((rows, hits, warnings, unread)) => pages::inbox(
            &s,
            view,
            search.as_deref().unwrap_or(""),
            label.as_deref(),
            &rows,
            &super::search::Found::new(search.as_deref().unwrap_or(""), hits),
            crate::domain::now_ms(),
            app.send_pause.reason().as_deref(),
            &warnings,
            &unread,
            q.notice.as_deref().and_then(inbox_notice),
        )
        .into_response(),
        Err(e) => internal(e),
    };
    // The tab is remembered for the conversation page's list column (`split.rs`).
    if let Ok(cookie) = header::HeaderValue::from_str(&super::split::remember_tab(&app, view)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn account(Extension(s): Extension<Session>) -> Response {
    pages::account(&s, None, None).into_response()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
}

pub async fn change_password(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let id = s.user.id;
    let found = match app.store.read(move |c| users::by_id(c, id)).await {
        Ok(Some((_, hash))) => hash,
        Ok(None) => return pages::error(StatusCode::UNAUTHORIZED, "Your account is gone.").into_response(),
        Err(e) => return internal(e),
    };
    // The current password is guessable through this form too: the login limit per user.
    let (key, now, cfg) = (format!("user:{id}"), crate::domain::now_ms(), &app.config.auth);
    if let Err(wait) =
        app.login_limiter
            .lock()
            .expect("limiter lock")
            .reserve(&[(&key, cfg.login_max_failures)], now, cfg.window_ms())
    {
        return too_many(
            wait,
            pages::account(&s, None, Some(&too_many_text(wait, "wrong passwords"))),
        );
    }
    let refund = || app.login_limiter.lock().expect("limiter lock").refund(&key, now);
    let ok = match app.hasher.verify(f.current.clone(), found).await {
        Ok(ok) => ok,
        Err(crate::error::Error::Unavailable(_)) => {
            refund();
            return busy(pages::account(
                &s,
                None,
                Some("The server is busy. Try again in a few seconds."),
            ));
        }
        Err(e) => return internal(e),
    };
    if !ok {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::account(&s, None, Some("The current password is wrong.")),
        )
            .into_response();
    }
    refund();
    if let Err(p) = check_password(&f.new, &s.user.email) {
        return (StatusCode::UNPROCESSABLE_ENTITY, pages::account(&s, None, Some(&p))).into_response();
    }
    let hash = match app.hasher.hash(f.new.clone()).await {
        Ok(h) => h,
        Err(crate::error::Error::Unavailable(_)) => {
            return busy(pages::account(
                &s,
                None,
                Some("The server is busy. Try again in a few seconds."),
            ));
        }
        Err(e) => return internal(e),
    };
    let (keep, email, now) = (s.token_hash.clone(), s.user.email.clone(), crate::domain::now_ms());
    let ended = app
        .store
        .write(move |c| {
            let n = users::set_password(c, id, &hash, Some(&keep), now)?;
            crate::store::settings::audit(
                c,
                now,
                &format!("user:{email}"),
                "user.password",
                &email,
                &format!("{{\"sessions_ended\":{n}}}"),
            )?;
            Ok(n)
        })
        .await;
    match ended {
        Ok(n) => {
            let mut s = s;
            s.user.must_change_password = false;
            pages::account(
                &s,
                Some(&format!("Password changed; {n} other session(s) ended.")),
                None,
            )
            .into_response()
        }
        Err(e) => internal(e),
    }
}

pub async fn users(State(app): State<Arc<App>>, Extension(s): Extension<Session>) -> Response {
    match app.store.read(users::list).await {
        Ok(all) => pages::users(&s, &all, None, None).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct NewUserForm {
    email: String,
    role: String,
}

pub async fn add_user(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Form(f): Form<NewUserForm>,
) -> Response {
    let Some(role) = Role::parse(&f.role) else {
        return pages::error(StatusCode::UNPROCESSABLE_ENTITY, "Role must be agent or admin.").into_response();
    };
    let password = crate::accounts::generate_password();
    let added = crate::accounts::add_user(&app.store, &f.email, role, &password, true, &s.actor()).await;
    let all = match app.store.read(users::list).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    match added {
        Ok(_) => pages::users(
            &s,
            &all,
            Some(&format!(
                "Added {} ({}). One-time password: {password}",
                f.email.trim(),
                role.as_str()
            )),
            None,
        )
        .into_response(),
        Err(crate::error::Error::Invalid(p)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, pages::users(&s, &all, None, Some(&p))).into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct RemoveUserForm {
    user_id: i64,
}

pub async fn remove_user(
    State(app): State<Arc<App>>,
    Extension(s): Extension<Session>,
    Form(f): Form<RemoveUserForm>,
) -> Response {
    let render = |notice: Option<String>, problem: Option<String>, status: StatusCode| {
        let app = app.clone();
        let s = s.clone();
        async move {
            match app.store.read(users::list).await {
                Ok(all) => (status, pages::users(&s, &all, notice.as_deref(), problem.as_deref())).into_response(),
                Err(e) => internal(e),
            }
        }
    };
    if f.user_id == s.user.id {
        return render(
            None,
            Some("You cannot remove yourself.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (id, actor, now) = (f.user_id, s.actor(), crate::domain::now_ms());
    let removed = app
        .store
        .write(move |c| {
            let email = users::remove(c, id)?;
            if let Some(e) = &email {
                crate::store::settings::audit(c, now, &actor, "user.remove", e, "{}")?;
            }
            Ok(email)
        })
        .await;
    match removed {
        Ok(Some(email)) => {
            render(
                Some(format!("Removed {email}; their sessions ended.")),
                None,
                StatusCode::OK,
            )
            .await
        }
        Ok(None) => render(None, Some("No such user.".into()), StatusCode::NOT_FOUND).await,
        Err(crate::error::Error::Invalid(p)) => render(None, Some(p), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}

/// Counts and logs an audit entry that could not be written after its action was done (the
/// action stands; the operator is told the log has a gap, never silently).
pub(super) fn audit_written(app: &App, action: &str, written: crate::error::Result<()>) {
    if let Err(e) = written {
        crate::metrics::Metrics::add(&app.metrics.audit_write_failed_total, 1);
        tracing::error!(action, error = %e, "audit log entry lost: the action was done but could not be recorded");
    }
}
