//! `tracker match`: a whole trace file through the online matcher, written as
//! GeoJSON; and `tracker match-eval`: the accuracy harness over track folders with
//! ground truth (the Kubicka data set), scored by route mismatch fraction at
//! several sampling intervals, or by k-fold cross-validation of the settings
//! (`--cv`, in `cv.rs`).

mod cv;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use engine::{FixOutcome, Matcher, MatcherConfig};
use road_graph::{LatLon, RoadGraph};
use serde_json::{Value, json};

use super::{bad_input, open_map};

/// `tracker match`.
#[derive(Debug, clap::Args)]
pub(crate) struct MatchArgs {
    /// Road graph: `.graph` snapshot or `.osm.pbf`.
    #[arg(long)]
    map: PathBuf,
    /// Trace: CSV (`lat`, `lon`, `t`/`time`/`timestamp`) or GPX.
    #[arg(long)]
    trace: PathBuf,
    /// Write the GeoJSON here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a matcher setting, `name=value` (repeatable), e.g. `sigma_m=8`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// `tracker match-eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct MatchEvalArgs {
    /// Folder of track folders `NNN/` each with `NNN.osm.pbf`, `NNN.track.csv`
    /// and `NNN.route.geojson`; a `TRACKS.csv` with a `flag` column marks tracks
    /// to score apart.
    #[arg(long)]
    dir: PathBuf,
    /// Sampling intervals to thin each track to, seconds.
    #[arg(long, value_delimiter = ',', default_value = "1,15,60,300")]
    every: Vec<f64>,
    /// Only these track ids (comma separated).
    #[arg(long, value_delimiter = ',')]
    tracks: Vec<String>,
    /// Distance within which a piece of route counts as covered, metres.
    #[arg(long, default_value_t = 5.0)]
    tolerance_m: f64,
    /// Write each matched path as `ID.every-S.geojson` here (to check the score
    /// with another tool).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Override a matcher setting, `name=value` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Cross-validate: K folds over the unflagged tracks; each fold's tracks are
    /// scored with the grid point chosen on the other folds' tracks.
    #[arg(long, value_name = "K")]
    cv: Option<usize>,
    /// The grid `--cv` searches, `name=v1,v2,…` per setting (repeatable);
    /// default: sigma_m=5,8,12 beta_m=8,16,32 noise_correlation_s=0,15,30.
    #[arg(long = "cv-grid", value_name = "NAME=V1,V2")]
    cv_grid: Vec<String>,
    /// Degrade every track first: move each fix by a simulated GPS error of
    /// this many metres (1 sigma per axis), to see how the matcher does on a
    /// poorer device than the one that recorded the tracks. Seeded by the
    /// track id, so runs repeat.
    #[arg(long, default_value_t = 0.0, value_name = "M")]
    noise_m: f64,
    /// Correlation time of that error, seconds (a first-order Gauss-Markov
    /// process, as GPS errors drift); 0 draws every fix's error afresh.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    noise_tau_s: f64,
}

/// How the report names the added error, if any.
fn noise_note(noise: Option<Noise>) -> String {
    noise.map_or(String::new(), |n| {
        format!(
            ", fixes moved by a simulated GPS error of {} m (correlation time {} s)",
            n.sigma_m, n.tau_s
        )
    })
}

/// The simulated GPS error of `--noise-m`.
#[derive(Debug, Clone, Copy)]
struct Noise {
    sigma_m: f64,
    tau_s: f64,
}

impl Noise {
    fn from_args(args: &MatchEvalArgs) -> anyhow::Result<Option<Noise>> {
        if !(args.noise_m.is_finite() && args.noise_m >= 0.0) {
            return Err(bad_input("--noise-m: must be zero or more metres"));
        }
        if !(args.noise_tau_s.is_finite() && args.noise_tau_s >= 0.0) {
            return Err(bad_input("--noise-tau-s: must be zero or more seconds"));
        }
        Ok((args.noise_m > 0.0).then_some(Noise {
            sigma_m: args.noise_m,
            tau_s: args.noise_tau_s,
        }))
    }

    /// Moves every fix by its error; the error of each axis follows
    /// `e' = rho e + sqrt(1 - rho^2) sigma z` with `rho = exp(-dt / tau)`, so
    /// its spread is `sigma` at every sampling interval.
    fn apply(&self, id: &str, fixes: &mut [engine::Fix]) {
        use rand::SeedableRng;
        // FNV-1a of the id: the same track gets the same error in every run.
        let seed = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut error = (0.0, 0.0);
        let mut last: Option<chrono::DateTime<chrono::Utc>> = None;
        for fix in fixes {
            let rho = match last {
                Some(t) if self.tau_s > 0.0 => {
                    let dt_s = (fix.time - t).num_milliseconds().max(0) as f64 / 1000.0;
                    (-dt_s / self.tau_s).exp()
                }
                _ => 0.0,
            };
            let fresh = (1.0 - rho * rho).sqrt() * self.sigma_m;
            error = (
                rho * error.0 + fresh * ingest::simulate::gaussian(&mut rng),
                rho * error.1 + fresh * ingest::simulate::gaussian(&mut rng),
            );
            last = Some(fix.time);
            // (north, east) metres on the fix's own local plane.
            fix.pos = road_graph::LocalPlane::new(fix.pos).to_latlon(error.1, error.0);
        }
    }
}

/// The truck settings with `name=value` overrides applied and checked.
fn config_with(overrides: &[String]) -> anyhow::Result<MatcherConfig> {
    let mut value = serde_json::to_value(MatcherConfig::TRUCK)?;
    for item in overrides {
        let (name, text) = item
            .split_once('=')
            .ok_or_else(|| bad_input(format!("--set {item:?}: expected NAME=VALUE")))?;
        let slot = value
            .get_mut(name)
            .ok_or_else(|| bad_input(format!("--set: no matcher setting `{name}`")))?;
        *slot = serde_json::from_str(text)
            .map_err(|_| bad_input(format!("--set {name}: {text:?} is not a value")))?;
    }
    let config: MatcherConfig =
        serde_json::from_value(value).map_err(|e| bad_input(format!("--set: {e}")))?;
    config.validate().map_err(bad_input)?;
    Ok(config)
}

fn read_trace(path: &Path) -> anyhow::Result<Vec<engine::Fix>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    // An untimed GPX is matched on its geometry (times made up from distances).
    let fixes = engine::parse_trace(&text)
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?
        .fixes;
    if fixes.is_empty() {
        return Err(bad_input(format!("{}: no fixes", path.display())));
    }
    Ok(fixes)
}

fn coords(points: &[LatLon]) -> Value {
    Value::Array(
        points
            .iter()
            .map(|p| json!([round7(p.lon), round7(p.lat)]))
            .collect(),
    )
}

fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

/// The `tracker match` GeoJSON: path LineStrings in driving order, then a Point
/// per input fix.
fn match_geojson(
    graph: &RoadGraph,
    fixes: &[engine::Fix],
    config: &MatcherConfig,
) -> anyhow::Result<(Value, engine::MatchCounters)> {
    let mut matcher = Matcher::new(graph, config.clone()).map_err(bad_input)?;
    let (finals, traversals, counters) = engine::match_trace(&mut matcher, fixes);
    let mut features = Vec::new();
    for (chain, (points, way_ids)) in engine::traversal_paths(graph, &traversals)
        .into_iter()
        .enumerate()
    {
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords(&points)},
            "properties": {"way_ids": way_ids, "chain": chain},
        }));
    }
    for (fix, m) in fixes.iter().zip(&finals) {
        let time = m.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        features.push(match &m.outcome {
            FixOutcome::Matched(p) => json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round7(p.point.lon), round7(p.point.lat)]},
                "properties": {
                    "seq": m.seq, "time": time, "matched": true,
                    "way_id": graph.edge_way_id(p.edge), "edge": p.edge.0,
                    "offset_m": (p.offset_m * 10.0).round() / 10.0,
                    "distance_m": (p.distance_m * 10.0).round() / 10.0,
                    "confidence": (p.confidence * 1000.0).round() / 1000.0,
                },
            }),
            FixOutcome::Unmatched { reason } => json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round7(fix.pos.lon), round7(fix.pos.lat)]},
                "properties": {"seq": m.seq, "time": time, "matched": false, "reason": reason.as_str()},
            }),
        });
    }
    Ok((
        json!({"type": "FeatureCollection", "features": features}),
        counters,
    ))
}

pub(crate) fn run_match(args: MatchArgs) -> anyhow::Result<()> {
    let config = config_with(&args.set)?;
    let fixes = read_trace(&args.trace)?;
    let (road_graph::Snapshot { graph, .. }, _) = open_map(&args.map)?;
    let (doc, counters) = match_geojson(&graph, &fixes, &config)?;
    let text = serde_json::to_string(&doc)?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    eprintln!(
        "matched {} of {} fixes ({} without a road nearby, {} duplicates, {} out of order, {} chain breaks)",
        counters.matched,
        counters.fixes,
        counters.no_road_nearby,
        counters.duplicates,
        counters.out_of_order,
        counters.breaks
    );
    Ok(())
}

/// The true route's lines from a GeoJSON Feature, FeatureCollection or geometry.
fn truth_lines(value: &Value, out: &mut Vec<Vec<LatLon>>) {
    let line = |c: &Value| -> Vec<LatLon> {
        c.as_array()
            .map(|pts| {
                pts.iter()
                    .filter_map(|p| Some(LatLon::new(p.get(1)?.as_f64()?, p.get(0)?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    match value.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            for f in value["features"].as_array().into_iter().flatten() {
                truth_lines(f, out);
            }
        }
        Some("Feature") => truth_lines(&value["geometry"], out),
        Some("LineString") => out.push(line(&value["coordinates"])),
        Some("MultiLineString") => {
            for c in value["coordinates"].as_array().into_iter().flatten() {
                out.push(line(c));
            }
        }
        _ => {}
    }
}

/// One track, ready to match at every interval.
struct Track {
    id: String,
    flag: String,
    graph: RoadGraph,
    fixes: Vec<engine::Fix>,
    truth: Vec<Vec<LatLon>>,
}

fn load_track(dir: &Path, id: &str, flag: &str, noise: Option<Noise>) -> anyhow::Result<Track> {
    let folder = dir.join(id);
    // The same graph as `tracker match` (every component: the extracts are
    // clipped around the track, and the largest strongly connected one alone
    // drops one-way roads cut at the clip's edge, sometimes on the true route).
    let (graph, _) = road_graph::import_pbf(
        &folder.join(format!("{id}.osm.pbf")),
        &road_graph::ProfileConfig::TRUCK,
        &mut |_| {},
    )
    .map_err(|e| bad_input(format!("track {id}: {e}")))?;
    let mut fixes = read_trace(&folder.join(format!("{id}.track.csv")))?;
    if let Some(noise) = noise {
        noise.apply(id, &mut fixes);
    }
    let truth_path = folder.join(format!("{id}.route.geojson"));
    let text = std::fs::read_to_string(&truth_path)
        .map_err(|e| bad_input(format!("{}: {e}", truth_path.display())))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| bad_input(format!("{}: {e}", truth_path.display())))?;
    let mut truth = Vec::new();
    truth_lines(&value, &mut truth);
    Ok(Track {
        id: id.to_string(),
        flag: flag.to_string(),
        graph,
        fixes,
        truth,
    })
}

/// One track's fixes matched and scored against its true route.
struct Scored {
    score: engine::RouteMismatch,
    counters: engine::MatchCounters,
    lines: Vec<Vec<LatLon>>,
    seconds: f64,
}

fn match_and_score(
    track: &Track,
    fixes: &[engine::Fix],
    config: &MatcherConfig,
    tolerance_m: f64,
) -> anyhow::Result<Scored> {
    let mut matcher = Matcher::new(&track.graph, config.clone()).map_err(bad_input)?;
    let started = Instant::now();
    let (_, traversals, counters) = engine::match_trace(&mut matcher, fixes);
    let seconds = started.elapsed().as_secs_f64();
    let lines: Vec<Vec<LatLon>> = engine::traversal_paths(&track.graph, &traversals)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let score = engine::route_mismatch(&track.truth, &lines, tolerance_m);
    Ok(Scored {
        score,
        counters,
        lines,
        seconds,
    })
}

/// `(median, mean, p90)`, p90 as the peer's script computes it.
fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let mean = v.iter().sum::<f64>() / n as f64;
    let p90 = v[(n * 9).div_ceil(10).saturating_sub(1).min(n - 1)];
    Some((median, mean, p90))
}

fn track_ids(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let flags_path = dir.join("TRACKS.csv");
    let mut flags = std::collections::HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&flags_path) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let id_col = header.iter().position(|h| *h == "id");
        let flag_col = header.iter().position(|h| *h == "flag");
        if let (Some(id_col), Some(flag_col)) = (id_col, flag_col) {
            for line in lines {
                let fields: Vec<&str> = line.split(',').collect();
                if let (Some(id), Some(flag)) = (fields.get(id_col), fields.get(flag_col)) {
                    flags.insert(id.to_string(), flag.to_string());
                }
            }
        }
    }
    let mut ids = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let id = entry.file_name().to_string_lossy().to_string();
        if entry.path().join(format!("{id}.track.csv")).exists() {
            let flag = flags.get(&id).cloned().unwrap_or_default();
            ids.push((id, flag));
        }
    }
    ids.sort();
    Ok(ids)
}

pub(crate) fn run_eval(args: MatchEvalArgs) -> anyhow::Result<()> {
    let config = config_with(&args.set)?;
    let noise = Noise::from_args(&args)?;
    if args.every.iter().any(|e| !(e.is_finite() && *e > 0.0)) {
        return Err(bad_input("--every: intervals must be positive seconds"));
    }
    let mut ids = track_ids(&args.dir)?;
    if !args.tracks.is_empty() {
        ids.retain(|(id, _)| args.tracks.contains(id));
    }
    if ids.is_empty() {
        return Err(bad_input(format!(
            "{}: no track folders",
            args.dir.display()
        )));
    }
    if let Some(k) = args.cv {
        return run_cv(&args, &ids, k, noise);
    }
    if let Some(out_dir) = &args.out_dir {
        std::fs::create_dir_all(out_dir)?;
    }
    // Per interval: (track id, flagged, fraction), fixes matched, seconds matching.
    type IntervalResults = (Vec<(String, bool, f64)>, usize, f64);
    let mut results: Vec<IntervalResults> = vec![(Vec::new(), 0, 0.0); args.every.len()];
    for (id, flag) in &ids {
        let track = load_track(&args.dir, id, flag, noise)?;
        let mut line = format!(
            "{id} {:<28}",
            if track.flag.is_empty() {
                "-"
            } else {
                &track.flag
            }
        );
        for (k, &every_s) in args.every.iter().enumerate() {
            let fixes = engine::thin_fixes(&track.fixes, every_s);
            let Scored {
                score,
                counters,
                lines,
                seconds,
            } = match_and_score(&track, &fixes, &config, args.tolerance_m)?;
            if let Some(out_dir) = &args.out_dir {
                let features: Vec<Value> = lines
                    .iter()
                    .map(|l| json!({"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": coords(l)}}))
                    .collect();
                let doc = json!({"type": "FeatureCollection", "features": features});
                std::fs::write(
                    out_dir.join(format!("{id}.every-{every_s}.geojson")),
                    doc.to_string(),
                )?;
            }
            results[k]
                .0
                .push((track.id.clone(), !track.flag.is_empty(), score.fraction));
            results[k].1 += fixes.len();
            results[k].2 += seconds;
            line.push_str(&format!(
                " {:>5}s:{:>6.2}% b{:<3}",
                every_s,
                score.fraction * 100.0,
                counters.breaks
            ));
        }
        if !args.json {
            eprintln!("{line}");
        }
    }
    let mut rates = Vec::new();
    for (k, &every_s) in args.every.iter().enumerate() {
        let (scores, fixes, seconds) = &results[k];
        let pick = |flagged: bool| -> Vec<f64> {
            scores
                .iter()
                .filter(|s| s.1 == flagged)
                .map(|s| s.2)
                .collect()
        };
        let stats = |values: &[f64]| -> Value {
            match summary(values) {
                Some((median, mean, p90)) => {
                    json!({"tracks": values.len(), "median": median, "mean": mean, "p90": p90})
                }
                None => json!({"tracks": 0}),
            }
        };
        let per_track: serde_json::Map<String, Value> = scores
            .iter()
            .map(|(id, _, f)| (id.clone(), json!(f)))
            .collect();
        rates.push(json!({
            "every_s": every_s,
            "unflagged": stats(&pick(false)),
            "flagged": stats(&pick(true)),
            "fixes": fixes,
            "fixes_per_s": if *seconds > 0.0 { *fixes as f64 / seconds } else { 0.0 },
            "tracks": per_track,
        }));
    }
    if args.json {
        println!(
            "{}",
            json!({"tolerance_m": args.tolerance_m, "noise_m": args.noise_m, "noise_tau_s": args.noise_tau_s, "rates": rates})
        );
    } else {
        println!(
            "route mismatch fraction (tolerance {} m){}",
            args.tolerance_m,
            noise_note(noise)
        );
        println!(
            "every_s | unflagged n  median    mean     p90 | flagged n  median    mean | fixes/s"
        );
        for r in &rates {
            let u = &r["unflagged"];
            let f = &r["flagged"];
            let pct = |v: &Value| {
                v.as_f64()
                    .map_or("-".to_string(), |x| format!("{:.2}%", x * 100.0))
            };
            println!(
                "{:>7} | {:>11} {:>7} {:>7} {:>7} | {:>9} {:>7} {:>7} | {:>7.0}",
                r["every_s"],
                u["tracks"],
                pct(&u["median"]),
                pct(&u["mean"]),
                pct(&u["p90"]),
                f["tracks"],
                pct(&f["median"]),
                pct(&f["mean"]),
                r["fixes_per_s"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// `match-eval --cv K`: loads the unflagged tracks (in parallel) and
/// cross-validates the grid over them.
fn run_cv(
    args: &MatchEvalArgs,
    ids: &[(String, String)],
    k: usize,
    noise: Option<Noise>,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let tracks: Vec<Track> = ids
        .par_iter()
        .filter(|(_, flag)| flag.is_empty())
        .map(|(id, flag)| load_track(&args.dir, id, flag, noise))
        .collect::<anyhow::Result<_>>()?;
    let grid: Vec<String> = if args.cv_grid.is_empty() {
        cv::DEFAULT_GRID.iter().map(|s| s.to_string()).collect()
    } else {
        args.cv_grid.clone()
    };
    let report = cv::cross_validate(&tracks, &args.every, k, &args.set, &grid, args.tolerance_m)?;
    if args.json {
        let mut doc = report.to_json(&args.every, args.tolerance_m);
        doc["noise_m"] = json!(args.noise_m);
        doc["noise_tau_s"] = json!(args.noise_tau_s);
        println!("{doc}");
    } else {
        let note = noise_note(noise);
        if !note.is_empty() {
            println!("tracks degraded{note}");
        }
        report.print(&args.every, args.tolerance_m);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_the_peer_scripts_rank() {
        let v: Vec<f64> = (1..=29).map(f64::from).collect();
        let (median, _, p90) = summary(&v).expect("non-empty");
        assert_eq!(median, 15.0);
        assert_eq!(p90, 27.0);
    }

    /// `--noise-m 20`: the fixes spread by 20 m per axis whatever the
    /// correlation time; with 30 s, neighbouring 1 s errors nearly agree (a
    /// drifting GPS), without, they are independent; and a track's error
    /// repeats from run to run.
    #[test]
    fn simulated_gps_error_has_its_spread_and_drift() {
        let still = |n: i64| -> Vec<engine::Fix> {
            (0..n)
                .map(|i| engine::Fix {
                    time: chrono::DateTime::from_timestamp(1_700_000_000 + i, 0)
                        .expect("valid time"),
                    pos: LatLon::new(45.0, 7.0),
                    accuracy_m: None,
                })
                .collect()
        };
        let plane = road_graph::LocalPlane::new(LatLon::new(45.0, 7.0));
        let north_m = |fixes: &[engine::Fix]| -> Vec<f64> {
            fixes.iter().map(|f| plane.to_xy(f.pos).1).collect()
        };
        for tau_s in [0.0, 30.0] {
            let noise = Noise {
                sigma_m: 20.0,
                tau_s,
            };
            let mut fixes = still(40_000);
            noise.apply("00000003", &mut fixes);
            let e = north_m(&fixes);
            let sd = (e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt();
            assert!((18.5..21.5).contains(&sd), "tau {tau_s}: spread {sd}");
            let lag1 =
                e.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (e.len() - 1) as f64 / (sd * sd);
            let expected = if tau_s > 0.0 {
                (-1.0 / tau_s).exp()
            } else {
                0.0
            };
            assert!(
                (lag1 - expected).abs() < 0.05,
                "tau {tau_s}: lag-1 correlation {lag1}"
            );
            let mut again = still(40_000);
            noise.apply("00000003", &mut again);
            assert_eq!(fixes, again, "seeded by the track id");
        }
    }

    #[test]
    fn overrides_reach_the_config_and_bad_ones_are_bad_input() {
        let c = config_with(&["sigma_m=8".into()]).expect("valid");
        assert_eq!(c.sigma_m, 8.0);
        assert!(config_with(&["nope=1".into()]).is_err());
        assert!(config_with(&["sigma_m=-1".into()]).is_err());
    }
}
