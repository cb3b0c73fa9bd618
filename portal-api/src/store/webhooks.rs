//! The store side of webhooks: a tenant's endpoints (`webhook_endpoints`,
//! secrets sealed), their messages (`notifications` rows of channel
//! `webhook`, made from the outbox by the same expansion as e-mails, with the
//! body they will always send), and the count of messages in a row that
//! failed for good, which disables an endpoint.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::notifications::DeliveryGauges;
use super::notifications::{
    NOTIFICATION_COLUMNS, NotificationRow, attempts_of, finish_notification, notification_row,
};
use super::rows::{parse_ts, ts};
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::notify::{
    Attempt, AttemptReport, Notification, Outcome, TriggerEvent, Webhook, WebhookEvent,
    WebhookTarget, idempotency_key, payload,
};
use crate::secrets::new_id;

const COLUMNS: &str = "id, tenant_id, url, events, previous_until, consecutive_failures, \
     disabled_at, disabled_reason, created_at, secret_sealed, previous_secret_sealed, deleted_at";

type EndpointRow = (Webhook, String, Option<String>, Option<DateTime<Utc>>, bool);

fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    let opt_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<String>>(i)?
            .and_then(|t| parse_ts(&t).ok()))
    };
    let events: String = r.get(3)?;
    let events: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    let previous_until = opt_ts(4)?;
    Ok((
        Webhook {
            id: r.get(0)?,
            tenant_id: TenantId(r.get(1)?),
            url: r.get(2)?,
            events: events
                .iter()
                .filter_map(|e| WebhookEvent::parse(e))
                .collect(),
            previous_secret_until: previous_until,
            consecutive_failures: r.get(5)?,
            disabled_at: opt_ts(6)?,
            disabled_reason: r.get(7)?,
            created_at: opt_ts(8)?.unwrap_or_default(),
        },
        r.get(9)?,
        r.get(10)?,
        previous_until,
        r.get::<_, Option<String>>(11)?.is_some(),
    ))
}

pub(super) fn one(c: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Webhook>> {
    Ok(c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM webhook_endpoints \
             WHERE id = ?1 AND tenant_id = ?2 AND deleted_at IS NULL"
        ),
        params![id, tenant.as_str()],
        endpoint_row,
    )
    .optional()?
    .map(|row| row.0))
}

fn owned(c: &Connection, tenant: &TenantId, id: &str) -> Result<Webhook> {
    one(c, tenant, id)?.ok_or(Error::NotFound("webhook"))
}

pub(super) fn list(c: &Connection, tenant: &TenantId) -> Result<Vec<Webhook>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 AND deleted_at IS NULL \
         ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([tenant.as_str()], endpoint_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub(super) fn create(
    c: &Connection,
    tenant: &TenantId,
    id: &str,
    url: &str,
    events: &[WebhookEvent],
    secret_sealed: &str,
) -> Result<Webhook> {
    let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    c.execute(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_sealed, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            tenant.as_str(),
            url,
            json!(events).to_string(),
            secret_sealed,
            ts(Utc::now())
        ],
    )?;
    owned(c, tenant, id)
}

pub(super) fn delete(c: &Connection, tenant: &TenantId, id: &str) -> Result<()> {
    let changed = c.execute(
        "UPDATE webhook_endpoints SET deleted_at = ?1 \
         WHERE id = ?2 AND tenant_id = ?3 AND deleted_at IS NULL",
        params![ts(Utc::now()), id, tenant.as_str()],
    )?;
    if changed == 0 {
        return Err(Error::NotFound("webhook"));
    }
    Ok(())
}

pub(super) fn rotate(
    c: &Connection,
    tenant: &TenantId,
    id: &str,
    secret_sealed: &str,
    grace_until: DateTime<Utc>,
) -> Result<Webhook> {
    owned(c, tenant, id)?;
    c.execute(
        "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
         previous_until = ?1, secret_sealed = ?2 WHERE id = ?3 AND tenant_id = ?4",
        params![ts(grace_until), secret_sealed, id, tenant.as_str()],
    )?;
    owned(c, tenant, id)
}

pub(super) fn enable(c: &Connection, tenant: &TenantId, id: &str) -> Result<Webhook> {
    owned(c, tenant, id)?;
    c.execute(
        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, \
         consecutive_failures = 0 WHERE id = ?1 AND tenant_id = ?2",
        params![id, tenant.as_str()],
    )?;
    owned(c, tenant, id)
}

pub(super) fn target(
    c: &Connection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebhookTarget>> {
    let row = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = ?1"),
            [id],
            endpoint_row,
        )
        .optional()?;
    Ok(row.map(
        |(webhook, secret_sealed, previous, until, deleted)| WebhookTarget {
            webhook,
            deleted,
            secret_sealed,
            previous_sealed: previous.filter(|_| until.is_some_and(|u| now < u)),
        },
    ))
}

pub(super) fn deliveries(
    c: &Connection,
    tenant: &TenantId,
    id: &str,
    limit: usize,
) -> Result<Vec<(Notification, Vec<Attempt>)>> {
    owned(c, tenant, id)?;
    let mut stmt = c.prepare(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
         WHERE rule_id = ?1 AND channel = 'webhook' AND tenant_id = ?2 \
         ORDER BY created_at DESC, id DESC LIMIT ?3"
    ))?;
    let rows: Vec<NotificationRow> = stmt
        .query_map(params![id, tenant.as_str(), limit as i64], notification_row)?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|row| {
            let n = finish_notification(row)?;
            let attempts = attempts_of(c, &n.id)?;
            Ok((n, attempts))
        })
        .collect()
}

pub(super) fn replay(
    c: &Connection,
    tenant: &TenantId,
    webhook: &str,
    delivery: &str,
    now: DateTime<Utc>,
    retry_for: Duration,
) -> Result<Notification> {
    owned(c, tenant, webhook)?;
    let state: Option<String> = c
        .query_row(
            "SELECT state FROM notifications WHERE id = ?1 AND rule_id = ?2 \
             AND channel = 'webhook' AND tenant_id = ?3",
            params![delivery, webhook, tenant.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    match state.as_deref() {
        None => return Err(Error::NotFound("delivery")),
        Some("pending" | "sending") => {
            return Err(Error::Conflict {
                code: "delivery_in_progress",
                message: "the delivery is still being attempted; replay it once it has ended"
                    .into(),
            });
        }
        Some(_) => {}
    }
    c.execute(
        "UPDATE notifications SET state = 'pending', next_attempt_at = ?1, give_up_at = ?2, \
         last_error = NULL WHERE id = ?3",
        params![ts(now), ts(now + retry_for), delivery],
    )?;
    c.query_row(
        &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1"),
        [delivery],
        notification_row,
    )
    .map_err(Error::from)
    .and_then(finish_notification)
}

pub(super) fn gauges(c: &Connection) -> Result<DeliveryGauges> {
    let count = |sql: &str| -> Result<u64> {
        let n: i64 = c.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let waiting = "SELECT COUNT(*) FROM notifications WHERE state IN ('pending', 'sending') \
         AND channel = ";
    Ok(DeliveryGauges {
        webhooks_disabled: count(
            "SELECT COUNT(*) FROM webhook_endpoints \
             WHERE disabled_at IS NOT NULL AND deleted_at IS NULL",
        )?,
        email_waiting: count(&format!("{waiting}'email'"))?,
        webhook_waiting: count(&format!("{waiting}'webhook'"))?,
    })
}

/// After a webhook message's attempt: a delivery resets its endpoint's count
/// of messages failed in a row; a message failed for good adds one, and the
/// endpoint is disabled when the count reaches the limit.
pub(super) fn count_outcome(
    c: &Connection,
    endpoint: &str,
    outcome: &Outcome,
    report: &AttemptReport,
    now: DateTime<Utc>,
) -> Result<()> {
    match outcome {
        Outcome::Sent => {
            c.prepare_cached(
                "UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ?1",
            )?
            .execute([endpoint])?;
        }
        Outcome::Failed { error } => {
            let limit = report.webhook_disable_after.max(1);
            let reason =
                format!("{limit} message(s) in a row failed after every retry; the last: {error}");
            c.prepare_cached(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                 disabled_at = CASE WHEN consecutive_failures + 1 >= ?2 THEN ?3 END, \
                 disabled_reason = CASE WHEN consecutive_failures + 1 >= ?2 THEN ?4 END \
                 WHERE id = ?1 AND disabled_at IS NULL",
            )?
            .execute(params![endpoint, limit, ts(now), reason])?;
        }
        Outcome::Retry { .. } | Outcome::Suppressed { .. } => {}
    }
    Ok(())
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

/// How long a position message is retried: a later fix replaces it soon.
const POSITION_RETRY_FOR_S: i64 = 300;

/// Makes `vehicle.position` messages for the endpoints subscribed to
/// positions: per endpoint and vehicle of a live order of its tenant, one
/// with the vehicle's latest fix when that fix is newer than the last one
/// sent and the last was sent at least `every` ago (coalescing: a 1 Hz truck
/// makes one message per `every`, never a queue). Returns how many.
pub(super) fn enqueue_positions(
    c: &Connection,
    now: DateTime<Utc>,
    every: Duration,
) -> Result<usize> {
    let endpoints: Vec<(String, String, String)> = c
        .prepare_cached(
            "SELECT id, tenant_id, url FROM webhook_endpoints WHERE deleted_at IS NULL \
             AND disabled_at IS NULL AND events LIKE '%\"position\"%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut made = 0;
    for (endpoint, tenant, url) in endpoints {
        type Fix = (String, String, f64, f64, Option<f64>, Option<f64>, String);
        let fixes: Vec<Fix> = c
            .prepare_cached(
                "SELECT p.vehicle_id, p.at, p.lat, p.lon, p.speed_mps, p.heading_deg, \
                 (SELECT group_concat(o.id) FROM orders o WHERE o.tenant_id = p.tenant_id \
                   AND o.vehicle_id = p.vehicle_id AND o.status IN ('dispatched', 'at_pickup', \
                   'picked_up', 'out_for_delivery', 'at_delivery')) AS live \
                 FROM vehicle_positions p LEFT JOIN webhook_position_marks m \
                   ON m.endpoint_id = ?1 AND m.vehicle_id = p.vehicle_id \
                 WHERE p.tenant_id = ?2 AND (m.fix_at IS NULL OR (p.at > m.fix_at AND m.sent_at <= ?3)) \
                 AND live IS NOT NULL",
            )?
            .query_map(params![endpoint, tenant, ts(now - every)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (vehicle, at, lat, lon, speed_mps, heading_deg, orders) in fixes {
            let orders: Vec<&str> = orders.split(',').collect();
            let body = payload(
                "vehicle.position",
                parse_ts(&at)?,
                json!({
                    "vehicle_id": vehicle,
                    "lat": lat,
                    "lon": lon,
                    "at": at,
                    "speed_mps": speed_mps,
                    "heading_deg": heading_deg,
                    "order_ids": orders,
                }),
            );
            let event_id = format!("pos_{vehicle}_{at}");
            let key = idempotency_key(orders[0], &endpoint, &event_id, "webhook");
            c.prepare_cached(
                "INSERT OR IGNORE INTO notifications (id, idempotency_key, tenant_id, order_id, \
                 rule_id, event, event_id, channel, recipient, state, attempts, next_attempt_at, \
                 give_up_at, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5, 'position', ?6, \
                 'webhook', ?7, 'pending', 0, ?8, ?9, ?8, ?10)",
            )?
            .execute(params![
                new_id("ntf_"),
                key,
                tenant,
                orders[0],
                endpoint,
                event_id,
                url,
                ts(now),
                ts(now + Duration::seconds(POSITION_RETRY_FOR_S)),
                body,
            ])?;
            c.prepare_cached(
                "INSERT INTO webhook_position_marks (endpoint_id, vehicle_id, fix_at, sent_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (endpoint_id, vehicle_id) DO UPDATE SET \
                 fix_at = excluded.fix_at, sent_at = excluded.sent_at",
            )?
            .execute(params![endpoint, vehicle, at, ts(now)])?;
            made += 1;
        }
    }
    Ok(made)
}

/// The payload of an outbox entry: its type and data.
fn body_of(
    topic: &str,
    entry: &Value,
    trigger: TriggerEvent,
    order: &str,
    reference: &str,
) -> (String, Value) {
    let field = |name: &str| entry.get(name).cloned().unwrap_or(Value::Null);
    match (topic, trigger) {
        ("order.late_risk", _) => (
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
        _ => (
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

/// Makes one webhook message per enabled endpoint of `tenant` subscribed to
/// the entry (only `only` for an entry judged for one subscriber).
#[allow(clippy::too_many_arguments)]
pub(super) fn expand_entry(
    c: &Connection,
    tenant: &TenantId,
    order: &str,
    topic: &str,
    entry: &Value,
    (trigger, event_id): (TriggerEvent, &str),
    only: Option<&str>,
    (now, retry_for): (DateTime<Utc>, Duration),
) -> Result<()> {
    let wanted = webhook_event(trigger);
    let endpoints: Vec<(String, String, String)> = c
        .prepare_cached(
            "SELECT id, url, events FROM webhook_endpoints WHERE tenant_id = ?1 \
             AND deleted_at IS NULL AND disabled_at IS NULL",
        )?
        .query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let endpoints: Vec<(String, String)> = endpoints
        .into_iter()
        .filter(|(id, _, events)| {
            let events: Vec<String> = serde_json::from_str(events).unwrap_or_default();
            events.iter().any(|e| e == wanted.as_str()) && only.is_none_or(|o| o == id)
        })
        .map(|(id, url, _)| (id, url))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let reference: String = c
        .prepare_cached("SELECT reference FROM orders WHERE id = ?1")?
        .query_row([order], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let (kind, data) = body_of(topic, entry, trigger, order, &reference);
    let at = entry
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| parse_ts(t).ok())
        .unwrap_or(now);
    let body = payload(&kind, at, data);
    for (endpoint, url) in endpoints {
        let key = idempotency_key(order, &endpoint, event_id, "webhook");
        c.prepare_cached(
            "INSERT OR IGNORE INTO notifications (id, idempotency_key, tenant_id, order_id, \
             rule_id, event, event_id, channel, recipient, state, attempts, next_attempt_at, \
             give_up_at, created_at, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'webhook', ?8, 'pending', 0, ?9, ?10, ?9, ?11)",
        )?
        .execute(params![
            new_id("ntf_"),
            key,
            tenant.as_str(),
            order,
            endpoint,
            trigger.as_str(),
            event_id,
            url,
            ts(now),
            ts(now + retry_for),
            body,
        ])?;
    }
    Ok(())
}
