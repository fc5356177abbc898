//! The inbox search's extras: each result row shows the matching customer message as a
//! snippet with the match marked, linking to that message in its thread
//! (`/app/c/{id}?m={message}#m{message}`), and the conversation page opens on the page
//! of the thread holding it. The snippet is built from escaped segments
//! (`domain::snippet`): maud escapes each one, a match inside `<mark>`; no HTML is made
//! from customer text.

use std::collections::HashMap;

use maud::{Markup, html};

use crate::app::App;
use crate::domain::snippet;
use crate::error::Result;
use crate::store::search::Hit;

/// Characters of a message a result row shows.
const SNIPPET_CHARS: usize = 160;

/// A search's matching messages, per listed conversation, with the query's words.
#[derive(Debug, Default)]
pub struct Found {
    pub hits: HashMap<i64, Hit>,
    pub words: Vec<String>,
}

impl Found {
    /// What `q` found: the hits `store::search::hits` read for the listed conversations.
    pub fn new(q: &str, hits: HashMap<i64, Hit>) -> Found {
        Found {
            hits,
            words: snippet::query_words(q),
        }
    }

    /// The row's matching message, linked to its place in the thread, or nothing.
    pub fn row(&self, conversation: i64) -> Option<Markup> {
        let hit = self.hits.get(&conversation)?;
        let segments = snippet::snippet(&hit.text, &self.words, SNIPPET_CHARS);
        let id = hit.message_id;
        Some(html! {
            a.hit href={ "/app/c/" (conversation) "?m=" (id) "#m" (id) } dir="auto" {
                span.sr { "Matching message: " }
                @for s in &segments {
                    @if s.matched { mark { (s.text) } } @else { (s.text) }
                }
            }
        })
    }
}

/// The `before` cursor of the thread page holding customer message `message` of
/// conversation `id` (`None`: the newest page, or not this conversation's message).
pub async fn page_of(app: &App, id: i64, message: i64) -> Result<Option<i64>> {
    Ok(app
        .store
        .read(move |c| crate::store::search::page_of(c, id, message))
        .await?
        .flatten())
}
