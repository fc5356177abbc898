//! HTML of the browser app. maud escapes every interpolated value, so names, messages
//! and reasons that came from customers render as text, never as markup.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::store::inbox::{ConversationRow, View};
use crate::store::users::User;

use super::Session;

/// The frame of every page: the stylesheet, the top bar (when signed in), the content.
pub fn layout(title: &str, session: Option<&Session>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · frontdesk" }
                link rel="stylesheet" href="/app/static/app.css";
            }
            body {
                @if let Some(s) = session {
                    header.top {
                        a.brand href="/app" { "frontdesk" }
                        nav {
                            a href="/app" { "Inbox" }
                            @if s.user.role == crate::domain::auth::Role::Admin { a href="/admin/users" { "Users" } }
                            a href="/account" { (s.user.email) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A page with just a message, and a status code.
pub fn error(status: StatusCode, message: &str) -> Response {
    let page = layout("Error", None, html! { section.card { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p { (message) } p { a href="/app" { "Back to the inbox" } } } });
    (status, page).into_response()
}

pub fn login(next: &str, problem: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            section.card.narrow {
                h1 { "Log in" }
                @if let Some(p) = problem { p.problem role="alert" { (p) } }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "Email" input type="email" name="email" autocomplete="username" required autofocus; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

fn ago(now: i64, at: Option<i64>) -> String {
    let Some(at) = at else { return String::new() };
    let s = (now - at).max(0) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

pub fn inbox(session: &Session, view: View, rows: &[ConversationRow], now: i64) -> Markup {
    let tab = |v: View, label: &str| {
        html! { a.tab.active[v == view] href={ "/app?view=" (v.as_str()) } aria-current=[(v == view).then_some("page")] { (label) } }
    };
    layout(
        "Inbox",
        Some(session),
        html! {
            nav.tabs aria-label="Filter" { (tab(View::NeedsHuman, "Needs a human")) (tab(View::Bot, "Bot handling")) (tab(View::All, "All")) }
            @if rows.is_empty() {
                p.empty { "Nothing here." }
            } @else {
                ul.conversations {
                    @for r in rows {
                        li {
                            div.who {
                                strong { (r.name.as_deref().unwrap_or("(no name)")) }
                                " " span.number { (r.wa_id.as_deref().unwrap_or("")) }
                                span.when { (ago(now, r.last_message_at)) }
                            }
                            @if let Some(reason) = &r.handoff_reason { div.reason { "Handed off: " (reason) } }
                            div.last { (r.last_text.as_deref().unwrap_or("").chars().take(160).collect::<String>()) }
                            span.owner { (if r.owner == "human" { "needs a human" } else { "bot" }) }
                        }
                    }
                }
            }
        },
    )
}

pub fn account(session: &Session, notice: Option<&str>, problem: Option<&str>) -> Markup {
    layout(
        "Account",
        Some(session),
        html! {
            section.card.narrow {
                h1 { "Your account" }
                p { (session.user.email) " · " (session.user.role.as_str()) }
                @if session.user.must_change_password { p.problem role="alert" { "Choose a new password before you continue." } }
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                @if let Some(p) = problem { p.problem role="alert" { (p) } }
                h2 { "Change password" }
                p.hint { "Changing it logs you out everywhere else." }
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                    label { "New password (at least 10 characters)" input type="password" name="new" autocomplete="new-password" minlength="10" required; }
                    button type="submit" { "Change password" }
                }
            }
        },
    )
}

pub fn users(session: &Session, all: &[User], notice: Option<&str>, problem: Option<&str>) -> Markup {
    layout(
        "Users",
        Some(session),
        html! {
            section.card {
                h1 { "Users" }
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                @if let Some(p) = problem { p.problem role="alert" { (p) } }
                table {
                    thead { tr { th { "Email" } th { "Role" } } }
                    tbody { @for u in all { tr { td { (u.email) } td { (u.role.as_str()) } } } }
                }
                h2 { "Add a user" }
                p.hint { "They get a one-time password to give them; they choose their own at first login." }
                form method="post" action="/admin/users" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label { "Email" input type="email" name="email" required; }
                    label { "Role" select name="role" { option value="agent" { "agent" } option value="admin" { "admin" } } }
                    button type="submit" { "Add user" }
                }
            }
        },
    )
}
