//! Online map matching (Newson & Krumm 2009): which road, where on it, and which
//! edges in between, for every GPS fix of a truck, fix by fix.
//!
//! The hidden Markov model: candidates are the directed edges within a radius of a
//! fix (both directions of a two-way road); the emission is a Gaussian in the
//! distance from the fix to the road with a linear tail; the transition scores the
//! difference between the route distance and the great-circle distance, with a
//! plausibility cap on the implied speed that assumes no road classes. Route
//! distances come from bounded goal-directed searches (`route`), not from the
//! routing core, because each is tiny and they must be cheap.
//!
//! Online: a vehicle's [`MatchState`] is advanced by [`Matcher::push`]; every fix
//! gets a provisional match at once and a final one when the Viterbi paths
//! converge (or after a bounded lag); [`Traversal`]s of edges with entry and exit
//! times are emitted as the vehicle leaves them.

mod candidates;
mod config;
mod lattice;
mod online;
mod route;
mod score;
mod types;

pub use config::MatcherConfig;
pub use lattice::MatchState;
pub use online::{Matcher, MatcherScratch, match_trace, traversal_paths};
pub use score::{RouteMismatch, route_mismatch};
pub use types::{
    Fix, FixMatch, FixOutcome, MatchCounters, MatchEvents, MatchedPoint, Traversal,
    UnmatchedReason, thin_fixes,
};
