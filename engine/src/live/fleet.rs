//! What one engine learned from its own trucks that every engine of the fleet
//! should learn too: the edge passages its traffic model took in, and the
//! outcomes its ETA calibrator learned from (closed predictions, finished
//! stalls and dwells, where arrivals fell in their windows). With several nodes each engine sees only its own
//! partitions' trucks; exchanging these batches makes every node's traffic
//! metric and ETA window reflect the whole fleet.
//!
//! The wire format is ours, small and checked: a fixed header (a magic, the
//! graph's routing fingerprint and edge count, so that a node on another map
//! refuses the batch instead of learning nonsense), then fixed-size records.
//! A passage costs 20 bytes, an outcome or a window 32. A batch of the first
//! format (`TRKFL1`, without windows) is refused as not a batch: nodes of one
//! fleet run one version. Decoding never panics: a short, long
//! or inconsistent message is an error naming what is wrong.

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, RoadGraph};

use crate::eta::{Horizon, WindowOutcome};
use crate::traffic::SpeedObservation;

const MAGIC: &[u8; 6] = b"TRKFL2";
const HEADER_LEN: usize = 6 + 4 + 4 + 5 * 4;
const PASSAGE_LEN: usize = 4 + 8 + 4 + 4;
const OUTCOME_LEN: usize = 8 + 8 + 8 + 8;

/// One engine's lessons since it last handed them out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetLearning {
    /// Edge passages (what the traffic model learns speeds from).
    pub passages: Vec<SpeedObservation>,
    /// Closed predictions and the drive time they turned out to need.
    pub outcomes: Vec<(Horizon, f64)>,
    /// Finished stalls, seconds.
    pub stalls_s: Vec<f64>,
    /// Finished dwells at stops, seconds.
    pub dwells_s: Vec<f64>,
    /// Where arrivals fell in the windows published before them.
    pub windows: Vec<WindowOutcome>,
}

/// Which map a batch was learned on: batches of another map are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapIdentity {
    pub routing_fingerprint: u32,
    pub n_edges: u32,
}

impl MapIdentity {
    pub fn of(graph: &RoadGraph) -> MapIdentity {
        MapIdentity {
            routing_fingerprint: graph.routing_fingerprint(),
            n_edges: u32::try_from(graph.n_edges()).unwrap_or(u32::MAX),
        }
    }
}

/// Why a fleet batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetDecodeError {
    #[error("not a fleet-learning batch (bad magic or shorter than its header)")]
    NotABatch,
    #[error("learned on another map (fingerprint {theirs:#010x}, ours {ours:#010x})")]
    OtherMap { theirs: u32, ours: u32 },
    #[error("{expected} bytes expected from the header's counts, {actual} received")]
    Length { expected: usize, actual: usize },
    #[error("record {index}: {reason}")]
    BadRecord { index: usize, reason: &'static str },
}

impl FleetLearning {
    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
            && self.outcomes.is_empty()
            && self.stalls_s.is_empty()
            && self.dwells_s.is_empty()
            && self.windows.is_empty()
    }

    /// Records of every kind.
    pub fn len(&self) -> usize {
        self.passages.len()
            + self.outcomes.len()
            + self.stalls_s.len()
            + self.dwells_s.len()
            + self.windows.len()
    }

    /// Appends `other` (a later batch) to this one.
    pub fn extend(&mut self, other: FleetLearning) {
        self.passages.extend(other.passages);
        self.outcomes.extend(other.outcomes);
        self.stalls_s.extend(other.stalls_s);
        self.dwells_s.extend(other.dwells_s);
        self.windows.extend(other.windows);
    }

    /// The batch as bytes for the fleet topic.
    pub fn encode(&self, map: MapIdentity) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_LEN
                + self.passages.len() * PASSAGE_LEN
                + (self.outcomes.len() + self.windows.len()) * OUTCOME_LEN
                + (self.stalls_s.len() + self.dwells_s.len()) * 8,
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&map.routing_fingerprint.to_le_bytes());
        out.extend_from_slice(&map.n_edges.to_le_bytes());
        for n in [
            self.passages.len(),
            self.outcomes.len(),
            self.stalls_s.len(),
            self.dwells_s.len(),
            self.windows.len(),
        ] {
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
        }
        for p in &self.passages {
            let duration_ms = (p.exited_at - p.entered_at).num_milliseconds();
            out.extend_from_slice(&p.edge.0.to_le_bytes());
            out.extend_from_slice(&p.entered_at.timestamp_millis().to_le_bytes());
            out.extend_from_slice(
                &u32::try_from(duration_ms.max(0))
                    .unwrap_or(u32::MAX)
                    .to_le_bytes(),
            );
            out.extend_from_slice(&(p.distance_m as f32).to_le_bytes());
        }
        let put = |out: &mut Vec<u8>, h: Horizon, value: f64| {
            for word in [h.to_go_s.to_bits(), h.uncertain_s.to_bits(), h.trip] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&value.to_le_bytes());
        };
        for &(h, actual_s) in &self.outcomes {
            put(&mut out, h, actual_s);
        }
        for s in self.stalls_s.iter().chain(&self.dwells_s) {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for w in &self.windows {
            put(&mut out, w.predicted, w.score);
        }
        out
    }

    /// Reads a batch learned on `map`; anything else is refused whole.
    pub fn decode(bytes: &[u8], map: MapIdentity) -> Result<FleetLearning, FleetDecodeError> {
        let mut r = Reader { bytes, at: 0 };
        if bytes.len() < HEADER_LEN || r.take(6) != Some(MAGIC.as_slice()) {
            return Err(FleetDecodeError::NotABatch);
        }
        let theirs = r.u32();
        let n_edges = r.u32();
        if theirs != map.routing_fingerprint || n_edges != map.n_edges {
            return Err(FleetDecodeError::OtherMap {
                theirs,
                ours: map.routing_fingerprint,
            });
        }
        let counts = [r.u32(), r.u32(), r.u32(), r.u32(), r.u32()].map(|n| n as usize);
        let expected = HEADER_LEN
            + counts[0] * PASSAGE_LEN
            + (counts[1] + counts[4]) * OUTCOME_LEN
            + (counts[2] + counts[3]) * 8;
        if bytes.len() != expected {
            return Err(FleetDecodeError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        let bad = |index, reason| FleetDecodeError::BadRecord { index, reason };
        let mut learning = FleetLearning::default();
        for index in 0..counts[0] {
            let edge = r.u32();
            let entered_ms = r.i64();
            let duration_ms = r.u32();
            let distance_m = f64::from(r.f32());
            if edge >= map.n_edges {
                return Err(bad(index, "edge outside the map"));
            }
            if !(distance_m.is_finite() && distance_m >= 0.0) {
                return Err(bad(index, "distance not a finite non-negative number"));
            }
            let entered_at = DateTime::<Utc>::from_timestamp_millis(entered_ms)
                .ok_or(bad(index, "entry time out of range"))?;
            let exited_at = entered_at
                .checked_add_signed(chrono::Duration::milliseconds(i64::from(duration_ms)))
                .ok_or(bad(index, "exit time out of range"))?;
            learning.passages.push(SpeedObservation {
                edge: EdgeId(edge),
                entered_at,
                exited_at,
                distance_m,
            });
        }
        for index in 0..counts[1] {
            let outcome = r.horizon_record().ok_or(bad(index, "outcome not finite"))?;
            learning.outcomes.push(outcome);
        }
        for (count, into) in [
            (counts[2], &mut learning.stalls_s),
            (counts[3], &mut learning.dwells_s),
        ] {
            for index in 0..count {
                let s = r.f64();
                if !(s.is_finite() && s >= 0.0) {
                    return Err(bad(index, "duration not a finite non-negative number"));
                }
                into.push(s);
            }
        }
        for index in 0..counts[4] {
            let (predicted, score) = r.horizon_record().ok_or(bad(index, "window not finite"))?;
            learning.windows.push(WindowOutcome { predicted, score });
        }
        Ok(learning)
    }
}

/// Little-endian reads from a buffer whose length was checked beforehand
/// (a read past the end yields zeros rather than panicking).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(slice)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .unwrap_or([0; N])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.array())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.array())
    }

    /// A prediction and a value (an outcome's actual time to go, a window's
    /// score); `None` when any of them is not finite.
    fn horizon_record(&mut self) -> Option<(Horizon, f64)> {
        let to_go_s = f64::from_bits(self.u64());
        let uncertain_s = f64::from_bits(self.u64());
        let trip = self.u64();
        let value = self.f64();
        (to_go_s.is_finite() && uncertain_s.is_finite() && value.is_finite()).then_some((
            Horizon {
                to_go_s,
                uncertain_s,
                trip,
            },
            value,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: MapIdentity = MapIdentity {
        routing_fingerprint: 0xdead_beef,
        n_edges: 10,
    };

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_760_000_000 + s, 0).expect("a time")
    }

    fn sample() -> FleetLearning {
        FleetLearning {
            passages: vec![SpeedObservation {
                edge: EdgeId(7),
                entered_at: at(0),
                exited_at: at(12),
                distance_m: 150.5,
            }],
            outcomes: vec![(
                Horizon {
                    to_go_s: 1800.0,
                    uncertain_s: 1200.0,
                    trip: 42,
                },
                1950.0,
            )],
            stalls_s: vec![300.0],
            dwells_s: vec![1500.0, 900.0],
            windows: vec![WindowOutcome {
                predicted: Horizon {
                    to_go_s: 600.0,
                    uncertain_s: 600.0,
                    trip: 43,
                },
                score: -0.4,
            }],
        }
    }

    #[test]
    fn a_batch_round_trips() {
        let learning = sample();
        let bytes = learning.encode(MAP);
        assert_eq!(
            bytes.len(),
            HEADER_LEN + PASSAGE_LEN + 2 * OUTCOME_LEN + 3 * 8
        );
        assert_eq!(FleetLearning::decode(&bytes, MAP), Ok(learning));
        let empty = FleetLearning::default().encode(MAP);
        assert_eq!(
            FleetLearning::decode(&empty, MAP),
            Ok(FleetLearning::default())
        );
    }

    #[test]
    fn another_map_a_cut_message_and_junk_are_refused() {
        let bytes = sample().encode(MAP);
        let other = MapIdentity {
            routing_fingerprint: 1,
            ..MAP
        };
        assert!(matches!(
            FleetLearning::decode(&bytes, other),
            Err(FleetDecodeError::OtherMap { .. })
        ));
        assert!(matches!(
            FleetLearning::decode(&bytes[..bytes.len() - 1], MAP),
            Err(FleetDecodeError::Length { .. })
        ));
        assert_eq!(
            FleetLearning::decode(b"{\"json\": true}", MAP),
            Err(FleetDecodeError::NotABatch)
        );
        let mut outside = sample();
        outside.passages[0].edge = EdgeId(10);
        assert!(matches!(
            FleetLearning::decode(&outside.encode(MAP), MAP),
            Err(FleetDecodeError::BadRecord { index: 0, .. })
        ));
        let mut nan = sample();
        nan.dwells_s[1] = f64::NAN;
        assert!(FleetLearning::decode(&nan.encode(MAP), MAP).is_err());
    }

    #[test]
    fn no_byte_string_panics_the_decoder() {
        let bytes = sample().encode(MAP);
        for cut in 0..bytes.len() {
            let _ = FleetLearning::decode(&bytes[..cut], MAP);
            let mut flipped = bytes.clone();
            flipped[cut] ^= 0xff;
            let _ = FleetLearning::decode(&flipped, MAP);
        }
    }
}
