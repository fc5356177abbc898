//! The conversation page's left column on a wide screen (≥ 1024 px; hidden on a phone):
//! the inbox tab the agent came from (the inbox page leaves it in a cookie, `fd_tab`), its
//! newest conversations, capped so the page stays cheap, the open one marked. The list's
//! markup is the inbox page's own (`pages::conversation_list`). `split.js` (in
//! `assets/app/`) opens another conversation of the column in place and posts the reply
//! and note forms without reloading; `app.js` keeps the column live from `/app/events`.

use maud::{Markup, html};

use axum::http::HeaderMap;

use crate::app::App;
use crate::store::inbox::{ConversationRow, View};

/// At most this many conversations in the column (the inbox page itself shows more).
pub const COLUMN_LIMIT: usize = 50;

/// The tab nobody chose: the inbox page's default (`/app` without `?view=`).
pub const DEFAULT_VIEW: View = View::NeedsHuman;

/// The cookie the inbox page leaves with its tab, for the conversation page's column
/// (the last tab this browser showed; links stay plain `/app/c/ID`).
const TAB_COOKIE: &str = "fd_tab";

/// The Set-Cookie value remembering the inbox tab shown (for the browser session only).
pub fn remember_tab(app: &App, view: View) -> String {
    let secure = if super::secure(app) { "; Secure" } else { "" };
    format!(
        "{TAB_COOKIE}={}; Path=/app; HttpOnly; SameSite=Strict{secure}",
        view.as_str()
    )
}

/// The inbox tab the agent came from (the default tab when the cookie is missing).
pub fn tab_of(headers: &HeaderMap) -> View {
    super::cookie_value(headers, TAB_COOKIE).map_or(DEFAULT_VIEW, View::parse)
}

/// The tab's name, as its tab on the inbox page says it.
fn tab_name(view: View) -> &'static str {
    match view {
        View::NeedsHuman => "Needs a human",
        View::Mine => "Mine",
        View::Unassigned => "Unassigned",
        View::Bot => "Bot handling",
        View::Snoozed => "Snoozed",
        View::Closed => "Closed",
        View::All => "All",
    }
}

/// The column: the tab's name (a link to it) and its list, `current` marked.
pub fn column(view: View, rows: &[ConversationRow], current: i64, now: i64) -> Markup {
    let tab = if view == DEFAULT_VIEW {
        "/app".to_string()
    } else {
        format!("/app?view={}", view.as_str())
    };
    html! {
        nav.split-list aria-label="Conversations of your inbox tab" {
            h2 { a href=(tab) { (tab_name(view)) } }
            div.split-rows {
                @if rows.is_empty() {
                    p.empty { "Nothing here." }
                } @else {
                    (super::pages::conversation_list(rows, view, now, Some(current), None))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tab_comes_back_from_its_cookie() {
        for v in View::ALL {
            let mut headers = HeaderMap::new();
            let cookie = format!("fd_session=abc; {TAB_COOKIE}={}", v.as_str());
            headers.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
            assert_eq!(tab_of(&headers), v, "{}", tab_name(v));
        }
        assert_eq!(tab_of(&HeaderMap::new()), DEFAULT_VIEW);
    }
}
