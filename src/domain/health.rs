//! Account health as Meta's own webhooks report it: a phone number's quality rating and
//! messaging limit (`phone_number_quality_update`), the account's restrictions, bans and
//! policy violations (`account_update`), and each template's status, category and
//! quality (`message_template_status_update`, `template_category_update`,
//! `message_template_quality_update`). Pure types and rules; parsed in `whatsapp::parse`.

use serde::{Deserialize, Serialize};

/// Meta's traffic-light quality rating of a number or a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QualityRating {
    Green,
    Yellow,
    Red,
    /// Not rated yet (Meta's `UNKNOWN`, or a value this version does not know).
    Unknown,
}

impl QualityRating {
    /// Meta's spelling: `GREEN`/`YELLOW`/`RED` (also `HIGH`/`MEDIUM`/`LOW`).
    pub fn parse(s: &str) -> QualityRating {
        match s.trim().to_ascii_uppercase().as_str() {
            "GREEN" | "HIGH" => QualityRating::Green,
            "YELLOW" | "MEDIUM" => QualityRating::Yellow,
            "RED" | "LOW" => QualityRating::Red,
            _ => QualityRating::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QualityRating::Green => "GREEN",
            QualityRating::Yellow => "YELLOW",
            QualityRating::Red => "RED",
            QualityRating::Unknown => "UNKNOWN",
        }
    }

    /// The value of the `/metrics` gauge: 0 unknown, 1 green, 2 yellow, 3 red.
    pub fn gauge(self) -> u64 {
        match self {
            QualityRating::Unknown => 0,
            QualityRating::Green => 1,
            QualityRating::Yellow => 2,
            QualityRating::Red => 3,
        }
    }

    /// Yellow or red: the inbox shows a banner.
    pub fn is_degraded(self) -> bool {
        matches!(self, QualityRating::Yellow | QualityRating::Red)
    }
}

/// A template's review status (`message_template_status_update`'s `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    Flagged,
    PendingDeletion,
    Deleted,
    Reinstated,
    /// A status this version does not know; kept usable only if Meta says approved.
    Other,
}

impl TemplateStatus {
    pub fn parse(s: &str) -> TemplateStatus {
        match s.trim().to_ascii_uppercase().as_str() {
            "APPROVED" => TemplateStatus::Approved,
            "PENDING" | "IN_APPEAL" => TemplateStatus::Pending,
            "REJECTED" => TemplateStatus::Rejected,
            "PAUSED" => TemplateStatus::Paused,
            "DISABLED" => TemplateStatus::Disabled,
            "FLAGGED" => TemplateStatus::Flagged,
            "PENDING_DELETION" => TemplateStatus::PendingDeletion,
            "DELETED" => TemplateStatus::Deleted,
            "REINSTATED" => TemplateStatus::Reinstated,
            _ => TemplateStatus::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Rejected => "REJECTED",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Disabled => "DISABLED",
            TemplateStatus::Flagged => "FLAGGED",
            TemplateStatus::PendingDeletion => "PENDING_DELETION",
            TemplateStatus::Deleted => "DELETED",
            TemplateStatus::Reinstated => "REINSTATED",
            TemplateStatus::Other => "OTHER",
        }
    }

    /// Whether a message may be sent with a template in this status. Flagged templates
    /// still send (Meta pauses them if quality does not recover); a reinstated one is
    /// approved again.
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            TemplateStatus::Approved | TemplateStatus::Flagged | TemplateStatus::Reinstated
        )
    }
}

/// One restriction Meta put on the account (`restriction_info[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// e.g. `RESTRICTED_BIZ_INITIATED_MESSAGING`, `RESTRICTED_ADD_PHONE_NUMBER_ACTION`.
    pub restriction_type: String,
    /// Unix seconds when it ends, if Meta said.
    pub expiration: Option<i64>,
}

/// One health fact a webhook told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HealthEvent {
    /// `phone_number_quality_update`: `event` is `FLAGGED` / `UNFLAGGED` (quality low /
    /// no longer low), `UPGRADE` / `DOWNGRADE` (messaging limit), `ONBOARDING`, ….
    NumberQuality {
        display_phone_number: String,
        event: String,
        /// `current_limit`, e.g. `TIER_1K`, `TIER_UNLIMITED`.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit_tier: Option<String>,
        /// The rating this update implies: explicit when Meta sends one, else RED on
        /// `FLAGGED` and GREEN on `UNFLAGGED`; `None` when it says nothing about it.
        #[serde(skip_serializing_if = "Option::is_none")]
        rating: Option<QualityRating>,
    },
    /// `account_update`: `event` such as `ACCOUNT_RESTRICTION`, `ACCOUNT_VIOLATION`,
    /// `DISABLED_UPDATE`, `ACCOUNT_DELETED`, ….
    Account {
        event: String,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        restrictions: Vec<Restriction>,
        #[serde(skip_serializing_if = "Option::is_none")]
        violation: Option<String>,
        /// `ban_info.waba_ban_state`: `DISABLE`, `SCHEDULE_FOR_DISABLE`, `REINSTATE`.
        #[serde(skip_serializing_if = "Option::is_none")]
        ban_state: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ban_date: Option<String>,
    },
    /// `message_template_status_update`.
    TemplateStatus {
        template: TemplateRef,
        status: TemplateStatus,
        /// Meta's event string, kept even when this version does not know it.
        event: String,
        /// Why (rejection reason and Meta's explanation), when not `NONE`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        category: Option<String>,
    },
    /// `template_category_update`.
    TemplateCategory {
        template: TemplateRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_category: Option<String>,
        new_category: String,
    },
    /// `message_template_quality_update`.
    TemplateQuality {
        template: TemplateRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous: Option<QualityRating>,
        new: QualityRating,
    },
}

/// Which template an update is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub id: String,
    pub name: String,
    pub language: String,
}

impl HealthEvent {
    /// The kind's name as stored (`number_quality`, `account`, `template_status`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            HealthEvent::NumberQuality { .. } => "number_quality",
            HealthEvent::Account { .. } => "account",
            HealthEvent::TemplateStatus { .. } => "template_status",
            HealthEvent::TemplateCategory { .. } => "template_category",
            HealthEvent::TemplateQuality { .. } => "template_quality",
        }
    }

    /// Whether the account is restricted or banned after this `account_update`
    /// (`None`: the event says nothing about it).
    pub fn restricts_account(&self) -> Option<bool> {
        match self {
            HealthEvent::Account {
                event,
                restrictions,
                ban_state,
                ..
            } => match event.as_str() {
                "ACCOUNT_RESTRICTION" => Some(!restrictions.is_empty()),
                "DISABLED_UPDATE" => Some(ban_state.as_deref() != Some("REINSTATE")),
                "ACCOUNT_DELETED" | "ACCOUNT_OFFBOARDED" => Some(true),
                "ACCOUNT_RECONNECTED" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A one-line, human summary for the health panel, Slack and `doctor`.
    pub fn summary(&self) -> String {
        match self {
            HealthEvent::NumberQuality {
                display_phone_number,
                event,
                limit_tier,
                rating,
            } => {
                let mut s = format!("number {display_phone_number}: {event}");
                if let Some(r) = rating {
                    s.push_str(&format!(", quality {}", r.as_str()));
                }
                if let Some(t) = limit_tier {
                    s.push_str(&format!(", messaging limit {t}"));
                }
                s
            }
            HealthEvent::Account {
                event,
                restrictions,
                violation,
                ban_state,
                ban_date,
            } => {
                let mut s = format!("account: {event}");
                for r in restrictions {
                    s.push_str(&format!(", {}", r.restriction_type));
                }
                if let Some(v) = violation {
                    s.push_str(&format!(", violation {v}"));
                }
                if let Some(b) = ban_state {
                    s.push_str(&format!(", ban {b}"));
                }
                if let Some(d) = ban_date {
                    s.push_str(&format!(" ({d})"));
                }
                s
            }
            HealthEvent::TemplateStatus {
                template,
                event,
                reason,
                ..
            } => {
                let mut s = format!("template {} ({}): {event}", template.name, template.language);
                if let Some(r) = reason {
                    s.push_str(&format!(": {r}"));
                }
                s
            }
            HealthEvent::TemplateCategory {
                template, new_category, ..
            } => format!(
                "template {} ({}): category now {new_category}",
                template.name, template.language
            ),
            HealthEvent::TemplateQuality { template, new, .. } => format!(
                "template {} ({}): quality {}",
                template.name,
                template.language,
                new.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_and_statuses_read_metas_spellings() {
        assert_eq!(QualityRating::parse("yellow"), QualityRating::Yellow);
        assert_eq!(QualityRating::parse("LOW"), QualityRating::Red);
        assert_eq!(QualityRating::parse("?"), QualityRating::Unknown);
        assert!(QualityRating::Red.is_degraded() && !QualityRating::Green.is_degraded());
        assert_eq!(TemplateStatus::parse("PAUSED"), TemplateStatus::Paused);
        assert!(!TemplateStatus::Rejected.is_usable());
        assert!(!TemplateStatus::Disabled.is_usable());
        assert!(!TemplateStatus::Paused.is_usable());
        assert!(TemplateStatus::Approved.is_usable());
    }

    #[test]
    fn account_events_say_whether_the_account_is_restricted() {
        let restricted = HealthEvent::Account {
            event: "ACCOUNT_RESTRICTION".into(),
            restrictions: vec![Restriction {
                restriction_type: "RESTRICTED_BIZ_INITIATED_MESSAGING".into(),
                expiration: Some(1),
            }],
            violation: None,
            ban_state: None,
            ban_date: None,
        };
        assert_eq!(restricted.restricts_account(), Some(true));
        let reinstated = HealthEvent::Account {
            event: "DISABLED_UPDATE".into(),
            restrictions: vec![],
            violation: None,
            ban_state: Some("REINSTATE".into()),
            ban_date: None,
        };
        assert_eq!(reinstated.restricts_account(), Some(false));
        let violation = HealthEvent::Account {
            event: "ACCOUNT_VIOLATION".into(),
            restrictions: vec![],
            violation: Some("ADULT".into()),
            ban_state: None,
            ban_date: None,
        };
        assert_eq!(violation.restricts_account(), None);
        assert_eq!(violation.summary(), "account: ACCOUNT_VIOLATION, violation ADULT");
    }
}
