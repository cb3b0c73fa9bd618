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

use super::observation::SpeedObservation;
use crate::error::Result;
use crate::routing::{HourOfWeek, Metric, WeeklyProfile, travel_ms};

const HOURS: usize = HourOfWeek::HOURS;
const CLASSES: usize = RoadClass::ALL.len();

/// Per-edge factors closer to 1 than this are not stored.
const EDGE_FACTOR_EPSILON: f64 = 0.02;

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
        // Log of observed over free-flow speed, with its class and hour.
        let points: Vec<(u32, usize, usize, f64)> = observations
            .iter()
            .filter(|o| o.edge.idx() < graph.n_edges())
            .filter_map(|o| {
                let ratio = o.speed_kph() / graph.edge_speed_kph(o.edge);
                (ratio.is_finite() && ratio > 0.0).then(|| {
                    let class = graph.edge_class(o.edge) as usize;
                    let hour = hour_of_week(o.entered_at, time_zone).idx();
                    (o.edge.0, class, hour, ratio.ln())
                })
            })
            .collect();

        // Classes over the whole week, then each hour shrunk towards its class.
        let mut class_sum = [(0.0f64, 0.0f64); CLASSES];
        let mut cell_sum = vec![[(0.0f64, 0.0f64); HOURS]; CLASSES];
        for &(_, class, hour, log_ratio) in &points {
            class_sum[class].0 += log_ratio;
            class_sum[class].1 += 1.0;
            cell_sum[class][hour].0 += log_ratio;
            cell_sum[class][hour].1 += 1.0;
        }
        let mut class_log = [[0.0f64; HOURS]; CLASSES];
        for class in 0..CLASSES {
            let (sum, n) = class_sum[class];
            let week = sum / (n + prior_samples);
            for hour in 0..HOURS {
                let (sum, n) = cell_sum[class][hour];
                class_log[class][hour] = (sum + prior_samples * week) / (n + prior_samples);
            }
        }

        // What is left per edge once its class and hour are explained.
        let mut residual: HashMap<u32, (f64, f64)> = HashMap::new();
        for &(edge, class, hour, log_ratio) in &points {
            let slot = residual.entry(edge).or_default();
            slot.0 += log_ratio - class_log[class][hour];
            slot.1 += 1.0;
        }
        let edge_factor = residual
            .into_iter()
            .filter_map(|(edge, (sum, n))| {
                let factor = (sum / (n + prior_samples)).exp();
                ((factor - 1.0).abs() > EDGE_FACTOR_EPSILON).then_some((edge, factor as f32))
            })
            .collect();
        SpeedProfile {
            class_hour: class_log
                .iter()
                .map(|hours| hours.map(|l| l.exp() as f32))
                .collect(),
            edge_factor,
            time_zone,
            samples: points.len() as u64,
        }
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
