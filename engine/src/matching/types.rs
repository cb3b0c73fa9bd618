//! The matcher's public vocabulary: what goes in (a [`Fix`]) and what comes out
//! (a [`FixMatch`] per fix, provisional then final, and [`Traversal`]s of edges with
//! entry and exit times, which feed the traffic model).

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, LatLon};
use serde::{Deserialize, Serialize};

use crate::position::Position;

/// One GPS fix as the matcher needs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// Device time, UTC.
    pub time: DateTime<Utc>,
    pub pos: LatLon,
    /// Horizontal accuracy (1 sigma) reported by the device, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

impl From<&Position> for Fix {
    fn from(p: &Position) -> Fix {
        Fix {
            time: p.time,
            pos: LatLon::new(p.lat, p.lon),
            accuracy_m: p.accuracy_m,
        }
    }
}

/// A trace thinned to one fix per `every_s` seconds: each kept fix is at
/// least `every_s` after the last one kept (a millisecond of slack for
/// rounding). How `match-eval` samples a 1 s track at 15, 30 or 60 s.
pub fn thin_fixes(fixes: &[Fix], every_s: f64) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    for f in fixes {
        let keep = out.last().is_none_or(|last| {
            (f.time - last.time).num_milliseconds() as f64 / 1000.0 >= every_s - 1e-6
        });
        if keep {
            out.push(*f);
        }
    }
    out
}

/// Where a fix was matched on the road graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchedPoint {
    pub edge: EdgeId,
    /// Distance from the edge's tail to `point` along the edge, metres.
    pub offset_m: f64,
    /// The snapped position on the road.
    pub point: LatLon,
    /// Distance from the GPS position to `point`, metres.
    pub distance_m: f64,
    /// Share of the matcher's belief on this candidate among the fix's candidates
    /// when it was seen (forward filter, in `0..=1`).
    pub confidence: f64,
}

/// Why a fix has no place on the road graph. Bad telemetry is an outcome, not an
/// error: every fix gets exactly one final outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// Latitude or longitude not finite or out of range.
    InvalidPosition,
    /// No road within the search radius.
    NoRoadNearby,
    /// Same time as the previous fix (a resend).
    Duplicate,
    /// Older than a fix already accepted and too late to reorder.
    OutOfOrder,
}

impl UnmatchedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmatchedReason::InvalidPosition => "invalid_position",
            UnmatchedReason::NoRoadNearby => "no_road_nearby",
            UnmatchedReason::Duplicate => "duplicate",
            UnmatchedReason::OutOfOrder => "out_of_order",
        }
    }
}

/// The outcome of one fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixOutcome {
    Matched(MatchedPoint),
    Unmatched { reason: UnmatchedReason },
}

impl FixOutcome {
    pub fn matched(&self) -> Option<&MatchedPoint> {
        match self {
            FixOutcome::Matched(m) => Some(m),
            FixOutcome::Unmatched { .. } => None,
        }
    }
}

/// The outcome of one fix, numbered in the order the vehicle's fixes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FixMatch {
    /// Arrival number of the fix in this vehicle's stream, from 0.
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub outcome: FixOutcome,
}

/// A vehicle's passage along one directed edge, for the traffic model.
///
/// Consecutive traversals of one chain are contiguous in driving order. The first
/// and last traversal of a chain are usually partial (the vehicle started or was
/// last seen mid-edge); `whole_edge` says when the vehicle was seen to run the full
/// edge, which is what a per-edge speed estimate should use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Traversal {
    pub edge: EdgeId,
    pub entered_at: DateTime<Utc>,
    pub exited_at: DateTime<Utc>,
    /// Offsets from the edge's tail where the passage began and ended, metres.
    pub from_offset_m: f64,
    pub to_offset_m: f64,
    pub whole_edge: bool,
    /// The matched chain it belongs to; a chain ends at a gap in the data or where
    /// no route joins two fixes.
    pub chain: u32,
}

impl Traversal {
    /// Time spent on the edge, seconds.
    pub fn duration_s(&self) -> f64 {
        (self.exited_at - self.entered_at).num_milliseconds() as f64 / 1000.0
    }

    /// Metres driven on the edge.
    pub fn distance_m(&self) -> f64 {
        (self.to_offset_m - self.from_offset_m).max(0.0)
    }
}

/// What one call to the matcher produced. The caller owns it and clears it
/// (`MatchEvents::clear`) when it has handled the events, so a hot loop reuses
/// the buffers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchEvents {
    /// The best current guess for the fix just pushed (and, after a reorder, for
    /// the fixes replayed): available at once, may still change.
    pub provisional: Vec<FixMatch>,
    /// Final outcomes, each fix exactly once, with a bounded lag. Unmatched fixes
    /// are final at once, so `seq` order is not guaranteed across them.
    pub finalized: Vec<FixMatch>,
    /// Edges the vehicle has left (or that a chain ended on), in driving order.
    pub traversals: Vec<Traversal>,
}

impl MatchEvents {
    pub fn clear(&mut self) {
        self.provisional.clear();
        self.finalized.clear();
        self.traversals.clear();
    }
}

/// Running counts of what a vehicle's stream contained, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCounters {
    pub fixes: u64,
    pub matched: u64,
    pub invalid: u64,
    pub no_road_nearby: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Out-of-order fixes put back in place (the pending window was replayed).
    pub reordered: u64,
    /// Fixes within the stationary radius of the previous one: matched to the same
    /// place without a new HMM step.
    pub stationary: u64,
    /// Chains ended by a gap in time or by a fix no route could reach.
    pub breaks: u64,
    /// Windows finalized by the lag limit rather than by convergence.
    pub forced: u64,
}
