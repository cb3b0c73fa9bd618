//! `tracker match` end to end: the real binary on a real track, checked against
//! the command-line contract (GeoJSON path with `way_ids`, a Point per fix, exit
//! code 2 with a one-line error on bad input).

use crate::cli_support;

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

fn kubicka(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/data/traces/kubicka/{id}"))
}

/// The LineStrings of a GeoJSON file, as coordinate lists.
fn lines_of(path: &std::path::Path) -> Vec<serde_json::Value> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("output written"))
            .expect("JSON");
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["geometry"]["type"] == "LineString")
        .map(|f| f["geometry"]["coordinates"].clone())
        .collect()
}

/// Issue 24: `tracker match` matched on the largest strongly connected component
/// only, while `match-eval` kept them all, so on an extract clipped tight
/// around the track (00000024 loses a one-way carriageway on its true route)
/// the CLI and the evaluator disagreed. Now every command opens maps one way,
/// keeping every component, so both give the same path, from the PBF or from a
/// snapshot `graph build` wrote.
#[test]
fn tracker_match_and_match_eval_give_the_same_path_on_a_clipped_map() {
    let dir = kubicka("00000024");
    let out = tempfile::tempdir().expect("tempdir");
    let matched = out.path().join("match.geojson");
    let status = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match", "--map"])
        .arg(dir.join("00000024.osm.pbf"))
        .arg("--trace")
        .arg(dir.join("00000024.track.csv"))
        .arg("--out")
        .arg(&matched)
        .status()
        .expect("tracker runs");
    assert!(status.success());
    let eval_dir = out.path().join("eval");
    let eval = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match-eval", "--dir"])
        .arg(dir.parent().expect("kubicka folder"))
        .args(["--tracks", "00000024", "--every", "1", "--out-dir"])
        .arg(&eval_dir)
        .output()
        .expect("tracker runs");
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let cli = lines_of(&matched);
    assert!(!cli.is_empty());
    assert_eq!(cli, lines_of(&eval_dir.join("00000024.every-1.geojson")));
    // A snapshot (what `serve --map` loads) holds every component too.
    let snapshot = out.path().join("00000024.graph");
    let built = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["graph", "build", "--osm"])
        .arg(dir.join("00000024.osm.pbf"))
        .arg("--out")
        .arg(&snapshot)
        .output()
        .expect("tracker runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let from_snapshot = out.path().join("snapshot-match.geojson");
    let status = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match", "--map"])
        .arg(&snapshot)
        .arg("--trace")
        .arg(dir.join("00000024.track.csv"))
        .arg("--out")
        .arg(&from_snapshot)
        .status()
        .expect("tracker runs");
    assert!(status.success());
    assert_eq!(cli, lines_of(&from_snapshot));
}

/// Issue 24: a GPX without `<time>` (a drawn or exported route) was refused; it
/// is now matched on its geometry alone. The first 300 fixes of a real track,
/// written as an untimed GPX, match onto ways of its true route.
#[test]
fn a_gpx_without_times_is_matched_on_its_geometry() {
    let dir = track_dir();
    let csv = std::fs::read_to_string(dir.join("00000003.track.csv")).expect("track");
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (lat, lon) = (col("lat"), col("lon"));
    let mut gpx = String::from("<?xml version=\"1.0\"?>\n<gpx version=\"1.1\"><trk><trkseg>\n");
    for row in rows.take(300) {
        let f: Vec<&str> = row.split(',').collect();
        gpx.push_str(&format!("<trkpt lat=\"{}\" lon=\"{}\"/>\n", f[lat], f[lon]));
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    let out = tempfile::tempdir().expect("tempdir");
    let trace = out.path().join("untimed.gpx");
    std::fs::write(&trace, gpx).expect("written");
    let matched = out.path().join("match.geojson");
    let run = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["match", "--map"])
        .arg(dir.join("00000003.osm.pbf"))
        .arg("--trace")
        .arg(&trace)
        .arg("--out")
        .arg(&matched)
        .output()
        .expect("tracker runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&matched).expect("written")).expect("JSON");
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
    let matched_ways: Vec<i64> = doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["geometry"]["type"] == "LineString")
        .flat_map(|f| {
            f["properties"]["way_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|w| w.as_i64())
        .collect();
    assert!(!matched_ways.is_empty(), "a path was matched");
    let on_truth = matched_ways
        .iter()
        .filter(|w| true_ways.contains(w))
        .count();
    assert_eq!(
        on_truth,
        matched_ways.len(),
        "every matched way is on the true route: {matched_ways:?}"
    );
}
