//! OpenStreetMap input: the few things the graph needs from an OSM file (routable
//! ways with their profile, the coordinates of their nodes, turn restrictions), read
//! from a PBF file in two parallel passes or assembled in code for drawn test maps.

use std::path::Path;

use osmpbf::{Element, ElementReader, RelMemberType};

use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::graph::RestrictionKind;
use crate::profile::{ProfileConfig, Rejection, WayProfile, evaluate_way};

/// A routable way: its nodes and what the truck profile made of its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmWay {
    pub id: i64,
    pub nodes: Vec<i64>,
    pub profile: WayProfile,
}

/// A turn restriction relation with a via node (via-way restrictions are counted
/// and skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsmRestriction {
    pub id: i64,
    pub from_way: i64,
    pub via_node: i64,
    pub to_way: i64,
    pub kind: RestrictionKind,
}

/// What the reader saw, for the import summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ReadCounts {
    pub ways_read: u64,
    pub ways_routable: u64,
    pub ways_rejected_no_access: u64,
    pub ways_rejected_reversible: u64,
    pub restrictions_read: u64,
    /// Via-way restrictions and malformed ones, skipped.
    pub restrictions_unsupported: u64,
    /// Restrictions that exempt trucks (`except=hgv`) or apply to other vehicles only.
    pub restrictions_not_for_trucks: u64,
}

/// The OSM data the graph is built from. Nodes hold only those referenced by
/// routable ways, sorted by id.
#[derive(Debug, Clone, Default)]
pub struct OsmData {
    pub nodes: Vec<(i64, LatLon)>,
    pub ways: Vec<OsmWay>,
    pub restrictions: Vec<OsmRestriction>,
    pub counts: ReadCounts,
}

impl OsmData {
    /// The coordinates of a node, if the data has it.
    pub fn node(&self, id: i64) -> Option<LatLon> {
        self.nodes
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| self.nodes[i].1)
    }

    /// Adds a way after running the profile on its tags; returns whether the profile
    /// accepted it. Used by drawn test maps and by the PBF reader alike.
    pub fn add_way(
        &mut self,
        id: i64,
        nodes: Vec<i64>,
        tags: &[(&str, &str)],
        config: &ProfileConfig,
    ) -> bool {
        self.counts.ways_read += 1;
        match evaluate_way(tags, config) {
            Ok(profile) => {
                self.counts.ways_routable += 1;
                self.ways.push(OsmWay { id, nodes, profile });
                true
            }
            Err(rejection) => {
                self.counts.count_rejection(rejection);
                false
            }
        }
    }

    /// Adds a node's coordinates (kept sorted by id).
    pub fn add_node(&mut self, id: i64, pos: LatLon) {
        match self.nodes.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(i) => self.nodes[i].1 = pos,
            Err(i) => self.nodes.insert(i, (id, pos)),
        }
    }

    /// Adds a restriction relation from its tags and members; returns whether it
    /// applies to trucks and has the supported shape.
    pub fn add_restriction(&mut self, id: i64, tags: &[(&str, &str)], members: &[Member]) -> bool {
        match parse_restriction(id, tags, members) {
            Some(Ok(r)) => {
                self.counts.restrictions_read += 1;
                self.restrictions.push(r);
                true
            }
            Some(Err(RestrictionSkip::NotForTrucks)) => {
                self.counts.restrictions_read += 1;
                self.counts.restrictions_not_for_trucks += 1;
                false
            }
            Some(Err(RestrictionSkip::Unsupported)) => {
                self.counts.restrictions_read += 1;
                self.counts.restrictions_unsupported += 1;
                false
            }
            None => false,
        }
    }
}

impl ReadCounts {
    fn count_rejection(&mut self, rejection: Rejection) {
        match rejection {
            Rejection::NoAccess => self.ways_rejected_no_access += 1,
            Rejection::Reversible => self.ways_rejected_reversible += 1,
            Rejection::NotARoad | Rejection::NotDrivable => {}
        }
    }

    fn merge(&mut self, other: &ReadCounts) {
        self.ways_read += other.ways_read;
        self.ways_routable += other.ways_routable;
        self.ways_rejected_no_access += other.ways_rejected_no_access;
        self.ways_rejected_reversible += other.ways_rejected_reversible;
        self.restrictions_read += other.restrictions_read;
        self.restrictions_unsupported += other.restrictions_unsupported;
        self.restrictions_not_for_trucks += other.restrictions_not_for_trucks;
    }
}

/// A relation member: kind, referenced id and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub kind: MemberKind,
    pub id: i64,
    pub role: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    Node,
    Way,
    Relation,
}

enum RestrictionSkip {
    NotForTrucks,
    Unsupported,
}

/// `None` when the relation is not a turn restriction at all.
fn parse_restriction(
    id: i64,
    tags: &[(&str, &str)],
    members: &[Member],
) -> Option<Result<OsmRestriction, RestrictionSkip>> {
    let tag = |key: &str| tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    if tag("type") != Some("restriction") {
        return None;
    }
    let value = match (tag("restriction:hgv"), tag("restriction")) {
        (Some(v), _) => v,
        (None, Some(v)) => v,
        (None, None) => {
            // Only `restriction:bus` or the like: not for trucks.
            return Some(Err(RestrictionSkip::NotForTrucks));
        }
    };
    let exempt = tag("except").is_some_and(|e| {
        e.split(';')
            .any(|v| matches!(v.trim(), "hgv" | "goods" | "motorcar" | "motor_vehicle"))
    });
    if exempt {
        return Some(Err(RestrictionSkip::NotForTrucks));
    }
    let kind = if value.starts_with("no_") {
        RestrictionKind::No
    } else if value.starts_with("only_") {
        RestrictionKind::Only
    } else {
        return Some(Err(RestrictionSkip::Unsupported));
    };
    let one = |kind: MemberKind, role: &str| {
        let mut it = members.iter().filter(|m| m.kind == kind && m.role == role);
        match (it.next(), it.next()) {
            (Some(m), None) => Some(m.id),
            _ => None,
        }
    };
    let parsed = (|| {
        Some(OsmRestriction {
            id,
            from_way: one(MemberKind::Way, "from")?,
            via_node: one(MemberKind::Node, "via")?,
            to_way: one(MemberKind::Way, "to")?,
            kind,
        })
    })();
    Some(parsed.ok_or(RestrictionSkip::Unsupported))
}

/// Progress of a PBF import, for a progress bar in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStage {
    /// Reading ways and relations; bytes of the file done so far.
    Ways,
    /// Reading the coordinates of the nodes the ways use.
    Nodes,
    /// Building the topology from what was read.
    Topology,
}

/// Reads a PBF file into [`OsmData`] in two passes (ways and relations, then only
/// the nodes they reference). `progress` is called at the start of each stage.
pub fn read_pbf(
    path: &Path,
    config: &ProfileConfig,
    progress: &mut dyn FnMut(ImportStage),
) -> Result<OsmData> {
    check_pbf_header(path)?;
    progress(ImportStage::Ways);
    let reader = open(path)?;
    let pbf_err = |source: osmpbf::Error| Error::Pbf {
        path: path.to_owned(),
        reason: source.to_string(),
    };
    let mut data = reader
        .par_map_reduce(
            |element| {
                let mut part = OsmData::default();
                match element {
                    Element::Way(way) => {
                        let tags: Vec<(&str, &str)> = way.tags().collect();
                        part.add_way(way.id(), way.refs().collect(), &tags, config);
                    }
                    Element::Relation(rel) => {
                        let tags: Vec<(&str, &str)> = rel.tags().collect();
                        if tags.iter().any(|&(k, v)| k == "type" && v == "restriction") {
                            let members: Vec<Member> = rel
                                .members()
                                .map(|m| Member {
                                    kind: match m.member_type {
                                        RelMemberType::Node => MemberKind::Node,
                                        RelMemberType::Way => MemberKind::Way,
                                        RelMemberType::Relation => MemberKind::Relation,
                                    },
                                    id: m.member_id,
                                    role: m.role().unwrap_or(""),
                                })
                                .collect();
                            part.add_restriction(rel.id(), &tags, &members);
                        }
                    }
                    Element::Node(_) | Element::DenseNode(_) => {}
                }
                part
            },
            OsmData::default,
            |mut a, b| {
                a.ways.extend(b.ways);
                a.restrictions.extend(b.restrictions);
                a.counts.merge(&b.counts);
                a
            },
        )
        .map_err(pbf_err)?;
    // Parallel reading returns ways in no fixed order; sort so that the same file
    // always gives the same graph.
    data.ways.sort_unstable_by_key(|w| w.id);
    data.restrictions.sort_unstable_by_key(|r| r.id);

    progress(ImportStage::Nodes);
    let mut wanted: Vec<i64> = data
        .ways
        .iter()
        .flat_map(|w| w.nodes.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let reader = open(path)?;
    let found = reader
        .par_map_reduce(
            |element| {
                let (id, lat, lon) = match element {
                    Element::Node(n) => (n.id(), n.lat(), n.lon()),
                    Element::DenseNode(n) => (n.id(), n.lat(), n.lon()),
                    Element::Way(_) | Element::Relation(_) => return Vec::new(),
                };
                if wanted.binary_search(&id).is_ok() {
                    vec![(id, LatLon::new(lat, lon))]
                } else {
                    Vec::new()
                }
            },
            Vec::new,
            |mut a, mut b| {
                if a.len() < b.len() {
                    std::mem::swap(&mut a, &mut b);
                }
                a.extend(b);
                a
            },
        )
        .map_err(pbf_err)?;
    data.nodes = found;
    data.nodes.sort_unstable_by_key(|(id, _)| *id);
    data.nodes.dedup_by_key(|(id, _)| *id);
    progress(ImportStage::Topology);
    Ok(data)
}

fn open(path: &Path) -> Result<ElementReader<std::io::BufReader<std::fs::File>>> {
    ElementReader::from_path(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Checks that a file starts like an OSM PBF (a `BlobHeader` of type `OSMHeader`),
/// so that a wrong file gets a clear message rather than a decoder error.
fn check_pbf_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let n = file.read(&mut head).map_err(|e| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let header_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let looks_like_pbf = n >= 16
        && (8..=64 * 1024).contains(&header_len)
        && head[4..n].windows(9).any(|w| w == b"OSMHeader");
    if looks_like_pbf {
        Ok(())
    } else {
        Err(Error::NotPbf {
            path: path.to_owned(),
        })
    }
}
