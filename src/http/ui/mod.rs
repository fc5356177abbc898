//! The browser app (inbox and admin pages): server-rendered HTML (maud escapes every
//! value, so customer text is inert), one embedded stylesheet, no inline script.
//!
//! Every page is declared once in `PAGES` with the access it needs and its handler; the
//! router is built from that table and the authorization test walks the same table, so a page cannot
//! exist without a rule. The access check loads the session from its cookie (idle and
//! absolute expiry), checks the role, and on every state-changing request checks the
//! Origin and the session's CSRF token.

mod admin;
mod canned;
mod contact;
mod conversation;
mod events;
mod handlers;
mod pages;
mod search;
mod split;
mod teamwork;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};

use crate::app::App;
use crate::domain::auth::{Role, session_live};
use crate::store::users::{self, User};

/// Who may use a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, the stylesheet).
    Public,
    /// A signed-in agent or admin.
    Agent,
    /// A signed-in admin.
    Admin,
}

/// One page or form target of the browser app.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// The handler, with any per-route layer (a larger body limit for uploads).
    pub handler: fn() -> MethodRouter<Arc<App>>,
}

/// Every route of the browser app, with its access rule.
pub const PAGES: &[Page] = &[
    Page {
        method: "GET",
        path: "/",
        access: Access::Public,
        handler: || get(|| async { Redirect::to("/app") }),
    },
    Page {
        method: "GET",
        path: "/login",
        access: Access::Public,
        handler: || get(handlers::login_page),
    },
    Page {
        method: "POST",
        path: "/login",
        access: Access::Public,
        handler: || post(handlers::login),
    },
    Page {
        method: "GET",
        path: "/app/static/{file}",
        access: Access::Public,
        handler: || get(handlers::asset),
    },
    Page {
        method: "POST",
        path: "/logout",
        access: Access::Agent,
        handler: || post(handlers::logout),
    },
    Page {
        method: "GET",
        path: "/app",
        access: Access::Agent,
        handler: || get(handlers::inbox),
    },
    Page {
        method: "GET",
        path: "/app/events",
        access: Access::Agent,
        handler: || get(events::stream),
    },
    Page {
        method: "GET",
        path: "/app/c/{id}",
        access: Access::Agent,
        handler: || get(conversation::show),
    },
    Page {
        method: "GET",
        path: "/app/c/{id}/media/{message_id}",
        access: Access::Agent,
        handler: || get(conversation::media),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/reply",
        access: Access::Agent,
        handler: || post(conversation::reply),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/attach",
        access: Access::Agent,
        handler: || post(conversation::attach).layer(axum::extract::DefaultBodyLimit::max(conversation::ATTACH_LIMIT)),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/template",
        access: Access::Agent,
        handler: || post(conversation::template),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/takeover",
        access: Access::Agent,
        handler: || post(conversation::take_over),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/handback",
        access: Access::Agent,
        handler: || post(conversation::hand_back),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/assign",
        access: Access::Agent,
        handler: || post(conversation::assign),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/priority",
        access: Access::Agent,
        handler: || post(conversation::priority),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/labels",
        access: Access::Agent,
        handler: || post(conversation::labels),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/close",
        access: Access::Agent,
        handler: || post(conversation::close),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/note",
        access: Access::Agent,
        handler: || post(conversation::note),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/retry",
        access: Access::Agent,
        handler: || post(conversation::retry),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/snooze",
        access: Access::Agent,
        handler: || post(teamwork::snooze),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/presence",
        access: Access::Agent,
        handler: || post(teamwork::presence),
    },
    Page {
        method: "GET",
        path: "/app/c/{id}/erase",
        access: Access::Admin,
        handler: || get(contact::erase_step),
    },
    Page {
        method: "POST",
        path: "/app/c/{id}/erase",
        access: Access::Admin,
        handler: || post(contact::erase),
    },
    Page {
        method: "GET",
        path: "/account",
        access: Access::Agent,
        handler: || get(handlers::account),
    },
    Page {
        method: "POST",
        path: "/account/password",
        access: Access::Agent,
        handler: || post(handlers::change_password),
    },
    Page {
        method: "GET",
        path: "/admin/dashboard",
        access: Access::Admin,
        handler: || get(admin::dashboard),
    },
    Page {
        method: "GET",
        path: "/admin/health",
        access: Access::Admin,
        handler: || get(admin::health),
    },
    Page {
        method: "GET",
        path: "/admin/settings",
        access: Access::Admin,
        handler: || get(admin::settings),
    },
    Page {
        method: "POST",
        path: "/admin/settings",
        access: Access::Admin,
        handler: || post(admin::set),
    },
    Page {
        method: "GET",
        path: "/admin/kb",
        access: Access::Admin,
        handler: || get(admin::kb),
    },
    Page {
        method: "POST",
        path: "/admin/kb/upload",
        access: Access::Admin,
        handler: || post(admin::upload).layer(axum::extract::DefaultBodyLimit::max(admin::UPLOAD_LIMIT)),
    },
    Page {
        method: "POST",
        path: "/admin/kb/remove",
        access: Access::Admin,
        handler: || post(admin::remove),
    },
    Page {
        method: "GET",
        path: "/admin/canned",
        access: Access::Admin,
        handler: || get(canned::page),
    },
    Page {
        method: "POST",
        path: "/admin/canned",
        access: Access::Admin,
        handler: || post(canned::add),
    },
    Page {
        method: "POST",
        path: "/admin/canned/edit",
        access: Access::Admin,
        handler: || post(canned::edit),
    },
    Page {
        method: "POST",
        path: "/admin/canned/remove",
        access: Access::Admin,
        handler: || post(canned::remove),
    },
    Page {
        method: "GET",
        path: "/admin/users",
        access: Access::Admin,
        handler: || get(handlers::users),
    },
    Page {
        method: "POST",
        path: "/admin/users",
        access: Access::Admin,
        handler: || post(handlers::add_user),
    },
    Page {
        method: "POST",
        path: "/admin/users/remove",
        access: Access::Admin,
        handler: || post(handlers::remove_user),
    },
];

/// The browser app's routes, each behind its access check, with security headers.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let mut router = Router::new();
    for page in PAGES {
        let access = page.access;
        let guarded = (page.handler)().route_layer(from_fn_with_state(
            (app.clone(), access, form_limit(page)),
            check_access,
        ));
        router = router.route(page.path, guarded);
    }
    router.layer(from_fn(security_headers))
}

/// The signed-in person of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub token_hash: String,
    /// The rollback in force when the request came (kill switch, spent desk budget):
    /// every page's frame shows it as a banner.
    pub rollback: Option<crate::domain::settings::Rollback>,
}

impl Session {
    /// Who acts, for the audit log.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.email)
    }
}

/// The session cookie's name: `__Host-` prefixed (Secure, whole site) when the public
/// URL is https.
pub fn cookie_name(app: &App) -> &'static str {
    if secure(app) { "__Host-fd_session" } else { "fd_session" }
}

fn secure(app: &App) -> bool {
    app.config.server.public_url.starts_with("https://")
}

/// The Set-Cookie value starting (or, with an empty token, ending) a session.
pub fn session_cookie(app: &App, token: &str) -> String {
    let max_age = if token.is_empty() {
        0
    } else {
        app.config.auth.max_ms() / 1000
    };
    let secure = if secure(app) { "; Secure" } else { "" };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(app)
    )
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The live session of a request, if any (touched at most once a minute).
pub async fn load_session(app: &App, headers: &HeaderMap) -> crate::error::Result<Option<Session>> {
    let Some(token) = cookie_value(headers, cookie_name(app)).filter(|t| t.len() == 64) else {
        return Ok(None);
    };
    let hash = crate::accounts::token_hash(token);
    let (idle, max) = (app.config.auth.idle_ms(), app.config.auth.max_ms());
    let h = hash.clone();
    let defaults = crate::settings::defaults(&app.config);
    let found = app
        .store
        .read(move |c| {
            let Some(session) = users::session(c, &h)? else {
                return Ok(None);
            };
            let user = users::by_id(c, session.0)?.map(|u| u.0);
            // The live settings, and today's desk-wide spend only when a desk budget is set.
            let settings = crate::domain::settings::Effective::new(&defaults, &crate::store::settings::overrides(c)?);
            let (usd, tokens) = if settings.has_global_budget() {
                let today = crate::domain::calendar::utc_day(crate::domain::now_ms()) * crate::domain::calendar::DAY_MS;
                crate::store::handoffs::global_spent_since(c, today)?
            } else {
                (0.0, 0)
            };
            Ok(Some((session, user, settings.rollback(usd, tokens))))
        })
        .await?;
    let Some(((_, csrf, created, seen), user, rollback)) = found else {
        return Ok(None);
    };
    let now = crate::domain::now_ms();
    let live = session_live(created, seen, now, idle, max);
    // Writes only when something changes: an expired session goes, a used one is
    // touched at most once a minute.
    if !live || now - seen > 60_000 {
        let h = hash.clone();
        app.store
            .write(move |c| {
                if live {
                    users::touch_session(c, &h, now)
                } else {
                    users::delete_session(c, &h).map(|_| ())
                }
            })
            .await?;
    }
    Ok(user.filter(|_| live).map(|user| Session {
        user,
        csrf,
        token_hash: hash,
        rollback,
    }))
}

/// Whether a state-changing request comes from this site: its Origin (or, lacking one,
/// its Referer) must name the Host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    match from {
        Some(url) => url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next() == Some(host))
            .unwrap_or(false),
        // Browsers send Origin on every cross-site POST; a request with neither header
        // is not a browser's cross-site form.
        None => true,
    }
}

/// Largest form a page with free text (a reply, a note, settings) accepts.
const FORM_LIMIT: usize = 64 * 1024;
/// Largest form the small forms (login, password, users, conversation buttons) accept.
pub const SMALL_FORM_LIMIT: usize = 8 * 1024;

/// The body limit of a page's urlencoded form (uploads have their own, larger limits).
fn form_limit(page: &Page) -> usize {
    match page.path {
        "/app/c/{id}/reply"
        | "/app/c/{id}/note"
        | "/app/c/{id}/template"
        | "/admin/settings"
        | "/admin/kb/remove"
        | "/admin/canned"
        | "/admin/canned/edit" => FORM_LIMIT,
        _ => SMALL_FORM_LIMIT,
    }
}

async fn check_access(
    State((app, access, limit)): State<(Arc<App>, Access, usize)>,
    req: Request,
    next: Next,
) -> Response {
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD);
    if state_changing && !same_origin(req.headers()) {
        return pages::error(StatusCode::FORBIDDEN, "This form was sent from another site.").into_response();
    }
    let (parts, body) = req.into_parts();
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    // A form is read here, at most `limit` bytes, for its CSRF token and so that no
    // page (the login page included) buffers more than that.
    let (form, body) = if state_changing && !multipart {
        match axum::body::to_bytes(body, limit).await {
            Ok(b) => (Some(b.clone()), Body::from(b)),
            Err(_) => {
                return pages::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "The form is too large (over {} KiB); shorten it and send it again.",
                        limit / 1024
                    ),
                )
                .into_response();
            }
        }
    } else {
        (None, body)
    };
    if access == Access::Public {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let req = Request::from_parts(parts, body);
    let session = match load_session(&app, req.headers()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "loading a session failed");
            return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; try again.").into_response();
        }
    };
    let Some(session) = session else {
        return if state_changing {
            // The login form itself, leading back to the page the form was on (a
            // conversation's reply keeps its draft in the browser; `app.js` restores it).
            (
                StatusCode::UNAUTHORIZED,
                pages::login(
                    &page_of_action(req.uri().path()),
                    Some("Your session ended; log in again."),
                ),
            )
                .into_response()
        } else {
            let path = req.uri().path();
            Redirect::to(&format!(
                "/login?next={}",
                if path.starts_with('/') && !path.starts_with("//") {
                    path
                } else {
                    "/app"
                }
            ))
            .into_response()
        };
    };
    if access == Access::Admin && session.user.role != Role::Admin {
        return pages::error(StatusCode::FORBIDDEN, "Only admins can open this page.").into_response();
    }
    let (mut parts, body) = req.into_parts();
    if state_changing {
        // The CSRF token: a header (scripts), the form's `csrf` field, or for uploads
        // (not buffered here) the form's URL.
        let from_header = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let from_form = match &form {
            Some(bytes) => form_field(bytes, "csrf"),
            None => parts.uri.query().and_then(|q| form_field(q.as_bytes(), "csrf")),
        };
        if !crate::accounts::tokens_equal(&from_header.or(from_form).unwrap_or_default(), &session.csrf) {
            return pages::error(
                StatusCode::FORBIDDEN,
                "The form expired; reload the page and try again.",
            )
            .into_response();
        }
    }
    if session.user.must_change_password && !matches!(parts.uri.path(), "/account" | "/account/password" | "/logout") {
        return Redirect::to("/account").into_response();
    }
    parts.extensions.insert(session);
    next.run(Request::from_parts(parts, body)).await
}

/// The page a form posting to `action` sits on: a conversation's action
/// (`/app/c/{id}/reply`) → that conversation; anything else → the inbox.
fn page_of_action(action: &str) -> String {
    let mut parts = action.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("app"), Some("c"), Some(id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            format!("/app/c/{id}")
        }
        _ => "/app".into(),
    }
}

/// A field of an urlencoded form.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The client's address, for the login limiter: the peer, or behind a trusted proxy
/// (`server.trusted_proxies`) the address it forwarded.
pub fn client_ip(app: &App, req_ext: Option<&ConnectInfo<SocketAddr>>, headers: &HeaderMap) -> String {
    let Some(peer) = req_ext.map(|c| c.0.ip()) else {
        return "unknown".into();
    };
    // Every line, in order: a proxy may append its own line after the client's. A line
    // that is not text is a hop that is not an address.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
        .collect();
    crate::domain::proxy::client_address(peer, &forwarded, &app.config.server.trusted_proxies).to_string()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_form_action_leads_back_to_its_page() {
        assert_eq!(super::page_of_action("/app/c/42/reply"), "/app/c/42");
        assert_eq!(super::page_of_action("/app/c/42/attach"), "/app/c/42");
        assert_eq!(super::page_of_action("/app/c/x%2F..%2F/reply"), "/app");
        assert_eq!(super::page_of_action("/admin/settings"), "/app");
    }
}
