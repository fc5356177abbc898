//! What the business sends: message bodies with WhatsApp's limits checked before any
//! request is made, and the exact Graph API JSON for each kind.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Who a message goes to: the customer's number when we know it, else their
/// business-scoped user id (BSUID, a username-only user), which Meta takes in the
/// `recipient` field instead of `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A WhatsApp id (the number's digits), sent as `to`.
    Number(String),
    /// A BSUID such as `US.13491208655302741918`, sent as `recipient`.
    UserId(String),
}

impl Recipient {
    /// The number when known (Meta routes by it first), else the BSUID; `None` for neither.
    pub fn of_contact(wa_id: Option<&str>, user_id: Option<&str>) -> Option<Recipient> {
        match (wa_id.filter(|w| !w.is_empty()), user_id.filter(|u| !u.is_empty())) {
            (Some(w), _) => Some(Recipient::Number(w.to_string())),
            (None, Some(u)) => Some(Recipient::UserId(u.to_string())),
            (None, None) => None,
        }
    }

    /// The identifier itself (the key of the per-recipient rate limit).
    pub fn id(&self) -> &str {
        match self {
            Recipient::Number(n) | Recipient::UserId(n) => n,
        }
    }

    /// The Graph API field that carries it.
    pub fn field(&self) -> &'static str {
        match self {
            Recipient::Number(_) => "to",
            Recipient::UserId(_) => "recipient",
        }
    }
}

/// A reply button: id sent back when tapped, title shown (≤ 20 characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    pub id: String,
    pub title: String,
}

/// One row of an interactive list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A titled group of list rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

/// Outbound media: an uploaded media id, a public link, or a file in our media store
/// (an agent's attachment) that the send worker uploads first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Id(String),
    Link(String),
    Stored {
        sha256: String,
        mime_type: String,
        file_name: String,
    },
}

/// The body of one outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundBody {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Buttons {
        body: String,
        buttons: Vec<Button>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
    },
    List {
        body: String,
        button: String,
        sections: Vec<ListSection>,
    },
    Template {
        name: String,
        language: String,
        #[serde(default)]
        params: Vec<String>,
    },
    Media {
        /// image, video, audio, document or sticker.
        media_type: String,
        source: MediaSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

fn too_long(what: &str, s: &str, max: usize) -> Option<String> {
    let n = s.chars().count();
    (n > max).then(|| format!("{what} is {n} characters; WhatsApp allows at most {max}"))
}

impl OutboundBody {
    /// The kind's short name (ledger `kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundBody::Text { .. } => "text",
            OutboundBody::Buttons { .. } => "buttons",
            OutboundBody::List { .. } => "list",
            OutboundBody::Template { .. } => "template",
            OutboundBody::Media { .. } => "media",
        }
    }

    /// Whether this may be sent outside the 24-hour window (only templates may).
    pub fn allowed_outside_window(&self) -> bool {
        matches!(self, OutboundBody::Template { .. })
    }

    /// A readable rendering for the inbox and `messages list`.
    pub fn text(&self) -> String {
        match self {
            OutboundBody::Text { body, .. } => body.clone(),
            OutboundBody::Buttons { body, buttons, .. } => {
                let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
                format!("{body} [{}]", titles.join(" | "))
            }
            OutboundBody::List { body, .. } => body.clone(),
            OutboundBody::Template { name, params, .. } => {
                if params.is_empty() {
                    format!("[template {name}]")
                } else {
                    format!("[template {name}: {}]", params.join(", "))
                }
            }
            OutboundBody::Media {
                media_type,
                caption,
                filename,
                ..
            } => match (caption, filename) {
                (Some(c), _) => format!("[{media_type}] {c}"),
                (None, Some(f)) => format!("[{media_type}: {f}]"),
                _ => format!("[{media_type}]"),
            },
        }
    }

    /// Checks WhatsApp's documented limits; the error says which one and by how much.
    pub fn validate(&self) -> Result<(), String> {
        let err = match self {
            OutboundBody::Text { body, .. } => {
                if body.trim().is_empty() {
                    Some("a text message needs a body".into())
                } else {
                    too_long("text body", body, 4096)
                }
            }
            OutboundBody::Buttons {
                body,
                buttons,
                header,
                footer,
            } => {
                if buttons.is_empty() || buttons.len() > 3 {
                    Some(format!("{} buttons; WhatsApp allows 1 to 3", buttons.len()))
                } else {
                    let mut seen = std::collections::HashSet::new();
                    too_long("button message body", body, 1024)
                        .or_else(|| header.as_deref().and_then(|h| too_long("header", h, 60)))
                        .or_else(|| footer.as_deref().and_then(|f| too_long("footer", f, 60)))
                        .or_else(|| {
                            buttons.iter().find_map(|b| {
                                too_long(&format!("button title {:?}", b.title), &b.title, 20)
                                    .or_else(|| too_long("button id", &b.id, 256))
                                    .or_else(|| {
                                        b.title.trim().is_empty().then(|| "a button title is empty".to_string())
                                    })
                                    .or_else(|| {
                                        (!seen.insert(b.title.clone())).then(|| {
                                            format!("button title {:?} is used twice; titles must be unique", b.title)
                                        })
                                    })
                            })
                        })
                }
            }
            OutboundBody::List { body, button, sections } => {
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if rows == 0 || rows > 10 {
                    Some(format!("{rows} list rows; WhatsApp allows 1 to 10 in total"))
                } else if sections.len() > 10 {
                    Some(format!("{} sections; WhatsApp allows at most 10", sections.len()))
                } else {
                    too_long("list body", body, 1024)
                        .or_else(|| too_long("list button label", button, 20))
                        .or_else(|| {
                            sections.iter().flat_map(|s| &s.rows).find_map(|r| {
                                too_long(&format!("row title {:?}", r.title), &r.title, 24)
                                    .or_else(|| {
                                        r.description
                                            .as_deref()
                                            .and_then(|d| too_long("row description", d, 72))
                                    })
                                    .or_else(|| too_long("row id", &r.id, 200))
                            })
                        })
                }
            }
            OutboundBody::Template { name, language, .. } => {
                if name.is_empty() || language.is_empty() {
                    Some("a template needs a name and a language code".into())
                } else {
                    None
                }
            }
            OutboundBody::Media {
                media_type,
                source,
                caption,
                ..
            } => {
                if !matches!(
                    media_type.as_str(),
                    "image" | "video" | "audio" | "document" | "sticker"
                ) {
                    Some(format!(
                        "media type {media_type:?} is not one of image, video, audio, document, sticker"
                    ))
                } else if caption.is_some() && matches!(media_type.as_str(), "audio" | "sticker") {
                    Some(format!("{media_type} messages cannot have a caption"))
                } else {
                    match source {
                        MediaSource::Id(id) if id.is_empty() => Some("media id is empty".into()),
                        MediaSource::Stored { sha256, .. } if sha256.len() != 64 => {
                            Some(format!("stored file {sha256:?} is not a SHA-256 name"))
                        }
                        MediaSource::Link(l) if !l.starts_with("https://") && !l.starts_with("http://") => {
                            Some(format!("media link {l:?} is not an http(s) URL"))
                        }
                        _ => caption.as_deref().and_then(|c| too_long("caption", c, 1024)),
                    }
                }
            }
        };
        err.map_or(Ok(()), Err)
    }

    /// The full Graph API request body for sending this to `to`.
    pub fn to_graph_json(&self, to: &Recipient, reply_to: Option<&str>, callback_data: Option<&str>) -> Value {
        let mut v = json!({ "messaging_product": "whatsapp", "recipient_type": "individual" });
        v[to.field()] = json!(to.id());
        let obj = v.as_object_mut().expect("object");
        match self {
            OutboundBody::Text { body, preview_url } => {
                obj.insert("type".into(), json!("text"));
                obj.insert("text".into(), json!({ "body": body, "preview_url": preview_url }));
            }
            OutboundBody::Buttons {
                body,
                buttons,
                header,
                footer,
            } => {
                let mut i = json!({
                    "type": "button",
                    "body": { "text": body },
                    "action": { "buttons": buttons.iter().map(|b| json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } })).collect::<Vec<_>>() }
                });
                if let Some(h) = header {
                    i["header"] = json!({ "type": "text", "text": h });
                }
                if let Some(f) = footer {
                    i["footer"] = json!({ "text": f });
                }
                obj.insert("type".into(), json!("interactive"));
                obj.insert("interactive".into(), i);
            }
            OutboundBody::List { body, button, sections } => {
                obj.insert("type".into(), json!("interactive"));
                obj.insert(
                    "interactive".into(),
                    json!({ "type": "list", "body": { "text": body }, "action": { "button": button, "sections": sections } }),
                );
            }
            OutboundBody::Template { name, language, params } => {
                let mut t = json!({ "name": name, "language": { "code": language } });
                if !params.is_empty() {
                    t["components"] = json!([{ "type": "body", "parameters": params.iter().map(|p| json!({ "type": "text", "text": p })).collect::<Vec<_>>() }]);
                }
                obj.insert("type".into(), json!("template"));
                obj.insert("template".into(), t);
            }
            OutboundBody::Media {
                media_type,
                source,
                caption,
                filename,
            } => {
                let mut m = match source {
                    MediaSource::Id(id) => json!({ "id": id }),
                    MediaSource::Link(l) => json!({ "link": l }),
                    // The send worker uploads stored files first (`with_uploaded_media`).
                    MediaSource::Stored { .. } => json!({ "id": "" }),
                };
                if let Some(c) = caption {
                    m["caption"] = json!(c);
                }
                if let (Some(f), "document") = (filename, media_type.as_str()) {
                    m["filename"] = json!(f);
                }
                obj.insert("type".into(), json!(media_type));
                obj.insert(media_type.clone(), m);
            }
        }
        if let Some(r) = reply_to {
            obj.insert("context".into(), json!({ "message_id": r }));
        }
        if let Some(c) = callback_data {
            obj.insert("biz_opaque_callback_data".into(), json!(c));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons(titles: &[&str]) -> OutboundBody {
        OutboundBody::Buttons {
            body: "Pick one".into(),
            buttons: titles
                .iter()
                .enumerate()
                .map(|(i, t)| Button {
                    id: format!("b{i}"),
                    title: t.to_string(),
                })
                .collect(),
            header: None,
            footer: None,
        }
    }

    #[test]
    fn limits_are_checked() {
        assert!(buttons(&["Yes", "No"]).validate().is_ok());
        assert!(
            buttons(&["a", "b", "c", "d"])
                .validate()
                .unwrap_err()
                .contains("1 to 3")
        );
        assert!(
            buttons(&["This title is far too long"])
                .validate()
                .unwrap_err()
                .contains("at most 20")
        );
        assert!(buttons(&["Same", "Same"]).validate().unwrap_err().contains("unique"));
        let rows = |n: usize| OutboundBody::List {
            body: "b".into(),
            button: "Menu".into(),
            sections: vec![ListSection {
                title: "s".into(),
                rows: (0..n)
                    .map(|i| ListRow {
                        id: format!("r{i}"),
                        title: format!("Row {i}"),
                        description: None,
                    })
                    .collect(),
            }],
        };
        assert!(rows(10).validate().is_ok());
        assert!(rows(11).validate().unwrap_err().contains("1 to 10"));
        assert!(
            OutboundBody::Text {
                body: "x".repeat(4097),
                preview_url: false
            }
            .validate()
            .is_err()
        );
        assert!(
            OutboundBody::Text {
                body: " ".into(),
                preview_url: false
            }
            .validate()
            .is_err()
        );
    }

    fn number() -> Recipient {
        Recipient::Number("316".into())
    }

    #[test]
    fn a_username_only_user_is_sent_to_by_bsuid_in_the_recipient_field() {
        let to = Recipient::of_contact(None, Some("US.13491208655302741918")).unwrap();
        let v = OutboundBody::Text {
            body: "Hi".into(),
            preview_url: false,
        }
        .to_graph_json(&to, None, None);
        assert_eq!(v["recipient"], "US.13491208655302741918");
        assert!(v.get("to").is_none(), "{v}");
        // The number wins when both are known; an empty number is no number.
        assert_eq!(Recipient::of_contact(Some("316"), Some("US.1")), Some(number()));
        assert_eq!(
            Recipient::of_contact(Some(""), Some("US.1")),
            Some(Recipient::UserId("US.1".into()))
        );
        assert_eq!(Recipient::of_contact(None, None), None);
    }

    #[test]
    fn graph_json_per_kind() {
        let text = OutboundBody::Text {
            body: "Hi".into(),
            preview_url: false,
        }
        .to_graph_json(&number(), Some("wamid.in"), Some("fd:7"));
        assert_eq!(
            text,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"316","type":"text",
                   "text":{"body":"Hi","preview_url":false},"context":{"message_id":"wamid.in"},"biz_opaque_callback_data":"fd:7"})
        );
        let t = OutboundBody::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            params: vec!["SS-1".into()],
        }
        .to_graph_json(&number(), None, None);
        assert_eq!(
            t["template"]["components"][0]["parameters"][0],
            json!({"type":"text","text":"SS-1"})
        );
        let b = buttons(&["Yes"]).to_graph_json(&number(), None, None);
        assert_eq!(
            b["interactive"]["action"]["buttons"][0],
            json!({"type":"reply","reply":{"id":"b0","title":"Yes"}})
        );
        let m = OutboundBody::Media {
            media_type: "document".into(),
            source: MediaSource::Id("55".into()),
            caption: Some("Invoice".into()),
            filename: Some("inv.pdf".into()),
        }
        .to_graph_json(&number(), None, None);
        assert_eq!(
            m["document"],
            json!({"id":"55","caption":"Invoice","filename":"inv.pdf"})
        );
    }
}
