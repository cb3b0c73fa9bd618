//! The server's configuration and shared state: what every handler can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;

use road_graph::{Basemap, RoadGraph};

use crate::api::TrustedProxies;
use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::live::{DirectIntake, LiveUpdates, PositionIntake};
use crate::ops::{MetricsToken, Readiness, ScrapeHooks};
use crate::ratelimit::RateLimiter;
use store::Store;

/// The largest `max_stop_road_distance_m`: searching the road index farther
/// than this for every stop would make a refused order cost real time.
const MAX_ROAD_SEARCH_M: f64 = 50_000.0;

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
    /// A truck's feed is `stale` on the tracking page once its last fix is
    /// older than this, seconds (`--stale-after-s`).
    pub stale_after_s: u64,
    /// A stop farther than this from every truck road of the map is refused
    /// at order creation, metres (`--max-stop-road-distance-m`); checked only
    /// when the state has a map.
    pub max_stop_road_distance_m: f64,
    /// Whether a tenant's order references are unique: a create whose
    /// reference an order of the tenant (not cancelled) has is a 409 naming
    /// that order (`--unique-order-references`).
    pub unique_order_references: bool,
    /// The bearer token `/metrics` asks for; `None` leaves it open (for a
    /// scraper on a private network).
    pub metrics_token: Option<MetricsToken>,
    /// The key that seals tracking codes for milestone e-mails and makes
    /// unsubscribe tokens (`None`: e-mails are off; codes are not sealed and
    /// previews show no links).
    pub notify_key: Option<crate::notify::NotifyKey>,
    /// Who customers may write to, named in e-mails (`{{contact}}`): the
    /// sender address by default.
    pub mail_contact: Option<String>,
    /// How recorded ETAs are judged for late risk and ETA changes.
    pub alerts: crate::alerts::AlertPolicy,
    /// Hosts a webhook may call although they are private or plain http
    /// (`serve --webhook-allow-host`).
    pub webhook_allow_hosts: Vec<String>,
    /// How long a rotated-out webhook secret still signs.
    pub webhook_rotation_grace: chrono::Duration,
    /// How long a replayed webhook delivery is retried (the deliverer's
    /// `--notify-retry-for-s`).
    pub notify_retry_for: chrono::Duration,
}

/// The default of [`PortalConfig::stale_after_s`]: 15 minutes, longer than
/// any ELD's reporting interval while moving, short enough that a page does
/// not show a truck as live long after it went quiet.
pub const DEFAULT_STALE_AFTER_S: u64 = 900;
/// The default of [`PortalConfig::max_stop_road_distance_m`]: a yard or a
/// warehouse lot is hundreds of metres from its street at most; 2 km off any
/// truck road is a wrong geocode or a place off the map.
pub const DEFAULT_MAX_STOP_ROAD_DISTANCE_M: f64 = 2000.0;

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
            stale_after_s: DEFAULT_STALE_AFTER_S,
            max_stop_road_distance_m: DEFAULT_MAX_STOP_ROAD_DISTANCE_M,
            unique_order_references: false,
            metrics_token: None,
            notify_key: None,
            mail_contact: None,
            alerts: crate::alerts::AlertPolicy::recommended(),
            webhook_allow_hosts: Vec::new(),
            webhook_rotation_grace: chrono::Duration::hours(24),
            notify_retry_for: chrono::Duration::hours(24),
        }
    }

    /// Checks every setting; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        self.alerts.validate()?;
        crate::notify::validate_allow_hosts(&self.webhook_allow_hosts)?;
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
        if self.stale_after_s == 0 {
            return Err(Error::InvalidConfig {
                setting: "stale_after_s",
                reason: "must be at least one second".into(),
            });
        }
        let road_m = self.max_stop_road_distance_m;
        if !(road_m.is_finite() && road_m > 0.0 && road_m <= MAX_ROAD_SEARCH_M) {
            return Err(Error::InvalidConfig {
                setting: "max_stop_road_distance_m",
                reason: format!("{road_m}: must be more than 0 and at most {MAX_ROAD_SEARCH_M} m"),
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
    /// The map, once loaded (the basemap is empty and `/readyz` says "map"
    /// until then).
    pub(crate) graph: OnceLock<Arc<RoadGraph>>,
    /// The map's basemap (water, parks, places, road names) for vector tiles;
    /// the graph's roads alone when none was installed.
    pub(crate) basemap: OnceLock<Arc<Basemap>>,
    pub(crate) tiles: parking_lot::Mutex<crate::api::TileCache>,
    pub(crate) limiter: RateLimiter,
    pub(crate) started: Instant,
    pub(crate) metrics: Metrics,
    /// The process's Prometheus recorder, rendered by `/metrics`.
    pub(crate) prometheus: Option<PrometheusHandle>,
    /// Run before each render of `/metrics` (values kept elsewhere).
    pub(crate) scrape_hooks: ScrapeHooks,
    pub(crate) readiness: Readiness,
    /// Today's salt of tracking-page viewer hashes (memory only).
    pub(crate) viewer_salt: crate::analytics::ViewerSalt,
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
        let live = LiveUpdates::new(store.clone(), fanout.clone())
            .with_stale_after_s(config.stale_after_s)
            .with_alerts(config.alerts);
        // Without a bus (positions recorded as they come) there is no consumer
        // to wait for.
        let bus_consuming = intake.is_none();
        let intake = intake.unwrap_or_else(|| Arc::new(DirectIntake::new(live.clone())));
        let installed = OnceLock::new();
        if let Some(graph) = graph {
            let _ = installed.set(graph);
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(config.public_burst, config.public_per_s),
                config,
                store,
                fanout,
                live,
                intake,
                graph: installed,
                basemap: OnceLock::new(),
                tiles: parking_lot::Mutex::default(),
                started: Instant::now(),
                metrics: Metrics::default(),
                prometheus: crate::ops::prometheus(),
                scrape_hooks: ScrapeHooks::default(),
                readiness: Readiness {
                    bus_consuming: AtomicBool::new(bus_consuming),
                    node: OnceLock::new(),
                },
                viewer_salt: crate::analytics::ViewerSalt::default(),
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

    /// The clock a view built now is judged by (feed staleness, overdue ETAs).
    pub(crate) fn view_clock(&self) -> crate::view::ViewClock {
        crate::view::ViewClock {
            now: chrono::Utc::now(),
            stale_after_s: self.inner.config.stale_after_s,
        }
    }

    /// Exports a counter the embedding program keeps (for example failed log
    /// writes) on `/metrics` as `name`, a Prometheus counter name.
    pub fn export_counter(&self, name: &'static str, value: Arc<std::sync::atomic::AtomicU64>) {
        self.inner.metrics.external.lock().push((name, value));
    }

    /// Runs `hook` before every render of `/metrics`: for values kept outside
    /// the `metrics` recorder (an engine's counters, a queue's length), which
    /// the hook copies in (`metrics::counter!(…).absolute(n)`, `gauge!(…).set(x)`).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.inner.scrape_hooks.push(Box::new(hook));
    }

    /// Installs the map once it is loaded (a second call is ignored): the
    /// basemap draws from it and `/readyz` stops waiting for it.
    pub fn install_map(&self, graph: Arc<RoadGraph>) {
        let _ = self.inner.graph.set(graph);
    }

    /// Installs the map's basemap, read from its snapshot or its OSM file (a
    /// second call is ignored). Without one, tiles show the graph's roads.
    pub fn install_basemap(&self, basemap: Arc<Basemap>) {
        let _ = self.inner.basemap.set(basemap);
    }

    /// The basemap tiles are cut from, once the map is installed.
    pub(crate) fn basemap(&self) -> Option<Arc<Basemap>> {
        let graph = self.graph()?;
        Some(Arc::clone(
            self.inner
                .basemap
                .get_or_init(|| Arc::new(Basemap::roads_only(graph))),
        ))
    }

    /// The map, once installed.
    pub fn graph(&self) -> Option<&Arc<RoadGraph>> {
        self.inner.graph.get()
    }

    /// Tells `/readyz` that the position bus's consumer runs.
    pub fn mark_bus_consuming(&self) {
        self.inner
            .readiness
            .bus_consuming
            .store(true, Ordering::Release);
    }

    /// Lets `/readyz` show this node among the others: `report` is called on
    /// every readiness check (keep it cheap). A second call is ignored.
    pub fn report_node(
        &self,
        report: impl Fn() -> crate::contract::NodeView + Send + Sync + 'static,
    ) {
        let _ = self.inner.readiness.node.set(Box::new(report));
    }

    /// The public tracking URL of a code.
    pub fn tracking_url(&self, code: &str) -> String {
        format!("{}/t/{code}", self.inner.config.public_base_url)
    }
}
