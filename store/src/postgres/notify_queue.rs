//! The work queues of the deliverers on PostgreSQL, where several nodes run
//! them at once: expanding the outbox into messages, claiming due messages,
//! and recording how an attempt ended. The decisions are `store::notify_rules`
//! (as on SQLite); what is particular here is how each step stays correct
//! with concurrent callers, which SQLite gets for free from its one writer.
//!
//! - **Expanding the outbox.** Outbox ids come from a sequence, so they are
//!   not commit-ordered: a transaction that took id 7 may commit after one
//!   that took id 8, and a reader that moved its cursor past 8 would never
//!   see 7. So an expansion first takes a *settled horizon* in a short
//!   transaction of its own: `LOCK TABLE outbox IN SHARE MODE` waits for the
//!   transactions writing the outbox to end (and holds new writers back for
//!   that instant), after which every id up to `MAX(id)` is committed or
//!   gone for good. The expansion then reads only ids up to that horizon.
//!   The lock gives up after [`HORIZON_LOCK_TIMEOUT`] (the round is skipped,
//!   the next one tries again), so a writer is never held longer than that
//!   and a lock-order cycle with a writer always ends with the expansion as
//!   the victim. The expansion itself locks the reader's `outbox_cursors`
//!   row `FOR UPDATE`: two nodes expanding at once take turns, and the
//!   second reads the cursor the first moved (READ COMMITTED re-reads a row
//!   it waited for), so an entry is expanded once; the unique idempotency
//!   key (`ON CONFLICT DO NOTHING`) backs that up.
//! - **Claiming.** `UPDATE … WHERE id IN (SELECT … ORDER BY next_attempt_at
//!   LIMIT n FOR UPDATE SKIP LOCKED) RETURNING`: a due message locked by
//!   another claimer is skipped, not waited for, so each goes to exactly one
//!   node, and its lease (`claimed_by`, `claimed_until`) and attempt row are
//!   written in the same transaction. Failing messages whose lease ran out
//!   skips locked rows the same way.
//! - **Finishing.** The update matches `state = 'sending' AND claimed_by =
//!   node`, so a node whose lease was taken over records nothing; the
//!   endpoint's failure count is one `UPDATE … SET n = n + 1`, atomic per row.

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::notifications::{notification_row, rules_of};
use crate::error::Result;
use crate::notifications::Claims;
use crate::notify::{AttemptReport, Channel, Notification, Outcome, idempotency_key};
use crate::notify_records::{NOTIFICATION_COLUMNS, finish_notification};
use crate::notify_rules::{
    EMAIL_READER, INTERRUPTED, finish_write, outbox_entry, recipients, rules_for,
};
use crate::records::ts;
use crate::secrets::new_id;

/// How long taking the settled horizon may wait for the outbox's writers.
pub(super) const HORIZON_LOCK_TIMEOUT: &str = "500ms";

/// The highest outbox id below which every entry is settled (committed, or
/// rolled back for good); `None` when the outbox's writers did not let go
/// within [`HORIZON_LOCK_TIMEOUT`].
pub(super) async fn settled_horizon(tx: Transaction<'_>) -> Result<Option<i64>> {
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{HORIZON_LOCK_TIMEOUT}'"
    ))
    .await?;
    match tx.batch_execute("LOCK TABLE outbox IN SHARE MODE").await {
        Ok(()) => {}
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let horizon: i64 = tx
        .query_one("SELECT COALESCE(MAX(id), 0) FROM outbox", &[])
        .await?
        .try_get(0)?;
    tx.commit().await?;
    Ok(Some(horizon))
}

/// Turns the outbox entries past the cursor, up to `horizon`, into messages
/// and moves the cursor; returns how many entries were read.
pub(super) async fn expand_outbox(
    tx: &Transaction<'_>,
    horizon: i64,
    now: DateTime<Utc>,
    retry_for: Duration,
    limit: usize,
) -> Result<usize> {
    // The row exists from the schema's creation on; the upsert keeps a
    // database whose row was removed by hand working.
    tx.execute(
        "INSERT INTO outbox_cursors (reader, last_id) VALUES ($1, 0) \
         ON CONFLICT (reader) DO NOTHING",
        &[&EMAIL_READER],
    )
    .await?;
    let cursor: i64 = tx
        .query_one(
            "SELECT last_id FROM outbox_cursors WHERE reader = $1 FOR UPDATE",
            &[&EMAIL_READER],
        )
        .await?
        .try_get(0)?;
    let entries = tx
        .query(
            "SELECT id, tenant_id, topic, payload FROM outbox WHERE id > $1 AND id <= $2 \
             ORDER BY id LIMIT $3",
            &[&cursor, &horizon, &(limit as i64)],
        )
        .await?;
    let Some(last) = entries.last().map(|r| r.try_get::<_, i64>(0)).transpose()? else {
        return Ok(0);
    };
    for row in &entries {
        let Some(entry) = outbox_entry(row.try_get(1)?, row.try_get(2)?, row.try_get(3)?) else {
            continue;
        };
        super::webhooks::expand_entry(tx, &entry, (now, retry_for)).await?;
        let rules = rules_for(rules_of(tx, &entry.tenant).await?, &entry);
        if rules.is_empty() {
            continue;
        }
        let customer_email: Option<String> = tx
            .query_opt(
                "SELECT customer_email FROM orders WHERE id = $1 AND tenant_id = $2",
                &[&entry.order, &entry.tenant.as_str()],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .flatten();
        for rule in &rules {
            for recipient in recipients(rule, customer_email.as_deref()) {
                let key = idempotency_key(&entry.order, &rule.id, &entry.event_id, &recipient);
                tx.execute(
                    "INSERT INTO notifications (id, idempotency_key, tenant_id, order_id, \
                     rule_id, event, event_id, channel, recipient, state, attempts, \
                     next_attempt_at, give_up_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'email', $8, 'pending', 0, $9, $10, $9) \
                     ON CONFLICT (idempotency_key) DO NOTHING",
                    &[
                        &new_id("ntf_"),
                        &key,
                        &entry.tenant.as_str(),
                        &entry.order,
                        &rule.id,
                        &entry.trigger.as_str(),
                        &entry.event_id,
                        &recipient,
                        &ts(now),
                        &ts(now + retry_for),
                    ],
                )
                .await?;
            }
        }
    }
    tx.execute(
        "UPDATE outbox_cursors SET last_id = $2 WHERE reader = $1",
        &[&EMAIL_READER, &last],
    )
    .await?;
    Ok(entries.len())
}

pub(super) async fn claim_due(
    tx: &Transaction<'_>,
    node: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
    email: bool,
) -> Result<Claims> {
    let now_text = ts(now);
    let interrupted = tx
        .query(
            "UPDATE notifications SET state = 'failed', last_error = $2, claimed_by = NULL, \
             claimed_until = NULL WHERE id IN (SELECT id FROM notifications \
             WHERE state = 'sending' AND claimed_until < $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, attempts",
            &[&now_text, &INTERRUPTED],
        )
        .await?;
    for row in &interrupted {
        let id: String = row.try_get(0)?;
        let attempt: i64 = row.try_get(1)?;
        tx.execute(
            "UPDATE notification_attempts SET finished_at = $1, outcome = 'interrupted', \
             detail = $2 WHERE notification_id = $3 AND attempt = $4 AND finished_at IS NULL",
            &[&now_text, &INTERRUPTED, &id, &attempt],
        )
        .await?;
    }
    let rows = tx
        .query(
            &format!(
                "UPDATE notifications SET state = 'sending', claimed_by = $1, \
                 claimed_until = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM notifications \
                   WHERE state = 'pending' AND next_attempt_at <= $3 \
                   AND (channel = 'webhook' OR $5) ORDER BY next_attempt_at, id \
                   LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING {NOTIFICATION_COLUMNS}"
            ),
            &[&node, &ts(now + lease), &now_text, &(limit as i64), &email],
        )
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let n = finish_notification(notification_row(row)?)?;
        tx.execute(
            "INSERT INTO notification_attempts (notification_id, attempt, channel, node, \
             started_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &n.id,
                &i64::from(n.attempts),
                &n.channel.as_str(),
                &node,
                &now_text,
            ],
        )
        .await?;
        claimed.push(n);
    }
    claimed.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
    Ok(Claims {
        claimed,
        interrupted: interrupted.len(),
    })
}

pub(super) async fn finish(
    tx: &Transaction<'_>,
    n: &Notification,
    node: &str,
    outcome: &Outcome,
    report: &AttemptReport,
    now: DateTime<Utc>,
) -> Result<bool> {
    let write = finish_write(outcome, now);
    let changed = tx
        .execute(
            "UPDATE notifications SET state = $1, \
             next_attempt_at = COALESCE($2, next_attempt_at), last_error = $3, sent_at = $4, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $5 AND state = 'sending' AND claimed_by = $6",
            &[
                &write.state,
                &write.next_attempt_at,
                &write.error,
                &write.sent_at,
                &n.id,
                &node,
            ],
        )
        .await?;
    tx.execute(
        "UPDATE notification_attempts SET finished_at = $1, outcome = $2, detail = $3, \
         status_code = $7, duration_ms = $8 \
         WHERE notification_id = $4 AND attempt = $5 AND node = $6",
        &[
            &ts(now),
            &write.attempt_outcome,
            &write.error,
            &n.id,
            &i64::from(n.attempts),
            &node,
            &report.status_code.map(i64::from),
            &report.duration_ms.and_then(|d| i64::try_from(d).ok()),
        ],
    )
    .await?;
    if changed > 0 && n.channel == Channel::Webhook {
        super::webhooks::count_outcome(tx, &n.rule_id, outcome, report, now).await?;
    }
    Ok(changed > 0)
}
