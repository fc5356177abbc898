//! The dedupe keys of one webhook delivery: every message id and every (status id,
//! state) in every entry and change, plus a body hash when the delivery carries
//! anything else. A delivery whose keys were all seen before is a duplicate.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keys for `body`. Never empty: an unparseable or keyless body is keyed by its hash.
pub fn dedupe_keys(body: &[u8]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut needs_body_key = false;
    match serde_json::from_slice::<Value>(body) {
        Ok(root) => {
            let changes = root
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| e.get("changes").and_then(Value::as_array).into_iter().flatten());
            let mut any_change = false;
            for change in changes {
                any_change = true;
                let value = change.get("value");
                let mut keyed = false;
                for m in array(value, "messages") {
                    if let Some(id) = m.get("id").and_then(Value::as_str) {
                        keys.push(format!("m:{id}"));
                        keyed = true;
                    } else {
                        needs_body_key = true;
                    }
                }
                for s in array(value, "statuses") {
                    match (
                        s.get("id").and_then(Value::as_str),
                        s.get("status").and_then(Value::as_str),
                    ) {
                        (Some(id), Some(st)) => {
                            keys.push(format!("s:{id}:{st}"));
                            keyed = true;
                        }
                        _ => needs_body_key = true,
                    }
                }
                if !keyed || value.and_then(|v| v.get("errors")).is_some() {
                    needs_body_key = true;
                }
            }
            if !any_change {
                needs_body_key = true;
            }
        }
        Err(_) => needs_body_key = true,
    }
    if needs_body_key {
        keys.push(format!("b:{}", hex::encode(Sha256::digest(body))));
    }
    keys.sort();
    keys.dedup();
    keys
}

fn array<'a>(value: Option<&'a Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .and_then(|v| v.get(key))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_status_keys() {
        let body = br#"{"entry":[{"changes":[{"value":{"messages":[{"id":"w1"},{"id":"w2"}]}},
            {"value":{"statuses":[{"id":"o1","status":"read"}]}}]}]}"#;
        assert_eq!(dedupe_keys(body), vec!["m:w1", "m:w2", "s:o1:read"]);
    }

    #[test]
    fn keyless_and_broken_bodies_use_the_hash() {
        for body in [
            &b"not json"[..],
            br#"{"entry":[{"changes":[{"field":"account_update","value":{}}]}]}"#,
            b"{}",
        ] {
            let keys = dedupe_keys(body);
            assert_eq!(keys.len(), 1);
            assert!(keys[0].starts_with("b:"));
        }
    }
}
