//! Map-matching scenarios on tiny drawn maps: one test per robustness case of the
//! online matcher (parallel roads, parked trucks, duplicates, late fixes, gaps,
//! fixes far from roads, U-turns, sparse sampling, moving state between nodes).

use chrono::{DateTime, Utc};
use engine::{
    Fix, FixMatch, FixOutcome, MatchEvents, MatchState, Matcher, MatcherConfig, Traversal,
    UnmatchedReason, match_trace,
};
use road_graph::{DrawnMap, LatLon, LocalPlane, RoadGraph, haversine_m};

/// Deterministic noise (xorshift), so a failing scenario fails the same way.
struct Noise(u64);

impl Noise {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A normal sample (Box-Muller) with standard deviation `sigma`.
    fn gauss(&mut self, sigma: f64) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn at(seconds: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis((1_700_000_000.0 * 1000.0 + seconds * 1000.0) as i64)
        .expect("valid time")
}

/// Positions every `dt_s` seconds of a vehicle driving through `waypoints` at
/// `speed_mps`, with Gaussian noise `sigma_m` and a constant offset `(east, north)`.
fn drive(
    waypoints: &[LatLon],
    speed_mps: f64,
    dt_s: f64,
    sigma_m: f64,
    bias_m: (f64, f64),
    seed: u64,
) -> Vec<Fix> {
    let mut noise = Noise(seed);
    let mut fixes = Vec::new();
    let mut t = 0.0;
    let mut leg = 0;
    let mut along_m = 0.0;
    while leg + 1 < waypoints.len() {
        let (a, b) = (waypoints[leg], waypoints[leg + 1]);
        let len = haversine_m(a, b);
        if along_m > len {
            along_m -= len;
            leg += 1;
            continue;
        }
        let f = if len > 0.0 { along_m / len } else { 0.0 };
        let p = LatLon::new(a.lat + f * (b.lat - a.lat), a.lon + f * (b.lon - a.lon));
        let plane = LocalPlane::new(p);
        let q = plane.to_latlon(
            bias_m.0 + noise.gauss(sigma_m),
            bias_m.1 + noise.gauss(sigma_m),
        );
        fixes.push(Fix {
            time: at(t),
            pos: q,
            accuracy_m: None,
        });
        t += dt_s;
        along_m += speed_mps * dt_s;
    }
    fixes
}

fn ways_of(graph: &RoadGraph, traversals: &[Traversal]) -> Vec<i64> {
    let mut ways: Vec<i64> = Vec::new();
    for t in traversals {
        let w = graph.edge_way_id(t.edge);
        if ways.last() != Some(&w) {
            ways.push(w);
        }
    }
    ways
}

fn matched_ways(graph: &RoadGraph, finals: &[FixMatch]) -> Vec<Option<i64>> {
    finals
        .iter()
        .map(|m| m.outcome.matched().map(|p| graph.edge_way_id(p.edge)))
        .collect()
}

fn matcher(graph: &RoadGraph) -> Matcher<'_> {
    Matcher::new(graph, MatcherConfig::TRUCK).expect("valid config")
}

/// Every fix has exactly one final outcome, in `seq` order after sorting.
fn assert_one_final_each(finals: &[FixMatch], n: usize) {
    let seqs: Vec<u64> = finals.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (0..n as u64).collect::<Vec<_>>(),
        "one final outcome per fix"
    );
}

#[test]
fn a_truck_on_a_frontage_road_stays_off_the_motorway_beside_it() {
    // A one-way motorway a→b and a two-way frontage road c–d 30 m south of it.
    let mut map = DrawnMap::new(
        "a--------------------------------------------b\n\
         \n\
         \n\
         c--------------------------------------------d",
        10.0,
    );
    let motorway = map.way("ab", &[("highway", "motorway"), ("oneway", "yes")]);
    let frontage = map.way("cd", &[("highway", "unclassified")]);
    map.way("bd", &[("highway", "motorway_link")]);
    map.way("ca", &[("highway", "motorway_link")]);
    let (graph, _) = map.build().expect("builds");
    // Driving the frontage road west to east, the noise pulled 9 m towards the
    // motorway: closer to the frontage road still, but not by much.
    let fixes = drive(&[map.pos('c'), map.pos('d')], 15.0, 1.0, 4.0, (0.0, 9.0), 7);
    let (finals, traversals, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(counters.breaks, 0);
    let on_frontage = matched_ways(&graph, &finals)
        .iter()
        .filter(|w| **w == Some(frontage))
        .count();
    assert!(
        on_frontage >= fixes.len() - 1,
        "{on_frontage} of {} on the frontage road ({frontage}): {:?}",
        fixes.len(),
        matched_ways(&graph, &finals)
    );
    assert_eq!(ways_of(&graph, &traversals), vec![frontage]);
    assert!(!ways_of(&graph, &traversals).contains(&motorway));
}

#[test]
fn a_parked_truck_does_not_move() {
    let mut map = DrawnMap::new("a-----------b-----------c", 20.0);
    map.way("abc", &[]);
    let (graph, _) = map.build().expect("builds");
    let mut noise = Noise(3);
    let parked = map.pos('b');
    let plane = LocalPlane::new(parked);
    // Ten minutes at 1 Hz, 4 m noise: an hour of phantom driving for a naive matcher.
    let fixes: Vec<Fix> = (0..600)
        .map(|i| Fix {
            time: at(f64::from(i)),
            pos: plane.to_latlon(noise.gauss(4.0), noise.gauss(4.0) + 3.0),
            accuracy_m: None,
        })
        .collect();
    let (finals, traversals, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    let driven_m: f64 = traversals.iter().map(Traversal::distance_m).sum();
    assert!(
        driven_m < 25.0,
        "phantom movement of {driven_m:.1} m: {traversals:#?}"
    );
    assert!(counters.stationary > 400, "{counters:?}");
    // And every fix is matched near where the truck is.
    for m in &finals {
        let p = m.outcome.matched().expect("matched");
        assert!(haversine_m(p.point, parked) < 25.0);
    }
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut map = DrawnMap::new("a-------------------b", 20.0);
    map.way("ab", &[]);
    let (graph, _) = map.build().expect("builds");
    let mut fixes = drive(&[map.pos('a'), map.pos('b')], 10.0, 1.0, 2.0, (0.0, 0.0), 5);
    let dup = fixes[10];
    fixes.insert(11, dup);
    fixes.insert(12, dup);
    let (finals, _, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(counters.duplicates, 2);
    assert_eq!(
        finals[11].outcome,
        FixOutcome::Unmatched {
            reason: UnmatchedReason::Duplicate
        }
    );
    assert!(finals[10].outcome.matched().is_some());
}

#[test]
fn late_fixes_are_put_back_in_place_and_very_late_ones_dropped() {
    let mut map = DrawnMap::new(
        "a-------------b-------------c\n\
         \n\
         \n\
         \n\
         \n\
         d-------------e-------------f",
        20.0,
    );
    map.way("abc", &[]);
    map.way("def", &[]);
    map.way("ad", &[]);
    map.way("be", &[]);
    map.way("cf", &[]);
    let (graph, _) = map.build().expect("builds");
    let route = [map.pos('a'), map.pos('b'), map.pos('e'), map.pos('f')];
    let in_order = drive(&route, 12.0, 2.0, 3.0, (0.0, 0.0), 11);
    let (expected, expected_traversals, _) = match_trace(&mut matcher(&graph), &in_order);

    // Swap two neighbours: the second arrives late but within the pending window.
    let mut shuffled = in_order.clone();
    shuffled.swap(20, 21);
    let mut m = matcher(&graph);
    let (finals, traversals, counters) = match_trace(&mut m, &shuffled);
    assert_eq!(counters.reordered, 1, "{counters:?}");
    assert_eq!(counters.out_of_order, 0);
    assert_eq!(
        ways_of(&graph, &traversals),
        ways_of(&graph, &expected_traversals)
    );
    // Same matches, by time (seq numbers follow arrival, so 20 and 21 swapped).
    let by_time = |v: &[FixMatch]| {
        let mut v: Vec<(DateTime<Utc>, Option<i64>)> = v
            .iter()
            .map(|f| {
                (
                    f.time,
                    f.outcome.matched().map(|p| graph.edge_way_id(p.edge)),
                )
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v
    };
    assert_eq!(by_time(&finals), by_time(&expected));

    // A fix from long before what is already final cannot be replayed.
    let mut state = MatchState::new();
    let mut events = MatchEvents::default();
    for f in &in_order {
        m.push(&mut state, f, &mut events);
    }
    events.clear();
    m.push(&mut state, &in_order[1], &mut events);
    assert_eq!(
        events.finalized[0].outcome,
        FixOutcome::Unmatched {
            reason: UnmatchedReason::OutOfOrder
        }
    );
    assert_eq!(state.counters().out_of_order, 1);
}

#[test]
fn a_long_silence_breaks_the_chain_and_both_halves_match() {
    let mut map = DrawnMap::new("a------------------------------------b", 20.0);
    let road = map.way("ab", &[]);
    let (graph, _) = map.build().expect("builds");
    let mut fixes = drive(
        &[map.pos('a'), map.pos('b')],
        10.0,
        1.0,
        3.0,
        (0.0, 0.0),
        13,
    );
    let half = fixes.len() / 2;
    for f in &mut fixes[half..] {
        f.time += chrono::Duration::hours(3);
    }
    let (finals, traversals, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(counters.breaks, 1);
    let chains: std::collections::BTreeSet<u32> = traversals.iter().map(|t| t.chain).collect();
    assert_eq!(chains.len(), 2);
    assert!(
        matched_ways(&graph, &finals)
            .iter()
            .all(|w| *w == Some(road))
    );
}

#[test]
fn a_fix_far_from_any_road_is_an_outcome_not_an_error() {
    let mut map = DrawnMap::new("a------------------------b", 20.0);
    map.way("ab", &[]);
    let (graph, _) = map.build().expect("builds");
    let mut fixes = drive(
        &[map.pos('a'), map.pos('b')],
        10.0,
        1.0,
        2.0,
        (0.0, 0.0),
        17,
    );
    // A multipath jump 400 m off, and one invalid position.
    fixes[15].pos = LocalPlane::new(fixes[15].pos).to_latlon(0.0, 400.0);
    fixes[25].pos = LatLon::new(f64::NAN, 0.0);
    let (finals, traversals, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(
        finals[15].outcome,
        FixOutcome::Unmatched {
            reason: UnmatchedReason::NoRoadNearby
        }
    );
    assert_eq!(
        finals[25].outcome,
        FixOutcome::Unmatched {
            reason: UnmatchedReason::InvalidPosition
        }
    );
    assert_eq!(
        (counters.no_road_nearby, counters.invalid, counters.breaks),
        (1, 1, 0)
    );
    // The path is one chain from start to end.
    let driven_m: f64 = traversals.iter().map(Traversal::distance_m).sum();
    let road_m = haversine_m(map.pos('a'), map.pos('b'));
    assert!(
        driven_m > road_m - 40.0 && driven_m < road_m + 5.0,
        "{driven_m} vs {road_m}"
    );
}

#[test]
fn a_u_turn_in_the_middle_of_a_road_is_followed() {
    let mut map = DrawnMap::new(
        "a----------------------------------------------------b",
        20.0,
    );
    map.way("ab", &[]);
    let (graph, _) = map.build().expect("builds");
    let (a, b) = (map.pos('a'), map.pos('b'));
    let turn = LatLon::new(a.lat, a.lon + 0.6 * (b.lon - a.lon));
    let fixes = drive(&[a, turn, a], 10.0, 1.0, 3.0, (0.0, 0.0), 19);
    let (finals, traversals, counters) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(counters.breaks, 0, "{counters:?}");
    // Out on one direction, back on the other.
    assert_eq!(traversals.len(), 2, "{traversals:?}");
    assert_eq!(
        graph.reverse_edge(traversals[0].edge),
        Some(traversals[1].edge)
    );
    let turned_at = traversals[0].to_offset_m;
    let expected = haversine_m(a, turn);
    assert!(
        (turned_at - expected).abs() < 30.0,
        "turned at {turned_at:.0} m, expected {expected:.0}"
    );
}

#[test]
fn sparse_fixes_follow_the_roads_between_them() {
    // A grid; the truck goes a→c along the top, down c→i, then i→g along the
    // bottom, one fix a minute: consecutive fixes are blocks apart.
    let mut map = DrawnMap::new(
        "a-------------------b-------------------c\n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         d-------------------e-------------------f\n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         \n\
         g-------------------h-------------------i",
        30.0,
    );
    let top = map.way("abc", &[]);
    map.way("def", &[]);
    let bottom = map.way("ghi", &[]);
    map.way("adg", &[]);
    map.way("beh", &[]);
    let right = map.way("cfi", &[]);
    let (graph, _) = map.build().expect("builds");
    // Start and end a little inside the roads, so first and last fixes do not sit
    // on a corner where either road is as likely.
    let inside = |from: char, to: char| {
        let (p, q) = (map.pos(from), map.pos(to));
        LatLon::new(p.lat + 0.1 * (q.lat - p.lat), p.lon + 0.1 * (q.lon - p.lon))
    };
    let route = [
        inside('a', 'b'),
        map.pos('c'),
        map.pos('i'),
        inside('g', 'h'),
    ];
    let fixes = drive(&route, 9.0, 60.0, 5.0, (0.0, 0.0), 23);
    assert!(fixes.len() >= 6, "{}", fixes.len());
    let (finals, traversals, _) = match_trace(&mut matcher(&graph), &fixes);
    assert_one_final_each(&finals, fixes.len());
    assert_eq!(ways_of(&graph, &traversals), vec![top, right, bottom]);
}

#[test]
fn state_moved_between_nodes_mid_stream_gives_the_same_result() {
    let mut map = DrawnMap::new(
        "a-------------b-------------c\n\
         \n\
         \n\
         \n\
         d-------------e-------------f",
        20.0,
    );
    map.way("abc", &[]);
    map.way("def", &[]);
    map.way("ad", &[]);
    map.way("be", &[]);
    map.way("cf", &[]);
    let (graph, _) = map.build().expect("builds");
    let fixes = drive(
        &[map.pos('d'), map.pos('e'), map.pos('b'), map.pos('c')],
        11.0,
        1.0,
        4.0,
        (0.0, 0.0),
        29,
    );
    let run = |split: Option<usize>| -> (Vec<FixMatch>, Vec<Traversal>) {
        let mut m = matcher(&graph);
        let mut state = MatchState::new();
        let mut events = MatchEvents::default();
        let mut finals = Vec::new();
        let mut traversals = Vec::new();
        for (i, f) in fixes.iter().enumerate() {
            if Some(i) == split {
                // Another node picks the vehicle up from its serialized state.
                let text = serde_json::to_string(&state).expect("serializes");
                assert!(text.len() < 16_000, "state is {} bytes", text.len());
                state = serde_json::from_str(&text).expect("deserializes");
                m = matcher(&graph);
            }
            m.push(&mut state, f, &mut events);
            assert_eq!(
                events.provisional.len(),
                1,
                "a provisional match for every fix"
            );
            finals.append(&mut events.finalized);
            traversals.append(&mut events.traversals);
            events.clear();
        }
        m.finish(&mut state, &mut events);
        finals.append(&mut events.finalized);
        traversals.append(&mut events.traversals);
        (finals, traversals)
    };
    // JSON does not round-trip the last bit of every float: compare to the millimetre.
    let fingerprint = |(finals, traversals): &(Vec<FixMatch>, Vec<Traversal>)| {
        let mm = |x: f64| (x * 1000.0).round() as i64;
        let f: Vec<_> = finals
            .iter()
            .map(|m| {
                (
                    m.seq,
                    m.time,
                    m.outcome.matched().map(|p| (p.edge, mm(p.offset_m))),
                )
            })
            .collect();
        let t: Vec<_> = traversals
            .iter()
            .map(|t| {
                (
                    t.edge,
                    t.entered_at,
                    t.exited_at,
                    mm(t.from_offset_m),
                    mm(t.to_offset_m),
                )
            })
            .collect();
        (f, t)
    };
    let whole = run(None);
    let moved = run(Some(fixes.len() / 2));
    assert_eq!(fingerprint(&whole), fingerprint(&moved));
    // Traversals are contiguous in time and driving order.
    for pair in whole.1.windows(2) {
        assert_eq!(pair[0].exited_at, pair[1].entered_at);
        assert_eq!(graph.edge_head(pair[0].edge), graph.edge_tail(pair[1].edge));
    }
}

#[test]
fn finals_lag_by_a_bounded_number_of_steps() {
    let mut map = DrawnMap::new(
        "a-----------------------------------------------b\n\
         \n\
         c-----------------------------------------------d",
        20.0,
    );
    // Two two-way parallel roads 40 m apart, joined at both ends; the fixes run
    // exactly between them, so neither hypothesis wins quickly.
    map.way("ab", &[]);
    map.way("cd", &[]);
    map.way("ac", &[]);
    map.way("bd", &[]);
    let (graph, _) = map.build().expect("builds");
    let fixes = drive(
        &[map.pos('a'), map.pos('b')],
        3.0,
        1.0,
        1.0,
        (0.0, -20.0),
        31,
    );
    let config = MatcherConfig::TRUCK;
    let mut m = matcher(&graph);
    let mut state = MatchState::new();
    let mut events = MatchEvents::default();
    let mut max_pending = 0;
    for f in &fixes {
        m.push(&mut state, f, &mut events);
        max_pending = max_pending.max(state.pending_steps());
    }
    assert!(
        max_pending <= config.max_lag_steps,
        "{max_pending} pending steps"
    );
}

#[test]
fn a_matcher_made_per_batch_from_the_last_ones_memory_matches_like_one_matcher() {
    let mut map = DrawnMap::new(
        "a--------------------------------------------b\n\
         \n\
         \n\
         c--------------------------------------------d",
        10.0,
    );
    map.way("ab", &[("highway", "primary")]);
    map.way("cd", &[("highway", "unclassified")]);
    map.way("ac", &[("highway", "residential")]);
    map.way("bd", &[("highway", "residential")]);
    let (graph, _) = map.build().expect("builds");
    let fixes = drive(
        &[map.pos('a'), map.pos('b'), map.pos('d')],
        12.0,
        1.0,
        3.0,
        (0.0, 0.0),
        11,
    );
    let (whole, _, _) = match_trace(&mut matcher(&graph), &fixes);

    // In batches of 7, each batch's matcher built from the previous one's memory.
    let mut state = MatchState::new();
    let mut events = MatchEvents::default();
    let mut finals = Vec::new();
    let mut scratch = engine::MatcherScratch::default();
    for batch in fixes.chunks(7) {
        let mut m = Matcher::with_scratch(&graph, MatcherConfig::TRUCK, scratch).expect("valid");
        for fix in batch {
            events.clear();
            m.push(&mut state, fix, &mut events);
            finals.extend(events.finalized.iter().copied());
        }
        scratch = m.into_scratch();
    }
    let mut m = Matcher::with_scratch(&graph, MatcherConfig::TRUCK, scratch).expect("valid");
    events.clear();
    m.finish(&mut state, &mut events);
    finals.extend(events.finalized.iter().copied());
    finals.sort_by_key(|f| f.seq);
    assert_eq!(finals, whole);

    // Handed to another map (the same roads, c–d now north of a–b), it matches
    // like a fresh matcher there: its tables are rebuilt, not reused.
    let mut flipped = DrawnMap::new(
        "c--------------------------------------------d\n\
         \n\
         \n\
         a--------------------------------------------b",
        10.0,
    );
    for (way, class) in [
        ("ab", "primary"),
        ("cd", "unclassified"),
        ("ac", "residential"),
        ("bd", "residential"),
    ] {
        flipped.way(way, &[("highway", class)]);
    }
    let (other, _) = flipped.build().expect("builds");
    let fixes = drive(
        &[flipped.pos('a'), flipped.pos('b'), flipped.pos('d')],
        12.0,
        1.0,
        3.0,
        (0.0, 0.0),
        11,
    );
    let (fresh, _, _) = match_trace(&mut matcher(&other), &fixes);
    let mut reused =
        Matcher::with_scratch(&other, MatcherConfig::TRUCK, m.into_scratch()).expect("valid");
    let (again, _, _) = match_trace(&mut reused, &fixes);
    assert_eq!(again, fresh);
}

#[test]
fn a_drifting_gps_does_not_pull_a_dense_feed_onto_the_road_beside_it() {
    // Two two-way streets 40 m apart with cross streets every 100 m. The truck
    // drives the upper one west to east at 12 m/s, one fix a second; for about
    // 20 s its GPS drifts 24 m south (closer to the lower street) and back, as
    // GPS errors drift. Counted as 20 independent fixes that drift is strong
    // evidence for the lower street; it is one error, seen 20 times.
    let mut map = DrawnMap::new(
        "a---------b---------c---------d---------e\n\
         |         |         |         |         |\n\
         |         |         |         |         |\n\
         |         |         |         |         |\n\
         f---------g---------h---------i---------j",
        10.0,
    );
    let upper = map.way("abcde", &[("highway", "residential")]);
    let lower = map.way("fghij", &[("highway", "residential")]);
    for cross in ["af", "bg", "ch", "di", "ej"] {
        map.way(cross, &[("highway", "residential")]);
    }
    let (graph, _) = map.build().expect("builds");
    let (west, east) = (map.pos('a'), map.pos('e'));
    let plane = LocalPlane::new(west);
    let mut noise = Noise(5);
    let fixes: Vec<Fix> = (0..34)
        .map(|k| {
            let t = f64::from(k);
            // South by up to 24 m between t = 10 and 32 s, smoothly.
            let drift_m = if (10.0..=32.0).contains(&t) {
                24.0 * (std::f64::consts::PI * (t - 10.0) / 22.0).sin()
            } else {
                0.0
            };
            let f = (12.0 * t) / haversine_m(west, east);
            let on_road = LatLon::new(
                west.lat + f * (east.lat - west.lat),
                west.lon + f * (east.lon - west.lon),
            );
            let (x, y) = plane.to_xy(on_road);
            Fix {
                time: at(t),
                pos: plane.to_latlon(x + noise.gauss(1.0), y - drift_m + noise.gauss(1.0)),
                accuracy_m: None,
            }
        })
        .collect();
    let ways = |noise_correlation_s: f64| -> Vec<i64> {
        let config = MatcherConfig {
            noise_correlation_s,
            ..MatcherConfig::TRUCK
        };
        let mut m = Matcher::new(&graph, config).expect("valid config");
        let (finals, traversals, _) = match_trace(&mut m, &fixes);
        assert_one_final_each(&finals, fixes.len());
        ways_of(&graph, &traversals)
    };
    // Every fix independent: the drift takes the match round the block.
    assert!(
        ways(0.0).contains(&lower),
        "independent fixes: {:?}",
        ways(0.0)
    );
    // Errors alike for 15 s: the truck stays on its street.
    assert_eq!(ways(15.0), vec![upper]);
}
