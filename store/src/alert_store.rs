//! The store side of alerts judged from ETAs (`crate::alerts`): run inside the
//! transaction that records an ETA, so the stop's late-risk state, the
//! announcements and the outbox entries they make commit with the ETA or not
//! at all.
//!
//! Outbox topics written here: `order.late_risk` (payload `kind` =
//! `late_risk` | `late_risk_cleared`, `stop_idx`, `by_min`, `since`, `at`) for
//! every subscriber of the tenant, and `order.eta_changed` (payload
//! `subscriber_id`, `stop_idx`, `eta`, `previous_eta`, `change_min`), one per
//! subscriber it is meant for. Each carries a fresh `event_id`, the third
//! part of the messages' idempotency keys.

use chrono::{DateTime, Duration, Utc};
use engine::EtaUpdate;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{parse_ts, ts};
use super::rules;
use super::writes::{insert_event, outbox};
use crate::alerts::{
    AlertPolicy, Announced, EtaChangeVerdict, LateRisk, LateRiskChange, LateRiskState,
    assess_eta_change, assess_late_risk,
};
use crate::error::Result;
use crate::model::TenantId;
use crate::notify::DEFAULT_MIN_CHANGE_MIN;

fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

/// Judges the stop of `update` (already recorded) for late risk and ETA
/// changes, writing what fired.
pub(crate) fn assess_recorded_eta(
    c: &Connection,
    tenant: &TenantId,
    update: &EtaUpdate,
    policy: &AlertPolicy,
) -> Result<()> {
    type StopRow = (
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        bool,
    );
    let row: Option<StopRow> = c
        .prepare_cached(
            "SELECT window_to, late_risk_since, late_risk_by_min, late_turning_since, \
             (arrived_at IS NULL AND departed_at IS NULL AND skipped_at IS NULL) \
             FROM stops WHERE order_id = ?1 AND idx = ?2",
        )?
        .query_row(params![update.order_id.as_str(), update.stop_index], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((window_to, since, by_min, turning, pending)) = row else {
        return Ok(());
    };
    // A stop already reached is judged by its verdict, not by a prediction.
    if !pending {
        return Ok(());
    }
    let now = update.computed_at;
    if let Some(window_to) = opt_ts(window_to)? {
        let state = LateRiskState {
            at_risk: opt_ts(since)?.map(|since| LateRisk {
                since,
                by_min: by_min.unwrap_or(0),
            }),
            turning_since: opt_ts(turning)?,
        };
        let (next, change) =
            assess_late_risk(state, update.eta, update.p90, window_to, policy, now);
        if next != state {
            c.prepare_cached(
                "UPDATE stops SET late_risk_since = ?1, late_risk_by_min = ?2, \
                 late_turning_since = ?3 WHERE order_id = ?4 AND idx = ?5",
            )?
            .execute(params![
                next.at_risk.map(|r| ts(r.since)),
                next.at_risk.map(|r| r.by_min),
                next.turning_since.map(ts),
                update.order_id.as_str(),
                update.stop_index,
            ])?;
        }
        if let Some(change) = change {
            record_late_risk(c, tenant, update, change, now)?;
        }
    }
    announce_eta_changes(c, tenant, update, policy, now)
}

fn record_late_risk(
    c: &Connection,
    tenant: &TenantId,
    update: &EtaUpdate,
    change: LateRiskChange,
    now: DateTime<Utc>,
) -> Result<()> {
    let (note, payload) = rules::late_risk_record(update, change, now);
    insert_event(c, &update.order_id, &note)?;
    outbox(c, tenant, "order.late_risk", payload)
}

/// Everyone of the tenant who wants `eta_changed`: e-mail rules, with their
/// threshold in minutes, and enabled webhook endpoints (the default one).
fn eta_subscribers(c: &Connection, tenant: &TenantId) -> Result<Vec<(String, i64)>> {
    let rows = c
        .prepare_cached(
            "SELECT id, min_change_min FROM notification_rules \
             WHERE tenant_id = ?1 AND event = 'eta_changed' AND deleted_at IS NULL \
             UNION ALL SELECT id, NULL FROM webhook_endpoints WHERE tenant_id = ?1 \
             AND deleted_at IS NULL AND disabled_at IS NULL \
             AND events LIKE '%\"eta_changed\"%'",
        )?
        .query_map([tenant.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, min)| (id, min.unwrap_or(i64::from(DEFAULT_MIN_CHANGE_MIN))))
        .collect())
}

fn announce_eta_changes(
    c: &Connection,
    tenant: &TenantId,
    update: &EtaUpdate,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> Result<()> {
    let order = update.order_id.as_str();
    for (subscriber, min_change_min) in eta_subscribers(c, tenant)? {
        let last: Option<String> = c
            .prepare_cached(
                "SELECT eta FROM eta_announcements \
                 WHERE subscriber_id = ?1 AND order_id = ?2 AND stop_idx = ?3",
            )?
            .query_row(params![subscriber, order, update.stop_index], |r| r.get(0))
            .optional()?;
        let last = last
            .map(|eta| parse_ts(&eta).map(|eta| Announced { eta }))
            .transpose()?;
        let fired: Option<String> = c
            .prepare_cached(
                "SELECT fired_at FROM eta_change_fired WHERE subscriber_id = ?1 AND order_id = ?2",
            )?
            .query_row(params![subscriber, order], |r| r.get(0))
            .optional()?;
        let verdict = assess_eta_change(
            last,
            opt_ts(fired)?,
            update.eta,
            Duration::minutes(min_change_min),
            policy,
            now,
        );
        let remember = |c: &Connection| -> Result<()> {
            c.prepare_cached(
                "INSERT INTO eta_announcements (subscriber_id, order_id, stop_idx, eta, \
                 announced_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (subscriber_id, order_id, stop_idx) DO UPDATE SET \
                 eta = excluded.eta, announced_at = excluded.announced_at",
            )?
            .execute(params![
                subscriber,
                order,
                update.stop_index,
                ts(update.eta),
                ts(now)
            ])?;
            Ok(())
        };
        match verdict {
            EtaChangeVerdict::Quiet => {}
            EtaChangeVerdict::Baseline => remember(c)?,
            EtaChangeVerdict::Fire {
                previous,
                change_min,
            } => {
                remember(c)?;
                c.prepare_cached(
                    "INSERT INTO eta_change_fired (subscriber_id, order_id, fired_at) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (subscriber_id, order_id) \
                     DO UPDATE SET fired_at = excluded.fired_at",
                )?
                .execute(params![subscriber, order, ts(now)])?;
                outbox(
                    c,
                    tenant,
                    "order.eta_changed",
                    rules::eta_changed_payload(update, &subscriber, previous, change_min, now),
                )?;
            }
        }
    }
    Ok(())
}
