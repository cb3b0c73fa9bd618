//! The live engine: the whole chain for a fleet, batch by batch. Positions come
//! in (validated, in device-time order per vehicle); each is map-matched on its
//! vehicle's [`MatchState`], its edge passages feed the [`TrafficModel`], and
//! every order the vehicle carries advances its [`VehicleTracker`]. Out come
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
//! Like the rest of the crate it is synchronous, does no I/O and takes `now`.

mod config;
mod orders;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use road_graph::{EdgeId, LatLon, RoadGraph};
use serde::{Deserialize, Serialize};

pub use config::LiveConfig;
use orders::OrderState;
pub use orders::{ActiveOrder, ActiveStop};

use crate::error::Result;
use crate::eta::{Calibrator, HosReport};
use crate::events::{EngineEvent, PositionUpdate};
use crate::matching::{Fix, MatchEvents, MatchState, Matcher};
use crate::order::OrderId;
use crate::position::{Position, VehicleId};
use crate::routing::{Metric, Router};
use crate::tracking::{
    ArrivalRecord, ClosedPrediction, MetricVersion, PredictionRecord, TrackerOutput,
    TrackingContext, VehicleFix,
};
use crate::traffic::{SpeedProfile, TrafficCounters, TrafficModel};

/// What one batch produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveOutput {
    /// In the order produced; per vehicle and per order in time order.
    pub events: Vec<EngineEvent>,
    /// One record per published ETA (the accuracy log).
    pub predictions: Vec<PredictionRecord>,
    pub arrivals: Vec<ArrivalRecord>,
}

/// Running counts, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCounters {
    pub positions: u64,
    /// Positions the matcher placed on a road.
    pub matched: u64,
    /// Positions not newer than the vehicle's last one (the matcher drops them).
    pub stale: u64,
    pub eta_updates: u64,
    pub status_changes: u64,
    /// Orders whose stops could not be placed on the map (not tracked).
    pub untrackable_orders: u64,
    /// Metrics prepared and installed, and the edges they changed.
    pub metrics_installed: u64,
    pub edges_updated: u64,
    /// Vehicles forgotten after a long silence.
    pub vehicles_retired: u64,
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

#[derive(Debug)]
struct VehicleState {
    matching: MatchState,
    last_time: DateTime<Utc>,
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
    vehicles: HashMap<VehicleId, VehicleState>,
    orders: HashMap<OrderId, OrderState>,
    by_vehicle: HashMap<VehicleId, Vec<OrderId>>,
    scratch: MatchEvents,
    counters: LiveCounters,
}

impl LiveEngine {
    /// An engine over `router` (shared with whoever applies metric updates),
    /// with checked settings; the traffic model starts from `profile`.
    pub fn new(router: Arc<Router>, config: LiveConfig, profile: SpeedProfile) -> Result<Self> {
        config.validate()?;
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
            vehicles: HashMap::new(),
            orders: HashMap::new(),
            by_vehicle: HashMap::new(),
            scratch: MatchEvents::default(),
            counters: LiveCounters::default(),
        })
    }

    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn counters(&self) -> LiveCounters {
        self.counters
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
        self.orders.values().filter(|o| o.tracker.is_some()).count()
    }

    /// Vehicles with matcher state.
    pub fn vehicles(&self) -> usize {
        self.vehicles.len()
    }

    /// The order as the engine knows it (status and arrivals include its own
    /// geofence moves).
    pub fn order(&self, id: &OrderId) -> Option<&ActiveOrder> {
        self.orders.get(id).map(|o| &o.order)
    }

    /// Replaces the set of active orders: new ones get a tracker, changed plans
    /// (vehicle, stops) a new one, missing ones are dropped; for the others, what
    /// moved in the store (status, arrivals recorded by hand) is adopted.
    /// Returns the newly seen orders that cannot be tracked, with the reason
    /// (a stop far from any road): they are kept for their geofences, without
    /// ETAs.
    pub fn set_orders(&mut self, orders: Vec<ActiveOrder>) -> Vec<(OrderId, String)> {
        let mut untrackable = Vec::new();
        let mut keep: HashMap<OrderId, OrderState> = HashMap::with_capacity(orders.len());
        for fresh in orders {
            let id = fresh.order_id.clone();
            match self.orders.remove(&id) {
                Some(mut state) if state.same_plan(&fresh) => {
                    let out = state.refresh(&fresh);
                    for closed in &out.closed {
                        self.calibrator
                            .record(closed.predicted, closed.actual_to_go_s);
                    }
                    keep.insert(id, state);
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
                    keep.insert(id, state);
                }
            }
        }
        self.orders = keep;
        self.by_vehicle.clear();
        let mut ids: Vec<&OrderId> = self.orders.keys().collect();
        ids.sort();
        for id in ids {
            let vehicle = self.orders[id].order.vehicle_id.clone();
            self.by_vehicle.entry(vehicle).or_default().push(id.clone());
        }
        untrackable
    }

    /// Runs a batch of positions through matching, traffic and the trackers.
    /// Positions must be in device-time order per vehicle (older ones are
    /// counted as stale and dropped by the matcher). Device times drive the
    /// trackers; `now` (the caller's clock) stands in for the engine's clock
    /// (the newest device time) only before any position was seen, to retire
    /// silent vehicles.
    pub fn process(&mut self, positions: &[Position], now: DateTime<Utc>) -> LiveOutput {
        let mut out = LiveOutput::default();
        let graph = Arc::clone(&self.graph);
        // The matcher holds only scratch memory: one per batch is cheap.
        let Ok(mut matcher) = Matcher::new(&graph, self.config.matcher.clone()) else {
            // The settings were validated at construction.
            return out;
        };
        for p in positions {
            self.counters.positions += 1;
            let vehicle = self
                .vehicles
                .entry(p.vehicle_id.clone())
                .or_insert_with(|| VehicleState {
                    matching: MatchState::new(),
                    last_time: p.time,
                });
            let fix = Fix::from(p);
            let fresh = vehicle.matching.counters().fixes == 0 || p.time > vehicle.last_time;
            self.scratch.clear();
            matcher.push(&mut vehicle.matching, &fix, &mut self.scratch);
            self.traffic.observe_traversals(&self.scratch.traversals);
            if !fresh {
                self.counters.stale += 1;
                continue;
            }
            vehicle.last_time = p.time;
            self.latest = self.latest.max(Some(p.time));
            let matched = self
                .scratch
                .provisional
                .iter()
                .rev()
                // The matcher keeps times in milliseconds; devices may send finer.
                .find(|m| m.time.timestamp_millis() == p.time.timestamp_millis())
                .and_then(|m| m.outcome.matched().copied());
            if matched.is_some() {
                self.counters.matched += 1;
            }
            let shown = matched.map_or(fix.pos, |m| m.point);
            out.events
                .push(EngineEvent::PositionUpdated(PositionUpdate {
                    vehicle_id: p.vehicle_id.clone(),
                    time: p.time,
                    lat: shown.lat,
                    lon: shown.lon,
                    speed_mps: p.speed_mps,
                    heading_deg: p.heading_deg,
                    matched: matched.is_some(),
                }));
            let Some(order_ids) = self.by_vehicle.get(&p.vehicle_id) else {
                continue;
            };
            let vehicle_fix = VehicleFix {
                time: p.time,
                position: fix.pos,
                matched,
                hos: HosReport {
                    drive_left_s: p.hos_drive_remaining_s,
                    ..HosReport::default()
                },
            };
            let mut closed = Vec::new();
            for id in order_ids {
                let Some(state) = self.orders.get_mut(id) else {
                    continue;
                };
                let ctx = TrackingContext {
                    router: &self.router,
                    metric: &self.metric,
                    calibrator: &self.calibrator,
                };
                let departure_radius_m = self.config.tracker.departure_radius_m;
                track(
                    state,
                    &vehicle_fix,
                    shown,
                    &ctx,
                    departure_radius_m,
                    &mut out,
                    &mut closed,
                );
            }
            for c in closed {
                self.calibrator.record(c.predicted, c.actual_to_go_s);
            }
        }
        for event in &out.events {
            match event {
                EngineEvent::EtaUpdated(_) => self.counters.eta_updates += 1,
                EngineEvent::StatusChanged(_) => self.counters.status_changes += 1,
                EngineEvent::PositionUpdated(_) => {}
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
        let silent: Vec<VehicleId> = self
            .vehicles
            .iter()
            .filter(|(_, v)| now - v.last_time > idle)
            .map(|(id, _)| id.clone())
            .collect();
        if silent.is_empty() {
            return;
        }
        let graph = Arc::clone(&self.graph);
        let Ok(mut matcher) = Matcher::new(&graph, self.config.matcher.clone()) else {
            return;
        };
        for id in silent {
            if let Some(mut v) = self.vehicles.remove(&id) {
                self.scratch.clear();
                matcher.finish(&mut v.matching, &mut self.scratch);
                self.traffic.observe_traversals(&self.scratch.traversals);
                self.counters.vehicles_retired += 1;
            }
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

/// Advances one order by one fix of its vehicle: the departure from the stop
/// it stood at, the tracker (ETAs, arrivals), and the status changes they make.
fn track(
    state: &mut OrderState,
    fix: &VehicleFix,
    shown: LatLon,
    ctx: &TrackingContext<'_>,
    departure_radius_m: f64,
    out: &mut LiveOutput,
    closed: &mut Vec<ClosedPrediction>,
) {
    // Leaving a stop is judged on the matched place (GPS noise around a parked
    // truck stays well inside the radius).
    if fix.matched.is_some()
        && let Some(change) = state.maybe_departed(shown, fix.time, departure_radius_m)
    {
        out.events.push(EngineEvent::StatusChanged(change));
    }
    let Some(tracker) = state.tracker.as_mut() else {
        return;
    };
    let TrackerOutput {
        updates,
        predictions,
        arrivals,
        closed: closing,
        ..
    } = tracker.on_fix(ctx, fix);
    if tracker.done() {
        state.tracker = None;
    }
    closed.extend(closing);
    out.predictions.extend(predictions);
    // An arrival comes before the ETAs to the next stop that the same fix
    // produced, so a page sees the stop reached, then the new ETA.
    for arrival in &arrivals {
        if let Some(change) = state.arrived(arrival.stop_index, arrival.arrived_at) {
            out.events.push(EngineEvent::StatusChanged(change));
        }
    }
    out.arrivals.extend(arrivals);
    out.events
        .extend(updates.into_iter().map(EngineEvent::EtaUpdated));
}
