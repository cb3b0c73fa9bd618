//! The pure simulation: vehicles, their state machine and the fixes they report.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use engine::{Position, PositionSource, TenantId, VehicleId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use road_graph::{EdgeId, LatLon, RoadClass, RoadGraph, bearing_deg, haversine_m};
use serde::Serialize;

use crate::{Error, Result};

/// A route between two points on edges, as a planner returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRoute {
    /// Edges in driving order; the first holds the start, the last the end.
    pub edges: Vec<EdgeId>,
    pub start_offset_m: f64,
    pub end_offset_m: f64,
    /// The planner's (free-flow or traffic) estimate.
    pub duration_s: f64,
    pub distance_m: f64,
}

/// Anything that plans truck routes between edge positions.
pub trait RoutePlanner: Send + Sync {
    fn plan(&self, from: (EdgeId, f64), to: (EdgeId, f64)) -> Option<PlannedRoute>;
}

impl RoutePlanner for engine::Router {
    fn plan(&self, from: (EdgeId, f64), to: (EdgeId, f64)) -> Option<PlannedRoute> {
        let route = self.route(
            &engine::Snap::on_edge(from.0, from.1),
            &engine::Snap::on_edge(to.0, to.1),
        )?;
        Some(PlannedRoute {
            start_offset_m: route.from.offset_m,
            end_offset_m: route.to.offset_m,
            duration_s: route.duration_s(),
            distance_m: route.distance_m,
            edges: route.edges,
        })
    }
}

/// Settings of a fleet. No `Default`: start from [`FleetConfig::recommended`].
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Whose trucks these are: every fix carries this tenant.
    pub tenant_id: TenantId,
    pub n_vehicles: usize,
    pub seed: u64,
    /// Vehicle ids are this prefix and a number (`SIM-0001`).
    pub id_prefix: String,
    /// Straight-line distance range of trips.
    pub min_trip_m: f64,
    pub max_trip_m: f64,
    /// GPS noise (1 sigma) per axis.
    pub gps_noise_m: f64,
    /// Governor speed of the trucks.
    pub truck_max_speed_kph: f64,
    /// ELD reporting intervals and their weights.
    pub intervals_s: Vec<(u32, u32)>,
    /// Range of the dwell at a destination (loading, unloading, paperwork).
    pub dwell_s: (i64, i64),
}

impl FleetConfig {
    /// Trips of 3–25 km, 5 m GPS noise, trucks governed at 90 km/h, reporting
    /// intervals from 1 s to 5 min in proportions seen across ELD vendors; the
    /// trucks are tenant `sim`'s until the caller names the real one.
    pub fn recommended(n_vehicles: usize, seed: u64) -> FleetConfig {
        FleetConfig {
            tenant_id: TenantId("sim".into()),
            n_vehicles,
            seed,
            id_prefix: "SIM-".into(),
            min_trip_m: 3_000.0,
            max_trip_m: 25_000.0,
            gps_noise_m: 5.0,
            truck_max_speed_kph: 90.0,
            intervals_s: vec![(1, 2), (5, 2), (15, 1), (30, 2), (60, 2), (300, 1)],
            dwell_s: (20 * 60, 90 * 60),
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Simulator(what.to_owned()));
        if self.n_vehicles == 0 {
            return bad("n_vehicles must be positive");
        }
        if !(self.min_trip_m >= 0.0 && self.max_trip_m > self.min_trip_m) {
            return bad("max_trip_m must exceed min_trip_m");
        }
        if !(self.gps_noise_m >= 0.0 && self.truck_max_speed_kph > 0.0) {
            return bad("gps_noise_m and truck_max_speed_kph must be positive");
        }
        if !(self.dwell_s.0 >= 0 && self.dwell_s.1 > self.dwell_s.0) {
            return bad("dwell_s must be a non-empty range of non-negative seconds");
        }
        if self.intervals_s.iter().all(|(i, w)| *i == 0 || *w == 0) {
            return bad("intervals_s needs a positive interval with a positive weight");
        }
        Ok(())
    }
}

/// A trip as it starts: what an order for it would say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TripPlan {
    pub vehicle_id: VehicleId,
    pub depart_at: DateTime<Utc>,
    pub origin: LatLon,
    pub destination: LatLon,
    pub distance_m: f64,
    /// The planner's estimate, a lower bound of the real drive (stops, breaks).
    pub planned_duration_s: f64,
}

const BREAK_AFTER_S: f64 = 8.0 * 3600.0;
const BREAK_S: i64 = 30 * 60;
const SHIFT_DRIVE_S: f64 = 11.0 * 3600.0;
const OFF_DUTY_S: i64 = 10 * 3600;
/// A parked ELD reports at most this often.
const PARKED_INTERVAL_S: u32 = 300;

#[derive(Debug, Clone)]
struct Active {
    edges: Vec<EdgeId>,
    idx: usize,
    end_offset_m: f64,
    /// This road piece's speed relative to free flow (traffic, driver).
    factor: f64,
}

#[derive(Debug, Clone)]
struct Vehicle {
    id: VehicleId,
    rng: StdRng,
    interval_s: u32,
    /// Simulated up to here.
    clock: DateTime<Utc>,
    next_fix: DateTime<Utc>,
    edge: EdgeId,
    offset_m: f64,
    speed_mps: f64,
    heading_deg: f64,
    route: Option<Active>,
    stopped_until: Option<DateTime<Utc>>,
    since_break_s: f64,
    shift_drive_s: f64,
    odometer_m: f64,
    /// `Some` for a scripted vehicle: the places it is sent to, in order; it
    /// never picks a destination of its own and parks when the list is empty.
    script: Option<VecDeque<(EdgeId, f64)>>,
    /// A scripted vehicle that has been everywhere it was sent (dwell included).
    idle: bool,
}

/// The fleet. Deterministic for a given graph, config and sequence of `advance`
/// calls' `until` values.
#[derive(Debug)]
pub struct Fleet {
    graph: Arc<RoadGraph>,
    config: FleetConfig,
    vehicles: Vec<Vehicle>,
    trips: Vec<TripPlan>,
}

impl Fleet {
    /// Places the trucks on random roads, parked; each starts its first trip
    /// within ten minutes of `start`.
    pub fn new(graph: Arc<RoadGraph>, config: FleetConfig, start: DateTime<Utc>) -> Result<Fleet> {
        config.validate()?;
        if graph.n_edges() == 0 {
            return Err(Error::Simulator("the map has no roads".into()));
        }
        let total_weight: u32 = config.intervals_s.iter().map(|(_, w)| w).sum();
        let width = config.n_vehicles.to_string().len().max(4);
        let vehicles = (0..config.n_vehicles)
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(
                    config.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                let mut pick = rng.random_range(0..total_weight);
                let mut interval_s = 60;
                for (interval, weight) in &config.intervals_s {
                    if pick < *weight && *interval > 0 {
                        interval_s = *interval;
                        break;
                    }
                    pick = pick.saturating_sub(*weight);
                }
                let edge = random_main_edge(&mut rng, &graph);
                let offset_m = rng.random_range(0.0..=1.0) * graph.edge_length_m(edge);
                let depart = start + TimeDelta::seconds(rng.random_range(0..600));
                let first_fix = start
                    + TimeDelta::milliseconds(rng.random_range(0..i64::from(interval_s) * 1000));
                Vehicle {
                    id: VehicleId(format!("{}{:0width$}", config.id_prefix, i + 1)),
                    rng,
                    interval_s,
                    clock: start,
                    next_fix: first_fix,
                    edge,
                    offset_m,
                    speed_mps: 0.0,
                    heading_deg: 0.0,
                    route: None,
                    stopped_until: Some(depart),
                    since_break_s: 0.0,
                    shift_drive_s: 0.0,
                    odometer_m: 0.0,
                    script: None,
                    idle: false,
                }
            })
            .collect();
        Ok(Fleet {
            graph,
            config,
            vehicles,
            trips: Vec::new(),
        })
    }

    /// A scripted fleet: one truck per `(id, place)`, parked there at `start`,
    /// that drives only where it is sent ([`Fleet::send`]), dwelling at each
    /// place it reaches (`config.dwell_s`). `config.n_vehicles` and `id_prefix`
    /// are not used. The demo of `tracker serve` drives its orders this way.
    pub fn scripted(
        graph: Arc<RoadGraph>,
        config: FleetConfig,
        start: DateTime<Utc>,
        trucks: &[(VehicleId, LatLon)],
    ) -> Result<Fleet> {
        let config = FleetConfig {
            n_vehicles: trucks.len(),
            ..config
        };
        let mut fleet = Fleet::new(Arc::clone(&graph), config, start)?;
        for (v, (id, place)) in fleet.vehicles.iter_mut().zip(trucks) {
            let (edge, offset_m) = snap(&graph, *place).ok_or_else(|| {
                Error::Simulator(format!("{id}: no road within 1 km of {place:?}"))
            })?;
            v.id = id.clone();
            v.edge = edge;
            v.offset_m = offset_m;
            v.stopped_until = Some(start);
            v.script = Some(VecDeque::new());
        }
        Ok(fleet)
    }

    /// Sends a scripted truck to `place` after the places it was already sent
    /// to. `false` when there is no such scripted truck or no road near `place`.
    pub fn send(&mut self, vehicle: &VehicleId, place: LatLon) -> bool {
        let Some(to) = snap(&self.graph, place) else {
            return false;
        };
        match self.vehicles.iter_mut().find(|v| &v.id == vehicle) {
            Some(v) if v.script.is_some() => {
                v.script.get_or_insert_default().push_back(to);
                v.idle = false;
                true
            }
            _ => false,
        }
    }

    /// Whether a scripted truck has reached (and dwelt at) every place it was
    /// sent to and waits for the next.
    pub fn is_idle(&self, vehicle: &VehicleId) -> bool {
        self.vehicles
            .iter()
            .any(|v| &v.id == vehicle && v.idle && v.script.is_some())
    }

    /// Where a truck is (on the road, without GPS noise).
    pub fn position_of(&self, vehicle: &VehicleId) -> Option<LatLon> {
        self.vehicles
            .iter()
            .find(|v| &v.id == vehicle)
            .map(|v| self.graph.point_along_edge(v.edge, v.offset_m))
    }

    pub fn n_vehicles(&self) -> usize {
        self.vehicles.len()
    }

    /// The vehicle ids, in order.
    pub fn vehicle_ids(&self) -> impl Iterator<Item = &VehicleId> {
        self.vehicles.iter().map(|v| &v.id)
    }

    /// Simulates every truck up to `until` and returns the fixes they reported,
    /// ordered by time.
    pub fn advance(&mut self, planner: &dyn RoutePlanner, until: DateTime<Utc>) -> Vec<Position> {
        let mut fixes = Vec::new();
        let Fleet {
            graph,
            config,
            vehicles,
            trips,
        } = self;
        for v in vehicles.iter_mut() {
            while v.next_fix <= until {
                let at = v.next_fix;
                v.simulate_to(at, graph, config, planner, trips);
                fixes.push(v.fix(graph, config));
                let interval = if v.stopped_until.is_some() {
                    v.interval_s.max(PARKED_INTERVAL_S)
                } else {
                    v.interval_s
                };
                v.next_fix = at + TimeDelta::seconds(i64::from(interval));
            }
        }
        fixes.sort_by_key(|p| p.time);
        fixes
    }

    /// Trips started since the last call.
    pub fn take_trips(&mut self) -> Vec<TripPlan> {
        std::mem::take(&mut self.trips)
    }
}

impl Vehicle {
    fn simulate_to(
        &mut self,
        target: DateTime<Utc>,
        graph: &RoadGraph,
        config: &FleetConfig,
        planner: &dyn RoutePlanner,
        trips: &mut Vec<TripPlan>,
    ) {
        // Bounded: every pass either reaches the target or ends a stop, an edge
        // or a drive period; the cap guards against a zero-length loop.
        for _ in 0..100_000 {
            if self.clock >= target {
                return;
            }
            if let Some(until) = self.stopped_until {
                if until > target {
                    self.clock = target;
                    return;
                }
                self.clock = until;
                self.stopped_until = None;
                if self.route.is_none() {
                    self.start_trip(graph, config, planner, trips);
                }
                continue;
            }
            let Some(mut route) = self.route.take() else {
                self.start_trip(graph, config, planner, trips);
                continue;
            };
            let edge = route.edges[route.idx];
            let last = route.idx + 1 == route.edges.len();
            let end_m = if last {
                route.end_offset_m
            } else {
                graph.edge_length_m(edge)
            };
            let speed_kph = graph.edge_speed_kph(edge).min(config.truck_max_speed_kph);
            let speed = (speed_kph / 3.6 * route.factor).max(1.0);
            let to_edge_end_s = ((end_m - self.offset_m) / speed).max(0.0);
            let to_target_s = (target - self.clock).as_seconds_f64();
            let to_break_s = (BREAK_AFTER_S - self.since_break_s).max(0.0);
            let to_rest_s = (SHIFT_DRIVE_S - self.shift_drive_s).max(0.0);
            let dt = to_edge_end_s
                .min(to_target_s)
                .min(to_break_s)
                .min(to_rest_s);
            self.offset_m += speed * dt;
            self.odometer_m += speed * dt;
            self.since_break_s += dt;
            self.shift_drive_s += dt;
            self.speed_mps = speed;
            self.edge = edge;
            self.clock += TimeDelta::microseconds((dt * 1e6) as i64);
            if dt >= to_rest_s {
                self.route = Some(route);
                self.stop(OFF_DUTY_S);
                self.shift_drive_s = 0.0;
                self.since_break_s = 0.0;
            } else if dt >= to_break_s {
                self.route = Some(route);
                self.stop(BREAK_S);
                self.since_break_s = 0.0;
            } else if dt >= to_edge_end_s {
                if last {
                    let dwell = self.rng.random_range(config.dwell_s.0..config.dwell_s.1);
                    self.stop(dwell);
                } else {
                    route.idx += 1;
                    self.edge = route.edges[route.idx];
                    self.offset_m = 0.0;
                    route.factor = self.rng.random_range(0.75..1.05);
                    self.route = Some(route);
                    let class = graph.edge_class(self.edge);
                    let busy = class > RoadClass::TrunkLink;
                    if busy && self.rng.random_bool(0.04) {
                        let wait = self.rng.random_range(10..90);
                        self.stop(wait);
                    }
                }
            } else {
                // Reached the target mid-edge.
                self.route = Some(route);
                self.clock = self.clock.max(target);
            }
        }
    }

    fn stop(&mut self, duration_s: i64) {
        self.speed_mps = 0.0;
        self.stopped_until = Some(self.clock + TimeDelta::seconds(duration_s));
    }

    fn start_trip(
        &mut self,
        graph: &RoadGraph,
        config: &FleetConfig,
        planner: &dyn RoutePlanner,
        trips: &mut Vec<TripPlan>,
    ) {
        let here = graph.point_along_edge(self.edge, self.offset_m);
        if let Some(script) = self.script.as_mut() {
            let Some(to) = script.pop_front() else {
                // Parked until sent somewhere.
                self.idle = true;
                self.stop(5);
                return;
            };
            match planner.plan((self.edge, self.offset_m), to) {
                Some(route) if !route.edges.is_empty() => {
                    trips.push(TripPlan {
                        vehicle_id: self.id.clone(),
                        depart_at: self.clock,
                        origin: here,
                        destination: graph.point_along_edge(to.0, to.1),
                        distance_m: route.distance_m,
                        planned_duration_s: route.duration_s,
                    });
                    self.edge = route.edges[0];
                    self.offset_m = route.start_offset_m;
                    self.route = Some(Active {
                        end_offset_m: route.end_offset_m,
                        edges: route.edges,
                        idx: 0,
                        factor: self.rng.random_range(0.85..1.05),
                    });
                }
                // Already there, or no way there: the place counts as reached.
                _ => self.stop(5),
            }
            return;
        }
        for _ in 0..5 {
            let Some((to_edge, to_offset)) = self.pick_destination(graph, config, here) else {
                continue;
            };
            let Some(route) = planner.plan((self.edge, self.offset_m), (to_edge, to_offset)) else {
                continue;
            };
            if route.edges.is_empty() {
                continue;
            }
            trips.push(TripPlan {
                vehicle_id: self.id.clone(),
                depart_at: self.clock,
                origin: here,
                destination: graph.point_along_edge(to_edge, to_offset),
                distance_m: route.distance_m,
                planned_duration_s: route.duration_s,
            });
            self.edge = route.edges[0];
            self.offset_m = route.start_offset_m;
            self.route = Some(Active {
                end_offset_m: route.end_offset_m,
                edges: route.edges,
                idx: 0,
                factor: self.rng.random_range(0.75..1.05),
            });
            return;
        }
        // Nowhere to go from here (an island of the map): wait and try again.
        self.stop(600);
    }

    fn pick_destination(
        &mut self,
        graph: &RoadGraph,
        config: &FleetConfig,
        here: LatLon,
    ) -> Option<(EdgeId, f64)> {
        for _ in 0..40 {
            let edge = random_main_edge(&mut self.rng, graph);
            let offset = self.rng.random_range(0.0..=1.0) * graph.edge_length_m(edge);
            let d = haversine_m(here, graph.point_along_edge(edge, offset));
            if (config.min_trip_m..=config.max_trip_m).contains(&d) {
                return Some((edge, offset));
            }
        }
        // Small maps: any other place will do.
        let edge = random_main_edge(&mut self.rng, graph);
        (edge != self.edge).then_some((edge, graph.edge_length_m(edge) / 2.0))
    }

    /// The fix the ELD reports now: true position plus GPS noise.
    fn fix(&mut self, graph: &RoadGraph, config: &FleetConfig) -> Position {
        let len = graph.edge_length_m(self.edge);
        let offset = self.offset_m.clamp(0.0, len);
        let truth = graph.point_along_edge(self.edge, offset);
        if self.speed_mps > 0.0 {
            let (a, b) = if offset + 5.0 <= len {
                (truth, graph.point_along_edge(self.edge, offset + 5.0))
            } else {
                (
                    graph.point_along_edge(self.edge, (offset - 5.0).max(0.0)),
                    truth,
                )
            };
            if a != b {
                self.heading_deg = bearing_deg(a, b);
            }
        }
        // 1 % of fixes are multipath outliers, several sigma off.
        let sigma = if self.rng.random_bool(0.01) {
            config.gps_noise_m * 8.0
        } else {
            config.gps_noise_m
        };
        let (dx, dy) = (
            gaussian(&mut self.rng) * sigma,
            gaussian(&mut self.rng) * sigma,
        );
        let lat = truth.lat + dy / 111_195.0;
        let lon = truth.lon + dx / (111_195.0 * truth.lat.to_radians().cos().max(0.01));
        let speed_noise = gaussian(&mut self.rng) * 0.3;
        Position {
            tenant_id: config.tenant_id.clone(),
            vehicle_id: self.id.clone(),
            time: self.clock,
            lat,
            lon,
            speed_mps: Some((self.speed_mps + speed_noise).max(0.0)),
            heading_deg: Some(self.heading_deg.rem_euclid(360.0)),
            odometer_m: Some(self.odometer_m),
            hos_drive_remaining_s: Some((SHIFT_DRIVE_S - self.shift_drive_s).max(0.0) as u32),
            accuracy_m: Some(config.gps_noise_m),
            source: PositionSource::Simulator,
        }
    }
}

/// The nearest road position to a place (within 1 km).
fn snap(graph: &RoadGraph, place: LatLon) -> Option<(EdgeId, f64)> {
    graph
        .nearest_edges(place, 1000.0, 1)
        .first()
        .map(|c| (c.edge, c.offset_m))
}

/// A standard normal sample (Box–Muller).
pub fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A random road of the map's largest strongly connected component (the graph
/// keeps every component for matching, but a truck parked on a road cut off at
/// the map's edge could never leave it); any road after a bounded number of
/// draws, so a map that is all islands still gets a fleet.
fn random_main_edge(rng: &mut StdRng, graph: &RoadGraph) -> EdgeId {
    let mut edge = EdgeId(0);
    for _ in 0..64 {
        edge = EdgeId(rng.random_range(0..graph.n_edges() as u32));
        if graph.in_main_component(edge) {
            break;
        }
    }
    edge
}
