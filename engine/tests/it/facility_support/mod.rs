//! What the facility tests share: a truck's raw fixes written as a trip
//! (drive along points, stand, manoeuvre), with seeded GPS noise, and the
//! status moves an engine run produced.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, Utc};
use engine::{
    EngineEvent, EtaUpdate, OrderStatus, Position, PositionSource, StatusChange, TenantId,
    VehicleId,
};
use road_graph::{LatLon, LocalPlane, haversine_m};

pub const TENANT: &str = "ten_test";

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("valid time")
}

pub fn at(seconds: f64) -> DateTime<Utc> {
    t0() + Duration::milliseconds((seconds * 1000.0) as i64)
}

pub fn seconds_since_t0(t: DateTime<Utc>) -> f64 {
    (t - t0()).num_milliseconds() as f64 / 1000.0
}

/// `p` moved `east_m` east and `north_m` north.
pub fn offset(p: LatLon, east_m: f64, north_m: f64) -> LatLon {
    LocalPlane::new(p).to_latlon(east_m, north_m)
}

/// A truck's raw fixes, a fix every `every_s`, each moved by seeded GPS noise
/// of `noise_m` (standard deviation, each axis), its speed reported or not.
#[derive(Debug, Clone)]
pub struct Trip {
    vehicle: String,
    every_s: f64,
    noise_m: f64,
    report_speed: bool,
    rng: u64,
    /// Where the truck truly is, and the time, seconds from [`t0`].
    pub here: LatLon,
    pub now_s: f64,
    pub fixes: Vec<Position>,
}

impl Trip {
    pub fn new(vehicle: &str, start: LatLon, start_s: f64, every_s: f64) -> Trip {
        Trip {
            vehicle: vehicle.into(),
            every_s,
            noise_m: 0.0,
            report_speed: true,
            rng: 0x9e37_79b9_7f4a_7c15,
            here: start,
            now_s: start_s,
            fixes: Vec::new(),
        }
    }

    pub fn noise(mut self, noise_m: f64, seed: u64) -> Trip {
        self.noise_m = noise_m;
        self.rng = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        self
    }

    pub fn without_speed(mut self) -> Trip {
        self.report_speed = false;
        self
    }

    fn uniform(&mut self) -> f64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    fn emit(&mut self, speed_mps: f64) {
        let (dx, dy) = (self.gauss() * self.noise_m, self.gauss() * self.noise_m);
        let seen = offset(self.here, dx, dy);
        self.fixes.push(Position {
            tenant_id: TenantId(TENANT.into()),
            vehicle_id: VehicleId(self.vehicle.clone()),
            time: at(self.now_s),
            lat: seen.lat,
            lon: seen.lon,
            speed_mps: self.report_speed.then_some(speed_mps),
            heading_deg: None,
            odometer_m: None,
            hos_drive_remaining_s: None,
            accuracy_m: None,
            source: PositionSource::Simulator,
        });
    }

    /// Drives through `points` in straight lines at `speed_mps`.
    pub fn drive(&mut self, points: &[LatLon], speed_mps: f64) -> &mut Trip {
        let step_m = speed_mps * self.every_s;
        for &to in points {
            loop {
                let left_m = haversine_m(self.here, to);
                if left_m < 1e-6 {
                    break;
                }
                if left_m <= step_m {
                    let dt_s = left_m / speed_mps;
                    self.here = to;
                    self.now_s += dt_s.max(0.001);
                    self.emit(speed_mps);
                    break;
                }
                let share = step_m / left_m;
                let plane = LocalPlane::new(self.here);
                let (x, y) = plane.to_xy(to);
                self.here = plane.to_latlon(x * share, y * share);
                self.now_s += self.every_s;
                self.emit(speed_mps);
            }
        }
        self
    }

    /// Stands where it is for `for_s` seconds.
    pub fn stand(&mut self, for_s: f64) -> &mut Trip {
        let end_s = self.now_s + for_s;
        while self.now_s + self.every_s <= end_s + 1e-9 {
            self.now_s += self.every_s;
            self.emit(0.0);
        }
        self
    }

    /// Nothing sent for `for_s` seconds (the truck does not move).
    pub fn silent(&mut self, for_s: f64) -> &mut Trip {
        self.now_s += for_s;
        self
    }
}

pub fn statuses(events: &[EngineEvent]) -> Vec<&StatusChange> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::StatusChanged(s) => Some(s),
            _ => None,
        })
        .collect()
}

pub fn etas(events: &[EngineEvent]) -> Vec<&EtaUpdate> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::EtaUpdated(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// The status moves, stop by stop.
pub fn moves(events: &[EngineEvent]) -> Vec<(OrderStatus, Option<u32>)> {
    statuses(events)
        .iter()
        .map(|s| (s.status, s.stop_index))
        .collect()
}
