//! `tracker eta-eval` end to end: the real binary on a few short Kubicka tracks
//! and on simulated truck trips, checked against the command-line contract (the
//! JSON fields, the ETA beating the free-flow baseline, coverage a share and
//! counted by horizon) and exit code 2 with a one-line error on bad input.

use crate::cli_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

fn kubicka() -> PathBuf {
    data().join("traces/kubicka")
}

fn tracker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracker"))
        .arg("eta-eval")
        .args(args)
        .output()
        .expect("tracker runs")
}

/// Runs `tracker eta-eval … --json` and parses its output; fails on any exit
/// other than success.
fn eta_eval_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = tracker(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v}"))
}

/// The contract's fields, consistent with each other: horizons ascending, their
/// counts adding up to the fixes, every coverage a share, and the calibrator's
/// buckets reported.
fn check_shape(doc: &Value) -> (f64, f64, f64) {
    let fixes = number(doc, "fixes");
    assert!(fixes > 0.0, "no predictions: {doc}");
    let overall = &doc["overall"];
    let (mae, baseline, coverage) = (
        number(overall, "mae_s"),
        number(overall, "baseline_mae_s"),
        number(overall, "coverage"),
    );
    assert!(mae >= 0.0 && baseline >= 0.0);
    assert!((0.0..=1.0).contains(&coverage), "{coverage}");
    let horizons = doc["horizons"].as_array().expect("horizons");
    assert!(!horizons.is_empty());
    let mut n_total = 0.0;
    let mut previous = 0.0;
    for (i, h) in horizons.iter().enumerate() {
        let n = number(h, "n");
        assert!(n > 0.0, "empty horizons are left out: {h}");
        n_total += n;
        assert!((0.0..=1.0).contains(&number(h, "coverage")), "{h}");
        assert!(number(h, "mae_s") >= 0.0 && number(h, "baseline_mae_s") >= 0.0);
        assert!(number(h, "median_width_s") >= 0.0, "{h}");
        match h["max_s"].as_f64() {
            Some(max_s) => {
                assert!(max_s > previous, "horizons ascending: {h}");
                previous = max_s;
            }
            None => assert_eq!(i + 1, horizons.len(), "only the last is open-ended"),
        }
    }
    assert_eq!(n_total, fixes, "the horizons count every prediction once");
    // The same predictions by their own time to go: what the window promises.
    let predicted = doc["horizons_predicted"]
        .as_array()
        .expect("horizons_predicted");
    let n_predicted: f64 = predicted.iter().map(|h| number(h, "n")).sum();
    assert_eq!(n_predicted, fixes);
    let per_trace = doc["traces"].as_array().expect("traces");
    let n_traces = per_trace.len() as f64;
    for t in per_trace.iter().filter(|t| number(t, "n") > 0.0) {
        // One trace's own coverage is the same counted either way.
        assert_eq!(number(t, "traces"), 1.0, "{t}");
        assert_eq!(number(t, "trace_coverage"), number(t, "coverage"), "{t}");
    }
    for h in horizons.iter().chain(predicted) {
        assert!((0.0..=1.0).contains(&number(h, "coverage")), "{h}");
        assert!((0.0..=1.0).contains(&number(h, "trace_coverage")), "{h}");
        let traces = number(h, "traces");
        assert!(traces >= 1.0 && traces <= n_traces, "{h}");
    }
    assert!(
        doc["calibration_mode"]
            .as_str()
            .is_some_and(|m| m.starts_with("online") || m.starts_with("cross")),
        "{}",
        doc["calibration_mode"]
    );
    let calibration = doc["calibration"].as_array().expect("calibration");
    assert!(!calibration.is_empty());
    for b in calibration {
        // Quantiles of the relative error: a fleet that always runs late has
        // both above zero, but never the 10th above the 90th.
        assert!(number(b, "q10") <= number(b, "q90"), "{b}");
    }
    (mae, baseline, coverage)
}

#[test]
fn real_tracks_beat_the_free_flow_baseline_with_a_sane_window() {
    // Three short drives (7.5 to 15 minutes), each on its own network.
    let dir = kubicka();
    let doc = eta_eval_json(&[
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--tracks",
        "00000018,00000039,00000045",
    ]);
    let (mae, baseline, coverage) = check_shape(&doc);
    // The networks have no road classes: the free-flow baseline drives at the
    // class default, the ETA learns the truck's pace and the live speeds.
    assert!(mae < baseline, "MAE {mae} s vs baseline {baseline} s");
    // A window that covers nothing, or everything, is not a p10–p90 window.
    assert!(
        (0.4..=0.99).contains(&coverage),
        "coverage {coverage}: {}",
        doc["horizons"]
    );
    let traces = doc["traces"].as_array().expect("traces");
    let names: Vec<&str> = traces.iter().filter_map(|t| t["trace"].as_str()).collect();
    assert_eq!(names, ["00000018", "00000039", "00000045"]);
    for t in traces {
        assert!(number(t, "predicted") > 0.0, "{t}");
        assert!(
            number(t, "predicted") < number(t, "fixes"),
            "not the last fix"
        );
        assert!(t.get("skipped").is_none(), "{t}");
    }
    // Every horizon the drives span (up to 15 minutes) is there.
    let max: Vec<f64> = doc["horizons"]
        .as_array()
        .expect("horizons")
        .iter()
        .filter_map(|h| h["max_s"].as_f64())
        .collect();
    assert_eq!(max, [300.0, 900.0]);
}

#[test]
fn cross_calibration_scores_every_track_once_and_says_so() {
    let dir = kubicka();
    let tracks = ["--dir", dir.to_str().expect("utf-8 path"), "--tracks"];
    let ids = "00000018,00000039,00000045,00000072";
    let online = eta_eval_json(&[tracks[0], tracks[1], tracks[2], ids]);
    let cross = eta_eval_json(&[tracks[0], tracks[1], tracks[2], ids, "--cross"]);
    check_shape(&cross);
    assert!(
        cross["calibration_mode"]
            .as_str()
            .is_some_and(|m| m.starts_with("cross")),
        "{}",
        cross["calibration_mode"]
    );
    assert!(
        online["calibration_mode"]
            .as_str()
            .is_some_and(|m| m.starts_with("online"))
    );
    // The same predictions (the calibrator moves only the window), each track
    // scored once: 18 and 45 after learning from 39 and 72, then the other way.
    assert_eq!(cross["fixes"], online["fixes"]);
    assert_eq!(cross["overall"]["mae_s"], online["overall"]["mae_s"]);
    let names: Vec<&str> = cross["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .filter_map(|t| t["trace"].as_str())
        .collect();
    assert_eq!(names, ["00000018", "00000045", "00000039", "00000072"]);
}

#[test]
fn a_truck_that_parks_at_its_end_arrived_when_it_parked() {
    // Track 00000090 reaches its last point within 16 minutes; the logger
    // writes its last fix there 42 hours later.
    let dir = kubicka();
    let args = [
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--tracks",
        "00000090",
    ];
    let parked = eta_eval_json(&args);
    check_shape(&parked);
    let mut end_args = args.to_vec();
    end_args.extend(["--arrival", "end"]);
    let logged = eta_eval_json(&end_args);
    check_shape(&logged);
    let longest = |doc: &Value| {
        doc["horizons"]
            .as_array()
            .expect("horizons")
            .iter()
            .filter_map(|h| h["max_s"].as_f64())
            .fold(0.0, f64::max)
    };
    assert!(longest(&parked) <= 1800.0, "{}", parked["horizons"]);
    assert!(longest(&logged) > 86_400.0, "{}", logged["horizons"]);
    assert!(
        number(&parked["overall"], "mae_s") < 600.0,
        "{}",
        parked["overall"]
    );
    assert!(number(&parked, "fixes") < number(&logged, "fixes"));
}

#[test]
fn simulated_trucks_beat_the_free_flow_baseline_at_every_horizon() {
    let map = data().join("osm/harrisburg.osm.pbf");
    let doc = eta_eval_json(&[
        "--map",
        map.to_str().expect("utf-8 path"),
        "--simulate",
        "4",
        "--seed",
        "7",
    ]);
    let (mae, baseline, coverage) = check_shape(&doc);
    assert!(mae < baseline, "MAE {mae} s vs baseline {baseline} s");
    assert!((0.4..=1.0).contains(&coverage), "coverage {coverage}");
    for h in doc["horizons"].as_array().expect("horizons") {
        // The baseline knows neither the jams nor the drivers' pace.
        assert!(
            number(h, "mae_s") < number(h, "baseline_mae_s"),
            "not better than the baseline at {h}"
        );
    }
    let traces = doc["traces"].as_array().expect("traces");
    assert!(!traces.is_empty() && traces.len() <= 4, "{}", traces.len());
    assert!(
        traces
            .iter()
            .all(|t| t["trace"].as_str().is_some_and(|n| n.starts_with("sim")))
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let track = kubicka().join("00000018");
    let map = track.join("00000018.osm.pbf");
    let map = map.to_str().expect("utf-8 path");
    let trace = track.join("00000018.track.csv");
    let trace = trace.to_str().expect("utf-8 path");
    let missing_trace = track.join("00000018.missing.csv");
    let missing_map = track.join("atlantis.osm.pbf");
    let missing_dir = kubicka().join("no-such-folder");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--map",
                map,
                "--trace",
                missing_trace.to_str().expect("utf-8"),
            ],
            "00000018.missing.csv",
        ),
        (
            vec![
                "--map",
                missing_map.to_str().expect("utf-8"),
                "--trace",
                trace,
            ],
            "no such file",
        ),
        (
            vec!["--dir", missing_dir.to_str().expect("utf-8")],
            "no-such-folder",
        ),
        (vec!["--trace", trace], "--trace needs --map"),
        (vec![], "no traces"),
        (
            vec!["--map", map, "--trace", trace, "--set", "eta.pace"],
            "expected NAME=VALUE",
        ),
        (
            vec!["--map", map, "--trace", trace, "--set", "no_such_knob=1"],
            "no setting `no_such_knob`",
        ),
        (
            vec![
                "--map",
                map,
                "--trace",
                trace,
                "--set",
                "calibration.capacity=many",
            ],
            "is not a value",
        ),
        (
            vec![
                "--map",
                map,
                "--trace",
                trace,
                "--set",
                "calibration.capacity=0",
            ],
            "capacity",
        ),
        (
            vec!["--map", map, "--trace", trace, "--every=-5"],
            "--every",
        ),
    ];
    for (args, expected) in cases {
        cli_support::assert_refused(&tracker(&args), &format!("{args:?}"), expected);
    }
}
