//! One trip replayed through the whole chain on one map: online map matching,
//! the traffic model fed by the vehicle's own passages (and, for simulated trips,
//! the rest of the fleet's), re-customization every few seconds of trip time, the
//! per-vehicle tracker and its ETA; at every fix the prediction of the arrival at
//! the trip's last point is scored against the real arrival and the free-flow
//! route time from the same matched position.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::{
    Calibrator, Fix, HosReport, MatchEvents, MatchState, Matcher, MatcherConfig, Metric,
    MetricVersion, OrderId, Router, Snap, SpeedObservation, SpeedProfile, StopPlan, TrackedStop,
    TrackerConfig, TrackerCounters, TrackerOutput, TrackingContext, TrafficConfig, TrafficModel,
    TurnCosts, Tz, VehicleFix, VehicleTracker,
};
use road_graph::{RoadGraph, haversine_m};

use super::score::{Errors, HORIZONS_S, bucket};

/// A timed trip to replay.
#[derive(Debug, Clone)]
pub(super) struct Trip {
    pub(super) name: String,
    pub(super) fixes: Vec<Fix>,
    /// The ELD's clocks with each fix (empty: none reported).
    pub(super) hos: Vec<HosReport>,
    /// Other vehicles' passages, sorted by exit time; each reaches the traffic
    /// model once the replay's clock passes its exit.
    pub(super) fleet: Vec<SpeedObservation>,
}

/// The outcome of one trip.
#[derive(Debug, Default)]
pub(super) struct TripResult {
    pub(super) by_horizon: Vec<Errors>,
    /// The same predictions by their own (predicted) time to go.
    pub(super) by_predicted: Vec<Errors>,
    pub(super) fixes: usize,
    pub(super) predicted: usize,
    pub(super) counters: TrackerCounters,
    pub(super) recustomizations: u64,
    pub(super) edges_updated: u64,
    pub(super) duration_s: f64,
    pub(super) skipped: Option<String>,
    /// Fixes with no ETA (unmatched, or no route) and with no baseline route.
    pub(super) no_eta: usize,
    pub(super) no_baseline: usize,
}

/// Replay settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReplaySettings {
    pub(super) recustomize_s: f64,
    pub(super) tracker: TrackerConfig,
    pub(super) arrival: Arrival,
}

/// Which fix of a trace is the real arrival at its last point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Arrival {
    /// The first fix of the final stay within the arrival radius of the last
    /// point: a logger that writes again two days after the truck parked at
    /// its destination does not make the truck two days late, and a round
    /// trip that starts at its end has not arrived before it leaves.
    Stay,
    /// The trace's last fix.
    End,
}

impl Arrival {
    /// The index of the arrival fix in `fixes` (not empty).
    pub(super) fn index(self, fixes: &[Fix], radius_m: f64) -> usize {
        let last = fixes.len().saturating_sub(1);
        match self {
            Arrival::End => last,
            Arrival::Stay => {
                let end = fixes[last].pos;
                let inside = fixes
                    .iter()
                    .rev()
                    .take_while(|f| haversine_m(f.pos, end) <= radius_m)
                    .count();
                fixes.len() - inside.max(1)
            }
        }
    }
}

/// What trips on one map share: the graph, the router the tracker uses (its
/// metric follows the traffic model), and a free-flow router for the baseline.
#[derive(Debug)]
pub(super) struct MapSession {
    graph: Arc<RoadGraph>,
    router: Router,
    baseline: Router,
    free: Metric,
}

impl MapSession {
    pub(super) fn new(graph: Arc<RoadGraph>) -> anyhow::Result<MapSession> {
        let free = Metric::free_flow(&graph);
        Ok(MapSession {
            router: Router::new(Arc::clone(&graph), &TurnCosts::TRUCK, free.clone())?,
            baseline: Router::new(Arc::clone(&graph), &TurnCosts::TRUCK, free.clone())?,
            graph,
            free,
        })
    }

    pub(super) fn graph(&self) -> &Arc<RoadGraph> {
        &self.graph
    }

    /// The free-flow router (for trip generation).
    pub(super) fn baseline(&self) -> &Router {
        &self.baseline
    }

    /// Replays one trip; the calibrator learns from what closes along the way.
    pub(super) fn replay(
        &self,
        trip: &Trip,
        settings: &ReplaySettings,
        calibrator: &mut Calibrator,
        mut log: Option<&mut dyn Write>,
    ) -> anyhow::Result<TripResult> {
        let graph = &self.graph;
        let mut result = TripResult {
            by_horizon: vec![Errors::default(); HORIZONS_S.len() + 1],
            by_predicted: vec![Errors::default(); HORIZONS_S.len() + 1],
            fixes: trip.fixes.len(),
            ..TripResult::default()
        };
        let (Some(first), Some(last)) = (trip.fixes.first().copied(), trip.fixes.last().copied())
        else {
            result.skipped = Some("empty trace".into());
            return Ok(result);
        };
        result.duration_s = seconds_between(first.time, last.time);
        // Every trip starts from free flow: its own traffic world.
        if self.router.metric() != self.free {
            self.router.customize(self.free.clone())?;
        }
        let mut traffic = TrafficModel::new(
            Arc::clone(graph),
            TrafficConfig::fleet(Tz::UTC),
            SpeedProfile::free_flow(Tz::UTC),
        )?;
        let mut version = MetricVersion {
            generation: 0,
            metric: Arc::new(self.free.clone()),
        };
        let stop = TrackedStop {
            position: last.pos,
            plan: StopPlan {
                window: None,
                early_allowed: true,
                dwell_s: None,
            },
        };
        // The replay says when the truck arrived (see `Arrival`), not the
        // first time the vehicle passes near its last point.
        let mut config = settings.tracker;
        config.detect_arrival = false;
        let mut tracker =
            match VehicleTracker::new(&self.router, OrderId(trip.name.clone()), 0, &[stop], config)
            {
                Ok(t) => t,
                Err(e) => {
                    result.skipped = Some(e.to_string());
                    return Ok(result);
                }
            };
        let Some(target) = Snap::nearest(graph, last.pos, config.stop_snap_radius_m) else {
            result.skipped = Some("the last point is off the network".into());
            return Ok(result);
        };
        let mut matcher = Matcher::new(graph, MatcherConfig::TRUCK)?;
        let mut state = MatchState::new();
        let mut events = MatchEvents::default();
        let every = Duration::milliseconds((settings.recustomize_s * 1000.0) as i64);
        let mut next_customize = first.time + every;
        let mut fleet = trip.fleet.iter().peekable();
        let arrived = settings
            .arrival
            .index(&trip.fixes, settings.tracker.arrival_radius_m);
        let arrival = trip.fixes[arrived].time;
        for (i, fix) in trip.fixes.iter().enumerate().take(arrived + 1) {
            matcher.push(&mut state, fix, &mut events);
            traffic.observe_traversals(&events.traversals);
            while let Some(obs) = fleet.next_if(|o| o.exited_at <= fix.time) {
                // A rejected passage is counted by the model, not an error.
                let _ = traffic.observe(obs);
            }
            let matched = events
                .provisional
                .iter()
                .rev()
                .find(|m| m.time == fix.time)
                .and_then(|m| m.outcome.matched().copied());
            events.clear();

            if fix.time >= next_customize {
                next_customize = fix.time + every;
                traffic.prune(fix.time);
                let changes = traffic.changes_since(&version.metric, fix.time, 0.02)?;
                if !changes.is_empty() {
                    result.recustomizations += 1;
                    result.edges_updated += changes.len() as u64;
                    let mut next = (*version.metric).clone();
                    for &(edge, ms) in &changes {
                        next.set_edge_ms(edge, ms);
                    }
                    // A few edges: a partial update; many: a full customization.
                    if changes.len() * 20 < graph.n_edges() {
                        self.router.update_edges(&changes)?;
                    } else {
                        self.router.customize(next.clone())?;
                    }
                    version = MetricVersion {
                        generation: version.generation + 1,
                        metric: Arc::new(next),
                    };
                }
            }

            let vehicle_fix = VehicleFix {
                time: fix.time,
                position: fix.pos,
                matched,
                hos: trip.hos.get(i).copied().unwrap_or_default(),
            };
            let out = {
                let ctx = TrackingContext {
                    router: &self.router,
                    metric: &version,
                    calibrator,
                };
                tracker.on_fix(&ctx, &vehicle_fix)
            };
            out.teach(calibrator, &config.eta);
            if i == arrived {
                break;
            }
            let (Some((_, eta)), Some(m)) = (out.etas.first(), matched) else {
                result.no_eta += 1;
                continue;
            };
            let Some(free) = self
                .baseline
                .route(&Snap::on_edge(m.edge, m.offset_m), &target)
            else {
                result.no_baseline += 1;
                continue;
            };
            let actual_s = seconds_between(fix.time, arrival);
            let ours_s = seconds_between(arrival, eta.eta);
            let baseline_s = free.duration_s() - actual_s;
            let covered = eta.p10 <= arrival && arrival <= eta.p90;
            let width_s = seconds_between(eta.p10, eta.p90);
            result.by_horizon[bucket(actual_s)].push(ours_s, baseline_s, covered, width_s);
            result.by_predicted[bucket(seconds_between(fix.time, eta.eta))]
                .push(ours_s, baseline_s, covered, width_s);
            result.predicted += 1;
            if let Some(log) = log.as_mut() {
                writeln!(
                    log,
                    "{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.3},{:.0},{}",
                    trip.name,
                    seconds_between(first.time, fix.time),
                    actual_s,
                    seconds_between(fix.time, eta.eta),
                    seconds_between(fix.time, eta.p10),
                    seconds_between(fix.time, eta.p90),
                    free.duration_s(),
                    eta.distance_m,
                    tracker.pace().factor(&config.eta.pace),
                    tracker.stalled_s(fix.time),
                    eta.reasons
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join("+"),
                )?;
            }
        }
        // The arrival closes the predictions sampled for it (the calibrator
        // learns from them for the next trips).
        if !tracker.done() {
            let mut out = TrackerOutput::default();
            tracker.arrive(arrival, &mut out);
            out.teach(calibrator, &config.eta);
        }
        result.counters = tracker.counters();
        Ok(result)
    }
}

/// Keeps the first fix, then one at least `every_s` after the last kept, and
/// always the last (the arrival).
pub(super) fn thin(fixes: Vec<Fix>, every_s: f64) -> Vec<Fix> {
    if every_s <= 0.0 || fixes.len() < 3 {
        return fixes;
    }
    let last = fixes.len() - 1;
    let mut kept: Vec<Fix> = Vec::new();
    for (i, fix) in fixes.iter().enumerate() {
        let due = kept.last().is_none_or(|k: &Fix| {
            (fix.time - k.time).num_milliseconds() as f64 >= every_s * 1000.0
        });
        if due || i == last {
            kept.push(*fix);
        }
    }
    kept
}

pub(super) fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use road_graph::LocalPlane;

    use super::*;

    /// Fixes a minute apart at these distances east of the origin, metres.
    fn fixes_at(east_m: &[f64]) -> Vec<Fix> {
        let plane = LocalPlane::new(road_graph::LatLon {
            lat: 51.6,
            lon: 10.4,
        });
        east_m
            .iter()
            .enumerate()
            .map(|(i, &x)| Fix {
                time: DateTime::from_timestamp(1_750_000_000 + 60 * i as i64, 0).expect("time"),
                pos: plane.to_latlon(x, 0.0),
                accuracy_m: None,
            })
            .collect()
    }

    #[test]
    fn a_truck_that_parks_at_its_end_arrived_when_it_parked_not_when_the_logger_last_wrote() {
        // Drives 3 km, parks within 50 m of its last point, which the logger
        // writes two fixes later.
        let fixes = fixes_at(&[0.0, 1000.0, 2000.0, 3000.0, 3020.0, 2990.0, 3005.0]);
        assert_eq!(Arrival::Stay.index(&fixes, 50.0), 3);
        assert_eq!(Arrival::End.index(&fixes, 50.0), 6);
    }

    #[test]
    fn a_round_trip_arrives_when_it_comes_back_not_when_it_starts() {
        let fixes = fixes_at(&[0.0, 10.0, 900.0, 2000.0, 900.0, 30.0, 0.0]);
        assert_eq!(Arrival::Stay.index(&fixes, 50.0), 5);
        // A trace that never leaves its last point arrives at once.
        assert_eq!(Arrival::Stay.index(&fixes_at(&[5.0, 0.0, 8.0]), 50.0), 0);
        assert_eq!(Arrival::Stay.index(&fixes_at(&[0.0]), 50.0), 0);
    }
}
