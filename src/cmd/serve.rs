//! `tracker serve`: runs the portal (orders API, tracking pages, WebSockets) on
//! one node, with every backend chosen by URL.
//!
//! With no flags it is the embedded default: the bundled Baltimore map, SQLite in
//! `./tracker.db`, in-process fan-out, and a demo tenant with demo orders (made
//! once, reused on every restart), whose tracking URLs it prints.
//!
//! Live state comes in two ways. Positions posted to `POST /api/v1/positions` go
//! to the portal's position intake; engine events (positions after map matching,
//! ETAs, geofence status changes) go into the channel `engine_events` in [`serve`], which [`portal_api::LiveUpdates::run`] drains into the store and the fan-out.
//! Until the ingest/engine pipeline is wired here, the intake records positions as
//! posted (no matching, no ETA) and no demo truck moves on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use engine::EngineEvent;
use portal_api::demo::DemoPlace;
use portal_api::{AppState, PortalConfig};
use road_graph::{LatLon, RoadGraph};
use tokio::sync::mpsc;

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
    /// Position bus: `memory://` (Kafka is not wired into `serve` yet).
    #[arg(long, default_value = "memory://", env = "TRACKER_BUS")]
    bus: String,
    /// Live-update fan-out: `memory://` or `redis://HOST:PORT`.
    #[arg(long, default_value = "memory://", env = "TRACKER_FANOUT")]
    fanout: String,
    /// Store: `sqlite://PATH`.
    #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
    store: String,
    /// Demo orders to create (or reuse) in the demo tenant; 0 for none.
    #[arg(long, default_value_t = 3)]
    demo: usize,
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
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    if args.bus != "memory://" {
        return Err(bad_input(format!(
            "--bus {}: only memory:// is wired into `serve` so far",
            args.bus
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
    runtime.block_on(serve(args, listen, graph))
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
    let pbf = dir.join(format!("tracker-baltimore-{tag}.osm.pbf"));
    std::fs::write(&pbf, BUNDLED_MAP).with_context(|| format!("writing {}", pbf.display()))?;
    let (graph, _) = super::open_map(&pbf)?;
    // A failed cache write only costs the next start an import.
    if let Err(err) = road_graph::save_snapshot(&graph, &snapshot) {
        tracing::warn!(error = %err, "could not cache the bundled map as a snapshot");
    }
    Ok(graph)
}

async fn serve(args: ServeArgs, listen: SocketAddr, graph: Arc<RoadGraph>) -> anyhow::Result<()> {
    let store = portal_api::open_store(&args.store)
        .await
        .map_err(bad_input)?;
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
    let state = AppState::new(config, store.clone(), fanout, None, Some(graph.clone()))
        .map_err(bad_input)?;

    // The seam for the engine pipeline: it sends its events (positions after
    // matching, ETAs, geofence status changes) into `engine_events`. Nothing sends
    // yet; the sender is held until shutdown so the consumer keeps running.
    let (engine_events, events) = mpsc::channel::<EngineEvent>(4096);
    tokio::spawn(state.live().clone().run(events));

    println!("listening on http://{local}");
    if args.demo > 0 {
        let places = demo_places(&graph);
        let seed = portal_api::demo::seed(
            &*store,
            args.demo,
            &places,
            chrono_tz::America::New_York,
            Utc::now(),
        )
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
    }

    let app = portal_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    drop(engine_events);
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
