//! Simulated truck trips with known traffic and hours of service, for
//! `tracker eta-eval --simulate N`: what the real tracks cannot show.
//!
//! Each trip drives the free-flow fastest route between two random points of the
//! map, 8 to 40 km apart, with a driver who runs 15 % faster to 20 % slower than
//! the metric, edge-to-edge noise, up to two jams on the way (1–4 km at 25–50 % of
//! the speed) that other trucks of the fleet report shortly before this one gets
//! there, and the hours of service: some drivers are minutes from their 30-minute
//! break, some from the end of their 11-hour clock (a 10-hour reset), and their
//! ELD reports the clocks with every fix. Fixes come every `every_s` seconds with
//! Gaussian GPS noise. Everything is drawn from one seeded generator, so a run is
//! reproducible.

use chrono::{DateTime, Duration, TimeZone, Utc};
use engine::{Fix, HosReport, HosRules, Snap, SpeedObservation};
use road_graph::{EdgeId, LatLon, LocalPlane, NodeId};

use super::replay::{MapSession, Trip};

/// Settings of the simulation.
#[derive(Debug, Clone, Copy)]
pub(super) struct SimSettings {
    pub(super) trips: usize,
    pub(super) every_s: f64,
    pub(super) noise_m: f64,
    pub(super) seed: u64,
}

/// SplitMix64 and Box–Muller: small, deterministic, good enough for scenarios.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One piece of the route: an edge, the part of it driven, and the true time.
#[derive(Debug, Clone, Copy)]
struct Piece {
    edge: EdgeId,
    from_m: f64,
    to_m: f64,
    true_s: f64,
    jam: Option<f64>,
}

/// The trips, in order.
pub(super) fn simulate(session: &MapSession, settings: &SimSettings) -> Vec<Trip> {
    let mut rng = Rng(settings.seed);
    let mut trips = Vec::with_capacity(settings.trips);
    let base = Utc
        .with_ymd_and_hms(2025, 6, 2, 6, 0, 0)
        .single()
        .unwrap_or_default();
    for k in 0..settings.trips {
        let start = base + Duration::days(k as i64);
        if let Some(trip) = one_trip(session, settings, &mut rng, format!("sim{k:03}"), start) {
            trips.push(trip);
        }
    }
    trips
}

fn one_trip(
    session: &MapSession,
    settings: &SimSettings,
    rng: &mut Rng,
    name: String,
    start: DateTime<Utc>,
) -> Option<Trip> {
    let graph = session.graph();
    let route = (0..200).find_map(|_| {
        let pick = |rng: &mut Rng| graph.node_pos(NodeId(rng.below(graph.n_nodes()) as u32));
        let (a, b) = (pick(rng), pick(rng));
        let from = Snap::nearest(graph, a, 50.0)?;
        let to = Snap::nearest(graph, b, 50.0)?;
        session
            .baseline()
            .route(&from, &to)
            .filter(|r| (8_000.0..=40_000.0).contains(&r.distance_m) && r.edges.len() >= 10)
    })?;

    // The truth: driver, noise, jams.
    let driver = rng.range(0.85, 1.2);
    let total_m = route.distance_m;
    let jams: Vec<(f64, f64, f64)> = (0..[0, 1, 1, 2, 2][rng.below(5)])
        .map(|_| {
            let from = rng.range(0.15, 0.75) * total_m;
            (from, from + rng.range(1000.0, 4000.0), rng.range(0.25, 0.5))
        })
        .collect();
    let last = route.edges.len() - 1;
    let mut along_m = 0.0;
    let pieces: Vec<Piece> = route
        .edges
        .iter()
        .enumerate()
        .map(|(i, &edge)| {
            let length = graph.edge_length_m(edge);
            let from_m = if i == 0 { route.from.offset_m } else { 0.0 };
            let to_m = if i == last { route.to.offset_m } else { length };
            let part_m = (to_m - from_m).max(0.0);
            let middle = along_m + part_m / 2.0;
            along_m += part_m;
            let jam = jams
                .iter()
                .find(|(a, b, _)| (*a..*b).contains(&middle))
                .map(|j| j.2);
            let free_s = if length > 0.0 {
                graph.edge_free_flow_s(edge) * part_m / length
            } else {
                0.0
            };
            let noise = (0.1 * rng.gauss()).exp();
            Piece {
                edge,
                from_m,
                to_m,
                true_s: free_s * driver * noise / jam.unwrap_or(1.0),
                jam,
            }
        })
        .collect();

    // Hours of service at the start, as the ELD would report them.
    let rules = HosRules::US_PROPERTY;
    let scenario = rng.unit();
    let (mut drive_left, mut until_break, mut window_left) = if scenario < 0.3 {
        (
            rng.range(4.0, 10.0) * 3600.0,
            rng.range(300.0, 1500.0),
            rng.range(6.0, 13.0) * 3600.0,
        )
    } else if scenario < 0.45 {
        let drive = rng.range(300.0, 1500.0);
        (
            drive,
            drive + rng.range(3600.0, 3.0 * 3600.0),
            rng.range(6.0, 13.0) * 3600.0,
        )
    } else {
        (
            rng.range(4.0, 11.0) * 3600.0,
            rng.range(2.0, 8.0) * 3600.0,
            rng.range(6.0, 14.0) * 3600.0,
        )
    };

    let mut fixes = Vec::new();
    let mut hos = Vec::new();
    let mut emit = |t_s: f64, p: LatLon, clocks: (f64, f64, f64), rng: &mut Rng| {
        let plane = LocalPlane::new(p);
        let noisy = plane.to_latlon(
            settings.noise_m * rng.gauss(),
            settings.noise_m * rng.gauss(),
        );
        fixes.push(Fix {
            time: start + Duration::milliseconds((t_s * 1000.0) as i64),
            pos: noisy,
            accuracy_m: None,
        });
        let whole = |s: f64| Some(s.max(0.0) as u32);
        hos.push(HosReport {
            drive_left_s: whole(clocks.0),
            window_left_s: whole(clocks.2),
            until_break_s: whole(clocks.1),
        });
    };
    let mut t_s = 0.0;
    let mut next_fix_s = 0.0;
    let mut fleet = Vec::new();
    for piece in &pieces {
        if let Some(jam) = piece.jam {
            // Other trucks crawl through the jam shortly before this one.
            let length_m = piece.to_m - piece.from_m;
            if length_m > 20.0 {
                for _ in 0..3 {
                    let speed_mps =
                        graph.edge_speed_kph(piece.edge) / 3.6 * jam * rng.range(0.9, 1.1);
                    let exit_s = t_s - rng.range(60.0, 1200.0);
                    fleet.push(SpeedObservation {
                        edge: piece.edge,
                        entered_at: start
                            + Duration::milliseconds(
                                ((exit_s - length_m / speed_mps) * 1000.0) as i64,
                            ),
                        exited_at: start + Duration::milliseconds((exit_s * 1000.0) as i64),
                        distance_m: length_m,
                    });
                }
            }
        }
        let mut done_s = 0.0;
        while done_s < piece.true_s {
            let available = drive_left.min(until_break).min(window_left);
            if available <= 0.0 {
                let (stop_s, reset) = if drive_left <= 0.0 || window_left <= 0.0 {
                    (rules.reset_s, true)
                } else {
                    (rules.break_s, false)
                };
                let here = position(graph, piece, done_s);
                while next_fix_s < t_s + stop_s {
                    emit(
                        next_fix_s,
                        here,
                        (drive_left, until_break, window_left),
                        rng,
                    );
                    next_fix_s += settings.every_s;
                }
                t_s += stop_s;
                if reset {
                    drive_left = rules.max_drive_s;
                    window_left = rules.duty_window_s;
                } else {
                    window_left -= stop_s;
                }
                until_break = rules.break_after_drive_s;
                continue;
            }
            let step = (piece.true_s - done_s).min(available);
            while next_fix_s < t_s + step {
                let p = position(graph, piece, done_s + (next_fix_s - t_s));
                emit(next_fix_s, p, (drive_left, until_break, window_left), rng);
                next_fix_s += settings.every_s;
            }
            t_s += step;
            done_s += step;
            drive_left -= step;
            until_break -= step;
            window_left -= step;
        }
    }
    let end = graph.point_along_edge(route.edges[last], route.to.offset_m);
    emit(
        t_s.max(next_fix_s - settings.every_s + 1.0),
        end,
        (drive_left, until_break, window_left),
        rng,
    );
    fleet.sort_by_key(|o| o.exited_at);
    Some(Trip {
        name,
        fixes,
        hos,
        fleet,
    })
}

/// Where the truck is `s` seconds into a piece.
fn position(graph: &road_graph::RoadGraph, piece: &Piece, s: f64) -> LatLon {
    let share = if piece.true_s > 0.0 {
        (s / piece.true_s).clamp(0.0, 1.0)
    } else {
        1.0
    };
    graph.point_along_edge(
        piece.edge,
        piece.from_m + (piece.to_m - piece.from_m) * share,
    )
}
