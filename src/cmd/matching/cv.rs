//! `tracker match-eval --cv K`: the matcher's fixed settings chosen by k-fold
//! cross-validation on the track folders, so that the figures say how well the
//! matcher does on tracks its settings were not chosen on.
//!
//! Every track (unflagged ones only: the flagged have unreliable ground truth)
//! is matched once with every point of a small grid of settings, at every
//! sampling interval, in parallel; the folds then only choose. Track `j` of the
//! sorted ids belongs to fold `j mod K`. For each fold, the grid point with the
//! lowest mean mismatch over the other folds' tracks (averaged over the
//! intervals, so that one setting serves every sampling rate, as it must live)
//! is chosen, and the fold's own tracks are scored with it. The summary is of
//! those held-out scores; beside it, the base settings (`MatcherConfig::TRUCK`
//! with `--set` overrides) scored on the same tracks, for comparison.

use std::sync::atomic::{AtomicUsize, Ordering};

use engine::MatcherConfig;
use rayon::prelude::*;
use serde_json::{Value, json};

use super::{Track, config_with, match_and_score, summary};
use crate::cmd::bad_input;

/// The grid searched when `--cv-grid` is not given: the GPS noise, the
/// transition scale and how long GPS errors stay alike, the settings the
/// figures move with, each around `MatcherConfig::TRUCK`'s value.
pub(super) const DEFAULT_GRID: [&str; 3] = [
    "sigma_m=5,8,12",
    "beta_m=8,16,32",
    "noise_correlation_s=0,15,30",
];

/// One axis of the grid: a setting and its candidate values.
struct Axis {
    name: String,
    values: Vec<String>,
}

fn parse_grid(items: &[String]) -> anyhow::Result<Vec<Axis>> {
    items
        .iter()
        .map(|item| {
            let (name, values) = item
                .split_once('=')
                .ok_or_else(|| bad_input(format!("--cv-grid {item:?}: expected NAME=V1,V2,…")))?;
            let values: Vec<String> = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            if values.is_empty() {
                return Err(bad_input(format!("--cv-grid {name}: no values")));
            }
            Ok(Axis {
                name: name.trim().to_string(),
                values,
            })
        })
        .collect()
}

/// Every combination of the axes' values, as `--set` overrides on top of the
/// base ones, each checked into a config.
fn grid_points(
    base: &[String],
    axes: &[Axis],
) -> anyhow::Result<Vec<(Vec<String>, MatcherConfig)>> {
    let mut points: Vec<Vec<String>> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push(format!("{}={v}", axis.name));
                    p
                })
            })
            .collect();
    }
    points
        .into_iter()
        .map(|overrides| {
            let mut all = base.to_vec();
            all.extend(overrides.iter().cloned());
            let config = config_with(&all)?;
            Ok((overrides, config))
        })
        .collect()
}

/// The result of a cross-validation, ready to print.
pub(super) struct CvReport {
    pub(super) folds: usize,
    pub(super) grid: usize,
    /// Per fold: its track ids and the overrides chosen without them.
    pub(super) chosen: Vec<(Vec<String>, Vec<String>)>,
    /// Per interval: held-out scores and the base settings' scores, per track.
    pub(super) held_out: Vec<Vec<f64>>,
    pub(super) base: Vec<Vec<f64>>,
}

/// Runs the cross-validation over `tracks` (already loaded, unflagged).
pub(super) fn cross_validate(
    tracks: &[Track],
    every: &[f64],
    k: usize,
    base_overrides: &[String],
    grid: &[String],
    tolerance_m: f64,
) -> anyhow::Result<CvReport> {
    if !(2..=tracks.len()).contains(&k) {
        return Err(bad_input(format!(
            "--cv {k}: needs 2 to {} folds (one per unflagged track at most)",
            tracks.len()
        )));
    }
    let axes = parse_grid(grid)?;
    let mut points = grid_points(base_overrides, &axes)?;
    // The base settings last, so they are scored in the same pass.
    points.push((Vec::new(), config_with(base_overrides)?));
    let n_points = points.len();
    let thinned: Vec<Vec<Vec<engine::Fix>>> = tracks
        .iter()
        .map(|t| {
            every
                .iter()
                .map(|&e| engine::thin_fixes(&t.fixes, e))
                .collect()
        })
        .collect();
    let runs = tracks.len() * n_points;
    let done = AtomicUsize::new(0);
    // scores[point][track][interval]
    let flat: Vec<anyhow::Result<Vec<f64>>> = (0..runs)
        .into_par_iter()
        .map(|run| {
            let (p, t) = (run / tracks.len(), run % tracks.len());
            let track = &tracks[t];
            let scores = thinned[t]
                .iter()
                .map(|fixes| {
                    match_and_score(track, fixes, &points[p].1, tolerance_m)
                        .map(|m| m.score.fraction)
                })
                .collect::<anyhow::Result<Vec<f64>>>();
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(16) || n == runs {
                eprint!(
                    "\rcross-validation: {n}/{runs} runs ({n_points} settings × {} tracks)",
                    tracks.len()
                );
                if n == runs {
                    eprintln!();
                }
            }
            scores
        })
        .collect();
    let mut scores = vec![Vec::with_capacity(tracks.len()); n_points];
    for (run, result) in flat.into_iter().enumerate() {
        scores[run / tracks.len()].push(result?);
    }
    let best_of_fold = fold_choices(&scores[..n_points - 1], k);
    let mut held_out = vec![Vec::new(); every.len()];
    let mut chosen = Vec::new();
    for (fold, &best) in best_of_fold.iter().enumerate() {
        let ids: Vec<String> = (0..tracks.len())
            .filter(|&t| t % k == fold)
            .map(|t| {
                for (i, held) in held_out.iter_mut().enumerate() {
                    held.push(scores[best][t][i]);
                }
                tracks[t].id.clone()
            })
            .collect();
        chosen.push((ids, points[best].0.clone()));
    }
    let base = (0..every.len())
        .map(|i| {
            (0..tracks.len())
                .map(|t| scores[n_points - 1][t][i])
                .collect()
        })
        .collect();
    Ok(CvReport {
        folds: k,
        grid: n_points - 1,
        chosen,
        held_out,
        base,
    })
}

/// For each of `k` folds (track `t` in fold `t mod k`), the grid point with the
/// lowest mean score over the other folds' tracks, averaged over the intervals;
/// ties go to the first in grid order. `scores[point][track][interval]`.
fn fold_choices(scores: &[Vec<Vec<f64>>], k: usize) -> Vec<usize> {
    let n_tracks = scores.first().map_or(0, Vec::len);
    let n_intervals = scores
        .first()
        .and_then(|s| s.first())
        .map_or(0, Vec::len)
        .max(1);
    (0..k)
        .map(|fold| {
            let train: Vec<usize> = (0..n_tracks).filter(|&t| t % k != fold).collect();
            let objective = |p: usize| -> f64 {
                let total: f64 = train.iter().flat_map(|&t| &scores[p][t]).sum();
                total / (train.len().max(1) * n_intervals) as f64
            };
            (0..scores.len())
                .min_by(|&a, &b| objective(a).total_cmp(&objective(b)))
                .unwrap_or(0)
        })
        .collect()
}

impl CvReport {
    pub(super) fn to_json(&self, every: &[f64], tolerance_m: f64) -> Value {
        let stats = |values: &[f64]| match summary(values) {
            Some((median, mean, p90)) => {
                json!({"tracks": values.len(), "median": median, "mean": mean, "p90": p90})
            }
            None => json!({"tracks": 0}),
        };
        let rates: Vec<Value> = every
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({"every_s": e, "held_out": stats(&self.held_out[i]), "base": stats(&self.base[i])})
            })
            .collect();
        let folds: Vec<Value> = self
            .chosen
            .iter()
            .map(|(ids, set)| json!({"tracks": ids, "chosen": set}))
            .collect();
        json!({
            "tolerance_m": tolerance_m, "folds": self.folds, "grid_points": self.grid,
            "rates": rates, "fold_choices": folds,
        })
    }

    pub(super) fn print(&self, every: &[f64], tolerance_m: f64) {
        println!(
            "route mismatch fraction, {}-fold cross-validation over {} settings (tolerance {tolerance_m} m)",
            self.folds, self.grid
        );
        println!(
            "every_s | held-out n  median    mean     p90 | base settings median    mean     p90"
        );
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        for (i, e) in every.iter().enumerate() {
            let (Some(h), Some(b)) = (summary(&self.held_out[i]), summary(&self.base[i])) else {
                continue;
            };
            println!(
                "{e:>7} | {:>10} {:>7} {:>7} {:>7} | {:>20} {:>7} {:>7}",
                self.held_out[i].len(),
                pct(h.0),
                pct(h.1),
                pct(h.2),
                pct(b.0),
                pct(b.1),
                pct(b.2)
            );
        }
        for (fold, (ids, set)) in self.chosen.iter().enumerate() {
            println!(
                "fold {fold} ({} tracks): {}",
                ids.len(),
                if set.is_empty() {
                    "-".to_string()
                } else {
                    set.join(" ")
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two settings, four tracks, one interval. Setting 1 is better on tracks
    /// 0, 1 and 2 but far worse on track 3: the fold holding track 3 out picks
    /// setting 1 (chosen without it), the other picks setting 0, whose training
    /// tracks include track 3.
    #[test]
    fn each_fold_is_scored_by_settings_chosen_without_it() {
        let scores = vec![
            vec![vec![0.02], vec![0.02], vec![0.02], vec![0.02]],
            vec![vec![0.01], vec![0.01], vec![0.01], vec![0.50]],
        ];
        // Fold 0 holds tracks 0 and 2 out, trains on 1 and 3: setting 0.
        // Fold 1 holds tracks 1 and 3 out, trains on 0 and 2: setting 1.
        assert_eq!(fold_choices(&scores, 2), vec![0, 1]);
    }

    #[test]
    fn the_grid_is_every_combination_checked() {
        let axes = parse_grid(&["sigma_m=4,6".into(), "beta_m=5,7,9".into()]).expect("grid");
        let points = grid_points(&[], &axes).expect("valid settings");
        assert_eq!(points.len(), 6);
        assert_eq!(points[5].1.sigma_m, 6.0);
        assert_eq!(points[5].1.beta_m, 9.0);
        assert!(grid_points(&[], &parse_grid(&["sigma_m=-1".into()]).expect("parses")).is_err());
        assert!(parse_grid(&["sigma_m".into()]).is_err());
    }
}
