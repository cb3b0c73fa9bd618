//! `tracker route` end to end: the real binary on the Monaco extract, checked
//! against the command-line contract: `--json` prints `distance_m`, `duration_s`
//! and a GeoJSON LineString that is the route; the plain output says the same in
//! words; bad input exits with code 2 and one line on stderr.

use crate::cli_support;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Monaco-Ville (the palace square) and Monte-Carlo (the casino), about 1.3 km
/// apart as the crow flies and well over that by road.
const PALACE: &str = "43.7311,7.4197";
const CASINO: &str = "43.7396,7.4277";

fn monaco() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/osm/monaco.osm.pbf")
}

fn tracker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracker"))
        .arg("route")
        .arg("--map")
        .arg(monaco())
        .args(args)
        .output()
        .expect("tracker runs")
}

fn route_json(from: &str, to: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--from", from, "--to", to, "--json"];
    args.extend_from_slice(extra);
    let out = tracker(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("route prints JSON")
}

/// Great-circle metres between two `[lon, lat]` positions.
fn haversine_m(a: &[f64], b: &[f64]) -> f64 {
    let (lat1, lat2) = (a[1].to_radians(), b[1].to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b[0] - a[0]).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

fn positions(value: &serde_json::Value) -> Vec<Vec<f64>> {
    value["geometry"]["coordinates"]
        .as_array()
        .expect("coordinates")
        .iter()
        .map(|p| {
            p.as_array()
                .expect("a position")
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect()
        })
        .collect()
}

#[test]
fn a_route_across_monaco_is_a_line_as_long_as_its_distance() {
    let route = route_json(PALACE, CASINO, &[]);
    assert_eq!(route["geometry"]["type"], "LineString");
    let distance_m = route["distance_m"].as_f64().expect("distance_m");
    let duration_s = route["duration_s"].as_f64().expect("duration_s");
    let line = positions(&route);
    assert!(line.len() >= 2);
    // The line is the route: its length is the reported distance (the snapped
    // ends are on the line; rounding to 1e-6 degrees is a few centimetres).
    let length_m: f64 = line.windows(2).map(|w| haversine_m(&w[0], &w[1])).sum();
    assert!(
        (length_m - distance_m).abs() <= 1.0 + 0.002 * distance_m,
        "line {length_m:.1} m, distance {distance_m:.1} m"
    );
    let crow_m = haversine_m(&[7.4197, 43.7311], &[7.4277, 43.7396]);
    assert!(
        distance_m > crow_m && distance_m < 4.0 * crow_m,
        "{distance_m} m for {crow_m:.0} m as the crow flies"
    );
    // A truck in town: between 5 and 60 km/h on average.
    let speed_kph = distance_m / duration_s * 3.6;
    assert!((5.0..=60.0).contains(&speed_kph), "{speed_kph:.1} km/h");
    // It starts and ends at the snapped points, near the asked ones.
    let from = route["snapped_from"]
        .as_array()
        .expect("snapped_from")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect::<Vec<_>>();
    assert!(haversine_m(&from, &line[0]) < 0.5);
    assert!(haversine_m(&from, &[7.4197, 43.7311]) < 200.0);
    assert!(!route["way_ids"].as_array().expect("way_ids").is_empty());

    // The way back is another route (one-way streets), of a similar length.
    let back = route_json(CASINO, PALACE, &[]);
    let back_m = back["distance_m"].as_f64().expect("distance_m");
    assert!(back_m > crow_m && back_m < 4.0 * crow_m, "{back_m}");

    // Maps carry no learned profile yet: a departure time gives the same route.
    let timed = route_json(PALACE, CASINO, &["--depart", "2026-11-25T08:00:00+01:00"]);
    assert_eq!(timed["duration_s"], route["duration_s"]);
    assert_eq!(timed["depart"], "2026-11-25T08:00:00+01:00");
}

#[test]
fn a_route_to_the_same_point_is_empty_but_a_valid_line() {
    let route = route_json(PALACE, PALACE, &[]);
    assert_eq!(route["distance_m"].as_f64(), Some(0.0));
    assert_eq!(route["duration_s"].as_f64(), Some(0.0));
    assert_eq!(
        positions(&route).len(),
        2,
        "a LineString needs two positions"
    );
}

#[test]
fn the_plain_output_says_the_same_in_words() {
    let route = route_json(PALACE, CASINO, &[]);
    let out = tracker(&["--from", PALACE, "--to", CASINO]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let km = route["distance_m"].as_f64().expect("distance_m") / 1000.0;
    assert!(
        text.contains(&format!("distance: {km:.2} km")),
        "{text} vs {km}"
    );
    assert!(text.lines().any(|l| l.starts_with("duration: ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("edges: ")), "{text}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let missing = monaco().with_file_name("atlantis.osm.pbf");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--from", "43.7311", "--to", CASINO],
            "expected LAT,LON",
        ),
        (vec!["--from", "93,7.42", "--to", CASINO], "out of range"),
        (vec!["--from", "north,east", "--to", CASINO], "not a number"),
        (
            // The sea south of the port, with a small radius.
            vec![
                "--from",
                PALACE,
                "--to",
                "43.70,7.45",
                "--snap-radius-m",
                "100",
            ],
            "no truck road within",
        ),
        (
            vec!["--from", PALACE, "--to", CASINO, "--depart", "at nine"],
            "RFC 3339",
        ),
        (
            vec!["--from", PALACE, "--to", CASINO, "--snap-radius-m", "0"],
            "positive",
        ),
    ];
    for (args, expected) in cases {
        cli_support::assert_refused(&tracker(&args), &format!("{args:?}"), expected);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["route", "--map"])
        .arg(&missing)
        .args(["--from", PALACE, "--to", CASINO])
        .output()
        .expect("tracker runs");
    cli_support::assert_refused(&out, "a missing map", "no such file");
}
