//! `serve`'s map: `--map` or the bundled map (cached as a snapshot), its
//! basemap and the truck router, loaded on threads of their own from the first
//! moment of a start, so that the store, the bus and the HTTP server come up
//! meanwhile instead of before.
//!
//! The basemap is handed over as soon as it is decoded (the tiles need nothing
//! else); the graph and the router together, when the router is ready. The
//! time zones' finder warms up beside them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use engine::{Metric, Preparation, ROUTER_SECTION, Router};
use road_graph::{Basemap, RoadGraph, Snapshot};
use tokio::sync::oneshot;

use super::Prepared;

/// The bundled demo map: central Baltimore, © OpenStreetMap contributors (ODbL),
/// see `src/data/README.md`.
const BUNDLED_MAP: &[u8] = include_bytes!("../data/baltimore.osm.pbf");

/// The basemap and the notice to log when the map has none stored.
type BasemapLoaded = (Basemap, Option<String>);

/// A map being loaded; see the module's documentation.
#[derive(Debug)]
pub(crate) struct MapLoad {
    basemap: Option<oneshot::Receiver<BasemapLoaded>>,
    ready: tokio::task::JoinHandle<anyhow::Result<MapReady>>,
}

/// The map and its router, ready to route.
#[derive(Debug)]
pub(crate) struct MapReady {
    pub(crate) graph: Arc<RoadGraph>,
    pub(crate) router: Router,
    /// From the start of the load to the router ready, for the log.
    pub(crate) elapsed_ms: u64,
}

impl MapLoad {
    /// Starts loading `--map` (the bundled map when `None`) on the blocking
    /// pool of the current Tokio runtime.
    pub(crate) fn start(map: Option<PathBuf>) -> MapLoad {
        let (basemap_tx, basemap_rx) = oneshot::channel();
        let ready = tokio::task::spawn_blocking(move || load(map.as_deref(), basemap_tx));
        MapLoad {
            basemap: Some(basemap_rx),
            ready,
        }
    }

    /// The basemap, once decoded; `None` when the load failed before it (or
    /// when it was taken already): [`MapLoad::ready`] says why.
    pub(crate) async fn basemap(&mut self) -> Option<BasemapLoaded> {
        self.basemap.take()?.await.ok()
    }

    /// The graph and its router, or what stopped them.
    pub(crate) async fn ready(self) -> anyhow::Result<MapReady> {
        self.ready.await.context("the map loading task failed")?
    }
}

/// Opens the map, then decodes its basemap (sent on as soon as it is), checks
/// the router's preparation (or builds the router) and warms the time zones at
/// once.
fn load(
    map: Option<&Path>,
    basemap_tx: oneshot::Sender<BasemapLoaded>,
) -> anyhow::Result<MapReady> {
    let started = std::time::Instant::now();
    let (Snapshot { graph, sections }, prepared, path) = load_map(map)?;
    let graph = Arc::new(graph);
    let (basemap, router) = std::thread::scope(|scope| {
        // About 150 ms of its own, and nothing to do with the map.
        scope.spawn(portal_api::warm_up_time_zones);
        let basemap = scope.spawn(|| {
            let basemap = super::open_basemap(&path, &sections, &graph)?;
            // A server that stopped meanwhile no longer listens: nothing lost.
            let _ = basemap_tx.send(basemap);
            anyhow::Ok(())
        });
        let metric = Metric::free_flow(&graph);
        let router = super::truck_router(
            &path,
            prepared,
            Arc::clone(&graph),
            metric,
            super::RouterUse::Reweighted,
        );
        let basemap = basemap
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("decoding the basemap panicked")));
        (basemap, router)
    });
    basemap?;
    let router = match router.context("building the router")? {
        (router, Some(notice)) => {
            tracing::warn!("{notice}");
            router
        }
        (router, None) => router,
    };
    Ok(MapReady {
        graph,
        router,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Opens `--map`, or the bundled map (cached as a snapshot with the router's
/// preparation in the temp directory after the first import, so restarts are
/// quick). Returns the file the map came from, for messages.
fn load_map(path: Option<&Path>) -> anyhow::Result<(Snapshot, Prepared, PathBuf)> {
    if let Some(path) = path {
        let (snapshot, prepared) = super::open_routing_map(path)?;
        return Ok((snapshot, prepared, path.to_owned()));
    }
    let dir = std::env::temp_dir();
    // `all`: the cache holds every component (older ones, named without it,
    // held only the largest and are not reused).
    let tag = format!(
        "{:08x}-v{}-all-basemap1",
        crc32fast::hash(BUNDLED_MAP),
        road_graph::SNAPSHOT_VERSION
    );
    let snapshot = dir.join(format!("tracker-baltimore-{tag}.graph"));
    let load_cached =
        |path: &Path| road_graph::load_snapshot_claiming(path, ROUTER_SECTION, Preparation::read);
    if let Ok((loaded, prepared)) = load_cached(&snapshot) {
        return Ok((loaded, prepared, snapshot));
    }
    // This process's own copy: several servers starting at once (tests, a
    // supervisor's restarts) must not read each other's half-written file.
    let pbf = dir.join(format!(
        "tracker-baltimore-{tag}-{}.osm.pbf",
        std::process::id()
    ));
    std::fs::write(&pbf, BUNDLED_MAP).with_context(|| format!("writing {}", pbf.display()))?;
    let opened = super::open_map(&pbf).and_then(|(Snapshot { graph, .. }, _)| {
        let basemap = super::basemap_section(&graph, &pbf)?;
        Ok((graph, basemap))
    });
    // The snapshot is the cache; the copy has served.
    let _ = std::fs::remove_file(&pbf);
    let (graph, basemap) = opened?;
    let graph = Arc::new(graph);
    let prepared = super::router_section(&graph)?;
    // A failed cache write only costs the next start an import.
    let cached = road_graph::save_snapshot(&graph, &[basemap, prepared], &snapshot)
        .and_then(|()| load_cached(&snapshot));
    match cached {
        Ok((loaded, prepared)) => Ok((loaded, prepared, snapshot)),
        Err(err) => {
            tracing::warn!(error = %err, "could not cache the bundled map as a snapshot");
            let graph = Arc::try_unwrap(graph).unwrap_or_else(|shared| RoadGraph::clone(&shared));
            Ok((Snapshot::from(graph), None, pbf))
        }
    }
}
