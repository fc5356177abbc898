//! Inbound WhatsApp messages as typed domain values: one variant per kind the Cloud API
//! sends, plus `Unknown` so a new kind is kept, never dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message a customer sent to a business number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The WhatsApp message id (`wamid.…`), the dedupe key.
    pub wamid: String,
    /// The sender's number (digits only); can be empty for username-only users.
    pub from: String,
    /// The sender's business-scoped user id, when Meta sends one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<String>,
    /// Unix seconds, as Meta stamped it.
    pub timestamp: i64,
    pub kind: MessageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    /// Click-to-WhatsApp ad or Page referral, kept as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<Value>,
    /// Errors Meta attached to the message (e.g. 131051 for unsupported kinds).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<WhatsAppError>,
}

/// What a message is a reply to, or that it was forwarded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageContext {
    /// The wamid replied to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replied_to: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub forwarded: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub frequently_forwarded: bool,
    /// A product enquiry: (catalog id, product retailer id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<(String, String)>,
}

/// An error object as Meta sends it in webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsAppError {
    pub code: i64,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Which media a media message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Document => "document",
            MediaType::Sticker => "sticker",
        }
    }
}

/// A media attachment: an id to download through the Graph API and what Meta said of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub media_type: MediaType,
    pub media_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A voice note (`audio.voice`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub voice: bool,
    /// An animated sticker.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub animated: bool,
    /// A lookaside URL (still needs the bearer token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A contact card shared in a `contacts` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedContact {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub phones: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub emails: Vec<String>,
}

/// One line of an order message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_retailer_id: String,
    pub quantity: i64,
    pub item_price: f64,
    pub currency: String,
}

/// The kinds of inbound message, each with what it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageKind {
    Text {
        body: String,
    },
    Media(Media),
    Location {
        latitude: f64,
        longitude: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    Contacts {
        contacts: Vec<SharedContact>,
    },
    /// A tap on an interactive reply button.
    ButtonReply {
        id: String,
        title: String,
    },
    /// A choice from an interactive list.
    ListReply {
        id: String,
        title: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A completed WhatsApp Flow; `response` is `response_json` parsed.
    FlowReply {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        response: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        flow_token: Option<String>,
    },
    /// Another interactive reply (e.g. a call-permission answer), kept as sent.
    InteractiveOther {
        interactive_type: String,
        raw: Value,
    },
    /// A tap on a template's quick-reply button.
    TemplateButton {
        text: String,
        payload: String,
    },
    /// A reaction; `emoji: None` means the reaction was removed.
    Reaction {
        message_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    Order {
        catalog_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        items: Vec<OrderItem>,
    },
    /// A system notice: number changed, identity changed, and the like.
    System {
        system_type: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        new_wa_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        new_user_id: Option<String>,
    },
    /// The customer edited an earlier message.
    Edit {
        original_message_id: String,
        message: Box<MessageKind>,
    },
    /// The customer deleted an earlier message.
    Revoke {
        original_message_id: String,
    },
    /// Meta could not show it to us (polls, view-once media, …).
    Unsupported {
        #[serde(skip_serializing_if = "Option::is_none")]
        unsupported_type: Option<String>,
    },
    /// A kind this version does not know; the raw object is kept.
    Unknown {
        type_name: String,
        raw: Value,
    },
}

impl MessageKind {
    /// The kind's short name, as stored in the `type` column.
    pub fn type_name(&self) -> &str {
        match self {
            MessageKind::Text { .. } => "text",
            MessageKind::Media(m) => m.media_type.as_str(),
            MessageKind::Location { .. } => "location",
            MessageKind::Contacts { .. } => "contacts",
            MessageKind::ButtonReply { .. } => "button_reply",
            MessageKind::ListReply { .. } => "list_reply",
            MessageKind::FlowReply { .. } => "flow_reply",
            MessageKind::InteractiveOther { .. } => "interactive",
            MessageKind::TemplateButton { .. } => "button",
            MessageKind::Reaction { .. } => "reaction",
            MessageKind::Order { .. } => "order",
            MessageKind::System { .. } => "system",
            MessageKind::Edit { .. } => "edit",
            MessageKind::Revoke { .. } => "revoke",
            MessageKind::Unsupported { .. } => "unsupported",
            MessageKind::Unknown { type_name, .. } => type_name,
        }
    }

    /// Whether the bot should answer it: things a customer says or asks, not reactions,
    /// stickers, edits, deletions or system notices.
    pub fn is_answerable(&self) -> bool {
        match self {
            MessageKind::Media(m) => m.media_type != MediaType::Sticker,
            MessageKind::Text { .. }
            | MessageKind::Location { .. }
            | MessageKind::Contacts { .. }
            | MessageKind::ButtonReply { .. }
            | MessageKind::ListReply { .. }
            | MessageKind::FlowReply { .. }
            | MessageKind::TemplateButton { .. }
            | MessageKind::Order { .. }
            | MessageKind::Unsupported { .. } => true,
            _ => false,
        }
    }

    /// The text a person would read: the body, caption or title, or a short summary.
    pub fn text(&self) -> String {
        match self {
            MessageKind::Text { body } => body.clone(),
            MessageKind::Media(m) => match (&m.caption, m.media_type) {
                (Some(c), _) if !c.is_empty() => c.clone(),
                (_, MediaType::Audio) if m.voice => "[voice note]".into(),
                (_, MediaType::Document) => match &m.filename {
                    Some(f) => format!("[document: {f}]"),
                    None => "[document]".into(),
                },
                (_, t) => format!("[{}]", t.as_str()),
            },
            MessageKind::Location {
                latitude,
                longitude,
                name,
                address,
                ..
            } => {
                let place = [name.as_deref(), address.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                if place.is_empty() {
                    format!("[location {latitude}, {longitude}]")
                } else {
                    format!("[location: {place} ({latitude}, {longitude})]")
                }
            }
            MessageKind::Contacts { contacts } => {
                let names: Vec<&str> = contacts.iter().map(|c| c.name.as_str()).collect();
                format!("[contact card: {}]", names.join(", "))
            }
            MessageKind::ButtonReply { title, .. } => title.clone(),
            MessageKind::ListReply { title, .. } => title.clone(),
            MessageKind::FlowReply { body, name, .. } => match (body, name) {
                (Some(b), _) if !b.is_empty() => b.clone(),
                (_, Some(n)) => format!("[form completed: {n}]"),
                _ => "[form completed]".into(),
            },
            MessageKind::InteractiveOther { interactive_type, .. } => {
                format!("[interactive reply: {interactive_type}]")
            }
            MessageKind::TemplateButton { text, .. } => text.clone(),
            MessageKind::Reaction { emoji: Some(e), .. } => format!("[reacted {e}]"),
            MessageKind::Reaction { emoji: None, .. } => "[removed a reaction]".into(),
            MessageKind::Order { text, items, .. } => {
                let base = format!("[order: {} item(s)]", items.len());
                match text {
                    Some(t) if !t.is_empty() => format!("{base} {t}"),
                    _ => base,
                }
            }
            MessageKind::System { body: Some(b), .. } => b.clone(),
            MessageKind::System { system_type, .. } => format!("[system: {system_type}]"),
            MessageKind::Edit { message, .. } => format!("[edited] {}", message.text()),
            MessageKind::Revoke { .. } => "[deleted a message]".into(),
            MessageKind::Unsupported {
                unsupported_type: Some(t),
            } => {
                format!("[unsupported message: {t}]")
            }
            MessageKind::Unsupported { unsupported_type: None } => "[unsupported message]".into(),
            MessageKind::Unknown { type_name, .. } => format!("[unknown message type: {type_name}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_for_each_kind() {
        let cases = vec![
            (MessageKind::Text { body: "hi".into() }, "hi"),
            (
                MessageKind::Reaction {
                    message_id: "w".into(),
                    emoji: None,
                },
                "[removed a reaction]",
            ),
            (
                MessageKind::Revoke {
                    original_message_id: "w".into(),
                },
                "[deleted a message]",
            ),
            (
                MessageKind::Media(Media {
                    media_type: MediaType::Audio,
                    media_id: "1".into(),
                    mime_type: None,
                    sha256: None,
                    caption: None,
                    filename: None,
                    voice: true,
                    animated: false,
                    url: None,
                }),
                "[voice note]",
            ),
            (
                MessageKind::Unknown {
                    type_name: "poll".into(),
                    raw: Value::Null,
                },
                "[unknown message type: poll]",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(kind.text(), want);
        }
    }
}
