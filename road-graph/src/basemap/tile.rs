//! Cutting one vector tile (z/x/y, Web Mercator) from the basemap and the graph:
//! select by box (the R-trees), project to tile units, clip to the tile plus a
//! buffer (lines piecewise, polygons with Sutherland–Hodgman), simplify with
//! Douglas–Peucker in tile units, drop what is too small or too minor for the
//! zoom, and encode as a Mapbox Vector Tile. Pure: the same inputs give the same
//! bytes.

use std::f64::consts::PI;

use super::mvt::{GeomType, LayerBuilder};
use super::{AreaKind, Basemap, Item, LineKind, PlaceKind};
use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::graph::{GeomId, RoadGraph};
use crate::profile::RoadClass;

/// Tile units per tile side (the spec's default).
pub const TILE_EXTENT: u32 = 4096;
/// The deepest zoom cut (street level and a little more).
pub const MAX_TILE_ZOOM: u8 = 20;
/// Tile units drawn beyond each edge, so that lines and outlines meet across
/// tile borders without seams.
const BUFFER: f64 = 64.0;
/// Areas whose box is smaller than this (tile units², about 4 screen pixels
/// on a 256-pixel tile) are not worth their bytes.
const MIN_AREA_UNITS2: f64 = 1024.0;
/// Mercator's limit of latitude.
const MAX_LAT: f64 = 85.051_128_78;

/// A tile address, checked against its zoom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl TileId {
    /// Checks `z` (0..=[`MAX_TILE_ZOOM`]) and `x`, `y` (below 2^z).
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId> {
        if z > u32::from(MAX_TILE_ZOOM) {
            return Err(Error::TileOutOfRange {
                field: "z",
                value: u64::from(z),
                max: u64::from(MAX_TILE_ZOOM),
            });
        }
        let max = (1u64 << z) - 1;
        for (field, value) in [("x", x), ("y", y)] {
            if u64::from(value) > max {
                return Err(Error::TileOutOfRange {
                    field,
                    value: u64::from(value),
                    max,
                });
            }
        }
        Ok(TileId { z: z as u8, x, y })
    }

    /// The tile of zoom `z` holding a point.
    pub fn containing(p: LatLon, z: u8) -> TileId {
        let n = f64::from(1u32 << z.min(MAX_TILE_ZOOM));
        let max = (1u32 << z.min(MAX_TILE_ZOOM)) - 1;
        let [fx, fy] = mercator(p);
        TileId {
            z: z.min(MAX_TILE_ZOOM),
            x: ((fx * n) as u32).min(max),
            y: ((fy * n) as u32).min(max),
        }
    }

    /// Projects a point to this tile's units (0..4096 inside the tile).
    fn project(&self, p: LatLon) -> [f64; 2] {
        let scale = f64::from(1u32 << self.z) * f64::from(TILE_EXTENT);
        let [fx, fy] = mercator(p);
        [
            fx * scale - f64::from(self.x) * f64::from(TILE_EXTENT),
            fy * scale - f64::from(self.y) * f64::from(TILE_EXTENT),
        ]
    }

    /// The tile's box with its buffer, as (south-west, north-east).
    fn bbox(&self) -> (LatLon, LatLon) {
        let n = f64::from(1u32 << self.z);
        let pad = BUFFER / f64::from(TILE_EXTENT);
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| (PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
        let (x0, x1) = (f64::from(self.x) - pad, f64::from(self.x) + 1.0 + pad);
        let (y0, y1) = (f64::from(self.y) - pad, f64::from(self.y) + 1.0 + pad);
        (
            LatLon::new(lat(y1).max(-MAX_LAT), lon(x0).max(-180.0)),
            LatLon::new(lat(y0).min(MAX_LAT), lon(x1).min(180.0)),
        )
    }
}

/// Web Mercator, as fractions of the world (0..1, y downwards).
fn mercator(p: LatLon) -> [f64; 2] {
    let lat = p.lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    [
        (p.lon + 180.0) / 360.0,
        (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0,
    ]
}

/// The least zoom a road class is drawn at: long-haul views keep the main roads.
fn road_min_zoom(class: RoadClass) -> u8 {
    match class {
        RoadClass::Motorway | RoadClass::Trunk => 0,
        RoadClass::Primary => 7,
        RoadClass::MotorwayLink | RoadClass::TrunkLink | RoadClass::Secondary => 9,
        RoadClass::PrimaryLink | RoadClass::SecondaryLink | RoadClass::Tertiary => 11,
        RoadClass::TertiaryLink | RoadClass::Unclassified | RoadClass::Residential => 13,
        RoadClass::LivingStreet | RoadClass::Service => 14,
    }
}

fn place_min_zoom(kind: PlaceKind) -> u8 {
    match kind {
        PlaceKind::City => 0,
        PlaceKind::Town => 8,
        PlaceKind::Village | PlaceKind::Suburb => 11,
        PlaceKind::Neighbourhood => 13,
    }
}

fn line_min_zoom(kind: LineKind) -> u8 {
    match kind {
        LineKind::River | LineKind::Canal => 0,
        LineKind::Stream => 13,
    }
}

/// Douglas–Peucker tolerance in tile units: coarser at long-haul zooms, where
/// a screen pixel is 16 units anyway.
fn tolerance(z: u8) -> f64 {
    match z {
        0..=8 => 4.0,
        9..=12 => 2.0,
        _ => 1.0,
    }
}

/// Road names are labels for street-level views only.
const ROAD_NAME_MIN_ZOOM: u8 = 13;

/// Cuts one tile: layers `water`, `builtup`, `park`, `waterway`, `roads`
/// (`class`, `name`) and `places` (`kind`, `name`). A tile outside the data is
/// empty (no layers).
pub fn cut_tile(basemap: &Basemap, graph: &RoadGraph, tile: TileId) -> Vec<u8> {
    let (sw, ne) = tile.bbox();
    let envelope = rstar::AABB::from_corners([sw.lon, sw.lat], [ne.lon, ne.lat]);
    let mut items: Vec<Item> = basemap
        .index
        .locate_in_envelope_intersecting(&envelope)
        .map(|e| e.data)
        .collect();
    // The tree's order is not the data's: sort so the bytes are reproducible.
    items.sort_unstable_by_key(|i| match *i {
        Item::Area(a) => (0, a),
        Item::Line(l) => (1, l),
        Item::Place(p) => (2, p),
    });
    let (lo, hi) = (-BUFFER, f64::from(TILE_EXTENT) + BUFFER);
    let tol = tolerance(tile.z);
    let project = |pts: &mut dyn Iterator<Item = LatLon>| -> Vec<[f64; 2]> {
        pts.map(|p| tile.project(p)).collect()
    };

    let mut areas = [
        LayerBuilder::new(AreaKind::Water.layer()),
        LayerBuilder::new(AreaKind::BuiltUp.layer()),
        LayerBuilder::new(AreaKind::Park.layer()),
    ];
    let mut waterway = LayerBuilder::new("waterway");
    let mut places = LayerBuilder::new("places");
    for item in &items {
        match *item {
            Item::Area(a) => {
                let a = a as usize;
                let Some(kind) = AreaKind::from_u8(basemap.area_kind[a]) else {
                    continue;
                };
                let mut rings = Vec::new();
                for (i, ring) in basemap.rings(a).enumerate() {
                    let pts = project(&mut ring.iter().map(|p| p.to_latlon()));
                    if i == 0 && box_area(&pts) < MIN_AREA_UNITS2 {
                        break;
                    }
                    let clipped = clip_ring(&pts, lo, hi);
                    let ring = quantize(&simplify_ring(&clipped, tol));
                    match wind(ring, i == 0) {
                        Some(r) => rings.push(r),
                        None if i == 0 => break,
                        None => {}
                    }
                }
                let layer = match kind {
                    AreaKind::Water => &mut areas[0],
                    AreaKind::BuiltUp => &mut areas[1],
                    AreaKind::Park => &mut areas[2],
                };
                if !rings.is_empty() {
                    layer.feature(GeomType::Polygon, &rings, &[]);
                }
            }
            Item::Line(l) => {
                let l = l as usize;
                let Some(kind) = LineKind::from_u8(basemap.line_kind[l]) else {
                    continue;
                };
                if tile.z < line_min_zoom(kind) {
                    continue;
                }
                let pts = project(&mut basemap.line_points(l).iter().map(|p| p.to_latlon()));
                let parts = line_parts(&pts, lo, hi, tol);
                let name = basemap.name(basemap.line_name[l]);
                let mut props = vec![("kind", kind.as_str())];
                props.extend(name.map(|n| ("name", n)));
                if !parts.is_empty() {
                    waterway.feature(GeomType::LineString, &parts, &props);
                }
            }
            Item::Place(p) => {
                let p = p as usize;
                let (Some(kind), Some(name)) = (
                    PlaceKind::from_u8(basemap.place_kind[p]),
                    basemap.name(basemap.place_name[p]),
                ) else {
                    continue;
                };
                if tile.z < place_min_zoom(kind) {
                    continue;
                }
                let [x, y] = tile.project(basemap.place_pos[p].to_latlon());
                // Labels belong to the one tile that holds their point.
                let inside = |v: f64| (0.0..f64::from(TILE_EXTENT)).contains(&v);
                if inside(x) && inside(y) {
                    places.feature(
                        GeomType::Point,
                        &[vec![[x.round() as i32, y.round() as i32]]],
                        &[("kind", kind.as_str()), ("name", name)],
                    );
                }
            }
        }
    }

    // Minor roads first, so that a renderer drawing in order puts major ones on top.
    let mut roads: Vec<(RoadClass, GeomId)> = graph
        .geoms_in_bbox(sw, ne)
        .into_iter()
        .filter_map(|g| {
            let edge = graph.geom_edges(g).into_iter().flatten().next()?;
            let class = graph.edge_class(edge);
            (tile.z >= road_min_zoom(class)).then_some((class, g))
        })
        .collect();
    roads.sort_unstable_by_key(|(class, g)| (std::cmp::Reverse(*class as u8), g.0));
    let mut road_layer = LayerBuilder::new("roads");
    for (class, g) in roads {
        let pts = project(&mut graph.geom_points(g));
        let parts = line_parts(&pts, lo, hi, tol);
        if parts.is_empty() {
            continue;
        }
        let mut props = vec![("class", class.as_str())];
        if tile.z >= ROAD_NAME_MIN_ZOOM {
            props.extend(basemap.geom_name(g.0).map(|n| ("name", n)));
        }
        road_layer.feature(GeomType::LineString, &parts, &props);
    }

    let mut out = Vec::new();
    for layer in areas {
        layer.finish_into(&mut out);
    }
    waterway.finish_into(&mut out);
    road_layer.finish_into(&mut out);
    places.finish_into(&mut out);
    out
}

fn box_area(pts: &[[f64; 2]]) -> f64 {
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for p in pts {
        lo = [lo[0].min(p[0]), lo[1].min(p[1])];
        hi = [hi[0].max(p[0]), hi[1].max(p[1])];
    }
    (hi[0] - lo[0]).max(0.0) * (hi[1] - lo[1]).max(0.0)
}

/// A line clipped to the square `lo..hi`, simplified and quantized: its parts
/// inside, each with at least two distinct points.
fn line_parts(pts: &[[f64; 2]], lo: f64, hi: f64, tol: f64) -> Vec<Vec<[i32; 2]>> {
    clip_line(pts, lo, hi)
        .into_iter()
        .map(|part| quantize(&simplify(&part, tol)))
        .filter(|part| part.len() >= 2)
        .collect()
}

/// Clips a polyline to the square `lo..hi` (Liang–Barsky per segment), splitting
/// it where it leaves and re-enters.
pub(crate) fn clip_line(pts: &[[f64; 2]], lo: f64, hi: f64) -> Vec<Vec<[f64; 2]>> {
    let mut parts = Vec::new();
    let mut run: Vec<[f64; 2]> = Vec::new();
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = [b[0] - a[0], b[1] - a[1]];
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let mut visible = true;
        for (p, q) in [
            (-d[0], a[0] - lo),
            (d[0], hi - a[0]),
            (-d[1], a[1] - lo),
            (d[1], hi - a[1]),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    visible = false;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        if !visible || t0 > t1 {
            if run.len() >= 2 {
                parts.push(std::mem::take(&mut run));
            }
            run.clear();
            continue;
        }
        let at = |t: f64| [a[0] + t * d[0], a[1] + t * d[1]];
        if run.is_empty() || t0 > 0.0 {
            if run.len() >= 2 {
                parts.push(std::mem::take(&mut run));
            }
            run.clear();
            run.push(at(t0));
        }
        run.push(at(t1));
        if t1 < 1.0 {
            parts.push(std::mem::take(&mut run));
        }
    }
    if run.len() >= 2 {
        parts.push(run);
    }
    parts
}

/// Clips a closed ring (first point not repeated) to the square `lo..hi`
/// (Sutherland–Hodgman, one edge of the square at a time).
pub(crate) fn clip_ring(pts: &[[f64; 2]], lo: f64, hi: f64) -> Vec<[f64; 2]> {
    let mut ring = pts.to_vec();
    // Each edge as (axis, limit, keep values below the limit?).
    for (axis, limit, below) in [(0, lo, false), (0, hi, true), (1, lo, false), (1, hi, true)] {
        let inside = |p: &[f64; 2]| {
            if below {
                p[axis] <= limit
            } else {
                p[axis] >= limit
            }
        };
        let mut out = Vec::with_capacity(ring.len() + 4);
        let n = ring.len();
        for i in 0..n {
            let (cur, prev) = (ring[i], ring[(i + n - 1) % n]);
            let cross = |a: [f64; 2], b: [f64; 2]| {
                let t = (limit - a[axis]) / (b[axis] - a[axis]);
                [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
            };
            match (inside(&prev), inside(&cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
        }
        ring = out;
        if ring.is_empty() {
            break;
        }
    }
    ring
}

/// Douglas–Peucker: the fewest points within `tol` of the line (ends kept).
pub(crate) fn simplify(pts: &[[f64; 2]], tol: f64) -> Vec<[f64; 2]> {
    if pts.len() <= 2 {
        return pts.to_vec();
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    let mut stack = vec![(0, pts.len() - 1)];
    while let Some((first, last)) = stack.pop() {
        let (a, b) = (pts[first], pts[last]);
        let d = [b[0] - a[0], b[1] - a[1]];
        let len2 = d[0] * d[0] + d[1] * d[1];
        let mut far = (0.0, first);
        for (i, p) in pts.iter().enumerate().take(last).skip(first + 1) {
            let dist2 = if len2 == 0.0 {
                (p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2)
            } else {
                let cross = d[0] * (p[1] - a[1]) - d[1] * (p[0] - a[0]);
                cross * cross / len2
            };
            if dist2 > far.0 {
                far = (dist2, i);
            }
        }
        if far.0 > tol * tol {
            keep[far.1] = true;
            stack.push((first, far.1));
            stack.push((far.1, last));
        }
    }
    pts.iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

/// Simplifies a closed ring: split at its point farthest from the first, so
/// that both halves keep their ends.
fn simplify_ring(ring: &[[f64; 2]], tol: f64) -> Vec<[f64; 2]> {
    if ring.len() < 4 {
        return ring.to_vec();
    }
    let first = ring[0];
    let far = (1..ring.len())
        .max_by(|&i, &j| {
            let d = |p: [f64; 2]| (p[0] - first[0]).powi(2) + (p[1] - first[1]).powi(2);
            d(ring[i]).total_cmp(&d(ring[j]))
        })
        .unwrap_or(1);
    let mut closed = ring.to_vec();
    closed.push(first);
    let mut out = simplify(&closed[..=far], tol);
    out.pop();
    out.extend(simplify(&closed[far..], tol));
    out.pop();
    out
}

/// Rounds to whole tile units, dropping repeated points.
fn quantize(pts: &[[f64; 2]]) -> Vec<[i32; 2]> {
    let mut out: Vec<[i32; 2]> = Vec::with_capacity(pts.len());
    for p in pts {
        let q = [p[0].round() as i32, p[1].round() as i32];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    out
}

/// Orients a ring as the spec wants (exterior: positive area in tile
/// coordinates, clockwise on screen; holes: negative); `None` when the ring
/// has no area left.
fn wind(mut ring: Vec<[i32; 2]>, exterior: bool) -> Option<Vec<[i32; 2]>> {
    while ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    if ring.len() < 3 {
        return None;
    }
    let area2: i64 = (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            i64::from(a[0]) * i64::from(b[1]) - i64::from(b[0]) * i64::from(a[1])
        })
        .sum();
    if area2 == 0 {
        return None;
    }
    if (area2 > 0) != exterior {
        ring.reverse();
    }
    Some(ring)
}
