//! An optional external speed feed (a traffic data provider, a city's detectors):
//! speeds per OSM way, merged into the model as evidence worth a few fleet samples
//! while fresh. Ways are mapped to directed edges through an index built on first
//! use, so a map without a feed pays nothing.

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, GeomId, RoadGraph};
use serde::{Deserialize, Serialize};

/// One speed reading for an OSM way.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExternalSpeed {
    pub way_id: i64,
    pub speed_kph: f64,
    pub observed_at: DateTime<Utc>,
    /// `Some(true)`: only along the way's direction; `Some(false)`: only against
    /// it; `None`: both directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<bool>,
}

/// A feed value stored on one directed edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FeedValue {
    pub(crate) speed_kph: f32,
    pub(crate) at_s: i64,
}

/// OSM way id → the geometries it was split into, sorted by way id.
#[derive(Debug, Clone, Default)]
pub(crate) struct WayIndex {
    entries: Vec<(i64, u32)>,
}

impl WayIndex {
    pub(crate) fn build(graph: &RoadGraph) -> WayIndex {
        let mut entries: Vec<(i64, u32)> = (0..graph.n_geoms() as u32)
            .map(|g| (graph.geom_way_id(GeomId(g)), g))
            .collect();
        entries.sort_unstable();
        WayIndex { entries }
    }

    /// The directed edges a reading applies to.
    pub(crate) fn edges(&self, graph: &RoadGraph, reading: &ExternalSpeed) -> Vec<EdgeId> {
        let start = self.entries.partition_point(|(w, _)| *w < reading.way_id);
        let mut edges = Vec::new();
        for &(way, geom) in &self.entries[start..] {
            if way != reading.way_id {
                break;
            }
            let [forward, backward] = graph.geom_edges(GeomId(geom));
            if reading.forward != Some(false)
                && let Some(e) = forward
            {
                edges.push(e);
            }
            if reading.forward != Some(true)
                && let Some(e) = backward
            {
                edges.push(e);
            }
        }
        edges
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(i64, u32)>()
    }
}
