//! The rows of the notification tables both backends store (rules,
//! messages, attempts, webhook endpoints), and their mapping to the
//! `crate::notify` types. SQLite and PostgreSQL keep the same columns with
//! the same text encodings (times as RFC 3339 text, enums by name, lists as
//! JSON), so each backend only reads a row's columns into one of these
//! structs by index and the meaning is decided here, once.

use chrono::{DateTime, Utc};
use engine::OrderId;

use super::records::{parse_opt_ts, parse_ts};
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::notify::{
    Attempt, Channel, DeliveryState, NewRule, Notification, Rule, Template, TriggerEvent, Webhook,
    WebhookEvent, WebhookTarget,
};

/// The columns a [`RuleRow`] is read from, in its field order.
pub(crate) const RULE_COLUMNS: &str =
    "id, tenant_id, event, to_customer, addresses, subject, body, created_at, min_change_min";

/// A `notification_rules` row.
#[derive(Debug)]
pub(crate) struct RuleRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) event: String,
    pub(crate) to_customer: bool,
    /// JSON list of addresses.
    pub(crate) addresses: String,
    pub(crate) subject: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) created_at: String,
    pub(crate) min_change_min: Option<i64>,
}

pub(crate) fn finish_rule(row: RuleRow) -> Result<Rule> {
    let event = TriggerEvent::parse(&row.event).ok_or_else(|| {
        Error::store_permanent(format!("unknown event `{}` in a rule", row.event))
    })?;
    let addresses: Vec<String> = serde_json::from_str(&row.addresses)
        .map_err(|e| Error::store_permanent(format!("a rule's addresses: {e}")))?;
    let template = match (row.subject, row.body) {
        (Some(subject), Some(body)) => Some(Template { subject, body }),
        _ => None,
    };
    Ok(Rule {
        id: row.id,
        tenant_id: TenantId(row.tenant_id),
        rule: NewRule {
            event,
            to_customer: row.to_customer,
            addresses,
            template,
            min_change_min: row
                .min_change_min
                .map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
        },
        created_at: parse_ts(&row.created_at)?,
    })
}

/// A rule's addresses as stored (a JSON list).
pub(crate) fn addresses_json(rule: &NewRule) -> Result<String> {
    serde_json::to_string(&rule.addresses)
        .map_err(|e| Error::store_permanent(format!("serializing addresses: {e}")))
}

/// The columns a [`NotificationRow`] is read from, in its field order.
pub(crate) const NOTIFICATION_COLUMNS: &str = "id, idempotency_key, tenant_id, order_id, rule_id, \
     event, event_id, recipient, state, attempts, next_attempt_at, give_up_at, last_error, \
     created_at, sent_at, channel, body";

/// A `notifications` row.
#[derive(Debug)]
pub(crate) struct NotificationRow {
    pub(crate) id: String,
    pub(crate) idempotency_key: String,
    pub(crate) tenant_id: String,
    pub(crate) order_id: String,
    pub(crate) rule_id: String,
    pub(crate) event: String,
    pub(crate) event_id: String,
    pub(crate) recipient: String,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: String,
    pub(crate) give_up_at: String,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: String,
    pub(crate) sent_at: Option<String>,
    pub(crate) channel: String,
    pub(crate) body: Option<String>,
}

pub(crate) fn finish_notification(row: NotificationRow) -> Result<Notification> {
    Ok(Notification {
        id: row.id,
        idempotency_key: row.idempotency_key,
        tenant_id: TenantId(row.tenant_id),
        order_id: OrderId(row.order_id),
        rule_id: row.rule_id,
        channel: Channel::parse(&row.channel)
            .ok_or_else(|| Error::store_permanent(format!("unknown channel `{}`", row.channel)))?,
        event: TriggerEvent::parse(&row.event)
            .ok_or_else(|| Error::store_permanent(format!("unknown event `{}`", row.event)))?,
        event_id: row.event_id,
        recipient: row.recipient,
        state: DeliveryState::parse(&row.state)
            .ok_or_else(|| Error::store_permanent(format!("unknown state `{}`", row.state)))?,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: parse_ts(&row.next_attempt_at)?,
        give_up_at: parse_ts(&row.give_up_at)?,
        last_error: row.last_error,
        created_at: parse_ts(&row.created_at)?,
        sent_at: parse_opt_ts(row.sent_at)?,
        body: row.body,
    })
}

/// The columns an [`AttemptRow`] is read from, in its field order.
pub(crate) const ATTEMPT_COLUMNS: &str = "attempt, channel, node, started_at, finished_at, \
     outcome, detail, status_code, duration_ms";

/// A `notification_attempts` row.
#[derive(Debug)]
pub(crate) struct AttemptRow {
    pub(crate) attempt: i64,
    pub(crate) channel: String,
    pub(crate) node: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) status_code: Option<i64>,
    pub(crate) duration_ms: Option<i64>,
}

pub(crate) fn finish_attempt(row: AttemptRow) -> Result<Attempt> {
    Ok(Attempt {
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        channel: row.channel,
        node: row.node,
        started_at: parse_ts(&row.started_at)?,
        finished_at: parse_opt_ts(row.finished_at)?,
        outcome: row.outcome,
        detail: row.detail,
        status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
        duration_ms: row.duration_ms.and_then(|d| u64::try_from(d).ok()),
    })
}

/// The columns an [`EndpointRow`] is read from, in its field order.
pub(crate) const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, events, previous_until, \
     consecutive_failures, disabled_at, disabled_reason, created_at, secret_sealed, \
     previous_secret_sealed, deleted_at";

/// A `webhook_endpoints` row.
#[derive(Debug)]
pub(crate) struct EndpointRow {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) url: String,
    /// JSON list of event names.
    pub(crate) events: String,
    pub(crate) previous_until: Option<String>,
    pub(crate) consecutive_failures: i64,
    pub(crate) disabled_at: Option<String>,
    pub(crate) disabled_reason: Option<String>,
    pub(crate) created_at: String,
    pub(crate) secret_sealed: String,
    pub(crate) previous_secret_sealed: Option<String>,
    pub(crate) deleted_at: Option<String>,
}

/// A time column of an endpoint, read leniently: an endpoint with a garbled
/// time still lists (and can be deleted) rather than failing every read.
fn lenient_ts(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| parse_ts(t).ok())
}

/// The event names an endpoint is subscribed to (an unknown name, from a
/// later version, is skipped).
pub(crate) fn endpoint_events(events_json: &str) -> Vec<String> {
    serde_json::from_str(events_json).unwrap_or_default()
}

/// The endpoint as listed.
pub(crate) fn finish_endpoint(row: &EndpointRow) -> Webhook {
    Webhook {
        id: row.id.clone(),
        tenant_id: TenantId(row.tenant_id.clone()),
        url: row.url.clone(),
        events: endpoint_events(&row.events)
            .iter()
            .filter_map(|e| WebhookEvent::parse(e))
            .collect(),
        previous_secret_until: lenient_ts(row.previous_until.as_deref()),
        consecutive_failures: u32::try_from(row.consecutive_failures).unwrap_or(0),
        disabled_at: lenient_ts(row.disabled_at.as_deref()),
        disabled_reason: row.disabled_reason.clone(),
        created_at: lenient_ts(Some(&row.created_at)).unwrap_or_default(),
    }
}

/// The endpoint as the deliverer needs it at `now`: the rotated-out secret
/// signs too while its grace lasts.
pub(crate) fn finish_target(row: EndpointRow, now: DateTime<Utc>) -> WebhookTarget {
    let webhook = finish_endpoint(&row);
    let grace = lenient_ts(row.previous_until.as_deref());
    WebhookTarget {
        webhook,
        deleted: row.deleted_at.is_some(),
        secret_sealed: row.secret_sealed,
        previous_sealed: row
            .previous_secret_sealed
            .filter(|_| grace.is_some_and(|until| now < until)),
    }
}

/// An events list as stored (a JSON list of names).
pub(crate) fn events_json(events: &[WebhookEvent]) -> String {
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    serde_json::json!(names).to_string()
}

/// A count as a gauge (a negative count cannot happen; it reads as 0).
pub(crate) fn gauge(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}
