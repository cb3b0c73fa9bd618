//! What an operator sees of a node: `/metrics` (everything recorded through the
//! `metrics` facade, rendered by one Prometheus recorder, optionally behind a
//! bearer token), `/readyz` (whether the map is loaded and the bus and the
//! store answer; `/healthz` stays plain liveness) and the span every HTTP
//! request is logged under (a request id, and the route's template instead of
//! its path, so tracking codes never reach a log).

mod metrics;
mod ready;
mod request;

pub(crate) use metrics::{__path_render, ScrapeHooks, render};
pub use metrics::{MetricsToken, SECONDS_BUCKETS, prometheus};
pub(crate) use ready::{__path_readyz, Readiness, readyz};
pub(crate) use request::observe;
