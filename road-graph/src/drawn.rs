//! Tiny maps drawn in ASCII, for scenario tests here and in the engine:
//!
//! ```text
//!   a---b---c
//!       |
//!       d
//! ```
//!
//! Every letter or digit is an OSM node on a grid of `grid_m` metres (one column
//! per character, one row per line, rows downwards = south); ways are given as node
//! strings (`"abc"`) with tags. The map runs through the same profile and topology
//! code as a PBF import.

use crate::build::{ImportReport, build_graph};
use crate::error::Result;
use crate::geo::LatLon;
use crate::graph::{NodeId, RestrictionKind, RoadGraph};
use crate::osm::{Member, MemberKind, OsmData};
use crate::profile::ProfileConfig;

/// Origin of drawn maps (somewhere in Porto, so tests read like real coordinates).
pub const DRAWN_ORIGIN: LatLon = LatLon::new(41.15, -8.61);

/// A drawn map under construction.
#[derive(Debug, Clone)]
pub struct DrawnMap {
    osm: OsmData,
    names: Vec<(char, i64)>,
    next_way_id: i64,
    grid_m: f64,
}

impl DrawnMap {
    /// Parses the drawing; `grid_m` is the distance between two characters.
    pub fn new(drawing: &str, grid_m: f64) -> DrawnMap {
        let mut osm = OsmData::default();
        let mut names = Vec::new();
        let dlat = grid_m / 111_195.0;
        let dlon = dlat / DRAWN_ORIGIN.lat.to_radians().cos();
        for (row, line) in drawing.lines().enumerate() {
            for (col, ch) in line.chars().enumerate() {
                if ch.is_ascii_alphanumeric() {
                    let id = names.len() as i64 + 1;
                    names.push((ch, id));
                    let pos = LatLon::new(
                        DRAWN_ORIGIN.lat - row as f64 * dlat,
                        DRAWN_ORIGIN.lon + col as f64 * dlon,
                    );
                    // Rounded as the graph stores it, so positions compare exactly.
                    osm.add_node(id, crate::geo::E7::from_latlon(pos).to_latlon());
                }
            }
        }
        DrawnMap {
            osm,
            names,
            next_way_id: 100,
            grid_m,
        }
    }

    /// The OSM id of a drawn node.
    ///
    /// # Panics
    /// When the drawing has no such character (a mistake in the test itself).
    pub fn osm_id(&self, name: char) -> i64 {
        self.names
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("node {name:?} is not in the drawing"))
    }

    /// The position of a drawn node.
    pub fn pos(&self, name: char) -> LatLon {
        self.osm.node(self.osm_id(name)).unwrap_or_default()
    }

    /// Spacing of the drawing grid, metres.
    pub fn grid_m(&self) -> f64 {
        self.grid_m
    }

    /// Adds a way through the named nodes with the given tags (`highway` defaults
    /// to `residential` when absent). Returns the way's OSM id.
    pub fn way(&mut self, nodes: &str, tags: &[(&str, &str)]) -> i64 {
        let id = self.next_way_id;
        self.next_way_id += 1;
        let mut tags = tags.to_vec();
        if !tags.iter().any(|(k, _)| *k == "highway") {
            tags.push(("highway", "residential"));
        }
        let refs = nodes.chars().map(|c| self.osm_id(c)).collect();
        self.osm.add_way(id, refs, &tags, &ProfileConfig::TRUCK);
        id
    }

    /// Adds a turn restriction (`restriction=no_left_turn` and the like) from one
    /// way to another through a drawn node.
    pub fn restriction(&mut self, from_way: i64, via: char, to_way: i64, value: &str) {
        let via = self.osm_id(via);
        let kind_tag = if value.starts_with("only_") || value.starts_with("no_") {
            value
        } else {
            panic!("restriction {value:?} must start with no_ or only_")
        };
        let members = [
            Member {
                kind: MemberKind::Way,
                id: from_way,
                role: "from",
            },
            Member {
                kind: MemberKind::Node,
                id: via,
                role: "via",
            },
            Member {
                kind: MemberKind::Way,
                id: to_way,
                role: "to",
            },
        ];
        let id = self.osm.restrictions.len() as i64 + 1;
        self.osm.add_restriction(
            id,
            &[("type", "restriction"), ("restriction", kind_tag)],
            &members,
        );
        debug_assert!(matches!(
            self.osm.restrictions.last().map(|r| r.kind),
            Some(RestrictionKind::No | RestrictionKind::Only)
        ));
    }

    /// The OSM data drawn so far.
    pub fn osm(&self) -> &OsmData {
        &self.osm
    }

    /// Builds the graph.
    pub fn build(&self) -> Result<(RoadGraph, ImportReport)> {
        build_graph(&self.osm)
    }
}

impl RoadGraph {
    /// The graph node at a position (exactly), for tests on drawn maps.
    pub fn node_at(&self, p: LatLon) -> Option<NodeId> {
        let target = crate::geo::E7::from_latlon(p);
        self.node_coord
            .iter()
            .position(|&c| c == target)
            .map(|i| NodeId(i as u32))
    }
}
