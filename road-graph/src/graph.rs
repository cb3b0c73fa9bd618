//! The road graph: intersections (nodes) and directed edges between them, in
//! compressed sparse row form, with the geometry each edge runs along.
//!
//! Topology is immutable once built. Everything a routing metric needs per edge
//! (length, free-flow speed, class) is here; the metric itself (travel times under
//! traffic) lives in the engine, so a traffic update never touches this structure.
//!
//! Layout: an undirected *geometry* (one piece of one OSM way between two
//! intersections) is stored once and shared by its forward and backward edges; a
//! directed edge refers to it with a direction bit. This halves geometry memory on
//! two-way roads, which are most roads.

use crate::geo::{BBox, E7, LatLon};
use crate::profile::{EdgeFlags, RoadClass, TruckLimits};
use crate::spatial::SpatialIndex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Index of an intersection (or dead end) in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// Index of a directed edge. Edges are sorted by tail node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeId(pub u32);

/// Index of an undirected geometry (a piece of one OSM way between intersections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GeomId(pub u32);

impl NodeId {
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}
impl EdgeId {
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}
impl GeomId {
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Marks "no edge" in [`RoadGraph::geom_edges`] slots.
pub(crate) const NO_EDGE: u32 = u32::MAX;

/// A turn restriction from one edge to another through a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TurnRestriction {
    pub from: EdgeId,
    pub via: NodeId,
    pub to: EdgeId,
    pub kind: RestrictionKind,
}

/// `no_*` forbids the one turn; `only_*` forbids every other turn from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestrictionKind {
    No,
    Only,
}

/// The road graph. Build it with [`crate::import_pbf`], [`crate::build_graph`] or
/// [`crate::load_snapshot`].
#[derive(Debug, Clone)]
pub struct RoadGraph {
    pub(crate) node_coord: Vec<E7>,
    /// CSR: the out-edges of node `n` are `first_out[n]..first_out[n + 1]`.
    pub(crate) first_out: Vec<u32>,
    pub(crate) edge_head: Vec<u32>,
    pub(crate) edge_tail: Vec<u32>,
    /// `geom << 1 | reversed`.
    pub(crate) edge_geom: Vec<u32>,
    pub(crate) edge_speed_kph: Vec<u8>,
    pub(crate) edge_class: Vec<u8>,
    pub(crate) edge_flags: Vec<u8>,
    /// The interior points of geometry `g` (between its two end nodes, in the way's
    /// direction) are `geom_points[geom_first[g]..geom_first[g + 1]]`. The end
    /// points are the end nodes' coordinates and are not stored twice.
    pub(crate) geom_first: Vec<u32>,
    pub(crate) geom_points: Vec<E7>,
    pub(crate) geom_length_m: Vec<f32>,
    /// Index into `way_ids`: most ways are split into several geometries.
    pub(crate) geom_way: Vec<u32>,
    pub(crate) way_ids: Vec<i64>,
    /// `[forward edge, backward edge]`, [`NO_EDGE`] where that direction is closed.
    pub(crate) geom_edges: Vec<[u32; 2]>,
    /// Sparse posted limits, sorted by geometry.
    pub(crate) geom_limits: Vec<(u32, TruckLimits)>,
    /// Sorted by `(from, via, to)`.
    pub(crate) restrictions: Vec<TurnRestriction>,
    /// Derived from the geometry; rebuilt on load, never stored.
    pub(crate) index: SpatialIndex,
    /// Per node: whether it is in the largest strongly connected component.
    /// Derived from the topology on first use (see
    /// [`RoadGraph::in_main_component`]), never stored.
    pub(crate) main_nodes: OnceLock<Vec<bool>>,
}

impl PartialEq for RoadGraph {
    /// Two graphs are equal when their stored data is; the index follows from it.
    fn eq(&self, other: &RoadGraph) -> bool {
        self.node_coord == other.node_coord
            && self.first_out == other.first_out
            && self.edge_head == other.edge_head
            && self.edge_tail == other.edge_tail
            && self.edge_geom == other.edge_geom
            && self.edge_speed_kph == other.edge_speed_kph
            && self.edge_class == other.edge_class
            && self.edge_flags == other.edge_flags
            && self.geom_first == other.geom_first
            && self.geom_points == other.geom_points
            && self.geom_length_m == other.geom_length_m
            && self.geom_way == other.geom_way
            && self.way_ids == other.way_ids
            && self.geom_edges == other.geom_edges
            && self.geom_limits == other.geom_limits
            && self.restrictions == other.restrictions
    }
}

impl RoadGraph {
    pub fn n_nodes(&self) -> usize {
        self.node_coord.len()
    }

    /// Number of directed edges.
    pub fn n_edges(&self) -> usize {
        self.edge_head.len()
    }

    /// Whether the edge lies in the largest strongly connected component, where
    /// every edge reaches every other. The graph keeps every component, because a
    /// vehicle may drive a road that is cut off within the extract (a one-way
    /// carriageway leaving a clipped map) and map matching must see it; routing
    /// snaps its query points to this component so that no route starts or ends
    /// in such a trap. Computed once, on first use (linear in the graph).
    pub fn in_main_component(&self, edge: EdgeId) -> bool {
        let main = self.main_nodes.get_or_init(|| {
            crate::scc::unique_largest_component(&self.first_out, &self.edge_head).unwrap_or_else(
                || {
                    // Components of equal size: the import's choice among them.
                    let arcs = self
                        .edge_tail
                        .iter()
                        .zip(&self.edge_head)
                        .map(|(&a, &b)| (a, b));
                    crate::build::largest_scc(self.n_nodes(), arcs)
                        .map(|(main, _)| main)
                        .unwrap_or_default()
                },
            )
        });
        let tail = self.edge_tail.get(edge.idx()).copied();
        let head = self.edge_head.get(edge.idx()).copied();
        let in_main = |n: Option<u32>| n.is_some_and(|n| main.get(n as usize) == Some(&true));
        in_main(tail) && in_main(head)
    }

    pub fn n_geoms(&self) -> usize {
        self.geom_length_m.len()
    }

    pub fn node_pos(&self, node: NodeId) -> LatLon {
        self.node_coord[node.idx()].to_latlon()
    }

    /// The out-edges of a node, as a range of edge indices.
    pub fn out_edges(&self, node: NodeId) -> impl ExactSizeIterator<Item = EdgeId> + use<> {
        let n = node.idx();
        (self.first_out[n]..self.first_out[n + 1]).map(EdgeId)
    }

    /// The CSR offsets (`n_nodes + 1` entries), for algorithms that walk the arrays.
    pub fn first_out(&self) -> &[u32] {
        &self.first_out
    }

    /// Head node of every edge, by edge index.
    pub fn heads(&self) -> &[u32] {
        &self.edge_head
    }

    /// Tail node of every edge, by edge index.
    pub fn tails(&self) -> &[u32] {
        &self.edge_tail
    }

    pub fn edge_tail(&self, edge: EdgeId) -> NodeId {
        NodeId(self.edge_tail[edge.idx()])
    }

    pub fn edge_head(&self, edge: EdgeId) -> NodeId {
        NodeId(self.edge_head[edge.idx()])
    }

    pub fn edge_length_m(&self, edge: EdgeId) -> f64 {
        f64::from(self.geom_length_m[(self.edge_geom[edge.idx()] >> 1) as usize])
    }

    /// Free-flow truck speed from the profile, km/h.
    pub fn edge_speed_kph(&self, edge: EdgeId) -> f64 {
        f64::from(self.edge_speed_kph[edge.idx()])
    }

    /// Free-flow travel time, seconds.
    pub fn edge_free_flow_s(&self, edge: EdgeId) -> f64 {
        self.edge_length_m(edge) / (self.edge_speed_kph(edge) / 3.6)
    }

    pub fn edge_class(&self, edge: EdgeId) -> RoadClass {
        RoadClass::from_u8(self.edge_class[edge.idx()]).unwrap_or(RoadClass::Service)
    }

    pub fn edge_flags(&self, edge: EdgeId) -> EdgeFlags {
        EdgeFlags(self.edge_flags[edge.idx()])
    }

    /// The geometry an edge runs along, and whether it runs against the way.
    pub fn edge_geom(&self, edge: EdgeId) -> (GeomId, bool) {
        let g = self.edge_geom[edge.idx()];
        (GeomId(g >> 1), g & 1 == 1)
    }

    /// The OSM way an edge belongs to.
    pub fn edge_way_id(&self, edge: EdgeId) -> i64 {
        self.geom_way_id(self.edge_geom(edge).0)
    }

    /// Posted height/weight/length limits on the edge (all zero when none).
    pub fn edge_limits(&self, edge: EdgeId) -> TruckLimits {
        let geom = self.edge_geom(edge).0.0;
        self.geom_limits
            .binary_search_by_key(&geom, |(g, _)| *g)
            .map(|i| self.geom_limits[i].1)
            .unwrap_or_default()
    }

    /// The edge in the opposite direction along the same geometry, if open.
    pub fn reverse_edge(&self, edge: EdgeId) -> Option<EdgeId> {
        let (geom, reversed) = self.edge_geom(edge);
        let other = self.geom_edges[geom.idx()][usize::from(!reversed)];
        (other != NO_EDGE).then_some(EdgeId(other))
    }

    /// The directed edges along a geometry: `[forward, backward]`, `None` where closed.
    pub fn geom_edges(&self, geom: GeomId) -> [Option<EdgeId>; 2] {
        self.geom_edges[geom.idx()].map(|e| (e != NO_EDGE).then_some(EdgeId(e)))
    }

    pub fn geom_length_m(&self, geom: GeomId) -> f64 {
        f64::from(self.geom_length_m[geom.idx()])
    }

    pub fn geom_way_id(&self, geom: GeomId) -> i64 {
        self.way_ids[self.geom_way[geom.idx()] as usize]
    }

    /// The points of a geometry, in the way's direction.
    pub fn geom_points(&self, geom: GeomId) -> GeomPoints<'_> {
        let g = geom.idx();
        let interior =
            &self.geom_points[self.geom_first[g] as usize..self.geom_first[g + 1] as usize];
        let [a, b] = self.geom_end_nodes(geom);
        GeomPoints {
            first: self.node_coord[a.idx()],
            interior,
            last: self.node_coord[b.idx()],
            front: 0,
            back: interior.len() + 2,
        }
    }

    /// The nodes a geometry starts and ends at, in the way's direction.
    pub fn geom_end_nodes(&self, geom: GeomId) -> [NodeId; 2] {
        match self.geom_edges[geom.idx()] {
            [forward, _] if forward != NO_EDGE => [
                self.edge_tail(EdgeId(forward)),
                self.edge_head(EdgeId(forward)),
            ],
            [_, backward] => [
                self.edge_head(EdgeId(backward)),
                self.edge_tail(EdgeId(backward)),
            ],
        }
    }

    /// The points of an edge in driving order, from tail to head.
    pub fn edge_points(&self, edge: EdgeId) -> Vec<LatLon> {
        let (geom, reversed) = self.edge_geom(edge);
        let points = self.geom_points(geom);
        if reversed {
            points.rev().collect()
        } else {
            points.collect()
        }
    }

    /// The point at `offset_m` from the edge's tail, along its geometry.
    pub fn point_along_edge(&self, edge: EdgeId, offset_m: f64) -> LatLon {
        let points = self.edge_points(edge);
        let mut left_m = offset_m.max(0.0);
        for pair in points.windows(2) {
            let seg_m = crate::geo::haversine_m(pair[0], pair[1]);
            if left_m <= seg_m && seg_m > 0.0 {
                let t = left_m / seg_m;
                return LatLon::new(
                    pair[0].lat + t * (pair[1].lat - pair[0].lat),
                    pair[0].lon + t * (pair[1].lon - pair[0].lon),
                );
            }
            left_m -= seg_m;
        }
        points.last().copied().unwrap_or_default()
    }

    /// The part of an edge's geometry between two offsets from its tail (in order).
    pub fn edge_points_between(&self, edge: EdgeId, from_m: f64, to_m: f64) -> Vec<LatLon> {
        let points = self.edge_points(edge);
        if from_m <= 0.0 && to_m >= self.edge_length_m(edge) {
            // The whole edge (most of a route): its points as they are.
            return points;
        }
        let mut out = vec![self.point_along_edge(edge, from_m)];
        let mut walked_m = 0.0;
        for pair in points.windows(2) {
            walked_m += crate::geo::haversine_m(pair[0], pair[1]);
            if walked_m > from_m && walked_m < to_m {
                out.push(pair[1]);
            }
        }
        out.push(self.point_along_edge(edge, to_m));
        out
    }

    /// Turn restrictions, sorted by `(from, via, to)`.
    pub fn turn_restrictions(&self) -> &[TurnRestriction] {
        &self.restrictions
    }

    /// Whether the turn `from` → `to` (through `from`'s head) is allowed by the
    /// turn restrictions. U-turns are a routing policy, not decided here.
    pub fn turn_allowed(&self, from: EdgeId, to: EdgeId) -> bool {
        let start = self.restrictions.partition_point(|r| r.from < from);
        let mut only_seen = false;
        for r in self.restrictions[start..]
            .iter()
            .take_while(|r| r.from == from)
        {
            match r.kind {
                RestrictionKind::No if r.to == to => return false,
                RestrictionKind::Only if r.to == to => return true,
                RestrictionKind::Only => only_seen = true,
                RestrictionKind::No => {}
            }
        }
        !only_seen
    }

    /// Bounding box of all nodes and geometry.
    pub fn bbox(&self) -> BBox {
        let mut bbox = BBox::EMPTY;
        for p in self.geom_points.iter().chain(&self.node_coord) {
            bbox.extend(p.to_latlon());
        }
        bbox
    }

    /// Total length of the road network (each geometry once), kilometres.
    pub fn length_km(&self) -> f64 {
        self.geom_length_m
            .iter()
            .map(|&m| f64::from(m))
            .sum::<f64>()
            / 1000.0
    }

    /// A checksum of what routing depends on besides travel times: the edges and
    /// their ends, which edge reverses which, and the turn restrictions. Work
    /// prepared for one graph (the router's hierarchy) records it, so that it is
    /// never used on another.
    pub fn routing_fingerprint(&self) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        for array in [
            &self.first_out,
            &self.edge_head,
            &self.edge_tail,
            &self.edge_geom,
        ] {
            hasher.update(&(array.len() as u64).to_le_bytes());
            hasher.update(bytemuck::cast_slice(array));
        }
        hasher.update(&(self.geom_edges.len() as u64).to_le_bytes());
        hasher.update(bytemuck::cast_slice(&self.geom_edges));
        hasher.update(&(self.restrictions.len() as u64).to_le_bytes());
        for r in &self.restrictions {
            let only = u32::from(r.kind == RestrictionKind::Only);
            for word in [r.from.0, r.via.0, r.to.0, only] {
                hasher.update(&word.to_le_bytes());
            }
        }
        hasher.finalize()
    }

    /// Bytes of memory held by the graph's arrays (excluding the spatial index).
    pub fn heap_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        bytes(&self.node_coord)
            + bytes(&self.first_out)
            + bytes(&self.edge_head)
            + bytes(&self.edge_tail)
            + bytes(&self.edge_geom)
            + bytes(&self.edge_speed_kph)
            + bytes(&self.edge_class)
            + bytes(&self.edge_flags)
            + bytes(&self.geom_first)
            + bytes(&self.geom_points)
            + bytes(&self.geom_length_m)
            + bytes(&self.geom_way)
            + bytes(&self.way_ids)
            + bytes(&self.geom_edges)
            + bytes(&self.geom_limits)
            + bytes(&self.restrictions)
    }
}

/// The points of one geometry, end nodes included (see [`RoadGraph::geom_points`]).
#[derive(Debug, Clone)]
pub struct GeomPoints<'a> {
    first: E7,
    interior: &'a [E7],
    last: E7,
    front: usize,
    back: usize,
}

impl GeomPoints<'_> {
    fn at(&self, i: usize) -> LatLon {
        if i == 0 {
            self.first.to_latlon()
        } else if i <= self.interior.len() {
            self.interior[i - 1].to_latlon()
        } else {
            self.last.to_latlon()
        }
    }
}

impl Iterator for GeomPoints<'_> {
    type Item = LatLon;

    fn next(&mut self) -> Option<LatLon> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.at(self.front - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for GeomPoints<'_> {
    fn next_back(&mut self) -> Option<LatLon> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.at(self.back)
        })
    }
}

impl ExactSizeIterator for GeomPoints<'_> {}
