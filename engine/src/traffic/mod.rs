//! Live traffic from the fleet itself: per-edge speed estimates from the matched
//! passages of every truck, decaying back to an hour-of-week profile learned from
//! history (and to the free-flow speed where there is none), with an optional
//! external per-way speed feed merged in. The output is one speed per edge, which
//! the routing core turns into its `Metric`.
//!
//! - [`observation`]: the input (an edge, entry and exit times, metres driven).
//! - [`live`]: the recent samples of an edge and their robust estimate.
//! - [`profile`]: the hour-of-week profile learned from history.
//! - [`history`]: the running sums the live engine learns its profile from.
//! - [`feed`]: the external speed feed, per OSM way.
//! - [`model`]: the three layers blended into current speeds and a metric.
//! - [`config`]: the settings.

mod config;
mod feed;
mod history;
mod live;
mod model;
mod observation;
mod profile;

pub use config::TrafficConfig;
pub use feed::ExternalSpeed;
pub use history::ProfileHistory;
pub use model::{SpeedEstimate, SpeedSource, TrafficModel};
pub use observation::{SampleRejection, SpeedObservation, TrafficCounters};
pub use profile::SpeedProfile;
