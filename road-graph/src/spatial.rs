//! The spatial index: which edges lie near a point. A packed R-tree over short
//! chunks of edge geometry, so that a long motorway edge does not become one huge
//! box that matches every query around it.
//!
//! Queries return *directed* edges: a two-way road gives one candidate per
//! direction, each with its own offset from its own tail. Map matching needs both,
//! since a truck may be driving either way.
//!
//! The tree is static, so it is packed the way flatbush packs one: the chunks'
//! boxes sorted along a Hilbert curve, then grouped [`NODE_SIZE`] at a time into
//! the boxes of the level above, up to one root; every level is a flat array and a
//! node's children are found by arithmetic. Building it is one sort and one pass
//! per level (every process that loads a map builds it; rstar's bulk load took
//! ~26 ms of a ~220 ms `route` on porto), and it holds 20 bytes per chunk plus a
//! fifteenth of that for the levels above. What a query finds does not depend on
//! how the boxes are grouped: it is every chunk whose box meets the query's, the
//! same set the rstar tree gave (a test checks that).

use crate::geo::{LatLon, LocalPlane, project_on_polyline_in};
use crate::graph::{EdgeId, GeomId, RoadGraph};

/// Points per indexed chunk of geometry (a chunk has one point fewer segments).
const CHUNK_POINTS: usize = 16;

/// Slack added to every box, degrees (~1 m), to cover `f32` rounding.
const BOX_SLACK_DEG: f32 = 1e-5;

/// Children per node of the tree.
const NODE_SIZE: usize = 16;

/// A box as `[min_lon, min_lat, max_lon, max_lat]`, degrees.
type Bounds = [f32; 4];

/// A packed R-tree over geometry chunks.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpatialIndex {
    /// Every node's box, level by level from the leaves (one per chunk, in
    /// Hilbert order) up to the root.
    boxes: Vec<Bounds>,
    /// The geometry of every leaf.
    geom: Vec<u32>,
    /// Where each level starts in `boxes`, and after the last where it ends.
    level_start: Vec<u32>,
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

/// The box that contains nothing: [`union`] with it gives the other box.
const EMPTY: Bounds = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];

/// The smallest box holding `a` and `b`.
fn union(a: Bounds, b: &Bounds) -> Bounds {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// Whether two boxes meet (touching counts), as rstar's `AABB::intersects`.
fn meets(a: &Bounds, b: &Bounds) -> bool {
    a[0] <= b[2] && a[1] <= b[3] && a[2] >= b[0] && a[3] >= b[1]
}

/// The chunks of every geometry: each chunk's box and its geometry.
pub(crate) fn chunk_boxes(graph: &RoadGraph) -> (Vec<Bounds>, Vec<u32>) {
    let capacity = graph.n_geoms() + graph.geom_points.len() / CHUNK_POINTS;
    let mut boxes = Vec::with_capacity(capacity);
    let mut geom = Vec::with_capacity(capacity);
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
            boxes.push([
                lo[0] - BOX_SLACK_DEG,
                lo[1] - BOX_SLACK_DEG,
                hi[0] + BOX_SLACK_DEG,
                hi[1] + BOX_SLACK_DEG,
            ]);
            geom.push(g as u32);
            start = end - 1;
        }
    }
    (boxes, geom)
}

/// The distance of `(x, y)` (each below 2^16) along a Hilbert curve filling
/// the 2^16 × 2^16 grid. From the coarsest level down, the quadrant the point
/// is in adds the cells of the quadrants the curve visits before it, and the
/// point is turned into the frame of the curve's piece in that quadrant. The
/// packing only needs neighbours on the grid to be near on the curve; what a
/// query finds does not depend on it.
fn hilbert(x: u32, y: u32) -> u32 {
    const SIDE: u32 = 1 << 16;
    let (mut x, mut y) = (x & (SIDE - 1), y & (SIDE - 1));
    let mut d = 0u32;
    let mut half = SIDE / 2;
    while half > 0 {
        let right = u32::from(x & half != 0);
        let up = u32::from(y & half != 0);
        // Quadrants in curve order: lower left, upper left, upper right,
        // lower right; at most 3 × 2^30, within a u32.
        d += half * half * ((3 * right) ^ up);
        if up == 0 {
            if right == 1 {
                x = SIDE - 1 - x;
                y = SIDE - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        half /= 2;
    }
    d
}

impl SpatialIndex {
    pub(crate) fn build(graph: &RoadGraph) -> SpatialIndex {
        let (boxes, geom) = chunk_boxes(graph);
        SpatialIndex::pack(boxes, geom)
    }

    /// The tree over `boxes`, the `i`th holding a chunk of geometry `geom[i]`.
    fn pack(boxes: Vec<Bounds>, geom: Vec<u32>) -> SpatialIndex {
        if boxes.is_empty() {
            return SpatialIndex::default();
        }
        let extent = boxes.iter().fold(EMPTY, union);
        // Box centres on the curve's grid; the chunk's position breaks ties, so
        // the tree is the same on every run.
        let cell = |v: f32, lo: f32, hi: f32| {
            let span = f64::from(hi) - f64::from(lo);
            let t = if span > 0.0 {
                (f64::from(v) - f64::from(lo)) / span
            } else {
                0.0
            };
            (t * f64::from(u16::MAX)).clamp(0.0, f64::from(u16::MAX)) as u32
        };
        let mut order: Vec<u64> = boxes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let x = cell((b[0] + b[2]) / 2.0, extent[0], extent[2]);
                let y = cell((b[1] + b[3]) / 2.0, extent[1], extent[3]);
                u64::from(hilbert(x, y)) << 32 | i as u64
            })
            .collect();
        order.sort_unstable();
        let n = boxes.len();
        let mut all = Vec::with_capacity(n + n / (NODE_SIZE - 1) + 2);
        let mut leaf_geom = Vec::with_capacity(n);
        for &key in &order {
            let i = (key & u64::from(u32::MAX)) as usize;
            all.push(boxes[i]);
            leaf_geom.push(geom[i]);
        }
        let mut level_start = vec![0u32, n as u32];
        let mut level = 0..n;
        while level.len() > 1 {
            let above = all.len();
            for first in level.clone().step_by(NODE_SIZE) {
                let last = (first + NODE_SIZE).min(level.end);
                let b = all[first..last].iter().fold(EMPTY, union);
                all.push(b);
            }
            level = above..all.len();
            level_start.push(all.len() as u32);
        }
        SpatialIndex {
            boxes: all,
            geom: leaf_geom,
            level_start,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.geom.len()
    }

    /// Calls `found` with the geometry of every chunk whose box meets `query`
    /// (in no particular order; a geometry once per such chunk).
    fn each_meeting(&self, query: &Bounds, found: &mut impl FnMut(u32)) {
        if self.geom.is_empty() {
            return;
        }
        let top = self.level_start.len() - 2;
        self.visit(top, 0, query, found);
    }

    /// The node `i` of `level` (0: the leaves), and below it.
    fn visit(&self, level: usize, i: usize, query: &Bounds, found: &mut impl FnMut(u32)) {
        let start = self.level_start[level] as usize;
        if !meets(&self.boxes[start + i], query) {
            return;
        }
        if level == 0 {
            found(self.geom[i]);
            return;
        }
        let below = self.level_start[level] - self.level_start[level - 1];
        let first = i * NODE_SIZE;
        let last = (first + NODE_SIZE).min(below as usize);
        for child in first..last {
            self.visit(level - 1, child, query, found);
        }
    }

    /// Geometries whose boxes meet a box around `p` of `radius_m`.
    fn geoms_near(&self, p: LatLon, radius_m: f64, out: &mut Vec<u32>) {
        let dlat = radius_m / 111_195.0;
        let dlon = dlat / p.lat.to_radians().cos().max(0.01);
        let query = bounds(
            [(p.lon - dlon) as f32, (p.lat - dlat) as f32],
            [(p.lon + dlon) as f32, (p.lat + dlat) as f32],
        );
        out.clear();
        self.each_meeting(&query, &mut |g| out.push(g));
        out.sort_unstable();
        out.dedup();
    }

    /// Geometries whose boxes meet a bounding box, each once.
    pub(crate) fn geoms_in_bbox(&self, min: LatLon, max: LatLon) -> Vec<GeomId> {
        let query = bounds(
            [min.lon as f32, min.lat as f32],
            [max.lon as f32, max.lat as f32],
        );
        let mut out = Vec::new();
        self.each_meeting(&query, &mut |g| out.push(g));
        out.sort_unstable();
        out.dedup();
        out.into_iter().map(GeomId).collect()
    }
}

/// The box with corners `a` and `b` (in any order), as rstar's
/// `AABB::from_corners`.
fn bounds(a: [f32; 2], b: [f32; 2]) -> Bounds {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[0].max(b[0]),
        a[1].max(b[1]),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstar::primitives::{GeomWithData, Rectangle};
    use rstar::{AABB, RTree};

    /// The curve visits the grid's lower-left 256 × 256 block first, each
    /// cell once, every step to a neighbouring cell.
    #[test]
    fn the_hilbert_curve_steps_from_cell_to_neighbouring_cell() {
        let mut at = vec![None; 1 << 16];
        for x in 0..256u32 {
            for y in 0..256u32 {
                let d = hilbert(x, y) as usize;
                assert!(d < 1 << 16, "({x}, {y}) -> {d}");
                assert!(at[d].is_none(), "({x}, {y}) and {:?} -> {d}", at[d]);
                at[d] = Some((x, y));
            }
        }
        for pair in at.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0].expect("all"), pair[1].expect("all"));
            assert_eq!(x0.abs_diff(x1) + y0.abs_diff(y1), 1, "{pair:?}");
        }
    }

    /// The packed tree finds exactly the chunks an rstar tree over the same
    /// boxes finds (what the index was before), on a real extract, for queries
    /// of every size from a few metres to the whole map, and for boxes given
    /// corner first or corner last.
    #[test]
    fn finds_what_an_rstar_tree_finds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/osm/monaco.osm.pbf");
        let (graph, _) =
            crate::import_pbf(&path, &crate::ProfileConfig::TRUCK, &mut |_| {}).expect("monaco");
        let (boxes, geom) = chunk_boxes(&graph);
        let rtree: RTree<GeomWithData<Rectangle<[f32; 2]>, u32>> = RTree::bulk_load(
            boxes
                .iter()
                .zip(&geom)
                .map(|(b, &g)| {
                    GeomWithData::new(Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]), g)
                })
                .collect(),
        );
        let packed = SpatialIndex::pack(boxes, geom);
        assert_eq!(packed.len(), rtree.size());
        let bbox = graph.bbox();
        let mut state = 7u64;
        let mut unit = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut found_some = 0;
        for k in 0..2_000 {
            let lat = bbox.min_lat + (bbox.max_lat - bbox.min_lat) * (1.2 * unit() - 0.1);
            let lon = bbox.min_lon + (bbox.max_lon - bbox.min_lon) * (1.2 * unit() - 0.1);
            let half = [1e-5, 1e-4, 1e-3, 1e-2, 1.0][k % 5] * unit();
            let (a, b) = if k % 2 == 0 {
                (
                    [(lon - half) as f32, (lat - half) as f32],
                    [(lon + half) as f32, (lat + half) as f32],
                )
            } else {
                (
                    [(lon + half) as f32, (lat + half) as f32],
                    [(lon - half) as f32, (lat - half) as f32],
                )
            };
            let mut expected: Vec<u32> = rtree
                .locate_in_envelope_intersecting(&AABB::from_corners(a, b))
                .map(|e| e.data)
                .collect();
            expected.sort_unstable();
            let mut got = Vec::new();
            packed.each_meeting(&bounds(a, b), &mut |g| got.push(g));
            got.sort_unstable();
            assert_eq!(got, expected, "query {k}: {a:?} {b:?}");
            found_some += usize::from(!got.is_empty());
        }
        assert!(found_some > 500, "only {found_some} queries met a road");
        let empty = SpatialIndex::pack(Vec::new(), Vec::new());
        let mut none = Vec::new();
        empty.each_meeting(&[-180.0, -90.0, 180.0, 90.0], &mut |g| none.push(g));
        assert!(none.is_empty());
    }
}
