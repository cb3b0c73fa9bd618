//! `tracker eta-eval`: replays timed traces through the whole chain (online map
//! matching, live traffic from the vehicle's own passages with periodic
//! re-customization, the per-vehicle tracker and its ETA) and, at every fix,
//! compares the predicted arrival at the trace's last point with the real one,
//! next to the free-flow route time from the same matched position.
//!
//! One calibrator is shared by all traces in the order given, and learns only
//! from outcomes already known at the time (checkpoints passed, earlier traces'
//! arrivals), as it would in service.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};

use engine::{
    CalibrationConfig, Calibrator, Fix, MatchEvents, MatchState, Matcher, MatcherConfig, Metric,
    MetricVersion, OrderId, Router, Snap, SpeedProfile, StopPlan, TrackedStop, TrackerConfig,
    TrackerCounters, TrackingContext, TrafficConfig, TrafficModel, TurnCosts, Tz, VehicleFix,
    VehicleTracker,
};
use serde_json::{Value, json};

use super::{bad_input, open_map};

/// `tracker eta-eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct EtaEvalArgs {
    /// Road graph (`.graph` or `.osm.pbf`): once for all traces, or once per
    /// trace in the same order.
    #[arg(long)]
    map: Vec<PathBuf>,
    /// Trace files: CSV (`lat`, `lon`, `t`/`time`/`timestamp`) or GPX.
    #[arg(long, num_args = 1..)]
    trace: Vec<PathBuf>,
    /// A folder of track folders `NNN/` with `NNN.osm.pbf` and `NNN.track.csv`
    /// (the Kubicka layout), each trace on its own map; `TRACKS.csv` flags are
    /// reported per trace.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only these track ids of `--dir` (comma separated).
    #[arg(long, value_delimiter = ',')]
    tracks: Vec<String>,
    /// Thin each trace to one fix every this many seconds (0: keep all).
    #[arg(long, default_value_t = 0.0)]
    every: f64,
    /// Re-customize the routing metric from live traffic every this many
    /// seconds of trace time.
    #[arg(long, default_value_t = 30.0)]
    recustomize_s: f64,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Write every prediction as CSV here (trace, time, actual and predicted
    /// time to go, p10, p90, baseline, remaining distance, pace).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Override a tracker setting, `name=value` (repeatable; nested names with
    /// dots, e.g. `eta.pace.persistence=0.9`; `calibration.NAME` for the
    /// calibrator).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// The tracker and calibrator settings with `--set` overrides applied and checked.
fn settings(overrides: &[String]) -> anyhow::Result<(TrackerConfig, CalibrationConfig)> {
    let mut tracker = serde_json::to_value(TrackerConfig::TRUCK)?;
    let mut calibration = serde_json::to_value(CalibrationConfig::standard())?;
    for item in overrides {
        let (name, text) = item
            .split_once('=')
            .ok_or_else(|| bad_input(format!("--set {item:?}: expected NAME=VALUE")))?;
        let (root, path) = match name.strip_prefix("calibration.") {
            Some(rest) => (&mut calibration, rest),
            None => (&mut tracker, name),
        };
        let mut slot = root;
        for part in path.split('.') {
            slot = slot
                .get_mut(part)
                .ok_or_else(|| bad_input(format!("--set: no setting `{name}`")))?;
        }
        *slot = serde_json::from_str(text)
            .map_err(|_| bad_input(format!("--set {name}: {text:?} is not a value")))?;
    }
    let tracker: TrackerConfig =
        serde_json::from_value(tracker).map_err(|e| bad_input(format!("--set: {e}")))?;
    tracker.validate().map_err(bad_input)?;
    let calibration: CalibrationConfig =
        serde_json::from_value(calibration).map_err(|e| bad_input(format!("--set: {e}")))?;
    calibration.validate().map_err(bad_input)?;
    Ok((tracker, calibration))
}

/// Horizon buckets (actual time to arrival), upper bounds in seconds.
const HORIZONS_S: [f64; 9] = [
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0, 604_800.0,
];

/// Errors of all predictions and by horizon.
#[derive(Debug, Clone)]
struct Scores {
    overall: Errors,
    by_horizon: Vec<Errors>,
}

impl Scores {
    fn new() -> Scores {
        Scores {
            overall: Errors::default(),
            by_horizon: vec![Errors::default(); HORIZONS_S.len() + 1],
        }
    }

    /// Adds one trace's errors by horizon; returns the trace's own total.
    fn add(&mut self, by_horizon: &[Errors]) -> Errors {
        let mut all = Errors::default();
        for (b, errors) in by_horizon.iter().enumerate() {
            self.by_horizon[b].extend(errors);
            all.extend(errors);
        }
        self.overall.extend(&all);
        all
    }

    fn to_json(&self) -> Value {
        let horizons: Vec<Value> = self
            .by_horizon
            .iter()
            .enumerate()
            .filter(|(_, e)| e.n() > 0)
            .map(|(b, e)| {
                let mut v = e.summary();
                v["max_s"] = HORIZONS_S.get(b).map_or(Value::Null, |&m| json!(m));
                v
            })
            .collect();
        json!({"fixes": self.overall.n(), "overall": self.overall.summary(), "horizons": horizons})
    }
}

/// Errors of one set of predictions.
#[derive(Debug, Default, Clone)]
struct Errors {
    ours_s: Vec<f64>,
    baseline_s: Vec<f64>,
    covered: usize,
}

impl Errors {
    fn push(&mut self, ours_s: f64, baseline_s: f64, covered: bool) {
        self.ours_s.push(ours_s);
        self.baseline_s.push(baseline_s);
        self.covered += usize::from(covered);
    }

    fn extend(&mut self, other: &Errors) {
        self.ours_s.extend(&other.ours_s);
        self.baseline_s.extend(&other.baseline_s);
        self.covered += other.covered;
    }

    fn n(&self) -> usize {
        self.ours_s.len()
    }

    fn summary(&self) -> Value {
        let n = self.n().max(1) as f64;
        json!({
            "n": self.n(),
            "mae_s": round1(mean_abs(&self.ours_s)),
            "baseline_mae_s": round1(mean_abs(&self.baseline_s)),
            "p90_abs_error_s": round1(p90_abs(&self.ours_s)),
            "baseline_p90_abs_error_s": round1(p90_abs(&self.baseline_s)),
            "mean_error_s": round1(self.ours_s.iter().sum::<f64>() / n),
            "coverage": (self.covered as f64 / n * 1000.0).round() / 1000.0,
        })
    }
}

fn mean_abs(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64
}

fn p90_abs(values: &[f64]) -> f64 {
    let mut abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    abs.sort_by(f64::total_cmp);
    abs.get(((abs.len() as f64 * 0.9).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// One trace to replay.
#[derive(Debug, Clone)]
struct Job {
    name: String,
    map: PathBuf,
    trace: PathBuf,
    flag: Option<String>,
}

/// The outcome of one trace.
#[derive(Debug, Default)]
struct TraceResult {
    by_horizon: Vec<Errors>,
    fixes: usize,
    predicted: usize,
    counters: TrackerCounters,
    recustomizations: u64,
    edges_updated: u64,
    duration_s: f64,
    skipped: Option<String>,
    /// Fixes with no ETA (unmatched, or no route) and with no baseline route.
    no_eta: usize,
    no_baseline: usize,
}

pub(crate) fn run(args: EtaEvalArgs) -> anyhow::Result<()> {
    let jobs = jobs(&args)?;
    if jobs.is_empty() {
        return Err(bad_input(
            "no traces: give --trace FILE… (with --map) or --dir",
        ));
    }
    if !(args.every >= 0.0 && args.recustomize_s > 0.0) {
        return Err(bad_input(
            "--every must be 0 or more and --recustomize-s positive",
        ));
    }
    let (tracker_config, calibration) = settings(&args.set)?;
    let mut calibrator = Calibrator::new(calibration)?;
    let mut scores = Scores::new();
    let mut unflagged = Scores::new();
    let mut flagged = Scores::new();
    let mut per_trace = Vec::new();
    let mut totals = TrackerCounters::default();
    let started = Instant::now();
    let mut log = match &args.log {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            writeln!(
                w,
                "trace,t_s,actual_s,predicted_s,p10_s,p90_s,baseline_s,remaining_m,pace"
            )?;
            Some(w)
        }
        None => None,
    };
    for job in &jobs {
        let result = eval_trace(
            job,
            &args,
            &tracker_config,
            &mut calibrator,
            log.as_mut().map(|w| w as &mut dyn Write),
        )
        .with_context(|| format!("trace {}", job.trace.display()))?;
        let all = scores.add(&result.by_horizon);
        if job.flag.is_some() {
            flagged.add(&result.by_horizon);
        } else {
            unflagged.add(&result.by_horizon);
        }
        add_counters(&mut totals, &result.counters);
        if !args.json {
            let s = all.summary();
            eprintln!(
                "{:>10} {:>6} fixes  mae {:>7.1} s  baseline {:>7.1} s  coverage {:>5.3}  routes {:>5}  {}",
                job.name,
                result.predicted,
                s["mae_s"].as_f64().unwrap_or(0.0),
                s["baseline_mae_s"].as_f64().unwrap_or(0.0),
                s["coverage"].as_f64().unwrap_or(0.0),
                result.counters.routes,
                result.skipped.as_deref().unwrap_or(""),
            );
        }
        let mut entry = all.summary();
        entry["trace"] = json!(job.name);
        entry["fixes"] = json!(result.fixes);
        entry["predicted"] = json!(result.predicted);
        entry["duration_s"] = json!(result.duration_s);
        entry["routes"] = json!(result.counters.routes);
        entry["unmatched"] = json!(result.counters.unmatched);
        entry["unroutable"] = json!(result.counters.unroutable);
        entry["no_eta"] = json!(result.no_eta);
        entry["no_baseline"] = json!(result.no_baseline);
        entry["published"] = json!(result.counters.published);
        entry["recustomizations"] = json!(result.recustomizations);
        entry["edges_updated"] = json!(result.edges_updated);
        if let Some(flag) = &job.flag {
            entry["flag"] = json!(flag);
        }
        if let Some(reason) = &result.skipped {
            entry["skipped"] = json!(reason);
        }
        per_trace.push(entry);
    }
    let fixes = scores.overall.n();
    let per_fix = |x: u64| {
        if fixes == 0 {
            0.0
        } else {
            (x as f64 / fixes as f64 * 1e4).round() / 1e4
        }
    };
    let mut report = scores.to_json();
    if flagged.overall.n() > 0 {
        // The data set flags tracks with noisy or broken ground truth: shown
        // apart as well, as its README asks.
        report["unflagged"] = unflagged.to_json();
        report["flagged"] = flagged.to_json();
    }
    let extra = json!({
        "efficiency": {
            "routes_per_fix": per_fix(totals.routes),
            "published_per_fix": per_fix(totals.published),
            "reroutes_off_route": totals.reroutes_off_route,
            "reroutes_metric": totals.reroutes_metric,
            "reroutes_age": totals.reroutes_age,
            "retimed": totals.retimed,
        },
        "calibration": calibrator.summary().iter().map(|b| json!({
            "max_s": b.max_s, "samples": b.samples, "q10": round3(b.q10), "q90": round3(b.q90)
        })).collect::<Vec<_>>(),
        "traces": per_trace,
        "elapsed_s": round1(started.elapsed().as_secs_f64()),
    });
    if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
        report.extend(extra.clone());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn add_counters(total: &mut TrackerCounters, c: &TrackerCounters) {
    total.fixes += c.fixes;
    total.unmatched += c.unmatched;
    total.routes += c.routes;
    total.reroutes_off_route += c.reroutes_off_route;
    total.reroutes_metric += c.reroutes_metric;
    total.reroutes_age += c.reroutes_age;
    total.retimed += c.retimed;
    total.published += c.published;
    total.arrivals += c.arrivals;
    total.unroutable += c.unroutable;
}

fn print_table(report: &Value) {
    let o = &report["overall"];
    println!(
        "{} fixes: MAE {} s (baseline {} s), p90 |error| {} s (baseline {} s), coverage {}",
        report["fixes"],
        o["mae_s"],
        o["baseline_mae_s"],
        o["p90_abs_error_s"],
        o["baseline_p90_abs_error_s"],
        o["coverage"]
    );
    println!(
        "{:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "horizon", "n", "mae", "base mae", "p90", "base p90", "cover"
    );
    for h in report["horizons"].as_array().into_iter().flatten() {
        println!(
            "{:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8}",
            h["max_s"]
                .as_f64()
                .map_or("-".to_string(), |m| format!("≤{m}")),
            h["n"],
            h["mae_s"],
            h["baseline_mae_s"],
            h["p90_abs_error_s"],
            h["baseline_p90_abs_error_s"],
            h["coverage"]
        );
    }
}

fn jobs(args: &EtaEvalArgs) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    if !args.trace.is_empty() {
        if args.map.is_empty() {
            return Err(bad_input("--trace needs --map"));
        }
        if args.map.len() != 1 && args.map.len() != args.trace.len() {
            return Err(bad_input(format!(
                "{} maps for {} traces: give one map, or one per trace",
                args.map.len(),
                args.trace.len()
            )));
        }
        for (i, trace) in args.trace.iter().enumerate() {
            let map = if args.map.len() == 1 {
                &args.map[0]
            } else {
                &args.map[i]
            };
            jobs.push(Job {
                name: trace.file_stem().map_or_else(
                    || trace.display().to_string(),
                    |s| s.to_string_lossy().into(),
                ),
                map: map.clone(),
                trace: trace.clone(),
                flag: None,
            });
        }
    }
    if let Some(dir) = &args.dir {
        jobs.extend(dir_jobs(dir, &args.tracks)?);
    }
    Ok(jobs)
}

fn dir_jobs(dir: &Path, only: &[String]) -> anyhow::Result<Vec<Job>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
    let flags = read_flags(&dir.join("TRACKS.csv"));
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| only.is_empty() || only.contains(n))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let folder = dir.join(&name);
            Job {
                map: folder.join(format!("{name}.osm.pbf")),
                trace: folder.join(format!("{name}.track.csv")),
                flag: flags
                    .iter()
                    .find(|(id, _)| *id == name)
                    .map(|(_, f)| f.clone()),
                name,
            }
        })
        .filter(|job| job.map.exists() && job.trace.exists())
        .collect())
}

/// `(id, flag)` for the flagged tracks of a `TRACKS.csv`.
fn read_flags(path: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let Some(col) = header.iter().position(|h| *h == "flag") else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let flag = fields.get(col)?.trim();
            (!flag.is_empty()).then(|| (fields[0].to_string(), flag.to_string()))
        })
        .collect()
}

/// Keeps the first fix, then one at least `every_s` after the last kept, and
/// always the last (the arrival).
fn thin(fixes: Vec<Fix>, every_s: f64) -> Vec<Fix> {
    if every_s <= 0.0 || fixes.len() < 3 {
        return fixes;
    }
    let last = fixes.len() - 1;
    let mut kept: Vec<Fix> = Vec::new();
    for (i, fix) in fixes.iter().enumerate() {
        let due = kept.last().is_none_or(|k: &Fix| {
            (fix.time - k.time).num_milliseconds() as f64 >= every_s * 1000.0
        });
        if due || i == last {
            kept.push(*fix);
        }
    }
    kept
}

fn bucket(actual_s: f64) -> usize {
    HORIZONS_S.partition_point(|&max| max < actual_s)
}

fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

fn eval_trace(
    job: &Job,
    args: &EtaEvalArgs,
    tracker_config: &TrackerConfig,
    calibrator: &mut Calibrator,
    mut log: Option<&mut dyn Write>,
) -> anyhow::Result<TraceResult> {
    let mut result = TraceResult {
        by_horizon: vec![Errors::default(); HORIZONS_S.len() + 1],
        ..TraceResult::default()
    };
    let (graph, _) = open_map(&job.map)?;
    let graph = Arc::new(graph);
    let text = std::fs::read_to_string(&job.trace)
        .map_err(|e| bad_input(format!("{}: {e}", job.trace.display())))?;
    let fixes = thin(engine::parse_trace(&text).map_err(bad_input)?, args.every);
    result.fixes = fixes.len();
    let (Some(first), Some(last)) = (fixes.first().copied(), fixes.last().copied()) else {
        result.skipped = Some("empty trace".into());
        return Ok(result);
    };
    result.duration_s = seconds_between(first.time, last.time);
    let router = Router::new(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&graph),
    )?;
    let baseline = Router::new(
        Arc::clone(&graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(&graph),
    )?;
    let mut traffic = TrafficModel::new(
        Arc::clone(&graph),
        TrafficConfig::fleet(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )?;
    let mut version = MetricVersion {
        generation: 0,
        metric: Arc::new(router.metric()),
    };
    let stop = TrackedStop {
        position: last.pos,
        plan: StopPlan {
            window: None,
            early_allowed: true,
            dwell_s: None,
        },
    };
    // The arrival is the trace's end, not the first time the vehicle passes
    // near its last point.
    let mut config = *tracker_config;
    config.detect_arrival = false;
    let mut tracker =
        match VehicleTracker::new(&router, OrderId(job.name.clone()), 0, &[stop], config) {
            Ok(t) => t,
            Err(e) => {
                result.skipped = Some(e.to_string());
                return Ok(result);
            }
        };
    let Some(target) = Snap::nearest(&graph, last.pos, config.stop_snap_radius_m) else {
        result.skipped = Some("the last point is off the network".into());
        return Ok(result);
    };
    let mut matcher = Matcher::new(&graph, MatcherConfig::TRUCK)?;
    let mut state = MatchState::new();
    let mut events = MatchEvents::default();
    let mut next_customize =
        first.time + chrono::Duration::milliseconds((args.recustomize_s * 1000.0) as i64);
    let arrival = last.time;
    let n = fixes.len();
    for (i, fix) in fixes.iter().enumerate() {
        matcher.push(&mut state, fix, &mut events);
        traffic.observe_traversals(&events.traversals);
        let matched = events
            .provisional
            .iter()
            .rev()
            .find(|m| m.time == fix.time)
            .and_then(|m| m.outcome.matched().copied());
        events.clear();

        if fix.time >= next_customize {
            next_customize =
                fix.time + chrono::Duration::milliseconds((args.recustomize_s * 1000.0) as i64);
            traffic.prune(fix.time);
            let changes = traffic.changes_since(&version.metric, fix.time, 0.02)?;
            if !changes.is_empty() {
                result.recustomizations += 1;
                result.edges_updated += changes.len() as u64;
                let mut next = (*version.metric).clone();
                for &(edge, ms) in &changes {
                    next.set_edge_ms(edge, ms);
                }
                if changes.len() * 20 < graph.n_edges() {
                    router.update_edges(&changes)?;
                } else {
                    router.customize(next.clone())?;
                }
                version = MetricVersion {
                    generation: version.generation + 1,
                    metric: Arc::new(next),
                };
            }
        }

        let vehicle_fix = VehicleFix {
            time: fix.time,
            position: fix.pos,
            matched,
            hos_drive_remaining_s: None,
        };
        let out = {
            let ctx = TrackingContext {
                router: &router,
                metric: &version,
                calibrator,
            };
            tracker.on_fix(&ctx, &vehicle_fix)
        };
        for closed in &out.closed {
            calibrator.record(closed.predicted_to_go_s, closed.actual_to_go_s);
        }
        if i + 1 == n {
            break;
        }
        let (Some((_, eta)), Some(m)) = (out.etas.first(), matched) else {
            result.no_eta += 1;
            continue;
        };
        let Some(free) = baseline.route(&Snap::on_edge(m.edge, m.offset_m), &target) else {
            result.no_baseline += 1;
            continue;
        };
        let actual_s = seconds_between(fix.time, arrival);
        let ours_s = seconds_between(arrival, eta.eta);
        let baseline_s = free.duration_s() - actual_s;
        let covered = eta.p10 <= arrival && arrival <= eta.p90;
        result.by_horizon[bucket(actual_s)].push(ours_s, baseline_s, covered);
        result.predicted += 1;
        if let Some(log) = log.as_mut() {
            writeln!(
                log,
                "{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.3}",
                job.name,
                seconds_between(first.time, fix.time),
                actual_s,
                seconds_between(fix.time, eta.eta),
                seconds_between(fix.time, eta.p10),
                seconds_between(fix.time, eta.p90),
                free.duration_s(),
                eta.distance_m,
                tracker.pace().factor(&config.eta.pace),
            )?;
        }
    }
    // The arrival closes the predictions published for it (the calibrator learns
    // from them for the next traces).
    if !tracker.done() {
        let mut out = engine::TrackerOutput::default();
        tracker.arrive(arrival, &mut out);
        for closed in &out.closed {
            calibrator.record(closed.predicted_to_go_s, closed.actual_to_go_s);
        }
    }
    result.counters = tracker.counters();
    Ok(result)
}
