//! A vehicle's matching state: the pending part of the Viterbi lattice, and how it
//! is finalized into [`FixMatch`]es and [`Traversal`]s.
//!
//! The lattice holds one column per HMM step (a fix that moved), each with its
//! surviving candidates, their Viterbi scores and back-pointers. The first column
//! may be the *root*: the last finalized step, kept with its one chosen candidate
//! so the next steps have something to start from. A column becomes final when
//! every surviving hypothesis of the newest column descends from one candidate in
//! it (the paths have converged), or when the lag limit forces it.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, LatLon, RoadGraph, haversine_m};
use serde::{Deserialize, Serialize};

use super::route::StepKind;
use super::types::{FixMatch, FixOutcome, MatchCounters, MatchEvents, MatchedPoint, Traversal};

/// One hypothesis: the vehicle at this place at this step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cand {
    pub(crate) edge: EdgeId,
    pub(crate) offset_m: f64,
    pub(crate) point: LatLon,
    pub(crate) distance_m: f64,
    /// Viterbi log score, normalized so the column's best is 0; `-inf` when dead.
    pub(crate) score: f64,
    /// Share of the column's probability when the column was made.
    pub(crate) share: f64,
    /// Index of the predecessor in the previous column.
    pub(crate) prev: u16,
    pub(crate) kind: StepKind,
    /// For `Route`: whether it starts with a U-turn in the middle of the
    /// predecessor's edge.
    pub(crate) u_turn: bool,
    /// For `Route`: the edges driven after the predecessor's edge, ending on this
    /// candidate's edge.
    pub(crate) path: Vec<EdgeId>,
    /// For `Route`: `|route - great-circle|` of the step into this candidate,
    /// capped (what the vehicle's transition scale is learned from once final).
    #[serde(default)]
    pub(crate) dev_m: f64,
}

impl Cand {
    pub(crate) fn alive(&self) -> bool {
        self.score > f64::NEG_INFINITY
    }
}

/// A set of candidate indices of one column, in four words: a column holds at
/// most `max_candidates` (at most 256, `MatcherConfig::validate`) candidates.
/// Indices beyond that cannot occur and are ignored rather than panicking.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CandSet([u64; 4]);

impl CandSet {
    /// The indices of the candidates that pass `keep`.
    pub(crate) fn of(cands: &[Cand], keep: impl Fn(&Cand) -> bool) -> CandSet {
        let mut set = CandSet::default();
        for (i, c) in cands.iter().enumerate() {
            if keep(c) {
                set.insert(i);
            }
        }
        set
    }

    pub(crate) fn insert(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    pub(crate) fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// The indices, ascending.
    pub(crate) fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(k, mut word)| {
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    k * 64 + bit
                })
            })
        })
    }
}

/// A fix that did not move from its column's fix: matched with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Attached {
    pub(crate) seq: u64,
    pub(crate) time_ms: i64,
    pub(crate) pos: LatLon,
}

/// One HMM step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Column {
    pub(crate) seq: u64,
    pub(crate) pos: LatLon,
    pub(crate) accuracy_m: Option<f64>,
    /// Mean position of the fixes seen at this place, and how many: a fix is
    /// "not moved" when it is near this mean (steadier than the first fix alone).
    pub(crate) center: LatLon,
    pub(crate) n_fixes: u32,
    /// When the vehicle was first and last seen at this place.
    pub(crate) first_ms: i64,
    pub(crate) last_ms: i64,
    pub(crate) attached: Vec<Attached>,
    pub(crate) cands: Vec<Cand>,
}

impl Column {
    pub(crate) fn best(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, c) in self.cands.iter().enumerate() {
            if c.alive() && best.is_none_or(|b| c.score > self.cands[b].score) {
                best = Some(i);
            }
        }
        best
    }
}

/// The edge the vehicle is on, whose traversal is not yet complete.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct OpenTraversal {
    pub(crate) edge: EdgeId,
    pub(crate) entered_ms: i64,
    pub(crate) from_offset_m: f64,
    pub(crate) to_offset_m: f64,
    pub(crate) last_ms: i64,
}

/// Everything the matcher remembers about one vehicle. Small and serializable, so
/// a vehicle can move between nodes: a few columns of a few candidates each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchState {
    pub(crate) next_seq: u64,
    /// Time of the newest accepted fix.
    pub(crate) last_ms: Option<i64>,
    pub(crate) chain: u32,
    pub(crate) columns: VecDeque<Column>,
    /// Whether `columns[0]` is final (then it has exactly one candidate).
    pub(crate) root_final: bool,
    pub(crate) open: Option<OpenTraversal>,
    pub(crate) counters: MatchCounters,
    /// The vehicle's GPS noise as learned so far (absent in states saved before
    /// it existed: nothing learned yet).
    #[serde(default)]
    pub(crate) noise: NoiseEstimate,
    /// The vehicle's transition scale as learned so far (absent in older states).
    #[serde(default)]
    pub(crate) transitions: TransitionEstimate,
}

/// What a vehicle's final matches say of its GPS noise: the count and sum of
/// their distances to the road (each capped, so one multipath jump or a wrong
/// match moves it little).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct NoiseEstimate {
    pub(crate) n: u32,
    pub(crate) sum_abs_m: f64,
}

/// The mean distance of a fix to its road is `sqrt(2 / pi)` sigma when the error
/// across the road is Gaussian: sigma is the mean times this.
const SIGMA_PER_MEAN_ABS: f64 = 1.253_314;
/// Learned sigmas stay above this (metres): survey-grade tracks would otherwise
/// make the emission so sharp that a map's own offset from the road decides.
const MIN_LEARNED_SIGMA_M: f64 = 2.0;

impl NoiseEstimate {
    /// The sigma to use: the prior and the vehicle's own estimate, weighted by
    /// `prior_fixes` and the number of fixes seen.
    pub(crate) fn sigma_m(&self, prior_m: f64, prior_fixes: f64) -> f64 {
        let n = f64::from(self.n);
        let sigma = (prior_m * prior_fixes + SIGMA_PER_MEAN_ABS * self.sum_abs_m)
            / (prior_fixes + n).max(1e-9);
        sigma.max(MIN_LEARNED_SIGMA_M)
    }

    /// Adds the distances of final matches, each capped at `cap_m`.
    pub(crate) fn observe(&mut self, finals: &[super::types::FixMatch], cap_m: f64) {
        for m in finals {
            if let super::types::FixOutcome::Matched(p) = &m.outcome
                && p.distance_m.is_finite()
            {
                self.n = self.n.saturating_add(1);
                self.sum_abs_m += p.distance_m.min(cap_m);
            }
        }
    }
}

/// What a vehicle's final steps say of its transition scale (Newson & Krumm's
/// beta): the count and sum of `|route - great-circle|` over final route steps.
/// The differences are exponential with mean beta, so the mean estimates it;
/// each is capped at [`DEV_CAP_BETAS`] betas when the step is made, and the
/// estimate corrects for that cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TransitionEstimate {
    pub(crate) n: u32,
    pub(crate) sum_dev_m: f64,
}

/// A step's difference counts at most this many betas toward the estimate.
pub(crate) const DEV_CAP_BETAS: f64 = 5.0;
/// Learned betas stay within this range (metres).
const LEARNED_BETA_M: (f64, f64) = (1.0, 500.0);

impl TransitionEstimate {
    /// The beta to use: the prior and the vehicle's own mean difference (scaled
    /// up by the share an exponential keeps under the cap), weighted by
    /// `prior_steps` and the number of final steps seen.
    pub(crate) fn beta_m(&self, prior_m: f64, prior_steps: f64) -> f64 {
        let n = f64::from(self.n);
        let kept = 1.0 - (-DEV_CAP_BETAS).exp();
        let beta = (prior_m * prior_steps + self.sum_dev_m / kept) / (prior_steps + n).max(1e-9);
        beta.clamp(LEARNED_BETA_M.0, LEARNED_BETA_M.1)
    }

    fn observe(&mut self, cand: &Cand) {
        if cand.kind == StepKind::Route && cand.dev_m.is_finite() {
            self.n = self.n.saturating_add(1);
            self.sum_dev_m += cand.dev_m;
        }
    }
}

pub(crate) fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl MatchState {
    /// A vehicle with no history.
    pub fn new() -> MatchState {
        MatchState::default()
    }

    /// What the stream has contained so far.
    pub fn counters(&self) -> &MatchCounters {
        &self.counters
    }

    /// HMM steps not yet final.
    pub fn pending_steps(&self) -> usize {
        self.columns.len() - usize::from(self.root_final && !self.columns.is_empty())
    }

    pub(crate) fn fix_match(
        col: &Column,
        cand: &Cand,
        seq: u64,
        time_ms: i64,
        pos: LatLon,
    ) -> FixMatch {
        let distance_m = if seq == col.seq {
            cand.distance_m
        } else {
            haversine_m(pos, cand.point)
        };
        FixMatch {
            seq,
            time: to_time(time_ms),
            outcome: FixOutcome::Matched(MatchedPoint {
                edge: cand.edge,
                offset_m: cand.offset_m,
                point: cand.point,
                distance_m,
                confidence: cand.share,
            }),
        }
    }

    /// Emits the final outcome of a column's fix and of the fixes attached to it.
    fn emit_column(
        col: &Column,
        cand: &Cand,
        counters: &mut MatchCounters,
        events: &mut MatchEvents,
    ) {
        events
            .finalized
            .push(Self::fix_match(col, cand, col.seq, col.first_ms, col.pos));
        counters.matched += 1;
        for a in &col.attached {
            events
                .finalized
                .push(Self::fix_match(col, cand, a.seq, a.time_ms, a.pos));
            counters.matched += 1;
        }
    }

    /// Finalizes every pending column up to `k`, along the path that ends at its
    /// candidate `chosen`; column `k` becomes the root.
    pub(crate) fn finalize_through(
        &mut self,
        graph: &RoadGraph,
        k: usize,
        chosen: usize,
        events: &mut MatchEvents,
    ) {
        let start = usize::from(self.root_final);
        if k < start || k >= self.columns.len() {
            return;
        }
        // The pending window is short (`max_lag_steps`, 30 by default), so the
        // choices usually fit on the stack: this runs after most fixes.
        let mut picks_on_stack = [0usize; 64];
        let mut picks_on_heap = Vec::new();
        let picks: &mut [usize] = if k < picks_on_stack.len() {
            &mut picks_on_stack[..=k]
        } else {
            picks_on_heap.resize(k + 1, 0);
            &mut picks_on_heap
        };
        picks[k] = chosen;
        for j in (start + 1..=k).rev() {
            picks[j - 1] = usize::from(self.columns[j].cands[picks[j]].prev);
        }
        if !self.root_final {
            let col = &self.columns[0];
            let cand = &col.cands[picks[0]];
            Self::emit_column(col, cand, &mut self.counters, events);
            self.open = Some(OpenTraversal {
                edge: cand.edge,
                entered_ms: col.first_ms,
                from_offset_m: cand.offset_m,
                to_offset_m: cand.offset_m,
                last_ms: col.last_ms,
            });
        }
        let mut pieces = Vec::new();
        for j in 1..=k {
            let (before, after) = (&self.columns[j - 1], &self.columns[j]);
            let from = &before.cands[picks[j - 1]];
            let to = &after.cands[picks[j]];
            emit_transition(
                graph,
                &mut self.open,
                from,
                before.last_ms,
                to,
                after.first_ms,
                self.chain,
                &mut pieces,
                &mut events.traversals,
            );
            self.transitions.observe(to);
            if let Some(open) = self.open.as_mut() {
                open.last_ms = open.last_ms.max(after.last_ms);
            }
            Self::emit_column(after, to, &mut self.counters, events);
        }
        // Column k becomes the root with its one chosen candidate.
        self.columns.drain(..k);
        let root = &mut self.columns[0];
        root.cands.swap(0, chosen);
        root.cands.truncate(1);
        let cand = &mut root.cands[0];
        cand.score = 0.0;
        cand.prev = 0;
        cand.path = Vec::new();
        root.attached.clear();
        self.root_final = true;
        // Hypotheses of the next column that do not descend from the choice die.
        let mut died = false;
        if let Some(next) = self.columns.get_mut(1) {
            for c in &mut next.cands {
                if usize::from(c.prev) != chosen {
                    died |= c.alive();
                    c.score = f64::NEG_INFINITY;
                }
                c.prev = 0;
            }
        }
        // Deeper columns: a hypothesis lives only if its predecessor does. Every
        // pass leaves no live hypothesis on a dead predecessor (and a step only
        // grows live hypotheses from live ones), so where a column lost none,
        // the columns after it lose none either: the walk stops there rather
        // than visiting the whole pending window after every fix.
        for j in 2..self.columns.len() {
            if !died {
                break;
            }
            died = false;
            let alive = CandSet::of(&self.columns[j - 1].cands, Cand::alive);
            for c in &mut self.columns[j].cands {
                if c.alive() && !alive.contains(usize::from(c.prev)) {
                    c.score = f64::NEG_INFINITY;
                    died = true;
                }
            }
        }
    }

    /// Finalizes whatever has converged: the newest column where all surviving
    /// hypotheses share one ancestor.
    /// Columns seen after `hold_after_ms` stay pending (the reorder window).
    pub(crate) fn finalize_converged(
        &mut self,
        graph: &RoadGraph,
        hold_after_ms: i64,
        events: &mut MatchEvents,
    ) {
        let Some(last) = self.columns.len().checked_sub(1) else {
            return;
        };
        // Sets of candidate indices, walked back one column at a time; this runs
        // after every step and walks the whole pending window until the paths
        // meet, so it allocates nothing.
        let mut set = CandSet::of(&self.columns[last].cands, Cand::alive);
        let mut j = last;
        let mut idx = loop {
            let n = set.len();
            if n == 1
                && let Some(only) = set.iter().next()
            {
                break only;
            }
            if n == 0 || j == 0 {
                return;
            }
            let col = &self.columns[j];
            let mut prev = CandSet::default();
            for i in set.iter() {
                prev.insert(usize::from(col.cands[i].prev));
            }
            set = prev;
            j -= 1;
        };
        // Every hypothesis passes through (j, idx); walk back to the newest
        // column outside the reorder window.
        while j > 0 && self.columns[j].last_ms > hold_after_ms {
            idx = usize::from(self.columns[j].cands[idx].prev);
            j -= 1;
        }
        if self.columns[j].last_ms > hold_after_ms || j == 0 && self.root_final {
            return;
        }
        self.finalize_through(graph, j, idx, events);
    }

    /// Forces the oldest pending column final, along the current best path.
    pub(crate) fn force_oldest(&mut self, graph: &RoadGraph, events: &mut MatchEvents) {
        let Some(last) = self.columns.len().checked_sub(1) else {
            return;
        };
        let Some(mut idx) = self.columns[last].best() else {
            return;
        };
        let target = usize::from(self.root_final);
        let mut j = last;
        while j > target {
            idx = usize::from(self.columns[j].cands[idx].prev);
            j -= 1;
        }
        self.counters.forced += 1;
        self.finalize_through(graph, target, idx, events);
    }

    /// Ends the chain: finalizes the best path through every pending column and
    /// closes the open traversal. The next fix starts a new chain.
    pub(crate) fn end_chain(&mut self, graph: &RoadGraph, events: &mut MatchEvents) {
        if let Some(last) = self.columns.len().checked_sub(1)
            && let Some(best) = self.columns[last].best()
        {
            self.finalize_through(graph, last, best, events);
        }
        if let Some(open) = self.open.take() {
            events.traversals.extend(close(graph, &open, self.chain));
        }
        if !self.columns.is_empty() {
            self.chain = self.chain.wrapping_add(1);
        }
        self.columns.clear();
        self.root_final = false;
    }
}

/// The traversal record of an open traversal, closed now; `None` when the vehicle
/// did not move along it (a chain that starts at the very end of an edge).
fn close(graph: &RoadGraph, open: &OpenTraversal, chain: u32) -> Option<Traversal> {
    let length_m = graph.edge_length_m(open.edge);
    if open.to_offset_m - open.from_offset_m < 0.01 && length_m > 0.01 {
        return None;
    }
    Some(Traversal {
        edge: open.edge,
        entered_at: to_time(open.entered_ms),
        exited_at: to_time(open.last_ms),
        from_offset_m: open.from_offset_m,
        to_offset_m: open.to_offset_m,
        whole_edge: open.from_offset_m <= 0.5 && open.to_offset_m >= length_m - 0.5,
        chain,
    })
}

/// The pieces of edges driven from one candidate to the next:
/// `(edge, from_offset_m, to_offset_m)` in order.
pub(crate) fn step_pieces(
    graph: &RoadGraph,
    from: &Cand,
    to: &Cand,
    out: &mut Vec<(EdgeId, f64, f64)>,
) {
    out.clear();
    let len_m = graph.edge_length_m(from.edge);
    match to.kind {
        StepKind::Start | StepKind::Backtrack => {}
        StepKind::Forward => out.push((from.edge, from.offset_m, to.offset_m)),
        StepKind::UTurn => {
            out.push((from.edge, from.offset_m, from.offset_m));
            out.push((to.edge, len_m - from.offset_m, to.offset_m));
        }
        StepKind::Route => {
            let mut start_m = 0.0;
            if to.u_turn {
                out.push((from.edge, from.offset_m, from.offset_m));
                start_m = len_m - from.offset_m;
            } else {
                out.push((from.edge, from.offset_m, len_m));
            }
            let n = to.path.len();
            for (i, &edge) in to.path.iter().enumerate() {
                let a = if i == 0 { start_m } else { 0.0 };
                let b = if i + 1 == n {
                    to.offset_m
                } else {
                    graph.edge_length_m(edge)
                };
                out.push((edge, a, b.max(a)));
            }
        }
    }
}

/// Turns one finalized step into traversals, interpolating times by distance
/// between when the vehicle was last seen at `from` and first seen at `to`.
/// `pieces` is scratch memory.
#[allow(clippy::too_many_arguments)]
fn emit_transition(
    graph: &RoadGraph,
    open: &mut Option<OpenTraversal>,
    from: &Cand,
    from_ms: i64,
    to: &Cand,
    to_ms: i64,
    chain: u32,
    pieces: &mut Vec<(EdgeId, f64, f64)>,
    out: &mut Vec<Traversal>,
) {
    step_pieces(graph, from, to, pieces);
    let total_m: f64 = pieces.iter().map(|(_, a, b)| (b - a).max(0.0)).sum();
    let span_ms = (to_ms - from_ms) as f64;
    let time_at = |walked_m: f64| -> i64 {
        if total_m > 0.0 {
            from_ms + (walked_m / total_m * span_ms).round() as i64
        } else {
            to_ms
        }
    };
    let mut walked_m = 0.0;
    for (k, &(edge, a, b)) in pieces.iter().enumerate() {
        let t_a = time_at(walked_m);
        walked_m += (b - a).max(0.0);
        let t_b = time_at(walked_m);
        match open {
            // The first piece is on the edge the vehicle was on (it may have moved
            // back a little: noise); later pieces re-enter edges.
            Some(o) if k == 0 && o.edge == edge => {
                o.to_offset_m = o.to_offset_m.max(b);
                o.last_ms = o.last_ms.max(t_b);
            }
            _ => {
                if let Some(o) = open.take() {
                    let done = OpenTraversal {
                        last_ms: t_a.max(o.last_ms),
                        ..o
                    };
                    out.extend(close(graph, &done, chain));
                }
                *open = Some(OpenTraversal {
                    edge,
                    entered_ms: t_a,
                    from_offset_m: a,
                    to_offset_m: b,
                    last_ms: t_b,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cand, DEV_CAP_BETAS, NoiseEstimate, TransitionEstimate};
    use crate::matching::route::StepKind;
    use crate::matching::types::{FixMatch, FixOutcome, MatchedPoint};
    use road_graph::{EdgeId, LatLon};

    fn at(distance_m: f64) -> FixMatch {
        FixMatch {
            seq: 0,
            time: chrono::DateTime::UNIX_EPOCH,
            outcome: FixOutcome::Matched(MatchedPoint {
                edge: EdgeId(0),
                offset_m: 0.0,
                point: LatLon::new(0.0, 0.0),
                distance_m,
                confidence: 1.0,
            }),
        }
    }

    /// A 50 m ELD and a 5 m phone, both starting from the 5 m prior: after a
    /// thousand fixes each vehicle's sigma is near its own (the mean distance
    /// across the road is 0.8 sigma), and one multipath jump moves it little.
    #[test]
    fn the_learned_noise_follows_the_device_not_the_prior() {
        let mut eld = NoiseEstimate::default();
        let mut phone = NoiseEstimate::default();
        assert_eq!(eld.sigma_m(5.0, 50.0), 5.0, "nothing learned yet");
        let eld_fixes: Vec<FixMatch> = (0..1000).map(|_| at(0.798 * 50.0)).collect();
        eld.observe(&eld_fixes, 150.0);
        let phone_fixes: Vec<FixMatch> = (0..1000).map(|_| at(0.798 * 5.0)).collect();
        phone.observe(&phone_fixes, 15.0);
        phone.observe(&[at(400.0)], 15.0);
        let eld_m = eld.sigma_m(5.0, 50.0);
        let phone_m = phone.sigma_m(5.0, 50.0);
        assert!((45.0..50.0).contains(&eld_m), "{eld_m}");
        assert!((4.8..5.3).contains(&phone_m), "{phone_m}");
    }

    fn step(kind: StepKind, dev_m: f64) -> Cand {
        Cand {
            edge: EdgeId(0),
            offset_m: 0.0,
            point: LatLon::new(0.0, 0.0),
            distance_m: 0.0,
            score: 0.0,
            share: 1.0,
            prev: 0,
            kind,
            u_turn: false,
            path: Vec::new(),
            dev_m,
        }
    }

    /// A 1 s feed whose routes differ from the straight line by about 2 m a
    /// step, and a 5 min feed that takes 60 m detours: from the same 8 m prior
    /// each learns its own scale, and steps that are not routes (chain starts,
    /// stays) teach nothing.
    #[test]
    fn the_learned_transition_scale_follows_the_sampling() {
        let mut dense = TransitionEstimate::default();
        let mut sparse = TransitionEstimate::default();
        assert_eq!(dense.beta_m(8.0, 50.0), 8.0, "nothing learned yet");
        // Exponential differences with mean 2 m (and 60 m), capped as the
        // matcher caps them when the step is made.
        for k in 0..2000 {
            let u = (f64::from(k) + 0.5) / 2000.0;
            dense.observe(&step(
                StepKind::Route,
                (-2.0 * (1.0 - u).ln()).min(2.0 * DEV_CAP_BETAS),
            ));
            sparse.observe(&step(
                StepKind::Route,
                (-60.0 * (1.0 - u).ln()).min(60.0 * DEV_CAP_BETAS),
            ));
            dense.observe(&step(StepKind::Start, 500.0));
        }
        let dense_m = dense.beta_m(8.0, 50.0);
        let sparse_m = sparse.beta_m(8.0, 50.0);
        assert!((2.0..2.3).contains(&dense_m), "{dense_m}");
        assert!((57.0..60.5).contains(&sparse_m), "{sparse_m}");
    }
}
