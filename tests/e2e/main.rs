//! The end-to-end tests of the `tracker` binary, one test binary for all of
//! them (one link instead of one per file): each module drives the real
//! binary (`CARGO_BIN_EXE_tracker`) and the services it talks to, as a user
//! or operator would. `cargo test --test e2e MODULE` runs one module.

mod cli_support;
mod portal_support;

mod analytics_serve;
mod basemap_browser;
mod branding_browser;
mod cli_graph;
mod cli_tenant_keys;
mod eta_eval_cli;
mod ingest_simulate;
mod match_cli;
mod multinode_kafka;
mod notify_email;
mod notify_webhooks;
mod observability_serve;
mod one_position_contract;
mod page_accessibility;
mod page_i18n;
mod pipeline_serve;
mod plausibility_serve;
mod portal_browser;
mod portal_fanout;
mod portal_serve;
mod route_cli;
mod route_snapshot_cli;
mod serve_hardening;
mod serve_postgres;
mod serve_store_cli;
mod staff_browser;
mod tenant_isolation;
