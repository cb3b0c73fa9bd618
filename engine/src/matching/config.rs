//! The matcher's settings: the HMM's noise model and the robustness limits. One
//! plain struct; the binary builds it (from `MatcherConfig::TRUCK` and flags) and
//! [`MatcherConfig::validate`] checks it once.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of the online HMM matcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatcherConfig {
    /// GPS noise (1 sigma) when the device reports no accuracy, metres. The
    /// emission is a Gaussian in the distance from the fix to the road. With
    /// `learn_sigma` it is the prior of the vehicle's own estimate.
    pub sigma_m: f64,
    /// Learn each vehicle's GPS noise from its own final matches (Newson &
    /// Krumm's estimate from the distances of fixes to their roads, online),
    /// so one setting serves a 5 m phone and a 50 m ELD alike.
    #[serde(default)]
    pub learn_sigma: bool,
    /// Weight of `sigma_m` in the learned estimate, in fixes: after this many
    /// matched fixes the vehicle's own distances count as much as the prior.
    #[serde(default)]
    pub sigma_prior_fixes: f64,
    /// How long GPS errors stay alike, seconds: a fix `dt` after the last step
    /// weighs `min(1, dt / noise_correlation_s)` of an independent one, so a
    /// 1 s feed whose error drifts is not trusted 30 times over for what is one
    /// offset. 0 treats every fix as independent.
    #[serde(default)]
    pub noise_correlation_s: f64,
    /// Emission tail: beyond `sigma_m * robust_from_sigmas` the log-likelihood
    /// grows linearly rather than quadratically, so one multipath outlier does not
    /// drag the path onto another road.
    pub robust_from_sigmas: f64,
    /// Candidate search radius, metres (widened to `4 × accuracy` for poor fixes).
    pub search_radius_m: f64,
    /// Road pieces asked from the spatial index per fix.
    pub max_roads: usize,
    /// Directed candidates kept per fix after pruning.
    pub max_candidates: usize,
    /// Candidates whose emission is this many log-units below the best are dropped.
    pub emission_beam: f64,
    /// Transition scale (Newson & Krumm's beta): the log-likelihood of a step
    /// falls by 1 per `beta_m + beta_per_m × great-circle` metres of difference
    /// between route and great-circle distance. The per-metre part lets sparse
    /// fixes take the detours real roads make.
    pub beta_m: f64,
    pub beta_per_m: f64,
    /// Learn each vehicle's `beta_m` from its own final steps (the mean of
    /// `|route - great-circle|`, Newson & Krumm's estimate, online), so the
    /// scale follows the vehicle's sampling interval and roads.
    #[serde(default)]
    pub learn_beta: bool,
    /// Weight of `beta_m` in the learned estimate, in final steps.
    #[serde(default)]
    pub beta_prior_steps: f64,
    /// Route distance allowed, as a multiple of the great-circle distance, plus
    /// `route_slack_m`; searches stop there.
    pub max_detour_ratio: f64,
    pub route_slack_m: f64,
    /// Searches also stop this many log-units of transition past the best target.
    pub transition_beam: f64,
    /// Fastest plausible speed, m/s; routes that imply more are penalised. Not
    /// per road class (some maps have none).
    pub max_speed_mps: f64,
    /// A U-turn in the middle of a road (or at an intersection) costs this many
    /// metres of route; at a dead end it is free.
    pub u_turn_penalty_m: f64,
    /// Route metres added per turn, times `(1 - cos angle) / 2` (a right-angle
    /// turn costs half): between sparse fixes the straight road is the likelier.
    pub turn_penalty_m: f64,
    /// Backwards movement along the same edge tolerated as noise, metres.
    pub backtrack_m: f64,
    /// A fix this close to the last kept one (metres) is "not moved": it gets the
    /// same match and no HMM step, so a parked truck shows no phantom movement.
    pub stationary_m: f64,
    /// A silence longer than this ends the chain, seconds.
    pub break_gap_s: f64,
    /// Finalization lag limits: the oldest pending fix is forced final when more
    /// than this many HMM steps, or this many seconds, are pending.
    pub max_lag_steps: usize,
    pub max_lag_s: f64,
    /// Fixes are held at least this long (seconds of fix time) before they are
    /// final, so that a fix arriving this late is put back in place by replaying
    /// the pending window; older ones are dropped and counted. 0 turns reordering
    /// off (and gives the shortest lag).
    pub reorder_window_s: f64,
}

impl MatcherConfig {
    /// Settings for truck feeds (1 s to 15 min sampling, consumer-grade GPS).
    /// `sigma_m`, `beta_m` and `noise_correlation_s` are the point that
    /// `tracker match-eval --cv 5` chose in four of five folds on the Kubicka
    /// tracks (BENCHMARKS.md, "Cross-validated accuracy"); the rest were set
    /// on the same tracks earlier: a fixed beta did better than one growing
    /// with distance at every interval, and a small turn cost mattered most at
    /// 300 s. Learning the noise and the transition scale per vehicle did not
    /// improve the cross-validated figures, so both are off.
    pub const TRUCK: MatcherConfig = MatcherConfig {
        sigma_m: 8.0,
        learn_sigma: false,
        sigma_prior_fixes: 50.0,
        noise_correlation_s: 15.0,
        robust_from_sigmas: 3.0,
        search_radius_m: 50.0,
        max_roads: 14,
        max_candidates: 12,
        emission_beam: 12.0,
        beta_m: 16.0,
        beta_per_m: 0.0,
        learn_beta: false,
        beta_prior_steps: 50.0,
        max_detour_ratio: 2.0,
        route_slack_m: 100.0,
        transition_beam: 12.0,
        max_speed_mps: 45.0,
        u_turn_penalty_m: 100.0,
        turn_penalty_m: 30.0,
        backtrack_m: 25.0,
        stationary_m: 10.0,
        break_gap_s: 1800.0,
        max_lag_steps: 30,
        max_lag_s: 1200.0,
        reorder_window_s: 5.0,
    };

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&'static str, f64); 10] = [
            ("sigma_m", self.sigma_m),
            ("robust_from_sigmas", self.robust_from_sigmas),
            ("search_radius_m", self.search_radius_m),
            ("emission_beam", self.emission_beam),
            ("beta_m", self.beta_m),
            ("max_detour_ratio", self.max_detour_ratio),
            ("transition_beam", self.transition_beam),
            ("max_speed_mps", self.max_speed_mps),
            ("break_gap_s", self.break_gap_s),
            ("max_lag_s", self.max_lag_s),
        ];
        for (setting, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be a positive number, got {value}"),
                ));
            }
        }
        let non_negative: [(&'static str, f64); 10] = [
            ("noise_correlation_s", self.noise_correlation_s),
            ("sigma_prior_fixes", self.sigma_prior_fixes),
            ("beta_prior_steps", self.beta_prior_steps),
            ("turn_penalty_m", self.turn_penalty_m),
            ("reorder_window_s", self.reorder_window_s),
            ("beta_per_m", self.beta_per_m),
            ("route_slack_m", self.route_slack_m),
            ("u_turn_penalty_m", self.u_turn_penalty_m),
            ("backtrack_m", self.backtrack_m),
            ("stationary_m", self.stationary_m),
        ];
        for (setting, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    setting,
                    format!("must be zero or more, got {value}"),
                ));
            }
        }
        if self.max_detour_ratio < 1.0 {
            return Err(invalid("max_detour_ratio", "must be at least 1".into()));
        }
        // Candidate indices are stored in 16 bits in the lattice.
        if !(1..=256).contains(&self.max_candidates) {
            return Err(invalid("max_candidates", "must be in 1..=256".into()));
        }
        if self.max_roads == 0 {
            return Err(invalid("max_roads", "must be at least 1".into()));
        }
        if self.max_lag_steps == 0 {
            return Err(invalid("max_lag_steps", "must be at least 1".into()));
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: String) -> Error {
    Error::InvalidConfig { setting, reason }
}
