//! The portal's integration tests in one test binary (one link instead of
//! one per file): each module is a scenario against the router in process
//! (`common`), with the services it needs. `cargo test -p portal-api --test
//! it MODULE` runs one module.

mod common;

mod alerts;
mod analytics_api;
mod api_isolation;
mod api_keys;
mod api_notifications;
mod api_orders;
mod api_orders_edge;
mod api_public;
mod api_visibility_feed;
mod api_webhooks;
mod branding;
mod fanout_redis;
mod http_server;
mod map_tiles;
mod openapi_answers;
mod page_i18n;
mod page_weight;
mod readiness;
mod stop_states;
mod ws;
