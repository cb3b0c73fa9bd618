//! The road graph for trucks, built from OpenStreetMap.
//!
//! Reads an OSM PBF extract through a truck profile (which roads, which direction,
//! how fast, which restrictions), splits ways into edges at intersections, keeps the
//! largest strongly connected component (or every component, for map matching on
//! clipped extracts), and serves the result: topology in
//! compressed sparse row form, geometry per edge, a spatial index for nearest-edge
//! queries, H3 cells, and versioned snapshots that load in milliseconds. The
//! basemap (water, parks, built-up land, places, road names) comes from the same
//! file and is cut into Mapbox Vector Tiles on demand.
//!
//! This crate does no I/O beyond reading and writing the files it is asked to, has
//! no clock and no async code.

mod basemap;
mod build;
mod cells;
mod drawn;
mod error;
mod geo;
mod graph;
mod osm;
mod profile;
mod scc;
mod snapshot;
mod spatial;

use std::path::Path;

pub use basemap::{
    AreaKind, BASEMAP_SECTION, Basemap, BasemapInput, LineKind, MAX_TILE_ZOOM, PlaceKind,
    TILE_EXTENT, TileId, cut_tile, read_basemap,
};
pub use build::{ImportReport, build_graph, build_graph_keeping};
pub use cells::{cell_of, h3_resolution};
pub use drawn::{DRAWN_ORIGIN, DrawnMap};
pub use error::{Error, Result};
pub use geo::{
    BBox, E7, EARTH_RADIUS_M, LatLon, LocalPlane, PolylineProjection, SegmentProjection,
    bearing_deg, haversine_m, polyline_length_m, project_on_polyline, project_on_segment,
};
pub use graph::{EdgeId, GeomId, GeomPoints, NodeId, RestrictionKind, RoadGraph, TurnRestriction};
pub use osm::{
    ImportStage, Member, MemberKind, OsmData, OsmRestriction, OsmWay, ReadCounts, read_pbf,
};
pub use profile::{
    Components, EdgeFlags, ProfileConfig, Rejection, RoadClass, TruckLimits, WayProfile,
    evaluate_way, parse_length_m, parse_maxspeed_kph, parse_weight_kg,
};
pub use snapshot::{
    Array, Claimed, SNAPSHOT_VERSION, Section, SectionReader, Sections, Snapshot, is_snapshot,
    load_snapshot, load_snapshot_claiming, put_array, save_snapshot, tag_name,
};
pub use spatial::EdgeCandidate;

pub use h3o::{CellIndex, Resolution};

/// Imports a PBF file: reads it through the profile and builds the graph.
pub fn import_pbf(
    path: &Path,
    config: &ProfileConfig,
    progress: &mut dyn FnMut(ImportStage),
) -> Result<(RoadGraph, ImportReport)> {
    let osm = read_pbf(path, config, progress)?;
    build_graph_keeping(&osm, config.components)
}

/// Opens a map: a snapshot (with its sections) when the file is one, otherwise a
/// PBF imported with the given profile (no sections). The report is `None` for a
/// snapshot.
pub fn open_map(
    path: &Path,
    config: &ProfileConfig,
    progress: &mut dyn FnMut(ImportStage),
) -> Result<(Snapshot, Option<ImportReport>)> {
    if is_snapshot(path) {
        Ok((load_snapshot(path)?, None))
    } else {
        let (graph, report) = import_pbf(path, config, progress)?;
        Ok((Snapshot::from(graph), Some(report)))
    }
}

/// [`open_map`], with the section under `tag` read by its owner straight from
/// the mapped snapshot ([`load_snapshot_claiming`]); nothing is claimed from a
/// PBF.
pub fn open_map_claiming<T, F>(
    path: &Path,
    config: &ProfileConfig,
    progress: &mut dyn FnMut(ImportStage),
    tag: [u8; 8],
    read: F,
) -> Result<(Claimed<T>, Option<ImportReport>)>
where
    T: Send,
    F: FnOnce(&mut SectionReader<'_>) -> Result<T, String> + Send,
{
    if is_snapshot(path) {
        Ok((load_snapshot_claiming(path, tag, read)?, None))
    } else {
        let (graph, report) = import_pbf(path, config, progress)?;
        Ok(((Snapshot::from(graph), None), Some(report)))
    }
}
