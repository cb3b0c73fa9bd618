//! The basemap: what the tracking page's map draws besides our roads (water,
//! rivers, parks, built-up land, place labels) and the names of the roads,
//! extracted from the same OSM file as the graph and kept in the snapshot's
//! `BASEMAP` section. Roads are not stored twice: their lines are the graph's
//! geometry, and the section adds one name per geometry.
//!
//! The section is a list of arrays written with [`put_array`] (see
//! [`Basemap::to_section`]); [`Basemap::from_section`] checks every offset,
//! kind and index against the arrays and the graph, so that a damaged section
//! is refused instead of panicking a tile cut later.

mod extract;
mod mvt;
mod tile;

use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use crate::geo::{E7, LatLon};
use crate::graph::RoadGraph;
use crate::snapshot::{Section, SectionReader, put_array};

pub use extract::{BasemapInput, read_basemap};
pub use tile::{MAX_TILE_ZOOM, TILE_EXTENT, TileId, cut_tile};

/// The tag of the basemap's snapshot section.
pub const BASEMAP_SECTION: [u8; 8] = *b"BASEMAP\0";
/// Bump when the section's layout or meaning changes.
const BASEMAP_FORMAT: u32 = 1;
/// "No name" in the name-index arrays.
const NO_NAME: u32 = u32::MAX;

/// What an area is, for styling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AreaKind {
    Water = 0,
    Park = 1,
    BuiltUp = 2,
}

/// A waterway drawn as a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LineKind {
    River = 0,
    Canal = 1,
    Stream = 2,
}

/// A named place, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum PlaceKind {
    City = 0,
    Town = 1,
    Village = 2,
    Suburb = 3,
    Neighbourhood = 4,
}

impl AreaKind {
    const ALL: [AreaKind; 3] = [AreaKind::Water, AreaKind::Park, AreaKind::BuiltUp];
    fn from_u8(v: u8) -> Option<AreaKind> {
        AreaKind::ALL.get(usize::from(v)).copied()
    }
    /// The tile layer the area goes to.
    pub fn layer(self) -> &'static str {
        match self {
            AreaKind::Water => "water",
            AreaKind::Park => "park",
            AreaKind::BuiltUp => "builtup",
        }
    }
}

impl LineKind {
    const ALL: [LineKind; 3] = [LineKind::River, LineKind::Canal, LineKind::Stream];
    fn from_u8(v: u8) -> Option<LineKind> {
        LineKind::ALL.get(usize::from(v)).copied()
    }
    /// The `waterway=*` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::River => "river",
            LineKind::Canal => "canal",
            LineKind::Stream => "stream",
        }
    }
}

impl PlaceKind {
    const ALL: [PlaceKind; 5] = [
        PlaceKind::City,
        PlaceKind::Town,
        PlaceKind::Village,
        PlaceKind::Suburb,
        PlaceKind::Neighbourhood,
    ];
    fn from_u8(v: u8) -> Option<PlaceKind> {
        PlaceKind::ALL.get(usize::from(v)).copied()
    }
    /// The `place=*` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::City => "city",
            PlaceKind::Town => "town",
            PlaceKind::Village => "village",
            PlaceKind::Suburb => "suburb",
            PlaceKind::Neighbourhood => "neighbourhood",
        }
    }
    pub(crate) fn from_tag(v: &str) -> Option<PlaceKind> {
        PlaceKind::ALL.into_iter().find(|k| k.as_str() == v)
    }
}

/// What the spatial index points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Area(u32),
    Line(u32),
    Place(u32),
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, Item>;

/// The basemap of one map: flat arrays (as stored) and an R-tree over their boxes.
#[derive(Debug, Clone, Default)]
pub struct Basemap {
    /// Per area: its kind, and its rings `area_first_ring[a]..area_first_ring[a + 1]`;
    /// the first ring is the outer one, the rest are holes.
    area_kind: Vec<u8>,
    area_first_ring: Vec<u32>,
    /// Per ring: its points `ring_first_point[r]..ring_first_point[r + 1]` (closed:
    /// the first point is not repeated).
    ring_first_point: Vec<u32>,
    area_points: Vec<E7>,
    line_kind: Vec<u8>,
    line_name: Vec<u32>,
    line_first_point: Vec<u32>,
    line_points: Vec<E7>,
    place_kind: Vec<u8>,
    place_name: Vec<u32>,
    place_pos: Vec<E7>,
    /// Per geometry of the graph: the road's name.
    geom_name: Vec<u32>,
    /// Names: `name_bytes[name_first[i]..name_first[i + 1]]`, UTF-8.
    name_first: Vec<u32>,
    name_bytes: Vec<u8>,
    index: RTree<Entry>,
}

impl Basemap {
    /// A basemap with the graph's roads only, unnamed: for a map stored without
    /// a basemap section (the tiles still show the roads).
    pub fn roads_only(graph: &RoadGraph) -> Basemap {
        Basemap {
            area_first_ring: vec![0],
            ring_first_point: vec![0],
            line_first_point: vec![0],
            geom_name: vec![NO_NAME; graph.n_geoms()],
            name_first: vec![0],
            ..Basemap::default()
        }
    }

    pub fn n_areas(&self) -> usize {
        self.area_kind.len()
    }
    pub fn n_lines(&self) -> usize {
        self.line_kind.len()
    }
    pub fn n_places(&self) -> usize {
        self.place_kind.len()
    }
    /// Graph geometries that carry a road name.
    pub fn n_named_roads(&self) -> usize {
        self.geom_name.iter().filter(|&&n| n != NO_NAME).count()
    }

    /// The areas of a kind, each as rings of points (outer first).
    pub fn areas_of(&self, kind: AreaKind) -> impl Iterator<Item = Vec<Vec<LatLon>>> + '_ {
        (0..self.n_areas())
            .filter(move |&a| self.area_kind[a] == kind as u8)
            .map(move |a| {
                self.rings(a)
                    .map(|pts| pts.iter().map(|p| p.to_latlon()).collect())
                    .collect()
            })
    }

    /// The places, with their kind, name and position.
    pub fn places(&self) -> impl Iterator<Item = (PlaceKind, &str, LatLon)> + '_ {
        (0..self.n_places()).filter_map(move |p| {
            Some((
                PlaceKind::from_u8(self.place_kind[p])?,
                self.name(self.place_name[p])?,
                self.place_pos[p].to_latlon(),
            ))
        })
    }

    /// The waterway lines, with their kind and name.
    pub fn lines(&self) -> impl Iterator<Item = (LineKind, Option<&str>, &[E7])> + '_ {
        (0..self.n_lines()).filter_map(move |l| {
            Some((
                LineKind::from_u8(self.line_kind[l])?,
                self.name(self.line_name[l]),
                self.line_points(l),
            ))
        })
    }

    fn name(&self, idx: u32) -> Option<&str> {
        let i = idx as usize;
        let range = *self.name_first.get(i)? as usize..*self.name_first.get(i + 1)? as usize;
        std::str::from_utf8(self.name_bytes.get(range)?).ok()
    }

    pub(crate) fn geom_name(&self, geom: u32) -> Option<&str> {
        self.name(*self.geom_name.get(geom as usize)?)
    }

    fn rings(&self, area: usize) -> impl Iterator<Item = &[E7]> + '_ {
        let rings = self.area_first_ring[area] as usize..self.area_first_ring[area + 1] as usize;
        rings.map(move |r| {
            &self.area_points
                [self.ring_first_point[r] as usize..self.ring_first_point[r + 1] as usize]
        })
    }

    fn line_points(&self, line: usize) -> &[E7] {
        &self.line_points
            [self.line_first_point[line] as usize..self.line_first_point[line + 1] as usize]
    }

    /// The section that stores this basemap in a snapshot.
    pub fn to_section(&self) -> Section {
        let mut bytes = Vec::new();
        put_array(&mut bytes, &[BASEMAP_FORMAT]);
        put_array(&mut bytes, &self.area_kind);
        put_array(&mut bytes, &self.area_first_ring);
        put_array(&mut bytes, &self.ring_first_point);
        put_array(&mut bytes, &self.area_points);
        put_array(&mut bytes, &self.line_kind);
        put_array(&mut bytes, &self.line_name);
        put_array(&mut bytes, &self.line_first_point);
        put_array(&mut bytes, &self.line_points);
        put_array(&mut bytes, &self.place_kind);
        put_array(&mut bytes, &self.place_name);
        put_array(&mut bytes, &self.place_pos);
        put_array(&mut bytes, &self.geom_name);
        put_array(&mut bytes, &self.name_first);
        put_array(&mut bytes, &self.name_bytes);
        Section {
            tag: BASEMAP_SECTION,
            bytes,
        }
    }

    /// Reads a section written by [`Basemap::to_section`] for this graph, checking
    /// it whole; `Err` is the reason it cannot be used.
    pub fn from_section(bytes: &[u8], graph: &RoadGraph) -> Result<Basemap, String> {
        let mut r = SectionReader::new(bytes);
        let format: Vec<u32> = r.take()?;
        if format != [BASEMAP_FORMAT] {
            return Err(format!(
                "basemap format {format:?}, this build reads {BASEMAP_FORMAT}"
            ));
        }
        let mut map = Basemap {
            area_kind: r.take()?,
            area_first_ring: r.take()?,
            ring_first_point: r.take()?,
            area_points: r.take()?,
            line_kind: r.take()?,
            line_name: r.take()?,
            line_first_point: r.take()?,
            line_points: r.take()?,
            place_kind: r.take()?,
            place_name: r.take()?,
            place_pos: r.take()?,
            geom_name: r.take()?,
            name_first: r.take()?,
            name_bytes: r.take()?,
            index: RTree::new(),
        };
        if !r.is_empty() {
            return Err("basemap section has bytes after its arrays".into());
        }
        map.check(graph.n_geoms())?;
        map.index = map.build_index();
        Ok(map)
    }

    /// Every offset monotone and in range, every kind known, every name index
    /// pointing at a name, every name UTF-8 and every point on the globe.
    fn check(&self, n_geoms: usize) -> Result<(), String> {
        let offsets_ok = |first: &[u32], n_items: usize, n_inner: usize| {
            first.len() == n_items + 1
                && first.first() == Some(&0)
                && first.windows(2).all(|w| w[0] <= w[1])
                && first.last().is_some_and(|&l| l as usize == n_inner)
        };
        let n_names = self.name_first.len().saturating_sub(1);
        let name_ok = |&n: &u32| n == NO_NAME || (n as usize) < n_names;
        let on_globe = |p: &E7| p.to_latlon().is_valid();
        let checks = [
            (
                offsets_ok(
                    &self.area_first_ring,
                    self.area_kind.len(),
                    self.ring_first_point.len().saturating_sub(1),
                ),
                "area rings",
            ),
            (
                offsets_ok(
                    &self.ring_first_point,
                    self.ring_first_point.len().saturating_sub(1),
                    self.area_points.len(),
                ) && self.area_first_ring.windows(2).all(|w| w[0] < w[1]),
                "ring points",
            ),
            (
                offsets_ok(
                    &self.line_first_point,
                    self.line_kind.len(),
                    self.line_points.len(),
                ) && self.line_name.len() == self.line_kind.len(),
                "line points",
            ),
            (
                self.place_name.len() == self.place_kind.len()
                    && self.place_pos.len() == self.place_kind.len(),
                "place arrays",
            ),
            (self.geom_name.len() == n_geoms, "road names per geometry"),
            (
                offsets_ok(&self.name_first, n_names, self.name_bytes.len()),
                "name offsets",
            ),
            (
                self.area_kind
                    .iter()
                    .all(|&k| AreaKind::from_u8(k).is_some())
                    && self
                        .line_kind
                        .iter()
                        .all(|&k| LineKind::from_u8(k).is_some())
                    && self
                        .place_kind
                        .iter()
                        .all(|&k| PlaceKind::from_u8(k).is_some()),
                "kinds",
            ),
            (
                self.line_name.iter().chain(&self.geom_name).all(name_ok)
                    && self.place_name.iter().all(|&n| (n as usize) < n_names),
                "name indices",
            ),
            (
                self.area_points
                    .iter()
                    .chain(&self.line_points)
                    .chain(&self.place_pos)
                    .all(on_globe),
                "coordinates",
            ),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!("basemap section: inconsistent {what}"));
        }
        if (0..n_names).any(|i| self.name(i as u32).is_none()) {
            return Err("basemap section: a name is not UTF-8".into());
        }
        Ok(())
    }

    fn build_index(&self) -> RTree<Entry> {
        let boxed = |pts: &[E7], item: Item| {
            let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
            for p in pts {
                let p = p.to_latlon();
                lo = [lo[0].min(p.lon), lo[1].min(p.lat)];
                hi = [hi[0].max(p.lon), hi[1].max(p.lat)];
            }
            GeomWithData::new(Rectangle::from_corners(lo, hi), item)
        };
        let mut entries = Vec::new();
        for a in 0..self.n_areas() {
            if let Some(outer) = self.rings(a).next().filter(|r| !r.is_empty()) {
                entries.push(boxed(outer, Item::Area(a as u32)));
            }
        }
        for l in 0..self.n_lines() {
            let pts = self.line_points(l);
            if !pts.is_empty() {
                entries.push(boxed(pts, Item::Line(l as u32)));
            }
        }
        for p in 0..self.n_places() {
            entries.push(boxed(&self.place_pos[p..=p], Item::Place(p as u32)));
        }
        RTree::bulk_load(entries)
    }
}
