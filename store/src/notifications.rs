//! The store side of milestone e-mails: rules, the outbox reader's cursor,
//! messages with their unique idempotency keys, attempts, unsubscribes and
//! sealed tracking codes ([`NotificationStore`], implemented here for SQLite;
//! `postgres::notifications` is the PostgreSQL one). Rows map through
//! `notify_records` and the decisions are `notify_rules`, on both backends.
//!
//! **Claiming with several nodes.** Every step that decides who sends what is
//! one write transaction: expanding the outbox (read past the cursor, insert
//! messages with `INSERT OR IGNORE` on the idempotency key, move the cursor)
//! and claiming (`UPDATE … SET state = 'sending' … WHERE id IN (SELECT … due)
//! RETURNING`). SQLite has one writer at a time across every process sharing
//! the file, so two nodes never claim the same row. (PostgreSQL takes row
//! locks for the same outcomes; see `postgres::notifications`.)

use chrono::{DateTime, Duration, Utc};
use engine::OrderId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::notify_records::{
    ATTEMPT_COLUMNS, AttemptRow, NOTIFICATION_COLUMNS, NotificationRow, RULE_COLUMNS, RuleRow,
    addresses_json, finish_attempt, finish_notification, finish_rule,
};
use super::notify_rules::{
    EMAIL_READER, INTERRUPTED, finish_write, outbox_entry, recipients, rules_for,
    unsubscribe_address,
};
use super::rows::{parse_ts, ts};
use super::{SqliteStore, StoreFuture, webhooks};
use crate::error::{Error, Result};
use crate::model::{Tenant, TenantId};
use crate::notify::{
    Attempt, AttemptReport, Channel, NewRule, Notification, Outcome, Rule, Webhook, WebhookEvent,
    WebhookTarget, idempotency_key,
};
use crate::secrets::new_id;

/// Who an unsubscribe token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeTarget {
    pub tenant_name: String,
    pub address: String,
    pub unsubscribed: bool,
}

/// The deliverer's gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryGauges {
    pub webhooks_disabled: u64,
    pub email_waiting: u64,
    pub webhook_waiting: u64,
}

/// What one claim round found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Messages now `sending`, owned by the claiming node until their lease ends.
    pub claimed: Vec<Notification>,
    /// Messages found `sending` past their lease (a node died mid-send),
    /// marked `failed` without a resend.
    pub interrupted: usize,
}

/// Persistence of rules and messages.
pub trait NotificationStore: Send + Sync + std::fmt::Debug {
    fn create_rule(&self, tenant: TenantId, rule: NewRule) -> StoreFuture<'_, Rule>;
    fn rules(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Rule>>;
    fn rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Rule>>;
    /// Removes a rule ([`Error::NotFound`] if it is not the tenant's); messages
    /// it already made stay listed and are still delivered.
    fn delete_rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()>;
    /// The order's messages with their attempts, oldest first.
    fn order_notifications(
        &self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>>;
    fn tenant(&self, tenant: TenantId) -> StoreFuture<'_, Option<Tenant>>;

    /// Keeps a tracking code sealed under the server's key, by its hash.
    fn save_code_seal(&self, code_hash: String, sealed: String) -> StoreFuture<'_, ()>;
    /// The order's active code hash and its seal, if it has both.
    fn active_code_seal(&self, order: OrderId) -> StoreFuture<'_, Option<(String, String)>>;

    /// Turns outbox entries past the e-mail cursor into messages (one per
    /// matching rule and recipient, each due at once and given up at
    /// `now + retry_for`); returns how many entries were read.
    /// Webhook messages are made for every enabled endpoint subscribed.
    /// E-mails are made whatever this node's channels: a node with SMTP
    /// claims them (see [`NotificationStore::claim_due`]).
    fn expand_outbox(
        &self,
        now: DateTime<Utc>,
        retry_for: Duration,
        limit: usize,
    ) -> StoreFuture<'_, usize>;
    /// Claims up to `limit` due messages for `node` until `now + lease`, after
    /// failing those whose lease ran out mid-send; e-mails only with `email`.
    fn claim_due(
        &self,
        node: String,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        email: bool,
    ) -> StoreFuture<'_, Claims>;
    /// Records how a claimed message's attempt ended; false when the claim
    /// was lost (the lease ran out and another round failed it). A webhook's
    /// outcome also counts towards disabling its endpoint.
    fn finish(
        &self,
        notification: Notification,
        node: String,
        outcome: Outcome,
        report: AttemptReport,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, bool>;

    /// Creates an endpoint with its sealed secret.
    fn create_webhook(
        &self,
        tenant: TenantId,
        id: String,
        url: String,
        events: Vec<WebhookEvent>,
        secret_sealed: String,
    ) -> StoreFuture<'_, Webhook>;
    fn webhooks(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Webhook>>;
    fn webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Webhook>>;
    /// Removes an endpoint; its pending messages are suppressed when due.
    fn delete_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()>;
    /// Replaces the secret; the old one signs too until `grace_until`.
    fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: String,
        secret_sealed: String,
        grace_until: DateTime<Utc>,
    ) -> StoreFuture<'_, Webhook>;
    /// Re-enables a disabled endpoint (its failure count starts again).
    fn enable_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Webhook>;
    /// The endpoint a message goes to, with the secrets that sign at `now`.
    fn webhook_target(
        &self,
        id: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<WebhookTarget>>;
    /// An endpoint's most recent `limit` messages with every attempt.
    fn webhook_deliveries(
        &self,
        tenant: TenantId,
        id: String,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>>;
    /// Sends a finished message again (same `webhook-id`), due at `now`.
    fn replay_delivery(
        &self,
        tenant: TenantId,
        webhook: String,
        delivery: String,
        now: DateTime<Utc>,
        retry_for: Duration,
    ) -> StoreFuture<'_, Notification>;
    /// Makes the coalesced `vehicle.position` webhook messages due at `now`
    /// (at most one per endpoint and vehicle every `every`); returns how many.
    fn enqueue_positions(&self, now: DateTime<Utc>, every: Duration) -> StoreFuture<'_, usize>;
    /// For `/metrics`: endpoints disabled, and messages waiting per channel
    /// (`pending` or `sending`).
    fn delivery_gauges(&self) -> StoreFuture<'_, DeliveryGauges>;

    /// Remembers which (tenant, address) an unsubscribe token stands for.
    fn register_unsubscribe_token(
        &self,
        token_hash: String,
        tenant: TenantId,
        address: String,
    ) -> StoreFuture<'_, ()>;
    fn unsubscribe_target(&self, token_hash: String) -> StoreFuture<'_, Option<UnsubscribeTarget>>;
    /// Records the unsubscribe of the token's (tenant, address); false for an
    /// unknown token.
    fn unsubscribe(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, bool>;
    fn is_unsubscribed(&self, tenant: TenantId, address: String) -> StoreFuture<'_, bool>;
}

fn rule_row(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        event: r.get(2)?,
        to_customer: r.get(3)?,
        addresses: r.get(4)?,
        subject: r.get(5)?,
        body: r.get(6)?,
        created_at: r.get(7)?,
        min_change_min: r.get(8)?,
    })
}

pub(super) fn notification_row(r: &Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        tenant_id: r.get(2)?,
        order_id: r.get(3)?,
        rule_id: r.get(4)?,
        event: r.get(5)?,
        event_id: r.get(6)?,
        recipient: r.get(7)?,
        state: r.get(8)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        give_up_at: r.get(11)?,
        last_error: r.get(12)?,
        created_at: r.get(13)?,
        sent_at: r.get(14)?,
        channel: r.get(15)?,
        body: r.get(16)?,
    })
}

pub(super) fn attempts_of(c: &Connection, notification: &str) -> Result<Vec<Attempt>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM notification_attempts WHERE notification_id = ?1 \
         ORDER BY attempt"
    ))?;
    let rows = stmt
        .query_map([notification], |r| {
            Ok(AttemptRow {
                attempt: r.get(0)?,
                channel: r.get(1)?,
                node: r.get(2)?,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
                status_code: r.get(7)?,
                duration_ms: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish_attempt).collect()
}

fn insert_rule(c: &Connection, tenant: &TenantId, rule: &NewRule) -> Result<Rule> {
    let id = new_id("nr_");
    let addresses = addresses_json(rule)?;
    c.execute(
        "INSERT INTO notification_rules (id, tenant_id, event, channel, to_customer, addresses, \
         subject, body, created_at, min_change_min) \
         VALUES (?1, ?2, ?3, 'email', ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            tenant.as_str(),
            rule.event.as_str(),
            rule.to_customer,
            addresses,
            rule.template.as_ref().map(|t| &t.subject),
            rule.template.as_ref().map(|t| &t.body),
            ts(Utc::now()),
            rule.min_change_min,
        ],
    )?;
    rule_by_id(c, tenant, &id)?.ok_or(Error::NotFound("notification rule"))
}

fn rule_by_id(c: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Rule>> {
    c.query_row(
        &format!(
            "SELECT {RULE_COLUMNS} FROM notification_rules \
             WHERE id = ?1 AND tenant_id = ?2 AND deleted_at IS NULL"
        ),
        params![id, tenant.as_str()],
        rule_row,
    )
    .optional()?
    .map(finish_rule)
    .transpose()
}

fn rules_of(c: &Connection, tenant: &TenantId) -> Result<Vec<Rule>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {RULE_COLUMNS} FROM notification_rules \
         WHERE tenant_id = ?1 AND deleted_at IS NULL ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([tenant.as_str()], rule_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish_rule).collect()
}

fn order_notifications(
    c: &Connection,
    tenant: &TenantId,
    order: &OrderId,
) -> Result<Vec<(Notification, Vec<Attempt>)>> {
    let owned: Option<String> = c
        .query_row(
            "SELECT id FROM orders WHERE id = ?1 AND tenant_id = ?2",
            params![order.as_str(), tenant.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if owned.is_none() {
        return Err(Error::NotFound("order"));
    }
    let mut stmt = c.prepare(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE order_id = ?1 \
         ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([order.as_str()], notification_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|row| {
            let n = finish_notification(row)?;
            let attempts = attempts_of(c, &n.id)?;
            Ok((n, attempts))
        })
        .collect()
}

fn expand_outbox(
    c: &Connection,
    now: DateTime<Utc>,
    retry_for: Duration,
    limit: usize,
) -> Result<usize> {
    let cursor: i64 = c
        .query_row(
            "SELECT last_id FROM outbox_cursors WHERE reader = ?1",
            [EMAIL_READER],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let entries: Vec<(i64, String, String, String)> = c
        .prepare_cached(
            "SELECT id, tenant_id, topic, payload FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?
        .query_map(params![cursor, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let Some(last) = entries.last().map(|e| e.0) else {
        return Ok(0);
    };
    for (_, tenant, topic, payload) in &entries {
        let Some(entry) = outbox_entry(tenant, topic, payload) else {
            continue;
        };
        webhooks::expand_entry(c, &entry, (now, retry_for))?;
        let rules = rules_for(rules_of(c, &entry.tenant)?, &entry);
        if rules.is_empty() {
            continue;
        }
        let customer_email: Option<String> = c
            .query_row(
                "SELECT customer_email FROM orders WHERE id = ?1 AND tenant_id = ?2",
                params![entry.order, entry.tenant.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        for rule in &rules {
            for recipient in recipients(rule, customer_email.as_deref()) {
                let key = idempotency_key(&entry.order, &rule.id, &entry.event_id, &recipient);
                c.prepare_cached(
                    "INSERT OR IGNORE INTO notifications (id, idempotency_key, tenant_id, order_id, \
                     rule_id, event, event_id, channel, recipient, state, attempts, \
                     next_attempt_at, give_up_at, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'email', ?8, 'pending', 0, ?9, ?10, ?9)",
                )?
                .execute(params![
                    new_id("ntf_"),
                    key,
                    entry.tenant.as_str(),
                    entry.order,
                    rule.id,
                    entry.trigger.as_str(),
                    entry.event_id,
                    recipient,
                    ts(now),
                    ts(now + retry_for),
                ])?;
            }
        }
    }
    c.prepare_cached(
        "INSERT INTO outbox_cursors (reader, last_id) VALUES (?1, ?2) \
         ON CONFLICT (reader) DO UPDATE SET last_id = excluded.last_id",
    )?
    .execute(params![EMAIL_READER, last])?;
    Ok(entries.len())
}

fn claim_due(
    c: &Connection,
    node: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
    email: bool,
) -> Result<Claims> {
    let now_text = ts(now);
    let interrupted: Vec<(String, u32)> = c
        .prepare_cached(
            "UPDATE notifications SET state = 'failed', last_error = ?2, claimed_by = NULL, \
             claimed_until = NULL WHERE state = 'sending' AND claimed_until < ?1 \
             RETURNING id, attempts",
        )?
        .query_map(params![now_text, INTERRUPTED], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, attempt) in &interrupted {
        c.prepare_cached(
            "UPDATE notification_attempts SET finished_at = ?1, outcome = 'interrupted', \
             detail = ?2 WHERE notification_id = ?3 AND attempt = ?4 AND finished_at IS NULL",
        )?
        .execute(params![now_text, INTERRUPTED, id, attempt])?;
    }
    let rows: Vec<NotificationRow> = c
        .prepare_cached(&format!(
            "UPDATE notifications SET state = 'sending', claimed_by = ?1, claimed_until = ?2, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM notifications \
             WHERE state = 'pending' AND next_attempt_at <= ?3 \
             AND (channel = 'webhook' OR ?5) ORDER BY next_attempt_at, id \
             LIMIT ?4) RETURNING {NOTIFICATION_COLUMNS}"
        ))?
        .query_map(
            params![node, ts(now + lease), now_text, limit as i64, email],
            notification_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let n = finish_notification(row)?;
        c.prepare_cached(
            "INSERT INTO notification_attempts (notification_id, attempt, channel, node, \
             started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            n.id,
            n.attempts,
            n.channel.as_str(),
            node,
            now_text
        ])?;
        claimed.push(n);
    }
    claimed.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
    Ok(Claims {
        claimed,
        interrupted: interrupted.len(),
    })
}

fn finish(
    c: &Connection,
    n: &Notification,
    node: &str,
    outcome: &Outcome,
    report: &AttemptReport,
    now: DateTime<Utc>,
) -> Result<bool> {
    let write = finish_write(outcome, now);
    let changed = c
        .prepare_cached(
            "UPDATE notifications SET state = ?1, next_attempt_at = COALESCE(?2, next_attempt_at), \
             last_error = ?3, sent_at = ?4, claimed_by = NULL, claimed_until = NULL \
             WHERE id = ?5 AND state = 'sending' AND claimed_by = ?6",
        )?
        .execute(params![
            write.state,
            write.next_attempt_at,
            write.error,
            write.sent_at,
            n.id,
            node
        ])?;
    c.prepare_cached(
        "UPDATE notification_attempts SET finished_at = ?1, outcome = ?2, detail = ?3, \
         status_code = ?7, duration_ms = ?8 \
         WHERE notification_id = ?4 AND attempt = ?5 AND node = ?6",
    )?
    .execute(params![
        ts(now),
        write.attempt_outcome,
        write.error,
        n.id,
        n.attempts,
        node,
        report.status_code,
        report.duration_ms,
    ])?;
    if changed > 0 && n.channel == Channel::Webhook {
        super::webhooks::count_outcome(c, &n.rule_id, outcome, report, now)?;
    }
    Ok(changed > 0)
}

fn unsubscribe_target(c: &Connection, token_hash: &str) -> Result<Option<UnsubscribeTarget>> {
    Ok(c.query_row(
        "SELECT t.name, u.address, EXISTS (SELECT 1 FROM unsubscribes s \
           WHERE s.tenant_id = u.tenant_id AND s.address = u.address) \
         FROM unsubscribe_tokens u JOIN tenants t ON t.id = u.tenant_id WHERE u.token_hash = ?1",
        [token_hash],
        |r| {
            Ok(UnsubscribeTarget {
                tenant_name: r.get(0)?,
                address: r.get(1)?,
                unsubscribed: r.get(2)?,
            })
        },
    )
    .optional()?)
}

impl NotificationStore for SqliteStore {
    fn create_rule(&self, tenant: TenantId, rule: NewRule) -> StoreFuture<'_, Rule> {
        Box::pin(self.write(move |c| insert_rule(c, &tenant, &rule)))
    }

    fn rules(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Rule>> {
        Box::pin(self.read(move |c| rules_of(c, &tenant)))
    }

    fn rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Rule>> {
        Box::pin(self.read(move |c| rule_by_id(c, &tenant, &id)))
    }

    fn delete_rule(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            let changed = c.execute(
                "UPDATE notification_rules SET deleted_at = ?1 \
                 WHERE id = ?2 AND tenant_id = ?3 AND deleted_at IS NULL",
                params![ts(Utc::now()), id, tenant.as_str()],
            )?;
            if changed == 0 {
                return Err(Error::NotFound("notification rule"));
            }
            Ok(())
        }))
    }

    fn order_notifications(
        &self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>> {
        Box::pin(self.read(move |c| order_notifications(c, &tenant, &order)))
    }

    fn tenant(&self, tenant: TenantId) -> StoreFuture<'_, Option<Tenant>> {
        Box::pin(self.read(move |c| {
            c.query_row(
                "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                [tenant.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?
            .map(|(id, name, created_at)| {
                Ok(Tenant {
                    id: TenantId(id),
                    name,
                    created_at: parse_ts(&created_at)?,
                })
            })
            .transpose()
        }))
    }

    fn save_code_seal(&self, code_hash: String, sealed: String) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO tracking_code_seals (code_hash, sealed, created_at) \
                 VALUES (?1, ?2, ?3)",
                params![code_hash, sealed, ts(Utc::now())],
            )?;
            Ok(())
        }))
    }

    fn active_code_seal(&self, order: OrderId) -> StoreFuture<'_, Option<(String, String)>> {
        Box::pin(self.read(move |c| {
            Ok(c.query_row(
                "SELECT t.code_hash, s.sealed FROM tracking_codes t \
                 JOIN tracking_code_seals s ON s.code_hash = t.code_hash \
                 WHERE t.order_id = ?1 AND t.revoked_at IS NULL \
                 ORDER BY t.created_at DESC LIMIT 1",
                [order.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        }))
    }

    fn expand_outbox(
        &self,
        now: DateTime<Utc>,
        retry_for: Duration,
        limit: usize,
    ) -> StoreFuture<'_, usize> {
        Box::pin(self.write(move |c| expand_outbox(c, now, retry_for, limit)))
    }

    fn claim_due(
        &self,
        node: String,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        email: bool,
    ) -> StoreFuture<'_, Claims> {
        Box::pin(self.write(move |c| claim_due(c, &node, now, lease, limit, email)))
    }

    fn finish(
        &self,
        notification: Notification,
        node: String,
        outcome: Outcome,
        report: AttemptReport,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, bool> {
        Box::pin(self.write(move |c| finish(c, &notification, &node, &outcome, &report, now)))
    }

    fn create_webhook(
        &self,
        tenant: TenantId,
        id: String,
        url: String,
        events: Vec<WebhookEvent>,
        secret_sealed: String,
    ) -> StoreFuture<'_, Webhook> {
        Box::pin(
            self.write(move |c| webhooks::create(c, &tenant, &id, &url, &events, &secret_sealed)),
        )
    }

    fn webhooks(&self, tenant: TenantId) -> StoreFuture<'_, Vec<Webhook>> {
        Box::pin(self.read(move |c| webhooks::list(c, &tenant)))
    }

    fn webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Option<Webhook>> {
        Box::pin(self.read(move |c| webhooks::one(c, &tenant, &id)))
    }

    fn delete_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| webhooks::delete(c, &tenant, &id)))
    }

    fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: String,
        secret_sealed: String,
        grace_until: DateTime<Utc>,
    ) -> StoreFuture<'_, Webhook> {
        Box::pin(
            self.write(move |c| webhooks::rotate(c, &tenant, &id, &secret_sealed, grace_until)),
        )
    }

    fn enable_webhook(&self, tenant: TenantId, id: String) -> StoreFuture<'_, Webhook> {
        Box::pin(self.write(move |c| webhooks::enable(c, &tenant, &id)))
    }

    fn webhook_target(
        &self,
        id: String,
        now: DateTime<Utc>,
    ) -> StoreFuture<'_, Option<WebhookTarget>> {
        Box::pin(self.read(move |c| webhooks::target(c, &id, now)))
    }

    fn webhook_deliveries(
        &self,
        tenant: TenantId,
        id: String,
        limit: usize,
    ) -> StoreFuture<'_, Vec<(Notification, Vec<Attempt>)>> {
        Box::pin(self.read(move |c| webhooks::deliveries(c, &tenant, &id, limit)))
    }

    fn replay_delivery(
        &self,
        tenant: TenantId,
        webhook: String,
        delivery: String,
        now: DateTime<Utc>,
        retry_for: Duration,
    ) -> StoreFuture<'_, Notification> {
        Box::pin(
            self.write(move |c| webhooks::replay(c, &tenant, &webhook, &delivery, now, retry_for)),
        )
    }

    fn enqueue_positions(&self, now: DateTime<Utc>, every: Duration) -> StoreFuture<'_, usize> {
        Box::pin(self.write(move |c| webhooks::enqueue_positions(c, now, every)))
    }

    fn delivery_gauges(&self) -> StoreFuture<'_, DeliveryGauges> {
        Box::pin(self.read(webhooks::gauges))
    }

    fn register_unsubscribe_token(
        &self,
        token_hash: String,
        tenant: TenantId,
        address: String,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO unsubscribe_tokens (token_hash, tenant_id, address) \
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                token_hash,
                tenant.as_str(),
                unsubscribe_address(&address)
            ])?;
            Ok(())
        }))
    }

    fn unsubscribe_target(&self, token_hash: String) -> StoreFuture<'_, Option<UnsubscribeTarget>> {
        Box::pin(self.read(move |c| unsubscribe_target(c, &token_hash)))
    }

    fn unsubscribe(&self, token_hash: String, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        Box::pin(self.write(move |c| {
            let changed = c.execute(
                "INSERT OR IGNORE INTO unsubscribes (tenant_id, address, created_at) \
                 SELECT tenant_id, address, ?2 FROM unsubscribe_tokens WHERE token_hash = ?1",
                params![token_hash, ts(now)],
            )?;
            if changed > 0 {
                return Ok(true);
            }
            Ok(unsubscribe_target(c, &token_hash)?.is_some())
        }))
    }

    fn is_unsubscribed(&self, tenant: TenantId, address: String) -> StoreFuture<'_, bool> {
        Box::pin(self.read(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM unsubscribes WHERE tenant_id = ?1 AND address = ?2)",
                params![tenant.as_str(), unsubscribe_address(&address)],
                |r| r.get(0),
            )?)
        }))
    }
}
