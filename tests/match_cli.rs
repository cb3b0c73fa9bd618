//! `tracker match` end to end: the real binary on a real track, checked against
//! the command-line contract (GeoJSON path with `way_ids`, a Point per fix, exit
//! code 2 with a one-line error on bad input).

mod cli_support;

use std::path::PathBuf;
use std::process::Command;

fn track_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/traces/kubicka/00000003")
}

#[test]
fn a_real_track_matches_into_the_contracted_geojson() {
    let dir = track_dir();
    let out = tempfile::tempdir().expect("tempdir");
    let out_file = out.path().join("match.geojson");
    let status = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match", "--map"])
        .arg(dir.join("00000003.osm.pbf"))
        .arg("--trace")
        .arg(dir.join("00000003.track.csv"))
        .arg("--out")
        .arg(&out_file)
        .status()
        .expect("tracker runs");
    assert!(status.success());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("output written"))
            .expect("JSON");
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().expect("features");
    let lines: Vec<_> = features
        .iter()
        .filter(|f| f["geometry"]["type"] == "LineString")
        .collect();
    let points: Vec<_> = features
        .iter()
        .filter(|f| f["geometry"]["type"] == "Point")
        .collect();
    let n_fixes = std::fs::read_to_string(dir.join("00000003.track.csv"))
        .expect("track")
        .lines()
        .count()
        - 1;
    assert_eq!(points.len(), n_fixes, "one Point per fix");
    assert!(!lines.is_empty());
    // The matched ways are the true route's ways, in driving order.
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("00000003.route.geojson")).expect("truth"),
    )
    .expect("JSON");
    let true_ways: std::collections::HashSet<i64> = truth["properties"]["route_osm_way_ids"]
        .as_array()
        .expect("ways")
        .iter()
        .filter_map(serde_json::Value::as_i64)
        .collect();
    let matched: Vec<i64> = lines
        .iter()
        .flat_map(|l| {
            l["properties"]["way_ids"]
                .as_array()
                .expect("way_ids")
                .clone()
        })
        .filter_map(|w| w.as_i64())
        .collect();
    let on_truth = matched.iter().filter(|w| true_ways.contains(w)).count();
    assert!(
        on_truth * 100 >= matched.len() * 95,
        "{on_truth} of {} ways on the true route",
        matched.len()
    );
    let unmatched = points
        .iter()
        .filter(|p| p["properties"]["matched"] == false)
        .count();
    assert!(unmatched * 100 <= n_fixes, "{unmatched} unmatched fixes");
}

#[test]
fn a_trace_without_a_time_column_exits_2_with_one_line() {
    let out = tempfile::tempdir().expect("tempdir");
    let trace = out.path().join("bad.csv");
    std::fs::write(&trace, "lat,lon\n41.1,-8.6\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match", "--map"])
        .arg(track_dir().join("00000003.osm.pbf"))
        .arg("--trace")
        .arg(&trace)
        .output()
        .expect("tracker runs");
    cli_support::assert_refused(&output, "a trace without times", "time column");
}
