//! The PostgreSQL side of alerts judged from ETAs: run inside `record_etas`'
//! transaction (the order's row is locked), so the stop's late-risk state,
//! the announcements and the outbox entries they make commit with the ETA or
//! not at all. The judgements are `crate::alerts`' and the notes and
//! payloads `store::rules`', as on SQLite (`store::alerts`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use engine::EtaUpdate;
use tokio_postgres::Transaction;

use super::writes::{insert_event, outbox};
use crate::alerts::{
    AlertPolicy, Announced, EtaChangeVerdict, LateRisk, LateRiskState, assess_eta_change,
    assess_late_risk,
};
use crate::error::Result;
use crate::model::TenantId;
use crate::notify::DEFAULT_MIN_CHANGE_MIN;
use crate::records::{parse_opt_ts, parse_ts, ts};
use crate::rules;

/// What the late-risk judgement needs of the stop an ETA is for, returned by
/// the statement that records the ETA (so judging it reads nothing more).
pub(super) struct StopAlertState {
    pub(super) window_to: Option<String>,
    pub(super) late_risk_since: Option<String>,
    pub(super) late_risk_by_min: Option<i64>,
    pub(super) late_turning_since: Option<String>,
    /// Not yet reached, left or skipped.
    pub(super) pending: bool,
}

/// Judges the stop of `update` (already recorded; `stop` is its state) for
/// late risk and ETA changes, writing what fired. `subscribers` are the
/// tenant's `eta_changed` subscribers ([`eta_subscribers`]).
pub(super) async fn assess_recorded_eta(
    c: &Transaction<'_>,
    tenant: &TenantId,
    update: &EtaUpdate,
    policy: &AlertPolicy,
    stop: StopAlertState,
    subscribers: &[(String, i64)],
) -> Result<()> {
    // A stop already reached is judged by its verdict, not by a prediction.
    if !stop.pending {
        return Ok(());
    }
    let now = update.computed_at;
    if let Some(window_to) = parse_opt_ts(stop.window_to)? {
        let state = LateRiskState {
            at_risk: parse_opt_ts(stop.late_risk_since)?.map(|since| LateRisk {
                since,
                by_min: stop.late_risk_by_min.unwrap_or(0),
            }),
            turning_since: parse_opt_ts(stop.late_turning_since)?,
        };
        let (next, change) =
            assess_late_risk(state, update.eta, update.p90, window_to, policy, now);
        if next != state {
            c.execute(
                "UPDATE stops SET late_risk_since = $1, late_risk_by_min = $2, \
                 late_turning_since = $3 WHERE order_id = $4 AND idx = $5",
                &[
                    &next.at_risk.map(|r| ts(r.since)),
                    &next.at_risk.map(|r| r.by_min),
                    &next.turning_since.map(ts),
                    &update.order_id.as_str(),
                    &i64::from(update.stop_index),
                ],
            )
            .await?;
        }
        if let Some(change) = change {
            let (note, payload) = rules::late_risk_record(update, change, now);
            insert_event(c, &update.order_id, &note).await?;
            outbox(c, tenant, "order.late_risk", payload).await?;
        }
    }
    announce_eta_changes(c, tenant, update, policy, now, subscribers).await
}

/// Everyone of each tenant who wants `eta_changed`: e-mail rules, with their
/// threshold in minutes, and enabled webhook endpoints (the default one).
/// Read once for a batch of ETAs.
pub(super) async fn eta_subscribers(
    c: &Transaction<'_>,
    tenants: &[&str],
) -> Result<HashMap<String, Vec<(String, i64)>>> {
    let mut subscribers: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for r in c
        .query(
            "SELECT tenant_id, id, min_change_min FROM notification_rules \
             WHERE tenant_id = ANY($1) AND event = 'eta_changed' AND deleted_at IS NULL \
             UNION ALL SELECT tenant_id, id, NULL FROM webhook_endpoints \
             WHERE tenant_id = ANY($1) AND deleted_at IS NULL AND disabled_at IS NULL \
             AND events LIKE '%\"eta_changed\"%'",
            &[&tenants],
        )
        .await?
    {
        let min: Option<i64> = r.try_get(2)?;
        subscribers.entry(r.try_get(0)?).or_default().push((
            r.try_get(1)?,
            min.unwrap_or(i64::from(DEFAULT_MIN_CHANGE_MIN)),
        ));
    }
    Ok(subscribers)
}

async fn announce_eta_changes(
    c: &Transaction<'_>,
    tenant: &TenantId,
    update: &EtaUpdate,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
    subscribers: &[(String, i64)],
) -> Result<()> {
    let order = update.order_id.as_str();
    let stop = i64::from(update.stop_index);
    for (subscriber, min_change_min) in subscribers {
        let min_change_min = *min_change_min;
        let last = c
            .query_opt(
                "SELECT eta FROM eta_announcements \
                 WHERE subscriber_id = $1 AND order_id = $2 AND stop_idx = $3",
                &[&subscriber, &order, &stop],
            )
            .await?
            .map(|r| -> Result<Announced> {
                Ok(Announced {
                    eta: parse_ts(r.try_get(0)?)?,
                })
            })
            .transpose()?;
        let fired = c
            .query_opt(
                "SELECT fired_at FROM eta_change_fired \
                 WHERE subscriber_id = $1 AND order_id = $2",
                &[&subscriber, &order],
            )
            .await?
            .map(|r| r.try_get::<_, String>(0))
            .transpose()?;
        let verdict = assess_eta_change(
            last,
            parse_opt_ts(fired)?,
            update.eta,
            Duration::minutes(min_change_min),
            policy,
            now,
        );
        let remember = "INSERT INTO eta_announcements (subscriber_id, order_id, stop_idx, eta, \
             announced_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (subscriber_id, order_id, stop_idx) DO UPDATE SET \
             eta = excluded.eta, announced_at = excluded.announced_at";
        let remember_params = (subscriber.as_str(), ts(update.eta), ts(now));
        match verdict {
            EtaChangeVerdict::Quiet => {}
            EtaChangeVerdict::Baseline => {
                c.execute(
                    remember,
                    &[
                        &remember_params.0,
                        &order,
                        &stop,
                        &remember_params.1,
                        &remember_params.2,
                    ],
                )
                .await?;
            }
            EtaChangeVerdict::Fire {
                previous,
                change_min,
            } => {
                c.execute(
                    remember,
                    &[
                        &remember_params.0,
                        &order,
                        &stop,
                        &remember_params.1,
                        &remember_params.2,
                    ],
                )
                .await?;
                c.execute(
                    "INSERT INTO eta_change_fired (subscriber_id, order_id, fired_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (subscriber_id, order_id) \
                     DO UPDATE SET fired_at = excluded.fired_at",
                    &[&subscriber, &order, &ts(now)],
                )
                .await?;
                outbox(
                    c,
                    tenant,
                    "order.eta_changed",
                    rules::eta_changed_payload(update, &subscriber, previous, change_min, now),
                )
                .await?;
            }
        }
    }
    Ok(())
}
