//! What the hour-of-week profile is learned from, kept as running sums so that
//! the live engine learns its profile as the fleet drives, instead of from a
//! batch of history it would have to keep: per road class and hour of week, the
//! sum and count of log(observed / free-flow speed); per edge, the sum and count
//! of what its class and hour leave unexplained. [`ProfileHistory::profile`]
//! turns the sums into a [`SpeedProfile`] with the same shrinkage as
//! [`SpeedProfile::learn`] (which is built on it).
//!
//! The sums index edges of one map: a history carries a digest of its map and
//! its time zone, and [`ProfileHistory::fits`] says whether a saved one can be
//! taken up by an engine on another (rebuilt) map or clock.

use std::collections::HashMap;

use chrono_tz::Tz;
use road_graph::{EdgeId, RoadClass, RoadGraph};
use serde::{Deserialize, Serialize};

use super::observation::SpeedObservation;
use super::profile::{EDGE_FACTOR_EPSILON, SpeedProfile, hour_of_week};
use crate::routing::HourOfWeek;

const HOURS: usize = HourOfWeek::HOURS;
const CLASSES: usize = RoadClass::ALL.len();

/// One observation as the profile sees it: the edge, its class, the hour of
/// week it was entered, and log(observed / free-flow speed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ProfilePoint {
    edge: u32,
    cell: usize,
    log_ratio: f64,
}

/// Running sums of the profile's evidence (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileHistory {
    /// [`graph_digest`] of the map the edges index.
    graph_digest: u64,
    /// IANA name of the clock the hours are read on.
    time_zone: String,
    /// Per class × hour of week (`class * HOURS + hour`): sum of log ratios,
    /// count.
    cells: Vec<(f64, f64)>,
    /// Per edge: sum of residual log ratios (after class and hour), count.
    edges: HashMap<u32, (f64, f64)>,
    /// Observations recorded.
    samples: u64,
}

impl ProfileHistory {
    /// An empty history of a map, with hours on `time_zone`'s clock.
    pub fn new(graph: &RoadGraph, time_zone: Tz) -> ProfileHistory {
        ProfileHistory {
            graph_digest: graph_digest(graph),
            time_zone: time_zone.name().to_string(),
            cells: vec![(0.0, 0.0); CLASSES * HOURS],
            edges: HashMap::new(),
            samples: 0,
        }
    }

    /// Whether this history was learned on this map and clock, and is whole
    /// (a save read back from elsewhere may be neither).
    pub fn fits(&self, graph: &RoadGraph, time_zone: Tz) -> bool {
        self.cells.len() == CLASSES * HOURS
            && self.time_zone == time_zone.name()
            && self.graph_digest == graph_digest(graph)
            && self.edges.keys().all(|&e| (e as usize) < graph.n_edges())
    }

    /// Observations recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Heap memory, bytes.
    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<(f64, f64)>()
            + self.edges.capacity() * (std::mem::size_of::<(u32, (f64, f64))>() + 1)
    }

    /// Edges with a residual of their own.
    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    /// The observation as the profile sees it; `None` for an unknown edge or a
    /// speed that is not a positive number.
    pub(super) fn point(
        graph: &RoadGraph,
        obs: &SpeedObservation,
        time_zone: Tz,
    ) -> Option<ProfilePoint> {
        if obs.edge.idx() >= graph.n_edges() {
            return None;
        }
        let ratio = obs.speed_kph() / graph.edge_speed_kph(obs.edge);
        (ratio.is_finite() && ratio > 0.0).then(|| ProfilePoint {
            edge: obs.edge.0,
            cell: graph.edge_class(obs.edge) as usize * HOURS
                + hour_of_week(obs.entered_at, time_zone).idx(),
            log_ratio: ratio.ln(),
        })
    }

    /// Adds a point to its class and hour.
    pub(super) fn add_to_cell(&mut self, point: &ProfilePoint) {
        if let Some(cell) = self.cells.get_mut(point.cell) {
            cell.0 += point.log_ratio;
            cell.1 += 1.0;
        }
    }

    /// Adds what its class and hour leave unexplained of a point (`explained`,
    /// their log factor) to its edge.
    pub(super) fn add_to_edge(&mut self, point: &ProfilePoint, explained: f64) {
        let slot = self.edges.entry(point.edge).or_default();
        slot.0 += point.log_ratio - explained;
        slot.1 += 1.0;
    }

    /// Records one accepted passage: to its cell (its hour read on
    /// `time_zone`, the clock the history was made for), and to its edge
    /// against what `current` (the profile in use) expects at its class and
    /// hour. Online, the residual is taken against the profile of the moment
    /// rather than the final one; the difference fades as the class cells
    /// settle.
    pub fn record(
        &mut self,
        graph: &RoadGraph,
        obs: &SpeedObservation,
        time_zone: Tz,
        current: &SpeedProfile,
    ) {
        let Some(point) = Self::point(graph, obs, time_zone) else {
            return;
        };
        self.add_to_cell(&point);
        let class_factor = current.class_factor(point.cell / HOURS, point.cell % HOURS);
        let explained = if class_factor > 0.0 {
            class_factor.ln()
        } else {
            0.0
        };
        self.add_to_edge(&point, explained);
        self.samples += 1;
    }

    /// Counts a point that went in through the two `add_to_*` steps.
    pub(super) fn count(&mut self, n: u64) {
        self.samples += n;
    }

    /// The cell of a point (`class * HOURS + hour`).
    pub(super) fn cell_of(point: &ProfilePoint) -> usize {
        point.cell
    }

    /// Per cell, the class's log factor at that hour: the cell's mean shrunk
    /// towards the class's mean over the week, which is shrunk towards 0 (free
    /// flow), each by `prior_samples`.
    pub(super) fn class_log(&self, prior_samples: f64) -> Vec<f64> {
        let mut out = vec![0.0; CLASSES * HOURS];
        for class in 0..CLASSES {
            let cells = &self.cells[class * HOURS..(class + 1) * HOURS];
            let (sum, n) = cells
                .iter()
                .fold((0.0, 0.0), |(s, n), c| (s + c.0, n + c.1));
            let week = sum / (n + prior_samples);
            for (hour, &(sum, n)) in cells.iter().enumerate() {
                let log = (sum + prior_samples * week) / (n + prior_samples);
                out[class * HOURS + hour] = if log.is_finite() { log } else { 0.0 };
            }
        }
        out
    }

    /// The profile these sums give, with `prior_samples` of shrinkage per cell
    /// and per edge. Empty: free flow.
    pub fn profile(&self, prior_samples: f64) -> SpeedProfile {
        let time_zone = self.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
        if self.cells.len() != CLASSES * HOURS {
            return SpeedProfile::free_flow(time_zone);
        }
        let class_log = self.class_log(prior_samples);
        let class_hour = (0..CLASSES)
            .map(|class| std::array::from_fn(|hour| class_log[class * HOURS + hour].exp() as f32))
            .collect();
        let edge_factor = self
            .edges
            .iter()
            .filter_map(|(&edge, &(sum, n))| {
                let factor = (sum / (n + prior_samples)).exp();
                (factor.is_finite() && (factor - 1.0).abs() > EDGE_FACTOR_EPSILON)
                    .then_some((edge, factor as f32))
            })
            .collect();
        SpeedProfile::from_parts(class_hour, edge_factor, time_zone, self.samples)
    }
}

/// A fingerprint of a map's edges (count, OSM way, class, length to the
/// decimetre), FNV-1a: stable across runs and builds, so a saved history is
/// recognised by the map it was learned on.
pub(crate) fn graph_digest(graph: &RoadGraph) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |value: u64| {
        for byte in value.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    mix(graph.n_nodes() as u64);
    mix(graph.n_edges() as u64);
    for e in 0..graph.n_edges() as u32 {
        let edge = EdgeId(e);
        mix(graph.edge_way_id(edge) as u64);
        mix(graph.edge_class(edge) as u64);
        mix((graph.edge_length_m(edge) * 10.0).round() as u64);
    }
    hash
}
