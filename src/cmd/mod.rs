//! One module per subcommand, plus what they share: the bad-input marker that
//! maps to exit code 2, and opening a map with a progress bar.

pub(crate) mod config_file;
pub(crate) mod eta_eval;
pub(crate) mod export;
pub(crate) mod graph;
pub(crate) mod matching;
pub(crate) mod node;
pub(crate) mod output;
pub(crate) mod parquet_out;
pub(crate) mod route;
pub(crate) mod serve;
pub(crate) mod serve_map;
pub(crate) mod serve_notify;
pub(crate) mod simulate;
pub(crate) mod simulate_http;
pub(crate) mod tenant;

use std::path::Path;
use std::sync::Arc;

use engine::{Error as EngineError, Metric, Preparation, ROUTER_SECTION, Router, TurnCosts};
use road_graph::{
    BASEMAP_SECTION, Basemap, ImportReport, ImportStage, ProfileConfig, RoadGraph, Section,
    Sections, Snapshot,
};

/// Marks an error as the user's input being wrong (exit code 2), as opposed to a
/// failure of the program or its environment (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadInput(pub(crate) String);

/// Wraps any error as bad input, keeping its message.
pub(crate) fn bad_input(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(BadInput(err.to_string()))
}

/// Opens the store `--store URL` names. A URL the binary cannot use (an
/// unknown scheme, no path) is bad input (exit 2); a store that the URL names
/// well but that cannot be opened (a folder that cannot be made, a file that is
/// not a database, a full disk) is a failure of the environment (exit 1), with
/// the reason.
pub(crate) async fn open_store(url: &str) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
    match store::open_store(url).await {
        Ok(store) => Ok(store),
        Err(err @ store::Error::InvalidConfig { .. }) => Err(bad_input(format!("--store: {err}"))),
        Err(err) => Err(anyhow::Error::new(err).context(format!("cannot open the store {url}"))),
    }
}

/// The truck router's preparation as the map's snapshot gave it
/// ([`open_routing_map`]): `None` when there is none (a PBF, an older
/// snapshot), `Some(Err(reason))` when its arrays did not read though its
/// checksum holds.
pub(crate) type Prepared = Option<Result<Preparation, String>>;

/// The truck router for a map opened from `path`: from the preparation its
/// snapshot carries (milliseconds), else built (about a second on a metro area).
/// Returns a notice to log when it was built though the map is a snapshot: the
/// snapshot has no preparation, or one made by another version or for other turn
/// costs. A preparation that is corrupt or made for another graph is an error
/// naming the file (exit 2), not a silent rebuild: the file is damaged.
pub(crate) fn truck_router(
    path: &Path,
    prepared: Prepared,
    graph: Arc<RoadGraph>,
    metric: Metric,
    purpose: RouterUse,
) -> anyhow::Result<(Router, Option<String>)> {
    let costs = &TurnCosts::TRUCK;
    let rebuild = "rebuild the snapshot with `tracker graph build` to start in milliseconds";
    let Some(prepared) = prepared else {
        let router = Router::new(graph, costs, metric)?;
        let notice = road_graph::is_snapshot(path).then(|| {
            format!(
                "{}: the snapshot has no router preparation, so the router was built; {rebuild}",
                path.display()
            )
        });
        return Ok((router, notice));
    };
    let loaded = prepared
        .map_err(|reason| EngineError::CorruptPreparation { reason })
        .and_then(|prepared| {
            Router::from_preparation(Arc::clone(&graph), costs, metric.clone(), prepared)
        })
        .and_then(|router| match purpose {
            RouterUse::QueriesOnly => Ok(router),
            RouterUse::Reweighted => router.check_customizable().map(|()| router),
        });
    match loaded {
        Ok(router) => Ok((router, None)),
        Err(err @ EngineError::StalePreparation { .. }) => {
            let router = Router::new(graph, costs, metric)?;
            Ok((
                router,
                Some(format!(
                    "{}: {err}, so the router was built; {rebuild}",
                    path.display()
                )),
            ))
        }
        Err(err) => Err(bad_input(format!("{}: {err}; {rebuild}", path.display()))),
    }
}

/// What a command does with its truck router: whether it will re-weight it
/// (then what only customization relies on in a stored preparation is checked
/// at start, not at the first re-weighting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouterUse {
    /// Queries on the metric it was loaded with (`route`).
    QueriesOnly,
    /// Customized again while it runs (`serve`, `simulate`).
    Reweighted,
}

/// The truck router's preparation for `graph` (free-flow metric), as the
/// snapshot section [`truck_router`] loads: what `graph build` and the
/// bundled map's cache store.
pub(crate) fn router_section(graph: &Arc<RoadGraph>) -> anyhow::Result<Section> {
    let router = Router::new(
        Arc::clone(graph),
        &TurnCosts::TRUCK,
        Metric::free_flow(graph),
    )?;
    Ok(Section {
        tag: ROUTER_SECTION,
        bytes: router.prepared(),
    })
}

/// The basemap (water, parks, places, road names) of `graph`, read from the
/// OSM file it was imported from, as the snapshot section [`open_basemap`]
/// loads: what `graph build` and the bundled map's cache store.
pub(crate) fn basemap_section(graph: &RoadGraph, osm: &Path) -> anyhow::Result<Section> {
    let basemap = road_graph::read_basemap(osm, graph).map_err(bad_input)?;
    Ok(basemap.to_section())
}

/// The basemap of a map opened from `path`: its snapshot's section, or read
/// from the OSM file when the map is one. A snapshot without the section
/// (made by an older build) gives the graph's roads alone and a notice to log;
/// a damaged section is an error naming the file (exit 2), like a damaged
/// router preparation.
pub(crate) fn open_basemap(
    path: &Path,
    sections: &Sections,
    graph: &RoadGraph,
) -> anyhow::Result<(Basemap, Option<String>)> {
    match sections.get(&BASEMAP_SECTION) {
        Some(bytes) => Basemap::from_section(bytes, graph)
            .map(|basemap| (basemap, None))
            .map_err(|reason| {
                bad_input(format!(
                    "{}: {reason}; rebuild it with `tracker graph build`",
                    path.display()
                ))
            }),
        // (The bundled map's copy is gone when its cache could not be written.)
        None if path.exists() && !road_graph::is_snapshot(path) => Ok((
            road_graph::read_basemap(path, graph).map_err(bad_input)?,
            None,
        )),
        None => Ok((
            Basemap::roads_only(graph),
            Some(format!(
                "{}: no basemap is stored with the map, so it shows roads only; rebuild it with `tracker graph build`",
                path.display()
            )),
        )),
    }
}

/// Opens a map (a `.graph` snapshot or an `.osm.pbf` imported on the fly), with a
/// progress spinner on a terminal. Errors reading the map are bad input. Every
/// command opens maps this way: the graph keeps every component, so `match`,
/// `match-eval`, `eta-eval` and `serve` match on the same roads, and routing
/// snaps to the largest component. A snapshot's sections come with it; the
/// commands that route open it with [`open_routing_map`] instead.
pub(crate) fn open_map(path: &Path) -> anyhow::Result<(Snapshot, Option<ImportReport>)> {
    with_progress(path, |progress| {
        road_graph::open_map(path, &ProfileConfig::TRUCK, progress)
    })
}

/// [`open_map`] for the commands that route: the router's preparation is read
/// from the mapped snapshot, its large arrays borrowed in place by the router
/// (see [`truck_router`]), not kept among the sections.
pub(crate) fn open_routing_map(path: &Path) -> anyhow::Result<(Snapshot, Prepared)> {
    let ((snapshot, prepared), _) = with_progress(path, |progress| {
        road_graph::open_map_claiming(
            path,
            &ProfileConfig::TRUCK,
            progress,
            ROUTER_SECTION,
            Preparation::read,
        )
    })?;
    Ok((snapshot, prepared))
}

/// Runs `open` with a progress spinner on a terminal; a missing file and any
/// error reading the map are bad input.
fn with_progress<T>(
    path: &Path,
    open: impl FnOnce(&mut dyn FnMut(ImportStage)) -> road_graph::Result<T>,
) -> anyhow::Result<T> {
    if !path.exists() {
        return Err(bad_input(format!("{}: no such file", path.display())));
    }
    let bar = progress_spinner();
    let mut progress = |stage: ImportStage| {
        bar.set_message(match stage {
            ImportStage::Ways => "reading ways and relations",
            ImportStage::Nodes => "reading node coordinates",
            ImportStage::Topology => "building topology",
        });
    };
    let opened = open(&mut progress);
    bar.finish_and_clear();
    opened.map_err(bad_input)
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event, with its spans.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`,
    /// `span`, `spans`), for log shippers.
    Json,
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise (the long-running
/// commands: `serve`, `simulate`), as text or JSON lines. A line that cannot be
/// written is dropped and counted ([`output::StderrOrDrop`]), never a panic.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(output::StderrOrDrop)
        .with_env_filter(filter)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(false).try_init(),
    };
}

/// A spinner on stderr when it is a terminal; hidden otherwise (scripts, CI).
pub(crate) fn progress_spinner() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
