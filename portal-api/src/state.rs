//! The server's configuration and shared state: what every handler can reach.

use std::sync::Arc;
use std::time::{Duration, Instant};

use road_graph::RoadGraph;

use crate::api::TrustedProxies;
use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::live::{DirectIntake, LiveUpdates, PositionIntake};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Settings of the portal, built by the binary from flags and validated once.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The public origin tracking links are built on (`https://track.example.com`),
    /// without a trailing slash: links are `{public_base_url}/t/{code}`.
    pub public_base_url: String,
    /// A raster tile URL template (`https://…/{z}/{x}/{y}.png`) for deployments
    /// that have a tile server; `None` draws the basemap from our own road graph.
    pub tile_url: Option<String>,
    /// Public lookups (page, JSON, WebSocket) one client IP may burst…
    pub public_burst: u32,
    /// …and sustain per second.
    pub public_per_s: f64,
    /// Interval of WebSocket heartbeats.
    pub heartbeat: Duration,
    /// Largest accepted proof-of-delivery file.
    pub pod_max_bytes: usize,
    /// Largest accepted `POST /api/v1/positions` batch (items).
    pub max_batch: usize,
    /// The position rules: the same as every other source's (the binary
    /// passes the ones it gives ingest).
    pub position_rules: engine::ValidationRules,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client
    /// for the public rate limit; none by default (the socket peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// The key that seals tracking codes for milestone e-mails and makes
    /// unsubscribe tokens (`None`: e-mails are off; codes are not sealed and
    /// previews show no links).
    pub notify_key: Option<crate::notify::NotifyKey>,
    /// Who customers may write to, named in e-mails (`{{contact}}`): the
    /// sender address by default.
    pub mail_contact: Option<String>,
}

impl PortalConfig {
    /// The recommended settings for a given public origin.
    pub fn recommended(public_base_url: &str) -> PortalConfig {
        PortalConfig {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            tile_url: None,
            public_burst: 60,
            public_per_s: 2.0,
            heartbeat: Duration::from_secs(20),
            pod_max_bytes: 10 * 1024 * 1024,
            max_batch: 10_000,
            position_rules: engine::ValidationRules::RECOMMENDED,
            trusted_proxies: TrustedProxies::none(),
            notify_key: None,
            mail_contact: None,
        }
    }

    /// Checks every setting; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let url = &self.public_base_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/') {
            return Err(Error::InvalidConfig {
                setting: "public_base_url",
                reason: format!("`{url}` must be an http(s) origin without a trailing slash"),
            });
        }
        if let Some(tiles) = &self.tile_url
            && !(tiles.contains("{z}") && tiles.contains("{x}") && tiles.contains("{y}"))
        {
            return Err(Error::InvalidConfig {
                setting: "tile_url",
                reason: format!("`{tiles}` needs {{z}}, {{x}} and {{y}} placeholders"),
            });
        }
        if self.public_burst == 0 || !self.public_per_s.is_finite() || self.public_per_s <= 0.0 {
            return Err(Error::InvalidConfig {
                setting: "public_rate",
                reason: "burst and rate must be positive".into(),
            });
        }
        if self.heartbeat < Duration::from_secs(1) {
            return Err(Error::InvalidConfig {
                setting: "heartbeat",
                reason: "at least one second".into(),
            });
        }
        Ok(())
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: PortalConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) fanout: Arc<dyn FanOut>,
    pub(crate) live: LiveUpdates,
    pub(crate) intake: Arc<dyn PositionIntake>,
    pub(crate) graph: Option<Arc<RoadGraph>>,
    pub(crate) limiter: RateLimiter,
    pub(crate) started: Instant,
    pub(crate) metrics: Metrics,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) ws_open: std::sync::atomic::AtomicI64,
    pub(crate) ws_opened_total: std::sync::atomic::AtomicU64,
    pub(crate) ws_resyncs_total: std::sync::atomic::AtomicU64,
    pub(crate) ws_messages_total: std::sync::atomic::AtomicU64,
    /// Open HTTP connections under the cap (upgraded WebSockets included).
    pub(crate) http_connections_open: std::sync::atomic::AtomicI64,
    /// Connections answered `503 overloaded` because the cap was reached.
    pub(crate) http_connections_refused_total: std::sync::atomic::AtomicU64,
    /// Counters owned by the embedding program (for example failed log
    /// writes), exported by name as they are.
    pub(crate) external: parking_lot::Mutex<Vec<(&'static str, Arc<std::sync::atomic::AtomicU64>)>>,
}

impl AppState {
    /// Builds the state. `intake` receives positions posted over HTTP (the engine
    /// pipeline, when the binary wires one); `None` records them as they are
    /// ([`DirectIntake`]). `graph` is the map the basemap is drawn from (none: an
    /// empty basemap).
    pub fn new(
        config: PortalConfig,
        store: Arc<dyn Store>,
        fanout: Arc<dyn FanOut>,
        intake: Option<Arc<dyn PositionIntake>>,
        graph: Option<Arc<RoadGraph>>,
    ) -> Result<AppState> {
        config.validate()?;
        let live = LiveUpdates::new(store.clone(), fanout.clone());
        let intake = intake.unwrap_or_else(|| Arc::new(DirectIntake::new(live.clone())));
        Ok(AppState {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(config.public_burst, config.public_per_s),
                config,
                store,
                fanout,
                live,
                intake,
                graph,
                started: Instant::now(),
                metrics: Metrics::default(),
            }),
        })
    }

    /// Where engine events and positions turn into stored state and live updates.
    pub fn live(&self) -> &LiveUpdates {
        &self.inner.live
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &PortalConfig {
        &self.inner.config
    }

    /// Exports a counter the embedding program keeps (for example failed log
    /// writes) on `/metrics` as `name`, a Prometheus counter name.
    pub fn export_counter(&self, name: &'static str, value: Arc<std::sync::atomic::AtomicU64>) {
        self.inner.metrics.external.lock().push((name, value));
    }

    /// The public tracking URL of a code.
    pub fn tracking_url(&self, code: &str) -> String {
        format!("{}/t/{code}", self.inner.config.public_base_url)
    }
}
