//! The engine's one error type. Bad telemetry is not an error (it is an outcome of
//! matching); errors here are misuse or invalid configuration.

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A status change that the order state machine does not allow.
    #[error(transparent)]
    StatusTransition(#[from] crate::order::StatusTransitionError),
    /// A configuration value out of its valid range; names the setting.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        setting: &'static str,
        reason: String,
    },
    /// A routing metric whose number of edge times is not the graph's edge count.
    #[error("metric has {found} edge times, the graph has {expected} edges")]
    MetricSize { expected: usize, found: usize },
    /// A stored router preparation made by another format version or for other
    /// turn costs: nothing is wrong with it, it just does not apply (build the
    /// router instead, and store a new one).
    #[error("the stored router preparation does not apply: {reason}")]
    StalePreparation { reason: String },
    /// A stored router preparation made for another graph than the one it came
    /// with: refused, the file was not written as one piece.
    #[error(
        "the stored router preparation was made for another graph (routing fingerprint {found:08x}, this graph's is {expected:08x})"
    )]
    PreparationForOtherGraph { found: u32, expected: u32 },
    /// A stored router preparation that fails its checks (a length, an index, a
    /// property the queries rely on); names what failed.
    #[error("the stored router preparation is corrupt: {reason}")]
    CorruptPreparation { reason: String },
    /// An edge id beyond the graph.
    #[error("edge {0} is not in the graph")]
    UnknownEdge(u32),
    /// An order stop with no road within the snapping radius.
    #[error("stop {stop_index} has no road within {radius_m} m")]
    StopOffRoad { stop_index: u32, radius_m: f64 },
    /// A trace file (CSV or GPX) that cannot be read; `line` is 1-based.
    #[error("trace line {line}: {reason}")]
    InvalidTrace { line: usize, reason: String },
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
