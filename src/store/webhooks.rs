//! The outbound-webhook outbox: an event is written here, one row per subscribed
//! endpoint, inside the same transaction as the change it reports (a handoff, an
//! assignment, a stored message, a send outcome, a health change), so a committed change
//! never loses its event. Rows of one endpoint and ordering key go out in id order: only
//! the oldest undelivered row of a line gets a queue job (`unqueued_heads`); a dead one
//! holds the rest of its line until it is retried (`frontdesk queue retry`).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::domain::webhook::EventKind;
use crate::error::Result;

/// An endpoint as the store knows it (its URL and secret stay in the config).
pub struct EndpointRow<'a> {
    pub name: &'a str,
    /// Event types it receives; empty: all.
    pub events: &'a [String],
    pub max_pending: u32,
}

/// Makes the stored endpoints those of the config: new ones added, changed subscriptions
/// and caps updated, removed ones deleted with their undelivered events (they have nowhere
/// to go). Returns how many undelivered events were dropped that way.
pub fn sync_endpoints(conn: &Connection, endpoints: &[EndpointRow<'_>]) -> Result<usize> {
    let names: Vec<&str> = endpoints.iter().map(|e| e.name).collect();
    let mut dropped = 0;
    let stored: Vec<String> = conn
        .prepare("SELECT name FROM webhook_endpoints")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for old in stored.iter().filter(|s| !names.contains(&s.as_str())) {
        dropped += conn.execute(
            "DELETE FROM webhook_deliveries WHERE endpoint = ?1 AND state <> 'delivered'",
            [old],
        )?;
        conn.execute("DELETE FROM webhook_endpoints WHERE name = ?1", [old])?;
    }
    for e in endpoints {
        let events = if e.events.is_empty() {
            "*".to_string()
        } else {
            format!(",{},", e.events.join(","))
        };
        conn.execute(
            "INSERT INTO webhook_endpoints (name, events, max_pending) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET events = ?2, max_pending = ?3",
            params![e.name, events, e.max_pending],
        )?;
    }
    conn.execute(
        "UPDATE webhook_endpoints SET pending =
           (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = webhook_endpoints.name AND d.state <> 'delivered')",
        [],
    )?;
    Ok(dropped)
}

/// Records an event of `kind` for every endpoint that takes it and has room, in the
/// caller's transaction. `data` is built only when some endpoint takes it. Returns how
/// many deliveries were written.
pub fn record(
    conn: &Connection,
    kind: EventKind,
    ordering_key: &str,
    data: impl FnOnce() -> Result<Value>,
) -> Result<usize> {
    let kind_pattern = format!(",{},", kind.as_str());
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET dropped = dropped + 1
         WHERE pending >= max_pending AND (events = '*' OR instr(events, ?1) > 0)",
    )?
    .execute([&kind_pattern])?;
    let takers: Vec<String> = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET pending = pending + 1
             WHERE pending < max_pending AND (events = '*' OR instr(events, ?1) > 0) RETURNING name",
        )?
        .query_map([&kind_pattern], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if takers.is_empty() {
        return Ok(0);
    }
    let now = crate::domain::now_ms();
    let event_id = format!("evt_{:032x}", rand::random::<u128>());
    let body = json!({
        "id": event_id,
        "type": kind.as_str(),
        "created_at_ms": now,
        "data": data()?,
    })
    .to_string();
    for endpoint in &takers {
        conn.execute(
            "INSERT INTO webhook_deliveries (endpoint, event_id, kind, ordering_key, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![endpoint, event_id, kind.as_str(), ordering_key, body, now],
        )?;
    }
    Ok(takers.len())
}

/// Records a conversation's event: `data` is `extra` plus the conversation id, the
/// business number and the contact.
pub fn record_for_conversation(
    conn: &Connection,
    kind: EventKind,
    conversation_id: i64,
    extra: Value,
) -> Result<usize> {
    record(conn, kind, &format!("conversation:{conversation_id}"), || {
        let (phone_number_id, wa_id, user_id, name): (String, Option<String>, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT c.phone_number_id, k.wa_id, k.user_id, k.name
                 FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = ?1",
                [conversation_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .unwrap_or_default();
        let mut data = json!({
            "conversation_id": conversation_id,
            "phone_number_id": phone_number_id,
            "contact": { "wa_id": wa_id.filter(|s| !s.is_empty()), "user_id": user_id.filter(|s| !s.is_empty()), "name": name },
        });
        if let (Some(d), Value::Object(extra)) = (data.as_object_mut(), extra) {
            d.extend(extra);
        }
        Ok(data)
    })
}

/// The oldest undelivered row of each line that has no job yet (at most `limit`, oldest
/// first): the rows whose jobs may be queued now.
pub fn unqueued_heads(conn: &Connection, limit: usize) -> Result<Vec<i64>> {
    Ok(conn
        .prepare(
            "SELECT d.id FROM webhook_deliveries d
             WHERE d.state = 'pending' AND d.queued = 0
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                               WHERE e.endpoint = d.endpoint AND e.ordering_key = d.ordering_key
                                 AND e.state <> 'delivered' AND e.id < d.id)
             ORDER BY d.id LIMIT ?1",
        )?
        .query_map([limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Notes that these rows' jobs are in the queue.
pub fn mark_queued(conn: &Connection, ids: &[i64], queued: bool) -> Result<()> {
    let mut st = conn.prepare("UPDATE webhook_deliveries SET queued = ?2 WHERE id = ?1")?;
    for id in ids {
        st.execute(params![id, queued])?;
    }
    Ok(())
}

/// One delivery as the worker needs it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub endpoint: String,
    pub event_id: String,
    pub kind: String,
    pub body: String,
    pub delivered: bool,
    /// An earlier event of its line is not delivered yet.
    pub behind_earlier: bool,
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Delivery>> {
    Ok(conn
        .query_row(
            "SELECT d.id, d.endpoint, d.event_id, d.kind, d.body, d.state = 'delivered',
                    EXISTS (SELECT 1 FROM webhook_deliveries e
                            WHERE e.endpoint = d.endpoint AND e.ordering_key = d.ordering_key
                              AND e.state <> 'delivered' AND e.id < d.id)
             FROM webhook_deliveries d WHERE d.id = ?1",
            [id],
            |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    endpoint: r.get(1)?,
                    event_id: r.get(2)?,
                    kind: r.get(3)?,
                    body: r.get(4)?,
                    delivered: r.get(5)?,
                    behind_earlier: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// The receiver took it: the row leaves its endpoint's pending count.
pub fn mark_delivered(conn: &Connection, id: i64, now: i64) -> Result<()> {
    let endpoint: Option<String> = conn
        .query_row(
            "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?2, attempts = attempts + 1, last_error = NULL
             WHERE id = ?1 AND state <> 'delivered' RETURNING endpoint",
            params![id, now],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(e) = endpoint {
        conn.execute(
            "UPDATE webhook_endpoints SET pending = MAX(pending - 1, 0) WHERE name = ?1",
            [e],
        )?;
    }
    Ok(())
}

/// An attempt failed with `error`; `dead`: it was the last one (the line waits behind it).
pub fn mark_attempt_failed(conn: &Connection, id: i64, error: &str, dead: bool) -> Result<()> {
    conn.execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?2,
           state = CASE WHEN ?3 THEN 'dead' ELSE state END
         WHERE id = ?1 AND state <> 'delivered'",
        params![id, error, dead],
    )?;
    Ok(())
}

/// Forgets the events of a conversation whose contact is erased (their bodies hold the
/// contact's number and messages).
pub fn erase_conversation(conn: &Connection, conversation_id: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE ordering_key = ?1",
        [format!("conversation:{conversation_id}")],
    )?;
    conn.execute(
        "UPDATE webhook_endpoints SET pending =
           (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = webhook_endpoints.name AND d.state <> 'delivered')",
        [],
    )?;
    Ok(())
}

/// Deletes up to `limit` rows delivered before `before_ms`; returns how many.
pub fn prune_delivered(conn: &Connection, before_ms: i64, limit: usize) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM webhook_deliveries WHERE id IN
           (SELECT id FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?1 LIMIT ?2)",
        params![before_ms, limit as i64],
    )?)
}

/// Per endpoint: (name, undelivered, dropped for want of room).
pub fn endpoint_counts(conn: &Connection) -> Result<Vec<(String, i64, i64)>> {
    Ok(conn
        .prepare("SELECT name, pending, dropped FROM webhook_endpoints ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(crate::store::Store::open(&path).unwrap());
        let c = crate::store::connect(&path).unwrap();
        (dir, c)
    }

    fn add(c: &Connection, key: &str) -> usize {
        record(c, EventKind::AccountHealthChanged, key, || Ok(json!({}))).unwrap()
    }

    #[test]
    fn only_the_oldest_undelivered_event_of_a_line_is_queued_and_a_dead_one_holds_its_line() {
        let (_dir, c) = db();
        let all: Vec<String> = Vec::new();
        sync_endpoints(
            &c,
            &[EndpointRow {
                name: "a",
                events: &all,
                max_pending: 10,
            }],
        )
        .unwrap();
        assert_eq!(add(&c, "k1"), 1);
        add(&c, "k1");
        add(&c, "k2");
        let heads = unqueued_heads(&c, 10).unwrap();
        assert_eq!(heads, vec![1, 3]);
        mark_queued(&c, &heads, true).unwrap();
        assert!(unqueued_heads(&c, 10).unwrap().is_empty());
        assert!(get(&c, 2).unwrap().unwrap().behind_earlier);
        // Dead: the line waits.
        mark_attempt_failed(&c, 1, "500", true).unwrap();
        assert!(unqueued_heads(&c, 10).unwrap().is_empty());
        // Retried and delivered: the next one's turn.
        mark_delivered(&c, 1, 5).unwrap();
        assert_eq!(unqueued_heads(&c, 10).unwrap(), vec![2]);
    }

    #[test]
    fn an_endpoint_takes_only_its_types_and_at_most_its_cap() {
        let (_dir, c) = db();
        let handoffs = vec!["conversation.handed_off".to_string()];
        let all: Vec<String> = Vec::new();
        sync_endpoints(
            &c,
            &[
                EndpointRow {
                    name: "few",
                    events: &handoffs,
                    max_pending: 10,
                },
                EndpointRow {
                    name: "small",
                    events: &all,
                    max_pending: 2,
                },
            ],
        )
        .unwrap();
        assert_eq!(add(&c, "k"), 1);
        add(&c, "k");
        assert_eq!(add(&c, "k"), 0, "full");
        let counts = endpoint_counts(&c).unwrap();
        assert_eq!(counts, vec![("few".into(), 0, 0), ("small".into(), 2, 1)]);
        // Removing an endpoint drops what it had waiting.
        assert_eq!(
            sync_endpoints(
                &c,
                &[EndpointRow {
                    name: "few",
                    events: &handoffs,
                    max_pending: 10
                }]
            )
            .unwrap(),
            2
        );
    }
}
