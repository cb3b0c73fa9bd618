//! A fleet of simulated trucks on a real road graph, and the loop that publishes
//! it. The fleet ([`Fleet`]) is pure and deterministic: a seed, a start time and
//! `advance(until)` calls give the same positions every run, so the demo fleet of
//! `tracker serve` can run it in-process and tests can pin its behaviour. The
//! publishing loop ([`run_simulation`]) is the I/O edge: Kafka here, HTTP in the
//! binary, behind [`PositionPublisher`] and [`OrderCreator`].
//!
//! Trucks drive routes between random points 3–25 km apart (planned by any
//! [`RoutePlanner`]; the engine's CCH [`engine::Router`] implements it), at the
//! road's free-flow speed capped at a truck's and varied per road piece, stop at
//! some intersections, dwell at destinations, take the 30-minute break after 8 h
//! of driving and the 10-hour rest after 11 h (US hours of service), and report
//! like ELDs: GPS noise with rare outliers, one fix every 1 s to 5 min depending
//! on the unit, less often while parked.

mod fleet;
mod publish;

pub use fleet::{Fleet, FleetConfig, PlannedRoute, RoutePlanner, TripPlan, gaussian};
pub use publish::{
    KafkaPositions, OrderCreator, PositionPublisher, PublishSettings, SimReport, SimTarget,
    run_simulation, sim_start,
};
