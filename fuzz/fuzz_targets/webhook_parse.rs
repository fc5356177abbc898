//! A webhook body is whatever reached `/webhook` with a valid signature (Meta's, or a
//! leaked secret's): parsing it into events, and keying it for dedupe, never panics;
//! every body has at least one dedupe key, and every event's message reads as text.
#![no_main]

use frontdesk::domain::event::WebhookEvent;
use frontdesk::whatsapp::{dedupe_keys::dedupe_keys, parse::parse_webhook};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for event in parse_webhook(body) {
        if let WebhookEvent::Message { message, .. } = event {
            let _ = message.kind.text();
            let _ = message.kind.type_name();
            let _ = message.kind.is_answerable();
        }
    }
    assert!(!dedupe_keys(body).is_empty(), "a delivery without dedupe keys");
});
