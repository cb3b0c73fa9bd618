//! The decisions of the notification store, shared by both backends: which
//! trigger an outbox entry stands for, who an e-mail rule sends to, which
//! endpoints a webhook entry goes to and the body they get, what an
//! attempt's outcome writes, when an endpoint is disabled, the coalesced
//! position message, and whether a delivery may be replayed. Pure functions:
//! the backends only run the SQL around them, so SQLite and PostgreSQL make
//! the same messages from the same outbox.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::records::{parse_ts, ts};
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::notify::{Outcome, Rule, TriggerEvent, WebhookEvent, idempotency_key, payload};

/// The outbox reader of the deliverers (its row in `outbox_cursors`).
pub(crate) const EMAIL_READER: &str = "email";

/// What a message found `sending` past its lease records.
pub(crate) const INTERRUPTED: &str = "interrupted: the node sending it stopped before the SMTP \
     server's answer was recorded; not resent, so it is never delivered twice";

/// How long a position message is retried: a later fix replaces it soon.
pub(crate) const POSITION_RETRY_FOR_S: i64 = 300;

/// An outbox entry the deliverers act on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutboxEntry {
    pub(crate) tenant: TenantId,
    pub(crate) topic: String,
    pub(crate) payload: Value,
    pub(crate) order: String,
    pub(crate) trigger: TriggerEvent,
    pub(crate) event_id: String,
    /// An `eta_changed` entry was judged for one subscriber (its own
    /// threshold and interval): only that rule or endpoint sends it.
    pub(crate) only: Option<String>,
}

/// The entry an outbox row stands for, if the deliverers act on it. An
/// entry this reader cannot parse is not its business (another topic, or a
/// shape from a later version): skipped, not retried.
pub(crate) fn outbox_entry(tenant: &str, topic: &str, payload: &str) -> Option<OutboxEntry> {
    let payload = serde_json::from_str::<Value>(payload).ok()?;
    let (trigger, event_id) = trigger_of(topic, &payload)?;
    let order = payload.get("order_id")?.as_str()?.to_owned();
    let only = payload
        .get("subscriber_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(OutboxEntry {
        tenant: TenantId(tenant.to_owned()),
        topic: topic.to_owned(),
        payload,
        order,
        trigger,
        event_id,
        only,
    })
}

/// The trigger and event id an outbox entry stands for, if any.
pub(crate) fn trigger_of(topic: &str, payload: &Value) -> Option<(TriggerEvent, String)> {
    let event_id = || Some(payload.get("event_id")?.as_str()?.to_owned());
    match topic {
        "order.late_risk" => {
            let trigger = match payload.get("kind")?.as_str()? {
                "late_risk" => TriggerEvent::LateRisk,
                "late_risk_cleared" => TriggerEvent::LateRiskCleared,
                _ => return None,
            };
            Some((trigger, event_id()?))
        }
        "order.eta_changed" => Some((TriggerEvent::EtaChanged, event_id()?)),
        "order.created" => Some((TriggerEvent::Created, "created".to_owned())),
        "order.event" => {
            let event_id = event_id()?;
            let trigger = match payload.get("kind")?.as_str()? {
                "status" => TriggerEvent::parse(payload.get("status")?.as_str()?)?,
                "exception" => TriggerEvent::Exception,
                _ => return None,
            };
            // `created` comes from `order.created` only.
            (trigger != TriggerEvent::Created).then_some((trigger, event_id))
        }
        _ => None,
    }
}

/// The tenant's rules that send an entry.
pub(crate) fn rules_for(rules: Vec<Rule>, entry: &OutboxEntry) -> Vec<Rule> {
    rules
        .into_iter()
        .filter(|r| {
            r.rule.event == entry.trigger && entry.only.as_ref().is_none_or(|id| *id == r.id)
        })
        .collect()
}

/// Who a rule mails: the order's customer (when the rule says so and the
/// order has an address), then the rule's own addresses, each once.
pub(crate) fn recipients(rule: &Rule, customer_email: Option<&str>) -> Vec<String> {
    let mut recipients: Vec<String> = Vec::new();
    if rule.rule.to_customer
        && let Some(email) = customer_email
    {
        recipients.push(email.trim().to_ascii_lowercase());
    }
    for address in &rule.rule.addresses {
        if !recipients.contains(address) {
            recipients.push(address.clone());
        }
    }
    recipients
}

/// The webhook event a trigger belongs to.
fn webhook_event(trigger: TriggerEvent) -> WebhookEvent {
    match trigger {
        TriggerEvent::LateRisk | TriggerEvent::LateRiskCleared => WebhookEvent::LateRisk,
        TriggerEvent::EtaChanged => WebhookEvent::EtaChanged,
        TriggerEvent::Position => WebhookEvent::Position,
        _ => WebhookEvent::StatusChanged,
    }
}

/// Whether endpoint `id`, subscribed to `events`, gets the entry.
pub(crate) fn endpoint_wants(id: &str, events: &[String], entry: &OutboxEntry) -> bool {
    let wanted = webhook_event(entry.trigger);
    events.iter().any(|e| e == wanted.as_str()) && entry.only.as_deref().is_none_or(|o| o == id)
}

/// The signed body every endpoint gets for an entry (`reference` is the
/// order's, empty if it is gone).
pub(crate) fn webhook_body(entry: &OutboxEntry, reference: &str, now: DateTime<Utc>) -> String {
    let (kind, data) = body_of(entry, reference);
    let at = entry
        .payload
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| parse_ts(t).ok())
        .unwrap_or(now);
    payload(&kind, at, data)
}

/// The payload of an outbox entry: its type and data.
fn body_of(entry: &OutboxEntry, reference: &str) -> (String, Value) {
    let field = |name: &str| entry.payload.get(name).cloned().unwrap_or(Value::Null);
    let order = entry.order.as_str();
    match (entry.topic.as_str(), entry.trigger) {
        ("order.late_risk", trigger) => (
            format!("order.{}", trigger.as_str()),
            json!({
                "order_id": order,
                "reference": reference,
                "stop_idx": field("stop_idx"),
                "by_min": field("by_min"),
                "since": field("since"),
            }),
        ),
        ("order.eta_changed", _) => (
            "order.eta_changed".to_owned(),
            json!({
                "order_id": order,
                "reference": reference,
                "stop_idx": field("stop_idx"),
                "eta": field("eta"),
                "previous_eta": field("previous_eta"),
                "change_min": field("change_min"),
            }),
        ),
        (_, TriggerEvent::Exception) => (
            "order.exception".to_owned(),
            json!({"order_id": order, "reference": reference, "note": field("note"), "at": field("at")}),
        ),
        (_, trigger) => (
            "order.status_changed".to_owned(),
            json!({
                "order_id": order,
                "reference": reference,
                "status": trigger.as_str(),
                "at": field("at"),
                "note": field("note"),
            }),
        ),
    }
}

/// A vehicle's latest fix, as the position coalescer reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PositionFix {
    pub(crate) vehicle: String,
    /// As stored (RFC 3339 text).
    pub(crate) at: String,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) speed_mps: Option<f64>,
    pub(crate) heading_deg: Option<f64>,
    /// The live orders the vehicle carries (at least one).
    pub(crate) orders: Vec<String>,
}

/// A coalesced `vehicle.position` message for one endpoint: its event id,
/// idempotency key and body (the fix's first order carries it).
pub(crate) fn position_message(
    endpoint: &str,
    fix: &PositionFix,
) -> Result<(String, String, String)> {
    let first = fix.orders.first().map(String::as_str).unwrap_or_default();
    let body = payload(
        "vehicle.position",
        parse_ts(&fix.at)?,
        json!({
            "vehicle_id": fix.vehicle,
            "lat": fix.lat,
            "lon": fix.lon,
            "at": fix.at,
            "speed_mps": fix.speed_mps,
            "heading_deg": fix.heading_deg,
            "order_ids": fix.orders,
        }),
    );
    let event_id = format!("pos_{}_{}", fix.vehicle, fix.at);
    let key = idempotency_key(first, endpoint, &event_id, "webhook");
    Ok((event_id, key, body))
}

/// What an attempt's outcome writes: the message's new state, next attempt
/// time (kept when `None`), error and sent time, and the attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinishWrite<'a> {
    pub(crate) state: &'static str,
    pub(crate) next_attempt_at: Option<String>,
    pub(crate) error: Option<&'a str>,
    pub(crate) sent_at: Option<String>,
    pub(crate) attempt_outcome: &'static str,
}

pub(crate) fn finish_write(outcome: &Outcome, now: DateTime<Utc>) -> FinishWrite<'_> {
    let (state, next_attempt_at, error, sent_at) = match outcome {
        Outcome::Sent => ("sent", None, None, Some(ts(now))),
        Outcome::Retry { at, error } => ("pending", Some(ts(*at)), Some(error.as_str()), None),
        Outcome::Failed { error } => ("failed", None, Some(error.as_str()), None),
        Outcome::Suppressed { reason } => ("suppressed", None, Some(reason.as_str()), None),
    };
    FinishWrite {
        state,
        next_attempt_at,
        error,
        sent_at,
        // A retried attempt is logged as `retry`; the others by the state.
        attempt_outcome: if state == "pending" { "retry" } else { state },
    }
}

/// How a webhook message's outcome counts towards disabling its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointCount {
    /// Delivered: the count of failures in a row starts again.
    Reset,
    /// Failed for good: one more; at `limit` the endpoint is disabled with
    /// `reason`.
    Failure { limit: i64, reason: String },
    /// Retried or suppressed: no change.
    Unchanged,
}

pub(crate) fn endpoint_count(outcome: &Outcome, disable_after: u32) -> EndpointCount {
    match outcome {
        Outcome::Sent => EndpointCount::Reset,
        Outcome::Failed { error } => {
            let limit = disable_after.max(1);
            EndpointCount::Failure {
                limit: i64::from(limit),
                reason: format!(
                    "{limit} message(s) in a row failed after every retry; the last: {error}"
                ),
            }
        }
        Outcome::Retry { .. } | Outcome::Suppressed { .. } => EndpointCount::Unchanged,
    }
}

/// Whether a delivery in `state` (`None`: not the endpoint's) may be sent
/// again: only once it has ended.
pub(crate) fn check_replay(state: Option<&str>) -> Result<()> {
    match state {
        None => Err(Error::NotFound("delivery")),
        Some("pending" | "sending") => Err(Error::Conflict {
            code: "delivery_in_progress",
            message: "the delivery is still being attempted; replay it once it has ended".into(),
        }),
        Some(_) => Ok(()),
    }
}

/// An e-mail address as unsubscribes key it.
pub(crate) fn unsubscribe_address(address: &str) -> String {
    address.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_entries_map_to_triggers() {
        let created = serde_json::json!({"order_id": "ord_1"});
        assert_eq!(
            trigger_of("order.created", &created),
            Some((TriggerEvent::Created, "created".into()))
        );
        let status = serde_json::json!({"order_id": "ord_1", "event_id": "evt_1", "kind": "status", "status": "dispatched"});
        assert_eq!(
            trigger_of("order.event", &status),
            Some((TriggerEvent::Dispatched, "evt_1".into()))
        );
        let exception =
            serde_json::json!({"order_id": "ord_1", "event_id": "evt_2", "kind": "exception"});
        assert_eq!(
            trigger_of("order.event", &exception).map(|t| t.0),
            Some(TriggerEvent::Exception)
        );
        let cancelled = serde_json::json!({"order_id": "ord_1", "event_id": "evt_3", "kind": "status", "status": "cancelled"});
        assert_eq!(trigger_of("order.event", &cancelled), None);
        let note = serde_json::json!({"order_id": "ord_1", "event_id": "evt_4", "kind": "note"});
        assert_eq!(trigger_of("order.event", &note), None);
        assert_eq!(trigger_of("order.updated", &created), None);
        let risk = serde_json::json!({"order_id": "ord_1", "event_id": "alr_1", "kind": "late_risk_cleared"});
        assert_eq!(
            trigger_of("order.late_risk", &risk),
            Some((TriggerEvent::LateRiskCleared, "alr_1".into()))
        );
        let moved =
            serde_json::json!({"order_id": "ord_1", "event_id": "eta_1", "subscriber_id": "nr_1"});
        assert_eq!(
            trigger_of("order.eta_changed", &moved),
            Some((TriggerEvent::EtaChanged, "eta_1".into()))
        );
    }

    #[test]
    fn an_entry_judged_for_one_subscriber_goes_to_it_only() {
        let entry = outbox_entry(
            "ten_1",
            "order.eta_changed",
            r#"{"order_id": "ord_1", "event_id": "eta_1", "subscriber_id": "whk_a"}"#,
        )
        .expect("an entry");
        let events = vec!["eta_changed".to_owned()];
        assert!(endpoint_wants("whk_a", &events, &entry));
        assert!(!endpoint_wants("whk_b", &events, &entry));
        assert!(!endpoint_wants(
            "whk_a",
            &["status_changed".to_owned()],
            &entry
        ));
        assert_eq!(outbox_entry("ten_1", "order.event", "not json"), None);
    }

    #[test]
    fn a_retry_keeps_the_message_pending_and_logs_a_retry() {
        let now = Utc::now();
        let retry = Outcome::Retry {
            at: now,
            error: "421 busy".into(),
        };
        let write = finish_write(&retry, now);
        assert_eq!((write.state, write.attempt_outcome), ("pending", "retry"));
        assert_eq!(write.next_attempt_at, Some(ts(now)));
        assert_eq!(finish_write(&Outcome::Sent, now).sent_at, Some(ts(now)));
        let failed = Outcome::Failed {
            error: "550".into(),
        };
        assert_eq!(finish_write(&failed, now).attempt_outcome, "failed");
        assert!(matches!(
            endpoint_count(&failed, 0),
            EndpointCount::Failure { limit: 1, .. }
        ));
    }
}
