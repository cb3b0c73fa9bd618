//! The hour-of-week speed profile learned from history: what speed to expect on an
//! edge at a given hour when the fleet has no live evidence.
//!
//! Model: `speed(edge, hour) = free_flow(edge) × class_factor(class, hour) ×
//! edge_factor(edge)`, fitted in log space with shrinkage. A road class at an hour
//! with little history leans on the class's average over the week; an edge with
//! little history has no factor of its own. This needs 14 × 168 cells for the
//! classes plus one number for each edge with enough history, instead of 168 per
//! edge (22 million cells on porto), and an edge seen a few times still gets the
//! rush-hour shape of its class.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use road_graph::{EdgeId, RoadClass, RoadGraph};

use super::history::ProfileHistory;
use super::observation::SpeedObservation;
use crate::error::Result;
use crate::routing::{HourOfWeek, Metric, WeeklyProfile, travel_ms};

const HOURS: usize = HourOfWeek::HOURS;
const CLASSES: usize = RoadClass::ALL.len();

/// Per-edge factors closer to 1 than this are not stored.
pub(super) const EDGE_FACTOR_EPSILON: f64 = 0.02;

/// Learned expected speeds by hour of week.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedProfile {
    /// Speed as a factor of free flow, per road class and hour of week.
    class_hour: Vec<[f32; HOURS]>,
    /// Factors of edges whose history departs from their class.
    edge_factor: HashMap<u32, f32>,
    time_zone: Tz,
    /// Observations the profile was learned from.
    samples: u64,
}

impl SpeedProfile {
    /// No history: every edge at its free-flow (road-class or posted) speed.
    pub fn free_flow(time_zone: Tz) -> SpeedProfile {
        SpeedProfile {
            class_hour: vec![[1.0; HOURS]; CLASSES],
            edge_factor: HashMap::new(),
            time_zone,
            samples: 0,
        }
    }

    /// Learns from historical passages (in any order). `prior_samples` is the
    /// shrinkage: a cell with that many samples moves half way from its default.
    /// Observations that are not plausible driving (see [`super::TrafficConfig`])
    /// should be filtered by the caller; this only skips unknown edges and
    /// non-finite speeds.
    pub fn learn(
        graph: &RoadGraph,
        observations: &[SpeedObservation],
        prior_samples: f64,
        time_zone: Tz,
    ) -> SpeedProfile {
        // Two passes: the class cells first, then what they leave to each edge.
        let mut history = ProfileHistory::new(graph, time_zone);
        let points: Vec<_> = observations
            .iter()
            .filter_map(|o| ProfileHistory::point(graph, o, time_zone))
            .collect();
        for point in &points {
            history.add_to_cell(point);
        }
        let class_log = history.class_log(prior_samples);
        for point in &points {
            history.add_to_edge(point, class_log[ProfileHistory::cell_of(point)]);
        }
        history.count(points.len() as u64);
        history.profile(prior_samples)
    }

    /// A profile from its parts (see [`ProfileHistory::profile`]).
    pub(super) fn from_parts(
        class_hour: Vec<[f32; HOURS]>,
        edge_factor: HashMap<u32, f32>,
        time_zone: Tz,
        samples: u64,
    ) -> SpeedProfile {
        SpeedProfile {
            class_hour,
            edge_factor,
            time_zone,
            samples,
        }
    }

    /// The factor of free flow of a road class (by index) at an hour of week
    /// (by index); 1 for indices out of range.
    pub(super) fn class_factor(&self, class: usize, hour: usize) -> f64 {
        self.class_hour
            .get(class)
            .and_then(|hours| hours.get(hour))
            .map_or(1.0, |&f| f64::from(f))
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// How many observations it was learned from.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The hour of week of a time, on the profile's clock.
    pub fn hour_at(&self, at: DateTime<Utc>) -> HourOfWeek {
        hour_of_week(at, self.time_zone)
    }

    /// Expected speed as a factor of free flow.
    pub fn factor(&self, graph: &RoadGraph, edge: EdgeId, hour: HourOfWeek) -> f64 {
        let class = graph.edge_class(edge) as usize;
        let edge_factor = self.edge_factor.get(&edge.0).copied().unwrap_or(1.0);
        f64::from(self.class_hour[class][hour.idx()]) * f64::from(edge_factor)
    }

    /// Expected speed of an edge at a time, km/h.
    pub fn speed_kph(&self, graph: &RoadGraph, edge: EdgeId, at: DateTime<Utc>) -> f64 {
        graph.edge_speed_kph(edge) * self.factor(graph, edge, self.hour_at(at))
    }

    /// Expected speeds of every edge at one hour, km/h, by edge index.
    pub(crate) fn speeds_at(&self, graph: &RoadGraph, hour: HourOfWeek) -> Vec<f64> {
        let class_of_hour: Vec<f64> = self
            .class_hour
            .iter()
            .map(|h| f64::from(h[hour.idx()]))
            .collect();
        let mut speeds: Vec<f64> = (0..graph.n_edges() as u32)
            .map(|e| {
                let edge = EdgeId(e);
                graph.edge_speed_kph(edge) * class_of_hour[graph.edge_class(edge) as usize]
            })
            .collect();
        for (&edge, &factor) in &self.edge_factor {
            if let Some(speed) = speeds.get_mut(edge as usize) {
                *speed *= f64::from(factor);
            }
        }
        speeds
    }

    /// The profile in the routing core's form: a base metric (free flow with each
    /// edge's own factor) and one hour-of-week shape per road class, so the router
    /// can re-time a path with the speed of the hour each edge is reached in
    /// ([`WeeklyProfile::path_duration_ms`]).
    pub fn weekly_profile(&self, graph: &RoadGraph) -> Result<(Metric, WeeklyProfile)> {
        let edge_ms: Vec<u32> = (0..graph.n_edges() as u32)
            .map(|e| {
                let edge = EdgeId(e);
                let factor = self.edge_factor.get(&e).copied().map_or(1.0, f64::from);
                travel_ms(
                    graph.edge_length_m(edge),
                    graph.edge_speed_kph(edge) * factor,
                )
            })
            .collect();
        let base = Metric::from_edge_ms(graph, edge_ms)?;
        let mut weekly = WeeklyProfile::flat(graph);
        let mut shapes = Vec::with_capacity(CLASSES);
        for hours in &self.class_hour {
            let percent = hours.map(|f| (f64::from(f) * 100.0).round().clamp(1.0, 250.0) as u8);
            shapes.push(weekly.add_shape(percent)?);
        }
        for e in 0..graph.n_edges() as u32 {
            let edge = EdgeId(e);
            weekly.set_edge_shape(edge, shapes[graph.edge_class(edge) as usize])?;
        }
        Ok((base, weekly))
    }

    /// Heap memory, bytes (for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        self.class_hour.capacity() * std::mem::size_of::<[f32; HOURS]>()
            + self.edge_factor.capacity() * (std::mem::size_of::<(u32, f32)>() + 1)
    }
}

/// The hour of week of a UTC time on a time zone's clock.
pub(crate) fn hour_of_week(at: DateTime<Utc>, time_zone: Tz) -> HourOfWeek {
    HourOfWeek::from_local(at.with_timezone(&time_zone).naive_local())
}
