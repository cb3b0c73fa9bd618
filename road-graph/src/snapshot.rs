//! Graph snapshots: the built graph as one versioned binary file, so a server starts
//! in milliseconds instead of re-importing OSM data.
//!
//! Layout (all little-endian): the magic `TRKGRAPH`, a format version (`u32`), an
//! endianness marker (`u32`), the payload length (`u64`) and its CRC-32 (`u32`), then
//! the payload: each array as an element count (`u64`) followed by its raw elements.
//! The spatial index is not stored: it is rebuilt from the geometry on load, which
//! costs less than reading it would.
//!
//! After the payload come the *sections* (version 3): opaque blocks that other
//! crates store with the graph, each a tag (8 bytes), a length (`u64`), a CRC-32
//! (`u32`), four zero bytes, then its bytes. The engine keeps its prepared router
//! there, so that a server does not rebuild it on every start. This crate checks
//! each section's checksum and never looks inside; the owner of a tag validates
//! its contents ([`SectionReader`] reads arrays the way the payload stores them).
//! A version 2 file (no sections) still loads.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::geo::E7;
use crate::graph::{EdgeId, NodeId, RestrictionKind, RoadGraph, TurnRestriction};
use crate::profile::TruckLimits;
use crate::spatial::SpatialIndex;

const MAGIC: &[u8; 8] = b"TRKGRAPH";
/// Bump on any change of layout or meaning.
pub const SNAPSHOT_VERSION: u32 = 3;
/// The last version without sections, which this build still reads.
const VERSION_WITHOUT_SECTIONS: u32 = 2;
const ENDIAN_MARK: u32 = 0x0102_0304;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4;
const SECTION_HEADER_LEN: usize = 8 + 8 + 4 + 4;

/// A block of bytes another crate stores with the graph, under a tag of its own
/// (`*b"ROUTER\0\0"`). Its contents are the owner's to version and validate.
#[derive(Clone, PartialEq, Eq)]
pub struct Section {
    pub tag: [u8; 8],
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Section")
            .field("tag", &tag_name(&self.tag))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The tag as text, for messages: `ROUTER`.
pub fn tag_name(tag: &[u8; 8]) -> String {
    String::from_utf8_lossy(tag)
        .trim_end_matches('\0')
        .to_owned()
}

/// What a snapshot file holds: the graph, and the sections stored with it
/// (none for a map imported from a PBF).
#[derive(Debug)]
pub struct Snapshot {
    pub graph: RoadGraph,
    pub sections: Sections,
}

impl From<RoadGraph> for Snapshot {
    fn from(graph: RoadGraph) -> Snapshot {
        Snapshot {
            graph,
            sections: Sections::default(),
        }
    }
}

/// The sections of a snapshot, checksums checked. They stay in the file's
/// buffer, read once, until their owners have taken what they need: drop them
/// then.
#[derive(Default)]
pub struct Sections {
    bytes: Vec<u8>,
    table: Vec<TableEntry>,
}

/// A section's tag and where its bytes are in the file.
type TableEntry = ([u8; 8], Range<usize>);

impl Sections {
    /// The bytes of the section under `tag`.
    pub fn get(&self, tag: &[u8; 8]) -> Option<&[u8]> {
        self.table
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, range)| &self.bytes[range.clone()])
    }

    /// The tags of the sections present, in file order.
    pub fn tags(&self) -> impl Iterator<Item = &[u8; 8]> {
        self.table.iter().map(|(tag, _)| tag)
    }
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.table
                    .iter()
                    .map(|(tag, range)| (tag_name(tag), range.len())),
            )
            .finish()
    }
}

/// Writes a graph snapshot with its sections to `path` (through a temporary file,
/// so a crash never leaves half a snapshot under the final name). Two sections
/// may not share a tag.
pub fn save_snapshot(graph: &RoadGraph, sections: &[Section], path: &Path) -> Result<()> {
    for (i, s) in sections.iter().enumerate() {
        if sections[..i].iter().any(|other| other.tag == s.tag) {
            return Err(Error::CorruptSnapshot {
                path: path.to_owned(),
                reason: format!("section `{}` given twice", tag_name(&s.tag)),
            });
        }
    }
    let mut payload = Vec::with_capacity(graph.heap_bytes() + 1024);
    put_array(&mut payload, &graph.node_coord);
    put_array(&mut payload, &graph.first_out);
    put_array(&mut payload, &graph.edge_head);
    put_array(&mut payload, &graph.edge_tail);
    put_array(&mut payload, &graph.edge_geom);
    put_array(&mut payload, &graph.edge_speed_kph);
    put_array(&mut payload, &graph.edge_class);
    put_array(&mut payload, &graph.edge_flags);
    put_array(&mut payload, &graph.geom_first);
    put_array(&mut payload, &graph.geom_points);
    put_array(&mut payload, &graph.geom_length_m);
    put_array(&mut payload, &graph.geom_way);
    put_array(&mut payload, &graph.way_ids);
    put_array(&mut payload, &graph.geom_edges);
    let limit_geom: Vec<u32> = graph.geom_limits.iter().map(|(g, _)| *g).collect();
    let limit_values: Vec<[u32; 3]> = graph
        .geom_limits
        .iter()
        .map(|(_, l)| {
            [
                u32::from(l.max_height_cm),
                u32::from(l.max_length_cm),
                l.max_weight_kg,
            ]
        })
        .collect();
    put_array(&mut payload, &limit_geom);
    put_array(&mut payload, &limit_values);
    let restrictions: Vec<[u32; 4]> = graph
        .restrictions
        .iter()
        .map(|r| {
            [
                r.from.0,
                r.via.0,
                r.to.0,
                u32::from(r.kind == RestrictionKind::Only),
            ]
        })
        .collect();
    put_array(&mut payload, &restrictions);

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header.extend_from_slice(&ENDIAN_MARK.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());

    let io_err = |e: std::io::Error| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // A name of this writer's own, so that writers of the same snapshot at
    // once (several processes starting on one map) never share a half-written
    // file; the rename makes the one that lands whole.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "graph.{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(&header)?;
            file.write_all(&payload)?;
            for section in sections {
                let mut head = [0u8; SECTION_HEADER_LEN];
                head[..8].copy_from_slice(&section.tag);
                head[8..16].copy_from_slice(&(section.bytes.len() as u64).to_le_bytes());
                head[16..20].copy_from_slice(&crc32fast::hash(&section.bytes).to_le_bytes());
                file.write_all(&head)?;
                file.write_all(&section.bytes)?;
            }
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io_err)
}

/// Whether a file starts with the snapshot magic (used to tell a snapshot from a
/// PBF without trusting the file name).
pub fn is_snapshot(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == MAGIC
}

/// Loads a snapshot written by [`save_snapshot`], checking its version and the
/// checksums of the graph and of every section. A damaged section is an error like
/// a damaged graph: the file is not what was written.
pub fn load_snapshot(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    decode(bytes).map_err(|fault| match fault {
        Fault::NotSnapshot => Error::NotSnapshot {
            path: path.to_owned(),
        },
        Fault::Version(found) => Error::SnapshotVersion {
            path: path.to_owned(),
            found,
            expected: SNAPSHOT_VERSION,
        },
        Fault::Corrupt(reason) => Error::CorruptSnapshot {
            path: path.to_owned(),
            reason,
        },
    })
}

enum Fault {
    NotSnapshot,
    Version(u32),
    Corrupt(String),
}

fn decode(bytes: Vec<u8>) -> Result<Snapshot, Fault> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(Fault::NotSnapshot);
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u32_at(8);
    if version != SNAPSHOT_VERSION && version != VERSION_WITHOUT_SECTIONS {
        return Err(Fault::Version(version));
    }
    if u32_at(12) != ENDIAN_MARK {
        return Err(Fault::Corrupt(
            "written on a machine of other byte order".into(),
        ));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&bytes[16..24]);
    let payload_len = u64::from_le_bytes(len_bytes);
    let after_header = bytes.len() - HEADER_LEN;
    let short = if version == VERSION_WITHOUT_SECTIONS {
        after_header as u64 != payload_len
    } else {
        (after_header as u64) < payload_len
    };
    if short {
        return Err(Fault::Corrupt(format!(
            "payload is {after_header} bytes, header says {payload_len}; truncated?"
        )));
    }
    let payload_end = HEADER_LEN + payload_len as usize;
    let payload = &bytes[HEADER_LEN..payload_end];
    let sections = sections(&bytes, payload_end)?;
    if crc32fast::hash(payload) != u32_at(24) {
        return Err(Fault::Corrupt("checksum mismatch".into()));
    }

    let mut r = Reader {
        inner: SectionReader::new(payload),
    };
    let mut graph = RoadGraph {
        node_coord: r.take::<E7>()?,
        first_out: r.take()?,
        edge_head: r.take()?,
        edge_tail: r.take()?,
        edge_geom: r.take()?,
        edge_speed_kph: r.take()?,
        edge_class: r.take()?,
        edge_flags: r.take()?,
        geom_first: r.take()?,
        geom_points: r.take()?,
        geom_length_m: r.take()?,
        geom_way: r.take()?,
        way_ids: r.take()?,
        geom_edges: r.take()?,
        geom_limits: Vec::new(),
        restrictions: Vec::new(),
        index: SpatialIndex::default(),
        main_nodes: std::sync::OnceLock::new(),
    };
    let limit_geom: Vec<u32> = r.take()?;
    let limit_values: Vec<[u32; 3]> = r.take()?;
    let restrictions: Vec<[u32; 4]> = r.take()?;
    if limit_geom.len() != limit_values.len() {
        return Err(Fault::Corrupt("limit arrays differ in length".into()));
    }
    graph.geom_limits = limit_geom
        .into_iter()
        .zip(limit_values)
        .map(|(g, [h, l, w])| {
            let limits = TruckLimits {
                max_height_cm: h as u16,
                max_length_cm: l as u16,
                max_weight_kg: w,
            };
            (g, limits)
        })
        .collect();
    graph.restrictions = restrictions
        .into_iter()
        .map(|[from, via, to, only]| TurnRestriction {
            from: EdgeId(from),
            via: NodeId(via),
            to: EdgeId(to),
            kind: if only == 1 {
                RestrictionKind::Only
            } else {
                RestrictionKind::No
            },
        })
        .collect();
    check_consistent(&graph).map_err(Fault::Corrupt)?;
    graph.index = SpatialIndex::build(&graph);
    Ok(Snapshot {
        graph,
        sections: Sections {
            bytes,
            table: sections,
        },
    })
}

/// The sections from `start` to the end of the file, each checked against its
/// checksum; a tag may appear once.
fn sections(bytes: &[u8], start: usize) -> Result<Vec<TableEntry>, Fault> {
    let mut found: Vec<TableEntry> = Vec::new();
    let mut at = start;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + SECTION_HEADER_LEN)
            .ok_or_else(|| Fault::Corrupt("file ends inside a section header".into()))?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&head[..8]);
        let name = tag_name(&tag);
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[8..16]);
        let len = u64::from_le_bytes(len);
        let crc = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        let body_start = at + SECTION_HEADER_LEN;
        let body = usize::try_from(len)
            .ok()
            .and_then(|len| body_start.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .map(|end| body_start..end)
            .ok_or_else(|| {
                Fault::Corrupt(format!(
                    "section `{name}` says {len} bytes, the file ends before; truncated?"
                ))
            })?;
        if found.iter().any(|(t, _)| *t == tag) {
            return Err(Fault::Corrupt(format!("section `{name}` appears twice")));
        }
        if crc32fast::hash(&bytes[body.clone()]) != crc {
            return Err(Fault::Corrupt(format!(
                "section `{name}`: checksum mismatch"
            )));
        }
        at = body.end;
        found.push((tag, body));
    }
    Ok(found)
}

/// Checks every index in the arrays, so that a corrupt file that passed the
/// checksum by chance can never make a later lookup panic.
fn check_consistent(g: &RoadGraph) -> Result<(), String> {
    let n_nodes = g.node_coord.len();
    let n_edges = g.edge_head.len();
    let n_geoms = g.geom_length_m.len();
    let same = [
        g.edge_tail.len(),
        g.edge_geom.len(),
        g.edge_speed_kph.len(),
        g.edge_class.len(),
        g.edge_flags.len(),
    ];
    if same.iter().any(|&l| l != n_edges)
        || g.first_out.len() != n_nodes + 1
        || g.geom_first.len() != n_geoms + 1
        || g.geom_way.len() != n_geoms
        || g.geom_edges.len() != n_geoms
    {
        return Err("array lengths disagree".into());
    }
    if g.first_out.windows(2).any(|w| w[0] > w[1]) || g.first_out.last() != Some(&(n_edges as u32))
    {
        return Err("edge offsets are not monotone".into());
    }
    if g.geom_first.windows(2).any(|w| w[1] < w[0])
        || g.geom_first.last() != Some(&(g.geom_points.len() as u32))
    {
        return Err("geometry offsets are not monotone".into());
    }
    let node_ok = |n: u32| (n as usize) < n_nodes;
    let edge_ok = |e: u32| (e as usize) < n_edges;
    if !g.edge_head.iter().chain(&g.edge_tail).all(|&n| node_ok(n))
        || !g.edge_geom.iter().all(|&x| ((x >> 1) as usize) < n_geoms)
        || !g
            .geom_edges
            .iter()
            .flatten()
            .all(|&e| e == u32::MAX || edge_ok(e))
        || !g.geom_limits.iter().all(|(x, _)| (*x as usize) < n_geoms)
        || !g.geom_way.iter().all(|&w| (w as usize) < g.way_ids.len())
        || !g
            .geom_edges
            .iter()
            .all(|&[f, b]| f != u32::MAX || b != u32::MAX)
        || !g
            .restrictions
            .iter()
            .all(|r| edge_ok(r.from.0) && edge_ok(r.to.0) && node_ok(r.via.0))
    {
        return Err("an index points outside its array".into());
    }
    if g.edge_class
        .iter()
        .any(|&c| crate::profile::RoadClass::from_u8(c).is_none())
    {
        return Err("unknown road class".into());
    }
    Ok(())
}

/// Appends an array the way snapshots store them: its element count (`u64`), then
/// its raw little-endian elements. Sections use it too, and read the arrays back
/// with [`SectionReader`].
pub fn put_array<T: bytemuck::Pod>(out: &mut Vec<u8>, items: &[T]) {
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(items));
}

/// Reads back, in order, the arrays written with [`put_array`]: one copy per
/// array into memory of its own type (no per-element parsing), each count checked
/// against the bytes left.
#[derive(Debug)]
pub struct SectionReader<'a> {
    rest: &'a [u8],
}

impl<'a> SectionReader<'a> {
    pub fn new(bytes: &'a [u8]) -> SectionReader<'a> {
        SectionReader { rest: bytes }
    }

    /// The next array; `Err` (a reason) when the bytes end inside it.
    pub fn take<T: bytemuck::Pod>(&mut self) -> Result<Vec<T>, String> {
        let short = || "the data ends inside an array".to_owned();
        if self.rest.len() < 8 {
            return Err(short());
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&self.rest[..8]);
        let count = usize::try_from(u64::from_le_bytes(count)).map_err(|_| short())?;
        let size = std::mem::size_of::<T>();
        let n_bytes = count.checked_mul(size).ok_or_else(short)?;
        let end = n_bytes.checked_add(8).ok_or_else(short)?;
        let body = self.rest.get(8..end).ok_or_else(short)?;
        let mut items = vec![T::zeroed(); count];
        bytemuck::cast_slice_mut::<T, u8>(&mut items).copy_from_slice(body);
        self.rest = &self.rest[end..];
        Ok(items)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

struct Reader<'a> {
    inner: SectionReader<'a>,
}

impl Reader<'_> {
    fn take<T: bytemuck::Pod>(&mut self) -> Result<Vec<T>, Fault> {
        self.inner
            .take()
            .map_err(|_| Fault::Corrupt("payload ends inside an array".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drawn::DrawnMap;

    //   a---b---c
    //       |
    //       d
    fn tiny() -> RoadGraph {
        let mut map = DrawnMap::new("a---b---c\n\n    d", 100.0);
        map.way("abc", &[]);
        map.way("bd", &[]);
        map.build().expect("the drawing builds").0
    }

    fn section(tag: &[u8; 8], bytes: &[u8]) -> Section {
        Section {
            tag: *tag,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn sections_come_back_as_written_and_unknown_tags_are_kept() {
        let graph = tiny();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tiny.graph");
        let mut arrays = Vec::new();
        put_array(&mut arrays, &[1u32, 2, 3]);
        put_array(&mut arrays, &[[7u32, 8]]);
        let written = [
            section(b"ROUTER\0\0", &arrays),
            section(b"OTHER\0\0\0", b""),
        ];
        save_snapshot(&graph, &written, &path).expect("saves");

        let loaded = load_snapshot(&path).expect("loads");
        assert!(loaded.graph == graph);
        let names: Vec<String> = loaded.sections.tags().map(tag_name).collect();
        assert_eq!(names, ["ROUTER", "OTHER"]);
        assert_eq!(loaded.sections.get(b"OTHER\0\0\0"), Some(&b""[..]));
        assert_eq!(loaded.sections.get(b"MISSING\0"), None);
        let mut r = SectionReader::new(loaded.sections.get(b"ROUTER\0\0").expect("stored"));
        assert_eq!(r.take::<u32>().expect("first array"), [1, 2, 3]);
        assert_eq!(r.take::<[u32; 2]>().expect("second array"), [[7, 8]]);
        assert!(r.is_empty());
        assert!(r.take::<u32>().is_err(), "nothing is left to read");
    }

    #[test]
    fn a_damaged_or_cut_section_is_refused_naming_it() {
        let graph = tiny();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tiny.graph");
        save_snapshot(&graph, &[section(b"ROUTER\0\0", &[5; 64])], &path).expect("saves");
        let good = std::fs::read(&path).expect("reads");

        let mut flipped = good.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0x01;
        std::fs::write(&path, &flipped).expect("writes");
        let err = load_snapshot(&path).expect_err("a flipped bit in the section");
        let text = err.to_string();
        assert!(
            text.contains("tiny.graph") && text.contains("section `ROUTER`: checksum mismatch"),
            "{text}"
        );

        std::fs::write(&path, &good[..good.len() - 1]).expect("writes");
        let err = load_snapshot(&path).expect_err("a cut section");
        assert!(
            err.to_string().contains("section `ROUTER` says 64 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_version_2_file_loads_with_no_sections_and_other_versions_are_named() {
        let graph = tiny();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tiny.graph");
        save_snapshot(&graph, &[], &path).expect("saves");
        let mut bytes = std::fs::read(&path).expect("reads");
        // Without sections, version 3 is laid out as version 2 was.
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        std::fs::write(&path, &bytes).expect("writes");
        let loaded = load_snapshot(&path).expect("a version 2 snapshot loads");
        assert!(loaded.graph == graph);
        assert_eq!(loaded.sections.tags().count(), 0);

        bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
        std::fs::write(&path, &bytes).expect("writes");
        let err = load_snapshot(&path).expect_err("version 9");
        assert!(
            err.to_string()
                .contains("version 9, this build reads version 3"),
            "{err}"
        );
    }

    #[test]
    fn one_tag_twice_is_refused_when_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tiny.graph");
        let twice = [section(b"ROUTER\0\0", b"a"), section(b"ROUTER\0\0", b"b")];
        let err = save_snapshot(&tiny(), &twice, &path).expect_err("the same tag twice");
        assert!(
            err.to_string().contains("section `ROUTER` given twice"),
            "{err}"
        );
        assert!(!path.exists());
    }
}
