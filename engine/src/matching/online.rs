//! The online matcher: advances one vehicle's [`MatchState`] fix by fix.
//!
//! Per fix: drop what cannot be used (invalid, duplicate, too late), put late fixes
//! back in place when they are still within the pending window, treat a fix that
//! has not moved as the same place (no phantom movement), break the chain at long
//! silences, then one Viterbi step: candidates, route distances from every
//! surviving hypothesis, transition and emission scores. A provisional match is
//! returned at once; the final one follows when the hypotheses converge or the lag
//! limit is reached.

use road_graph::{LatLon, LocalPlane, RoadGraph, haversine_m};

use super::candidates::{Candidate, CandidateBuffers, find_candidates};
use super::config::MatcherConfig;
use super::lattice::{Attached, Cand, Column, DEV_CAP_BETAS, MatchState, to_time};
use super::route::{Reach, RouteSearch, SearchLimits, StepKind, Target};
use super::types::{Fix, FixMatch, FixOutcome, MatchEvents, UnmatchedReason};
use crate::error::Result;

/// A matcher over one road graph. Holds only reusable scratch memory, so one per
/// worker thread serves any number of vehicles, each with its own [`MatchState`].
#[derive(Debug)]
pub struct Matcher<'g> {
    graph: &'g RoadGraph,
    config: MatcherConfig,
    scratch: MatcherScratch,
}

/// A matcher's memory between uses: search arrays sized to the graph and the
/// edges' bearings (a pass over every edge to build). A long-lived caller that
/// makes a [`Matcher`] per batch keeps it with [`Matcher::into_scratch`] and
/// [`Matcher::with_scratch`]; it is rebuilt when handed to another graph.
#[derive(Debug, Default)]
pub struct MatcherScratch {
    /// The graph it was built for (its address: identity, never dereferenced).
    graph: usize,
    search: RouteSearch,
    buffers: CandidateBuffers,
    found: Vec<Candidate>,
    targets: Vec<Target>,
    reach: Vec<Reach>,
    sources: Vec<usize>,
    /// Tests only: run every route search to its full detour, the oracle that
    /// the bound of [`useful_route_m`] is checked against.
    #[cfg(test)]
    exhaustive_searches: bool,
}

/// A fix waiting to be replayed after a reorder.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    time_ms: i64,
    pos: LatLon,
    accuracy_m: Option<f64>,
}

impl<'g> Matcher<'g> {
    /// A matcher with checked settings.
    pub fn new(graph: &'g RoadGraph, config: MatcherConfig) -> Result<Matcher<'g>> {
        Matcher::with_scratch(graph, config, MatcherScratch::default())
    }

    /// A matcher reusing the memory of an earlier one (on the same graph; on
    /// another it starts afresh).
    pub fn with_scratch(
        graph: &'g RoadGraph,
        config: MatcherConfig,
        scratch: MatcherScratch,
    ) -> Result<Matcher<'g>> {
        config.validate()?;
        let id = std::ptr::from_ref(graph) as usize;
        let scratch = if scratch.graph == id {
            scratch
        } else {
            MatcherScratch {
                graph: id,
                ..MatcherScratch::default()
            }
        };
        Ok(Matcher {
            graph,
            config,
            scratch,
        })
    }

    /// The memory to hand to the next matcher on this graph.
    pub fn into_scratch(self) -> MatcherScratch {
        self.scratch
    }

    pub fn config(&self) -> &MatcherConfig {
        &self.config
    }

    pub fn graph(&self) -> &'g RoadGraph {
        self.graph
    }

    /// Edges settled by route searches so far (a measure of work).
    pub fn edges_settled(&self) -> u64 {
        self.scratch.search.settled_total
    }

    /// Advances the vehicle by one fix. Appends to `events`: the provisional match
    /// of this fix, and whatever became final.
    pub fn push(&mut self, state: &mut MatchState, fix: &Fix, events: &mut MatchEvents) {
        let finals_before = events.finalized.len();
        self.push_fix(state, fix, events);
        if self.config.learn_sigma {
            let sigma_m = self.learned_sigma_m(state);
            let cap_m = sigma_m * self.config.robust_from_sigmas;
            state
                .noise
                .observe(&events.finalized[finals_before..], cap_m);
        }
    }

    fn push_fix(&mut self, state: &mut MatchState, fix: &Fix, events: &mut MatchEvents) {
        let seq = state.next_seq;
        state.next_seq += 1;
        state.counters.fixes += 1;
        let time_ms = fix.time.timestamp_millis();
        if !fix.pos.is_valid() {
            state.counters.invalid += 1;
            unmatched(seq, time_ms, UnmatchedReason::InvalidPosition, events);
            return;
        }
        match state.last_ms {
            Some(last) if time_ms == last => {
                state.counters.duplicates += 1;
                unmatched(seq, time_ms, UnmatchedReason::Duplicate, events);
                return;
            }
            Some(last) if time_ms < last => {
                let late = Pending {
                    seq,
                    time_ms,
                    pos: fix.pos,
                    accuracy_m: fix.accuracy_m,
                };
                self.late(state, late, events);
                return;
            }
            _ => {}
        }
        state.last_ms = Some(time_ms);
        self.accept(state, seq, time_ms, fix.pos, fix.accuracy_m, events);
    }

    /// Ends the vehicle's current chain (end of a trace, or the vehicle went
    /// offline): everything pending becomes final.
    pub fn finish(&mut self, state: &mut MatchState, events: &mut MatchEvents) {
        state.end_chain(self.graph, events);
    }

    /// A fix older than the newest accepted one: replay the pending window with it
    /// in place, or drop it when it is older than what is already final.
    fn late(&mut self, state: &mut MatchState, late: Pending, events: &mut MatchEvents) {
        let start = usize::from(state.root_final);
        let final_ms = if state.root_final {
            state.columns.front().map_or(i64::MIN, |c| c.last_ms)
        } else {
            i64::MIN
        };
        let pending_steps = state.columns.len().saturating_sub(start);
        if self.config.reorder_window_s <= 0.0 || pending_steps == 0 || late.time_ms <= final_ms {
            state.counters.out_of_order += 1;
            unmatched(late.seq, late.time_ms, UnmatchedReason::OutOfOrder, events);
            return;
        }
        let mut replay = vec![late];
        for col in state.columns.range(start..) {
            replay.push(Pending {
                seq: col.seq,
                time_ms: col.first_ms,
                pos: col.pos,
                accuracy_m: col.accuracy_m,
            });
            for a in &col.attached {
                replay.push(Pending {
                    seq: a.seq,
                    time_ms: a.time_ms,
                    pos: a.pos,
                    accuracy_m: None,
                });
            }
        }
        if replay[1..].iter().any(|p| p.time_ms == late.time_ms) {
            state.counters.duplicates += 1;
            unmatched(late.seq, late.time_ms, UnmatchedReason::Duplicate, events);
            return;
        }
        state.counters.reordered += 1;
        // The replay counts its stationary fixes again.
        let attached: u64 = state
            .columns
            .range(start..)
            .map(|c| c.attached.len() as u64)
            .sum();
        state.counters.stationary = state.counters.stationary.saturating_sub(attached);
        state.columns.truncate(start);
        if let Some(root) = state.columns.front_mut() {
            // The root's stationary stretch ends no later than the replayed fixes.
            root.last_ms = root.last_ms.min(late.time_ms);
        }
        replay.sort_by_key(|p| p.time_ms);
        for p in replay {
            self.accept(state, p.seq, p.time_ms, p.pos, p.accuracy_m, events);
        }
    }

    /// The GPS noise of a fix: the device's reported accuracy when it gives
    /// one (never below the vehicle's noise), else the vehicle's noise.
    fn sigma_m(&self, state: &MatchState, accuracy_m: Option<f64>) -> f64 {
        let vehicle_m = self.learned_sigma_m(state);
        match accuracy_m {
            Some(a) if a.is_finite() && a > 0.0 => a.max(vehicle_m),
            _ => vehicle_m,
        }
    }

    /// `beta_m` of the settings, or the vehicle's learned transition scale.
    fn learned_beta_m(&self, state: &MatchState) -> f64 {
        if self.config.learn_beta {
            state
                .transitions
                .beta_m(self.config.beta_m, self.config.beta_prior_steps)
        } else {
            self.config.beta_m
        }
    }

    /// `sigma_m` of the settings, or the vehicle's learned noise.
    fn learned_sigma_m(&self, state: &MatchState) -> f64 {
        if self.config.learn_sigma {
            state
                .noise
                .sigma_m(self.config.sigma_m, self.config.sigma_prior_fixes)
        } else {
            self.config.sigma_m
        }
    }

    fn accept(
        &mut self,
        state: &mut MatchState,
        seq: u64,
        time_ms: i64,
        pos: LatLon,
        accuracy_m: Option<f64>,
        events: &mut MatchEvents,
    ) {
        let graph = self.graph;
        let gap_ms = (self.config.break_gap_s * 1000.0) as i64;

        // Not moved: the same place as the last step, no new HMM step.
        let root_only = state.root_final && state.columns.len() == 1;
        if let Some(col) = state.columns.back_mut()
            && haversine_m(col.center, pos) < self.config.stationary_m
            && time_ms - col.last_ms <= gap_ms
        {
            state.counters.stationary += 1;
            col.last_ms = col.last_ms.max(time_ms);
            col.n_fixes += 1;
            let w = 1.0 / f64::from(col.n_fixes);
            col.center = LatLon::new(
                col.center.lat + w * (pos.lat - col.center.lat),
                col.center.lon + w * (pos.lon - col.center.lon),
            );
            let Some(best) = col.best() else {
                return;
            };
            let m = MatchState::fix_match(col, &col.cands[best], seq, time_ms, pos);
            events.provisional.push(m);
            if root_only {
                events.finalized.push(m);
                state.counters.matched += 1;
                if let Some(open) = state.open.as_mut() {
                    open.last_ms = open.last_ms.max(time_ms);
                }
            } else {
                col.attached.push(Attached { seq, time_ms, pos });
                if col.attached.len() >= self.config.max_lag_steps {
                    // Parked: settle on the best guess rather than hold fixes.
                    let last = state.columns.len() - 1;
                    state.counters.forced += 1;
                    state.finalize_through(graph, last, best, events);
                }
            }
            return;
        }

        if let Some(col) = state.columns.back()
            && time_ms - col.last_ms > gap_ms
        {
            state.counters.breaks += 1;
            state.end_chain(graph, events);
        }

        let sigma_m = self.sigma_m(state, accuracy_m);
        find_candidates(
            graph,
            &self.config,
            pos,
            sigma_m,
            &mut self.scratch.buffers,
            &mut self.scratch.found,
        );
        if self.scratch.found.is_empty() {
            state.counters.no_road_nearby += 1;
            unmatched(seq, time_ms, UnmatchedReason::NoRoadNearby, events);
            return;
        }

        // No route within the usual detour: look as far as the vehicle could have
        // driven before giving up (a break leaves a hole in the path).
        let stepped = self
            .step(state, pos, time_ms, false)
            .or_else(|| self.step(state, pos, time_ms, true));
        let cands = match stepped {
            Some(cands) => cands,
            None => {
                if !state.columns.is_empty() {
                    state.counters.breaks += 1;
                    state.end_chain(graph, events);
                }
                self.start_cands()
            }
        };
        state.columns.push_back(Column {
            seq,
            pos,
            accuracy_m,
            center: pos,
            n_fixes: 1,
            first_ms: time_ms,
            last_ms: time_ms,
            attached: Vec::new(),
            cands,
        });

        let hold_after_ms = time_ms - (self.config.reorder_window_s * 1000.0) as i64;
        state.finalize_converged(graph, hold_after_ms, events);
        let max_lag_ms = (self.config.max_lag_s * 1000.0) as i64;
        while state.pending_steps() > self.config.max_lag_steps
            || state.pending_steps() > 1
                && state.columns.len() > 1
                && time_ms - state.columns[usize::from(state.root_final)].first_ms > max_lag_ms
        {
            let before = state.pending_steps();
            state.force_oldest(graph, events);
            if state.pending_steps() >= before {
                break;
            }
        }

        if let Some(col) = state.columns.back()
            && let Some(best) = col.best()
        {
            events.provisional.push(MatchState::fix_match(
                col,
                &col.cands[best],
                seq,
                time_ms,
                pos,
            ));
        }
    }

    /// The first column of a chain: emission scores only.
    fn start_cands(&self) -> Vec<Cand> {
        let mut cands: Vec<Cand> = self
            .scratch
            .found
            .iter()
            .map(|c| Cand {
                edge: c.edge,
                offset_m: c.offset_m,
                point: c.point,
                distance_m: c.distance_m,
                score: c.emission,
                share: 0.0,
                prev: 0,
                kind: StepKind::Start,
                u_turn: false,
                path: Vec::new(),
                dev_m: 0.0,
            })
            .collect();
        normalize(
            &mut cands,
            self.config.transition_beam,
            self.config.max_candidates,
        );
        cands
    }

    /// One Viterbi step into the new fix's candidates (in `self.scratch.found`); `None`
    /// when no route joins any hypothesis to any candidate (an HMM break).
    fn step(
        &mut self,
        state: &MatchState,
        pos: LatLon,
        time_ms: i64,
        widen: bool,
    ) -> Option<Vec<Cand>> {
        let last = state.columns.back()?;
        let config = &self.config;
        let graph = self.graph;
        let great_circle_m = haversine_m(last.pos, pos);
        let dt_s = ((time_ms - last.last_ms).max(1)) as f64 / 1000.0;
        let reach_cap_m = great_circle_m.max(config.max_speed_mps * dt_s);
        let beta_m = self.learned_beta_m(state) + config.beta_per_m * great_circle_m;
        let detour_m = if widen {
            reach_cap_m
        } else {
            (great_circle_m * config.max_detour_ratio).min(reach_cap_m)
        };
        let limits = SearchLimits {
            bound_m: detour_m + config.route_slack_m,
            great_circle_m,
            margin_m: beta_m * config.transition_beam,
            u_turn_penalty_m: config.u_turn_penalty_m,
            turn_penalty_m: config.turn_penalty_m,
            backtrack_m: config.backtrack_m,
        };
        let speed_cap_m = config.max_speed_mps * dt_s + config.route_slack_m;
        // Errors that drift (correlated over `noise_correlation_s`) say less
        // per fix the denser the fixes: each step's emission counts for the
        // share of a correlation time it spans.
        let weight = if config.noise_correlation_s > 0.0 {
            (dt_s / config.noise_correlation_s).min(1.0)
        } else {
            1.0
        };

        self.scratch.targets.clear();
        self.scratch
            .targets
            .extend(self.scratch.found.iter().map(|c| Target {
                edge: c.edge,
                offset_m: c.offset_m,
            }));
        let goal_radius_m = self
            .scratch
            .found
            .iter()
            .map(|c| c.distance_m)
            .fold(0.0, f64::max);
        let mut cands: Vec<Cand> = self
            .scratch
            .found
            .iter()
            .map(|c| Cand {
                edge: c.edge,
                offset_m: c.offset_m,
                point: c.point,
                distance_m: c.distance_m,
                score: f64::NEG_INFINITY,
                share: 0.0,
                prev: 0,
                kind: StepKind::Route,
                u_turn: false,
                path: Vec::new(),
                dev_m: 0.0,
            })
            .collect();

        let goal = LocalPlane::new(pos);
        let mut sources = std::mem::take(&mut self.scratch.sources);
        sources.clear();
        sources.extend((0..last.cands.len()).filter(|&i| last.cands[i].alive()));
        sources.sort_by(|&a, &b| last.cands[b].score.total_cmp(&last.cands[a].score));
        if widen {
            // Wide searches are expensive: only from the few likeliest places.
            sources.truncate(3);
        }
        for &s in &sources {
            let source = &last.cands[s];
            let useful_m = useful_route_m(
                source.score,
                &cands,
                &self.scratch.found,
                weight,
                config.transition_beam,
                great_circle_m,
                beta_m,
            );
            #[cfg(test)]
            let useful_m = if self.scratch.exhaustive_searches {
                f64::INFINITY
            } else {
                useful_m
            };
            if useful_m < 0.0 {
                // No route from here, nor a step along its own edge, can
                // matter; weaker sources, searched later against scores that
                // only rise, cannot either.
                break;
            }
            self.scratch.search.run(
                graph,
                source.edge,
                source.offset_m,
                &self.scratch.targets,
                &goal,
                goal_radius_m,
                SearchLimits {
                    bound_m: limits.bound_m.min(useful_m),
                    ..limits
                },
                &mut self.scratch.reach,
            );
            for (i, reach) in self.scratch.reach.iter().enumerate() {
                if reach.distance_m.is_infinite() {
                    continue;
                }
                let dev_m = (reach.distance_m - great_circle_m).abs();
                let mut logp = -dev_m / beta_m;
                let physical_m = if reach.kind == StepKind::UTurn {
                    reach.distance_m - config.u_turn_penalty_m
                } else {
                    reach.distance_m
                };
                if physical_m > speed_cap_m {
                    // Faster than a truck can go: strongly unlikely, not impossible
                    // (device clocks jump).
                    logp -= (physical_m - speed_cap_m) / config.beta_m;
                }
                let score = source.score + logp;
                let cand = &mut cands[i];
                if score > cand.score {
                    cand.score = score;
                    cand.prev = s as u16;
                    cand.kind = reach.kind;
                    cand.dev_m = dev_m.min(beta_m * DEV_CAP_BETAS);
                    if reach.kind == StepKind::Route {
                        cand.u_turn = self.scratch.search.path_to(
                            graph,
                            source.edge,
                            cand.edge,
                            &mut cand.path,
                        );
                    } else {
                        cand.u_turn = false;
                        cand.path.clear();
                    }
                }
            }
        }
        self.scratch.sources = sources;
        if cands.iter().all(|c| !c.alive()) {
            return None;
        }
        for (cand, found) in cands.iter_mut().zip(&self.scratch.found) {
            cand.score += weight * found.emission;
        }
        normalize(&mut cands, config.transition_beam, config.max_candidates);
        Some(cands)
    }
}

/// Route metres added to the proven bound of [`useful_route_m`] before it stops a
/// search: more than covers the rounding of the search's `f32` distances and the
/// plane-versus-sphere error of its heuristic, so the bound never cuts a route
/// that could matter.
const USEFUL_ROUTE_SLACK_M: f64 = 1.0;

/// How long a route from a hypothesis scored `source_score` may be and still
/// change the step's outcome, metres: infinite when nothing bounds it yet,
/// negative when no step from this source can matter at all (not even along
/// its own edge, whose distance needs no search).
///
/// Sources are searched best first, so by the time a weaker one is searched the
/// candidates already hold scores from the stronger ones. A route of `d` metres
/// from this source gives a candidate at most `source_score - |d - gc| / beta`
/// (the speed penalty only lowers it). That changes the candidate only if it
/// beats the score the candidate already has (ties keep the earlier source),
/// and only matters if, with the candidate's emission, it stays within the
/// transition beam of the step's best, which can only rise above the best so
/// far; below the beam `normalize` drops the candidate whatever its score. A
/// route longer than `gc + beta × max(slack)` therefore changes nothing that
/// survives the step (at most it would have moved a candidate that is dropped
/// anyway), and the search can stop there: it settles edges in the same order
/// either way (its heuristic is consistent), so every route up to the bound
/// comes out identical, including where it overrides a U-turn. The unit test
/// below checks the outcome against searches run to their full detour.
fn useful_route_m(
    source_score: f64,
    cands: &[Cand],
    found: &[Candidate],
    emission_weight: f64,
    beam: f64,
    great_circle_m: f64,
    beta_m: f64,
) -> f64 {
    let best = cands
        .iter()
        .zip(found)
        .filter(|(c, _)| c.alive())
        .map(|(c, f)| c.score + emission_weight * f.emission)
        .fold(f64::NEG_INFINITY, f64::max);
    let floor = best - beam;
    // Per candidate, the log-units of transition this source can lose and still
    // both beat the candidate's score and stay above the floor.
    let slack = cands
        .iter()
        .zip(found)
        .map(|(c, f)| {
            (source_score - c.score).min(source_score + emission_weight * f.emission - floor)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    let useful_m = great_circle_m + beta_m * slack;
    useful_m + USEFUL_ROUTE_SLACK_M + 1e-3 * useful_m.max(0.0)
}

/// Shifts scores so the best is 0, drops the dead and those beyond the beam, keeps
/// the best `max` and sets each one's share of the probability.
fn normalize(cands: &mut Vec<Cand>, beam: f64, max: usize) {
    let best = cands
        .iter()
        .map(|c| c.score)
        .fold(f64::NEG_INFINITY, f64::max);
    cands.retain(|c| c.alive() && c.score >= best - beam);
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(max);
    let mut total = 0.0;
    for c in cands.iter_mut() {
        c.score -= best;
        total += c.score.exp();
    }
    for c in cands.iter_mut() {
        c.share = c.score.exp() / total;
    }
}

fn unmatched(seq: u64, time_ms: i64, reason: UnmatchedReason, events: &mut MatchEvents) {
    let m = FixMatch {
        seq,
        time: to_time(time_ms),
        outcome: FixOutcome::Unmatched { reason },
    };
    events.provisional.push(m);
    events.finalized.push(m);
}

/// Convenience for whole traces: matches every fix through the online matcher and
/// returns all final outcomes (sorted by arrival) and traversals.
pub fn match_trace(
    matcher: &mut Matcher<'_>,
    fixes: &[Fix],
) -> (
    Vec<FixMatch>,
    Vec<super::types::Traversal>,
    super::types::MatchCounters,
) {
    let mut state = MatchState::new();
    let mut events = MatchEvents::default();
    let mut finalized = Vec::with_capacity(fixes.len());
    let mut traversals = Vec::new();
    for fix in fixes {
        matcher.push(&mut state, fix, &mut events);
        finalized.append(&mut events.finalized);
        traversals.append(&mut events.traversals);
        events.clear();
    }
    matcher.finish(&mut state, &mut events);
    finalized.append(&mut events.finalized);
    traversals.append(&mut events.traversals);
    finalized.sort_by_key(|m| m.seq);
    (finalized, traversals, state.counters)
}

/// The matched path of each chain as polylines, with the OSM ways it runs along
/// (consecutive repeats merged), built from traversals in driving order.
pub fn traversal_paths(
    graph: &RoadGraph,
    traversals: &[super::types::Traversal],
) -> Vec<(Vec<LatLon>, Vec<i64>)> {
    let mut paths: Vec<(Vec<LatLon>, Vec<i64>)> = Vec::new();
    let mut chain: Option<u32> = None;
    for t in traversals {
        if chain != Some(t.chain) {
            paths.push((Vec::new(), Vec::new()));
            chain = Some(t.chain);
        }
        let Some((points, ways)) = paths.last_mut() else {
            continue;
        };
        let piece =
            graph.edge_points_between(t.edge, t.from_offset_m, t.to_offset_m.max(t.from_offset_m));
        for p in piece {
            if points.last() != Some(&p) {
                points.push(p);
            }
        }
        let way = graph.edge_way_id(t.edge);
        if ways.last() != Some(&way) {
            ways.push(way);
        }
    }
    paths.retain(|(points, _)| points.len() >= 2);
    paths
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use road_graph::{ProfileConfig, import_pbf};

    use super::*;
    use crate::matching::thin_fixes;
    use crate::trace::parse_trace;

    /// The bound that stops route searches (`useful_route_m`) is exact: on two
    /// real tracks, dense and sparse, with today's settings, those before issue
    /// 24's cross-validated choice and per-vehicle learning, the matcher gives
    /// the same outcomes, traversals and counters as with every search run to
    /// its full detour, while settling fewer edges.
    #[test]
    fn stopping_searches_where_no_route_can_matter_changes_nothing() {
        let before_cv = MatcherConfig {
            sigma_m: 5.0,
            beta_m: 8.0,
            noise_correlation_s: 0.0,
            ..MatcherConfig::TRUCK
        };
        let learning = MatcherConfig {
            learn_sigma: true,
            learn_beta: true,
            ..MatcherConfig::TRUCK
        };
        let (mut settled_pruned, mut settled_exhaustive) = (0, 0);
        for id in ["00000000", "00000066"] {
            let dir = PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/traces/kubicka"
            ))
            .join(id);
            let (graph, _) = import_pbf(
                &dir.join(format!("{id}.osm.pbf")),
                &ProfileConfig::TRUCK,
                &mut |_| {},
            )
            .expect("the track's network imports");
            let text = std::fs::read_to_string(dir.join(format!("{id}.track.csv")))
                .expect("the track is readable");
            let fixes = parse_trace(&text).expect("the track parses").fixes;
            for config in [MatcherConfig::TRUCK, before_cv.clone(), learning.clone()] {
                for every_s in [1, 15, 60, 300] {
                    let fixes = thin_fixes(&fixes, every_s as f64);
                    let mut pruned = Matcher::new(&graph, config.clone()).expect("valid config");
                    let mut exhaustive =
                        Matcher::new(&graph, config.clone()).expect("valid config");
                    exhaustive.scratch.exhaustive_searches = true;
                    assert_eq!(
                        match_trace(&mut pruned, &fixes),
                        match_trace(&mut exhaustive, &fixes),
                        "track {id} every {every_s} s, {config:?}"
                    );
                    settled_pruned += pruned.edges_settled();
                    settled_exhaustive += exhaustive.edges_settled();
                }
            }
        }
        assert!(
            settled_pruned < settled_exhaustive,
            "{settled_pruned} edges settled with the bound, {settled_exhaustive} without"
        );
    }
}
