//! The store's integration tests in one test binary (one link instead of one
//! per file): the conformance suite on SQLite and PostgreSQL, analytics,
//! notifications, learned state. `cargo test -p store --features testing
//! --test it MODULE` runs one module.

mod common;

mod learned_state;
mod store_analytics;
mod store_analytics_nodes;
mod store_conformance;
mod store_errors;
mod store_notifications;
mod store_postgres_tls;
