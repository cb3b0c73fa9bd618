//! The routing core: fastest truck routes under a metric that live traffic replaces
//! every few seconds, without rebuilding anything that does not depend on it.
//!
//! - [`turns`]: the turn graph (directed edges as nodes, allowed turns as arcs),
//!   which carries turn restrictions and the U-turn policy.
//! - [`order`] and [`flow`]: nested dissection by inertial flow.
//! - [`cch`]: the metric-independent Customizable Contraction Hierarchy.
//! - [`customize`]: full and partial customization of a metric, in parallel.
//! - [`query`]: elimination-tree queries and path unpacking.
//! - [`prepared`]: the hierarchy and last metric as bytes for the map snapshot,
//!   checked on load.
//! - [`router`]: the public face, with the atomically swapped metric.
//! - [`metric`], [`snap`]: travel times, time-of-day profiles, endpoints, routes.
//! - [`dijkstra`]: the plain baseline.

mod cch;
mod customize;
mod dijkstra;
mod flow;
mod metric;
mod order;
mod prepared;
mod query;
mod router;
mod snap;
#[cfg(test)]
mod tests;
mod turns;

pub use metric::{HourOfWeek, INFINITY_MS, MAX_EDGE_MS, Metric, ShapeId, WeeklyProfile, travel_ms};
pub use prepared::{Preparation, ROUTER_SECTION};
pub use router::{Router, RouterStats};
pub use snap::{EdgePosition, Route, Snap};
pub use turns::TurnCosts;
