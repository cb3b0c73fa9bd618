//! The engine's integration tests in one test binary (one link instead of
//! one per file): scenarios on tiny drawn maps and real-data checks.
//! `cargo test -p engine --test it MODULE` runs one module.

mod eta_support;
mod facility_support;
mod routing_support;

mod eta_scenarios;
mod eta_window_coverage;
mod facility_baltimore;
mod facility_scenarios;
mod live_scenarios;
mod matching_kubicka;
mod matching_scenarios;
mod routing_prepared;
mod routing_random_graphs;
mod routing_real_data;
mod routing_scenarios;
mod traffic_model;
