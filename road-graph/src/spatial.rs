//! The spatial index: which edges lie near a point. An R-tree (rstar) over short
//! chunks of edge geometry, so that a long motorway edge does not become one huge
//! box that matches every query around it.
//!
//! Queries return *directed* edges: a two-way road gives one candidate per
//! direction, each with its own offset from its own tail. Map matching needs both,
//! since a truck may be driving either way.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RStarInsertionStrategy, RTree, RTreeParams};

use crate::geo::{LatLon, LocalPlane, project_on_polyline_in};
use crate::graph::{EdgeId, GeomId, RoadGraph};

/// Points per indexed chunk of geometry (a chunk has one point fewer segments).
const CHUNK_POINTS: usize = 16;

/// Slack added to every box, degrees (~1 m), to cover `f32` rounding.
const BOX_SLACK_DEG: f32 = 1e-5;

type Entry = GeomWithData<Rectangle<[f32; 2]>, u32>;

/// Wider nodes than rstar's default (6): the tree is bulk-loaded once and never
/// changed, and every node costs a full enum slot, so fewer, fuller nodes save
/// about a sixth of the index memory for a negligible cost per query.
#[derive(Debug, Clone, Copy)]
struct StaticParams;

impl RTreeParams for StaticParams {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// An R-tree over geometry chunks; the data of an entry is its geometry id.
#[derive(Debug, Clone)]
pub(crate) struct SpatialIndex {
    tree: RTree<Entry, StaticParams>,
}

impl Default for SpatialIndex {
    fn default() -> SpatialIndex {
        SpatialIndex {
            tree: RTree::new_with_params(),
        }
    }
}

/// An edge near a query point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeCandidate {
    pub edge: EdgeId,
    /// The closest point of the edge to the query point.
    pub point: LatLon,
    /// Distance from the edge's tail to `point` along the edge, metres.
    pub offset_m: f64,
    /// Distance from the query point to `point`, metres.
    pub distance_m: f64,
}

impl SpatialIndex {
    pub(crate) fn build(graph: &RoadGraph) -> SpatialIndex {
        let mut entries =
            Vec::with_capacity(graph.n_geoms() + graph.geom_points.len() / CHUNK_POINTS);
        let mut points = Vec::new();
        for g in 0..graph.n_geoms() {
            points.clear();
            points.extend(graph.geom_points(GeomId(g as u32)));
            let mut start = 0;
            while start + 1 < points.len() {
                let end = (start + CHUNK_POINTS).min(points.len());
                let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
                for p in &points[start..end] {
                    let xy = [p.lon as f32, p.lat as f32];
                    for i in 0..2 {
                        lo[i] = lo[i].min(xy[i]);
                        hi[i] = hi[i].max(xy[i]);
                    }
                }
                let lo = [lo[0] - BOX_SLACK_DEG, lo[1] - BOX_SLACK_DEG];
                let hi = [hi[0] + BOX_SLACK_DEG, hi[1] + BOX_SLACK_DEG];
                entries.push(GeomWithData::new(Rectangle::from_corners(lo, hi), g as u32));
                start = end - 1;
            }
        }
        SpatialIndex {
            tree: RTree::bulk_load_with_params(entries),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tree.size()
    }

    /// Geometries whose boxes meet a box around `p` of `radius_m`.
    fn geoms_near(&self, p: LatLon, radius_m: f64, out: &mut Vec<u32>) {
        let dlat = radius_m / 111_195.0;
        let dlon = dlat / p.lat.to_radians().cos().max(0.01);
        let envelope = AABB::from_corners(
            [(p.lon - dlon) as f32, (p.lat - dlat) as f32],
            [(p.lon + dlon) as f32, (p.lat + dlat) as f32],
        );
        out.clear();
        // Internal iteration: the same entries as the iterator, without its
        // explicit stack (which spilled to the heap on most map-matching
        // queries); the order is settled by the sort.
        let _ = self
            .tree
            .locate_in_envelope_intersecting_int(&envelope, |entry| {
                out.push(entry.data);
                std::ops::ControlFlow::<()>::Continue(())
            });
        out.sort_unstable();
        out.dedup();
    }

    /// Geometries whose boxes meet a bounding box, each once.
    pub(crate) fn geoms_in_bbox(&self, min: LatLon, max: LatLon) -> Vec<GeomId> {
        let envelope = AABB::from_corners(
            [min.lon as f32, min.lat as f32],
            [max.lon as f32, max.lat as f32],
        );
        let mut out: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(&envelope)
            .map(|entry| entry.data)
            .collect();
        out.sort_unstable();
        out.dedup();
        out.into_iter().map(GeomId).collect()
    }
}

impl RoadGraph {
    /// Directed edges whose geometry passes within `radius_m` of `p`, nearest first,
    /// from at most `max_roads` road pieces (each piece gives one candidate per open
    /// direction).
    pub fn nearest_edges(&self, p: LatLon, radius_m: f64, max_roads: usize) -> Vec<EdgeCandidate> {
        let mut out = Vec::new();
        self.nearest_edges_into(p, radius_m, max_roads, &mut Vec::new(), &mut out);
        out
    }

    /// [`RoadGraph::nearest_edges`] into caller-owned buffers, so that a hot loop
    /// allocates nothing.
    pub fn nearest_edges_into(
        &self,
        p: LatLon,
        radius_m: f64,
        max_roads: usize,
        scratch: &mut Vec<u32>,
        out: &mut Vec<EdgeCandidate>,
    ) {
        out.clear();
        let radius_ok = radius_m.is_finite() && radius_m > 0.0;
        if !p.is_valid() || !radius_ok || max_roads == 0 {
            return;
        }
        self.index.geoms_near(p, radius_m, scratch);
        let mut found: Vec<(f64, u32, LatLon, f64)> = Vec::with_capacity(scratch.len());
        let plane = LocalPlane::new(p);
        for &g in scratch.iter() {
            let Some(proj) = project_on_polyline_in(&plane, self.geom_points(GeomId(g))) else {
                continue;
            };
            if proj.distance_m <= radius_m {
                found.push((proj.distance_m, g, proj.point, proj.offset_m));
            }
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        found.truncate(max_roads);
        for (distance_m, g, point, offset_m) in found {
            let length_m = self.geom_length_m(GeomId(g));
            let along_m = offset_m.min(length_m);
            let [forward, backward] = self.geom_edges(GeomId(g));
            if let Some(edge) = forward {
                out.push(EdgeCandidate {
                    edge,
                    point,
                    offset_m: along_m,
                    distance_m,
                });
            }
            if let Some(edge) = backward {
                out.push(EdgeCandidate {
                    edge,
                    point,
                    offset_m: length_m - along_m,
                    distance_m,
                });
            }
        }
    }

    /// Road pieces (geometries) that meet a bounding box: for drawing a basemap.
    pub fn geoms_in_bbox(&self, min: LatLon, max: LatLon) -> Vec<GeomId> {
        self.index.geoms_in_bbox(min, max)
    }

    /// Entries in the spatial index.
    pub fn index_len(&self) -> usize {
        self.index.len()
    }
}
