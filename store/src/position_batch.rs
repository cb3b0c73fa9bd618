//! A batch of positions, folded per vehicle before either backend writes it.
//!
//! Writing a batch must leave the store exactly as writing its fixes one by
//! one would (a vehicle's newest fix, how many fixes were applied and how
//! many replayed, the trail points kept), but with one row write per vehicle
//! and one read per kind of row instead of several statements per fix. The
//! rules for that live here, free of SQL, so that SQLite and PostgreSQL fold
//! a batch the same way:
//! - [`by_vehicle`] groups the batch's fixes per (tenant, vehicle), in the
//!   order the vehicles first appear;
//! - [`fold`] says which of a vehicle's fixes become its newest in turn
//!   (strictly newer than everything before, stored or in the batch) and
//!   which repeat the newest (replays, counted); the rest are out of order;
//! - [`trail_points`] says which applied fixes extend an order's trail;
//! - [`outcomes`] answers, fix by fix, what `record_position` would have.
//!
//! Times are compared as the stored text (`records::ts`, fixed width), as the
//! backends' own `WHERE excluded.at > at` compares them.

use std::collections::HashMap;

use engine::OrderId;

use crate::model::{PositionOutcome, TenantId, VehicleFix};
use crate::privacy::LocationPrivacy;
use crate::records::ts;

/// How a vehicle's row takes its newest fix of a batch (the upsert's tail,
/// read alike by both dialects): the fix's fields, the applied and replayed
/// counts added, and never a fix older than the row's.
pub(crate) const NEWEST_ROW_ON_CONFLICT: &str = "ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET at = excluded.at, \
     lat = excluded.lat, lon = excluded.lon, speed_mps = excluded.speed_mps, \
     heading_deg = excluded.heading_deg, received_at = excluded.received_at, \
     applied = vehicle_positions.applied + excluded.applied, \
     replayed = vehicle_positions.replayed + excluded.replayed \
     WHERE excluded.at > vehicle_positions.at";

/// One vehicle's fixes in a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VehicleRun {
    pub(crate) tenant: TenantId,
    pub(crate) vehicle_id: String,
    /// Indices into the batch of this vehicle's fixes, in batch order.
    pub(crate) fixes: Vec<usize>,
}

/// What a vehicle's fixes do to its row.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Folded {
    /// Indices (into the batch) of the fixes that became the newest, in
    /// turn; the last one is what the row holds afterwards.
    pub(crate) applied: Vec<usize>,
    /// Fixes that repeated the newest one (a re-delivery).
    pub(crate) replayed: i64,
}

impl Folded {
    /// The fix the vehicle's row holds after the batch, when one changed it.
    pub(crate) fn newest(&self) -> Option<usize> {
        self.applied.last().copied()
    }
}

/// The batch's fixes grouped per (tenant, vehicle), vehicles in the order
/// they first appear, each one's fixes in batch order.
pub(crate) fn by_vehicle(batch: &[(TenantId, VehicleFix)]) -> Vec<VehicleRun> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut runs: Vec<VehicleRun> = Vec::new();
    for (i, (tenant, fix)) in batch.iter().enumerate() {
        let key = (tenant.as_str(), fix.vehicle_id.as_str());
        match index.get(&key) {
            Some(&run) => runs[run].fixes.push(i),
            None => {
                index.insert(key, runs.len());
                runs.push(VehicleRun {
                    tenant: tenant.clone(),
                    vehicle_id: fix.vehicle_id.as_str().to_owned(),
                    fixes: vec![i],
                });
            }
        }
    }
    runs
}

/// Folds a vehicle's fixes onto the time of its stored newest fix
/// (`stored_at`, as stored; `None` for a vehicle never seen).
pub(crate) fn fold(
    stored_at: Option<&str>,
    batch: &[(TenantId, VehicleFix)],
    run: &VehicleRun,
) -> Folded {
    let mut newest: Option<String> = stored_at.map(str::to_owned);
    let mut folded = Folded::default();
    for &i in &run.fixes {
        let at = ts(batch[i].1.at);
        match newest.as_deref() {
            Some(current) if at.as_str() < current => {}
            Some(current) if at.as_str() == current => folded.replayed += 1,
            _ => {
                folded.applied.push(i);
                newest = Some(at);
            }
        }
    }
    folded
}

/// Of an order's applied fixes (in time order), those its trail keeps, given
/// its last kept point (`at` as stored, lat, lon): each is judged against the
/// last one kept before it (`rules::keeps_trail_point`).
pub(crate) fn trail_points<'a>(
    last: Option<(String, f64, f64)>,
    applied: impl IntoIterator<Item = &'a VehicleFix>,
) -> Vec<&'a VehicleFix> {
    let mut last = last;
    let mut kept = Vec::new();
    for fix in applied {
        let keep = crate::rules::keeps_trail_point(
            last.as_ref()
                .map(|(at, lat, lon)| (at.as_str(), *lat, *lon)),
            fix,
        );
        if keep {
            last = Some((ts(fix.at), fix.lat, fix.lon));
            kept.push(fix);
        }
    }
    kept
}

/// What the batch did, fix by fix, as `record_position` answers one fix:
/// an applied fix names its vehicle's live orders (`orders[r]` for run `r`)
/// with its tenant's privacy and, under privacy, each order's pending stops;
/// any other fix answers the default (not newest, no orders).
pub(crate) fn outcomes(
    batch_len: usize,
    runs: &[VehicleRun],
    folded: &[Folded],
    orders: &[Vec<OrderId>],
    privacy: &HashMap<TenantId, LocationPrivacy>,
    pending_stops: &HashMap<OrderId, Vec<(f64, f64)>>,
) -> Vec<PositionOutcome> {
    let mut out = vec![PositionOutcome::default(); batch_len];
    for ((run, folded), orders) in runs.iter().zip(folded).zip(orders) {
        if folded.applied.is_empty() {
            continue;
        }
        let privacy = privacy.get(&run.tenant).cloned().unwrap_or_default();
        let pending: Vec<Vec<(f64, f64)>> = if privacy.enabled {
            orders
                .iter()
                .map(|o| pending_stops.get(o).cloned().unwrap_or_default())
                .collect()
        } else {
            Vec::new()
        };
        let outcome = PositionOutcome {
            newest: true,
            orders: orders.clone(),
            privacy,
            pending_stops: pending,
        };
        for &i in &folded.applied {
            out[i] = outcome.clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use engine::VehicleId;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_800_000_000 + s)
    }

    fn fix(vehicle: &str, s: i64, lat: f64) -> VehicleFix {
        VehicleFix {
            vehicle_id: VehicleId(vehicle.into()),
            at: at(s),
            lat,
            lon: -8.6,
            speed_mps: None,
            heading_deg: None,
        }
    }

    fn batch(fixes: &[(&str, &str, i64)]) -> Vec<(TenantId, VehicleFix)> {
        fixes
            .iter()
            .map(|(t, v, s)| (TenantId((*t).into()), fix(v, *s, 41.15)))
            .collect()
    }

    #[test]
    fn the_same_vehicle_id_of_two_tenants_is_two_vehicles() {
        let batch = batch(&[("acme", "t7", 1), ("rival", "t7", 2), ("acme", "t7", 3)]);
        let runs = by_vehicle(&batch);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].tenant.as_str(), "acme");
        assert_eq!(runs[0].fixes, vec![0, 2]);
        assert_eq!(runs[1].fixes, vec![1]);
    }

    #[test]
    fn a_fold_keeps_what_one_by_one_writes_would_keep() {
        // Stored newest at 5: 3 is late, 5 a replay, 6 and 9 newer, 7 late
        // after 9, 9 again a replay.
        let batch = batch(&[
            ("a", "v", 3),
            ("a", "v", 5),
            ("a", "v", 6),
            ("a", "v", 9),
            ("a", "v", 7),
            ("a", "v", 9),
        ]);
        let runs = by_vehicle(&batch);
        let stored = ts(at(5));
        let folded = fold(Some(&stored), &batch, &runs[0]);
        assert_eq!(folded.applied, vec![2, 3]);
        assert_eq!(folded.replayed, 2);
        assert_eq!(folded.newest(), Some(3));
        // Never seen: the first fix is applied, whatever its time.
        let fresh = fold(None, &batch, &runs[0]);
        assert_eq!(fresh.applied, vec![0, 1, 2, 3]);
        assert_eq!(fresh.replayed, 1);
    }

    #[test]
    fn the_trail_judges_each_fix_against_the_last_one_kept() {
        // 10 s apart and barely moving: only every third one is 30 s on.
        let fixes: Vec<VehicleFix> = (0..7).map(|i| fix("v", i * 10, 41.15)).collect();
        let kept = trail_points(None, &fixes);
        let times: Vec<_> = kept.iter().map(|f| f.at).collect();
        assert_eq!(times, vec![at(0), at(30), at(60)]);
        // With a point kept at 50 s already, the next is 80 s: none here.
        let last = Some((ts(at(50)), 41.15, -8.6));
        assert!(trail_points(last, &fixes[6..]).is_empty());
    }

    #[test]
    fn only_applied_fixes_name_their_orders() {
        let batch = batch(&[("a", "v", 1), ("a", "v", 0), ("a", "w", 2)]);
        let runs = by_vehicle(&batch);
        let folded: Vec<Folded> = runs.iter().map(|r| fold(None, &batch, r)).collect();
        let orders = vec![vec![OrderId("o1".into())], vec![]];
        let out = outcomes(3, &runs, &folded, &orders, &HashMap::new(), &HashMap::new());
        assert!(out[0].newest);
        assert_eq!(out[0].orders, vec![OrderId("o1".into())]);
        assert_eq!(out[1], PositionOutcome::default());
        assert!(out[2].newest);
        assert!(out[2].orders.is_empty());
    }
}
