//! A routed leg and the truck's place on it: the route's edges with cumulative
//! time (on the metric it was last timed with), free-flow time and distance, so
//! that "how much is left from here" is a lookup, not a query. A new metric
//! re-times the same edges in one pass; only a material change, a truck off the
//! route or old age cause a new query.

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, LatLon, RoadGraph};

use crate::routing::{INFINITY_MS, Metric, Route};

/// A position on a leg: the index of the route edge and the offset on that edge
/// from its tail, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LegPosition {
    pub(crate) index: usize,
    pub(crate) offset_m: f64,
}

/// Time, free-flow time and distance along a leg (from its start, or left).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Along {
    pub(crate) time_s: f64,
    pub(crate) free_s: f64,
    pub(crate) distance_m: f64,
}

/// One route with its cumulative figures.
#[derive(Debug, Clone)]
pub(crate) struct RoutedLeg {
    pub(crate) route: Route,
    /// From the route's start to the end of its part of edge `i` (f32: plenty for
    /// a day's drive, half the memory).
    cum_s: Vec<f32>,
    cum_free_s: Vec<f32>,
    cum_m: Vec<f32>,
    /// The route's own duration over the sum of its edge times: turn penalties,
    /// spread along the route.
    scale: f64,
    /// The metric generation it was last timed with.
    pub(crate) generation: u64,
    pub(crate) routed_at: DateTime<Utc>,
}

impl RoutedLeg {
    pub(crate) fn new(
        graph: &RoadGraph,
        metric: &Metric,
        generation: u64,
        route: Route,
        now: DateTime<Utc>,
    ) -> RoutedLeg {
        let mut leg = RoutedLeg {
            route,
            cum_s: Vec::new(),
            cum_free_s: Vec::new(),
            cum_m: Vec::new(),
            scale: 1.0,
            generation,
            routed_at: now,
        };
        leg.time(graph, metric, generation);
        leg.scale = match leg.total().time_s {
            t if t > 0.0 && t.is_finite() => (leg.route.duration_s() / t).clamp(1.0, 10.0),
            _ => 1.0,
        };
        leg
    }

    /// The part of edge `i` the route drives: `(from_m, to_m)` from its tail.
    fn span(&self, graph: &RoadGraph, i: usize) -> (f64, f64) {
        let edge = self.route.edges[i];
        let begin = if i == 0 {
            self.route.from.offset_m
        } else {
            0.0
        };
        let end = if i + 1 == self.route.edges.len() {
            self.route.to.offset_m
        } else {
            graph.edge_length_m(edge)
        };
        (begin, end.max(begin))
    }

    /// (Re-)times the route's edges on a metric.
    pub(crate) fn time(&mut self, graph: &RoadGraph, metric: &Metric, generation: u64) {
        let n = self.route.edges.len();
        self.cum_s.clear();
        self.cum_free_s.clear();
        self.cum_m.clear();
        let (mut t, mut f, mut d) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let edge = self.route.edges[i];
            let (begin, end) = self.span(graph, i);
            let part = part_of(graph, edge, end - begin);
            let ms = metric.edge_ms(edge);
            t += if ms == INFINITY_MS {
                f64::INFINITY
            } else {
                f64::from(ms) / 1000.0 * part
            };
            f += graph.edge_free_flow_s(edge) * part;
            d += end - begin;
            self.cum_s.push(t as f32);
            self.cum_free_s.push(f as f32);
            self.cum_m.push(d as f32);
        }
        self.generation = generation;
    }

    pub(crate) fn total(&self) -> Along {
        self.at_index_end(self.route.edges.len().saturating_sub(1))
    }

    fn at_index_end(&self, i: usize) -> Along {
        Along {
            time_s: self.cum_s.get(i).copied().map_or(0.0, f64::from) * self.scale,
            free_s: self.cum_free_s.get(i).copied().map_or(0.0, f64::from),
            distance_m: self.cum_m.get(i).copied().map_or(0.0, f64::from),
        }
    }

    /// From the leg's start to a position on it.
    pub(crate) fn along(&self, graph: &RoadGraph, p: LegPosition) -> Along {
        let i = p.index.min(self.route.edges.len().saturating_sub(1));
        let before = if i == 0 {
            Along::default()
        } else {
            self.at_index_end(i - 1)
        };
        let end = self.at_index_end(i);
        let (begin, stop) = self.span(graph, i);
        let fraction = if stop > begin {
            ((p.offset_m - begin) / (stop - begin)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let lerp = |a: f64, b: f64| {
            if b.is_finite() {
                a + (b - a) * fraction
            } else {
                b
            }
        };
        Along {
            time_s: lerp(before.time_s, end.time_s),
            free_s: lerp(before.free_s, end.free_s),
            distance_m: lerp(before.distance_m, end.distance_m),
        }
    }

    /// From a position to the leg's end.
    pub(crate) fn left(&self, graph: &RoadGraph, p: LegPosition) -> Along {
        let total = self.total();
        let done = self.along(graph, p);
        Along {
            time_s: (total.time_s - done.time_s).max(0.0),
            free_s: (total.free_s - done.free_s).max(0.0),
            distance_m: (total.distance_m - done.distance_m).max(0.0),
        }
    }

    /// Where a matched position lies on the route, searching from edge `from`
    /// on; `None` when the route does not drive that edge ahead.
    pub(crate) fn locate(
        &self,
        edge: EdgeId,
        offset_m: f64,
        from: LegPosition,
        backtrack_m: f64,
    ) -> Option<LegPosition> {
        let edges = &self.route.edges;
        let start = from.index.min(edges.len());
        for (k, &e) in edges.iter().enumerate().skip(start) {
            if e != edge {
                continue;
            }
            if k == from.index && offset_m < from.offset_m {
                // Behind the truck on its own edge: noise within the tolerance,
                // a wrong way beyond it.
                if from.offset_m - offset_m <= backtrack_m {
                    return Some(from);
                }
                continue;
            }
            return Some(LegPosition { index: k, offset_m });
        }
        None
    }

    /// The route from a position to the leg's end, at most `max_points` points
    /// (evenly thinned), as `[lon, lat]` rounded to 1/[`ROUTE_STEPS_PER_DEGREE`]
    /// of a degree (about a metre): a drawing needs no more, and every ETA update carries
    /// this route to the store and to the pages, so its size is paid on every
    /// one.
    pub(crate) fn geometry_from(
        &self,
        graph: &RoadGraph,
        p: LegPosition,
        max_points: usize,
    ) -> Vec<[f64; 2]> {
        if max_points < 2 {
            return Vec::new();
        }
        let mut points: Vec<LatLon> = Vec::new();
        let edges = &self.route.edges;
        for (i, &edge) in edges.iter().enumerate().skip(p.index.min(edges.len())) {
            let (begin, end) = self.span(graph, i);
            let from_m = if i == p.index {
                p.offset_m.clamp(begin, end)
            } else {
                begin
            };
            for q in graph.edge_points_between(edge, from_m, end) {
                if points.last() != Some(&q) {
                    points.push(q);
                }
            }
        }
        // Times the inverse then divided: the nearest double to the rounded
        // decimal, which prints short.
        let round = |x: f64| (x * ROUTE_STEPS_PER_DEGREE).round() / ROUTE_STEPS_PER_DEGREE;
        thin(&points, max_points)
            .into_iter()
            .map(|q| [round(q.lon), round(q.lat)])
            .collect()
    }

    /// Heap memory, bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.route.edges.capacity() * 4
            + (self.cum_s.capacity() + self.cum_free_s.capacity() + self.cum_m.capacity()) * 4
    }
}

/// The drawn route's degrees are rounded to 1/this: 1e-5°, 1.1 m of
/// latitude (less of longitude).
pub(crate) const ROUTE_STEPS_PER_DEGREE: f64 = 1e5;

fn part_of(graph: &RoadGraph, edge: EdgeId, metres: f64) -> f64 {
    let length = graph.edge_length_m(edge);
    if length > 0.0 {
        (metres / length).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// Keeps the first and last points and evenly spaced ones between.
fn thin(points: &[LatLon], max_points: usize) -> Vec<LatLon> {
    if points.len() <= max_points {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max_points - 1) as f64;
    (0..max_points)
        .map(|k| points[((k as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}
