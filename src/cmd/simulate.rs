//! `tracker simulate`: drives a fleet of simulated trucks on a map and publishes
//! their positions to Kafka or to the HTTP API, optionally creating an order per
//! trip. It is the demo driver and the load generator for benchmarks. Prints a
//! JSON report when it stops (after `--duration`, or on Ctrl-C).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use engine::{Metric, TenantId};
use ingest::simulate::{
    Fleet, FleetConfig, KafkaPositions, OrderCreator, PositionPublisher, PublishSettings,
    SimTarget, run_simulation, sim_start,
};
use ingest::{Format, shutdown_channel};
use portal_api::client::Client;

use super::simulate_http::HttpApi;
use super::{bad_input, open_routing_map, truck_router};

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The road map (`.osm.pbf` or `.graph`).
    #[arg(long)]
    map: PathBuf,
    /// Number of trucks.
    #[arg(long, default_value_t = 10)]
    vehicles: usize,
    /// Simulated seconds per real second. Above 1 the simulated clock starts in
    /// the past (by duration × speedup, at most six days) and never passes now.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Where to publish: `kafka://HOST:PORT[/TOPIC][?tenant=ID]` or
    /// `http://HOST:PORT`.
    #[arg(long)]
    to: String,
    /// Whose trucks these are, on a Kafka target (every message names it; an
    /// HTTP target takes the API key's tenant instead). Also `?tenant=` on `--to`.
    #[arg(long, env = "TRACKER_TENANT")]
    tenant: Option<String>,
    /// Random seed: the same seed and map give the same fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds of real time (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Wire format for Kafka: canonical, samsara, motive or geotab.
    #[arg(long, default_value = "canonical")]
    format: Format,
    /// Tenant API key for the HTTP API.
    #[arg(long, env = "TRACKER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Create and dispatch an order for every trip through the API (the `--to`
    /// URL when it is http, else `--api-url`), so the engine tracks it.
    #[arg(long)]
    create_orders: bool,
    /// The tracker API for orders when publishing positions to Kafka.
    #[arg(long)]
    api_url: Option<String>,
    /// Create the Kafka topic with this many partitions if it does not exist.
    #[arg(long)]
    partitions: Option<i32>,
    /// Positions per HTTP request.
    #[arg(long, default_value_t = 500)]
    http_batch: usize,
}

pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<()> {
    super::init_logging(super::LogFormat::Text);
    let target = SimTarget::parse(&args.to).map_err(bad_input)?;
    if args.vehicles == 0 {
        return Err(bad_input("--vehicles must be at least 1"));
    }
    if !(args.speedup.is_finite() && args.speedup > 0.0) {
        return Err(bad_input("--speedup must be a positive number"));
    }
    let duration = match args.duration {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(bad_input("--duration must be a positive number of seconds"));
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    if args.http_batch == 0 {
        return Err(bad_input("--http-batch must be at least 1"));
    }
    let orders_api = match (&target, args.create_orders, &args.api_url) {
        (_, false, _) => None,
        (SimTarget::Http { base_url }, true, None) => Some(base_url.clone()),
        (_, true, Some(url)) => Some(url.clone()),
        (SimTarget::Kafka { .. }, true, None) => {
            return Err(bad_input(
                "--create-orders with a kafka:// target needs --api-url",
            ));
        }
    };

    let tenant = match (&target, &args.tenant) {
        (SimTarget::Http { .. }, _) => None,
        (SimTarget::Kafka { tenant: bound, .. }, flag) => {
            let flag = flag.as_ref().map(|t| TenantId(t.trim().to_owned()));
            match (bound, flag) {
                (Some(b), Some(f)) if *b != f => {
                    return Err(bad_input(
                        "--tenant and the ?tenant= of --to name different tenants",
                    ));
                }
                (Some(t), _) => Some(t.clone()),
                (None, Some(t)) => Some(t),
                (None, None) => {
                    return Err(bad_input(
                        "a kafka:// target needs --tenant ID (or ?tenant=ID on --to): \
                         every position belongs to a tenant",
                    ));
                }
            }
        }
    };

    // The API's typed client, for positions over HTTP and for orders.
    let api = |base_url: &str| -> anyhow::Result<HttpApi> {
        let key = args.api_key.as_deref().ok_or_else(|| {
            bad_input("the HTTP API needs --api-key (or TRACKER_API_KEY): a tenant's key")
        })?;
        Ok(HttpApi::new(
            Client::new(base_url, key).map_err(bad_input)?,
            args.http_batch,
        ))
    };
    let positions: Box<dyn PositionPublisher> = match &target {
        SimTarget::Http { base_url } => Box::new(api(base_url)?),
        SimTarget::Kafka { brokers, topic, .. } => {
            Box::new(KafkaPositions::new(brokers, topic, args.format)?)
        }
    };
    let orders = orders_api.as_deref().map(api).transpose()?;

    let (road_graph::Snapshot { graph, .. }, prepared) = open_routing_map(&args.map)?;
    let graph = Arc::new(graph);
    let metric = Metric::free_flow(&graph);
    let (router, notice) = truck_router(
        &args.map,
        prepared,
        graph.clone(),
        metric,
        super::RouterUse::Reweighted,
    )
    .context("building the router")?;
    if let Some(notice) = notice {
        tracing::warn!("{notice}");
    }
    // Sped-up runs start in the past so device times never run ahead of now.
    let start = sim_start(Utc::now(), args.speedup, duration);
    let mut config = FleetConfig::recommended(args.vehicles, args.seed);
    if let Some(tenant) = tenant {
        config.tenant_id = tenant;
    }
    let fleet = Fleet::new(graph, config, start).map_err(bad_input)?;
    let settings = PublishSettings {
        speedup: args.speedup,
        tick: Duration::from_millis(200),
        duration,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async move {
        if let (SimTarget::Kafka { brokers, topic, .. }, Some(partitions)) =
            (&target, args.partitions)
        {
            ingest::kafka::ensure_topics(brokers, &[(topic, partitions)]).await?;
        }
        // Ctrl-C asks the simulation to stop and still waits for its report;
        // no task is left behind.
        let orders = orders.as_ref().map(|o| o as &dyn OrderCreator);
        let (stop, shutdown) = shutdown_channel();
        let simulation = run_simulation(
            fleet,
            Arc::new(router),
            start,
            settings,
            positions.as_ref(),
            orders,
            shutdown,
        );
        tokio::pin!(simulation);
        tokio::select! {
            report = &mut simulation => report,
            _ = tokio::signal::ctrl_c() => {
                stop.trigger();
                simulation.await
            }
        }
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
