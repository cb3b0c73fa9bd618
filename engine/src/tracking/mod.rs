//! The per-vehicle tracker: ties map matching, the routing core, the traffic
//! metric and the ETA together for one truck on one order, with the efficiency
//! rules (route only when needed, publish only when the ETA moved) and the
//! prediction log.
//!
//! - [`vehicle`]: the tracker, fix by fix.
//! - [`leg`]: a routed leg with cumulative times, and the truck's place on it.
//! - [`log`]: prediction and arrival records, progress checkpoints.
//! - [`config`]: the settings.

mod config;
mod leg;
mod log;
mod vehicle;

pub use config::TrackerConfig;
pub use log::{ArrivalRecord, ClosedBy, ClosedPrediction, PredictionRecord};
pub use vehicle::{
    MetricVersion, RerouteReason, Resumed, TrackedStop, TrackerCounters, TrackerMemory,
    TrackerOutput, TrackingContext, VehicleFix, VehicleTracker,
};
