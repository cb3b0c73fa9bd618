//! Alerts judged from published ETAs: a stop at risk of missing its
//! appointment window (`late_risk` / `late_risk_cleared`) and an ETA that moved
//! enough to tell someone (`eta_changed`). Pure and deterministic: every
//! function takes the state the store kept, the new ETA and `now` (the ETA's
//! `computed_at`, engine time), and returns the next state and what fired. The
//! store runs them inside the transaction that records the ETA, so an alert and
//! its outbox entry are written together or not at all.
//!
//! **Late risk, debounced with hysteresis.** A stop is *late* when its
//! predicted arrival (the ETA, or its p90 with `--late-risk-on p90`, the
//! default) is after the end of its window; it is *back* when the prediction is
//! at least `clear_margin` (2 min) before that end. The risk is raised only
//! once the stop has been late for `hold` (120 s, `--late-risk-hold-s`) without
//! a break, and cleared only once it has been back for `hold`: an ETA
//! jittering around the window's end never flaps. The engine publishes an ETA
//! when it moved by 30 s or at least every 5 min, so a condition is judged at
//! most 5 min after its hold ran out.
//!
//! **ETA changed.** Per subscriber (an e-mail rule or a webhook), order and
//! stop, the last ETA *announced* is kept; the first ETA seen is the baseline
//! (announcing nothing), and a later one fires when it is at least
//! `min_change` away from the announced one, unless the subscriber was told
//! about this order less than `interval` ago (10 min, `--eta-changed-every-s`);
//! then nothing moves and the next ETA is judged again.

use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};

/// Which prediction a late risk is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateRiskBasis {
    /// The ETA itself: "more likely late than not".
    Eta,
    /// The 90th percentile: "one chance in ten or more of being late".
    P90,
}

impl LateRiskBasis {
    /// Parses `eta` or `p90` (the `--late-risk-on` values).
    pub fn parse(text: &str) -> Result<LateRiskBasis> {
        match text {
            "eta" => Ok(LateRiskBasis::Eta),
            "p90" => Ok(LateRiskBasis::P90),
            other => Err(Error::InvalidConfig {
                setting: "late_risk_on",
                reason: format!("`{other}`: expected `eta` or `p90`"),
            }),
        }
    }
}

/// How alerts are judged; the binary builds it from flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    pub late_risk_on: LateRiskBasis,
    /// How long a stop must stay late (or back) before the risk is raised
    /// (or cleared).
    pub hold: Duration,
    /// How far before the window's end the prediction must come back to
    /// count as back (hysteresis).
    pub clear_margin: Duration,
    /// At most one `eta_changed` per subscriber and order this often.
    pub eta_changed_every: Duration,
}

impl AlertPolicy {
    /// The defaults: p90, 120 s hold, 2 min margin, 10 min between ETA changes.
    pub fn recommended() -> AlertPolicy {
        AlertPolicy {
            late_risk_on: LateRiskBasis::P90,
            hold: Duration::seconds(120),
            clear_margin: Duration::seconds(120),
            eta_changed_every: Duration::minutes(10),
        }
    }

    /// Checks the settings; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let non_negative = |setting: &'static str, d: Duration| {
            if d < Duration::zero() {
                Err(Error::InvalidConfig {
                    setting,
                    reason: "must not be negative".into(),
                })
            } else {
                Ok(())
            }
        };
        non_negative("late_risk_hold_s", self.hold)?;
        non_negative("late_risk_clear_margin_s", self.clear_margin)?;
        non_negative("eta_changed_every_s", self.eta_changed_every)
    }
}

/// A stop declared at risk: since when it has been late, and by how many
/// minutes (rounded up) its prediction passes the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateRisk {
    pub since: DateTime<Utc>,
    pub by_min: i64,
}

/// What the store keeps per stop between two ETAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LateRiskState {
    /// The risk, once raised.
    pub at_risk: Option<LateRisk>,
    /// When the opposite of the current state was first seen (late while not
    /// at risk, back while at risk), until it has held long enough.
    pub turning_since: Option<DateTime<Utc>>,
}

/// What an assessment fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateRiskChange {
    Raised(LateRisk),
    /// The risk raised at `since` is over.
    Cleared {
        since: DateTime<Utc>,
    },
}

/// Minutes from `to` to `at`, rounded up (0 when not after).
fn minutes_after(at: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let s = (at - to).num_seconds();
    if s <= 0 { 0 } else { (s + 59) / 60 }
}

/// Judges one new prediction of a stop whose window ends at `window_to`.
pub fn assess_late_risk(
    state: LateRiskState,
    eta: DateTime<Utc>,
    p90: DateTime<Utc>,
    window_to: DateTime<Utc>,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> (LateRiskState, Option<LateRiskChange>) {
    let predicted = match policy.late_risk_on {
        LateRiskBasis::Eta => eta,
        LateRiskBasis::P90 => p90,
    };
    let late = predicted > window_to;
    let back = predicted <= window_to - policy.clear_margin;
    let by_min = minutes_after(predicted, window_to);
    match state.at_risk {
        None if late => {
            let since = state.turning_since.unwrap_or(now);
            if now - since >= policy.hold {
                let risk = LateRisk { since, by_min };
                (
                    LateRiskState {
                        at_risk: Some(risk),
                        turning_since: None,
                    },
                    Some(LateRiskChange::Raised(risk)),
                )
            } else {
                (
                    LateRiskState {
                        at_risk: None,
                        turning_since: Some(since),
                    },
                    None,
                )
            }
        }
        None => (LateRiskState::default(), None),
        Some(risk) if back => {
            let since = state.turning_since.unwrap_or(now);
            if now - since >= policy.hold {
                (
                    LateRiskState::default(),
                    Some(LateRiskChange::Cleared { since: risk.since }),
                )
            } else {
                (
                    LateRiskState {
                        at_risk: Some(risk),
                        turning_since: Some(since),
                    },
                    None,
                )
            }
        }
        Some(risk) => {
            // Still late, or inside the hysteresis band: the risk stays, with
            // the latest overshoot when there is one.
            let by_min = if late { by_min } else { risk.by_min };
            (
                LateRiskState {
                    at_risk: Some(LateRisk { by_min, ..risk }),
                    turning_since: None,
                },
                None,
            )
        }
    }
}

/// The last ETA announced to one subscriber about one stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced {
    pub eta: DateTime<Utc>,
}

/// What an ETA means to one `eta_changed` subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtaChangeVerdict {
    /// The first ETA of the stop: remembered, not announced.
    Baseline,
    /// Moved by `change_min` minutes (signed: positive is later) from
    /// `previous`: announce it.
    Fire {
        previous: DateTime<Utc>,
        change_min: i64,
    },
    /// Not enough change, or told too recently: nothing moves.
    Quiet,
}

/// Judges `eta` for a subscriber who wants changes of `min_change` or more,
/// given what it was last told about this stop and when it was last told
/// anything about this order.
pub fn assess_eta_change(
    last: Option<Announced>,
    last_fired_for_order: Option<DateTime<Utc>>,
    eta: DateTime<Utc>,
    min_change: Duration,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> EtaChangeVerdict {
    let Some(last) = last else {
        return EtaChangeVerdict::Baseline;
    };
    let moved = eta - last.eta;
    if moved.abs() < min_change {
        return EtaChangeVerdict::Quiet;
    }
    if last_fired_for_order.is_some_and(|at| now - at < policy.eta_changed_every) {
        return EtaChangeVerdict::Quiet;
    }
    EtaChangeVerdict::Fire {
        previous: last.eta,
        change_min: moved.num_seconds() / 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_000_000 + s, 0).expect("time")
    }

    /// The window ends at t(3600); each step is (now, p90 offset from the end).
    fn play(policy: &AlertPolicy, steps: &[(i64, i64)]) -> Vec<(i64, LateRiskChange)> {
        let end = t(3600);
        let mut state = LateRiskState::default();
        let mut fired = Vec::new();
        for &(now, p90_after_end_s) in steps {
            let p90 = end + Duration::seconds(p90_after_end_s);
            let (next, change) = assess_late_risk(state, p90, p90, end, policy, t(now));
            state = next;
            if let Some(change) = change {
                fired.push((now, change));
            }
        }
        fired
    }

    #[test]
    fn a_truck_falling_behind_raises_once_after_the_hold_then_clears_once() {
        let policy = AlertPolicy::recommended();
        let fired = play(
            &policy,
            &[
                (0, -600),   // on time
                (60, 300),   // late: the hold starts
                (120, 420),  // still late, 60 s: not yet
                (180, 600),  // 120 s late: raised, since t(60), by 10 min
                (240, 900),  // later still: no second alert
                (300, -60),  // inside the band: not back yet
                (360, -300), // back: the hold starts
                (420, -300), // 60 s back
                (480, -300), // 120 s back: cleared
                (540, -300),
            ],
        );
        assert_eq!(
            fired,
            vec![
                (
                    180,
                    LateRiskChange::Raised(LateRisk {
                        since: t(60),
                        by_min: 10
                    })
                ),
                (480, LateRiskChange::Cleared { since: t(60) }),
            ]
        );
    }

    #[test]
    fn an_eta_jittering_around_the_window_end_never_fires() {
        let policy = AlertPolicy::recommended();
        let steps: Vec<(i64, i64)> = (0..40)
            .map(|i| (i * 30, if i % 3 == 0 { 45 } else { -30 }))
            .collect();
        assert_eq!(play(&policy, &steps), vec![]);
    }

    #[test]
    fn the_basis_decides_which_prediction_counts() {
        let end = t(3600);
        let eta = end - Duration::minutes(5);
        let p90 = end + Duration::minutes(20);
        let held = LateRiskState {
            at_risk: None,
            turning_since: Some(t(0)),
        };
        let p90_policy = AlertPolicy::recommended();
        let (_, change) = assess_late_risk(held, eta, p90, end, &p90_policy, t(600));
        assert!(matches!(
            change,
            Some(LateRiskChange::Raised(LateRisk { by_min: 20, .. }))
        ));
        let eta_policy = AlertPolicy {
            late_risk_on: LateRiskBasis::Eta,
            ..p90_policy
        };
        let (state, change) = assess_late_risk(held, eta, p90, end, &eta_policy, t(600));
        assert_eq!((state, change), (LateRiskState::default(), None));
        assert!(LateRiskBasis::parse("p50").is_err());
    }

    #[test]
    fn eta_changes_need_the_threshold_and_respect_the_interval() {
        let policy = AlertPolicy::recommended();
        let min = Duration::minutes(15);
        let base = Announced { eta: t(3600) };
        assert_eq!(
            assess_eta_change(None, None, t(3600), min, &policy, t(0)),
            EtaChangeVerdict::Baseline
        );
        assert_eq!(
            assess_eta_change(Some(base), None, t(3600 + 14 * 60), min, &policy, t(60)),
            EtaChangeVerdict::Quiet,
            "14 minutes is under the threshold"
        );
        assert_eq!(
            assess_eta_change(Some(base), None, t(3600 - 20 * 60), min, &policy, t(60)),
            EtaChangeVerdict::Fire {
                previous: t(3600),
                change_min: -20
            },
            "earlier counts too"
        );
        assert_eq!(
            assess_eta_change(
                Some(base),
                Some(t(0)),
                t(3600 + 30 * 60),
                min,
                &policy,
                t(300)
            ),
            EtaChangeVerdict::Quiet,
            "told about this order 5 minutes ago"
        );
        assert!(matches!(
            assess_eta_change(
                Some(base),
                Some(t(0)),
                t(3600 + 30 * 60),
                min,
                &policy,
                t(600)
            ),
            EtaChangeVerdict::Fire { change_min: 30, .. }
        ));
    }
}
