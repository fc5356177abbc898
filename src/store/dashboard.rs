//! The admin dashboard's numbers: per day, customer messages, bot answers, handoffs, model
//! cost and p95 reply time; over the whole window, the route mix, cost per conversation and
//! the soft-launch groups' outcomes side by side (with how the customer wrote back).

use rusqlite::{Connection, params};

use crate::domain::sentiment::{self, Sentiment};
use crate::domain::soft_launch::LaunchGroup;
use crate::error::Result;

pub const DAY_MS: i64 = 86_400_000;

/// One day (UTC).
#[derive(Debug, Clone, Default)]
pub struct Day {
    /// Start of the day, Unix ms.
    pub start: i64,
    pub inbound: i64,
    pub answered: i64,
    pub handoffs: i64,
    pub cost_usd: f64,
    /// p95 of the engine's total time per reply, ms.
    pub p95_ms: Option<i64>,
}

/// One soft-launch group's outcomes over the window: the conversations that started in it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFigures {
    pub group: LaunchGroup,
    /// Conversations started in the window.
    pub conversations: i64,
    /// Of those, answered (a message went out) and never handed off.
    pub resolved_without_handoff: i64,
    /// Median time from the customer's first message to the first reply queued (bot or
    /// person), ms; `None` before any reply.
    pub median_first_reply_ms: Option<i64>,
    /// How the customer's next message after the first reply read (a word-list reading,
    /// `domain::sentiment`): conversations where the customer wrote again, and of those
    /// how many read positive and negative.
    pub next_messages: i64,
    pub next_positive: i64,
    pub next_negative: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub days: Vec<Day>,
    /// Soft launch: the bot's group, then the people's.
    pub launch: Vec<GroupFigures>,
    /// Replies per route (commodity, reasoning, handoff, rule, none).
    pub routes: Vec<(String, i64)>,
    pub conversations: i64,
    pub cost_usd: f64,
}

impl Dashboard {
    pub fn cost_per_conversation(&self) -> f64 {
        if self.conversations == 0 {
            0.0
        } else {
            self.cost_usd / self.conversations as f64
        }
    }
}

/// The last `days` days up to `now`.
pub fn dashboard(conn: &Connection, now: i64, days: usize) -> Result<Dashboard> {
    let first = (now / DAY_MS - days as i64 + 1) * DAY_MS;
    let mut d = Dashboard {
        days: (0..days as i64)
            .map(|i| Day {
                start: first + i * DAY_MS,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let index = |at: i64| ((at - first) / DAY_MS) as usize;
    let mut st = conn.prepare_cached("SELECT created_at / 86400000 * 86400000, COUNT(*) FROM messages WHERE direction = 'in' AND created_at >= ?1 GROUP BY 1")?;
    for r in st.query_map([first], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
        let (day, n) = r?;
        if let Some(slot) = d.days.get_mut(index(day)) {
            slot.inbound = n;
        }
    }
    let mut st = conn.prepare_cached(
        "SELECT created_at, outcome, route, cost_usd, CAST(json_extract(stages_json, '$.total') AS INTEGER), conversation_id
         FROM reply_traces WHERE created_at >= ?1",
    )?;
    let mut totals: Vec<Vec<i64>> = vec![Vec::new(); days];
    let mut routes: std::collections::BTreeMap<String, i64> = Default::default();
    let mut conversations = std::collections::HashSet::new();
    for r in st.query_map(params![first], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, f64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })? {
        let (at, outcome, route, cost, total, conv) = r?;
        let i = index(at);
        let Some(day) = d.days.get_mut(i) else { continue };
        match outcome.as_str() {
            "answered" => day.answered += 1,
            "handoff" => day.handoffs += 1,
            _ => {}
        }
        day.cost_usd += cost;
        d.cost_usd += cost;
        if outcome == "answered" || outcome == "handoff" {
            *routes.entry(route).or_default() += 1;
            conversations.insert(conv);
            if let Some(t) = total {
                totals[i].push(t);
            }
        }
    }
    for (day, mut t) in d.days.iter_mut().zip(totals) {
        if !t.is_empty() {
            t.sort_unstable();
            day.p95_ms = Some(t[((t.len() - 1) as f64 * 0.95).round() as usize]);
        }
    }
    d.routes = routes.into_iter().collect();
    d.conversations = conversations.len() as i64;
    d.launch = launch_figures(conn, first)?;
    Ok(d)
}

/// Both soft-launch groups' figures for conversations started since `since` (Unix ms).
/// Conversations from before soft launch existed count as the bot's.
pub fn launch_figures(conn: &Connection, since: i64) -> Result<Vec<GroupFigures>> {
    let mut st = conn.prepare_cached(
        "SELECT c.launch_group,
                EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = c.id),
                (SELECT MIN(m.created_at) FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in'),
                (SELECT MIN(o.created_at) FROM outbound o WHERE o.conversation_id = c.id),
                (SELECT m.text FROM messages m
                  WHERE m.conversation_id = c.id AND m.direction = 'in' AND m.kind = 'text'
                    AND m.created_at > (SELECT MIN(o.created_at) FROM outbound o WHERE o.conversation_id = c.id)
                  ORDER BY m.id LIMIT 1)
         FROM conversations c WHERE c.created_at >= ?1",
    )?;
    let mut out: Vec<(GroupFigures, Vec<i64>)> = [LaunchGroup::Bot, LaunchGroup::People]
        .into_iter()
        .map(|group| {
            (
                GroupFigures {
                    group,
                    conversations: 0,
                    resolved_without_handoff: 0,
                    median_first_reply_ms: None,
                    next_messages: 0,
                    next_positive: 0,
                    next_negative: 0,
                },
                Vec::new(),
            )
        })
        .collect();
    for r in st.query_map([since], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })? {
        let (group, handed_off, first_in, first_out, next) = r?;
        let group = LaunchGroup::parse(group.as_deref());
        let Some((figures, waits)) = out.iter_mut().find(|(f, _)| f.group == group) else {
            continue;
        };
        figures.conversations += 1;
        if first_out.is_some() && !handed_off {
            figures.resolved_without_handoff += 1;
        }
        if let (Some(i), Some(o)) = (first_in, first_out) {
            waits.push((o - i).max(0));
        }
        if let Some(text) = next {
            figures.next_messages += 1;
            match sentiment::read(&text) {
                Sentiment::Positive => figures.next_positive += 1,
                Sentiment::Negative => figures.next_negative += 1,
                Sentiment::Neutral => {}
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|(mut f, waits)| {
            f.median_first_reply_ms = median(waits);
            f
        })
        .collect())
}

/// The median (the lower middle one of an even count); `None` for none.
fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_median_is_the_lower_middle() {
        assert_eq!(super::median(vec![]), None);
        assert_eq!(super::median(vec![5]), Some(5));
        assert_eq!(super::median(vec![9, 1, 5]), Some(5));
        assert_eq!(super::median(vec![4, 1, 3, 2]), Some(2));
    }
}
