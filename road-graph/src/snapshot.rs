//! Graph snapshots: the built graph as one versioned binary file, so a server starts
//! in milliseconds instead of re-importing OSM data.
//!
//! Layout (all little-endian): the magic `TRKGRAPH`, a format version (`u32`), an
//! endianness marker (`u32`), the payload length (`u64`) and its CRC-32 (`u32`), then
//! the payload: each array as an element count (`u64`) followed by its raw elements.
//! The spatial index is not stored: it is rebuilt from the geometry on load, which
//! costs less than reading it would.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::geo::E7;
use crate::graph::{EdgeId, NodeId, RestrictionKind, RoadGraph, TurnRestriction};
use crate::profile::TruckLimits;
use crate::spatial::SpatialIndex;

const MAGIC: &[u8; 8] = b"TRKGRAPH";
/// Bump on any change of layout or meaning.
pub const SNAPSHOT_VERSION: u32 = 2;
const ENDIAN_MARK: u32 = 0x0102_0304;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4;

/// Writes a graph snapshot to `path` (through a temporary file, so a crash never
/// leaves half a snapshot under the final name).
pub fn save_snapshot(graph: &RoadGraph, path: &Path) -> Result<()> {
    let mut payload = Vec::with_capacity(graph.heap_bytes() + 1024);
    put(&mut payload, &graph.node_coord);
    put(&mut payload, &graph.first_out);
    put(&mut payload, &graph.edge_head);
    put(&mut payload, &graph.edge_tail);
    put(&mut payload, &graph.edge_geom);
    put(&mut payload, &graph.edge_speed_kph);
    put(&mut payload, &graph.edge_class);
    put(&mut payload, &graph.edge_flags);
    put(&mut payload, &graph.geom_first);
    put(&mut payload, &graph.geom_points);
    put(&mut payload, &graph.geom_length_m);
    put(&mut payload, &graph.geom_way);
    put(&mut payload, &graph.way_ids);
    put(&mut payload, &graph.geom_edges);
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
    put(&mut payload, &limit_geom);
    put(&mut payload, &limit_values);
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
    put(&mut payload, &restrictions);

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

/// Loads a snapshot written by [`save_snapshot`], checking its version and checksum.
pub fn load_snapshot(path: &Path) -> Result<RoadGraph> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    decode(&bytes).map_err(|fault| match fault {
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

fn decode(bytes: &[u8]) -> Result<RoadGraph, Fault> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(Fault::NotSnapshot);
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
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
    len_bytes.copy_from_slice(&bytes[16..24]);
    let payload_len = u64::from_le_bytes(len_bytes);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != payload_len {
        return Err(Fault::Corrupt(format!(
            "payload is {} bytes, header says {payload_len}; truncated?",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != u32_at(24) {
        return Err(Fault::Corrupt("checksum mismatch".into()));
    }

    let mut r = Reader { rest: payload };
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
    Ok(graph)
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

fn put<T: bytemuck::Pod>(out: &mut Vec<u8>, items: &[T]) {
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(items));
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take<T: bytemuck::Pod>(&mut self) -> Result<Vec<T>, Fault> {
        let short = || Fault::Corrupt("payload ends inside an array".into());
        if self.rest.len() < 8 {
            return Err(short());
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&self.rest[..8]);
        let count = u64::from_le_bytes(count) as usize;
        let size = std::mem::size_of::<T>();
        let n_bytes = count.checked_mul(size).ok_or_else(short)?;
        let body = self.rest.get(8..8 + n_bytes).ok_or_else(short)?;
        let mut items = vec![T::zeroed(); count];
        bytemuck::cast_slice_mut::<T, u8>(&mut items).copy_from_slice(body);
        self.rest = &self.rest[8 + n_bytes..];
        Ok(items)
    }
}
