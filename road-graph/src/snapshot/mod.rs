//! Graph snapshots: the built graph as one versioned binary file, so a server starts
//! in milliseconds instead of re-importing OSM data.
//!
//! Layout (version 4, all little-endian): the magic `TRKGRAPH`, a format version
//! (`u32`), an endianness marker (`u32`), the payload length (`u64`), its CRC-32
//! (`u32`) and four zero bytes; then the payload: each array as an element count
//! (`u64`) followed by its raw elements, the count at a multiple of 8 bytes from
//! the payload's start (zero bytes before it where needed). The spatial index is
//! not stored: it is rebuilt from the geometry on load, which costs less than
//! reading it would.
//!
//! After the payload come the *sections*: opaque blocks that other crates store
//! with the graph, each a tag (8 bytes), a length (`u64`), a CRC-32 (`u32`), four
//! zero bytes, then its bytes. The engine keeps its prepared router there, so that
//! a server does not rebuild it on every start. This crate checks each section's
//! checksum and never looks inside; the owner of a tag validates its contents
//! ([`SectionReader`] reads arrays the way [`put_array`] writes them). Every block
//! (the payload, each section) starts at a multiple of 8 bytes in the file, zero
//! bytes after each up to there, so every array is aligned in the file.
//!
//! Loading maps the file instead of reading it ([`array`]: no copy of the bytes,
//! no fresh memory to fault in and free): the checksums are computed over the
//! map in parallel pieces, the graph's arrays are copied out (the graph owns
//! them), and an owner may borrow its section's arrays in place
//! ([`load_snapshot_claiming`], [`SectionReader::take_array`]). Every index of
//! the graph is then checked ([`consistent`]). Versions 2 and 3 (arrays not
//! aligned) are refused with the advice to rebuild the snapshot.
//!
//! A mapped snapshot must not be modified while a process uses it: replace it
//! by renaming a new file over it, as [`save_snapshot`] does (see [`array`]).

mod array;
mod consistent;
mod reader;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::geo::E7;
use crate::graph::{EdgeId, NodeId, RestrictionKind, RoadGraph, TurnRestriction};
use crate::profile::TruckLimits;
use crate::spatial::SpatialIndex;
use rayon::prelude::*;

pub use array::Array;
use array::{MappedFile, map_file};
use consistent::check_consistent;
use reader::ALIGN;
pub use reader::SectionReader;

const MAGIC: &[u8; 8] = b"TRKGRAPH";
/// Bump on any change of layout or meaning. Version 4 aligned every array in
/// the file (so that a mapped file's arrays are borrowed in place).
pub const SNAPSHOT_VERSION: u32 = 4;
const ENDIAN_MARK: u32 = 0x0102_0304;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4 + 4;
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

/// The sections of a snapshot, checksums checked, each borrowed from the mapped
/// file until its owner has taken what it needs (drop them then). A section
/// claimed while loading ([`load_snapshot_claiming`]) went to its owner: it is
/// listed, with no bytes.
#[derive(Default)]
pub struct Sections {
    entries: Vec<([u8; 8], Option<Array<u8>>)>,
}

impl Sections {
    /// The bytes of the section under `tag`; `None` when there is none, or when
    /// it was claimed while loading.
    pub fn get(&self, tag: &[u8; 8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(t, _)| t == tag)
            .and_then(|(_, bytes)| bytes.as_deref())
    }

    /// The tags of the sections present, in file order (claimed ones too).
    pub fn tags(&self) -> impl Iterator<Item = &[u8; 8]> {
        self.entries.iter().map(|(tag, _)| tag)
    }
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(tag, bytes)| {
                let len = bytes
                    .as_ref()
                    .map_or("claimed".to_owned(), |b| b.len().to_string());
                (tag_name(tag), len)
            }))
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
    header.extend_from_slice(&[0; 4]);

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
            // Every block is followed by zero bytes up to a multiple of ALIGN.
            let pad = |len: usize| &[0u8; ALIGN][..len.next_multiple_of(ALIGN) - len];
            file.write_all(&header)?;
            file.write_all(&payload)?;
            file.write_all(pad(payload.len()))?;
            for section in sections {
                let mut head = [0u8; SECTION_HEADER_LEN];
                head[..8].copy_from_slice(&section.tag);
                head[8..16].copy_from_slice(&(section.bytes.len() as u64).to_le_bytes());
                head[16..20].copy_from_slice(&crc32fast::hash(&section.bytes).to_le_bytes());
                file.write_all(&head)?;
                file.write_all(&section.bytes)?;
                file.write_all(pad(section.bytes.len()))?;
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
    type Unclaimed = fn(&mut SectionReader<'_>) -> Result<(), String>;
    load::<(), Unclaimed>(path, None).map(|(snapshot, _)| snapshot)
}

/// What [`load_snapshot_claiming`] gives back: the snapshot, and what the
/// claimed section's owner read from it (`None` when the file has no such
/// section, `Some(Err(reason))` when its arrays did not read though its
/// checksum holds).
pub type Claimed<T> = (Snapshot, Option<Result<T, String>>);

/// [`load_snapshot`], with the section under `tag` handed to its owner's `read`
/// once its checksum holds, so that its arrays are borrowed from the mapped
/// file ([`SectionReader::take_array`]) instead of kept as a buffer of bytes
/// (40 MiB for the router's preparation of a metro area). The spatial index is
/// built on another thread meanwhile.
pub fn load_snapshot_claiming<T, F>(path: &Path, tag: [u8; 8], read: F) -> Result<Claimed<T>>
where
    T: Send,
    F: FnOnce(&mut SectionReader<'_>) -> Result<T, String> + Send,
{
    load(path, Some((tag, read)))
}

fn load<T, F>(path: &Path, claim: Option<([u8; 8], F)>) -> Result<Claimed<T>>
where
    T: Send,
    F: FnOnce(&mut SectionReader<'_>) -> Result<T, String> + Send,
{
    let io = |e: std::io::Error| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let fault = |fault| match fault {
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
    };
    // Too short to hold a header: nothing to map (an empty file cannot be).
    if file_len < HEADER_LEN as u64 {
        return Err(fault(Fault::NotSnapshot));
    }
    let map = map_file(&file).map_err(io)?;
    decode(&map, claim).map_err(fault)
}

enum Fault {
    NotSnapshot,
    Version(u32),
    Corrupt(String),
}

/// Where a block of the file lies, and the checksum its header gives.
struct Block {
    /// `None` for the graph's payload.
    tag: Option<[u8; 8]>,
    at: usize,
    len: usize,
    crc: u32,
}

impl Block {
    fn name(&self) -> String {
        self.tag.as_ref().map_or("payload".to_owned(), tag_name)
    }
}

/// The header, the graph (its checksum checked and its indexes), then the
/// sections' checksums and the claimed section's reader beside the spatial
/// index build.
fn decode<T, F>(map: &MappedFile, claim: Option<([u8; 8], F)>) -> Result<Claimed<T>, Fault>
where
    T: Send,
    F: FnOnce(&mut SectionReader<'_>) -> Result<T, String> + Send,
{
    let bytes: &[u8] = map.get();
    let (payload, sections) = layout(bytes)?;
    check_crc(bytes, &payload)?;
    let mut graph = read_arrays(&mut SectionReader::new(block_bytes(bytes, &payload)))
        .map_err(|_| Fault::Corrupt("payload ends inside an array".into()))?;
    check_consistent(&graph).map_err(Fault::Corrupt)?;
    let (index, sections) = rayon::join(
        || SpatialIndex::build(&graph),
        || read_sections(map, &sections, claim),
    );
    graph.index = index;
    let (sections, claimed) = sections?;
    Ok((Snapshot { graph, sections }, claimed))
}

/// Reads the header and the section headers: the payload's block and the
/// sections', each inside the file, a tag at most once, padding zero.
fn layout(bytes: &[u8]) -> Result<(Block, Vec<Block>), Fault> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(Fault::NotSnapshot);
    };
    if &header[..8] != MAGIC {
        return Err(Fault::NotSnapshot);
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let version = u32_at(8);
    if version != SNAPSHOT_VERSION {
        return Err(Fault::Version(version));
    }
    if u32_at(12) != ENDIAN_MARK {
        return Err(Fault::Corrupt(
            "written on a machine of other byte order".into(),
        ));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&header[16..24]);
    let payload_len = u64::from_le_bytes(len_bytes);
    let after_header = (bytes.len() - HEADER_LEN) as u64;
    if u32_at(28) != 0 {
        return Err(Fault::Corrupt(
            "the header's reserved word is not zero".into(),
        ));
    }
    if after_header < payload_len {
        return Err(Fault::Corrupt(format!(
            "payload is {after_header} bytes, header says {payload_len}; truncated?"
        )));
    }
    let payload = Block {
        tag: None,
        at: HEADER_LEN,
        len: payload_len as usize,
        crc: u32_at(24),
    };
    let mut at = padded(bytes, payload.at + payload.len)?;
    let mut sections: Vec<Block> = Vec::new();
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + SECTION_HEADER_LEN) else {
            return Err(Fault::Corrupt("file ends inside a section header".into()));
        };
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&head[..8]);
        let name = tag_name(&tag);
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[8..16]);
        let len = u64::from_le_bytes(len);
        let crc = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        let left = bytes.len() - at - SECTION_HEADER_LEN;
        if len > left as u64 {
            return Err(Fault::Corrupt(format!(
                "section `{name}` says {len} bytes, the file ends before; truncated?"
            )));
        }
        if sections.iter().any(|s| s.tag == Some(tag)) {
            return Err(Fault::Corrupt(format!("section `{name}` appears twice")));
        }
        let section = Block {
            tag: Some(tag),
            at: at + SECTION_HEADER_LEN,
            len: len as usize,
            crc,
        };
        at = padded(bytes, section.at + section.len)?;
        sections.push(section);
    }
    Ok((payload, sections))
}

/// Where the next block starts after a block that ends at `end`: at the next
/// multiple of [`ALIGN`], the bytes between zero.
fn padded(bytes: &[u8], end: usize) -> Result<usize, Fault> {
    let next = end.next_multiple_of(ALIGN);
    match bytes.get(end..next) {
        Some(pad) if pad.iter().all(|&b| b == 0) => Ok(next),
        Some(_) => Err(Fault::Corrupt("padding between blocks is not zero".into())),
        None => Err(Fault::Corrupt(
            "file ends inside the padding after a block; truncated?".into(),
        )),
    }
}

fn block_bytes<'a>(bytes: &'a [u8], block: &Block) -> &'a [u8] {
    &bytes[block.at..block.at + block.len]
}

/// Bytes per piece of a block whose CRC-32 is computed on its own, the pieces'
/// then combined: large enough that combining costs nothing beside it.
const CRC_PIECE: usize = 1 << 22;

/// A block's checksum, its pieces hashed in parallel.
fn check_crc(bytes: &[u8], block: &Block) -> Result<(), Fault> {
    let crc = block_bytes(bytes, block)
        .par_chunks(CRC_PIECE)
        .map(|piece| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(piece);
            hasher
        })
        .reduce(crc32fast::Hasher::new, |mut a, b| {
            a.combine(&b);
            a
        })
        .finalize();
    if crc == block.crc {
        return Ok(());
    }
    Err(Fault::Corrupt(match block.tag {
        None => "checksum mismatch".into(),
        Some(_) => format!("section `{}`: checksum mismatch", block.name()),
    }))
}

fn read_arrays(r: &mut SectionReader<'_>) -> Result<RoadGraph, String> {
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
        return Err("limit arrays differ in length".into());
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
    Ok(graph)
}

/// The sections, each checked against its checksum (in file order: the first
/// damaged one is named). The claimed one goes to its owner's reader, its
/// arrays borrowed from the map; the others are kept as bytes of the map.
fn read_sections<T, F>(
    map: &MappedFile,
    blocks: &[Block],
    mut claim: Option<([u8; 8], F)>,
) -> Result<(Sections, Option<Result<T, String>>), Fault>
where
    F: FnOnce(&mut SectionReader<'_>) -> Result<T, String>,
{
    let bytes: &[u8] = map.get();
    let checked: Vec<Result<(), Fault>> = blocks
        .par_iter()
        .map(|block| check_crc(bytes, block))
        .collect();
    checked.into_iter().collect::<Result<(), Fault>>()?;
    let mut sections = Sections::default();
    let mut claimed = None;
    for block in blocks {
        let Some(tag) = block.tag else { continue };
        let kept = match claim.take_if(|(claimed_tag, _)| *claimed_tag == tag) {
            Some((_, read)) => {
                let mut reader = SectionReader::mapped(map, block.at, block_bytes(bytes, block));
                claimed = Some(read(&mut reader));
                None
            }
            None => Some(Array::mapped(map, block.at, block.len).ok_or_else(|| {
                Fault::Corrupt(format!("section `{}` lies outside the file", block.name()))
            })?),
        };
        sections.entries.push((tag, kept));
    }
    Ok((sections, claimed))
}

/// Appends an array the way snapshots store them: zero bytes up to a multiple of
/// 8 from the start of `out`, its element count (`u64`), then its raw
/// little-endian elements. Sections use it too (`out` holding the section's
/// bytes from its start), and read the arrays back with [`SectionReader`].
pub fn put_array<T: bytemuck::Pod>(out: &mut Vec<u8>, items: &[T]) {
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(items));
}

#[cfg(test)]
mod tests;
