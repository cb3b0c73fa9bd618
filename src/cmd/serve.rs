//! `tracker serve`: runs everything on one node — the live pipeline (bus →
//! engine → store and fan-out), the portal (orders API, tracking pages,
//! WebSockets) and, by default, a demo fleet — with every backend chosen by URL.
//!
//! With no flags it is the embedded default: the bundled Baltimore map, SQLite in
//! `./tracker.db`, the in-process bus and fan-out, and a demo tenant with demo
//! orders (made once, reused on every restart) driven by simulated trucks on the
//! map's roads; it prints their tracking URLs.
//!
//! Positions come from the bus: `--bus memory://` (the demo fleet and `POST
//! /api/v1/positions` publish to it) or `--bus kafka://HOST:PORT[/TOPIC]` (a
//! consumer group, `--kafka-group`; HTTP positions and the demo fleet are
//! produced to the topic). Either way they reach [`crate::pipeline::EngineSink`]:
//! map matching, traffic, ETAs and geofences in the engine, then the store and the
//! fan-out. See `crate::pipeline` for the threads and where durability is reached.
//!
//! The map and its router start loading at the first moment, beside the store,
//! the bus and the HTTP server (`serve_map.rs`). HTTP is served from the moment
//! the address is bound, before the map is loaded: `/healthz` answers at once, `/readyz` answers 503 naming what is
//! missing (the map, the bus consumer) until the node can do its work, and
//! `/metrics` renders what is recorded so far.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use chrono_tz::Tz;
use clap::Args;
use engine::{LiveConfig, LiveEngine, SpeedProfile};
use ingest::kafka::{
    FleetPublisher, FleetTopicConfig, FleetTopicStats, KafkaSourceConfig, run_kafka_source,
};
use ingest::{BusPublisher, BusUrl, IngestStats, MemoryBusConfig, ValidationRules, memory_bus};
use parking_lot::Mutex;
use portal_api::demo::DemoPlace;
use portal_api::{AppState, PortalConfig, ServerLimits, TrustedProxies};
use road_graph::{LatLon, RoadGraph};

use crate::pipeline::demo::{self, DemoSettings};
use crate::pipeline::telemetry::{self, MetricClock};
use crate::pipeline::{self, BusIntake, EngineSink, Ownership, SharedEngine};

use super::node::{Node, StopBudget};
use super::output::{eprint_line, print_line};
use super::serve_map::{MapLoad, MapReady};
use super::{LogFormat, bad_input};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Settings from a TOML file: keys are these flags' long names, e.g.
    /// `max-connections = 500`; a flag or its environment variable beats the
    /// file (see README, "Configuration file").
    #[arg(long, env = "TRACKER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the actual one is printed).
    #[arg(long, default_value = "127.0.0.1:8080", env = "TRACKER_LISTEN")]
    listen: String,
    /// The road map (`.osm.pbf` or `.graph`); default: the bundled Baltimore extract.
    #[arg(long)]
    map: Option<PathBuf>,
    /// Position bus: `memory://` (in-process) or `kafka://HOST:PORT[,…][/TOPIC]`
    /// (topic default `positions`).
    #[arg(long, default_value = "memory://", env = "TRACKER_BUS")]
    bus: String,
    /// Kafka consumer group (nodes in one group share the partitions).
    #[arg(long, default_value = "tracker", env = "TRACKER_KAFKA_GROUP")]
    kafka_group: String,
    /// This node's name, in `/readyz` and as its Kafka `client.id`
    /// (`tracker-NAME`); default: the host name and process id.
    #[arg(long, env = "TRACKER_NODE_NAME", value_parser = parse_node_name)]
    node_name: Option<String>,
    /// The topic where nodes share what they learn from their trucks (edge
    /// passages, ETA outcomes), read in full by every node (Kafka bus only).
    #[arg(long, default_value = ingest::kafka::DEFAULT_FLEET_TOPIC, env = "TRACKER_FLEET_TOPIC")]
    fleet_topic: String,
    /// How often this node publishes what it learned to the fleet topic.
    #[arg(long, default_value_t = 2.0)]
    fleet_share_every_s: f64,
    /// An extra librdkafka setting for every Kafka client (repeatable), e.g.
    /// `security.protocol=SASL_SSL`, `sasl.mechanisms=SCRAM-SHA-512`,
    /// `sasl.username=fleet`, `ssl.ca.location=/etc/ssl/certs/ca.pem`.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// The environment variable holding the Kafka SASL password (kept out of
    /// the command line and the config file).
    #[arg(long, value_name = "VAR")]
    kafka_password_env: Option<String>,
    /// Live-update fan-out: `memory://` or `redis://HOST:PORT`.
    #[arg(long, default_value = "memory://", env = "TRACKER_FANOUT")]
    fanout: String,
    /// Store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
    store: String,
    /// Demo orders to create (or reuse) in the demo tenant; 0 for none.
    #[arg(long, default_value_t = 3)]
    demo: usize,
    /// Simulated seconds per real second for the demo trucks (their device times
    /// then run ahead of the clock; for demos and tests).
    #[arg(long, default_value_t = 1.0)]
    demo_speedup: f64,
    /// The time zone of the map (traffic profile hours, demo windows).
    #[arg(long, default_value = "America/New_York")]
    time_zone: String,
    /// How often the store's active orders are re-read by the engine, seconds.
    #[arg(long, default_value_t = 2.0)]
    orders_every_s: f64,
    /// How often the routing metric follows live traffic, seconds.
    #[arg(long, default_value_t = 10.0)]
    recustomize_every_s: f64,
    /// How often what the engine has learned (the ETA windows' calibration,
    /// the traffic profile's history, each truck's pace and hours-of-service
    /// clocks) is saved to the store, seconds; it is also saved at shutdown
    /// and read back at start.
    #[arg(long, default_value_t = 300.0)]
    save_learned_every_s: f64,
    /// How often the hour-of-week traffic profile (what a road is expected to
    /// do when no truck is on it) is re-learned from every passage so far,
    /// seconds of device time; 0 keeps free flow.
    #[arg(long, default_value_t = 3600.0)]
    relearn_profile_every_s: f64,
    /// Engine shards: the fleet is split by vehicle id and a batch's shards are
    /// matched and tracked side by side (default: one per CPU core).
    #[arg(long, env = "TRACKER_ENGINE_SHARDS")]
    engine_shards: Option<usize>,
    /// Public origin of tracking links (default: http://LISTEN-ADDRESS).
    #[arg(long, env = "TRACKER_PUBLIC_URL")]
    public_url: Option<String>,
    /// A raster tile URL template (`…/{z}/{x}/{y}.png`) instead of drawing roads
    /// from the map.
    #[arg(long, env = "TRACKER_TILE_URL")]
    tile_url: Option<String>,
    /// Public lookups (tracking pages, their JSON and WebSockets) one client IP
    /// may make in a burst…
    #[arg(long, default_value_t = 60)]
    public_burst: u32,
    /// …and per second after it.
    #[arg(long, default_value_t = 2.0)]
    public_per_s: f64,
    /// Positions older than this (device time) are refused on every path
    /// (`stale_time`), seconds; default a week of ELD buffering.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    max_fix_age_s: i64,
    /// A fix farther from its truck's last good one than this speed allows is
    /// an outlier (`implausible_jump`), km/h.
    #[arg(long, default_value_t = 200.0)]
    max_jump_kph: f64,
    /// A reverse proxy (CIDR or address; repeatable) whose `Forwarded` /
    /// `X-Forwarded-For` names the client for the public rate limit.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers (from its first byte,
    /// or from connecting for a new connection).
    #[arg(long, default_value_t = 10.0)]
    header_read_timeout_s: f64,
    /// Seconds a connection may sit with no bytes moving before it is closed
    /// (WebSockets are exempt).
    #[arg(long, default_value_t = 60.0)]
    idle_timeout_s: f64,
    /// Open connections (WebSockets included) above which new ones are answered
    /// 503 (default: the open-files limit less a reserve).
    #[arg(long, env = "TRACKER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Engine events that may wait for the store (while it is down or busy)
    /// before the bus is pushed back: no new positions are taken until the
    /// store catches up.
    #[arg(long, default_value_t = pipeline::DEFAULT_MAX_PENDING_EVENTS)]
    max_pending_events: usize,
    /// How long a dead letter the Kafka dead-letter topic keeps refusing is
    /// retried before it is written to the store's `dead_letters` table instead,
    /// seconds.
    #[arg(long, default_value_t = ingest::kafka::DEFAULT_DEAD_LETTER_PUBLISH_TIMEOUT.as_secs_f64())]
    dead_letter_timeout_s: f64,
    /// A truck whose last position is older than this shows as `stale` on
    /// its tracking page (the page's and the orders API's `feed`), seconds.
    #[arg(long, default_value_t = portal_api::DEFAULT_STALE_AFTER_S)]
    stale_after_s: u64,
    /// Orders with a stop farther than this from every truck road of the map
    /// are refused (422 `stop_off_map`, naming the stop), metres.
    #[arg(long, default_value_t = portal_api::DEFAULT_MAX_STOP_ROAD_DISTANCE_M)]
    max_stop_road_distance_m: f64,
    /// Refuse an order whose reference an order of the same tenant (not
    /// cancelled) already has: 409 `reference_taken` naming that order.
    #[arg(long)]
    unique_order_references: bool,
    /// Log lines on stderr: `text` or `json` (one object per line). `RUST_LOG`
    /// sets the level (default `info`).
    #[arg(long, value_enum, default_value = "text", env = "TRACKER_LOG_FORMAT")]
    log_format: LogFormat,
    /// The name of an environment variable holding a bearer token that
    /// `/metrics` then requires (the token itself never goes on the command
    /// line, where `ps` would show it); `/metrics` is open without it.
    #[arg(long, value_name = "NAME")]
    metrics_token_env: Option<String>,
    /// Raw ETA predictions older than this many days are deleted (checked
    /// hourly); every whole day is summed into daily accuracy aggregates
    /// (with its error distribution) as soon as it is over, and those stay.
    /// 0 keeps every prediction.
    #[arg(long, default_value_t = 90)]
    prediction_retention_days: u32,
    /// Milestone e-mails (`--smtp`, `--mail-from`, …).
    #[command(flatten)]
    notify: super::serve_notify::NotifyArgs,
}

impl ServeArgs {
    /// The address to listen on, as given (tests of the settings' sources).
    #[cfg(test)]
    pub(crate) fn listen(&self) -> &str {
        &self.listen
    }

    /// The one position rule set of every path (HTTP, the bus, Kafka).
    fn position_rules(&self) -> anyhow::Result<ValidationRules> {
        let rules = ValidationRules {
            max_age_s: self.max_fix_age_s,
            ..ValidationRules::RECOMMENDED
        };
        rules
            .validate()
            .map_err(|e| bad_input(format!("--max-fix-age-s {}: {e}", self.max_fix_age_s)))?;
        Ok(rules)
    }
}

/// File descriptors kept back from the connection cap: the store, the bus, the
/// fan-out, the log and the sockets being answered 503.
const FD_RESERVE: usize = 512;

/// The connection cap when `--max-connections` is not given: the soft limit on
/// open files less [`FD_RESERVE`] (at least 64), or 10,000 where that limit
/// cannot be read (not Linux, or unlimited).
fn default_max_connections() -> usize {
    let soft_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        });
    match soft_limit {
        Some(open_files) => open_files.saturating_sub(FD_RESERVE).max(64),
        None => 10_000,
    }
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    super::init_logging(args.log_format);
    if let Some(path) = &args.config {
        tracing::info!(config = %path.display(), "settings read from the config file (flags and environment beat it)");
    }
    let bus = BusUrl::parse(&args.bus).map_err(|e| bad_input(format!("--bus: {e}")))?;
    let time_zone: Tz = args
        .time_zone
        .parse()
        .map_err(|e| bad_input(format!("--time-zone {}: {e}", args.time_zone)))?;
    for (flag, value) in [
        ("--demo-speedup", args.demo_speedup),
        ("--orders-every-s", args.orders_every_s),
        ("--recustomize-every-s", args.recustomize_every_s),
        ("--save-learned-every-s", args.save_learned_every_s),
        ("--max-jump-kph", args.max_jump_kph),
        ("--header-read-timeout-s", args.header_read_timeout_s),
        ("--idle-timeout-s", args.idle_timeout_s),
        ("--dead-letter-timeout-s", args.dead_letter_timeout_s),
        ("--fleet-share-every-s", args.fleet_share_every_s),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(bad_input(format!(
                "{flag} {value}: must be a positive number"
            )));
        }
    }
    if args.max_pending_events == 0 {
        return Err(bad_input("--max-pending-events 0: must be positive"));
    }
    if !(args.relearn_profile_every_s.is_finite() && args.relearn_profile_every_s >= 0.0) {
        return Err(bad_input(format!(
            "--relearn-profile-every-s {}: must be 0 or more",
            args.relearn_profile_every_s
        )));
    }
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| bad_input(format!("--listen {}: {e}", args.listen)))?;
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs_f64(args.header_read_timeout_s),
        idle_timeout: Duration::from_secs_f64(args.idle_timeout_s),
        max_connections: args.max_connections.unwrap_or_else(default_max_connections),
    };
    limits.validate().map_err(bad_input)?;
    let trusted_proxies = TrustedProxies::parse(&args.trusted_proxies)
        .map_err(|e| bad_input(format!("--trusted-proxy: {e}")))?;
    let metrics_token = metrics_token(args.metrics_token_env.as_deref())?;
    let kafka_options = kafka_options(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let server = Server {
        listen,
        limits,
        trusted_proxies,
        metrics_token,
    };
    let bus = Bus {
        url: bus,
        options: kafka_options,
    };
    runtime.block_on(serve(args, server, bus, time_zone))
}

/// The position bus: its URL and, for Kafka, the operator's extra client
/// settings (TLS, SASL).
struct Bus {
    url: BusUrl,
    options: Vec<(String, String)>,
}

/// `--kafka-option`s and the password `--kafka-password-env` names, checked
/// by librdkafka now (bad input naming the setting, never echoing a value).
fn kafka_options(args: &ServeArgs) -> anyhow::Result<Vec<(String, String)>> {
    let mut options = args.kafka_options.clone();
    if let Some(variable) = &args.kafka_password_env {
        let password = std::env::var(variable).unwrap_or_default();
        if password.is_empty() {
            return Err(bad_input(format!(
                "--kafka-password-env {variable}: the environment variable is unset or empty"
            )));
        }
        options.push(format!("sasl.password={password}"));
    }
    ingest::kafka::client_options(&options).map_err(|e| bad_input(e.to_string()))
}

/// The `/metrics` bearer token from the environment variable
/// `--metrics-token-env` names; bad input if that variable is unset or empty
/// (an operator who asked for a token must not get an open endpoint).
fn metrics_token(variable: Option<&str>) -> anyhow::Result<Option<portal_api::MetricsToken>> {
    let Some(variable) = variable else {
        return Ok(None);
    };
    let value = std::env::var(variable).unwrap_or_default();
    portal_api::MetricsToken::new(value)
        .map(Some)
        .ok_or_else(|| {
            bad_input(format!(
                "--metrics-token-env {variable}: the environment variable is unset or empty"
            ))
        })
}

/// The HTTP server's settings, validated from the flags.
#[derive(Debug)]
struct Server {
    listen: SocketAddr,
    limits: ServerLimits,
    trusted_proxies: TrustedProxies,
    metrics_token: Option<portal_api::MetricsToken>,
}

async fn serve(args: ServeArgs, server: Server, bus: Bus, time_zone: Tz) -> anyhow::Result<()> {
    let Bus {
        url: bus_url,
        options: kafka_options,
    } = bus;
    // The map and the router are most of a start: they load from the first
    // moment, beside the store, the bus and the HTTP server; meanwhile the
    // server answers and `/readyz` waits for the map.
    let mut map = MapLoad::start(args.map.clone());
    // Every task of the node, in the stages it stops in (see `node.rs`).
    let node = Node::new();
    let store = super::open_store(&args.store).await?;
    // The Redis subscriber feeds this node's WebSocket viewers: it stops with
    // them, in the intake stage.
    let fanout = portal_api::open_fanout(&args.fanout, node.intake.tasks(), node.intake.token())
        .await
        .map_err(|e| bad_input(format!("--fanout {}: {e}", args.fanout)))?;
    let listen = server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let public_url = args.public_url.clone().unwrap_or_else(|| {
        let host = if local.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], local.port()))
        } else {
            local
        };
        format!("http://{host}")
    });
    let rules = args.position_rules()?;
    let mut config = PortalConfig::recommended(&public_url);
    config.position_rules = rules;
    config.tile_url = args.tile_url.clone();
    config.public_burst = args.public_burst;
    config.public_per_s = args.public_per_s;
    config.trusted_proxies = server.trusted_proxies;
    config.stale_after_s = args.stale_after_s;
    config.max_stop_road_distance_m = args.max_stop_road_distance_m;
    config.unique_order_references = args.unique_order_references;
    config.metrics_token = server.metrics_token;
    config.alerts = args.notify.alerts()?;
    let notify = args.notify.prepare(&args.store, &public_url)?;
    if let Some(notify) = &notify {
        config.notify_key = Some(notify.key.clone());
        config.mail_contact = notify.contact.clone();
        config.webhook_allow_hosts = notify.webhook_allow_hosts.clone();
        config.notify_retry_for = notify.config.retry_for;
    }

    let mut signals = StopSignals::listen();
    // The bus: its publishing side for HTTP positions and the demo fleet.
    let stats = Arc::new(IngestStats::new());
    let (publisher, memory_consumer) = match &bus_url {
        BusUrl::Memory => {
            let (publisher, consumer) = memory_bus(MemoryBusConfig::RECOMMENDED)?;
            (BusPublisher::Memory(publisher), Some(consumer))
        }
        BusUrl::Kafka { brokers, topic, .. } => {
            ingest::kafka::ensure_topics_with(
                brokers,
                &kafka_options,
                &[
                    (topic.as_str(), 4),
                    (ingest::kafka::DEFAULT_DEAD_LETTER_TOPIC, 1),
                    (args.fleet_topic.as_str(), 1),
                ],
            )
            .await
            .with_context(|| format!("preparing the Kafka topics at {brokers}"))?;
            let producer = ingest::kafka::KafkaPublisher::new(
                brokers,
                topic,
                ingest::kafka::ClientTuning::Tuned,
                &kafka_options,
            )?;
            (BusPublisher::Kafka(producer), None)
        }
    };
    let bound = match &bus_url {
        BusUrl::Kafka { tenant, .. } => tenant.clone(),
        BusUrl::Memory => None,
    };
    let intake: Arc<dyn portal_api::PositionIntake> =
        Arc::new(BusIntake::new(publisher.clone(), bound));
    let state =
        AppState::new(config, store.clone(), fanout, Some(intake), None).map_err(bad_input)?;
    state.export_counter(
        "tracker_log_write_failures_total",
        super::output::write_failures(),
    );
    // Served from here on; `/readyz` says what is still missing.
    let mut http = node.intake.spawn(portal_api::serve(
        listener,
        state.clone(),
        server.limits,
        node.intake.stopped(),
    ));
    if let Some(handle) = portal_api::prometheus() {
        // Histograms keep their samples until rendered: drained every few
        // seconds even when nobody scrapes.
        node.background.spawn(pipeline::periodically(
            Duration::from_secs(5),
            node.background.ingest_shutdown(),
            move || {
                handle.run_upkeep();
                std::future::ready(())
            },
        ));
    }

    if let Some((basemap, notice)) = map.basemap().await {
        if let Some(notice) = notice {
            tracing::warn!("{notice}");
        }
        state.install_basemap(Arc::new(basemap));
    }
    // The engine: the routing hierarchy (from the snapshot's preparation, or
    // built once per map) and the live state.
    let MapReady {
        graph,
        router,
        elapsed_ms,
    } = map.ready().await?;
    tracing::info!(elapsed_ms, "map loaded and router ready");
    let router = Arc::new(router);
    let mut live_config = LiveConfig::truck(time_zone);
    live_config.plausibility.max_speed_mps = args.max_jump_kph / 3.6;
    live_config.recustomize_every_s = args.recustomize_every_s;
    live_config.traffic.profile_relearn_every_s = args.relearn_profile_every_s;
    live_config.shards = args.engine_shards.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let engine: SharedEngine = Arc::new(Mutex::new(LiveEngine::new(
        Arc::clone(&router),
        live_config,
        SpeedProfile::free_flow(time_zone),
    )?));

    let metric_clock = Arc::new(MetricClock::new());
    state.install_map(Arc::clone(&graph));

    // What the engine learned before a restart, then the orders, so the first
    // positions find their trackers and their windows.
    // On Kafka a truck is this node's once seen on its partitions; on the
    // in-process bus every truck is.
    let ownership = match &bus_url {
        BusUrl::Memory => Ownership::every(),
        BusUrl::Kafka { .. } => Ownership::observed(),
    };
    pipeline::learning::restore(&engine, &*store).await?;
    pipeline::sync_orders_once(&engine, &ownership, &*store, state.live()).await?;
    let bus_label = match &bus_url {
        BusUrl::Memory => "http",
        BusUrl::Kafka { .. } => "kafka",
    };
    let node_name = args.node_name.clone().unwrap_or_else(default_node_name);
    let instance = instance_id(&node_name);
    let mut sink = EngineSink::new(
        Arc::clone(&engine),
        Arc::clone(&ownership),
        state.live().clone(),
        store.clone(),
        args.max_pending_events,
    )
    .with_bus_source(bus_label);
    if let BusUrl::Kafka { .. } = &bus_url {
        let handover = Arc::new(pipeline::handover::Handover::new(
            store.clone(),
            instance.clone(),
            node_name.clone(),
        ));
        // In the background stage: it stops after the pipeline's release
        // let go of the trucks, then says the node is gone.
        node.background
            .spawn(Arc::clone(&handover).keep_beating(node.background.ingest_shutdown()));
        sink = sink.with_handover(handover);
    }
    let sink = Arc::new(sink);
    let bus_kind = if bus_label == "kafka" {
        "kafka"
    } else {
        "memory"
    };
    telemetry::register_scrape_hooks(
        &state,
        Arc::clone(&metric_clock),
        Arc::clone(&stats),
        bus_kind,
    );
    telemetry::report_node(&state, node_name.clone(), Arc::clone(&stats), bus_kind);
    match (memory_consumer, &bus_url) {
        (Some(consumer), _) => {
            node.pipeline.spawn(consumer.run(
                Arc::clone(&sink),
                stats.clone(),
                rules,
                node.pipeline.ingest_shutdown(),
            ));
        }
        (
            None,
            BusUrl::Kafka {
                brokers,
                topic,
                tenant,
            },
        ) => {
            let mut config = KafkaSourceConfig::recommended(brokers, &args.kafka_group, topic);
            config.rules = rules;
            config.tenant = tenant.clone();
            config.overrides = kafka_options.clone();
            config
                .overrides
                .push(("client.id".to_owned(), format!("tracker-{node_name}")));
            config.dead_letter_overrides = kafka_options.clone();
            config.dead_letter_publish_timeout =
                Duration::from_secs_f64(args.dead_letter_timeout_s);
            let (sink, stats, shutdown) = (
                Arc::clone(&sink),
                stats.clone(),
                node.pipeline.ingest_shutdown(),
            );
            node.pipeline.spawn(async move {
                if let Err(err) = run_kafka_source(&config, sink, stats, shutdown).await {
                    tracing::error!(error = %err, "the Kafka source stopped");
                }
            });
            // Read apart: a guard in the call's arguments would be held
            // through the call, which locks the engine again.
            let window_s = pipeline::lock(&engine).config().traffic.window_s;
            share_with_fleet(
                &node,
                &state,
                &engine,
                FleetTopicConfig {
                    brokers: brokers.clone(),
                    topic: args.fleet_topic.clone(),
                    instance: instance.clone(),
                    warm_up: Duration::from_secs_f64(window_s),
                    overrides: kafka_options.clone(),
                },
                Duration::from_secs_f64(args.fleet_share_every_s),
            )?;
        }
        // The memory bus always comes with its consumer.
        (None, BusUrl::Memory) => {}
    }
    state.mark_bus_consuming();
    node.background.spawn(pipeline::sync_orders(
        Arc::clone(&engine),
        Arc::clone(&ownership),
        store.clone(),
        state.live().clone(),
        Duration::from_secs_f64(args.orders_every_s),
        node.background.ingest_shutdown(),
    ));
    node.background.spawn(pipeline::learning::keep_saved(
        Arc::clone(&engine),
        store.clone(),
        Duration::from_secs_f64(args.save_learned_every_s),
        node.background.ingest_shutdown(),
    ));
    node.background.spawn(summarize_predictions(
        store.clone(),
        (args.prediction_retention_days > 0).then_some(args.prediction_retention_days),
        node.background.ingest_shutdown(),
    ));
    // Milestone e-mails and webhooks: one deliverer per node (claims are
    // safe to share).
    if let Some(notify) = notify {
        let deliverer = portal_api::run_deliverer(
            store.clone(),
            notify.key,
            notify.channels,
            notify.config,
            node.outbound.stopped(),
        );
        node.outbound.spawn(async move {
            if let Err(err) = deliverer.await {
                tracing::error!(error = %err, "the notification deliverer stopped");
            }
        });
    }
    let stop_metric = Arc::new(AtomicBool::new(false));
    let metric_thread = {
        let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop_metric));
        let every = Duration::from_secs_f64(args.recustomize_every_s);
        let clock = Arc::clone(&metric_clock);
        std::thread::Builder::new()
            .name("metric".into())
            .spawn(move || pipeline::run_metric_loop(engine, every, stop, clock))
            .context("starting the metric thread")?
    };

    print_line(&format!("listening on http://{local}"));
    if args.demo > 0 {
        let places = demo_places(&graph);
        let seed = portal_api::demo::seed(&*store, args.demo, &places, time_zone, Utc::now())
            .await
            .context("creating the demo orders")?;
        if let Some(key) = &seed.new_api_key {
            // On stdout, once, like `tracker tenant create`: never into the log.
            print_line(&format!(
                "demo tenant {} created; its API key (shown once): {key}",
                seed.tenant.id
            ));
        }
        // Reused demo orders had their codes rotated: the store keeps no
        // code it could show again.
        for code in &seed.tracking_codes {
            print_line(&format!("demo tracking page: {}", state.tracking_url(code)));
        }
        // Pages still open on the old links (on other nodes sharing the store
        // and fan-out) re-check their codes and close.
        for order in &seed.orders {
            state.live().link_changed(&order.id).await;
        }
        // The demo orders' trackers before the first demo fix.
        pipeline::sync_orders_once(&engine, &ownership, &*store, state.live()).await?;
        let settings = DemoSettings {
            speedup: args.demo_speedup,
            tick: Duration::from_millis(500),
            public_url: public_url.clone(),
            time_zone,
        };
        let demo = demo::run_demo(
            Arc::clone(&graph),
            Arc::clone(&router),
            store.clone(),
            publisher.clone(),
            places,
            seed,
            settings,
            node.intake.ingest_shutdown(),
        );
        node.intake.spawn(async move {
            if let Err(err) = demo.await {
                tracing::error!(error = %err, "the demo fleet stopped");
            }
        });
    }

    // Until a signal, or the HTTP server fails; then the stages stop in
    // order: intake, pipeline, background, the final save, outbound.
    let served = tokio::select! {
        () = signals.recv() => None,
        joined = &mut http => Some(joined),
    };
    let final_save = async {
        stop_metric.store(true, Ordering::Relaxed);
        let _ = metric_thread.join();
        if let Err(err) = pipeline::learning::save(&engine, &*store).await {
            tracing::warn!(error = %err, "saving what the engine learned at shutdown failed");
        }
    };
    let clean = node.shut_down(StopBudget::RECOMMENDED, final_save).await;
    let served = match served {
        Some(joined) => Some(joined),
        None if http.is_finished() => Some(http.await),
        None => None,
    };
    if let Some(joined) = served {
        joined
            .context("the HTTP server task failed")?
            .context("serving HTTP")?;
    }
    let counters = pipeline::lock(&engine).counters();
    tracing::info!(
        positions = counters.positions,
        matched = counters.matched,
        eta_updates = counters.eta_updates,
        status_changes = counters.status_changes,
        dropped_events = sink.dropped_events(),
        every_task_stopped = clean,
        "pipeline stopped"
    );
    eprint_line("stopped");
    Ok(())
}

/// SIGINT and SIGTERM, listened for from the moment this is made: a signal
/// that comes while the node starts (the map loading) is kept, and the node
/// stops in order as soon as it has started.
struct StopSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Completes at the first signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.terminate) => {},
                () = next(&mut self.interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Real places in central Baltimore for the demo orders, snapped onto the road
/// graph. On another map, places are picked from the graph itself.
fn demo_places(graph: &RoadGraph) -> Vec<DemoPlace> {
    const BALTIMORE: [(&str, &str, f64, f64); 6] = [
        (
            "Key Highway Warehouse",
            "Key Hwy, Baltimore, MD",
            39.2770,
            -76.6080,
        ),
        (
            "Harbor East Distribution",
            "Lancaster St, Baltimore, MD",
            39.2834,
            -76.6010,
        ),
        (
            "Canton Crossing",
            "Boston St, Baltimore, MD",
            39.2760,
            -76.5700,
        ),
        (
            "Johns Hopkins Receiving",
            "Orleans St, Baltimore, MD",
            39.2966,
            -76.5920,
        ),
        (
            "Highlandtown Hardware",
            "Eastern Ave, Baltimore, MD",
            39.2860,
            -76.5680,
        ),
        (
            "Patterson Park Grocery",
            "E Baltimore St, Baltimore, MD",
            39.2925,
            -76.5835,
        ),
    ];
    let bbox = graph.bbox();
    let snap = |p: LatLon| graph.nearest_edges(p, 500.0, 1).first().map(|c| c.point);
    let named: Vec<DemoPlace> = BALTIMORE
        .iter()
        .filter(|(_, _, lat, lon)| bbox.contains(LatLon::new(*lat, *lon)))
        .filter_map(|(name, address, lat, lon)| {
            snap(LatLon::new(*lat, *lon)).map(|p| DemoPlace {
                name: (*name).to_owned(),
                address: (*address).to_owned(),
                lat: p.lat,
                lon: p.lon,
            })
        })
        .collect();
    if named.len() >= 2 {
        return named;
    }
    // Another map: spread places over its box.
    [(0.25, 0.25), (0.75, 0.7), (0.3, 0.8), (0.7, 0.3)]
        .iter()
        .enumerate()
        .filter_map(|(i, (fx, fy))| {
            let p = LatLon::new(
                bbox.min_lat + (bbox.max_lat - bbox.min_lat) * fy,
                bbox.min_lon + (bbox.max_lon - bbox.min_lon) * fx,
            );
            snap(p).map(|p| DemoPlace {
                name: format!("Demo place {}", i + 1),
                address: String::new(),
                lat: p.lat,
                lon: p.lon,
            })
        })
        .collect()
}

/// The prediction log's daily aggregates and retention: at start and then
/// hourly, every whole day not summed yet (or touched since) is summed into
/// the daily accuracy aggregates, and raw rows past `retention_days` are
/// deleted (a tenant-day per store write, so positions are never held up
/// for long).
async fn summarize_predictions(
    store: Arc<dyn portal_api::Store>,
    retention_days: Option<u32>,
    shutdown: ingest::Shutdown,
) {
    let pass = move || {
        let store = store.clone();
        async move {
            let Some(analytics) = store.analytics() else {
                return;
            };
            match analytics
                .summarize_days(chrono::Utc::now(), retention_days)
                .await
            {
                Ok(pass) if pass == portal_api::SummaryPass::default() => {}
                Ok(pass) => tracing::info!(
                    days_summed = pass.days_summed,
                    raw_deleted = pass.raw_deleted,
                    "ETA predictions summed into daily aggregates"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "summing ETA predictions by day failed; retried in an hour")
                }
            }
        }
    };
    pass().await;
    pipeline::periodically(Duration::from_secs(3600), shutdown, pass).await;
}

/// `--node-name`: 1–64 letters, digits, `.`, `_` or `-` (it becomes a Kafka
/// client id and a log field).
fn parse_node_name(name: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("1 to 64 letters, digits, '.', '_' or '-'".to_owned())
    }
}

/// The host name and the process id: unique among nodes on one host.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(48)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Several nodes learn from each other's trucks: this engine keeps what it
/// learns for the fleet topic, a task publishes it, another feeds the other
/// nodes' batches in (see `pipeline::fleet`).
fn share_with_fleet(
    node: &Node,
    state: &portal_api::AppState,
    engine: &pipeline::SharedEngine,
    config: FleetTopicConfig,
    every: Duration,
) -> anyhow::Result<()> {
    let stats = Arc::new(FleetTopicStats::default());
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let publisher = FleetPublisher::new(&config, Arc::clone(&stats))?;
    let map = {
        let mut engine = pipeline::lock(engine);
        engine.share_learning(true);
        engine::MapIdentity::of(engine.router().graph())
    };
    node.pipeline.spawn(pipeline::fleet::share_learning(
        Arc::clone(engine),
        publisher,
        map,
        every,
        node.pipeline.ingest_shutdown(),
    ));
    node.pipeline.spawn(pipeline::fleet::learn_from_fleet(
        Arc::clone(engine),
        config,
        Arc::clone(&stats),
        Arc::clone(&refused),
        map,
        node.pipeline.ingest_shutdown(),
    ));
    state.on_scrape(move || pipeline::fleet::record_fleet_stats(&stats, &refused));
    Ok(())
}

/// This process among the node's incarnations: the name, the process id and
/// the start time, so a restarted node does not skip its earlier batches.
fn instance_id(node_name: &str) -> String {
    let started_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{node_name}-{}-{:x}", std::process::id(), started_ns)
}
