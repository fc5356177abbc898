//! HTML of the browser app. maud escapes every interpolated value, so names, messages
//! and reasons that came from customers render as text, never as markup.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::domain::calendar;
use crate::domain::labels::Priority;
use crate::domain::owner::Owner;
use crate::domain::soft_launch::LaunchGroup;
use crate::engine::HandoffTrigger;
use crate::store::handoffs::HandoffRow;
use crate::store::inbox::{Author, ConversationHead, ConversationRow, ThreadItem, View};
use crate::store::users::User;

use super::Session;

/// The frame of every page: the stylesheet, the top bar (when signed in), the content.
pub fn layout(title: &str, session: Option<&Session>, content: Markup) -> Markup {
    layout_live(title, session, None, content)
}

/// A page that updates itself live: `live` is the page kind (`inbox`, `conversation`)
/// and the conversation it shows.
pub fn layout_live(
    title: &str,
    session: Option<&Session>,
    live: Option<(&str, Option<i64>)>,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · frontdesk" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/app/static/app.css";
                @if live.is_some() { script src="/app/static/app.js" defer {} script src="/app/static/nav.js" defer {} script src="/app/static/notify.js" defer {} script src="/app/static/found.js" defer {} }
                @if live.is_some_and(|l| l.0 == "conversation") { script src="/app/static/split.js" defer {} }
            }
            body data-page=[live.map(|l| l.0)] data-conversation=[live.and_then(|l| l.1)] {
                @if let Some(s) = session {
                    header.top {
                        a.brand href="/app" { "frontdesk" }
                        nav {
                            a href="/app" { "Inbox" }
                            button #notify type="button" hidden { "Notify me" }
                            @if s.user.role == crate::domain::auth::Role::Admin {
                                a href="/admin/dashboard" { "Dashboard" }
                                a href="/admin/health" { "Health" }
                                a href="/admin/settings" { "Settings" }
                                a href="/admin/kb" { "Knowledge" }
                                a href="/admin/canned" { "Canned replies" }
                                a href="/admin/users" { "Users" }
                            }
                            a href="/account" { (s.user.email) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main {
                    @if let Some(s) = session { (rollback_banner(s)) }
                    (content)
                    @if let Some((kind, _)) = live { (shortcuts_help(kind)) }
                }
            }
        }
    }
}

/// The keyboard shortcuts of the inbox and conversation pages (`nav.js` and `app.js` do
/// them; `?` opens this help). A `<details>`, readable without script.
fn shortcuts_help(kind: &str) -> Markup {
    html! {
        details.shortcuts #shortcuts {
            summary { "Keyboard shortcuts" }
            dl {
                @if kind == "inbox" {
                    dt { kbd { "j" } " or " kbd { "Alt" } "+" kbd { "↓" } } dd { "Next conversation of this tab" }
                    dt { kbd { "k" } " or " kbd { "Alt" } "+" kbd { "↑" } } dd { "Previous conversation of this tab" }
                    dt { kbd { "Enter" } } dd { "Open it" }
                } @else {
                    dt { kbd { "j" } " or " kbd { "Alt" } "+" kbd { "↓" } } dd { "Open the next conversation of your inbox tab" }
                    dt { kbd { "k" } " or " kbd { "Alt" } "+" kbd { "↑" } } dd { "Open the previous conversation of your inbox tab" }
                    dt { kbd { "Ctrl" } "+" kbd { "Enter" } " (" kbd { "⌘" } "+" kbd { "Enter" } ")" } dd { "Send the reply" }
                    dt { kbd { "/" } } dd { "Canned replies, in an empty reply" }
                }
                dt { kbd { "?" } } dd { "Show or hide these shortcuts" }
            }
            p.hint { "Letter shortcuts do nothing while you type in a box." }
        }
    }
}

/// A page with just a message, and a status code.
pub fn error(status: StatusCode, message: &str) -> Response {
    let page = layout(
        "Error",
        None,
        html! { section.card { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p { (message) } p { a href="/app" { "Back to the inbox" } } } },
    );
    (status, page).into_response()
}

/// The page for a failure inside the app: logged with its cause, shown without it.
pub fn internal(e: crate::error::Error) -> Response {
    tracing::error!(error = %e, "a page failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; try again.")
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

/// The banner every signed-in page shows while a rollback is in force: the kill switch is
/// on, or the desk's daily model budget is spent. Admins get the way to Settings.
fn rollback_banner(session: &Session) -> Markup {
    use crate::domain::settings::Rollback;
    let admin = session.user.role == crate::domain::auth::Role::Admin;
    html! {
        @match &session.rollback {
            Some(Rollback::KillSwitch) => div.banner.rollback role="alert" {
                "The kill switch is on: the bot answers nobody. Every customer who writes gets the static reply, and their conversation goes to people."
                @if admin { " " a href="/admin/settings" { "Turn the bot back on in Settings" } "." }
            },
            Some(Rollback::BudgetSpent(why)) => div.banner.rollback role="alert" {
                "The bot is paused until midnight UTC: " (why) ". Every customer who writes gets the static reply, and their conversation goes to people."
                @if admin { " " a href="/admin/settings" { "Raise the daily budget in Settings" } "." }
            },
            None => {},
        }
    }
}

/// The banner shown while sending is paused (e.g. the access token was refused).
pub fn paused_banner(reason: Option<&str>) -> Markup {
    html! { @if let Some(r) = reason { p.banner role="alert" { "Sending is paused: " (r) ". Replies wait and go out when it is fixed." } } }
}

/// The account-health banner: numbers rated YELLOW/RED, a restricted account.
pub fn health_banner(warnings: &[String]) -> Markup {
    html! {
        @if !warnings.is_empty() {
            div.banner.health role="alert" {
                "WhatsApp account health: "
                @for (i, w) in warnings.iter().enumerate() { @if i > 0 { "; " } (w) }
                ". Meta may limit or block sending; see " a href="/admin/health" { "Account health" } "."
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn inbox(
    session: &Session,
    view: View,
    search: &str,
    label: Option<&str>,
    rows: &[ConversationRow],
    found: &super::search::Found,
    now: i64,
    paused: Option<&str>,
    health_warnings: &[String],
    unread: &[(View, i64)],
    notice: Option<&str>,
) -> Markup {
    let label_filter = label;
    let tab = |v: View, label: &str| {
        // The tab's unread conversations (`store::unread`), when there are any.
        let count = unread.iter().find(|(u, _)| *u == v).map(|(_, n)| *n).filter(|n| *n > 0);
        html! { a.tab.active[v == view] href={ "/app?view=" (v.as_str()) @if let Some(l) = label_filter { "&label=" (l) } } aria-current=[(v == view).then_some("page")] {
            (label)
            @if let Some(n) = count { " " span.count data-view=(v.as_str()) { (n) span.sr { " unread" } } }
        } }
    };
    layout_live(
        "Inbox",
        Some(session),
        Some(("inbox", None)),
        html! {
            (paused_banner(paused))
            (health_banner(health_warnings))
            h1.sr { "Inbox" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            nav.tabs aria-label="Filter" {
                (tab(View::NeedsHuman, "Needs a human")) (tab(View::Mine, "Mine")) (tab(View::Unassigned, "Unassigned")) (tab(View::Bot, "Bot handling")) (tab(View::Snoozed, "Snoozed")) (tab(View::Closed, "Closed")) (tab(View::All, "All"))
            }
            form.search method="get" action="/app" role="search" {
                input type="hidden" name="view" value=(view.as_str());
                @if let Some(l) = label_filter { input type="hidden" name="label" value=(l); }
                input type="search" name="q" value=(search) placeholder="Search name, number or text" aria-label="Search conversations";
                button type="submit" { "Search" }
            }
            @if !search.trim().is_empty() {
                p.filter.searching { "Results from all tabs for “" (search) "” · " a href={ "/app?view=" (view.as_str()) } { "clear the search" } }
            }
            @if let Some(l) = label_filter {
                p.filter { "Only conversations labelled " span.label { (l) } " · " a href={ "/app?view=" (view.as_str()) } { "show all" } }
            }
            @if rows.is_empty() {
                p.empty { "Nothing here." }
            } @else {
                (conversation_list(rows, view, now, None, Some(found)))
            }
        },
    )
}

/// The list of an inbox tab's conversations: the inbox page's, and the conversation page's
/// left column on a wide screen (`split.rs`), where `current` (the open one) is marked.
/// `found`: a search's matching messages, shown in place of each row's last message.
pub fn conversation_list(
    rows: &[ConversationRow],
    view: View,
    now: i64,
    current: Option<i64>,
    found: Option<&super::search::Found>,
) -> Markup {
    html! {
                ul.conversations {
                    @for r in rows {
                        li.unread[r.unread].current[current == Some(r.id)] {
                            div.who {
                                @if r.unread { span.dot role="img" title="Unread" aria-label="Unread" {} }
                                a.open href={ "/app/c/" (r.id) } aria-current=[(current == Some(r.id)).then_some("page")] { strong { (r.name.as_deref().unwrap_or("(no name)")) } }
                                " " span.number { (r.wa_id.as_deref().unwrap_or("")) }
                                span.when { (ago(now, r.last_message_at)) }
                            }
                            @if r.priority != Priority::None || !r.labels.is_empty() {
                                div.tags {
                                    @if r.priority != Priority::None { span class={ "priority " (r.priority.as_str()) } { "priority: " (r.priority.as_str()) } }
                                    @for l in &r.labels { a.label href={ "/app?view=" (view.as_str()) "&label=" (l) } aria-label={ "Only conversations labelled " (l) } { (l) } }
                                }
                            }
                            (super::teamwork::list_mark(r.snooze))
                            @if r.handoff_reason.is_some() { div.reason { (HandoffTrigger::explain(r.handoff_trigger.as_deref().unwrap_or_default())) } }
                            @else if r.launch_group == LaunchGroup::People && r.owner == Owner::Human { div.reason.soft-launch { "Straight to people: soft launch" } }
                            @if let Some(hit) = found.and_then(|f| f.row(r.id)) { div.last.found { (hit) } }
                            @else { div.last dir="auto" { (r.last_text.as_deref().unwrap_or("").chars().take(160).collect::<String>()) } }
                            span.owner {
                                (if r.closed { "closed" } else if r.owner == Owner::Human { "needs a human" } else { "bot" })
                                @if let Some(a) = &r.assigned_to { " · " (a) }
                                @if !r.closed && r.last_inbound_at.is_some() {
                                    @let left = crate::domain::window::remaining_ms(r.last_inbound_at, now);
                                    " · " span.window.soon[left < crate::domain::window::SOON_MS] { (crate::domain::window::closes_in(left)) }
                                }
                            }
                        }
                    }
                }
    }
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
                    thead { tr { th { "Email" } th { "Role" } th { "Action" } } }
                    tbody {
                        @for u in all {
                            tr {
                                td { (u.email) @if u.must_change_password { br; span.hint { "has not chosen a password yet" } } }
                                td { (u.role.as_str()) }
                                td {
                                    @if u.id != session.user.id {
                                        form.inline method="post" action="/admin/users/remove" {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="user_id" value=(u.id);
                                            button.secondary type="submit" aria-label={ "Remove " (u.email) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
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

/// Everything the conversation page shows.
pub struct ConversationView<'a> {
    pub head: &'a ConversationHead,
    /// One page of the thread (`store::inbox::THREAD_PAGE` entries at most), oldest first.
    pub thread: &'a [ThreadItem],
    /// The `before` cursor of the page before this one, when there is one.
    pub earlier: Option<i64>,
    /// The cursor this page was asked for (`None`: the newest page).
    pub before: Option<i64>,
    pub handoff: Option<&'a HandoffRow>,
    /// The desk's users, to assign the conversation to.
    pub team: &'a [User],
    pub templates: &'a [crate::config::TemplateConfig],
    /// Account health: the banner, and templates Meta will not send (not offered).
    pub health: &'a crate::store::health::HealthSnapshot,
    pub canned: &'a [super::canned::Choice],
    pub now: i64,
    /// A one-time key for the composer, so a double submit sends once.
    pub send_key: &'a str,
    /// The attachment form's own one-time key.
    pub attach_key: &'a str,
    pub notice: Option<&'a str>,
    pub problem: Option<&'a str>,
    /// The contact panel (`http::ui::contact`).
    pub contact: Option<&'a crate::store::contact_panel::ContactPanel>,
    /// Snooze, who else is here, a held reply (`teamwork.rs`).
    pub teamwork: &'a super::teamwork::Teamwork,
    /// The left column on a wide screen: the agent's inbox tab (`split.rs`).
    pub column: Markup,
}

fn tick(state: &str) -> &'static str {
    match state {
        "queued" | "sending" => "🕓 sending",
        "accepted" | "sent" => "✓ sent",
        "delivered" => "✓✓ delivered",
        "read" => "✓✓ read",
        "failed" => "⚠ failed",
        _ => "",
    }
}

pub fn conversation(session: &Session, v: &ConversationView<'_>) -> Markup {
    let h = v.head;
    let name = h.name.as_deref().unwrap_or("(no name)");
    // Admins see the engine's raw handoff details (trigger, scores, cost) a click away.
    let admin = session.user.role == crate::domain::auth::Role::Admin;
    let remaining = crate::domain::window::remaining_ms(h.last_inbound_at, v.now);
    let form = |action: &str, label: &str, extra: Markup| {
        html! {
            form.inline method="post" action={ "/app/c/" (h.id) "/" (action) } {
                input type="hidden" name="csrf" value=(session.csrf);
                (extra)
                button type="submit" { (label) }
            }
        }
    };
    // A message refused for a closed window (Meta's view of it): offer the template form
    // even while our clock says the window is open.
    let wants_template = v
        .thread
        .iter()
        .any(|i| i.needs_template && i.state.as_deref() == Some("failed"));
    let blocked = |t: &crate::config::TemplateConfig| {
        v.health
            .templates
            .iter()
            .find(|b| b.name == t.name && b.language == t.language && b.is_blocked())
    };
    let template_form = html! {
        form #template method="post" action={ "/app/c/" (h.id) "/template" } {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="key" value=(v.send_key);
            label { "Template" select name="template" {
                @for t in v.templates.iter().filter(|t| blocked(t).is_none()) { option value={ (t.name) "|" (t.language) } { (t.name) " (" (t.language) ") " (t.description) } }
            } }
            label { "Parameters, one per line" textarea name="params" rows="2" dir="auto" {} }
            button type="submit" { "Send template" }
        }
        @for t in v.templates {
            @if let Some(b) = blocked(t) {
                p.hint.template-blocked { "Not offered: " (t.name) " (" (t.language) "), Meta has it " (b.why()) "." }
            }
        }
    };
    layout_live(
        name,
        Some(session),
        Some(("conversation", Some(h.id))),
        html! {
            (health_banner(&v.health.warnings()))
            div.split { (v.column) div.split-main {
            p { a href="/app" { "← Inbox" } }
            section.card {
                h1 { (name) " " span.number { (h.wa_id.as_deref().unwrap_or("")) } }
                p.status {
                    (if h.closed { "Closed; the bot answers if the customer writes again." } else if h.owner == Owner::Human { "A person is handling this conversation." } else { "The bot is handling this conversation." })
                    " Assigned to: " (h.assigned_to.as_deref().unwrap_or("nobody")) "."
                    @if h.opted_out { " The customer opted out of bot messages (STOP)." }
                }
                div.triage {
                    form.inline.priority method="post" action={ "/app/c/" (h.id) "/priority" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Priority"
                            select name="priority" {
                                @for p in Priority::ALL { option value=(p.as_str()) selected[p == h.priority] { (p.as_str()) } }
                            }
                        }
                        button.secondary type="submit" { "Set" }
                    }
                    div.labels {
                        @for l in &h.labels {
                            form.inline.label method="post" action={ "/app/c/" (h.id) "/labels" } {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="remove" value=(l);
                                span.label { (l) }
                                button.secondary.remove type="submit" aria-label={ "Remove label " (l) } { "×" }
                            }
                        }
                        form.inline.add-label method="post" action={ "/app/c/" (h.id) "/labels" } {
                            input type="hidden" name="csrf" value=(session.csrf);
                            input type="text" name="add" maxlength="40" placeholder="New label" aria-label="New label" dir="auto";
                            button.secondary type="submit" { "Add label" }
                        }
                    }
                }
                @if h.launch_group == LaunchGroup::People { p.reason.soft-launch { "Soft launch: this conversation went straight to people when it started; the bot does not answer it unless someone hands it back." } }
                @if let Some(n) = v.notice { p.notice role="status" { (n) } }
                @if let Some(p) = v.problem { p.problem role="alert" { (p) } }
                div.actions {
                    @if h.owner == Owner::Bot { (form("takeover", "Take over", html! {})) }
                    @else { (form("handback", "Hand back to bot", html! { input type="text" name="note" placeholder="Note for the bot (optional)" aria-label="Note for the bot"; })) }
                    @if h.assigned_to.as_deref() != Some(session.user.email.as_str()) { (form("assign", "Assign to me", html! { input type="hidden" name="to" value="me"; })) }
                    form.inline.assign method="post" action={ "/app/c/" (h.id) "/assign" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Assign to"
                            select name="to" {
                                option value="nobody" selected[h.assigned_to.is_none()] { "nobody" }
                                @for u in v.team { option value=(u.id) selected[h.assigned_to.as_deref() == Some(u.email.as_str())] { (u.email) } }
                            }
                        }
                        button.secondary type="submit" { "Assign" }
                    }
                    @if !h.closed { (form("close", "Close", html! {})) }
                }
                (super::teamwork::snooze_block(session, h.id, v.teamwork))
            }
            @if let Some(contact) = v.contact { (super::contact::panel(session, contact, h.id, v.now)) }
            @if let Some(p) = v.handoff {
                section.card.packet aria-label="Handoff" {
                    h2 { "Why it was handed over" }
                    p.why { (HandoffTrigger::explain(&p.trigger)) }
                    p { (p.summary) }
                    @if admin {
                        details.raw {
                            summary { "Raw details" }
                            p.hint { "Trigger: " code { (p.trigger) } }
                            p.hint { "Engine's reason: " (p.reason) }
                            p.hint {
                                @if let Some(c) = p.confidence { "Confidence " (format!("{c:.2}")) " · " }
                                "model cost so far $" (format!("{:.4}", p.cost_usd))
                            }
                            @if let Some(src) = p.sources.as_array().filter(|a| !a.is_empty()) {
                                p.hint { "Sources: " @for (i, s) in src.iter().enumerate() { @if i > 0 { ", " } (s.as_str().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
            p.hint.tz { "Times in UTC." }
            div.log role="log" tabindex="0" aria-label="Messages" {
            @if let Some(cursor) = v.earlier {
                p.earlier { a.earlier href={ "/app/c/" (h.id) "?before=" (cursor) } { "Earlier messages" } }
            }
            ol.thread {
                @for (item, day) in v.thread.iter().zip(day_starts(v.thread)) {
                    @if let Some(day) = day {
                        li.day { time datetime=(&calendar::iso(day * calendar::DAY_MS)[..10]) { (calendar::day_label(day, calendar::utc_day(v.now))) } }
                    }
                    @let (class, who) = match &item.author {
                        Author::Customer => ("customer", name.to_string()),
                        Author::Bot => ("bot", "Bot".to_string()),
                        Author::Agent(e) => ("agent", e.clone()),
                        Author::Note(e) => ("note", format!("Note by {e}")),
                        Author::System => ("system", String::new()),
                    };
                    li class={ (class) @if item.state.as_deref() == Some("failed") { " failed" } } id=[item.key.starts_with('m').then_some(&item.key)] data-at=(item.at) data-key=(item.key) {
                        @if !who.is_empty() { span.author { (who) } }
                        span.text dir="auto" {
                            (item.text)
                            @if let Some((trigger, _)) = &item.handoff { " " (HandoffTrigger::explain(trigger)) }
                        }
                        @if let Some((trigger, reason)) = item.handoff.as_ref().filter(|_| admin) {
                            details.raw { summary { "Raw details" } span.hint { code { (trigger) } ": " (reason) } }
                        }
                        @if let Some(m) = &item.media {
                            @let href = format!("/app/c/{}/media/{}", h.id, m.message_id);
                            @if m.media_type == "image" || m.media_type == "sticker" {
                                a.media href=(href) { img src=(href) alt={ "Photo from " (name) } loading="lazy"; }
                            }
                            @if m.media_type == "audio" { audio controls preload="none" src=(href) {} }
                            a.download href=(href) download { "Download " (m.media_type) @if let Some(f) = &m.filename { " (" (f) ")" } }
                            @match (m.status.as_deref(), m.derived_kind.as_deref()) {
                                (Some("done"), Some(kind)) => span.hint.read {
                                    (match kind { "transcript" => "Transcript", "description" => "Described by the vision model", _ => "Text read from the document" })
                                    @if let Some(l) = &m.language { " (" (l) ")" }
                                }
                                (Some("pending"), _) => span.hint.read { "Reading…" }
                                (Some("failed"), _) => span.problem { "The bot could not use this: " (m.problem.as_deref().unwrap_or("unknown reason")) }
                                _ => {}
                            }
                        }
                        span.meta {
                            time.at datetime=(calendar::iso(item.at)) title={ (calendar::day_words(calendar::utc_day(item.at))) ", " (calendar::hh_mm(item.at)) " UTC" } { (calendar::hh_mm(item.at)) }
                            @if let Some(st) = &item.state { " · " span.tick title=(st) { (tick(st)) } }
                        }
                        @if let Some(e) = &item.error { span.problem { (e) } }
                        @if item.state.as_deref() == Some("failed") { (failed_actions(session, v, item, remaining)) }
                    }
                }
            }
            @if v.before.is_some() {
                p.earlier { a href={ "/app/c/" (h.id) } { "Newest messages" } }
            }
            }
            // The composer stays at the bottom of the screen (sticky) while the thread
            // scrolls, so it is in reach on a phone without scrolling past the thread.
            section.card.composer aria-label="Reply" {
                (super::teamwork::presence_line(v.teamwork))
                @if remaining > 0 {
                    form #reply method="post" action={ "/app/c/" (h.id) "/reply" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="key" value=(v.send_key);
                        (super::teamwork::composer_fields(v.teamwork))
                        @if !v.canned.is_empty() {
                            label.canned { "Canned reply"
                                select #canned name="canned" {
                                    option value="" { "(write your own)" }
                                    @for c in v.canned { option value=(c.key) data-text=(c.text) { (c.title) } }
                                }
                            }
                        }
                        label { "Reply as " (session.user.email) textarea #composer name="text" rows="2" maxlength="4096" dir="auto" aria-keyshortcuts="Control+Enter Meta+Enter" aria-describedby="composer-keys" { (v.teamwork.draft()) } }
                        div.send-row {
                            p.hint #composer-keys {
                                "Reply window: " (remaining / 3_600_000) " h " ((remaining % 3_600_000) / 60_000) " min left. "
                                "Ctrl+Enter (⌘+Enter on a Mac) sends."
                                @if !v.canned.is_empty() { " Type / in an empty reply to pick a canned reply." }
                            }
                            button type="submit" { "Send" }
                        }
                    }
                } @else {
                    p.problem { "The 24-hour window is closed: WhatsApp only allows an approved template." }
                    @if v.templates.is_empty() {
                        p.hint { "No templates are configured (whatsapp.templates)." }
                    } @else {
                        (template_form)
                    }
                }
            }
            section.card.tools aria-label="File, template and note" {
                @if remaining > 0 {
                    form.attach method="post" action={ "/app/c/" (h.id) "/attach?csrf=" (session.csrf) } enctype="multipart/form-data" {
                        input type="hidden" name="key" value=(v.attach_key);
                        label { "Send a photo or document" input type="file" name="file" required; }
                        label { "Caption (optional)" input type="text" name="caption" maxlength="1024" dir="auto"; }
                        button type="submit" { "Send file" }
                    }
                    @if wants_template && !v.templates.is_empty() {
                        p.problem { "WhatsApp refused a message because only an approved template may go now." }
                        (template_form)
                    }
                }
                form method="post" action={ "/app/c/" (h.id) "/note" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label { "Private note (never sent)" textarea name="text" rows="2" maxlength="4096" dir="auto" required {} }
                    button type="submit" { "Add note" }
                }
            }
            } }
        },
    )
}

/// For each thread item (sorted by time), the UTC day it starts when it is the first of
/// that day: where the thread shows a day separator.
fn day_starts(thread: &[ThreadItem]) -> Vec<Option<i64>> {
    let mut previous = None;
    thread
        .iter()
        .map(|item| {
            let day = calendar::utc_day(item.at);
            (previous.replace(day) != Some(day)).then_some(day)
        })
        .collect()
}

/// Under a message that was not sent: send it again (while the 24-hour window is open,
/// and only once: a message already retried says so instead), or, when only a template
/// may go now, the way to the template form.
fn failed_actions(session: &Session, v: &ConversationView<'_>, item: &ThreadItem, remaining: i64) -> Markup {
    let Some(ledger) = item.ledger_id else {
        return html! {};
    };
    html! {
        @if item.retried_by.is_some() {
            span.hint.block.retried { "Sent again below." }
        } @else if remaining > 0 && !item.needs_template {
            form.inline.retry method="post" action={ "/app/c/" (v.head.id) "/retry" } {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="key" value=(v.send_key);
                input type="hidden" name="ledger" value=(ledger);
                button.secondary type="submit" { "Retry" }
            }
        } @else if v.templates.is_empty() {
            span.hint.block { "Only an approved template can reach the customer now; none is configured (whatsapp.templates)." }
        } @else {
            a.template href="#template" { "Send a template instead" }
        }
    }
}

pub fn settings(
    session: &Session,
    e: &crate::domain::settings::Effective,
    notice: Option<&str>,
    problem: Option<&str>,
) -> Markup {
    use crate::domain::settings::{SPECS, Source};
    let kill = e.switch("kill_switch");
    layout(
        "Settings",
        Some(session),
        html! {
            section.card {
                h1 { "Live settings" }
                p.hint { "Changes apply to the next customer message, without a restart, and are recorded in the audit log." }
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                @if let Some(p) = problem { p.problem role="alert" { (p) } }
                form.kill method="post" action="/admin/settings" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="key" value="kill_switch";
                    input type="hidden" name="value" value=(if kill { "off" } else { "on" });
                    p { "Kill switch is " strong { (if kill { "ON: the bot is silent; customers get the static reply and every conversation goes to people." } else { "off: the bot answers." }) } }
                    button.danger[!kill] type="submit" { (if kill { "Turn the bot back on" } else { "Stop the bot (kill switch)" }) }
                }
            }
            @for spec in SPECS {
                @if spec.key != "kill_switch" {
                    section.card.setting {
                        form method="post" action="/admin/settings" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            input type="hidden" name="key" value=(spec.key);
                            label {
                                code { (spec.key) }
                                span.hint { " — " (spec.help) }
                                @if spec.key == "router.rules" || spec.key.ends_with("_reply") || spec.key.ends_with("_text") {
                                    textarea name="value" rows=(if spec.key == "router.rules" { 6 } else { 2 }) { (e.get(spec.key)) }
                                } @else {
                                    input type="text" name="value" value=(e.get(spec.key));
                                }
                            }
                            p.hint { "From " (if e.source(spec.key) == Some(Source::Live) { "a live change" } else { "the config file" }) }
                            div.actions {
                                button type="submit" name="action" value="set" { "Save" }
                                @if e.source(spec.key) == Some(Source::Live) { button.secondary type="submit" name="action" value="unset" { "Back to the config file's value" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn knowledge(
    session: &Session,
    docs: &[crate::store::knowledge::DocSummary],
    status: &crate::knowledge::Status,
    query: Option<&str>,
    hits: Option<&[crate::knowledge::Hit]>,
    notice: Option<&str>,
    problem: Option<&str>,
) -> Markup {
    layout(
        "Knowledge base",
        Some(session),
        html! {
            section.card {
                h1 { "Knowledge base" }
                p.hint { (status.documents) " documents, " (status.chunks) " passages; embedder: " (status.embedder) }
                @for w in &status.warnings { p.problem role="alert" { (w) } }
                @if let Some(n) = notice { p.notice role="status" { (n) } }
                @if let Some(p) = problem { p.problem.pre role="alert" { (p) } }
                form method="post" action={ "/admin/kb/upload?csrf=" (session.csrf) } enctype="multipart/form-data" {
                    label { "Add or update files (.md, .txt, .html, .csv, .jsonl, .pdf)" input type="file" name="files" multiple required; }
                    button type="submit" { "Upload" }
                }
            }
            section.card {
                h2 { "Try a search" }
                form.search method="get" action="/admin/kb" role="search" {
                    input type="search" name="q" value=(query.unwrap_or("")) placeholder="A customer's question" aria-label="Search the knowledge base";
                    button type="submit" { "Search" }
                }
                @if let Some(hits) = hits {
                    @if hits.is_empty() { p.empty { "Nothing found." } }
                    ol.hits {
                        @for h in hits {
                            li {
                                strong { (h.title) } " " span.hint { (h.doc_id) "#" (h.chunk_id) @if let Some(sim) = h.similarity { " · similarity " (format!("{sim:.2}")) } }
                                p { (h.text.chars().take(400).collect::<String>()) }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Documents" }
                @if docs.is_empty() { p.empty { "No documents yet." } }
                table {
                    thead { tr { th { "Document" } th { "Passages" } th { "Action" } } }
                    tbody {
                        @for d in docs {
                            tr {
                                td { (d.title) br; span.hint { (d.id) } }
                                td { (d.chunks) }
                                td {
                                    form.inline method="post" action="/admin/kb/remove" {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        input type="hidden" name="doc" value=(d.id);
                                        button.secondary type="submit" aria-label={ "Remove " (d.title) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One series of a chart: its name, its CSS class (colour) and a value per day.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub values: Vec<f64>,
}

/// A small stacked bar chart, one bar per day, as inline SVG (no script), with the
/// numbers in a table for screen readers and for reading exact values.
pub fn chart(
    title: &str,
    days: &[crate::store::dashboard::Day],
    series: &[Series<'_>],
    fmt: &dyn Fn(f64) -> String,
) -> Markup {
    const W: f64 = 280.0;
    const H: f64 = 100.0;
    let n = days.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0.0)).sum())
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let scale = if max > 0.0 { H / max } else { 0.0 };
    let bw = W / n as f64;
    let day_label = |start: i64| {
        let days_since_epoch = start / crate::store::dashboard::DAY_MS;
        let (y, m, d) = crate::domain::calendar::civil(days_since_epoch);
        let _ = y;
        format!(
            "{d} {}",
            [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
            ][(m - 1) as usize]
        )
    };
    html! {
        figure.chart {
            figcaption { strong { (title) } " " span.hint { "max " (fmt(max)) } }
            svg viewBox={ "0 0 " (W) " " (H + 14.0) } role="img" aria-label=(title) {
                @for i in 0..n {
                    @let mut y = H;
                    @for s in series {
                        @let v = s.values.get(i).copied().unwrap_or(0.0) * scale;
                        @if v > 0.0 {
                            @let top = { y -= v; y };
                            rect class=(s.class) x=(format!("{:.1}", i as f64 * bw + 1.0)) y=(format!("{top:.1}")) width=(format!("{:.1}", (bw - 2.0).max(1.0))) height=(format!("{v:.1}")) {}
                        }
                    }
                }
                @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                    text.axis x="0" y=(H + 12.0) { (day_label(first.start)) }
                    text.axis x=(W) y=(H + 12.0) text-anchor="end" { (day_label(last.start)) }
                }
            }
            @if series.len() > 1 {
                p.legend { @for s in series { span class={ "key " (s.class) } {} " " (s.name) " " } }
            }
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th { "Day" } @for s in series { th { (s.name) } } } }
                    tbody { @for (i, d) in days.iter().enumerate() { tr { td { (day_label(d.start)) } @for s in series { td { (fmt(s.values.get(i).copied().unwrap_or(0.0))) } } } } }
                }
            }
        }
    }
}

/// A wait in words: "850 ms", "42 s", "12 min", "3.5 h".
fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1_000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

pub fn dashboard(session: &Session, d: &crate::store::dashboard::Dashboard, paused: Option<&str>) -> Markup {
    let col = |f: &dyn Fn(&crate::store::dashboard::Day) -> f64| d.days.iter().map(f).collect::<Vec<f64>>();
    let count = |v: f64| format!("{v:.0}");
    let usd = |v: f64| format!("${v:.2}");
    let ms = |v: f64| format!("{v:.0} ms");
    let replies: i64 = d.routes.iter().map(|r| r.1).sum();
    let answered: i64 = d.days.iter().map(|x| x.answered).sum();
    let handoffs: i64 = d.days.iter().map(|x| x.handoffs).sum();
    layout(
        "Dashboard",
        Some(session),
        html! {
            (paused_banner(paused))
            section.card {
                h1 { "The last " (d.days.len()) " days" }
                p {
                    (answered) " answered by the bot, " (handoffs) " handed to people"
                    @if answered + handoffs > 0 { " (" (format!("{:.0}", 100.0 * answered as f64 / (answered + handoffs) as f64)) "% resolved by the bot)" }
                    "; model cost " (usd(d.cost_usd)) ", " (format!("${:.4}", d.cost_per_conversation())) " per conversation."
                }
                div.charts {
                    (chart("Customer messages per day", &d.days, &[Series { name: "messages", class: "s1", values: col(&|x| x.inbound as f64) }], &count))
                    (chart("Bot answers and handoffs", &d.days, &[Series { name: "bot answered", class: "s1", values: col(&|x| x.answered as f64) }, Series { name: "handed off", class: "s2", values: col(&|x| x.handoffs as f64) }], &count))
                    (chart("Model cost per day", &d.days, &[Series { name: "USD", class: "s3", values: col(&|x| x.cost_usd) }], &usd))
                    (chart("p95 reply time (engine)", &d.days, &[Series { name: "p95", class: "s4", values: col(&|x| x.p95_ms.unwrap_or(0) as f64) }], &ms))
                }
                h2 { "Soft launch: bot vs people" }
                p { "Conversations that started in these days, by the group soft launch put them in (" code { "soft_launch.percent" } ", " code { "soft_launch.allow" } " in Live settings). \"Customer wrote back\" reads the customer's next text after the first reply with a word list (thanks, useless, 👍, 👎 … in several languages): a rough signal, not a survey." }
                table.launch {
                    thead { tr { th { "group" } th { "started" } th { "resolved, no handoff" } th { "median first reply" } th { "customer wrote back" } } }
                    tbody {
                        @for g in &d.launch {
                            tr data-group=(g.group.as_str()) {
                                td { (match g.group { LaunchGroup::Bot => "bot", LaunchGroup::People => "people" }) }
                                td.conversations { (g.conversations) }
                                td.resolved {
                                    (g.resolved_without_handoff)
                                    @if g.conversations > 0 { " (" (format!("{:.0}", 100.0 * g.resolved_without_handoff as f64 / g.conversations as f64)) "%)" }
                                }
                                td.first-reply data-ms=(g.median_first_reply_ms.map(|m| m.to_string()).unwrap_or_default()) {
                                    (g.median_first_reply_ms.map(duration).unwrap_or_else(|| "-".into()))
                                }
                                td.next data-positive=(g.next_positive) data-negative=(g.next_negative) {
                                    @if g.next_messages == 0 { "-" } @else {
                                        (g.next_messages) ": " (g.next_positive) " positive, " (g.next_negative) " negative"
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Route mix" }
                @if replies == 0 { p.empty { "No replies yet." } }
                ul.routes {
                    @for (route, n) in &d.routes {
                        li {
                            span.route { (route) } " " (n) " (" (format!("{:.0}", 100.0 * *n as f64 / replies.max(1) as f64)) "%)"
                            svg.meter viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label={ (route) " share" } { rect class="s1" x="0" y="0" height="6" width=(format!("{:.1}", 100.0 * *n as f64 / replies.max(1) as f64)) {} }
                        }
                    }
                }
            }
        },
    )
}

/// The account-health panel.
pub fn health(
    session: &Session,
    h: &crate::store::health::HealthSnapshot,
    configured: &[crate::config::TemplateConfig],
    now: i64,
) -> Markup {
    layout(
        "Account health",
        Some(session),
        html! {
            (health_banner(&h.warnings()))
            h1 { "Account health" }
            p.hint { "As Meta's webhooks reported it (phone_number_quality_update, account_update, message_template_* fields)." }
            section.card {
                h2 { "Numbers" }
                @if h.numbers.is_empty() { p.empty { "No quality update received yet." } } @else {
                    table { thead { tr { th { "Number" } th { "Quality rating" } th { "Messaging limit" } th { "Last event" } th { "Updated" } } }
                        tbody { @for n in &h.numbers { tr {
                            td { (n.display_phone_number) }
                            td.rating data-rating=(n.rating.as_str()) { (n.rating.as_str()) }
                            td { (n.limit_tier.as_deref().unwrap_or("—")) }
                            td { (n.last_event) }
                            td { (ago(now, Some(n.updated_at))) }
                        } } }
                    }
                }
            }
            section.card {
                h2 { "Account" }
                @if h.accounts.is_empty() { p.empty { "No account update received yet." } } @else {
                    ul { @for a in &h.accounts { li {
                        (a.waba_id) ": " @if a.restricted { strong { "restricted" } } @else { "not restricted" } " — " (a.detail)
                    } } }
                }
            }
            section.card {
                h2 { "Templates" }
                @if h.templates.is_empty() && configured.is_empty() { p.empty { "No templates." } } @else {
                    table { thead { tr { th { "Template" } th { "Language" } th { "Status" } th { "Reason" } th { "Category" } th { "Quality" } th { "Offered" } } }
                        tbody {
                            @for t in &h.templates { tr {
                                td { (t.name) } td { (t.language) }
                                td { (t.status.map(crate::domain::health::TemplateStatus::as_str).unwrap_or("—")) }
                                td { (t.reason.as_deref().unwrap_or("")) }
                                td { (t.category.as_deref().unwrap_or("")) }
                                td { (t.quality.map(crate::domain::health::QualityRating::as_str).unwrap_or("")) }
                                td { @if t.is_blocked() { "no" } @else { "yes" } }
                            } }
                            @for c in configured.iter().filter(|c| !h.templates.iter().any(|t| t.name == c.name && t.language == c.language)) { tr {
                                td { (c.name) } td { (c.language) } td { "—" } td { "no update from Meta yet" } td {} td {} td { "yes" }
                            } }
                        }
                    }
                }
            }
            section.card {
                h2 { "Recent changes" }
                @if h.recent.is_empty() { p.empty { "None yet." } } @else {
                    ul.changes { @for c in &h.recent { li { (ago(now, Some(c.created_at))) ": " (c.summary) } } }
                }
            }
        },
    )
}
