//! `tracker graph build` and `tracker graph info` as a user runs them: the JSON
//! fields of the contract, a snapshot that describes the same graph as its PBF, and
//! exit code 2 with one line on stderr for bad input.

use crate::cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tracker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(args)
        .output()
        .expect("tracker runs")
}

fn osm(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/osm")
        .join(name)
}

fn info_json(path: &Path) -> serde_json::Value {
    let out = tracker(&[
        "graph",
        "info",
        path.to_str().expect("utf-8 path"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("info prints JSON")
}

#[test]
fn a_built_snapshot_describes_the_same_graph_as_its_pbf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let graph = dir.path().join("monaco.graph");
    let pbf = osm("monaco.osm.pbf");
    let out = tracker(&[
        "graph",
        "build",
        "--osm",
        pbf.to_str().expect("utf-8"),
        "--out",
        graph.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("directed edges"), "{summary}");
    assert!(summary.contains("turn restrictions"), "{summary}");
    assert!(summary.contains("stored the basemap"), "{summary}");

    let from_pbf = info_json(&pbf);
    let mut from_snapshot = info_json(&graph);
    // The snapshot carries the basemap and the truck router's preparation (the
    // router's last); a PBF has no sections.
    assert_eq!(from_pbf["sections"], serde_json::json!([]));
    assert_eq!(
        from_snapshot["sections"],
        serde_json::json!(["BASEMAP", "ROUTER"])
    );
    from_snapshot["sections"] = serde_json::json!([]);
    assert_eq!(from_pbf, from_snapshot);
    assert!(from_pbf["nodes"].as_u64().expect("nodes") > 1000);
    assert!(from_pbf["edges"].as_u64().expect("edges") > 2000);
    assert!(from_pbf["length_km"].as_f64().expect("length_km") > 100.0);
    let bbox: Vec<f64> = serde_json::from_value(from_pbf["bbox"].clone()).expect("bbox");
    // Monaco: about 7.4 E, 43.7 N.
    assert!(
        bbox[0] > 7.3 && bbox[2] < 7.6 && bbox[1] > 43.6 && bbox[3] < 43.8,
        "{bbox:?}"
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("readme.osm.pbf");
    std::fs::write(&text, "not a map").expect("write");
    for (args, expected) in [
        (
            vec!["graph", "info", text.to_str().expect("utf-8"), "--json"],
            "not an OpenStreetMap PBF file",
        ),
        (
            vec!["graph", "info", "/nonexistent/map.graph"],
            "no such file",
        ),
    ] {
        cli_support::assert_refused(&tracker(&args), &format!("{args:?}"), expected);
    }
}
