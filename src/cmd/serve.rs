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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use chrono_tz::Tz;
use clap::Args;
use engine::{LiveConfig, LiveEngine, Metric, Router, SpeedProfile, TurnCosts};
use ingest::kafka::{KafkaSourceConfig, run_kafka_source};
use ingest::{BusPublisher, BusUrl, IngestStats, MemoryBusConfig, ValidationRules, memory_bus};
use portal_api::demo::DemoPlace;
use portal_api::{AppState, PortalConfig};
use road_graph::{LatLon, RoadGraph};

use crate::pipeline::demo::{self, DemoSettings};
use crate::pipeline::{self, BusIntake, EngineSink, SharedEngine};

use super::bad_input;

/// The bundled demo map: central Baltimore, © OpenStreetMap contributors (ODbL),
/// see `src/data/README.md`.
const BUNDLED_MAP: &[u8] = include_bytes!("../data/baltimore.osm.pbf");

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
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
    /// Live-update fan-out: `memory://` or `redis://HOST:PORT`.
    #[arg(long, default_value = "memory://", env = "TRACKER_FANOUT")]
    fanout: String,
    /// Store: `sqlite://PATH`.
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
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    super::init_logging();
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
        ("--dead-letter-timeout-s", args.dead_letter_timeout_s),
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
    let graph = Arc::new(load_map(args.map.as_ref())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, listen, graph, bus, time_zone))
}

/// Opens `--map`, or the bundled map (cached as a snapshot in the temp directory
/// after the first import, so restarts are quick).
fn load_map(path: Option<&PathBuf>) -> anyhow::Result<RoadGraph> {
    if let Some(path) = path {
        return Ok(super::open_map(path)?.0);
    }
    let dir = std::env::temp_dir();
    let tag = format!(
        "{:08x}-v{}",
        crc32fast::hash(BUNDLED_MAP),
        road_graph::SNAPSHOT_VERSION
    );
    let snapshot = dir.join(format!("tracker-baltimore-{tag}.graph"));
    if let Ok(graph) = road_graph::load_snapshot(&snapshot) {
        return Ok(graph);
    }
    // This process's own copy: several servers starting at once (tests, a
    // supervisor's restarts) must not read each other's half-written file.
    let pbf = dir.join(format!(
        "tracker-baltimore-{tag}-{}.osm.pbf",
        std::process::id()
    ));
    std::fs::write(&pbf, BUNDLED_MAP).with_context(|| format!("writing {}", pbf.display()))?;
    let opened = super::open_map(&pbf);
    // The snapshot is the cache; the copy has served.
    let _ = std::fs::remove_file(&pbf);
    let (graph, _) = opened?;
    // A failed cache write only costs the next start an import.
    if let Err(err) = road_graph::save_snapshot(&graph, &snapshot) {
        tracing::warn!(error = %err, "could not cache the bundled map as a snapshot");
    }
    Ok(graph)
}

async fn serve(
    args: ServeArgs,
    listen: SocketAddr,
    graph: Arc<RoadGraph>,
    bus_url: BusUrl,
    time_zone: Tz,
) -> anyhow::Result<()> {
    let store = super::open_store(&args.store).await?;
    let fanout = portal_api::open_fanout(&args.fanout)
        .await
        .map_err(|e| bad_input(format!("--fanout {}: {e}", args.fanout)))?;
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
    let mut config = PortalConfig::recommended(&public_url);
    config.tile_url = args.tile_url.clone();
    config.public_burst = args.public_burst;
    config.public_per_s = args.public_per_s;

    // The engine: the routing hierarchy (built once per map) and the live state.
    let router = {
        let graph = Arc::clone(&graph);
        tokio::task::spawn_blocking(move || {
            Router::new(graph.clone(), &TurnCosts::TRUCK, Metric::free_flow(&graph))
        })
        .await
        .context("building the router")??
    };
    let router = Arc::new(router);
    let mut live_config = LiveConfig::truck(time_zone);
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

    // The bus: its publishing side for HTTP positions and the demo fleet.
    let (trigger, shutdown) = ingest::shutdown_channel();
    let stats = Arc::new(IngestStats::new());
    let (publisher, memory_consumer) = match &bus_url {
        BusUrl::Memory => {
            let (publisher, consumer) = memory_bus(MemoryBusConfig::RECOMMENDED)?;
            (BusPublisher::Memory(publisher), Some(consumer))
        }
        BusUrl::Kafka { brokers, topic } => {
            ingest::kafka::ensure_topics(
                brokers,
                &[
                    (topic.as_str(), 4),
                    (ingest::kafka::DEFAULT_DEAD_LETTER_TOPIC, 1),
                ],
            )
            .await
            .with_context(|| format!("preparing the Kafka topics at {brokers}"))?;
            let producer = ingest::kafka::KafkaPublisher::new(
                brokers,
                topic,
                ingest::kafka::ClientTuning::Tuned,
                &[],
            )?;
            (BusPublisher::Kafka(producer), None)
        }
    };
    let intake: Arc<dyn portal_api::PositionIntake> = Arc::new(BusIntake::new(publisher.clone()));
    let state = AppState::new(
        config,
        store.clone(),
        fanout,
        Some(intake),
        Some(graph.clone()),
    )
    .map_err(bad_input)?;

    // What the engine learned before a restart, then the orders, so the first
    // positions find their trackers and their windows.
    pipeline::learning::restore(&engine, &*store).await?;
    pipeline::sync_orders_once(&engine, &*store).await?;
    pipeline::learning::resume_trackers(&engine, &*store).await?;
    let sink = Arc::new(EngineSink::new(
        Arc::clone(&engine),
        state.live().clone(),
        store.clone(),
        args.max_pending_events,
    ));
    let consumer = match (memory_consumer, &bus_url) {
        (Some(consumer), _) => tokio::spawn(consumer.run(
            Arc::clone(&sink),
            stats.clone(),
            ValidationRules::RECOMMENDED,
            shutdown.clone(),
        )),
        (None, BusUrl::Kafka { brokers, topic }) => {
            let mut config = KafkaSourceConfig::recommended(brokers, &args.kafka_group, topic);
            config.dead_letter_publish_timeout =
                Duration::from_secs_f64(args.dead_letter_timeout_s);
            let (sink, stats, shutdown) = (Arc::clone(&sink), stats.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(err) = run_kafka_source(&config, sink, stats, shutdown).await {
                    tracing::error!(error = %err, "the Kafka source stopped");
                }
            })
        }
        (None, BusUrl::Memory) => tokio::spawn(async {}),
    };
    tokio::spawn(pipeline::sync_orders(
        Arc::clone(&engine),
        store.clone(),
        Duration::from_secs_f64(args.orders_every_s),
        shutdown.clone(),
    ));
    tokio::spawn(pipeline::learning::keep_saved(
        Arc::clone(&engine),
        store.clone(),
        Duration::from_secs_f64(args.save_learned_every_s),
        shutdown.clone(),
    ));
    let stop_metric = Arc::new(AtomicBool::new(false));
    let metric_thread = {
        let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop_metric));
        let every = Duration::from_secs_f64(args.recustomize_every_s);
        std::thread::Builder::new()
            .name("metric".into())
            .spawn(move || pipeline::run_metric_loop(engine, every, stop))
            .context("starting the metric thread")?
    };

    println!("listening on http://{local}");
    if args.demo > 0 {
        let places = demo_places(&graph);
        let seed = portal_api::demo::seed(&*store, args.demo, &places, time_zone, Utc::now())
            .await
            .context("creating the demo orders")?;
        if let Some(key) = &seed.new_api_key {
            eprintln!(
                "demo tenant {} created; its API key (shown once): {key}",
                seed.tenant.id
            );
        }
        for order in &seed.orders {
            if let Some(code) = &order.tracking_code {
                println!("demo tracking page: {}", state.tracking_url(code));
            }
        }
        // The demo orders' trackers before the first demo fix.
        pipeline::sync_orders_once(&engine, &*store).await?;
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
            shutdown.clone(),
        );
        tokio::spawn(async move {
            if let Err(err) = demo.await {
                tracing::error!(error = %err, "the demo fleet stopped");
            }
        });
    }

    let app = portal_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    // Stop taking positions, finish what the bus holds, then stop.
    trigger.trigger();
    if tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .is_err()
    {
        tracing::warn!("the position source did not stop within 10 s");
    }
    stop_metric.store(true, Ordering::Relaxed);
    let _ = metric_thread.join();
    if let Err(err) = pipeline::learning::save(&engine, &*store).await {
        tracing::warn!(error = %err, "saving what the engine learned at shutdown failed");
    }
    let counters = pipeline::lock(&engine).counters();
    tracing::info!(
        positions = counters.positions,
        matched = counters.matched,
        eta_updates = counters.eta_updates,
        status_changes = counters.status_changes,
        dropped_events = sink.dropped_events(),
        "pipeline stopped"
    );
    eprintln!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
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
