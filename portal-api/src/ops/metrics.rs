//! `GET /metrics`: the Prometheus text of every metric the process records
//! through the `metrics` facade (the portal's own, the pipeline's, ingest's),
//! plus values that are kept elsewhere and copied in at scrape time (the
//! engine's counters, the fan-out hub, the outbox depth): the binary registers
//! those as scrape hooks on [`crate::AppState`].
//!
//! One recorder per process, installed on first use ([`prometheus`]); every
//! histogram whose name ends in `_seconds` gets [`SECONDS_BUCKETS`].

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::contract::ErrorBody;
use crate::error::AppError;
use crate::state::AppState;

/// Bucket bounds of every `*_seconds` histogram: 100 µs (a match of a small
/// batch) to 30 s (a full re-customization of a large map).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Work run before every render: copies values kept elsewhere into the
/// recorder (`metrics::counter!(…).absolute(n)`, `metrics::gauge!(…).set(x)`).
pub(crate) type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// The scrape hooks of a portal.
#[derive(Default)]
pub(crate) struct ScrapeHooks(parking_lot::Mutex<Vec<ScrapeHook>>);

impl ScrapeHooks {
    pub(crate) fn push(&self, hook: ScrapeHook) {
        self.0.lock().push(hook);
    }

    fn run_all(&self) {
        for hook in self.0.lock().iter() {
            hook();
        }
    }
}

impl std::fmt::Debug for ScrapeHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScrapeHooks({})", self.0.lock().len())
    }
}

/// The process's Prometheus recorder, installed as the global `metrics`
/// recorder on the first call; `None` when another recorder was installed
/// first (then `/metrics` answers 503).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "no Prometheus recorder: /metrics is off");
                    None
                }
            }
        })
        .clone()
}

/// The bearer token `/metrics` asks for. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// A token; `None` when it is empty (an empty token would protect nothing).
    pub fn new(token: impl Into<String>) -> Option<MetricsToken> {
        let token = token.into();
        (!token.trim().is_empty()).then(|| MetricsToken(token.trim().to_owned()))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// `GET /metrics`: 401 without the token when one is set; the text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "the Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "a metrics token is set and was not given", body = ErrorBody),
        (status = 503, description = "another recorder owns this process", body = ErrorBody)
    ),
)]
pub(crate) async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config().metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|p| token.matches(p)) {
            return AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "`/metrics` needs `Authorization: Bearer TOKEN` (the metrics token)",
            )
            .into_response();
        }
    }
    let Some(handle) = state.inner.prometheus.clone() else {
        return AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "another metrics recorder owns this process",
        )
        .into_response();
    };
    record_portal(&state).await;
    state.inner.scrape_hooks.run_all();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The portal's values that live in atomics and in the store.
async fn record_portal(state: &AppState) {
    let m = &state.inner.metrics;
    let hub = state.inner.fanout.hub();
    let get_u = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let get_i = |c: &std::sync::atomic::AtomicI64| c.load(Ordering::Relaxed) as f64;
    metrics::gauge!("tracker_ws_open").set(get_i(&m.ws_open));
    metrics::counter!("tracker_ws_opened_total").absolute(get_u(&m.ws_opened_total));
    metrics::counter!("tracker_ws_messages_total").absolute(get_u(&m.ws_messages_total));
    metrics::counter!("tracker_ws_resyncs_total").absolute(get_u(&m.ws_resyncs_total));
    metrics::gauge!("tracker_fanout_orders_watched").set(hub.n_orders() as f64);
    metrics::counter!("tracker_fanout_delivered_total").absolute(hub.delivered());
    let held = state.inner.fanout.held();
    metrics::gauge!("tracker_fanout_held").set(held.held as f64);
    metrics::counter!("tracker_fanout_held_dropped_total").absolute(held.dropped);
    metrics::gauge!("tracker_http_connections_open").set(get_i(&m.http_connections_open));
    metrics::counter!("tracker_http_connections_refused_total")
        .absolute(get_u(&m.http_connections_refused_total));
    for (name, value) in m.external.lock().iter() {
        metrics::counter!(*name).absolute(get_u(value));
    }
    // The store's outbox: work announced and not yet delivered.
    match state.store().outbox_pending().await {
        Ok(pending) => metrics::gauge!("tracker_outbox_depth").set(pending as f64),
        Err(err) => tracing::debug!(error = %err, "reading the outbox depth failed"),
    }
    // Messages made from it and not yet delivered, and disabled webhooks.
    if let Some(notes) = state.store().notifications() {
        match notes.delivery_gauges().await {
            Ok(g) => {
                metrics::gauge!("tracker_webhook_endpoints_disabled")
                    .set(g.webhooks_disabled as f64);
                metrics::gauge!("tracker_notifications_waiting", "channel" => "email")
                    .set(g.email_waiting as f64);
                metrics::gauge!("tracker_notifications_waiting", "channel" => "webhook")
                    .set(g.webhook_waiting as f64);
            }
            Err(err) => tracing::debug!(error = %err, "reading the delivery gauges failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_matches_itself_only_and_never_shows_in_debug() {
        let token = MetricsToken::new("s3cret-metrics").expect("a token");
        assert!(token.matches("s3cret-metrics"));
        assert!(!token.matches("s3cret-metric"));
        assert!(!token.matches("s3cret-metricsX"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(MetricsToken::new("  ").is_none());
    }
}
