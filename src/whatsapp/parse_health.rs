//! The account-health webhook fields as typed `HealthEvent`s: `phone_number_quality_update`,
//! `account_update`, `message_template_status_update`, `template_category_update` and
//! `message_template_quality_update`. Shapes: Meta's webhook reference examples and the
//! pywa fixtures (tests/fixtures/webhooks).

use serde_json::Value;

use crate::domain::health::{HealthEvent, QualityRating, Restriction, TemplateRef, TemplateStatus};

/// `None`: `field` is not a health field. `Some(None)`: it is, but the value lacks what
/// it needs (kept raw by the caller). `Some(Some(event))`: understood.
pub fn health_event(field: &str, value: &Value) -> Option<Option<HealthEvent>> {
    Some(match field {
        "phone_number_quality_update" => number_quality(value),
        "account_update" => account(value),
        "message_template_status_update" => template_status(value),
        "template_category_update" => template_category(value),
        "message_template_quality_update" => template_quality(value),
        _ => return None,
    })
}

fn number_quality(v: &Value) -> Option<HealthEvent> {
    let event = text(v, "event")?;
    let explicit = ["quality_rating", "new_quality_score", "current_quality_rating"]
        .iter()
        .find_map(|k| text(v, k))
        .map(|r| QualityRating::parse(&r));
    let rating = explicit.or(match event.as_str() {
        "FLAGGED" => Some(QualityRating::Red),
        "UNFLAGGED" => Some(QualityRating::Green),
        _ => None,
    });
    Some(HealthEvent::NumberQuality {
        display_phone_number: text(v, "display_phone_number").unwrap_or_default(),
        event,
        limit_tier: text(v, "current_limit"),
        rating,
    })
}

fn account(v: &Value) -> Option<HealthEvent> {
    let event = text(v, "event")?;
    let restrictions = v
        .get("restriction_info")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(Restriction {
                restriction_type: text(r, "restriction_type")?,
                expiration: r.get("expiration").and_then(lenient_i64),
            })
        })
        .collect();
    Some(HealthEvent::Account {
        event,
        restrictions,
        violation: v.pointer("/violation_info/violation_type").and_then(scalar),
        ban_state: v.pointer("/ban_info/waba_ban_state").and_then(scalar),
        ban_date: v.pointer("/ban_info/waba_ban_date").and_then(scalar),
    })
}

fn template_ref(v: &Value) -> Option<TemplateRef> {
    Some(TemplateRef {
        id: v.get("message_template_id").and_then(scalar).unwrap_or_default(),
        name: text(v, "message_template_name")?,
        language: text(v, "message_template_language").unwrap_or_default(),
    })
}

fn template_status(v: &Value) -> Option<HealthEvent> {
    let event = text(v, "event")?;
    let code = text(v, "reason")
        .filter(|r| !r.eq_ignore_ascii_case("NONE"))
        .or_else(|| v.pointer("/other_info/title").and_then(scalar));
    let explanation = v
        .pointer("/rejection_info/reason")
        .or_else(|| v.pointer("/other_info/description"))
        .and_then(scalar);
    let reason = match (code, explanation) {
        (Some(c), Some(e)) => Some(format!("{c}: {e}")),
        (c, e) => c.or(e),
    };
    Some(HealthEvent::TemplateStatus {
        template: template_ref(v)?,
        status: TemplateStatus::parse(&event),
        event,
        reason,
        category: text(v, "message_template_category"),
    })
}

fn template_category(v: &Value) -> Option<HealthEvent> {
    Some(HealthEvent::TemplateCategory {
        template: template_ref(v)?,
        previous_category: text(v, "previous_category"),
        new_category: text(v, "new_category")?,
    })
}

fn template_quality(v: &Value) -> Option<HealthEvent> {
    Some(HealthEvent::TemplateQuality {
        template: template_ref(v)?,
        previous: text(v, "previous_quality_score").map(|s| QualityRating::parse(&s)),
        new: QualityRating::parse(&text(v, "new_quality_score")?),
    })
}

/// A non-empty string field (Meta sometimes sends numbers: kept as their digits).
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lenient_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::event::WebhookEvent;
    use crate::domain::health::{HealthEvent, QualityRating, TemplateStatus};
    use crate::whatsapp::parse::parse_webhook;

    fn one(path: &str) -> (String, HealthEvent) {
        let full = format!("{}/tests/fixtures/webhooks/{path}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        match parse_webhook(&body).as_slice() {
            [WebhookEvent::Health { waba_id, health }] => (waba_id.clone(), health.clone()),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn number_quality_updates_give_rating_and_limit_tier() {
        let (waba, e) = one("meta/phone_number_quality_update/flagged.json");
        assert_eq!(waba, "102290129340398");
        assert_eq!(
            e,
            HealthEvent::NumberQuality {
                display_phone_number: "15550783881".into(),
                event: "FLAGGED".into(),
                limit_tier: Some("TIER_10K".into()),
                rating: Some(QualityRating::Red),
            }
        );
        let (_, e) = one("meta/phone_number_quality_update/unflagged.json");
        assert!(matches!(
            e,
            HealthEvent::NumberQuality {
                rating: Some(QualityRating::Green),
                ..
            }
        ));
        let (_, e) = one("meta/phone_number_quality_update/upgrade.json");
        match e {
            HealthEvent::NumberQuality { rating, limit_tier, .. } => {
                assert_eq!(rating, None);
                assert_eq!(limit_tier.as_deref(), Some("TIER_100K"));
            }
            e => panic!("{e:?}"),
        }
        // An explicit rating, when a relay sends one, wins over the event.
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"phone_number_quality_update","value":{"event":"FLAGGED","quality_rating":"YELLOW"}}]}]}"#;
        assert!(matches!(
            parse_webhook(body).as_slice(),
            [WebhookEvent::Health {
                health: HealthEvent::NumberQuality {
                    rating: Some(QualityRating::Yellow),
                    ..
                },
                ..
            }]
        ));
    }

    #[test]
    fn account_updates_give_restrictions_bans_and_violations() {
        let (_, e) = one("pywa/account_update/account_restriction.json");
        assert_eq!(e.restricts_account(), Some(true));
        match &e {
            HealthEvent::Account { restrictions, .. } => {
                assert_eq!(restrictions.len(), 2);
                assert_eq!(restrictions[0].restriction_type, "RESTRICTED_BIZ_INITIATED_MESSAGING");
                assert_eq!(restrictions[0].expiration, Some(1641330498));
            }
            e => panic!("{e:?}"),
        }
        let (_, e) = one("pywa/account_update/account_violation.json");
        assert!(matches!(&e, HealthEvent::Account { violation: Some(v), .. } if v == "ADULT"));
        let (_, e) = one("pywa/account_update/account_disabled.json");
        assert!(
            matches!(&e, HealthEvent::Account { ban_state: Some(b), ban_date: Some(d), .. } if b == "REINSTATE" && d == "April 17, 2025")
        );
        assert_eq!(e.restricts_account(), Some(false));
        let (_, e) = one("meta/account_update/disabled.json");
        assert_eq!(e.restricts_account(), Some(true));
    }

    #[test]
    fn template_updates_give_status_reason_category_and_quality() {
        let (_, e) = one("pywa/template_status_update/approved.json");
        match e {
            HealthEvent::TemplateStatus {
                template,
                status,
                reason,
                ..
            } => {
                assert_eq!(template.id, "1689556908129832");
                assert_eq!(template.name, "order_confirmation");
                assert_eq!(template.language, "en_US");
                assert_eq!(status, TemplateStatus::Approved);
                assert_eq!(reason, None, "NONE is no reason");
            }
            e => panic!("{e:?}"),
        }
        let (_, e) = one("pywa/template_status_update/rejected.json");
        match e {
            HealthEvent::TemplateStatus { status, reason, .. } => {
                assert_eq!(status, TemplateStatus::Rejected);
                let reason = reason.unwrap();
                assert!(
                    reason.starts_with("INVALID_FORMAT: Your template has parameters"),
                    "{reason}"
                );
            }
            e => panic!("{e:?}"),
        }
        for (path, want) in [
            (
                "meta/message_template_status_update/paused.json",
                TemplateStatus::Paused,
            ),
            (
                "meta/message_template_status_update/disabled.json",
                TemplateStatus::Disabled,
            ),
        ] {
            let (_, e) = one(path);
            match e {
                HealthEvent::TemplateStatus { status, reason, .. } => {
                    assert_eq!(status, want, "{path}");
                    assert!(reason.is_some(), "{path}");
                }
                e => panic!("{e:?}"),
            }
        }
        let (_, e) = one("pywa/template_category_update/marketing.json");
        assert!(matches!(&e, HealthEvent::TemplateCategory { new_category, .. } if new_category == "MARKETING"));
        let (_, e) = one("pywa/template_quality_update/yellow.json");
        assert!(matches!(
            e,
            HealthEvent::TemplateQuality {
                previous: Some(QualityRating::Green),
                new: QualityRating::Yellow,
                ..
            }
        ));
    }

    #[test]
    fn a_health_field_without_its_fields_is_kept_raw() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"phone_number_quality_update","value":{}},
            {"field":"message_template_status_update","value":{"event":"APPROVED"}}]}]}"#;
        let events = parse_webhook(body);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| matches!(e, WebhookEvent::Unhandled { .. })));
    }
}
