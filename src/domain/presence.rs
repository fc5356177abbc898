//! Who else has a conversation open, and who is typing in it: the collision warning's
//! memory. Kept in memory only (`App::presence`), fed by the conversation page's
//! heartbeats; an entry not renewed within the time to live is gone. Pure: time is
//! passed in.
//!
//! Bounded three ways, so a buggy or hostile page cannot grow it: one entry per user and
//! conversation (a second tab renews the same entry); at most `PER_CONVERSATION` people
//! in one conversation (a desk is 2–10 agents, so more are not real viewers — a newcomer
//! past that is not listed, the others keep working); at most `PER_USER` conversations per
//! person (a few open tabs; opening one more forgets that person's least recently seen
//! one, so nobody's tabs can push anybody else out); and at most `TOTAL` entries overall
//! (only reached by a desk of over `TOTAL / PER_USER` people at once; then expired entries
//! are swept and, if still full, a newcomer is not listed). About 100 bytes an entry.
//!
//! Heartbeats are rate-limited per user and conversation (`MIN_BEAT_MS`): each accepted
//! one can change what every watching page is sent, so a page beating faster is told to
//! wait; becoming "typing" and leaving are always taken at once.

use std::collections::HashMap;

/// People listed in one conversation at most.
pub const PER_CONVERSATION: usize = 16;
/// Conversations one person is listed in at most.
pub const PER_USER: usize = 8;
/// Entries overall at most.
pub const TOTAL: usize = 1024;
/// Accepted heartbeats of one user in one conversation are at least this far apart.
pub const MIN_BEAT_MS: i64 = 1_000;
/// A "typing" heartbeat shows its sender as typing this long; an agent who sends within
/// this long of another's keystrokes is warned first.
pub const TYPING_MS: i64 = 8_000;

/// What a heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// The page is open.
    Viewing,
    /// The page is open and its composer just changed.
    Typing,
    /// The page was closed or left.
    Gone,
}

impl Activity {
    pub fn parse(s: &str) -> Option<Activity> {
        match s {
            "viewing" => Some(Activity::Viewing),
            "typing" => Some(Activity::Typing),
            "gone" => Some(Activity::Gone),
            _ => None,
        }
    }
}

/// Why a heartbeat was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too soon after the last one; try again after this many ms.
    TooSoon(i64),
    /// The conversation or the board is full; this person is not listed.
    Full,
}

/// Someone else on a conversation, as another viewer sees them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Viewer {
    /// Their email (the name the desk knows them by).
    pub name: String,
    /// They typed within the last `TYPING_MS`.
    pub typing: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    user_id: i64,
    name: String,
    seen_at: i64,
    typed_at: Option<i64>,
    /// The last accepted heartbeat (the rate limit's clock).
    beat_at: i64,
}

impl Entry {
    fn typing(&self, now: i64) -> bool {
        self.typed_at.is_some_and(|t| now - t < TYPING_MS)
    }
}

/// Everyone present, by conversation.
#[derive(Debug)]
pub struct Board {
    ttl_ms: i64,
    entries: HashMap<i64, Vec<Entry>>,
    total: usize,
}

impl Board {
    /// An empty board whose entries live `ttl_ms` after their last heartbeat.
    pub fn new(ttl_ms: i64) -> Board {
        Board {
            ttl_ms: ttl_ms.max(1),
            entries: HashMap::new(),
            total: 0,
        }
    }

    /// How many entries it holds (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Takes a heartbeat of `user_id` (known as `name`) on `conversation`.
    pub fn beat(
        &mut self,
        conversation: i64,
        user_id: i64,
        name: &str,
        activity: Activity,
        now: i64,
    ) -> Result<(), Refused> {
        let ttl = self.ttl_ms;
        if activity == Activity::Gone {
            self.remove(conversation, user_id);
            return Ok(());
        }
        let list = self.entries.entry(conversation).or_default();
        let before = list.len();
        list.retain(|e| now - e.seen_at < ttl);
        self.total -= before - list.len();
        if let Some(e) = list.iter_mut().find(|e| e.user_id == user_id) {
            let starts_typing = activity == Activity::Typing && !e.typing(now);
            if now - e.beat_at < MIN_BEAT_MS && !starts_typing {
                return Err(Refused::TooSoon(MIN_BEAT_MS - (now - e.beat_at)));
            }
            e.seen_at = now;
            e.beat_at = now;
            if activity == Activity::Typing {
                e.typed_at = Some(now);
            }
            return Ok(());
        }
        if list.len() >= PER_CONVERSATION {
            return Err(Refused::Full);
        }
        // One more conversation for this person: their least recently seen one goes
        // when they already fill their share.
        let theirs: Vec<(i64, i64)> = self
            .entries
            .iter()
            .flat_map(|(c, l)| l.iter().filter(|e| e.user_id == user_id).map(|e| (e.seen_at, *c)))
            .collect();
        if theirs.len() >= PER_USER
            && let Some(&(_, oldest)) = theirs.iter().min()
        {
            self.remove(oldest, user_id);
        }
        if self.total >= TOTAL {
            self.sweep(now);
            if self.total >= TOTAL {
                return Err(Refused::Full);
            }
        }
        self.entries.entry(conversation).or_default().push(Entry {
            user_id,
            name: name.to_string(),
            seen_at: now,
            typed_at: (activity == Activity::Typing).then_some(now),
            beat_at: now,
        });
        self.total += 1;
        Ok(())
    }

    /// Everyone but `user_id` present on `conversation` now, by name.
    pub fn others(&self, conversation: i64, user_id: i64, now: i64) -> Vec<Viewer> {
        let mut out: Vec<Viewer> = self
            .entries
            .get(&conversation)
            .into_iter()
            .flatten()
            .filter(|e| e.user_id != user_id && now - e.seen_at < self.ttl_ms)
            .map(|e| Viewer {
                name: e.name.clone(),
                typing: e.typing(now),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// `user_id` sent their reply: no longer typing (they stay listed as viewing).
    pub fn sent(&mut self, conversation: i64, user_id: i64) {
        if let Some(e) = self
            .entries
            .get_mut(&conversation)
            .and_then(|l| l.iter_mut().find(|e| e.user_id == user_id))
        {
            e.typed_at = None;
        }
    }

    fn remove(&mut self, conversation: i64, user_id: i64) {
        if let Some(list) = self.entries.get_mut(&conversation) {
            let before = list.len();
            list.retain(|e| e.user_id != user_id);
            self.total -= before - list.len();
            if list.is_empty() {
                self.entries.remove(&conversation);
            }
        }
    }

    /// Drops every expired entry.
    pub fn sweep(&mut self, now: i64) {
        let ttl = self.ttl_ms;
        self.entries.retain(|_, list| {
            list.retain(|e| now - e.seen_at < ttl);
            !list.is_empty()
        });
        self.total = self.entries.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = 30_000;

    fn names(v: &[Viewer]) -> Vec<(&str, bool)> {
        v.iter().map(|v| (v.name.as_str(), v.typing)).collect()
    }

    #[test]
    fn others_see_viewing_then_typing_then_nothing() {
        let mut b = Board::new(TTL);
        b.beat(7, 1, "dana@shop.example", Activity::Viewing, 0).unwrap();
        b.beat(7, 2, "sam@shop.example", Activity::Viewing, 10).unwrap();
        assert_eq!(names(&b.others(7, 2, 100)), [("dana@shop.example", false)]);
        assert_eq!(names(&b.others(7, 1, 100)), [("sam@shop.example", false)]);
        assert!(b.others(8, 2, 100).is_empty(), "another conversation");
        // Dana types: Sam sees it for TYPING_MS.
        b.beat(7, 1, "dana@shop.example", Activity::Typing, 500).unwrap();
        assert_eq!(names(&b.others(7, 2, 600)), [("dana@shop.example", true)]);
        assert_eq!(names(&b.others(7, 2, 500 + TYPING_MS)), [("dana@shop.example", false)]);
        // She sends: no longer typing at once.
        b.beat(7, 1, "dana@shop.example", Activity::Typing, 2_000).unwrap();
        b.sent(7, 1);
        assert_eq!(names(&b.others(7, 2, 2_100)), [("dana@shop.example", false)]);
        // Without a heartbeat she is gone after the time to live.
        assert!(b.others(7, 2, 2_000 + TTL).is_empty());
        // Leaving the page removes her at once.
        b.beat(7, 1, "dana@shop.example", Activity::Viewing, 40_000).unwrap();
        b.beat(7, 1, "dana@shop.example", Activity::Gone, 40_001).unwrap();
        assert!(b.others(7, 2, 40_002).is_empty());
    }

    #[test]
    fn heartbeats_are_rate_limited_except_starting_to_type() {
        let mut b = Board::new(TTL);
        b.beat(1, 1, "a", Activity::Viewing, 0).unwrap();
        assert_eq!(b.beat(1, 1, "a", Activity::Viewing, 300), Err(Refused::TooSoon(700)));
        // Starting to type is news: taken at once.
        b.beat(1, 1, "a", Activity::Typing, 400).unwrap();
        // Still typing: nothing new until the limit passes.
        assert_eq!(b.beat(1, 1, "a", Activity::Typing, 900), Err(Refused::TooSoon(500)));
        b.beat(1, 1, "a", Activity::Typing, 1_400).unwrap();
        assert_eq!(b.len(), 1, "one entry per user and conversation");
    }

    #[test]
    fn the_board_is_bounded_per_conversation_per_user_and_overall() {
        let mut b = Board::new(TTL);
        for u in 0..PER_CONVERSATION as i64 {
            b.beat(1, u, &format!("u{u}"), Activity::Viewing, 0).unwrap();
        }
        assert_eq!(b.beat(1, 999, "late", Activity::Viewing, 0), Err(Refused::Full));
        assert_eq!(b.others(1, 999, 1).len(), PER_CONVERSATION);
        // Once they expire there is room again.
        b.beat(1, 999, "late", Activity::Viewing, TTL).unwrap();
        assert_eq!(b.others(1, -1, TTL).len(), 1);

        // One person in many conversations: only their newest PER_USER stay listed.
        let mut b = Board::new(TTL);
        for c in 0..(PER_USER as i64 + 3) {
            b.beat(c, 5, "tabs", Activity::Viewing, c).unwrap();
        }
        assert_eq!(b.len(), PER_USER);
        assert!(b.others(0, 1, 100).is_empty(), "the oldest tab was forgotten");
        assert_eq!(b.others(PER_USER as i64 + 2, 1, 100).len(), 1);

        // Overall: many people, each within their share, fill it; then newcomers wait
        // until entries expire.
        let mut b = Board::new(TTL);
        let mut n = 0;
        'fill: for user in 0.. {
            for c in 0..PER_USER as i64 {
                if b.len() == TOTAL {
                    break 'fill;
                }
                b.beat(user * 100 + c, user, "x", Activity::Viewing, 0).unwrap();
                n += 1;
            }
        }
        assert_eq!(n, TOTAL);
        assert_eq!(b.beat(-5, -5, "new", Activity::Viewing, 1), Err(Refused::Full));
        b.beat(-5, -5, "new", Activity::Viewing, TTL).unwrap();
        assert_eq!(b.len(), 1, "the sweep dropped the expired entries");
    }
}
