//! The PostgreSQL side of alerts judged from ETAs, for a whole batch at once
//! inside `record_etas`' transaction (the orders' rows are locked), so the
//! stops' late-risk state, the announcements and the outbox entries they make
//! commit with the ETAs or not at all.
//!
//! The batch is judged in memory, ETA by ETA in the batch's order, exactly as
//! recording them one by one would judge them: each stop's late-risk state
//! and each subscriber's last announcement start from what the store holds
//! and move with every ETA; only the final states are written, with one
//! statement per kind of row. The judgements are `crate::alerts`' and the
//! notes and payloads `store::rules`', as on SQLite (`store::alert_store`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use engine::{EtaUpdate, OrderId};
use tokio_postgres::Transaction;

use crate::alerts::{
    AlertPolicy, Announced, EtaChangeVerdict, LateRisk, LateRiskState, assess_eta_change,
    assess_late_risk,
};
use crate::error::Result;
use crate::model::{NewEvent, TenantId};
use crate::notify::DEFAULT_MIN_CHANGE_MIN;
use crate::records::{parse_opt_ts, parse_ts, ts};
use crate::rules;
use crate::secrets::new_id;

/// What the late-risk judgement needs of a stop an ETA is for, as the
/// statement that records the batch's ETAs returns it.
#[derive(Debug, Clone)]
pub(super) struct StopAlertState {
    pub(super) window_to: Option<DateTime<Utc>>,
    pub(super) late: LateRiskState,
    /// Not yet reached, left or skipped.
    pub(super) pending: bool,
}

impl StopAlertState {
    /// From the columns `window_to, late_risk_since, late_risk_by_min,
    /// late_turning_since, pending` starting at `first`.
    pub(super) fn of_row(row: &tokio_postgres::Row, first: usize) -> Result<StopAlertState> {
        let by_min: Option<i64> = row.try_get(first + 2)?;
        Ok(StopAlertState {
            window_to: parse_opt_ts(row.try_get(first)?)?,
            late: LateRiskState {
                at_risk: parse_opt_ts(row.try_get(first + 1)?)?.map(|since| LateRisk {
                    since,
                    by_min: by_min.unwrap_or(0),
                }),
                turning_since: parse_opt_ts(row.try_get(first + 3)?)?,
            },
            pending: row.try_get(first + 4)?,
        })
    }
}

/// One ETA of the batch, recorded on an existing stop of a live order.
pub(super) struct Judged<'a> {
    pub(super) update: &'a EtaUpdate,
    pub(super) tenant: &'a TenantId,
}

/// Everyone of each tenant who wants `eta_changed`: e-mail rules, with their
/// threshold in minutes, and enabled webhook endpoints (the default one).
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

/// A tenant's `eta_changed` subscribers, from [`eta_subscribers`]' answer.
fn subscribers_of<'a>(
    subscribers: &'a HashMap<String, Vec<(String, i64)>>,
    tenant: &TenantId,
) -> &'a [(String, i64)] {
    subscribers.get(tenant.as_str()).map_or(&[], Vec::as_slice)
}

/// A subscriber's announcement of an order's stop: (subscriber, order, stop).
type AnnouncedKey = (String, String, i64);
/// What was announced: (the ETA, when).
type Announcement = (DateTime<Utc>, DateTime<Utc>);
/// A subscriber's announcements of an order: (subscriber, order).
type FiredKey = (String, String);

/// What the batch's judgements change, kept until they are written.
#[derive(Default)]
struct Outcome {
    /// Stops whose late-risk state moved: their final state.
    stops: HashMap<(String, u32), LateRiskState>,
    /// Timeline notes, in the batch's order.
    events: Vec<(OrderId, NewEvent)>,
    /// Outbox entries (tenant, topic, payload), in the batch's order.
    outbox: Vec<(String, &'static str, String)>,
    /// The last announced ETA per (subscriber, order, stop): (eta, at).
    announced: HashMap<AnnouncedKey, Announcement>,
    /// When an ETA change was last announced per (subscriber, order).
    fired: HashMap<FiredKey, DateTime<Utc>>,
}

/// Judges every recorded ETA of the batch (in order) for late risk and ETA
/// changes, then writes what moved. `stops` holds each recorded-on stop's
/// state as it stood before the batch; `subscribers` is [`eta_subscribers`].
pub(super) async fn judge_recorded_etas(
    c: &Transaction<'_>,
    judged: &[Judged<'_>],
    mut stops: HashMap<(String, u32), StopAlertState>,
    subscribers: &HashMap<String, Vec<(String, i64)>>,
    policy: &AlertPolicy,
) -> Result<()> {
    let (announced, fired) = announcement_state(c, judged, &stops, subscribers).await?;
    let mut outcome = Outcome {
        announced,
        fired,
        ..Outcome::default()
    };
    let mut announced_moved: Vec<AnnouncedKey> = Vec::new();
    let mut fired_moved: Vec<FiredKey> = Vec::new();
    for Judged { update, tenant } in judged {
        let key = (update.order_id.0.clone(), update.stop_index);
        let Some(stop) = stops.get_mut(&key) else {
            continue;
        };
        // A stop already reached is judged by its verdict, not by a prediction.
        if !stop.pending {
            continue;
        }
        let now = update.computed_at;
        if let Some(window_to) = stop.window_to {
            let (next, change) =
                assess_late_risk(stop.late, update.eta, update.p90, window_to, policy, now);
            if next != stop.late {
                stop.late = next;
                outcome.stops.insert(key.clone(), next);
            }
            if let Some(change) = change {
                let (note, payload) = rules::late_risk_record(update, change, now);
                outcome.events.push((update.order_id.clone(), note));
                let topic = "order.late_risk";
                outcome
                    .outbox
                    .push((tenant.0.clone(), topic, payload.to_string()));
            }
        }
        let order = update.order_id.as_str();
        let stop_idx = i64::from(update.stop_index);
        for (subscriber, min_change_min) in subscribers_of(subscribers, tenant) {
            let at = (subscriber.clone(), order.to_owned(), stop_idx);
            let fired_key = (subscriber.clone(), order.to_owned());
            let verdict = assess_eta_change(
                outcome
                    .announced
                    .get(&at)
                    .map(|(eta, _)| Announced { eta: *eta }),
                outcome.fired.get(&fired_key).copied(),
                update.eta,
                Duration::minutes(*min_change_min),
                policy,
                now,
            );
            match verdict {
                EtaChangeVerdict::Quiet => {}
                EtaChangeVerdict::Baseline => {
                    outcome.announced.insert(at.clone(), (update.eta, now));
                    announced_moved.push(at);
                }
                EtaChangeVerdict::Fire {
                    previous,
                    change_min,
                } => {
                    outcome.announced.insert(at.clone(), (update.eta, now));
                    announced_moved.push(at);
                    outcome.fired.insert(fired_key.clone(), now);
                    fired_moved.push(fired_key);
                    let payload =
                        rules::eta_changed_payload(update, subscriber, previous, change_min, now);
                    outcome.outbox.push((
                        tenant.0.clone(),
                        "order.eta_changed",
                        payload.to_string(),
                    ));
                }
            }
        }
    }
    write_outcome(c, outcome, announced_moved, fired_moved).await
}

/// The announcements' state the batch starts from: the last announced ETA per
/// (subscriber, order, stop) and the last fired change per (subscriber,
/// order), for the subscribers and orders the batch judges.
async fn announcement_state(
    c: &Transaction<'_>,
    judged: &[Judged<'_>],
    stops: &HashMap<(String, u32), StopAlertState>,
    subscribers: &HashMap<String, Vec<(String, i64)>>,
) -> Result<(
    HashMap<AnnouncedKey, Announcement>,
    HashMap<FiredKey, DateTime<Utc>>,
)> {
    let mut who: Vec<&str> = Vec::new();
    let mut orders: Vec<&str> = Vec::new();
    for Judged { update, tenant } in judged {
        let key = (update.order_id.0.clone(), update.stop_index);
        let listening = subscribers_of(subscribers, tenant);
        if listening.is_empty() || !stops.get(&key).is_some_and(|s| s.pending) {
            continue;
        }
        who.extend(listening.iter().map(|(id, _)| id.as_str()));
        orders.push(update.order_id.as_str());
    }
    let (mut announced, mut fired) = (HashMap::new(), HashMap::new());
    if orders.is_empty() {
        return Ok((announced, fired));
    }
    who.sort_unstable();
    who.dedup();
    orders.sort_unstable();
    orders.dedup();
    for r in c
        .query(
            "SELECT subscriber_id, order_id, stop_idx, eta, announced_at FROM eta_announcements \
             WHERE subscriber_id = ANY($1) AND order_id = ANY($2)",
            &[&who, &orders],
        )
        .await?
    {
        announced.insert(
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?),
            (parse_ts(r.try_get(3)?)?, parse_ts(r.try_get(4)?)?),
        );
    }
    for r in c
        .query(
            "SELECT subscriber_id, order_id, fired_at FROM eta_change_fired \
             WHERE subscriber_id = ANY($1) AND order_id = ANY($2)",
            &[&who, &orders],
        )
        .await?
    {
        fired.insert((r.try_get(0)?, r.try_get(1)?), parse_ts(r.try_get(2)?)?);
    }
    Ok((announced, fired))
}

/// Writes the batch's final states and new rows: one statement per kind.
async fn write_outcome(
    c: &Transaction<'_>,
    outcome: Outcome,
    mut announced_moved: Vec<AnnouncedKey>,
    mut fired_moved: Vec<FiredKey>,
) -> Result<()> {
    if !outcome.stops.is_empty() {
        let mut moved: Vec<(&(String, u32), &LateRiskState)> = outcome.stops.iter().collect();
        moved.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let orders: Vec<&str> = moved.iter().map(|(k, _)| k.0.as_str()).collect();
        let idx: Vec<i64> = moved.iter().map(|(k, _)| i64::from(k.1)).collect();
        let since: Vec<Option<String>> = moved
            .iter()
            .map(|(_, s)| s.at_risk.map(|r| ts(r.since)))
            .collect();
        let by_min: Vec<Option<i64>> = moved
            .iter()
            .map(|(_, s)| s.at_risk.map(|r| r.by_min))
            .collect();
        let turning: Vec<Option<String>> =
            moved.iter().map(|(_, s)| s.turning_since.map(ts)).collect();
        c.execute(
            "UPDATE stops SET late_risk_since = u.since, late_risk_by_min = u.by_min, \
                 late_turning_since = u.turning \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[]) \
                 AS u(order_id, idx, since, by_min, turning) \
             WHERE stops.order_id = u.order_id AND stops.idx = u.idx",
            &[&orders, &idx, &since, &by_min, &turning],
        )
        .await?;
    }
    if !outcome.events.is_empty() {
        let recorded_at = ts(Utc::now());
        let column = |f: &dyn Fn(&(OrderId, NewEvent)) -> Option<String>| -> Vec<Option<String>> {
            outcome.events.iter().map(f).collect()
        };
        let ids = column(&|_| Some(new_id("evt_")));
        let orders = column(&|(o, _)| Some(o.0.clone()));
        let at = column(&|(_, e)| Some(ts(e.at)));
        let kind = column(&|(_, e)| Some(e.kind.as_str().to_owned()));
        let status = column(&|(_, e)| e.status.map(|s| s.as_str().to_owned()));
        let note = column(&|(_, e)| e.note.clone());
        let source = column(&|(_, e)| Some(e.source.as_str().to_owned()));
        let visibility = column(&|(_, e)| Some(e.visibility.as_str().to_owned()));
        let stop_idx: Vec<Option<i64>> = outcome
            .events
            .iter()
            .map(|(_, e)| e.stop_index.map(i64::from))
            .collect();
        c.execute(
            "INSERT INTO order_events (id, order_id, at, kind, status, note, source, stop_idx, \
                 recorded_at, visibility) \
             SELECT u.id, u.order_id, u.at, u.kind, u.status, u.note, u.source, u.stop_idx, \
                 $9, u.visibility \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::bigint[], $10::text[]) WITH ORDINALITY \
                 AS u(id, order_id, at, kind, status, note, source, stop_idx, visibility, n) \
             ORDER BY u.n",
            &[
                &ids,
                &orders,
                &at,
                &kind,
                &status,
                &note,
                &source,
                &stop_idx,
                &recorded_at,
                &visibility,
            ],
        )
        .await?;
    }
    if !outcome.outbox.is_empty() {
        let tenants: Vec<&str> = outcome.outbox.iter().map(|(t, _, _)| t.as_str()).collect();
        let topics: Vec<&str> = outcome.outbox.iter().map(|(_, t, _)| *t).collect();
        let payloads: Vec<&str> = outcome.outbox.iter().map(|(_, _, p)| p.as_str()).collect();
        c.execute(
            "INSERT INTO outbox (tenant_id, topic, payload, created_at) \
             SELECT u.tenant_id, u.topic, u.payload, $4 \
             FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY \
                 AS u(tenant_id, topic, payload, n) \
             ORDER BY u.n",
            &[&tenants, &topics, &payloads, &ts(Utc::now())],
        )
        .await?;
    }
    announced_moved.sort_unstable();
    announced_moved.dedup();
    if !announced_moved.is_empty() {
        let final_of = |k: &AnnouncedKey| outcome.announced.get(k).copied();
        let kept: Vec<(&AnnouncedKey, Announcement)> = announced_moved
            .iter()
            .filter_map(|k| final_of(k).map(|v| (k, v)))
            .collect();
        let who: Vec<&str> = kept.iter().map(|(k, _)| k.0.as_str()).collect();
        let orders: Vec<&str> = kept.iter().map(|(k, _)| k.1.as_str()).collect();
        let idx: Vec<i64> = kept.iter().map(|(k, _)| k.2).collect();
        let eta: Vec<String> = kept.iter().map(|(_, v)| ts(v.0)).collect();
        let at: Vec<String> = kept.iter().map(|(_, v)| ts(v.1)).collect();
        c.execute(
            "INSERT INTO eta_announcements (subscriber_id, order_id, stop_idx, eta, announced_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[]) \
             ON CONFLICT (subscriber_id, order_id, stop_idx) DO UPDATE SET \
                 eta = excluded.eta, announced_at = excluded.announced_at",
            &[&who, &orders, &idx, &eta, &at],
        )
        .await?;
    }
    fired_moved.sort_unstable();
    fired_moved.dedup();
    if !fired_moved.is_empty() {
        let kept: Vec<(&FiredKey, DateTime<Utc>)> = fired_moved
            .iter()
            .filter_map(|k| outcome.fired.get(k).map(|at| (k, *at)))
            .collect();
        let who: Vec<&str> = kept.iter().map(|(k, _)| k.0.as_str()).collect();
        let orders: Vec<&str> = kept.iter().map(|(k, _)| k.1.as_str()).collect();
        let at: Vec<String> = kept.iter().map(|(_, at)| ts(*at)).collect();
        c.execute(
            "INSERT INTO eta_change_fired (subscriber_id, order_id, fired_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (subscriber_id, order_id) DO UPDATE SET fired_at = excluded.fired_at",
            &[&who, &orders, &at],
        )
        .await?;
    }
    Ok(())
}
