//! What the traffic model learns from: one vehicle's timed passage along one
//! directed edge. The matcher's [`Traversal`] converts into it; so can any other
//! source (a replayed history, a simulator), which is why the type stays this
//! small.

use chrono::{DateTime, Utc};
use road_graph::EdgeId;
use serde::{Deserialize, Serialize};

use crate::matching::Traversal;

/// A timed passage along (part of) one directed edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedObservation {
    pub edge: EdgeId,
    pub entered_at: DateTime<Utc>,
    pub exited_at: DateTime<Utc>,
    /// Metres driven on the edge between the two times (the whole edge's length
    /// for a full passage).
    pub distance_m: f64,
}

impl SpeedObservation {
    /// Time on the edge, seconds.
    pub fn duration_s(&self) -> f64 {
        (self.exited_at - self.entered_at).num_milliseconds() as f64 / 1000.0
    }

    /// Average speed of the passage, km/h (not a number when the duration is
    /// zero).
    pub fn speed_kph(&self) -> f64 {
        self.distance_m / self.duration_s() * 3.6
    }
}

impl From<&Traversal> for SpeedObservation {
    fn from(t: &Traversal) -> SpeedObservation {
        SpeedObservation {
            edge: t.edge,
            entered_at: t.entered_at,
            exited_at: t.exited_at,
            distance_m: t.distance_m(),
        }
    }
}

/// Why an observation did not become a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleRejection {
    /// The edge is not in the graph.
    UnknownEdge,
    /// Shorter than `min_duration_s` (or exited before entering).
    TooShort,
    /// Covers less than `min_coverage` of the edge.
    TooPartial,
    /// Slower than `min_speed_kph`: standing, not driving.
    Standing,
    /// Faster than `max_speed_kph`: a timing error.
    TooFast,
}

/// Running counts of what the model was fed, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCounters {
    pub accepted: u64,
    pub unknown_edge: u64,
    pub too_short: u64,
    pub too_partial: u64,
    pub standing: u64,
    pub too_fast: u64,
    /// External feed values that named no way of the graph.
    pub feed_unknown_way: u64,
}

impl TrafficCounters {
    pub(crate) fn count(&mut self, outcome: Result<(), SampleRejection>) {
        match outcome {
            Ok(()) => self.accepted += 1,
            Err(SampleRejection::UnknownEdge) => self.unknown_edge += 1,
            Err(SampleRejection::TooShort) => self.too_short += 1,
            Err(SampleRejection::TooPartial) => self.too_partial += 1,
            Err(SampleRejection::Standing) => self.standing += 1,
            Err(SampleRejection::TooFast) => self.too_fast += 1,
        }
    }
}
