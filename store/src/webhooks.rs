//! The store side of webhooks: a tenant's endpoints (`webhook_endpoints`,
//! secrets sealed), their messages (`notifications` rows of channel
//! `webhook`, made from the outbox by the same expansion as e-mails, with the
//! body they will always send), and the count of messages in a row that
//! failed for good, which disables an endpoint.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::notifications::{DeliveryGauges, attempts_of, notification_row};
use super::notify_records::{
    ENDPOINT_COLUMNS, EndpointRow, NOTIFICATION_COLUMNS, NotificationRow, endpoint_events,
    events_json, finish_endpoint, finish_notification, finish_target, gauge,
};
use super::notify_rules::{
    EndpointCount, OutboxEntry, POSITION_RETRY_FOR_S, PositionFix, check_replay, endpoint_count,
    endpoint_wants, position_message, webhook_body,
};
use super::rows::ts;
use super::rules::LIVE_STATUSES;
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::notify::{
    Attempt, AttemptReport, Notification, Outcome, Webhook, WebhookEvent, WebhookTarget,
    idempotency_key,
};
use crate::secrets::new_id;

fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        url: r.get(2)?,
        events: r.get(3)?,
        previous_until: r.get(4)?,
        consecutive_failures: r.get(5)?,
        disabled_at: r.get(6)?,
        disabled_reason: r.get(7)?,
        created_at: r.get(8)?,
        secret_sealed: r.get(9)?,
        previous_secret_sealed: r.get(10)?,
        deleted_at: r.get(11)?,
    })
}

pub(super) fn one(c: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Webhook>> {
    Ok(c.query_row(
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE id = ?1 AND tenant_id = ?2 AND deleted_at IS NULL"
        ),
        params![id, tenant.as_str()],
        endpoint_row,
    )
    .optional()?
    .map(|row| finish_endpoint(&row)))
}

fn owned(c: &Connection, tenant: &TenantId, id: &str) -> Result<Webhook> {
    one(c, tenant, id)?.ok_or(Error::NotFound("webhook"))
}

pub(super) fn list(c: &Connection, tenant: &TenantId) -> Result<Vec<Webhook>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 AND deleted_at IS NULL \
         ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([tenant.as_str()], endpoint_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.iter().map(finish_endpoint).collect())
}

pub(super) fn create(
    c: &Connection,
    tenant: &TenantId,
    id: &str,
    url: &str,
    events: &[WebhookEvent],
    secret_sealed: &str,
) -> Result<Webhook> {
    c.execute(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_sealed, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            tenant.as_str(),
            url,
            events_json(events),
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
            &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1"),
            [id],
            endpoint_row,
        )
        .optional()?;
    Ok(row.map(|row| finish_target(row, now)))
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
    check_replay(state.as_deref())?;
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
        Ok(gauge(c.prepare_cached(sql)?.query_row([], |r| r.get(0))?))
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
    match endpoint_count(outcome, report.webhook_disable_after) {
        EndpointCount::Reset => {
            c.prepare_cached(
                "UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = ?1",
            )?
            .execute([endpoint])?;
        }
        EndpointCount::Failure { limit, reason } => {
            c.prepare_cached(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                 disabled_at = CASE WHEN consecutive_failures + 1 >= ?2 THEN ?3 END, \
                 disabled_reason = CASE WHEN consecutive_failures + 1 >= ?2 THEN ?4 END \
                 WHERE id = ?1 AND disabled_at IS NULL",
            )?
            .execute(params![endpoint, limit, ts(now), reason])?;
        }
        EndpointCount::Unchanged => {}
    }
    Ok(())
}

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
        let fixes: Vec<PositionFix> = c
            .prepare_cached(&format!(
                "SELECT p.vehicle_id, p.at, p.lat, p.lon, p.speed_mps, p.heading_deg, \
                 (SELECT group_concat(o.id) FROM orders o WHERE o.tenant_id = p.tenant_id \
                   AND o.vehicle_id = p.vehicle_id AND o.status IN {LIVE_STATUSES}) AS live \
                 FROM vehicle_positions p LEFT JOIN webhook_position_marks m \
                   ON m.endpoint_id = ?1 AND m.vehicle_id = p.vehicle_id \
                 WHERE p.tenant_id = ?2 AND (m.fix_at IS NULL OR (p.at > m.fix_at AND m.sent_at <= ?3)) \
                 AND live IS NOT NULL",
            ))?
            .query_map(params![endpoint, tenant, ts(now - every)], |r| {
                Ok(PositionFix {
                    vehicle: r.get(0)?,
                    at: r.get(1)?,
                    lat: r.get(2)?,
                    lon: r.get(3)?,
                    speed_mps: r.get(4)?,
                    heading_deg: r.get(5)?,
                    orders: r
                        .get::<_, String>(6)?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for fix in fixes {
            let (event_id, key, body) = position_message(&endpoint, &fix)?;
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
                fix.orders[0],
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
            .execute(params![endpoint, fix.vehicle, fix.at, ts(now)])?;
            made += 1;
        }
    }
    Ok(made)
}

/// Makes one webhook message per enabled endpoint of the entry's tenant
/// subscribed to it.
pub(super) fn expand_entry(
    c: &Connection,
    entry: &OutboxEntry,
    (now, retry_for): (DateTime<Utc>, Duration),
) -> Result<()> {
    let endpoints: Vec<(String, String, String)> = c
        .prepare_cached(
            "SELECT id, url, events FROM webhook_endpoints WHERE tenant_id = ?1 \
             AND deleted_at IS NULL AND disabled_at IS NULL",
        )?
        .query_map([entry.tenant.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let endpoints: Vec<(String, String)> = endpoints
        .into_iter()
        .filter(|(id, _, events)| endpoint_wants(id, &endpoint_events(events), entry))
        .map(|(id, url, _)| (id, url))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let reference: String = c
        .prepare_cached("SELECT reference FROM orders WHERE id = ?1")?
        .query_row([&entry.order], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let body = webhook_body(entry, &reference, now);
    for (endpoint, url) in endpoints {
        let key = idempotency_key(&entry.order, &endpoint, &entry.event_id, "webhook");
        c.prepare_cached(
            "INSERT OR IGNORE INTO notifications (id, idempotency_key, tenant_id, order_id, \
             rule_id, event, event_id, channel, recipient, state, attempts, next_attempt_at, \
             give_up_at, created_at, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'webhook', ?8, 'pending', 0, ?9, ?10, ?9, ?11)",
        )?
        .execute(params![
            new_id("ntf_"),
            key,
            entry.tenant.as_str(),
            entry.order,
            endpoint,
            entry.trigger.as_str(),
            entry.event_id,
            url,
            ts(now),
            ts(now + retry_for),
            body,
        ])?;
    }
    Ok(())
}
