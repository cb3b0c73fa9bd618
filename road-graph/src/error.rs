//! The crate's one error type. Every variant names the file and the reason, so the
//! CLI can print it as one line.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing a graph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{}: not an OpenStreetMap PBF file", path.display())]
    NotPbf { path: PathBuf },
    #[error("{}: unreadable OSM PBF data ({reason}); is the file truncated?", path.display())]
    Pbf { path: PathBuf, reason: String },
    #[error("{}: not a tracker graph snapshot", path.display())]
    NotSnapshot { path: PathBuf },
    #[error("{}: snapshot format version {found}, this build reads version {expected}; rebuild it with `tracker graph build`", path.display())]
    SnapshotVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: corrupt snapshot ({reason}); rebuild it with `tracker graph build`", path.display())]
    CorruptSnapshot { path: PathBuf, reason: String },
    #[error("the map has no roads a truck may use")]
    EmptyGraph,
    /// A tile address out of range: asking again cannot help.
    #[error("tile {field} = {value} is out of range (0..={max})")]
    TileOutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("invalid H3 resolution {0} (0..=15)")]
    H3Resolution(u8),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
