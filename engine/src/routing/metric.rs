//! The routing metric: what one traversal of every directed edge costs, in integer
//! milliseconds, kept apart from the topology so that a traffic update replaces the
//! metric and never touches the graph or the contraction order.
//!
//! Integer milliseconds make every comparison exact: the customized hierarchy and a
//! plain Dijkstra add the same integers and must agree to the millisecond, which is
//! what the oracle tests check. Sums saturate at [`INFINITY_MS`], which also marks a
//! closed edge.
//!
//! Time of day: a [`WeeklyProfile`] gives each edge an hour-of-week speed shape (a
//! factor of the base speed for each of the 168 hours of a week). A metric for a
//! departure is the base metric scaled by the profile at the departure hour, for the
//! whole trip: a three-hour drive that leaves at 06:30 is timed with the 06:00
//! speeds all the way. [`WeeklyProfile::path_duration_ms`] re-times a found path
//! with the speeds of the hour in which each edge is reached, which is what an ETA
//! should use; the path itself is still the one that was fastest at departure.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike};
use road_graph::{EdgeId, RoadGraph};

use crate::error::{Error, Result};

/// "Unreachable": the weight of a closed edge and the value of any sum that reaches it.
pub const INFINITY_MS: u32 = u32::MAX;

/// The largest travel time of one open edge (about 18.6 hours): slower edges are
/// clamped, so that sums along long paths stay far from [`INFINITY_MS`].
pub const MAX_EDGE_MS: u32 = 1 << 26;

/// Travel time of `length_m` at `speed_kph`, rounded to whole milliseconds, at least
/// 1 ms (so that no edge is free) and at most [`MAX_EDGE_MS`]. A speed of zero or
/// less (or not a number) closes the edge.
pub fn travel_ms(length_m: f64, speed_kph: f64) -> u32 {
    if speed_kph.is_nan() || speed_kph <= 0.0 || !length_m.is_finite() {
        return INFINITY_MS;
    }
    let ms = (length_m.max(0.0) / (speed_kph / 3.6) * 1000.0).round();
    // `as` saturates for floats; the clamp keeps open edges finite and non-zero.
    (ms as u64).clamp(1, u64::from(MAX_EDGE_MS)) as u32
}

/// Per-edge travel times, indexed by [`EdgeId`]. Cheap to clone and to compare; the
/// router keeps the one it was customized with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    edge_ms: Vec<u32>,
}

impl Metric {
    /// Free-flow truck times from the profile speeds of the road graph.
    pub fn free_flow(graph: &RoadGraph) -> Metric {
        Metric {
            edge_ms: (0..graph.n_edges() as u32)
                .map(|e| {
                    let edge = EdgeId(e);
                    travel_ms(graph.edge_length_m(edge), graph.edge_speed_kph(edge))
                })
                .collect(),
        }
    }

    /// Times from one speed per edge (km/h; zero or less closes the edge).
    pub fn from_speeds_kph(graph: &RoadGraph, speeds_kph: &[f64]) -> Result<Metric> {
        check_len(graph, speeds_kph.len())?;
        Ok(Metric {
            edge_ms: speeds_kph
                .iter()
                .enumerate()
                .map(|(e, &kph)| travel_ms(graph.edge_length_m(EdgeId(e as u32)), kph))
                .collect(),
        })
    }

    /// Times given directly, one per edge, milliseconds. Zero becomes 1 ms and open
    /// times are clamped to [`MAX_EDGE_MS`]; [`INFINITY_MS`] closes an edge.
    pub fn from_edge_ms(graph: &RoadGraph, edge_ms: Vec<u32>) -> Result<Metric> {
        check_len(graph, edge_ms.len())?;
        let mut metric = Metric { edge_ms };
        for ms in &mut metric.edge_ms {
            *ms = clamp_ms(*ms);
        }
        Ok(metric)
    }

    /// Travel time of one edge, milliseconds ([`INFINITY_MS`] when closed).
    pub fn edge_ms(&self, edge: EdgeId) -> u32 {
        self.edge_ms.get(edge.idx()).copied().unwrap_or(INFINITY_MS)
    }

    /// All edge times, by edge index.
    pub fn as_slice(&self) -> &[u32] {
        &self.edge_ms
    }

    pub fn n_edges(&self) -> usize {
        self.edge_ms.len()
    }

    /// Sets one edge's time (clamped as in [`Metric::from_edge_ms`]).
    pub fn set_edge_ms(&mut self, edge: EdgeId, ms: u32) {
        if let Some(slot) = self.edge_ms.get_mut(edge.idx()) {
            *slot = clamp_ms(ms);
        }
    }
}

pub(crate) fn clamp_ms(ms: u32) -> u32 {
    if ms == INFINITY_MS {
        INFINITY_MS
    } else {
        ms.clamp(1, MAX_EDGE_MS)
    }
}

fn check_len(graph: &RoadGraph, len: usize) -> Result<()> {
    if len == graph.n_edges() {
        Ok(())
    } else {
        Err(Error::MetricSize {
            expected: graph.n_edges(),
            found: len,
        })
    }
}

/// The part of an edge's time up to `offset_m` from its tail, rounded down, so that
/// the time between two offsets on one edge is never negative.
pub(crate) fn partial_ms(edge_ms: u32, offset_m: f64, length_m: f64) -> u32 {
    if edge_ms == INFINITY_MS {
        return INFINITY_MS;
    }
    let fraction = if length_m > 0.0 {
        (offset_m / length_m).clamp(0.0, 1.0)
    } else {
        1.0
    };
    if fraction.is_nan() {
        return 0;
    }
    (f64::from(edge_ms) * fraction).floor() as u32
}

/// An hour of the week in local time: 0 is Monday 00:00–01:00, 167 is Sunday
/// 23:00–24:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourOfWeek(u8);

impl HourOfWeek {
    pub const HOURS: usize = 168;

    pub fn new(hour: u8) -> Option<HourOfWeek> {
        (usize::from(hour) < Self::HOURS).then_some(HourOfWeek(hour))
    }

    pub fn idx(self) -> usize {
        usize::from(self.0)
    }

    /// The hour of a local wall-clock time.
    pub fn from_local(t: NaiveDateTime) -> HourOfWeek {
        let day = t.weekday().num_days_from_monday();
        HourOfWeek((day * 24 + t.hour()) as u8)
    }

    /// The hour of a time with its own UTC offset, read on the clock of that offset
    /// (`2025-03-03T08:15:00+00:00` is Monday 08:00). Callers that know the map's
    /// time zone convert to it first.
    pub fn from_time(t: DateTime<FixedOffset>) -> HourOfWeek {
        HourOfWeek::from_local(t.naive_local())
    }

    /// The next hour, wrapping from Sunday night to Monday morning.
    pub fn next(self) -> HourOfWeek {
        HourOfWeek(((usize::from(self.0) + 1) % Self::HOURS) as u8)
    }
}

/// Index of a speed shape in a [`WeeklyProfile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeId(pub u16);

/// Hour-of-week speed shapes, shared by many edges: each shape gives, for every hour
/// of the week, the speed as a percentage of the base speed (100 = base, 50 = half
/// speed, 0 = closed). Edges point at a shape, so the memory is two bytes per edge
/// plus 168 bytes per shape, however many edges share it. The traffic model learns
/// the shapes; with none learned every edge has the flat shape 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyProfile {
    shapes: Vec<[u8; HourOfWeek::HOURS]>,
    edge_shape: Vec<u16>,
}

impl WeeklyProfile {
    /// The flat profile: every edge at 100 % of its base speed at every hour.
    pub fn flat(graph: &RoadGraph) -> WeeklyProfile {
        WeeklyProfile {
            shapes: vec![[100; HourOfWeek::HOURS]],
            edge_shape: vec![0; graph.n_edges()],
        }
    }

    /// Adds a shape (percent of base speed per hour of week, at most 250).
    pub fn add_shape(&mut self, percent: [u8; HourOfWeek::HOURS]) -> Result<ShapeId> {
        if let Some(bad) = percent.iter().find(|&&p| p > 250) {
            return Err(Error::InvalidConfig {
                setting: "profile shape",
                reason: format!("{bad} % of the base speed is above the 250 % limit"),
            });
        }
        let id = u16::try_from(self.shapes.len()).map_err(|_| Error::InvalidConfig {
            setting: "profile shape",
            reason: "more than 65,536 shapes".to_string(),
        })?;
        self.shapes.push(percent);
        Ok(ShapeId(id))
    }

    pub fn set_edge_shape(&mut self, edge: EdgeId, shape: ShapeId) -> Result<()> {
        if usize::from(shape.0) >= self.shapes.len() {
            return Err(Error::InvalidConfig {
                setting: "profile shape",
                reason: format!("shape {} does not exist", shape.0),
            });
        }
        let slot = self
            .edge_shape
            .get_mut(edge.idx())
            .ok_or(Error::InvalidConfig {
                setting: "profile edge",
                reason: format!("edge {} is not in the graph", edge.0),
            })?;
        *slot = shape.0;
        Ok(())
    }

    /// Speed of an edge at an hour, as a percentage of its base speed.
    pub fn percent(&self, edge: EdgeId, hour: HourOfWeek) -> u8 {
        let shape = self.edge_shape.get(edge.idx()).copied().unwrap_or(0);
        self.shapes
            .get(usize::from(shape))
            .map(|s| s[hour.idx()])
            .unwrap_or(100)
    }

    fn scale(&self, edge: EdgeId, base_ms: u32, hour: HourOfWeek) -> u32 {
        let percent = self.percent(edge, hour);
        if base_ms == INFINITY_MS || percent == 0 {
            return INFINITY_MS;
        }
        // Time is inversely proportional to speed.
        let ms = (u64::from(base_ms) * 100).div_ceil(u64::from(percent));
        clamp_ms(ms.min(u64::from(MAX_EDGE_MS)) as u32)
    }

    /// The metric at one hour: every edge of `base` at its shape's speed then.
    pub fn metric_at(&self, base: &Metric, hour: HourOfWeek) -> Metric {
        Metric {
            edge_ms: base
                .edge_ms
                .iter()
                .enumerate()
                .map(|(e, &ms)| self.scale(EdgeId(e as u32), ms, hour))
                .collect(),
        }
    }

    /// Times a path (its edges in driving order, the first entered `start_s`
    /// seconds into hour `depart`), using for each edge the speed of the hour in
    /// which the truck enters it. Returns milliseconds, [`INFINITY_MS`] if the path
    /// meets a closed edge.
    pub fn path_duration_ms(
        &self,
        base: &Metric,
        edges: &[EdgeId],
        depart: HourOfWeek,
        start_s: u32,
    ) -> u32 {
        const HOUR_MS: u64 = 3_600_000;
        let mut hour = depart;
        let mut into_hour_ms = u64::from(start_s.min(3599)) * 1000;
        let mut total_ms: u64 = 0;
        for &edge in edges {
            let ms = self.scale(edge, base.edge_ms(edge), hour);
            if ms == INFINITY_MS {
                return INFINITY_MS;
            }
            total_ms += u64::from(ms);
            into_hour_ms += u64::from(ms);
            while into_hour_ms >= HOUR_MS {
                into_hour_ms -= HOUR_MS;
                hour = hour.next();
            }
        }
        total_ms.min(u64::from(INFINITY_MS - 1)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travel_time_is_length_over_speed_in_whole_milliseconds() {
        assert_eq!(travel_ms(100.0, 36.0), 10_000);
        assert_eq!(travel_ms(0.0, 50.0), 1, "no edge is free");
        assert_eq!(
            travel_ms(100.0, 0.0),
            INFINITY_MS,
            "zero speed closes the edge"
        );
        assert_eq!(travel_ms(1e12, 1.0), MAX_EDGE_MS);
    }

    #[test]
    fn partial_times_never_exceed_the_edge_and_grow_with_the_offset() {
        assert_eq!(partial_ms(1000, 0.0, 10.0), 0);
        assert_eq!(partial_ms(1000, 5.0, 10.0), 500);
        assert_eq!(partial_ms(1000, 20.0, 10.0), 1000);
        assert!(partial_ms(999, 3.3, 10.0) <= partial_ms(999, 3.4, 10.0));
    }

    #[test]
    fn hour_of_week_starts_on_monday_midnight_local() {
        let t = DateTime::parse_from_rfc3339("2025-03-03T08:15:00+01:00").expect("valid");
        assert_eq!(
            HourOfWeek::from_time(t),
            HourOfWeek(8),
            "a Monday, read on its own clock"
        );
        let sunday = DateTime::parse_from_rfc3339("2025-03-09T23:59:00Z").expect("valid");
        assert_eq!(HourOfWeek::from_time(sunday), HourOfWeek(167));
        assert_eq!(HourOfWeek(167).next(), HourOfWeek(0));
        assert!(HourOfWeek::new(168).is_none());
    }
}
