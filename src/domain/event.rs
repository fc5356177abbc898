//! What one webhook delivery means, as a list of typed events: inbound messages,
//! delivery statuses, account health, and anything else kept raw for a person to look at.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::delivery::DeliveryState;
use super::health::HealthEvent;
use super::message::{InboundMessage, WhatsAppError};

/// The customer as the webhook's `contacts[]` describes them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactProfile {
    pub wa_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A status callback for a message the business sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub wamid: String,
    /// Meta's state string (kept even when this version does not know it).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<DeliveryState>,
    pub timestamp: i64,
    pub recipient: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<WhatsAppError>,
}

/// One thing a webhook told us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// One event is alive at a time per webhook; boxing the message would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum WebhookEvent {
    Message {
        phone_number_id: String,
        contact: ContactProfile,
        message: InboundMessage,
    },
    Status {
        phone_number_id: String,
        status: StatusUpdate,
    },
    /// Account health: a number's quality or limit, the account's restrictions, a
    /// template's status, category or quality. `waba_id` is the entry's id.
    Health { waba_id: String, health: HealthEvent },
    /// Something not handled (another webhook field, an `errors[]` block, a shape we
    /// could not read): kept raw with the reason.
    Unhandled { reason: String, raw: Value },
}
