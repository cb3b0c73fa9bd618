//! One shard of the live engine: the vehicles whose id hashes to it, their
//! matcher state and the orders they carry. A batch's positions are split by
//! shard and the shards run side by side, each reading the fleet-wide state
//! (router, metric, calibrator) and writing only its own; what has to be
//! fleet-wide (edge passages for the traffic model, closed predictions for the
//! calibrator) is handed back and folded in by [`super::LiveEngine`] once every
//! shard is done, in shard order, so a run is deterministic for a given number
//! of shards.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use road_graph::RoadGraph;

use super::orders::OrderState;
use super::plausibility::{JumpFilter, Verdict};
use super::{
    LiveConfig, LiveCounters, LiveOutput, Outlier, StageTimings, Stopwatch, VehicleMemory,
};
use crate::eta::{Calibrator, HosReport, WindowOutcome};
use crate::events::{EngineEvent, PositionUpdate};
use crate::matching::{
    Fix, FixOutcome, MatchEvents, MatchState, Matcher, MatcherScratch, Traversal, UnmatchedReason,
};
use crate::order::OrderId;
use crate::position::{Position, TenantId, VehicleId, VehicleKey};
use crate::routing::Router;
use crate::tracking::{
    ClosedPrediction, MetricVersion, TrackerOutput, TrackingContext, VehicleFix,
};

/// The shard of a vehicle among `n`: FNV-1a of `TENANT/VEHICLE`, its bits
/// mixed (FNV's low bits follow the last bytes too closely for ids like
/// `TRK-0001`), so the split is even and the same on every run and every machine.
pub(super) fn shard_of(tenant: &TenantId, vehicle: &VehicleId, n: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = tenant
        .as_str()
        .bytes()
        .chain([b'/'])
        .chain(vehicle.as_str().bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    (hash % n.max(1) as u64) as usize
}

/// What every shard reads and none writes while a batch runs.
pub(super) struct Shared<'a> {
    pub(super) graph: &'a RoadGraph,
    pub(super) router: &'a Router,
    pub(super) config: &'a LiveConfig,
    pub(super) metric: &'a MetricVersion,
    pub(super) calibrator: &'a Calibrator,
}

#[derive(Debug)]
struct VehicleState {
    matching: MatchState,
    last_time: DateTime<Utc>,
    plausible: JumpFilter,
}

/// What one shard made of its part of a batch.
#[derive(Debug, Default)]
pub(super) struct ShardOutput {
    pub(super) out: LiveOutput,
    /// Edge passages, in the order the shard's vehicles made them.
    pub(super) traversals: Vec<Traversal>,
    /// Predictions whose outcome became known.
    pub(super) closed: Vec<ClosedPrediction>,
    /// Stalls that ended, seconds.
    pub(super) stalls_s: Vec<f64>,
    /// Dwells that ended, seconds.
    pub(super) dwells_s: Vec<f64>,
    /// Where arrivals fell in the windows published before them.
    pub(super) windows: Vec<WindowOutcome>,
    /// The newest device time the shard took (stale positions excluded).
    pub(super) latest: Option<DateTime<Utc>>,
    /// The shard's stage times, when the caller gave a stopwatch.
    pub(super) timings: Option<StageTimings>,
}

/// A share of the fleet's live state.
#[derive(Debug, Default)]
pub(super) struct Shard {
    vehicles: HashMap<VehicleKey, VehicleState>,
    pub(super) orders: HashMap<OrderId, OrderState>,
    by_vehicle: HashMap<VehicleKey, Vec<OrderId>>,
    /// Each vehicle's last fix, kept `dispatch_fix_max_age_s` (longer than its
    /// matcher state): an order dispatched to it gets ETAs from there at once.
    last_fixes: HashMap<VehicleKey, VehicleFix>,
    scratch: MatchEvents,
    /// The matcher's memory between batches (its per-graph tables take a pass
    /// over every edge to build: far too much per batch).
    matcher: MatcherScratch,
    /// Positions, matches, staleness, ETA updates, status changes and retired
    /// vehicles of this shard (the rest is counted fleet-wide).
    pub(super) counters: LiveCounters,
}

impl Shard {
    pub(super) fn vehicles(&self) -> usize {
        self.vehicles.len()
    }

    /// Lets go of `vehicles` (another node owns them now): their orders
    /// leave the shard with their trackers' memories (returned, for the new
    /// owner), and their matcher state and last fixes are forgotten, so
    /// nothing of theirs runs here until they come back.
    pub(super) fn release(&mut self, vehicles: &HashSet<&VehicleKey>) -> Vec<VehicleMemory> {
        let mut memories = Vec::new();
        for vehicle in vehicles {
            self.vehicles.remove(*vehicle);
            self.last_fixes.remove(*vehicle);
            let Some(ids) = self.by_vehicle.remove(*vehicle) else {
                continue;
            };
            for id in ids {
                let Some(state) = self.orders.remove(&id) else {
                    continue;
                };
                if let Some(tracker) = &state.tracker {
                    memories.push(VehicleMemory {
                        vehicle: (*vehicle).clone(),
                        memory: tracker.memory(),
                    });
                }
            }
        }
        memories
    }

    /// Rebuilds the vehicle → orders index after the orders changed; each
    /// vehicle's orders in id order.
    pub(super) fn reindex(&mut self) {
        self.by_vehicle.clear();
        let mut ids: Vec<&OrderId> = self.orders.keys().collect();
        ids.sort();
        for id in ids {
            let vehicle = self.orders[id].order.vehicle_key();
            self.by_vehicle.entry(vehicle).or_default().push(id.clone());
        }
    }

    /// Runs this shard's positions (in device-time order per vehicle) through
    /// matching and the trackers; with a `stopwatch`, times the trackers apart
    /// from the rest.
    pub(super) fn process(
        &mut self,
        positions: &[&Position],
        shared: &Shared<'_>,
        stopwatch: Option<Stopwatch>,
    ) -> ShardOutput {
        let started = stopwatch.map(|now| now());
        let mut tracking = std::time::Duration::ZERO;
        let mut result = ShardOutput::default();
        let Ok(mut matcher) = Matcher::with_scratch(
            shared.graph,
            shared.config.matcher.clone(),
            std::mem::take(&mut self.matcher),
        ) else {
            // The settings were validated at construction.
            return result;
        };
        let ctx = TrackingContext {
            router: shared.router,
            metric: shared.metric,
            calibrator: shared.calibrator,
        };
        for &p in positions {
            self.counters.positions += 1;
            let key = p.key();
            // The key is cloned only for a vehicle seen for the first time.
            if !self.vehicles.contains_key(&key) {
                let state = VehicleState {
                    matching: MatchState::new(),
                    last_time: p.time,
                    plausible: JumpFilter::default(),
                };
                self.vehicles.insert(key.clone(), state);
            }
            let Some(vehicle) = self.vehicles.get_mut(&key) else {
                continue;
            };
            let fix = Fix::from(p);
            let fresh = vehicle.matching.counters().fixes == 0 || p.time > vehicle.last_time;
            if fresh {
                match vehicle
                    .plausible
                    .judge(p.time, fix.pos, &shared.config.plausibility)
                {
                    Verdict::Good => {}
                    Verdict::Relocated => {
                        // The truck was moved while its feed was off: its matched
                        // chain ends where it was, a new one starts here.
                        self.counters.relocations += 1;
                        self.scratch.clear();
                        matcher.finish(&mut vehicle.matching, &mut self.scratch);
                        result
                            .traversals
                            .extend_from_slice(&self.scratch.traversals);
                        vehicle.matching = MatchState::new();
                    }
                    Verdict::Outlier(detail) => {
                        self.counters.outliers += 1;
                        result.out.outliers.push(Outlier {
                            position: p.clone(),
                            detail,
                        });
                        continue;
                    }
                }
            }
            self.scratch.clear();
            matcher.push(&mut vehicle.matching, &fix, &mut self.scratch);
            result
                .traversals
                .extend_from_slice(&self.scratch.traversals);
            if !fresh {
                self.counters.stale += 1;
                continue;
            }
            vehicle.last_time = p.time;
            result.latest = result.latest.max(Some(p.time));
            let outcome = self
                .scratch
                .provisional
                .iter()
                .rev()
                // The matcher keeps times in milliseconds; devices may send finer.
                .find(|m| m.time.timestamp_millis() == p.time.timestamp_millis())
                .map(|m| m.outcome);
            let matched = outcome.and_then(|o| o.matched().copied());
            match outcome {
                Some(FixOutcome::Matched(_)) => self.counters.matched += 1,
                Some(FixOutcome::Unmatched {
                    reason: UnmatchedReason::NoRoadNearby,
                }) => self.counters.unmatched_no_road_nearby += 1,
                Some(FixOutcome::Unmatched {
                    reason: UnmatchedReason::InvalidPosition,
                }) => self.counters.unmatched_invalid_position += 1,
                Some(FixOutcome::Unmatched { .. }) | None => self.counters.unmatched_other += 1,
            }
            let shown = matched.map_or(fix.pos, |m| m.point);
            result
                .out
                .events
                .push(EngineEvent::PositionUpdated(PositionUpdate {
                    tenant_id: p.tenant_id.clone(),
                    vehicle_id: p.vehicle_id.clone(),
                    time: p.time,
                    lat: shown.lat,
                    lon: shown.lon,
                    speed_mps: p.speed_mps,
                    heading_deg: p.heading_deg,
                    matched: matched.is_some(),
                }));
            let vehicle_fix = VehicleFix {
                time: p.time,
                position: fix.pos,
                matched,
                hos: HosReport {
                    drive_left_s: p.hos_drive_remaining_s,
                    ..HosReport::default()
                },
            };
            match self.last_fixes.get_mut(&key) {
                Some(last) => *last = vehicle_fix,
                None => {
                    self.last_fixes.insert(key.clone(), vehicle_fix);
                }
            }
            let Some(order_ids) = self.by_vehicle.get(&key) else {
                continue;
            };
            let track_started = stopwatch.map(|now| now());
            for id in order_ids {
                if let Some(state) = self.orders.get_mut(id) {
                    track(state, &vehicle_fix, p.speed_mps, &ctx, &mut result);
                }
            }
            if let (Some(now), Some(track_started)) = (stopwatch, track_started) {
                tracking += now().saturating_duration_since(track_started);
            }
        }
        self.matcher = matcher.into_scratch();
        if let (Some(now), Some(started)) = (stopwatch, started) {
            let total = now().saturating_duration_since(started);
            result.timings = Some(StageTimings {
                match_s: total.saturating_sub(tracking).as_secs_f64(),
                track_s: tracking.as_secs_f64(),
            });
        }
        for event in &result.out.events {
            match event {
                EngineEvent::EtaUpdated(_) => self.counters.eta_updates += 1,
                EngineEvent::StatusChanged(_) => self.counters.status_changes += 1,
                EngineEvent::PositionUpdated(_) => {}
            }
        }
        result
    }

    /// Closes the chains of vehicles silent for longer than `idle` before `now`
    /// and forgets them; their last passages are appended to `traversals`.
    pub(super) fn retire_silent(
        &mut self,
        now: DateTime<Utc>,
        idle: Duration,
        shared: &Shared<'_>,
        traversals: &mut Vec<Traversal>,
    ) {
        let keep_fix =
            Duration::milliseconds((shared.config.dispatch_fix_max_age_s * 1000.0) as i64);
        self.last_fixes.retain(|_, fix| now - fix.time <= keep_fix);
        let mut silent: Vec<VehicleKey> = self
            .vehicles
            .iter()
            .filter(|(_, v)| now - v.last_time > idle)
            .map(|(id, _)| id.clone())
            .collect();
        if silent.is_empty() {
            return;
        }
        let Ok(mut matcher) = Matcher::with_scratch(
            shared.graph,
            shared.config.matcher.clone(),
            std::mem::take(&mut self.matcher),
        ) else {
            return;
        };
        // In id order, so the traffic model sees the same sequence every run.
        silent.sort();
        for id in silent {
            if let Some(mut v) = self.vehicles.remove(&id) {
                self.scratch.clear();
                matcher.finish(&mut v.matching, &mut self.scratch);
                traversals.extend_from_slice(&self.scratch.traversals);
                self.counters.vehicles_retired += 1;
            }
        }
        self.matcher = matcher.into_scratch();
    }
}

impl Shard {
    /// Gives every tracker without a route (an order just dispatched, or
    /// moved on by hand) its ETAs from its truck's last fix, when that is at
    /// most `dispatch_fix_max_age_s` old at `now`; in order id order.
    pub(super) fn prime(&mut self, shared: &Shared<'_>, now: DateTime<Utc>) -> ShardOutput {
        let mut result = ShardOutput::default();
        let ctx = TrackingContext {
            router: shared.router,
            metric: shared.metric,
            calibrator: shared.calibrator,
        };
        let max_age_ms = (shared.config.dispatch_fix_max_age_s * 1000.0) as i64;
        let mut ids: Vec<&OrderId> = self.orders.keys().collect();
        ids.sort();
        let ids: Vec<OrderId> = ids.into_iter().cloned().collect();
        for id in ids {
            let Some(state) = self.orders.get_mut(&id) else {
                continue;
            };
            let Some(fix) = self.last_fixes.get(&state.order.vehicle_key()) else {
                continue;
            };
            if (now - fix.time).num_milliseconds() > max_age_ms {
                continue;
            }
            let Some(tracker) = state.tracker.as_mut().filter(|t| t.needs_route()) else {
                continue;
            };
            let output = tracker.prime(&ctx, fix, now);
            absorb(output, &mut result);
        }
        self.counters.eta_updates += result
            .out
            .events
            .iter()
            .filter(|e| matches!(e, EngineEvent::EtaUpdated(_)))
            .count() as u64;
        result
    }
}

/// Advances one order by one fix of its vehicle: its fences (departure from
/// the stop it stood at, arrival at a pending one) on the raw fix, then the
/// tracker (ETAs), and the status changes they make, in that order: a page
/// sees the stop reached, then the ETA to the next.
fn track(
    state: &mut OrderState,
    fix: &VehicleFix,
    speed_mps: Option<f64>,
    ctx: &TrackingContext<'_>,
    result: &mut ShardOutput,
) {
    let mut fenced = TrackerOutput::default();
    let changes = state.on_raw_fix(fix.time, fix.position, speed_mps, &mut fenced);
    result
        .out
        .events
        .extend(changes.into_iter().map(EngineEvent::StatusChanged));
    absorb(fenced, result);
    let Some(tracker) = state.tracker.as_mut() else {
        return;
    };
    let output = tracker.on_fix(ctx, fix);
    if tracker.done() {
        state.tracker = None;
    }
    absorb(output, result);
}

/// Hands what a tracker produced to the shard's output.
fn absorb(output: TrackerOutput, result: &mut ShardOutput) {
    let TrackerOutput {
        updates,
        predictions,
        arrivals,
        closed,
        stalls_s,
        dwells_s,
        windows,
        ..
    } = output;
    result.closed.extend(closed);
    result.stalls_s.extend(stalls_s);
    result.dwells_s.extend(dwells_s);
    result.windows.extend(windows);
    result.out.predictions.extend(predictions);
    result.out.arrivals.extend(arrivals);
    result
        .out
        .events
        .extend(updates.into_iter().map(EngineEvent::EtaUpdated));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vehicle_always_lands_on_the_same_shard_and_a_fleet_spreads_over_all() {
        let tenant = TenantId("ten_a".into());
        let ids: Vec<VehicleId> = (0..1000).map(|i| VehicleId(format!("TRK-{i}"))).collect();
        let mut per_shard = [0usize; 4];
        for id in &ids {
            let shard = shard_of(&tenant, id, 4);
            assert_eq!(shard, shard_of(&tenant.clone(), &id.clone(), 4));
            per_shard[shard] += 1;
        }
        // 1000 ids over 4 shards: each gets a fair share (±20 %).
        assert!(
            per_shard.iter().all(|&n| (200..=300).contains(&n)),
            "{per_shard:?}"
        );
        assert!(ids.iter().all(|id| shard_of(&tenant, id, 1) == 0));
    }
}
