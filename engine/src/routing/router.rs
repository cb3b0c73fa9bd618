//! The router: one hierarchy per road graph, a customized metric that is swapped
//! atomically while queries run, and the queries the engine asks (point to point,
//! one to many, many to one).
//!
//! Readers load the current [`Customized`] metric once per query (an `Arc` through
//! `arc-swap`, no lock), so a query runs to the end on the metric it started with
//! while a new one is being customized or swapped in. Writers (full or partial
//! customizations) are serialized by a mutex so that two partial updates cannot
//! lose each other's changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use road_graph::{EdgeId, RoadGraph};

use super::cch::{NONE, Topology};
use super::customize::{Customized, customize, update};
use super::dijkstra::dijkstra;
use super::metric::{INFINITY_MS, Metric, partial_ms};
use super::prepared::Preparation;
use super::query::{BACKWARD, FORWARD, Meeting, Scratch};
use super::snap::{EdgePosition, Route, Snap};
use super::turns::TurnCosts;
use crate::error::{Error, Result};

/// Sizes of the hierarchy, for reports and benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterStats {
    /// Nodes of the turn graph (= directed road edges).
    pub nodes: usize,
    /// Allowed turns (arcs of the turn graph).
    pub turns: usize,
    /// Undirected arcs of the hierarchy (each with an up and a down weight).
    pub arcs: usize,
    /// Lower triangles: the work of one full customization.
    pub triangles: u64,
    /// Depth of the elimination tree (the longest walk of one query side).
    pub etree_depth: usize,
    /// Metric-independent memory: turn graph, order, hierarchy, bytes.
    pub topology_bytes: usize,
    /// Memory of one customized metric (weights, unpacking data, edge times).
    pub metric_bytes: usize,
}

/// A start or end of a search: a rank, its start value, and the candidate it came
/// from.
#[derive(Debug, Clone, Copy)]
struct Seed {
    rank: u32,
    ms: u32,
    candidate: usize,
}

/// Routes trucks on a road graph under a swappable metric.
#[derive(Debug)]
pub struct Router {
    graph: Arc<RoadGraph>,
    turn_costs: TurnCosts,
    topo: Topology,
    live: ArcSwap<Customized>,
    writer: Mutex<()>,
    pool: Mutex<Vec<Scratch>>,
    /// Queries answered so far (every kind, one per target of a one-to-many),
    /// for metrics: a relaxed count that never changes an answer.
    queries: AtomicU64,
}

impl Router {
    /// Builds the hierarchy (nested dissection and contraction: seconds on a metro
    /// area, done once per map) and customizes the first metric.
    pub fn new(graph: Arc<RoadGraph>, turn_costs: &TurnCosts, metric: Metric) -> Result<Router> {
        check_metric(&graph, &metric)?;
        let topo = Topology::build(&graph, turn_costs);
        let first = customize(&topo, metric);
        Ok(Router {
            graph,
            turn_costs: *turn_costs,
            topo,
            live: ArcSwap::from_pointee(first),
            writer: Mutex::new(()),
            pool: Mutex::new(Vec::new()),
            queries: AtomicU64::new(0),
        })
    }

    /// The router from a preparation stored with the map ([`Router::prepared`],
    /// the snapshot's [`super::ROUTER_SECTION`]): milliseconds instead of the
    /// seconds of [`Router::new`], with the same answers. Everything in it is
    /// checked, and it must have been made for this graph and these turn costs.
    /// The stored metric is reused when it is `metric`; otherwise `metric` is
    /// customized as [`Router::customize`] would.
    pub fn from_prepared(
        graph: Arc<RoadGraph>,
        turn_costs: &TurnCosts,
        metric: Metric,
        prepared: &[u8],
    ) -> Result<Router> {
        let prepared = Preparation::read(&mut road_graph::SectionReader::new(prepared))
            .map_err(|reason| Error::CorruptPreparation { reason })?;
        Router::from_preparation(graph, turn_costs, metric, prepared)
    }

    /// [`Router::from_prepared`] from a preparation already read, as the
    /// snapshot loader hands it over when asked to
    /// (`road_graph::load_snapshot_claiming` with [`Preparation::read`]).
    pub fn from_preparation(
        graph: Arc<RoadGraph>,
        turn_costs: &TurnCosts,
        metric: Metric,
        prepared: Preparation,
    ) -> Result<Router> {
        check_metric(&graph, &metric)?;
        let (topo, stored) = super::prepared::check(&graph, turn_costs, prepared)?;
        let first = if stored.metric == metric {
            stored
        } else {
            drop(stored);
            topo.customizable()
                .map_err(|reason| Error::CorruptPreparation { reason })?;
            customize(&topo, metric)
        };
        Ok(Router {
            graph,
            turn_costs: *turn_costs,
            topo,
            live: ArcSwap::from_pointee(first),
            writer: Mutex::new(()),
            pool: Mutex::new(Vec::new()),
            queries: AtomicU64::new(0),
        })
    }

    /// Checks, once, what customization relies on in a preparation read from a
    /// file (the elimination property, arcs inside their cells), which loading
    /// leaves to the first customization: a process that will re-weight calls
    /// this at start, so that a damaged preparation is refused then rather than
    /// at its first re-weighting. Always `Ok` for a router built here.
    pub fn check_customizable(&self) -> Result<()> {
        self.topo
            .customizable()
            .map_err(|reason| Error::CorruptPreparation { reason })
    }

    /// The preparation to store with the map (the bytes of
    /// [`super::ROUTER_SECTION`]): the hierarchy and the current metric, for
    /// [`Router::from_prepared`].
    pub fn prepared(&self) -> Vec<u8> {
        let custom = self.live.load();
        super::prepared::encode(&self.graph, &self.turn_costs, &self.topo, &custom)
    }

    pub fn graph(&self) -> &Arc<RoadGraph> {
        &self.graph
    }

    /// The metric queries currently run on.
    pub fn metric(&self) -> Metric {
        self.live.load().metric.clone()
    }

    /// Customizes a whole new metric and swaps it in; queries already running
    /// finish on the old one.
    pub fn customize(&self, metric: Metric) -> Result<()> {
        check_metric(&self.graph, &metric)?;
        self.check_customizable()?;
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = customize(&self.topo, metric);
        self.live.store(Arc::new(fresh));
        Ok(())
    }

    /// Applies new times for some edges (milliseconds; [`INFINITY_MS`] closes an
    /// edge) to a copy of the current metric, recomputing only the hierarchy arcs
    /// that depend on them, and swaps it in. Returns the number of arcs looked at.
    pub fn update_edges(&self, changes: &[(EdgeId, u32)]) -> Result<usize> {
        if let Some(&(edge, _)) = changes
            .iter()
            .find(|(e, _)| e.idx() >= self.graph.n_edges())
        {
            return Err(Error::UnknownEdge(edge.0));
        }
        self.check_customizable()?;
        let _writing = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Customized::clone(&self.live.load());
        let recomputed = update(&self.topo, &mut next, changes);
        self.live.store(Arc::new(next));
        Ok(recomputed)
    }

    /// Route queries answered so far (`route`, `duration_ms`, and one per
    /// pair of `one_to_many` / `many_to_one`; the Dijkstra oracle is not counted).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    fn count_queries(&self, n: usize) {
        self.queries.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn stats(&self) -> RouterStats {
        RouterStats {
            nodes: self.topo.n_nodes(),
            turns: self.topo.turns.n_turns(),
            arcs: self.topo.n_arcs(),
            triangles: self.topo.n_triangles(),
            etree_depth: self.topo.etree_depth(),
            topology_bytes: self.topo.heap_bytes(),
            metric_bytes: self.live.load().heap_bytes(),
        }
    }

    /// The fastest route from one endpoint to another, `None` when there is none.
    pub fn route(&self, from: &Snap, to: &Snap) -> Option<Route> {
        self.count_queries(1);
        let custom = self.live.load();
        let sources = self.positions(from);
        let targets = self.positions(to);
        let direct = self.direct(&custom.metric, &sources, &targets);
        let mut scratch = self.scratch();
        let seeds_f = self.source_seeds(&custom.metric, &sources);
        let seeds_b = self.target_seeds(&custom.metric, &targets);
        scratch.seed(&self.topo, FORWARD, &as_pairs(&seeds_f));
        scratch.seed(&self.topo, BACKWARD, &as_pairs(&seeds_b));
        let met = scratch.meet::<true>(&self.topo, &custom);
        let route = self.assemble(
            &custom, &scratch, met, direct, &sources, &targets, &seeds_f, &seeds_b,
        );
        scratch.reset(FORWARD);
        scratch.reset(BACKWARD);
        self.give_back(scratch);
        route
    }

    /// The fastest time from one endpoint to another, milliseconds, without the
    /// path (cheaper than [`Router::route`] when only the time is needed).
    pub fn duration_ms(&self, from: &Snap, to: &Snap) -> Option<u32> {
        self.count_queries(1);
        let custom = self.live.load();
        let sources = self.positions(from);
        let targets = self.positions(to);
        let direct = self.direct(&custom.metric, &sources, &targets).map(|d| d.0);
        let mut scratch = self.scratch();
        scratch.seed(
            &self.topo,
            FORWARD,
            &as_pairs(&self.source_seeds(&custom.metric, &sources)),
        );
        scratch.seed(
            &self.topo,
            BACKWARD,
            &as_pairs(&self.target_seeds(&custom.metric, &targets)),
        );
        let met = scratch
            .meet::<false>(&self.topo, &custom)
            .map(|m| m.total_ms);
        scratch.reset(FORWARD);
        scratch.reset(BACKWARD);
        self.give_back(scratch);
        match (direct, met) {
            (Some(d), Some(m)) => Some(d.min(m)),
            (d, m) => d.or(m),
        }
    }

    /// Routes from one endpoint to each of several (a truck to each of its
    /// remaining stops): the search from the start is done once.
    pub fn one_to_many(&self, from: &Snap, to: &[Snap]) -> Vec<Option<Route>> {
        self.count_queries(to.len());
        let custom = self.live.load();
        let sources = self.positions(from);
        let mut scratch = self.scratch();
        let seeds_f = self.source_seeds(&custom.metric, &sources);
        scratch.seed(&self.topo, FORWARD, &as_pairs(&seeds_f));
        scratch.sweep(&self.topo, &custom, FORWARD);
        let routes = to
            .iter()
            .map(|target| {
                let targets = self.positions(target);
                let direct = self.direct(&custom.metric, &sources, &targets);
                let seeds_b = self.target_seeds(&custom.metric, &targets);
                scratch.seed(&self.topo, BACKWARD, &as_pairs(&seeds_b));
                let met = scratch.meet_swept(&self.topo, &custom, BACKWARD);
                let route = self.assemble(
                    &custom, &scratch, met, direct, &sources, &targets, &seeds_f, &seeds_b,
                );
                scratch.reset(BACKWARD);
                route
            })
            .collect();
        scratch.reset(FORWARD);
        self.give_back(scratch);
        routes
    }

    /// Routes from each of several endpoints to one (every truck to a depot).
    pub fn many_to_one(&self, from: &[Snap], to: &Snap) -> Vec<Option<Route>> {
        self.count_queries(from.len());
        let custom = self.live.load();
        let targets = self.positions(to);
        let mut scratch = self.scratch();
        let seeds_b = self.target_seeds(&custom.metric, &targets);
        scratch.seed(&self.topo, BACKWARD, &as_pairs(&seeds_b));
        scratch.sweep(&self.topo, &custom, BACKWARD);
        let routes = from
            .iter()
            .map(|source| {
                let sources = self.positions(source);
                let direct = self.direct(&custom.metric, &sources, &targets);
                let seeds_f = self.source_seeds(&custom.metric, &sources);
                scratch.seed(&self.topo, FORWARD, &as_pairs(&seeds_f));
                let met = scratch.meet_swept(&self.topo, &custom, FORWARD);
                let route = self.assemble(
                    &custom, &scratch, met, direct, &sources, &targets, &seeds_f, &seeds_b,
                );
                scratch.reset(FORWARD);
                route
            })
            .collect();
        scratch.reset(BACKWARD);
        self.give_back(scratch);
        routes
    }

    /// The same route by a plain Dijkstra on the turn graph and the current metric:
    /// the baseline of the benches, and a cross-check.
    pub fn dijkstra_route(&self, from: &Snap, to: &Snap) -> Option<Route> {
        let custom = self.live.load();
        let sources = self.positions(from);
        let targets = self.positions(to);
        let direct = self.direct(&custom.metric, &sources, &targets);
        let seeds_f = self.source_seeds(&custom.metric, &sources);
        let seeds_b = self.target_seeds(&custom.metric, &targets);
        let starts: Vec<(u32, u32)> = seeds_f
            .iter()
            .map(|s| (self.topo.edge_at[s.rank as usize], s.ms))
            .collect();
        let ends: Vec<(u32, u32)> = seeds_b
            .iter()
            .map(|s| (self.topo.edge_at[s.rank as usize], s.ms))
            .collect();
        let found = dijkstra(&self.topo.turns, custom.metric.as_slice(), &starts, &ends);
        let via_graph = found.map(|(total_ms, path)| {
            let ranks: Vec<u32> = path
                .iter()
                .map(|&e| self.topo.rank_of[e as usize])
                .collect();
            (total_ms, ranks)
        });
        self.finish(
            &custom, via_graph, direct, &sources, &targets, &seeds_f, &seeds_b,
        )
    }

    /// The turn graph under the current metric: every allowed turn as `(from,
    /// to, ms)`, `ms` being the time of `from` plus the turn's penalty. For
    /// comparisons with other route planners (the benches feed it to
    /// `fast_paths`) and for export.
    pub fn turn_graph(&self) -> Vec<(EdgeId, EdgeId, u32)> {
        let custom = self.live.load();
        let metric = custom.metric.as_slice();
        let turns = &self.topo.turns;
        (0..self.graph.n_edges() as u32)
            .flat_map(|e| {
                turns.turns_from(e).map(move |t| {
                    let ms = metric[e as usize].saturating_add(turns.penalty_ms[t]);
                    (EdgeId(e), EdgeId(turns.to[t]), ms)
                })
            })
            .collect()
    }

    fn scratch(&self) -> Scratch {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| Scratch::new(self.topo.n_nodes()))
    }

    fn give_back(&self, scratch: Scratch) {
        debug_assert_eq!(scratch.n(), self.topo.n_nodes());
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(scratch);
    }

    /// The endpoint's candidates on existing edges, offsets clamped to the edge.
    fn positions(&self, snap: &Snap) -> Vec<EdgePosition> {
        snap.candidates()
            .iter()
            .filter(|c| c.edge.idx() < self.graph.n_edges())
            .map(|c| {
                let length_m = self.graph.edge_length_m(c.edge);
                let offset_m = if c.offset_m.is_nan() {
                    0.0
                } else {
                    c.offset_m.clamp(0.0, length_m)
                };
                EdgePosition {
                    edge: c.edge,
                    offset_m,
                }
            })
            .collect()
    }

    fn partial(&self, metric: &Metric, p: &EdgePosition) -> u32 {
        partial_ms(
            metric.edge_ms(p.edge),
            p.offset_m,
            self.graph.edge_length_m(p.edge),
        )
    }

    /// Searches start at the edges a source can turn into, with the rest of the
    /// source edge and the turn already paid: a truck cannot turn around in the
    /// middle of a road.
    fn source_seeds(&self, metric: &Metric, sources: &[EdgePosition]) -> Vec<Seed> {
        let mut seeds = Vec::new();
        for (candidate, p) in sources.iter().enumerate() {
            let edge_ms = metric.edge_ms(p.edge);
            if edge_ms == INFINITY_MS {
                continue;
            }
            let rest_ms = edge_ms - self.partial(metric, p);
            for t in self.topo.turns.turns_from(p.edge.0) {
                let next = self.topo.turns.to[t];
                seeds.push(Seed {
                    rank: self.topo.rank_of[next as usize],
                    ms: rest_ms.saturating_add(self.topo.turns.penalty_ms[t]),
                    candidate,
                });
            }
        }
        seeds
    }

    /// Searches end at the target edges, with the part up to the target to pay.
    fn target_seeds(&self, metric: &Metric, targets: &[EdgePosition]) -> Vec<Seed> {
        targets
            .iter()
            .enumerate()
            .filter(|(_, p)| metric.edge_ms(p.edge) != INFINITY_MS)
            .map(|(candidate, p)| Seed {
                rank: self.topo.rank_of[p.edge.idx()],
                ms: self.partial(metric, p),
                candidate,
            })
            .collect()
    }

    /// The best way that stays on one edge, ahead: `(ms, source, target)`.
    fn direct(
        &self,
        metric: &Metric,
        sources: &[EdgePosition],
        targets: &[EdgePosition],
    ) -> Option<(u32, usize, usize)> {
        let mut best: Option<(u32, usize, usize)> = None;
        for (i, s) in sources.iter().enumerate() {
            for (j, t) in targets.iter().enumerate() {
                if s.edge == t.edge
                    && t.offset_m >= s.offset_m
                    && metric.edge_ms(s.edge) != INFINITY_MS
                {
                    let ms = self.partial(metric, t) - self.partial(metric, s);
                    if best.is_none_or(|(b, _, _)| ms < b) {
                        best = Some((ms, i, j));
                    }
                }
            }
        }
        best
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        custom: &Customized,
        scratch: &Scratch,
        met: Option<Meeting>,
        direct: Option<(u32, usize, usize)>,
        sources: &[EdgePosition],
        targets: &[EdgePosition],
        seeds_f: &[Seed],
        seeds_b: &[Seed],
    ) -> Option<Route> {
        let via_graph = met
            .filter(|m| direct.is_none_or(|(d, _, _)| m.total_ms < d))
            .map(|m| (m.total_ms, scratch.path(&self.topo, custom, m.node)));
        self.finish(
            custom, via_graph, direct, sources, targets, seeds_f, seeds_b,
        )
    }

    /// Builds the route from either a path of ranks through the turn graph (from a
    /// start seed to an end seed) or the direct way along one edge, whichever is
    /// faster (the direct way on a tie).
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        custom: &Customized,
        via_graph: Option<(u32, Vec<u32>)>,
        direct: Option<(u32, usize, usize)>,
        sources: &[EdgePosition],
        targets: &[EdgePosition],
        seeds_f: &[Seed],
        seeds_b: &[Seed],
    ) -> Option<Route> {
        let graph_ms = via_graph.as_ref().map_or(INFINITY_MS, |(ms, _)| *ms);
        if let Some((ms, i, j)) = direct.filter(|(d, _, _)| *d <= graph_ms) {
            let (from, to) = (sources[i], targets[j]);
            return Some(Route {
                duration_ms: ms,
                distance_m: (to.offset_m - from.offset_m).max(0.0),
                edges: vec![from.edge],
                from,
                to,
            });
        }
        let (total_ms, ranks) = via_graph?;
        let (&first, &last) = (ranks.first()?, ranks.last()?);
        // The seeds that the path starts and ends at, best first: the candidate
        // whose value explains the total.
        let seed_f = seeds_f
            .iter()
            .filter(|s| s.rank == first)
            .min_by_key(|s| s.ms)?;
        let seed_b = seeds_b
            .iter()
            .filter(|s| s.rank == last)
            .min_by_key(|s| s.ms)?;
        let (from, to) = (sources[seed_f.candidate], targets[seed_b.candidate]);
        let mut edges = Vec::with_capacity(ranks.len() + 1);
        edges.push(from.edge);
        let mut middle_m = 0.0;
        let last = ranks.len() - 1;
        for (i, &r) in ranks.iter().enumerate() {
            let (edge, length_m) = self.topo.rank_edge[r as usize];
            edges.push(EdgeId(edge));
            if i < last {
                middle_m += f64::from(length_m);
            }
        }
        // From the start position to the end of its edge, the edges between, and
        // the end edge up to the end position.
        let distance_m = (self.graph.edge_length_m(from.edge) - from.offset_m).max(0.0)
            + middle_m
            + to.offset_m.max(0.0);
        debug_assert!(custom.metric.n_edges() == self.graph.n_edges());
        debug_assert!(ranks.iter().all(|&r| r != NONE));
        Some(Route {
            duration_ms: total_ms,
            distance_m,
            edges,
            from,
            to,
        })
    }
}

fn as_pairs(seeds: &[Seed]) -> Vec<(u32, u32)> {
    seeds.iter().map(|s| (s.rank, s.ms)).collect()
}

fn check_metric(graph: &RoadGraph, metric: &Metric) -> Result<()> {
    if metric.n_edges() == graph.n_edges() {
        Ok(())
    } else {
        Err(Error::MetricSize {
            expected: graph.n_edges(),
            found: metric.n_edges(),
        })
    }
}
