//! The truck-aware ETA: from the router's drive times to the arrival at every
//! remaining stop of an order, with the truck's own pace, US hours of service,
//! appointment windows and dwell, an honest p10–p90 window calibrated by horizon,
//! and the reasons (`traffic`, `hos_break`, `dwell`, `window_wait`).
//!
//! - [`compute`]: the timeline of one order's remaining stops.
//! - [`hos`]: the hours-of-service clocks, played forward and estimated.
//! - [`pace`]: the truck's pace against the metric.
//! - [`stall`]: how long a truck that stopped making progress may stay put.
//! - [`dwell`]: how long the fleet stays at the stops it leaves again.
//! - [`calibrate`]: the error distribution by horizon and the p10/p90 window.
//! - [`coverage`]: the window's scale by horizon, from where arrivals fell in it.
//! - [`trips`]: percentiles where every trip weighs the same.
//! - [`window`]: appointment windows and stop plans.
//! - [`horizon`]: the horizon buckets every accuracy report shares.
//! - [`config`]: the settings.

mod calibrate;
mod compute;
mod config;
mod coverage;
mod dwell;
mod horizon;
mod hos;
mod pace;
mod stall;
mod trips;
mod window;

pub use calibrate::{
    BucketSummary, CalibrationConfig, Calibrator, Horizon, OwnErrors, OwnQuantiles,
};
pub use compute::{EtaInput, Leg, StopEta, estimate_stops};
pub use config::EtaConfig;
pub use coverage::WindowOutcome;
pub use dwell::{DwellConfig, DwellHistory};
pub use horizon::{HORIZONS_S, N_HORIZON_BUCKETS, horizon_bounds, horizon_bucket};
pub use hos::{HosClocks, HosEstimator, HosObservation, HosReport, HosRules, HosStop, HosStopKind};
pub use pace::{PaceConfig, PaceEstimator};
pub use stall::{StallConfig, StallTail};
pub use window::{AppointmentWindow, StopPlan};
