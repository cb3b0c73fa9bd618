//! Regression tests of map-matching accuracy on the real Kubicka tracks (real GPS,
//! real networks, surveyed true routes): the route mismatch fraction over the 29
//! unflagged tracks at 1 s and 60 s sampling must stay within bounds that the
//! current matcher meets with a little room (see ARCHITECTURE.md for the full
//! table and `tracker match-eval` to reproduce it), and a few tracks that once
//! failed are pinned on their own.

use std::path::{Path, PathBuf};

use engine::{
    Matcher, MatcherConfig, match_trace, parse_trace, route_mismatch, thin_fixes, traversal_paths,
};
use road_graph::{LatLon, ProfileConfig, import_pbf};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/traces/kubicka"
    ))
}

/// Track ids and whether TRACKS.csv flags them (noisy or gappy ground truth).
fn tracks() -> Vec<(String, bool)> {
    let text =
        std::fs::read_to_string(data_dir().join("TRACKS.csv")).expect("TRACKS.csv is readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let flag_col = header
        .iter()
        .position(|h| *h == "flag")
        .expect("a flag column");
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            (
                fields[0].to_string(),
                !fields.get(flag_col).unwrap_or(&"").trim().is_empty(),
            )
        })
        .collect()
}

fn truth_of(dir: &Path, id: &str) -> Vec<Vec<LatLon>> {
    let text = std::fs::read_to_string(dir.join(format!("{id}.route.geojson")))
        .expect("truth is readable");
    let value: serde_json::Value = serde_json::from_str(&text).expect("truth is JSON");
    let line = value["geometry"]["coordinates"]
        .as_array()
        .expect("a LineString")
        .iter()
        .map(|p| LatLon::new(p[1].as_f64().expect("lat"), p[0].as_f64().expect("lon")))
        .collect();
    vec![line]
}

/// Route mismatch fraction of one track at each sampling interval.
fn score_track(id: &str, every: &[i64]) -> Vec<f64> {
    let dir = data_dir().join(id);
    // Every component, as `tracker match-eval` imports them: the extracts are
    // clipped around the tracks.
    let (graph, _) = import_pbf(
        &dir.join(format!("{id}.osm.pbf")),
        &ProfileConfig::TRUCK,
        &mut |_| {},
    )
    .expect("the track's network imports");
    let text =
        std::fs::read_to_string(dir.join(format!("{id}.track.csv"))).expect("track is readable");
    let fixes = parse_trace(&text).expect("track parses").fixes;
    let truth = truth_of(&dir, id);
    every
        .iter()
        .map(|&s| {
            let mut matcher = Matcher::new(&graph, MatcherConfig::TRUCK).expect("valid config");
            let (_, traversals, _) = match_trace(&mut matcher, &thin_fixes(&fixes, s as f64));
            let lines: Vec<Vec<LatLon>> = traversal_paths(&graph, &traversals)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            route_mismatch(&truth, &lines, 5.0).fraction
        })
        .collect()
}

fn median_and_p90(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[(n * 9).div_ceil(10) - 1])
}

#[test]
fn unflagged_tracks_match_within_the_accuracy_bounds_at_1_and_60_s() {
    let ids: Vec<String> = tracks()
        .into_iter()
        .filter(|(_, flagged)| !flagged)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 29);
    // Two threads: the tracks are independent.
    let (mut at_1s, mut at_60s) = (Vec::new(), Vec::new());
    let scores: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let halves: Vec<_> = ids
            .chunks(ids.len().div_ceil(2))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|id| score_track(id, &[1, 60]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|h| h.join().expect("scoring thread"))
            .collect()
    });
    for s in &scores {
        at_1s.push(s[0]);
        at_60s.push(s[1]);
    }
    let (median_1, p90_1) = median_and_p90(&mut at_1s);
    let (median_60, p90_60) = median_and_p90(&mut at_60s);
    eprintln!(
        "1 s: median {median_1:.4} p90 {p90_1:.4}; 60 s: median {median_60:.4} p90 {p90_60:.4}"
    );
    // The peer (OSRM /match) scores 0.85 % / 6.7 % at 1 s and 3.6 % / 10 % at 60 s;
    // the goal at 1 s is a p90 below 3 %.
    assert!(
        median_1 < 0.0085 && p90_1 < 0.03,
        "1 s: median {median_1:.4}, p90 {p90_1:.4}"
    );
    assert!(
        median_60 < 0.025 && p90_60 < 0.095,
        "60 s: median {median_60:.4}, p90 {p90_60:.4}"
    );
}

#[test]
fn a_detour_between_minute_fixes_is_followed_not_broken() {
    // Track 27 at 60 s: the truck leaves and rejoins a road between two fixes by a
    // route far longer than twice the straight line. The matcher once broke the
    // chain there and lost 8 % of the route.
    let fraction = score_track("00000027", &[60])[0];
    assert!(fraction < 0.03, "{fraction}");
}

#[test]
fn turn_costs_keep_five_minute_fixes_on_the_road_taken() {
    // Track 93 at 300 s: without a cost for turning, the shortest path between
    // fixes five minutes apart cut through side streets; 37 % of the route was
    // wrong. With it, the matcher follows the through road the car took.
    let fraction = score_track("00000093", &[300])[0];
    assert!(fraction < 0.12, "{fraction}");
}

#[test]
fn oneways_cut_at_the_edge_of_a_clipped_extract_are_matched() {
    // Tracks 24 and 87 start or run on one-way carriageways that the clipped
    // extract cuts at its edge. Keeping only the largest strongly connected
    // component dropped them: about 10 % of track 24 at 1 s (OSRM: 0.7 %) and the
    // first 264 m of track 87 went unmatched. With every component kept, both
    // match like the rest.
    let fractions = [
        score_track("00000024", &[1])[0],
        score_track("00000087", &[1])[0],
    ];
    assert!(fractions[0] < 0.015, "track 24: {}", fractions[0]);
    assert!(fractions[1] < 0.01, "track 87: {}", fractions[1]);
}
