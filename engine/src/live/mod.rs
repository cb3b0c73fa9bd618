//! The live engine: the whole chain for a fleet, batch by batch. Positions come
//! in (validated, in device-time order per vehicle); each is map-matched on its
//! vehicle's [`MatchState`], its edge passages feed the [`TrafficModel`], and
//! every order the vehicle carries advances its [`VehicleTracker`](crate::VehicleTracker). Out come
//! [`EngineEvent`]s (the position after matching, the ETAs that moved, geofence
//! status changes), the prediction log and the arrivals.
//!
//! The orders come from outside ([`LiveEngine::set_orders`], the store's active
//! orders, re-read every few seconds by the caller); the engine knows nothing
//! of the store. The routing metric follows the traffic model in three steps so
//! that the slow one never holds up positions: [`LiveEngine::prepare_metric`]
//! (quick, on the engine: what changed), [`MetricUpdate::apply`] (the
//! customization, on any thread, while queries go on on the old metric), and
//! [`LiveEngine::install_metric`] (quick: the trackers re-time on the new one).
//!
//! Every truck is a [`crate::VehicleKey`] (tenant and vehicle id): an order
//! follows only its own tenant's fixes of its vehicle. Before matching, each
//! fix passes its vehicle's plausibility filter; outliers come back in
//! [`LiveOutput::outliers`].
//!
//! The fleet is split into [`LiveConfig::shards`] shards by vehicle key; a
//! batch's shards run side by side on the rayon pool, and what is fleet-wide
//! (the traffic model, the calibrator) takes their results in shard order
//! afterwards. Like the rest of the crate it is synchronous, does no I/O and
//! takes `now`; a run is deterministic for a given number of shards.

mod config;
mod fleet;
mod geofence;
mod orders;
mod plausibility;
mod shard;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use road_graph::{EdgeId, RoadGraph};
use serde::{Deserialize, Serialize};

pub use config::LiveConfig;
pub use fleet::{FleetDecodeError, FleetLearning, MapIdentity};
pub use geofence::Geofence;
use orders::OrderState;
pub use orders::{ActiveOrder, ActiveStop};
pub use plausibility::JumpRules;
use shard::{Shard, ShardOutput, Shared, shard_of};

use crate::error::Result;
use crate::eta::Calibrator;
use crate::events::EngineEvent;
use crate::order::OrderId;
use crate::position::{Position, VehicleKey};
use crate::routing::{Metric, Router};
use crate::tracking::{ArrivalRecord, MetricVersion, PredictionRecord, Resumed, TrackerMemory};
use crate::traffic::{ProfileHistory, SpeedProfile, TrafficCounters, TrafficModel};

/// What one batch produced.
/// A tracker's memory of its truck with the truck it is of: what a node
/// saves for the next owner of the truck (or for itself after a restart).
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleMemory {
    pub vehicle: VehicleKey,
    pub memory: TrackerMemory,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveOutput {
    /// In the order produced; per vehicle and per order in time order.
    pub events: Vec<EngineEvent>,
    /// One record per published ETA (the accuracy log).
    pub predictions: Vec<PredictionRecord>,
    pub arrivals: Vec<ArrivalRecord>,
    /// Fixes refused as physically implausible for their vehicle (not shown,
    /// not matched, not used by the ETA), for the caller to dead-letter.
    pub outliers: Vec<Outlier>,
    /// How long the batch's stages took, when the caller gave a stopwatch
    /// ([`LiveEngine::process_timed`]); `None` otherwise.
    pub timings: Option<StageTimings>,
}

/// The caller's clock for [`LiveEngine::process_timed`]. The engine reads no
/// clock of its own: the caller hands one in (`std::time::Instant::now`), and
/// what it measures goes only into [`LiveOutput::timings`], never into an
/// event, so the events stay deterministic.
pub type Stopwatch = fn() -> std::time::Instant;

/// Wall time of one batch's stages, seconds: the slowest shard's (shards run
/// side by side, so that is what the batch waited for).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    /// Plausibility and map matching, and everything else but the trackers.
    pub match_s: f64,
    /// The order trackers: routes, ETAs, geofences.
    pub track_s: f64,
}

/// A fix the engine refused: the position and why (`implausible_jump`).
#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    pub position: Position,
    pub detail: String,
}

/// Running counts, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCounters {
    pub positions: u64,
    /// Positions the matcher placed on a road.
    pub matched: u64,
    /// Fresh positions the matcher could not place, by reason: no road within
    /// the search radius…
    pub unmatched_no_road_nearby: u64,
    /// …a latitude or longitude out of range…
    pub unmatched_invalid_position: u64,
    /// …or no outcome yet for this fix (any other reason).
    pub unmatched_other: u64,
    /// Positions not newer than the vehicle's last one (the matcher drops them).
    pub stale: u64,
    /// Positions refused as physically implausible (`implausible_jump`).
    pub outliers: u64,
    /// Vehicles moved to a new place by a run of consistent fixes.
    pub relocations: u64,
    pub eta_updates: u64,
    pub status_changes: u64,
    /// Orders whose stops could not be placed on the map (not tracked).
    pub untrackable_orders: u64,
    /// Metrics prepared and installed, and the edges they changed.
    pub metrics_installed: u64,
    /// Times the hour-of-week profile was re-learned from the fleet's history.
    pub profiles_learned: u64,
    pub edges_updated: u64,
    /// Vehicles forgotten after a long silence.
    pub vehicles_retired: u64,
    /// Records learned from other nodes' trucks ([`LiveEngine::learn_from_fleet`]).
    #[serde(default)]
    pub fleet_learned: u64,
    /// Own records dropped unshared because nobody took them in time.
    #[serde(default)]
    pub fleet_dropped: u64,
}

impl LiveCounters {
    /// Field-wise sum.
    fn plus(&self, other: &LiveCounters) -> LiveCounters {
        LiveCounters {
            positions: self.positions + other.positions,
            matched: self.matched + other.matched,
            unmatched_no_road_nearby: self.unmatched_no_road_nearby
                + other.unmatched_no_road_nearby,
            unmatched_invalid_position: self.unmatched_invalid_position
                + other.unmatched_invalid_position,
            unmatched_other: self.unmatched_other + other.unmatched_other,
            stale: self.stale + other.stale,
            outliers: self.outliers + other.outliers,
            relocations: self.relocations + other.relocations,
            eta_updates: self.eta_updates + other.eta_updates,
            status_changes: self.status_changes + other.status_changes,
            untrackable_orders: self.untrackable_orders + other.untrackable_orders,
            metrics_installed: self.metrics_installed + other.metrics_installed,
            profiles_learned: self.profiles_learned + other.profiles_learned,
            edges_updated: self.edges_updated + other.edges_updated,
            vehicles_retired: self.vehicles_retired + other.vehicles_retired,
            fleet_learned: self.fleet_learned + other.fleet_learned,
            fleet_dropped: self.fleet_dropped + other.fleet_dropped,
        }
    }
}

/// A new routing metric from the traffic model, to customize on any thread.
#[derive(Debug, Clone)]
pub struct MetricUpdate {
    generation: u64,
    changes: Vec<(EdgeId, u32)>,
    metric: Metric,
}

impl MetricUpdate {
    /// Edges whose time changed.
    pub fn n_changes(&self) -> usize {
        self.changes.len()
    }

    /// Customizes the router with the new metric (a partial update when few
    /// edges changed, a full customization otherwise) and returns the version to
    /// install. The slow step: run it off the thread that processes positions.
    pub fn apply(self, router: &Router) -> Result<MetricVersion> {
        if self.changes.len() * 20 < router.graph().n_edges() {
            router.update_edges(&self.changes)?;
        } else {
            router.customize(self.metric.clone())?;
        }
        Ok(MetricVersion {
            generation: self.generation,
            metric: Arc::new(self.metric),
        })
    }
}

/// The fleet's live state on one map.
#[derive(Debug)]
pub struct LiveEngine {
    graph: Arc<RoadGraph>,
    router: Arc<Router>,
    config: LiveConfig,
    traffic: TrafficModel,
    calibrator: Calibrator,
    metric: MetricVersion,
    /// The newest generation handed out by `prepare_metric`.
    prepared: u64,
    last_prepared_at: Option<DateTime<Utc>>,
    last_housekeeping_at: Option<DateTime<Utc>>,
    /// The newest device time processed.
    latest: Option<DateTime<Utc>>,
    /// The vehicles and their orders, split by [`shard_of`] the vehicle id.
    shards: Vec<Shard>,
    /// Fleet-wide counts (metrics, untrackable orders); the shards count the rest.
    counters: LiveCounters,
    /// What this engine learned from its own trucks since the caller last
    /// took it, kept only while sharing is on (several nodes).
    outgoing: Option<FleetLearning>,
}

/// Most records kept for the fleet topic while nobody takes them (a stalled
/// publisher must not grow the engine without bound): about 4 MB.
const MAX_OUTGOING: usize = 200_000;

impl LiveEngine {
    /// An engine over `router` (shared with whoever applies metric updates),
    /// with checked settings; the traffic model starts from `profile`.
    pub fn new(router: Arc<Router>, config: LiveConfig, profile: SpeedProfile) -> Result<Self> {
        config.validate()?;
        let config_shards = config.shards;
        let graph = Arc::clone(router.graph());
        let traffic = TrafficModel::new(Arc::clone(&graph), config.traffic.clone(), profile)?;
        let calibrator = Calibrator::new(config.calibration.clone())?;
        let metric = MetricVersion {
            generation: 0,
            metric: Arc::new(router.metric()),
        };
        Ok(LiveEngine {
            graph,
            router,
            config,
            traffic,
            calibrator,
            metric,
            prepared: 0,
            last_prepared_at: None,
            last_housekeeping_at: None,
            latest: None,
            shards: (0..config_shards).map(|_| Shard::default()).collect(),
            counters: LiveCounters::default(),
            outgoing: None,
        })
    }

    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn counters(&self) -> LiveCounters {
        self.shards
            .iter()
            .fold(self.counters, |sum, shard| sum.plus(&shard.counters))
    }

    pub fn traffic_counters(&self) -> TrafficCounters {
        self.traffic.counters()
    }

    /// The metric generation trackers time their routes on.
    pub fn metric_generation(&self) -> u64 {
        self.metric.generation
    }

    /// The newest device time processed so far: the engine's clock.
    pub fn latest_time(&self) -> Option<DateTime<Utc>> {
        self.latest
    }

    /// Orders with a running tracker.
    pub fn tracked_orders(&self) -> usize {
        self.shards
            .iter()
            .flat_map(|s| s.orders.values())
            .filter(|o| o.tracker.is_some())
            .count()
    }

    /// Vehicles with matcher state.
    pub fn vehicles(&self) -> usize {
        self.shards.iter().map(Shard::vehicles).sum()
    }

    /// The order as the engine knows it (status and arrivals include its own
    /// geofence moves).
    pub fn order(&self, id: &OrderId) -> Option<&ActiveOrder> {
        self.shards
            .iter()
            .find_map(|s| s.orders.get(id))
            .map(|o| &o.order)
    }

    /// Replaces the set of active orders: new ones get a tracker, changed plans
    /// (vehicle, stops) a new one, missing ones are dropped; for the others, what
    /// moved in the store (status, arrivals recorded by hand) is adopted.
    /// Returns the newly seen orders that cannot be tracked, with the reason
    /// (a stop far from any road): they are kept for their geofences, without
    /// ETAs.
    pub fn set_orders(&mut self, orders: Vec<ActiveOrder>) -> Vec<(OrderId, String)> {
        let mut untrackable = Vec::new();
        let n = self.shards.len();
        let mut keep: Vec<HashMap<OrderId, OrderState>> = (0..n).map(|_| HashMap::new()).collect();
        for fresh in orders {
            let id = fresh.order_id.clone();
            let to = shard_of(&fresh.tenant_id, &fresh.vehicle_id, n);
            let known = self.shards.iter_mut().find_map(|s| s.orders.remove(&id));
            match known {
                Some(mut state) if state.same_plan(&fresh) => {
                    state
                        .refresh(&fresh)
                        .teach(&mut self.calibrator, &self.config.tracker.eta);
                    keep[to].insert(id, state);
                }
                _ => {
                    let (state, problem) = OrderState::new(
                        &self.router,
                        fresh,
                        self.config.tracker,
                        self.config.early_allowed,
                    );
                    if let Some(problem) = problem {
                        self.counters.untrackable_orders += 1;
                        untrackable.push((id.clone(), problem.0));
                    }
                    keep[to].insert(id, state);
                }
            }
        }
        for (shard, orders) in self.shards.iter_mut().zip(keep) {
            shard.orders = orders;
            shard.reindex();
        }
        untrackable
    }

    /// ETAs at once for orders whose tracker has no route yet (just
    /// dispatched, or moved on by hand) from their truck's last fix, when it
    /// is at most `dispatch_fix_max_age_s` old at `now`: call after
    /// [`LiveEngine::set_orders`] (a truck waiting in a yard may not report
    /// for an hour). The events are ETA updates, as from a batch.
    pub fn etas_from_last_fixes(&mut self, now: DateTime<Utc>) -> LiveOutput {
        let (shared, shards) = self.split();
        let results: Vec<ShardOutput> = shards.iter_mut().map(|s| s.prime(&shared, now)).collect();
        let mut out = LiveOutput::default();
        for result in results {
            self.calibrator.record_all(
                result
                    .closed
                    .iter()
                    .map(|c| (c.predicted, c.actual_to_go_s)),
            );
            self.calibrator
                .record_windows(result.windows.iter().copied());
            out.events.extend(result.out.events);
            out.predictions.extend(result.out.predictions);
        }
        out
    }

    /// The shards, and the fleet-wide state they all read while they run.
    fn split(&mut self) -> (Shared<'_>, &mut [Shard]) {
        let shared = Shared {
            graph: &self.graph,
            router: &self.router,
            config: &self.config,
            metric: &self.metric,
            calibrator: &self.calibrator,
        };
        (shared, &mut self.shards)
    }

    /// The fleet's learned uncertainty: the error distribution by horizon and
    /// the finished stalls. Saved by the caller (it is serializable), so that a
    /// restart does not start every window from the prior.
    pub fn calibrator(&self) -> &Calibrator {
        &self.calibrator
    }

    /// Takes over a saved calibrator (see [`Calibrator::restored`]); on error
    /// the engine keeps its own.
    pub fn restore_calibrator(&mut self, saved: Calibrator) -> Result<()> {
        self.calibrator = saved.restored(&self.config.calibration)?;
        Ok(())
    }

    /// What the traffic model learns its hour-of-week profile from (`None`
    /// when `traffic.profile_relearn_every_s` is 0). Saved by the caller, so
    /// that a restart does not start the profile from free flow again.
    pub fn traffic_history(&self) -> Option<&ProfileHistory> {
        self.traffic.history()
    }

    /// Takes over a saved profile history and re-learns the profile from it
    /// at once (the next metric carries it); on error (another map or clock,
    /// or no learning) the engine keeps its own.
    pub fn restore_traffic_history(&mut self, saved: ProfileHistory) -> Result<()> {
        self.traffic.restore_history(saved)
    }

    /// Every running tracker's memory of its truck (pace, hours-of-service
    /// clocks, stands, own errors): saved by the caller, so that a restart
    /// does not start every truck's ETA afresh.
    pub fn tracker_memories(&self) -> Vec<VehicleMemory> {
        self.shards
            .iter()
            .flat_map(|s| s.orders.values())
            .filter_map(|o| {
                o.tracker.as_ref().map(|t| VehicleMemory {
                    vehicle: o.order.vehicle_key(),
                    memory: t.memory(),
                })
            })
            .collect()
    }

    /// Lets go of vehicles that another engine owns now (their Kafka
    /// partition moved to another node): their orders leave this engine with
    /// their trackers' memories, returned for the new owner to resume, and
    /// their matcher state and last fixes are forgotten. Until the caller
    /// gives it their orders again, nothing of theirs runs here: no ETA, no
    /// status, no retirement.
    pub fn release_vehicles(&mut self, vehicles: &[VehicleKey]) -> Vec<VehicleMemory> {
        let set: HashSet<&VehicleKey> = vehicles.iter().collect();
        let mut memories: Vec<VehicleMemory> = self
            .shards
            .iter_mut()
            .flat_map(|s| s.release(&set))
            .collect();
        memories.sort_by(|a, b| a.memory.order_id().cmp(b.memory.order_id()));
        memories
    }

    /// Hands saved memories to the trackers of their orders (call after
    /// `set_orders`, before positions): how many were taken up whole, and
    /// in part (the truck's own state, not the stand at a next stop that has
    /// changed meanwhile). Memories of orders no longer tracked are dropped.
    pub fn resume_trackers(&mut self, memories: Vec<TrackerMemory>) -> (usize, usize) {
        let (mut whole, mut part) = (0, 0);
        for memory in memories {
            let tracker = self
                .shards
                .iter_mut()
                .find_map(|s| s.orders.get_mut(memory.order_id()))
                .and_then(|o| o.tracker.as_mut());
            match tracker.map(|t| t.resume(memory)) {
                Some(Resumed::Whole) => whole += 1,
                Some(Resumed::TruckOnly) => part += 1,
                Some(Resumed::Refused) | None => {}
            }
        }
        (whole, part)
    }

    /// The hour-of-week profile the traffic model decays to.
    pub fn speed_profile(&self) -> &SpeedProfile {
        self.traffic.profile()
    }

    /// Runs a batch of positions through matching, traffic and the trackers.
    /// Positions must be in device-time order per vehicle (older ones are
    /// counted as stale and dropped by the matcher). Device times drive the
    /// trackers; `now` (the caller's clock) stands in for the engine's clock
    /// (the newest device time) only before any position was seen, to retire
    /// silent vehicles.
    pub fn process(&mut self, positions: &[Position], now: DateTime<Utc>) -> LiveOutput {
        self.run_batch(positions, now, None)
    }

    /// [`LiveEngine::process`], timing the batch's stages with the caller's
    /// `stopwatch` into [`LiveOutput::timings`] (for metrics); the events are
    /// the same as without it.
    pub fn process_timed(
        &mut self,
        positions: &[Position],
        now: DateTime<Utc>,
        stopwatch: Stopwatch,
    ) -> LiveOutput {
        self.run_batch(positions, now, Some(stopwatch))
    }

    fn run_batch(
        &mut self,
        positions: &[Position],
        now: DateTime<Utc>,
        stopwatch: Option<Stopwatch>,
    ) -> LiveOutput {
        let (shared, shards) = self.split();
        let n = shards.len();
        let mut parts: Vec<Vec<&Position>> = vec![Vec::new(); n];
        for p in positions {
            parts[shard_of(&p.tenant_id, &p.vehicle_id, n)].push(p);
        }
        let results: Vec<ShardOutput> = if n == 1 {
            // One shard stays on the caller's thread.
            vec![shards[0].process(&parts[0], &shared, stopwatch)]
        } else {
            shards
                .par_iter_mut()
                .zip(parts.par_iter())
                .map(|(shard, part)| shard.process(part, &shared, stopwatch))
                .collect()
        };
        let mut out = LiveOutput::default();
        for result in results {
            self.traffic.observe_traversals(&result.traversals);
            if self.outgoing.is_some() {
                self.keep_for_fleet(FleetLearning {
                    passages: result.traversals.iter().map(Into::into).collect(),
                    outcomes: result
                        .closed
                        .iter()
                        .map(|c| (c.predicted, c.actual_to_go_s))
                        .collect(),
                    stalls_s: result.stalls_s.clone(),
                    dwells_s: result.dwells_s.clone(),
                    windows: result.windows.clone(),
                });
            }
            self.calibrator.record_all(
                result
                    .closed
                    .iter()
                    .map(|c| (c.predicted, c.actual_to_go_s)),
            );
            for &stall_s in &result.stalls_s {
                self.calibrator
                    .record_stall(&self.config.tracker.eta.stall, stall_s);
            }
            for &dwell_s in &result.dwells_s {
                self.calibrator
                    .record_dwell(&self.config.tracker.eta.dwell, dwell_s);
            }
            self.calibrator
                .record_windows(result.windows.iter().copied());
            self.latest = self.latest.max(result.latest);
            out.events.extend(result.out.events);
            out.predictions.extend(result.out.predictions);
            out.arrivals.extend(result.out.arrivals);
            out.outliers.extend(result.out.outliers);
            if let Some(shard) = result.timings {
                let batch = out.timings.get_or_insert_with(StageTimings::default);
                batch.match_s = batch.match_s.max(shard.match_s);
                batch.track_s = batch.track_s.max(shard.track_s);
            }
        }
        self.housekeeping(self.latest.unwrap_or(now));
        out
    }

    /// Closes the chains of vehicles silent for `vehicle_idle_s` (their last
    /// passages go to the traffic model) and forgets them; at most once a minute.
    fn housekeeping(&mut self, now: DateTime<Utc>) {
        if self
            .last_housekeeping_at
            .is_some_and(|t| now - t < Duration::seconds(60))
        {
            return;
        }
        self.last_housekeeping_at = Some(now);
        let idle = Duration::milliseconds((self.config.vehicle_idle_s * 1000.0) as i64);
        let (shared, shards) = self.split();
        let mut traversals = Vec::new();
        for shard in shards {
            shard.retire_silent(now, idle, &shared, &mut traversals);
        }
        self.traffic.observe_traversals(&traversals);
        if self.outgoing.is_some() {
            self.keep_for_fleet(FleetLearning {
                passages: traversals.iter().map(Into::into).collect(),
                ..FleetLearning::default()
            });
        }
    }

    /// Starts (or stops) keeping what this engine learns from its own trucks
    /// for [`LiveEngine::take_fleet_learning`]: on when several nodes share
    /// one fleet, so each learns from the trucks of the others.
    pub fn share_learning(&mut self, on: bool) {
        self.outgoing = on.then(FleetLearning::default);
    }

    /// What this engine learned from its own trucks since the last call
    /// (empty when sharing is off).
    pub fn take_fleet_learning(&mut self) -> FleetLearning {
        match &mut self.outgoing {
            Some(kept) => std::mem::take(kept),
            None => FleetLearning::default(),
        }
    }

    /// Learns what other nodes' engines learned from their trucks, as if this
    /// engine had seen those trucks: passages go to the traffic model (and its
    /// profile history), outcomes to the calibrator. Never kept for sharing
    /// again. Returns the passages the traffic model took.
    pub fn learn_from_fleet(&mut self, learning: &FleetLearning) -> usize {
        let before = self.traffic.counters().accepted;
        for passage in &learning.passages {
            // A refused passage is counted by the model, not an error.
            let _ = self.traffic.observe(passage);
        }
        self.calibrator
            .record_all(learning.outcomes.iter().copied());
        for &stall_s in &learning.stalls_s {
            self.calibrator
                .record_stall(&self.config.tracker.eta.stall, stall_s);
        }
        for &dwell_s in &learning.dwells_s {
            self.calibrator
                .record_dwell(&self.config.tracker.eta.dwell, dwell_s);
        }
        self.calibrator
            .record_windows(learning.windows.iter().copied());
        self.counters.fleet_learned += learning.len() as u64;
        usize::try_from(self.traffic.counters().accepted - before).unwrap_or(usize::MAX)
    }

    fn keep_for_fleet(&mut self, learning: FleetLearning) {
        let Some(kept) = &mut self.outgoing else {
            return;
        };
        kept.extend(learning);
        if kept.len() > MAX_OUTGOING {
            // The oldest go first; the count says the topic missed them.
            let dropped = kept.len() as u64;
            *kept = FleetLearning::default();
            self.counters.fleet_dropped += dropped;
        }
    }

    /// Whether `recustomize_every_s` has passed since the last metric was
    /// prepared.
    pub fn metric_due(&self, now: DateTime<Utc>) -> bool {
        self.last_prepared_at.is_none_or(|t| {
            (now - t).num_milliseconds() as f64 >= self.config.recustomize_every_s * 1000.0
        })
    }

    /// What the traffic model says now, against the metric the trackers use:
    /// `None` when no edge moved by more than `metric_change_ratio`. Quick (one
    /// pass over the edges); the customization is [`MetricUpdate::apply`].
    pub fn prepare_metric(&mut self, now: DateTime<Utc>) -> Result<Option<MetricUpdate>> {
        self.last_prepared_at = Some(now);
        self.traffic.prune(now);
        if self.traffic.relearn_profile(now) {
            self.counters.profiles_learned += 1;
        }
        let changes = self.traffic.changes_since(
            &self.metric.metric,
            now,
            self.config.metric_change_ratio,
        )?;
        if changes.is_empty() {
            return Ok(None);
        }
        let mut metric = (*self.metric.metric).clone();
        for &(edge, ms) in &changes {
            metric.set_edge_ms(edge, ms);
        }
        self.prepared = self.prepared.max(self.metric.generation) + 1;
        Ok(Some(MetricUpdate {
            generation: self.prepared,
            changes,
            metric,
        }))
    }

    /// Makes an applied metric the one trackers time their routes on (older
    /// generations than the current one are ignored).
    pub fn install_metric(&mut self, version: MetricVersion) {
        if version.generation <= self.metric.generation {
            return;
        }
        let changed = version
            .metric
            .as_slice()
            .iter()
            .zip(self.metric.metric.as_slice())
            .filter(|(a, b)| a != b)
            .count();
        self.counters.metrics_installed += 1;
        self.counters.edges_updated += changed as u64;
        self.metric = version;
    }

    /// `prepare_metric`, `apply` and `install_metric` in one go, on this thread
    /// (tests, benches, single-threaded tools).
    pub fn recustomize_now(&mut self, now: DateTime<Utc>) -> Result<bool> {
        let Some(update) = self.prepare_metric(now)? else {
            return Ok(false);
        };
        let version = update.apply(&self.router)?;
        self.install_metric(version);
        Ok(true)
    }
}
