//! Turns a webhook body into domain events. Tolerant by design: every entry, change,
//! message and status is visited; anything not understood becomes `Unhandled` with
//! the raw JSON, never an error that would make Meta retry.

use serde_json::Value;

use crate::domain::delivery::DeliveryState;
use crate::domain::event::{ContactProfile, StatusUpdate, WebhookEvent};
use crate::domain::message::{
    InboundMessage, Media, MediaType, MessageContext, MessageKind, OrderItem, SharedContact, WhatsAppError,
};

/// Every event in `body`. A body that is not JSON gives one `Unhandled` event.
pub fn parse_webhook(body: &[u8]) -> Vec<WebhookEvent> {
    let root: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return vec![WebhookEvent::Unhandled {
                reason: format!("body is not valid JSON: {e}"),
                raw: Value::String(String::from_utf8_lossy(body).into_owned()),
            }];
        }
    };
    let mut out = Vec::new();
    let object = str_of(&root, "object");
    if object != Some("whatsapp_business_account") {
        out.push(unhandled(
            format!("object is {:?}, not whatsapp_business_account", object),
            &root,
        ));
        return out;
    }
    let entries = root.get("entry").and_then(Value::as_array);
    let Some(entries) = entries else {
        out.push(unhandled("no entry[] array".into(), &root));
        return out;
    };
    for entry in entries {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            out.push(unhandled("entry without changes[]".into(), entry));
            continue;
        };
        let waba_id = match entry.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        for change in changes {
            parse_change(&waba_id, change, &mut out);
        }
    }
    out
}

fn parse_change(waba_id: &str, change: &Value, out: &mut Vec<WebhookEvent>) {
    let field = str_of(change, "field").unwrap_or("");
    let value = change.get("value").unwrap_or(&Value::Null);
    if let Some(parsed) = super::parse_health::health_event(field, value) {
        out.push(match parsed {
            Some(health) => WebhookEvent::Health {
                waba_id: waba_id.to_string(),
                health,
            },
            None => unhandled(format!("{field} change without the fields it needs"), change),
        });
        return;
    }
    if field != "messages" {
        out.push(unhandled(format!("webhook field {field:?} is not handled"), change));
        return;
    }
    let phone_number_id = value
        .pointer("/metadata/phone_number_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let contacts: Vec<ContactProfile> = arr(value, "contacts").map(contact_profile).collect();
    // A sender known only by the contact's BSUID (`contacts[].user_id`, no `from` and no
    // `from_user_id`): the one contact of the change is the sender.
    let only_contact = (contacts.len() == 1).then(|| &contacts[0]);
    for m in arr(value, "messages") {
        match inbound_message(m, only_contact) {
            Some(message) => {
                let contact = contacts
                    .iter()
                    .find(|c| {
                        (!c.wa_id.is_empty() && c.wa_id == message.from)
                            || (c.user_id.is_some() && c.user_id == message.from_user_id)
                    })
                    .or_else(|| (contacts.len() == 1).then(|| &contacts[0]))
                    .cloned()
                    .unwrap_or_else(|| ContactProfile {
                        wa_id: message.from.clone(),
                        ..Default::default()
                    });
                out.push(WebhookEvent::Message {
                    phone_number_id: phone_number_id.clone(),
                    contact,
                    message,
                });
            }
            None => out.push(unhandled("message without id, from or timestamp".into(), m)),
        }
    }
    for s in arr(value, "statuses") {
        match status_update(s) {
            Some(status) => out.push(WebhookEvent::Status {
                phone_number_id: phone_number_id.clone(),
                status,
            }),
            None => out.push(unhandled("status without id or status".into(), s)),
        }
    }
    if let Some(errors) = value.get("errors") {
        out.push(unhandled("errors[] reported by Meta for this change".into(), errors));
    }
    if value.get("messages").is_none() && value.get("statuses").is_none() && value.get("errors").is_none() {
        out.push(unhandled(
            "messages change with neither messages nor statuses".into(),
            change,
        ));
    }
}

fn contact_profile(c: &Value) -> ContactProfile {
    ContactProfile {
        wa_id: str_of(c, "wa_id").unwrap_or("").to_string(),
        user_id: opt_string(c, "user_id"),
        name: c.pointer("/profile/name").and_then(Value::as_str).map(str::to_string),
        username: c
            .pointer("/profile/username")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn inbound_message(m: &Value, only_contact: Option<&ContactProfile>) -> Option<InboundMessage> {
    let wamid = str_of(m, "id")?.to_string();
    let timestamp = lenient_i64(m.get("timestamp")?)?;
    let mut from = str_of(m, "from").unwrap_or("").to_string();
    let mut from_user_id = opt_string(m, "from_user_id").filter(|u| !u.is_empty());
    if from.is_empty() && from_user_id.is_none() {
        let contact = only_contact?;
        from_user_id = Some(contact.user_id.clone().filter(|u| !u.is_empty())?);
        from = contact.wa_id.clone();
    }
    Some(InboundMessage {
        wamid,
        from,
        from_user_id,
        timestamp,
        kind: message_kind(m),
        context: m.get("context").map(message_context),
        referral: m.get("referral").cloned(),
        errors: errors_of(m),
    })
}

/// The typed kind of a message object (also used for the inner message of an edit).
fn message_kind(m: &Value) -> MessageKind {
    let type_name = str_of(m, "type").unwrap_or("").to_string();
    let body = m.get(type_name.as_str());
    let kind = match (type_name.as_str(), body) {
        ("text", Some(b)) => Some(MessageKind::Text {
            body: string_of(b, "body"),
        }),
        ("image" | "video" | "audio" | "document" | "sticker", Some(b)) => media(&type_name, b),
        ("location", Some(b)) => Some(MessageKind::Location {
            latitude: b.get("latitude").and_then(Value::as_f64).unwrap_or(0.0),
            longitude: b.get("longitude").and_then(Value::as_f64).unwrap_or(0.0),
            name: opt_string(b, "name"),
            address: opt_string(b, "address"),
            url: opt_string(b, "url"),
        }),
        ("contacts", Some(Value::Array(cards))) => Some(MessageKind::Contacts {
            contacts: cards.iter().map(shared_contact).collect(),
        }),
        ("interactive", Some(b)) => interactive(b),
        ("button", Some(b)) => Some(MessageKind::TemplateButton {
            text: string_of(b, "text"),
            payload: string_of(b, "payload"),
        }),
        ("reaction", Some(b)) => Some(MessageKind::Reaction {
            message_id: string_of(b, "message_id"),
            emoji: opt_string(b, "emoji").filter(|e| !e.is_empty()),
        }),
        ("order", Some(b)) => Some(MessageKind::Order {
            catalog_id: string_of(b, "catalog_id"),
            text: opt_string(b, "text").filter(|t| !t.is_empty()),
            items: arr(b, "product_items")
                .map(|i| OrderItem {
                    product_retailer_id: string_of(i, "product_retailer_id"),
                    quantity: i.get("quantity").and_then(lenient_i64).unwrap_or(0),
                    item_price: i.get("item_price").and_then(lenient_f64).unwrap_or(0.0),
                    currency: string_of(i, "currency"),
                })
                .collect(),
        }),
        ("system", Some(b)) => Some(MessageKind::System {
            system_type: string_of(b, "type"),
            body: opt_string(b, "body"),
            new_wa_id: opt_string(b, "wa_id").or_else(|| opt_string(b, "new_wa_id")),
            new_user_id: opt_string(b, "user_id"),
        }),
        ("edit", Some(b)) => Some(MessageKind::Edit {
            original_message_id: string_of(b, "original_message_id"),
            message: Box::new(b.get("message").map(message_kind).unwrap_or(MessageKind::Unknown {
                type_name: "edit".into(),
                raw: b.clone(),
            })),
        }),
        ("revoke", Some(b)) => Some(MessageKind::Revoke {
            original_message_id: string_of(b, "original_message_id"),
        }),
        ("unsupported", b) => Some(MessageKind::Unsupported {
            unsupported_type: b.and_then(|b| opt_string(b, "type")),
        }),
        _ => None,
    };
    kind.unwrap_or_else(|| MessageKind::Unknown {
        type_name: if type_name.is_empty() {
            "missing".into()
        } else {
            type_name.clone()
        },
        raw: m.clone(),
    })
}

fn media(type_name: &str, b: &Value) -> Option<MessageKind> {
    let media_type = match type_name {
        "image" => MediaType::Image,
        "video" => MediaType::Video,
        "audio" => MediaType::Audio,
        "document" => MediaType::Document,
        _ => MediaType::Sticker,
    };
    Some(MessageKind::Media(Media {
        media_type,
        media_id: str_of(b, "id")?.to_string(),
        mime_type: opt_string(b, "mime_type"),
        sha256: opt_string(b, "sha256"),
        caption: opt_string(b, "caption"),
        filename: opt_string(b, "filename"),
        voice: b.get("voice").and_then(Value::as_bool).unwrap_or(false),
        animated: b.get("animated").and_then(Value::as_bool).unwrap_or(false),
        url: opt_string(b, "url"),
    }))
}

fn interactive(b: &Value) -> Option<MessageKind> {
    let itype = str_of(b, "type")?;
    let inner = b.get(itype);
    Some(match (itype, inner) {
        ("button_reply", Some(r)) => MessageKind::ButtonReply {
            id: string_of(r, "id"),
            title: string_of(r, "title"),
        },
        ("list_reply", Some(r)) => MessageKind::ListReply {
            id: string_of(r, "id"),
            title: string_of(r, "title"),
            description: opt_string(r, "description"),
        },
        ("nfm_reply", Some(r)) => {
            let response = str_of(r, "response_json")
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .unwrap_or(Value::Null);
            MessageKind::FlowReply {
                name: opt_string(r, "name"),
                body: opt_string(r, "body"),
                flow_token: response.get("flow_token").and_then(Value::as_str).map(str::to_string),
                response,
            }
        }
        _ => MessageKind::InteractiveOther {
            interactive_type: itype.to_string(),
            raw: b.clone(),
        },
    })
}

fn shared_contact(c: &Value) -> SharedContact {
    SharedContact {
        name: c
            .pointer("/name/formatted_name")
            .and_then(Value::as_str)
            .or_else(|| c.pointer("/name/first_name").and_then(Value::as_str))
            .unwrap_or("")
            .to_string(),
        phones: arr(c, "phones").filter_map(|p| opt_string(p, "phone")).collect(),
        emails: arr(c, "emails").filter_map(|p| opt_string(p, "email")).collect(),
    }
}

fn message_context(c: &Value) -> MessageContext {
    MessageContext {
        replied_to: opt_string(c, "id"),
        forwarded: c.get("forwarded").and_then(Value::as_bool).unwrap_or(false),
        frequently_forwarded: c.get("frequently_forwarded").and_then(Value::as_bool).unwrap_or(false),
        referred_product: c
            .get("referred_product")
            .map(|p| (string_of(p, "catalog_id"), string_of(p, "product_retailer_id"))),
    }
}

fn status_update(s: &Value) -> Option<StatusUpdate> {
    let status = str_of(s, "status")?.to_string();
    Some(StatusUpdate {
        wamid: str_of(s, "id")?.to_string(),
        state: DeliveryState::parse(&status),
        status,
        timestamp: s.get("timestamp").and_then(lenient_i64).unwrap_or(0),
        recipient: str_of(s, "recipient_id")
            .filter(|r| !r.is_empty())
            .or_else(|| str_of(s, "recipient_user_id"))
            .unwrap_or("")
            .to_string(),
        callback_data: opt_string(s, "biz_opaque_callback_data"),
        errors: errors_of(s),
    })
}

fn errors_of(v: &Value) -> Vec<WhatsAppError> {
    arr(v, "errors")
        .map(|e| WhatsAppError {
            code: e.get("code").and_then(lenient_i64).unwrap_or(0),
            title: str_of(e, "title")
                .or_else(|| str_of(e, "message"))
                .unwrap_or("")
                .to_string(),
            details: e
                .pointer("/error_data/details")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect()
}

fn unhandled(reason: String, raw: &Value) -> WebhookEvent {
    WebhookEvent::Unhandled {
        reason,
        raw: raw.clone(),
    }
}

fn arr<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn string_of(v: &Value, key: &str) -> String {
    str_of(v, key).unwrap_or("").to_string()
}

fn opt_string(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).map(str::to_string)
}

/// Meta sends numbers as strings ("1697043223") and sometimes as numbers.
fn lenient_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn lenient_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_with_two_entries_and_mixed_changes() {
        let body = br#"{"object":"whatsapp_business_account","entry":[
          {"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},
            "contacts":[{"wa_id":"31","profile":{"name":"A"}}],
            "messages":[{"from":"31","id":"w1","timestamp":"10","type":"text","text":{"body":"hi"}},
                        {"from":"31","id":"w2","timestamp":10,"type":"poll","poll":{}}]}}]},
          {"id":"2","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P2"},
            "statuses":[{"id":"o1","status":"read","timestamp":"11","recipient_id":"31"}]}},
            {"field":"account_update","value":{"no_event":"X"}}]}]}"#;
        let events = parse_webhook(body);
        assert_eq!(events.len(), 4);
        match &events[1] {
            WebhookEvent::Message { message, .. } => assert_eq!(message.kind.type_name(), "poll"),
            e => panic!("{e:?}"),
        }
        match &events[2] {
            WebhookEvent::Status {
                phone_number_id,
                status,
            } => {
                assert_eq!(phone_number_id, "P2");
                assert_eq!(status.state, Some(DeliveryState::Read));
            }
            e => panic!("{e:?}"),
        }
        // An account_update without the fields it needs is kept raw.
        assert!(matches!(events[3], WebhookEvent::Unhandled { .. }), "{:?}", events[3]);
    }

    #[test]
    fn a_sender_known_only_by_the_contacts_bsuid_is_a_message_from_that_bsuid() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
            "value":{"metadata":{"phone_number_id":"P1"},
            "contacts":[{"wa_id":"","user_id":"US.1349","profile":{"name":"A","username":"a"}}],
            "messages":[{"id":"w1","timestamp":"10","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        match &parse_webhook(body)[..] {
            [WebhookEvent::Message { contact, message, .. }] => {
                assert_eq!(message.from_user_id.as_deref(), Some("US.1349"));
                assert_eq!(message.from, "");
                assert_eq!(contact.user_id.as_deref(), Some("US.1349"));
            }
            e => panic!("{e:?}"),
        }
        // Two contacts and no sender id on the message: whose it is cannot be told.
        let two = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
            "value":{"metadata":{"phone_number_id":"P1"},
            "contacts":[{"user_id":"US.1"},{"user_id":"US.2"}],
            "messages":[{"id":"w1","timestamp":"10","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        assert!(matches!(&parse_webhook(two)[..], [WebhookEvent::Unhandled { .. }]));
    }

    #[test]
    fn garbage_is_unhandled_not_an_error() {
        for body in [
            &b"nope"[..],
            b"[]",
            br#"{"object":"page"}"#,
            br#"{"object":"whatsapp_business_account"}"#,
        ] {
            let events = parse_webhook(body);
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(matches!(events[0], WebhookEvent::Unhandled { .. }));
        }
    }
}
