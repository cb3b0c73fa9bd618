//! Extracting the basemap from OSM: which tags make water, parks, built-up land,
//! waterways and places; joining a multipolygon's member ways into closed rings by
//! their shared end nodes; and reading all of it from a PBF file in three passes
//! (tagged ways and relations, the untagged ways relations use, then nodes).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use osmpbf::{Element, ElementReader, RelMemberType};

use super::{AreaKind, Basemap, LineKind, NO_NAME, PlaceKind};
use crate::error::{Error, Result};
use crate::geo::{E7, LatLon};
use crate::graph::RoadGraph;

/// The OSM objects the basemap is made from, as read (node ids not yet resolved).
/// Filled by the PBF reader, or by hand in tests.
#[derive(Debug, Clone, Default)]
pub struct BasemapInput {
    /// Closed ways tagged as an area.
    area_ways: Vec<(AreaKind, Vec<i64>)>,
    /// Multipolygon relations: kind and (way id, outer?) members.
    multipolygons: Vec<(AreaKind, Vec<(i64, bool)>)>,
    /// Node lists of the ways multipolygons use.
    member_ways: HashMap<i64, Vec<i64>>,
    lines: Vec<(LineKind, Option<String>, Vec<i64>)>,
    places: Vec<(PlaceKind, String, LatLon)>,
    /// Road names by way id.
    road_names: HashMap<i64, String>,
    nodes: HashMap<i64, LatLon>,
}

fn tag<'a>(tags: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The kind of area the tags describe, if any.
fn area_kind(tags: &[(&str, &str)]) -> Option<AreaKind> {
    let is = |k: &str, values: &[&str]| tag(tags, k).is_some_and(|v| values.contains(&v));
    if is("natural", &["water", "bay"])
        || is("waterway", &["riverbank", "dock"])
        || is("landuse", &["reservoir", "basin"])
    {
        Some(AreaKind::Water)
    } else if is(
        "leisure",
        &["park", "garden", "nature_reserve", "golf_course"],
    ) || is(
        "landuse",
        &["grass", "forest", "meadow", "recreation_ground", "cemetery"],
    ) || is("natural", &["wood", "scrub"])
    {
        Some(AreaKind::Park)
    } else if is(
        "landuse",
        &["residential", "commercial", "industrial", "retail"],
    ) {
        Some(AreaKind::BuiltUp)
    } else {
        None
    }
}

fn line_kind(tags: &[(&str, &str)]) -> Option<LineKind> {
    match tag(tags, "waterway")? {
        "river" => Some(LineKind::River),
        "canal" => Some(LineKind::Canal),
        "stream" => Some(LineKind::Stream),
        _ => None,
    }
}

impl BasemapInput {
    /// A way with its tags: an area, a waterway, a named road, or nothing we draw.
    pub fn add_way(&mut self, id: i64, nodes: Vec<i64>, tags: &[(&str, &str)]) {
        if tag(tags, "highway").is_some() {
            if let Some(name) = tag(tags, "name") {
                self.road_names.insert(id, name.to_owned());
            }
            return;
        }
        if let Some(kind) = line_kind(tags) {
            let name = tag(tags, "name").map(str::to_owned);
            self.lines.push((kind, name, nodes));
        } else if let Some(kind) = area_kind(tags)
            && nodes.len() >= 4
            && nodes.first() == nodes.last()
            && tag(tags, "area") != Some("no")
        {
            self.area_ways.push((kind, nodes));
        }
    }

    /// A relation: a multipolygon of a kind we draw is kept with its way members.
    pub fn add_relation(&mut self, tags: &[(&str, &str)], way_members: &[(i64, &str)]) {
        if tag(tags, "type") != Some("multipolygon") {
            return;
        }
        if let Some(kind) = area_kind(tags) {
            let members = way_members
                .iter()
                .map(|&(id, role)| (id, role != "inner"))
                .collect();
            self.multipolygons.push((kind, members));
        }
    }

    /// The node list of a way a multipolygon uses (a second pass, since such
    /// ways often carry no tags of their own).
    pub fn add_member_way(&mut self, id: i64, nodes: Vec<i64>) {
        self.member_ways.insert(id, nodes);
    }

    /// The ways whose node lists [`Self::add_member_way`] should be given.
    pub fn wanted_member_ways(&self) -> HashSet<i64> {
        self.multipolygons
            .iter()
            .flat_map(|(_, m)| m.iter().map(|(id, _)| *id))
            .collect()
    }

    /// The nodes whose positions the areas and lines need.
    pub fn wanted_nodes(&self) -> HashSet<i64> {
        let mut wanted: HashSet<i64> = HashSet::new();
        for (_, nodes) in &self.area_ways {
            wanted.extend(nodes);
        }
        for (_, _, nodes) in &self.lines {
            wanted.extend(nodes);
        }
        for nodes in self.member_ways.values() {
            wanted.extend(nodes);
        }
        wanted
    }

    /// A node: its position (when wanted) and, when tagged as a named place, a label.
    pub fn add_node(&mut self, id: i64, pos: LatLon, tags: &[(&str, &str)], wanted: bool) {
        if wanted {
            self.nodes.insert(id, pos);
        }
        if let (Some(kind), Some(name)) = (
            tag(tags, "place").and_then(PlaceKind::from_tag),
            tag(tags, "name"),
        ) {
            self.places.push((kind, name.to_owned(), pos));
        }
    }

    fn resolve(&self, nodes: &[i64]) -> Option<Vec<E7>> {
        nodes
            .iter()
            .map(|id| self.nodes.get(id).map(|p| E7::from_latlon(*p)))
            .collect()
    }

    /// Builds the basemap for `graph` (road names go to its geometries).
    pub fn assemble(&self, graph: &RoadGraph) -> Basemap {
        let mut out = Builder::default();
        for (kind, nodes) in &self.area_ways {
            if let Some(ring) = self.resolve(nodes) {
                out.area(*kind, vec![ring]);
            }
        }
        for (kind, members) in &self.multipolygons {
            let ways = |outer: bool| -> Vec<Vec<i64>> {
                members
                    .iter()
                    .filter(|(_, o)| *o == outer)
                    .filter_map(|(id, _)| self.member_ways.get(id).cloned())
                    .collect()
            };
            let resolve_all = |rings: Vec<Vec<i64>>| -> Vec<Vec<E7>> {
                rings.iter().filter_map(|r| self.resolve(r)).collect()
            };
            let outers = resolve_all(join_rings(ways(true)));
            let mut inners = resolve_all(join_rings(ways(false)));
            for outer in outers {
                // A hole belongs to the outer ring that contains its first point.
                let (mine, rest): (Vec<_>, Vec<_>) = inners
                    .into_iter()
                    .partition(|inner| inner.first().is_some_and(|p| inside(*p, &outer)));
                inners = rest;
                let mut rings = vec![outer];
                rings.extend(mine);
                out.area(*kind, rings);
            }
        }
        let mut sorted_lines: Vec<&(LineKind, Option<String>, Vec<i64>)> =
            self.lines.iter().collect();
        sorted_lines.sort_by_key(|(kind, _, _)| *kind as u8);
        for (kind, name, nodes) in sorted_lines {
            // A line may run off the extract: keep its pieces with known nodes.
            let mut run = Vec::new();
            for id in nodes.iter().chain(std::iter::once(&i64::MIN)) {
                match self.nodes.get(id) {
                    Some(p) => run.push(E7::from_latlon(*p)),
                    None => {
                        if run.len() >= 2 {
                            out.line(*kind, name.as_deref(), std::mem::take(&mut run));
                        }
                        run.clear();
                    }
                }
            }
        }
        let mut places: Vec<&(PlaceKind, String, LatLon)> = self.places.iter().collect();
        places.sort_by(|a, b| {
            (a.0, &a.1, E7::from_latlon(a.2).lat).cmp(&(b.0, &b.1, E7::from_latlon(b.2).lat))
        });
        for (kind, name, pos) in places {
            let name = out.name(name);
            out.map.place_kind.push(*kind as u8);
            out.map.place_name.push(name);
            out.map.place_pos.push(E7::from_latlon(*pos));
        }
        out.map.geom_name = graph
            .geom_way
            .iter()
            .map(|&w| {
                graph
                    .way_ids
                    .get(w as usize)
                    .and_then(|id| self.road_names.get(id))
                    .map_or(NO_NAME, |n| out.name(n))
            })
            .collect();
        let mut map = out.map;
        map.index = map.build_index();
        map
    }
}

/// Accumulates the flat arrays, interning names.
struct Builder {
    map: Basemap,
    names: HashMap<String, u32>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            map: Basemap {
                area_first_ring: vec![0],
                ring_first_point: vec![0],
                line_first_point: vec![0],
                name_first: vec![0],
                ..Basemap::default()
            },
            names: HashMap::new(),
        }
    }
}

impl Builder {
    fn name(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let i = (self.map.name_first.len() - 1) as u32;
        self.map.name_bytes.extend_from_slice(name.as_bytes());
        self.map.name_first.push(self.map.name_bytes.len() as u32);
        self.names.insert(name.to_owned(), i);
        i
    }

    /// Rings as closed point lists (the repeated last point is dropped).
    fn area(&mut self, kind: AreaKind, rings: Vec<Vec<E7>>) {
        let m = &mut self.map;
        let mut n_rings = 0;
        for mut ring in rings {
            if ring.len() > 1 && ring.first() == ring.last() {
                ring.pop();
            }
            if ring.len() < 3 {
                if n_rings == 0 {
                    return; // no outer ring, no area
                }
                continue;
            }
            m.area_points.extend(ring);
            m.ring_first_point.push(m.area_points.len() as u32);
            n_rings += 1;
        }
        if n_rings > 0 {
            m.area_kind.push(kind as u8);
            m.area_first_ring
                .push((m.ring_first_point.len() - 1) as u32);
        }
    }

    fn line(&mut self, kind: LineKind, name: Option<&str>, points: Vec<E7>) {
        let name = name.map_or(NO_NAME, |n| self.name(n));
        let m = &mut self.map;
        m.line_kind.push(kind as u8);
        m.line_name.push(name);
        m.line_points.extend(points);
        m.line_first_point.push(m.line_points.len() as u32);
    }
}

/// Joins ways into closed rings by shared end nodes (reversing ways as needed).
/// A chain that cannot be closed (a member missing from a clipped extract) is
/// closed straight across its gap when it is long enough to be a real shape:
/// a river cut by the extract's edge still shows as water.
fn join_rings(mut ways: Vec<Vec<i64>>) -> Vec<Vec<i64>> {
    let mut rings = Vec::new();
    ways.retain(|w| w.len() >= 2);
    while let Some(mut ring) = ways.pop() {
        while ring.first() != ring.last() {
            let Some(&end) = ring.last() else { break };
            let next = ways
                .iter()
                .position(|w| w.first() == Some(&end) || w.last() == Some(&end));
            let Some(i) = next else { break };
            let mut way = ways.swap_remove(i);
            if way.first() != Some(&end) {
                way.reverse();
            }
            ring.extend_from_slice(&way[1..]);
        }
        if ring.first() == ring.last() || ring.len() >= 8 {
            rings.push(ring);
        }
    }
    rings
}

/// Whether `p` lies inside the ring (even-odd rule, in degrees: fine at the
/// scale of one area).
fn inside(p: E7, ring: &[E7]) -> bool {
    let mut odd = false;
    let n = ring.len();
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + n - 1) % n]);
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let t = f64::from(p.lat - a.lat) / f64::from(b.lat - a.lat);
            let x = f64::from(a.lon) + t * f64::from(b.lon - a.lon);
            if f64::from(p.lon) < x {
                odd = !odd;
            }
        }
    }
    odd
}

/// Reads the basemap of `graph` from the PBF file it was imported from: three
/// passes (ways and relations; the ways multipolygons use; nodes).
pub fn read_basemap(path: &Path, graph: &RoadGraph) -> Result<Basemap> {
    let pbf_err = |source: osmpbf::Error| Error::Pbf {
        path: path.to_owned(),
        reason: source.to_string(),
    };
    let open = || {
        ElementReader::from_path(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let mut input = open()?
        .par_map_reduce(
            |element| {
                let mut part = BasemapInput::default();
                match element {
                    Element::Way(way) => {
                        let tags: Vec<(&str, &str)> = way.tags().collect();
                        if !tags.is_empty() {
                            part.add_way(way.id(), way.refs().collect(), &tags);
                        }
                    }
                    Element::Relation(rel) => {
                        let tags: Vec<(&str, &str)> = rel.tags().collect();
                        let members: Vec<(i64, &str)> = rel
                            .members()
                            .filter(|m| matches!(m.member_type, RelMemberType::Way))
                            .map(|m| (m.member_id, m.role().unwrap_or("")))
                            .collect();
                        part.add_relation(&tags, &members);
                    }
                    Element::Node(_) | Element::DenseNode(_) => {}
                }
                part
            },
            BasemapInput::default,
            merge,
        )
        .map_err(pbf_err)?;
    // Parallel reading returns elements in no fixed order; sort so that the
    // same file always gives the same basemap.
    input
        .area_ways
        .sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    input
        .multipolygons
        .sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    input
        .lines
        .sort_by(|a, b| (a.0 as u8, &a.2).cmp(&(b.0 as u8, &b.2)));
    let members = input.wanted_member_ways();
    let found: Vec<(i64, Vec<i64>)> = open()?
        .par_map_reduce(
            |element| match element {
                Element::Way(way) if members.contains(&way.id()) => {
                    vec![(way.id(), way.refs().collect())]
                }
                _ => Vec::new(),
            },
            Vec::new,
            |mut a, b| {
                a.extend(b);
                a
            },
        )
        .map_err(pbf_err)?;
    for (id, nodes) in found {
        input.add_member_way(id, nodes);
    }
    let wanted = input.wanted_nodes();
    let nodes = open()?
        .par_map_reduce(
            |element| {
                let mut part = BasemapInput::default();
                let (id, lat, lon, tags): (i64, f64, f64, Vec<(&str, &str)>) = match element {
                    Element::Node(n) => (n.id(), n.lat(), n.lon(), n.tags().collect()),
                    Element::DenseNode(n) => (n.id(), n.lat(), n.lon(), n.tags().collect()),
                    Element::Way(_) | Element::Relation(_) => return part,
                };
                part.add_node(id, LatLon::new(lat, lon), &tags, wanted.contains(&id));
                part
            },
            BasemapInput::default,
            merge,
        )
        .map_err(pbf_err)?;
    input.nodes = nodes.nodes;
    input.places = nodes.places;
    Ok(input.assemble(graph))
}

fn merge(mut a: BasemapInput, b: BasemapInput) -> BasemapInput {
    a.area_ways.extend(b.area_ways);
    a.multipolygons.extend(b.multipolygons);
    a.member_ways.extend(b.member_ways);
    a.lines.extend(b.lines);
    a.places.extend(b.places);
    a.road_names.extend(b.road_names);
    a.nodes.extend(b.nodes);
    a
}
