//! Webhook endpoints on PostgreSQL: a tenant's endpoints (secrets sealed),
//! their messages (`notifications` rows of channel `webhook`), the count of
//! messages in a row that failed for good, and the coalesced position
//! messages. The same queries as SQLite's `store::webhooks`, with rows mapped
//! by `store::notify_records` and the decisions of `store::notify_rules`.
//!
//! Position coalescing runs on every node: each round locks the endpoints it
//! serves `FOR NO KEY UPDATE SKIP LOCKED`, so one endpoint is served by one
//! node at a time and the next round (on any node) reads the marks the last
//! one wrote; a vehicle is never sent twice within the interval.

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};

use super::notifications::with_attempts;
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::notifications::DeliveryGauges;
use crate::notify::{
    Attempt, AttemptReport, Notification, Outcome, Webhook, WebhookEvent, WebhookTarget,
    idempotency_key,
};
use crate::notify_records::{
    ENDPOINT_COLUMNS, EndpointRow, NOTIFICATION_COLUMNS, endpoint_events, events_json,
    finish_endpoint, finish_notification, finish_target, gauge,
};
use crate::notify_rules::{
    EndpointCount, OutboxEntry, POSITION_RETRY_FOR_S, PositionFix, check_replay, endpoint_count,
    endpoint_wants, position_message, webhook_body,
};
use crate::records::ts;
use crate::rules::LIVE_STATUSES;
use crate::secrets::new_id;

fn endpoint_row(r: &Row) -> Result<EndpointRow> {
    Ok(EndpointRow {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        url: r.try_get(2)?,
        events: r.try_get(3)?,
        previous_until: r.try_get(4)?,
        consecutive_failures: r.try_get(5)?,
        disabled_at: r.try_get(6)?,
        disabled_reason: r.try_get(7)?,
        created_at: r.try_get(8)?,
        secret_sealed: r.try_get(9)?,
        previous_secret_sealed: r.try_get(10)?,
        deleted_at: r.try_get(11)?,
    })
}

pub(super) async fn one<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Webhook>> {
    c.query_opt(
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        ),
        &[&id, &tenant.as_str()],
    )
    .await?
    .map(|r| Ok(finish_endpoint(&endpoint_row(&r)?)))
    .transpose()
}

async fn owned<C: GenericClient + Sync>(c: &C, tenant: &TenantId, id: &str) -> Result<Webhook> {
    one(c, tenant, id).await?.ok_or(Error::NotFound("webhook"))
}

pub(super) async fn list<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
) -> Result<Vec<Webhook>> {
    c.query(
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        ),
        &[&tenant.as_str()],
    )
    .await?
    .iter()
    .map(|r| Ok(finish_endpoint(&endpoint_row(r)?)))
    .collect()
}

pub(super) async fn create(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
    url: &str,
    events: &[WebhookEvent],
    secret_sealed: &str,
) -> Result<Webhook> {
    tx.execute(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_sealed, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &id,
            &tenant.as_str(),
            &url,
            &events_json(events),
            &secret_sealed,
            &ts(Utc::now()),
        ],
    )
    .await?;
    owned(tx, tenant, id).await
}

pub(super) async fn delete<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    id: &str,
) -> Result<()> {
    let changed = c
        .execute(
            "UPDATE webhook_endpoints SET deleted_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
            &[&ts(Utc::now()), &id, &tenant.as_str()],
        )
        .await?;
    if changed == 0 {
        return Err(Error::NotFound("webhook"));
    }
    Ok(())
}

pub(super) async fn rotate(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
    secret_sealed: &str,
    grace_until: DateTime<Utc>,
) -> Result<Webhook> {
    let changed = tx
        .execute(
            "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
             previous_until = $1, secret_sealed = $2 \
             WHERE id = $3 AND tenant_id = $4 AND deleted_at IS NULL",
            &[&ts(grace_until), &secret_sealed, &id, &tenant.as_str()],
        )
        .await?;
    if changed == 0 {
        return Err(Error::NotFound("webhook"));
    }
    owned(tx, tenant, id).await
}

pub(super) async fn enable(tx: &Transaction<'_>, tenant: &TenantId, id: &str) -> Result<Webhook> {
    let changed = tx
        .execute(
            "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, \
             consecutive_failures = 0 WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
            &[&id, &tenant.as_str()],
        )
        .await?;
    if changed == 0 {
        return Err(Error::NotFound("webhook"));
    }
    owned(tx, tenant, id).await
}

pub(super) async fn target<C: GenericClient + Sync>(
    c: &C,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebhookTarget>> {
    c.query_opt(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
        &[&id],
    )
    .await?
    .map(|r| Ok(finish_target(endpoint_row(&r)?, now)))
    .transpose()
}

pub(super) async fn deliveries(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
    limit: usize,
) -> Result<Vec<(Notification, Vec<Attempt>)>> {
    owned(tx, tenant, id).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
                 WHERE rule_id = $1 AND channel = 'webhook' AND tenant_id = $2 \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            &[&id, &tenant.as_str(), &(limit as i64)],
        )
        .await?;
    with_attempts(tx, rows).await
}

/// Sends a finished delivery again. The message row is locked while its
/// state is judged, so a replay never races the deliverer finishing it.
pub(super) async fn replay(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    webhook: &str,
    delivery: &str,
    (now, retry_for): (DateTime<Utc>, Duration),
) -> Result<Notification> {
    owned(tx, tenant, webhook).await?;
    let state: Option<String> = tx
        .query_opt(
            "SELECT state FROM notifications WHERE id = $1 AND rule_id = $2 \
             AND channel = 'webhook' AND tenant_id = $3 FOR UPDATE",
            &[&delivery, &webhook, &tenant.as_str()],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    check_replay(state.as_deref())?;
    let row = tx
        .query_one(
            &format!(
                "UPDATE notifications SET state = 'pending', next_attempt_at = $1, \
                 give_up_at = $2, last_error = NULL WHERE id = $3 \
                 RETURNING {NOTIFICATION_COLUMNS}"
            ),
            &[&ts(now), &ts(now + retry_for), &delivery],
        )
        .await?;
    finish_notification(super::notifications::notification_row(&row)?)
}

pub(super) async fn gauges<C: GenericClient + Sync>(c: &C) -> Result<DeliveryGauges> {
    let row = c
        .query_one(
            "SELECT \
               (SELECT COUNT(*) FROM webhook_endpoints \
                 WHERE disabled_at IS NOT NULL AND deleted_at IS NULL), \
               (SELECT COUNT(*) FROM notifications \
                 WHERE state IN ('pending', 'sending') AND channel = 'email'), \
               (SELECT COUNT(*) FROM notifications \
                 WHERE state IN ('pending', 'sending') AND channel = 'webhook')",
            &[],
        )
        .await?;
    Ok(DeliveryGauges {
        webhooks_disabled: gauge(row.try_get(0)?),
        email_waiting: gauge(row.try_get(1)?),
        webhook_waiting: gauge(row.try_get(2)?),
    })
}

/// After a webhook message's attempt: a delivery resets its endpoint's count
/// of messages failed in a row; a message failed for good adds one, and the
/// endpoint is disabled when the count reaches the limit.
pub(super) async fn count_outcome(
    tx: &Transaction<'_>,
    endpoint: &str,
    outcome: &Outcome,
    report: &AttemptReport,
    now: DateTime<Utc>,
) -> Result<()> {
    match endpoint_count(outcome, report.webhook_disable_after) {
        EndpointCount::Reset => {
            tx.execute(
                "UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = $1",
                &[&endpoint],
            )
            .await?;
        }
        EndpointCount::Failure { limit, reason } => {
            tx.execute(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                 disabled_at = CASE WHEN consecutive_failures + 1 >= $2 THEN $3 END, \
                 disabled_reason = CASE WHEN consecutive_failures + 1 >= $2 THEN $4 END \
                 WHERE id = $1 AND disabled_at IS NULL",
                &[&endpoint, &limit, &ts(now), &reason],
            )
            .await?;
        }
        EndpointCount::Unchanged => {}
    }
    Ok(())
}

/// Makes `vehicle.position` messages for the endpoints subscribed to
/// positions: per endpoint and vehicle of a live order of its tenant, one
/// with the vehicle's latest fix when that fix is newer than the last one
/// sent and the last was sent at least `every` ago. Returns how many.
pub(super) async fn enqueue_positions(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    every: Duration,
) -> Result<usize> {
    let endpoints = tx
        .query(
            "SELECT id, tenant_id, url FROM webhook_endpoints WHERE deleted_at IS NULL \
             AND disabled_at IS NULL AND events LIKE '%\"position\"%' \
             ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
    let mut made = 0;
    for subscribed in &endpoints {
        let endpoint: String = subscribed.try_get(0)?;
        let tenant: String = subscribed.try_get(1)?;
        let url: String = subscribed.try_get(2)?;
        let fixes = tx
            .query(
                &format!(
                    "SELECT p.vehicle_id, p.at, p.lat, p.lon, p.speed_mps, p.heading_deg, live \
                     FROM vehicle_positions p \
                     LEFT JOIN webhook_position_marks m \
                       ON m.endpoint_id = $1 AND m.vehicle_id = p.vehicle_id \
                     CROSS JOIN LATERAL (SELECT string_agg(o.id, ',' ORDER BY o.seq) AS live \
                       FROM orders o WHERE o.tenant_id = p.tenant_id \
                       AND o.vehicle_id = p.vehicle_id AND o.status IN {LIVE_STATUSES}) l \
                     WHERE p.tenant_id = $2 \
                     AND (m.fix_at IS NULL OR (p.at > m.fix_at AND m.sent_at <= $3)) \
                     AND live IS NOT NULL"
                ),
                &[&endpoint, &tenant, &ts(now - every)],
            )
            .await?;
        for row in &fixes {
            let live: String = row.try_get(6)?;
            let fix = PositionFix {
                vehicle: row.try_get(0)?,
                at: row.try_get(1)?,
                lat: row.try_get(2)?,
                lon: row.try_get(3)?,
                speed_mps: row.try_get(4)?,
                heading_deg: row.try_get(5)?,
                orders: live.split(',').map(str::to_owned).collect(),
            };
            let (event_id, key, body) = position_message(&endpoint, &fix)?;
            tx.execute(
                "INSERT INTO notifications (id, idempotency_key, tenant_id, order_id, \
                 rule_id, event, event_id, channel, recipient, state, attempts, next_attempt_at, \
                 give_up_at, created_at, body) VALUES ($1, $2, $3, $4, $5, 'position', $6, \
                 'webhook', $7, 'pending', 0, $8, $9, $8, $10) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
                &[
                    &new_id("ntf_"),
                    &key,
                    &tenant,
                    &fix.orders[0],
                    &endpoint,
                    &event_id,
                    &url,
                    &ts(now),
                    &ts(now + Duration::seconds(POSITION_RETRY_FOR_S)),
                    &body,
                ],
            )
            .await?;
            tx.execute(
                "INSERT INTO webhook_position_marks (endpoint_id, vehicle_id, fix_at, sent_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (endpoint_id, vehicle_id) DO UPDATE SET \
                 fix_at = EXCLUDED.fix_at, sent_at = EXCLUDED.sent_at",
                &[&endpoint, &fix.vehicle, &fix.at, &ts(now)],
            )
            .await?;
            made += 1;
        }
    }
    Ok(made)
}

/// Makes one webhook message per enabled endpoint of the entry's tenant
/// subscribed to it.
pub(super) async fn expand_entry(
    tx: &Transaction<'_>,
    entry: &OutboxEntry,
    (now, retry_for): (DateTime<Utc>, Duration),
) -> Result<()> {
    let rows = tx
        .query(
            "SELECT id, url, events FROM webhook_endpoints WHERE tenant_id = $1 \
             AND deleted_at IS NULL AND disabled_at IS NULL",
            &[&entry.tenant.as_str()],
        )
        .await?;
    let mut endpoints = Vec::new();
    for row in &rows {
        let id: String = row.try_get(0)?;
        let events: String = row.try_get(2)?;
        if endpoint_wants(&id, &endpoint_events(&events), entry) {
            endpoints.push((id, row.try_get::<_, String>(1)?));
        }
    }
    if endpoints.is_empty() {
        return Ok(());
    }
    let reference: String = tx
        .query_opt(
            "SELECT reference FROM orders WHERE id = $1",
            &[&entry.order],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or_default();
    let body = webhook_body(entry, &reference, now);
    for (endpoint, url) in endpoints {
        let key = idempotency_key(&entry.order, &endpoint, &entry.event_id, "webhook");
        tx.execute(
            "INSERT INTO notifications (id, idempotency_key, tenant_id, order_id, \
             rule_id, event, event_id, channel, recipient, state, attempts, next_attempt_at, \
             give_up_at, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'webhook', $8, 'pending', 0, $9, $10, $9, $11) \
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                &new_id("ntf_"),
                &key,
                &entry.tenant.as_str(),
                &entry.order,
                &endpoint,
                &entry.trigger.as_str(),
                &entry.event_id,
                &url,
                &ts(now),
                &ts(now + retry_for),
                &body,
            ],
        )
        .await?;
    }
    Ok(())
}
