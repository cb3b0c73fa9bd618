//! Milestone e-mails and webhooks on PostgreSQL: the [`NotificationStore`]
//! half of the backend. Rules, messages with their attempts, sealed tracking
//! codes and unsubscribes are here; the work queues (outbox expansion,
//! claiming, finishing), which several nodes run at once, are
//! `notify_queue`, and the endpoints are `webhooks`. Rows map through
//! `store::notify_records` and the decisions are `store::notify_rules`, the
//! ones SQLite uses, so both backends make and send the same messages.

use chrono::{DateTime, Duration, Utc};
use engine::OrderId;
use tokio_postgres::{GenericClient, Row};

use super::{PostgresStore, notify_queue, reads, webhooks};
use crate::error::{Error, Result};
use crate::model::{Tenant, TenantId};
use crate::notifications::{Claims, DeliveryGauges, UnsubscribeTarget};
use crate::notify::{
    Attempt, AttemptReport, NewRule, Notification, Outcome, Rule, Webhook, WebhookEvent,
    WebhookTarget,
};
use crate::notify_records::{
    ATTEMPT_COLUMNS, AttemptRow, NOTIFICATION_COLUMNS, NotificationRow, RULE_COLUMNS, RuleRow,
    addresses_json, finish_attempt, finish_notification, finish_rule,
};
use crate::notify_rules::unsubscribe_address;
use crate::records::ts;
use crate::secrets::new_id;
use crate::{NotificationStore, StoreFuture};

fn rule_row(r: &Row) -> Result<RuleRow> {
    Ok(RuleRow {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        event: r.try_get(2)?,
        to_customer: r.try_get(3)?,
        addresses: r.try_get(4)?,
        subject: r.try_get(5)?,
        body: r.try_get(6)?,
        created_at: r.try_get(7)?,
        min_change_min: r.try_get(8)?,
    })
}

pub(super) fn notification_row(r: &Row) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.try_get(0)?,
        idempotency_key: r.try_get(1)?,
        tenant_id: r.try_get(2)?,
        order_id: r.try_get(3)?,
        rule_id: r.try_get(4)?,
        event: r.try_get(5)?,
        event_id: r.try_get(6)?,
        recipient: r.try_get(7)?,
        state: r.try_get(8)?,
        attempts: r.try_get(9)?,
        next_attempt_at: r.try_get(10)?,
        give_up_at: r.try_get(11)?,
        last_error: r.try_get(12)?,
        created_at: r.try_get(13)?,
        sent_at: r.try_get(14)?,
        channel: r.try_get(15)?,
        body: r.try_get(16)?,
    })
}

/// Messages (rows of [`NOTIFICATION_COLUMNS`]) with their attempts, in the
/// rows' order.
pub(super) async fn with_attempts<C: GenericClient + Sync>(
    c: &C,
    rows: Vec<Row>,
) -> Result<Vec<(Notification, Vec<Attempt>)>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let n = finish_notification(notification_row(row)?)?;
        let attempts = c
            .query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM notification_attempts \
                     WHERE notification_id = $1 ORDER BY attempt"
                ),
                &[&n.id],
            )
            .await?
            .iter()
            .map(|r| {
                finish_attempt(AttemptRow {
                    attempt: r.try_get(0)?,
                    channel: r.try_get(1)?,
                    node: r.try_get(2)?,
                    started_at: r.try_get(3)?,
                    finished_at: r.try_get(4)?,
                    outcome: r.try_get(5)?,
                    detail: r.try_get(6)?,
                    status_code: r.try_get(7)?,
                    duration_ms: r.try_get(8)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push((n, attempts));
    }
    Ok(out)
}

async fn rule_by_id<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Rule>> {
    c.query_opt(
        &format!(
            "SELECT {RULE_COLUMNS} FROM notification_rules \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        ),
        &[&id, &tenant.as_str()],
    )
    .await?
    .map(|r| finish_rule(rule_row(&r)?))
    .transpose()
}

pub(super) async fn rules_of<C: GenericClient + Sync>(
    c: &C,
    tenant: &TenantId,
) -> Result<Vec<Rule>> {
    c.query(
        &format!(
            "SELECT {RULE_COLUMNS} FROM notification_rules \
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
        ),
        &[&tenant.as_str()],
    )
    .await?
    .iter()
    .map(|r| finish_rule(rule_row(r)?))
    .collect()
}

async fn unsubscribe_target<C: GenericClient + Sync>(
    c: &C,
    token_hash: &str,
) -> Result<Option<UnsubscribeTarget>> {
    c.query_opt(
        "SELECT t.name, u.address, EXISTS (SELECT 1 FROM unsubscribes s \
           WHERE s.tenant_id = u.tenant_id AND s.address = u.address) \
         FROM unsubscribe_tokens u JOIN tenants t ON t.id = u.tenant_id WHERE u.token_hash = $1",
        &[&token_hash],
    )
    .await?
    .map(|r| {
        Ok(UnsubscribeTarget {
            tenant_name: r.try_get(0)?,
            address: r.try_get(1)?,
            unsubscribed: r.try_get(2)?,
        })
    })
    .transpose()
}

impl NotificationStore for PostgresStore {
    fn create_rule(&self, tenant: TenantId, rule: NewRule) -> StoreFuture<'_, Rule> {
        in_tx!(self, |tx| {
            let id = new_id("nr_");
            tx.execute(
                "INSERT INTO notification_rules (id, tenant_id, event, channel, to_customer, \
                 addresses, subject, body, created_at, min_change_min) \
                 VALUES ($1, $2, $3, 'email', $4, $5, $6, $7, $8, $9)",
                &[
                    &id,
                    &tenant.as_str(),
                    &rule.event.as_str(),
                    &rule.to_customer,
                    &addresses_json(&rule)?,
                    &rule.template.as_ref().map(|t| &t.subject),
                    &rule.template.as_ref().map(|t| &t.body),
                    &ts(Utc::now()),
                    &rule.min_change_min.map(i64::from),
                ],
            )
            .await?;
            rule_by_id(&tx, &tenant, &id)
                .await?
                .ok_or(Error::NotFound("notification rule"))?
        })
    }

    fn rules(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Rule>> {
        on_client!(self, |c| rules_of(c, &tenant).await?)
    }

    fn rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Rule>> {
        on_client!(self, |c| rule_by_id(c, &tenant, &id).await?)
    }

    fn delete_rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()> {
        on_client!(self, |c| {
            let changed = c
                .execute(
                    "UPDATE notification_rules SET deleted_at = $1 \
                     WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
                    &[&ts(Utc::now()), &id, &tenant.as_str()],
                )
                .await?;
            if changed == 0 {
                return Err(Error::NotFound("notification rule"));
            }
        })
    }

    fn order_notifications(
        &self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>> {
        // One snapshot for the messages and their attempts.
        in_tx!(self, |tx| {
            let owned = tx
                .query_opt(
                    "SELECT 1 FROM orders WHERE id = $1 AND tenant_id = $2",
                    &[&order.as_str(), &tenant.as_str()],
                )
                .await?;
            if owned.is_none() {
                return Err(Error::NotFound("order"));
            }
            let rows = tx
                .query(
                    &format!(
                        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE order_id = $1 \
                         ORDER BY created_at, id"
                    ),
                    &[&order.as_str()],
                )
                .await?;
            with_attempts(&tx, rows).await?
        })
    }

    fn tenant(&self, tenant: TenantId) -> StoreFuture<'_, Option<Tenant>> {
        on_client!(self, |c| reads::tenant_by_id(c, &tenant).await?)
    }

    fn save_code_seal(&self, code_hash: String, sealed: String) -> StoreFuture<'_, ()> {
        on_client!(self, |c| {
            c.execute(
                "INSERT INTO tracking_code_seals (code_hash, sealed, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (code_hash) DO UPDATE \
                 SET sealed = EXCLUDED.sealed, created_at = EXCLUDED.created_at",
                &[&code_hash, &sealed, &ts(Utc::now())],
            )
            .await?;
        })
    }

    fn active_code_seal(&self, order: OrderId) -> StoreFuture<'_, Option<(String, String)>> {
        on_client!(self, |c| {
            c.query_opt(
                "SELECT t.code_hash, s.sealed FROM tracking_codes t \
                 JOIN tracking_code_seals s ON s.code_hash = t.code_hash \
                 WHERE t.order_id = $1 AND t.revoked_at IS NULL \
                 ORDER BY t.created_at DESC LIMIT 1",
                &[&order.as_str()],
            )
            .await?
            .map(|r| Ok::<_, Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?
        })
    }

    fn expand_outbox(
        &self,
        now: DateTime<Utc>,
        retry_for: Duration,
        limit: usize,
    ) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let first = tokio_postgres::Client::transaction(&mut client).await?;
            let Some(horizon) = notify_queue::settled_horizon(first).await? else {
                return Ok(0);
            };
            let tx = tokio_postgres::Client::transaction(&mut client).await?;
            let read = notify_queue::expand_outbox(&tx, horizon, now, retry_for, limit).await?;
            tx.commit().await?;
            Ok(read)
        })
    }

    fn claim_due(
        &self,
        node: String,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        email: bool,
    ) -> StoreFuture<'_, Claims> {
        in_tx!(self, |tx| notify_queue::claim_due(
            &tx, &node, now, lease, limit, email
        )
        .await?)
    }

    fn finish(
        &self,
        notification: Notification,
        node: String,
        outcome: Outcome,
        report: AttemptReport,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, bool> {
        in_tx!(self, |tx| notify_queue::finish(
            &tx,
            &notification,
            &node,
            &outcome,
            &report,
            now
        )
        .await?)
    }

    fn create_webhook(
        &self,
        tenant: TenantId,
        id: String,
        url: String,
        events: Vec<WebhookEvent>,
        secret_sealed: String,
    ) -> StoreFuture<'_, Webhook> {
        in_tx!(self, |tx| webhooks::create(
            &tx,
            &tenant,
            &id,
            &url,
            &events,
            &secret_sealed
        )
        .await?)
    }

    fn webhooks(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Webhook>> {
        on_client!(self, |c| webhooks::list(c, &tenant).await?)
    }

    fn webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Webhook>> {
        on_client!(self, |c| webhooks::one(c, &tenant, &id).await?)
    }

    fn delete_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()> {
        on_client!(self, |c| webhooks::delete(c, &tenant, &id).await?)
    }

    fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: String,
        secret_sealed: String,
        grace_until: DateTime<Utc>,
    ) -> StoreFuture<'_, Webhook> {
        in_tx!(self, |tx| webhooks::rotate(
            &tx,
            &tenant,
            &id,
            &secret_sealed,
            grace_until
        )
        .await?)
    }

    fn enable_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Webhook> {
        in_tx!(self, |tx| webhooks::enable(&tx, &tenant, &id).await?)
    }

    fn webhook_target(
        &self,
        id: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<WebhookTarget>> {
        on_client!(self, |c| webhooks::target(c, &id, now).await?)
    }

    fn webhook_deliveries(
        &self,
        tenant: TenantId,
        id: String,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>> {
        in_tx!(self, |tx| webhooks::deliveries(&tx, &tenant, &id, limit)
            .await?)
    }

    fn replay_delivery(
        &self,
        tenant: TenantId,
        webhook: String,
        delivery: String,
        now: DateTime<Utc>,
        retry_for: Duration,
    ) -> StoreFuture<'_, Notification> {
        in_tx!(self, |tx| webhooks::replay(
            &tx,
            &tenant,
            &webhook,
            &delivery,
            (now, retry_for)
        )
        .await?)
    }

    fn enqueue_positions(&self, now: DateTime<Utc>, every: Duration) -> StoreFuture<'_, usize> {
        in_tx!(self, |tx| webhooks::enqueue_positions(&tx, now, every)
            .await?)
    }

    fn delivery_gauges(&self) -> StoreFuture<'_, DeliveryGauges> {
        on_client!(self, |c| webhooks::gauges(c).await?)
    }

    fn register_unsubscribe_token(
        &self,
        token_hash: String,
        tenant: TenantId,
        address: String,
    ) -> StoreFuture<'_, ()> {
        on_client!(self, |c| {
            c.execute(
                "INSERT INTO unsubscribe_tokens (token_hash, tenant_id, address) \
                 VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING",
                &[
                    &token_hash,
                    &tenant.as_str(),
                    &unsubscribe_address(&address),
                ],
            )
            .await?;
        })
    }

    fn unsubscribe_target(&self, token_hash: String) -> StoreFuture<'_, Option<UnsubscribeTarget>> {
        on_client!(self, |c| unsubscribe_target(c, &token_hash).await?)
    }

    fn unsubscribe(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        on_client!(self, |c| {
            let changed = c
                .execute(
                    "INSERT INTO unsubscribes (tenant_id, address, created_at) \
                     SELECT tenant_id, address, $2 FROM unsubscribe_tokens \
                     WHERE token_hash = $1 ON CONFLICT (tenant_id, address) DO NOTHING",
                    &[&token_hash, &ts(now)],
                )
                .await?;
            changed > 0 || unsubscribe_target(c, &token_hash).await?.is_some()
        })
    }

    fn is_unsubscribed(&self, tenant: TenantId, address: String) -> StoreFuture<'_, bool> {
        on_client!(self, |c| {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM unsubscribes WHERE tenant_id = $1 AND address = $2)",
                &[&tenant.as_str(), &unsubscribe_address(&address)],
            )
            .await?
            .try_get::<_, bool>(0)?
        })
    }
}
