//! Checking a notification rule as a tenant sends it
//! (`POST /api/v1/notification-rules`): every error names its field, a shape
//! error is a 400, and an event this server cannot make real (`late_risk`,
//! `eta_changed`: no part of the tree emits them yet) is a 422, so a rule
//! never waits silently for something that will not come.

use axum::http::StatusCode;
use serde_json::Value;

use super::template::unknown_placeholders;
use super::{NewRule, Template, TriggerEvent};
use crate::error::AppError;

/// Most addresses one rule may list.
const MAX_ADDRESSES: usize = 20;
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 10_000;

/// The largest `min_change_min` (a day).
const MAX_MIN_CHANGE_MIN: u64 = 24 * 60;

fn unsupported(field: &str, message: String) -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsupported",
        format!("`{field}`: {message}"),
    )
}

/// Whether `text` is an address an SMTP server would take.
pub(crate) fn is_email_address(text: &str) -> bool {
    text.len() <= 254 && text.parse::<lettre::Address>().is_ok()
}

/// A rule from its JSON body.
pub(crate) fn validate_rule(body: &Value) -> Result<NewRule, AppError> {
    let object = body
        .as_object()
        .ok_or_else(|| AppError::invalid("body", "must be a JSON object"))?;
    let allowed = [
        "event",
        "channel",
        "recipients",
        "addresses",
        "template",
        "min_change_min",
    ];
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(AppError::invalid(
            unknown,
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        ));
    }
    let event_text = object
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| AppError::invalid("event", "is required (a string)"))?;
    let event = TriggerEvent::parse(event_text).ok_or_else(|| {
        AppError::invalid(
            "event",
            format!(
                "`{event_text}` is not an event; expected one of: {}",
                event_names()
            ),
        )
    })?;
    if event == TriggerEvent::Position {
        return Err(AppError::invalid(
            "event",
            "`position` is for webhooks (POST /api/v1/webhooks), not e-mail rules",
        ));
    }
    let min_change_min = match object.get("min_change_min") {
        None | Some(Value::Null) => None,
        Some(_) if event != TriggerEvent::EtaChanged => {
            return Err(unsupported(
                "min_change_min",
                format!("only for `eta_changed` rules, not `{event_text}`"),
            ));
        }
        Some(value) => Some(
            value
                .as_u64()
                .filter(|n| (1..=MAX_MIN_CHANGE_MIN).contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    AppError::invalid(
                        "min_change_min",
                        format!("{value}: expected whole minutes, 1..{MAX_MIN_CHANGE_MIN}"),
                    )
                })?,
        ),
    };
    match object.get("channel") {
        None => {}
        Some(Value::String(c)) if c == "email" => {}
        Some(Value::String(c)) if c == "webhook" => {
            return Err(unsupported(
                "channel",
                "webhooks are configured with POST /api/v1/webhooks, not as rules".into(),
            ));
        }
        Some(other) => {
            return Err(AppError::invalid(
                "channel",
                format!("{other} is not a channel; expected \"email\""),
            ));
        }
    }
    let mut to_customer = false;
    match object.get("recipients") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some("customer") => to_customer = true,
                    _ => {
                        return Err(AppError::invalid(
                            format!("recipients[{i}]"),
                            format!(
                                "{item} is not a recipient; expected \"customer\" (list further addresses in `addresses`)"
                            ),
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(AppError::invalid("recipients", "must be an array")),
    }
    let mut addresses: Vec<String> = Vec::new();
    match object.get("addresses") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_ADDRESSES {
                return Err(AppError::invalid(
                    "addresses",
                    format!("at most {MAX_ADDRESSES} addresses"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let address = item
                    .as_str()
                    .map(|a| a.trim().to_ascii_lowercase())
                    .filter(|a| is_email_address(a))
                    .ok_or_else(|| {
                        AppError::invalid(
                            format!("addresses[{i}]"),
                            format!("{item} is not an e-mail address"),
                        )
                    })?;
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
        Some(_) => {
            return Err(AppError::invalid(
                "addresses",
                "must be an array of e-mail addresses",
            ));
        }
    }
    if !to_customer && addresses.is_empty() {
        return Err(AppError::invalid(
            "recipients",
            "the rule has nobody to write to: add \"customer\" or list `addresses`",
        ));
    }
    let template = match object.get("template") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            if let Some(unknown) = t.keys().find(|k| *k != "subject" && *k != "body") {
                return Err(AppError::invalid(
                    format!("template.{unknown}"),
                    "unknown field; expected subject, body",
                ));
            }
            let text = |name: &str, max: usize| -> Result<String, AppError> {
                let field = format!("template.{name}");
                let text = t
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| AppError::invalid(&field, "is required (a non-empty string)"))?;
                if text.chars().count() > max {
                    return Err(AppError::invalid(
                        &field,
                        format!("longer than {max} characters"),
                    ));
                }
                let unknown = unknown_placeholders(text);
                if !unknown.is_empty() {
                    return Err(AppError::invalid(
                        &field,
                        format!(
                            "unknown placeholder {}; known: {}",
                            unknown
                                .iter()
                                .map(|u| format!("{{{{{u}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            super::template::PLACEHOLDERS.join(", ")
                        ),
                    ));
                }
                Ok(text.to_owned())
            };
            Some(Template {
                subject: text("subject", MAX_SUBJECT_CHARS)?,
                body: text("body", MAX_BODY_CHARS)?,
            })
        }
        Some(_) => {
            return Err(AppError::invalid(
                "template",
                "must be an object {subject, body}",
            ));
        }
    };
    Ok(NewRule {
        event,
        to_customer,
        addresses,
        template,
        min_change_min,
    })
}

fn event_names() -> String {
    TriggerEvent::ALL
        .iter()
        .filter(|e| **e != TriggerEvent::Position)
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> AppError {
        validate_rule(&body).expect_err("refused")
    }

    #[test]
    fn the_issues_example_is_a_rule_to_the_customer() {
        let rule = validate_rule(
            &json!({"event": "dispatched", "channel": "email", "recipients": ["customer"]}),
        )
        .expect("valid");
        assert_eq!(rule.event, TriggerEvent::Dispatched);
        assert!(rule.to_customer);
        assert!(rule.addresses.is_empty() && rule.template.is_none());
    }

    #[test]
    fn alert_events_are_rules_and_eta_changed_takes_a_threshold() {
        let rule = validate_rule(
            &json!({"event": "eta_changed", "recipients": ["customer"], "min_change_min": 20}),
        )
        .expect("valid");
        assert_eq!(rule.event, TriggerEvent::EtaChanged);
        assert_eq!(rule.min_change_min, Some(20));
        for event in ["late_risk", "late_risk_cleared"] {
            let rule =
                validate_rule(&json!({"event": event, "recipients": ["customer"]})).expect("valid");
            assert_eq!(rule.event.as_str(), event);
        }
    }

    #[test]
    fn addresses_are_lowercased_and_deduplicated() {
        let rule = validate_rule(
            &json!({"event": "delivered", "addresses": ["Ops@Acme.test", "ops@acme.test"]}),
        )
        .expect("valid");
        assert!(!rule.to_customer);
        assert_eq!(rule.addresses, vec!["ops@acme.test".to_owned()]);
    }

    #[test]
    fn each_error_names_its_field() {
        let cases = [
            (json!({"recipients": ["customer"]}), 400, "`event`"),
            (
                json!({"event": "shipped", "recipients": ["customer"]}),
                400,
                "`event`",
            ),
            (
                json!({"event": "eta_changed", "recipients": ["customer"], "min_change_min": 0}),
                400,
                "`min_change_min`",
            ),
            (
                json!({"event": "dispatched", "recipients": ["customer"], "min_change_min": 15}),
                422,
                "`min_change_min`",
            ),
            (
                json!({"event": "dispatched", "channel": "sms", "recipients": ["customer"]}),
                400,
                "`channel`",
            ),
            (
                json!({"event": "dispatched", "recipients": ["customer", "boss"]}),
                400,
                "`recipients[1]`",
            ),
            (
                json!({"event": "dispatched", "addresses": ["ok@a.test", "not-an-address"]}),
                400,
                "`addresses[1]`",
            ),
            (
                json!({"event": "dispatched", "recipients": []}),
                400,
                "`recipients`",
            ),
            (
                json!({"event": "dispatched", "recipients": ["customer"], "template": {"subject": "Hi"}}),
                400,
                "`template.body`",
            ),
            (
                json!({"event": "dispatched", "recipients": ["customer"], "template": {"subject": "{{refrence}}", "body": "x"}}),
                400,
                "`template.subject`",
            ),
            (
                json!({"event": "dispatched", "recipients": ["customer"], "colour": "red"}),
                400,
                "`colour`",
            ),
        ];
        for (body, status, field) in cases {
            let err = refused(body.clone());
            assert_eq!(err.status.as_u16(), status, "{body}: {}", err.message);
            assert!(err.message.starts_with(field), "{body}: {}", err.message);
        }
    }

    #[test]
    fn an_unknown_placeholder_is_named_with_the_known_ones() {
        let err = refused(json!({"event": "dispatched", "recipients": ["customer"],
            "template": {"subject": "x", "body": "Track: {{trackign_url}}"}}));
        assert!(err.message.contains("{{trackign_url}}"), "{}", err.message);
        assert!(err.message.contains("tracking_url"), "{}", err.message);
    }
}
