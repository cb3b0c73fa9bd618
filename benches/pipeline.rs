//! The live pipeline end to end, positions/s: simulated trucks on porto (each
//! with an order to its trip's destination) produced once to a Kafka topic on
//! the tansu broker of `TRACKER_TEST_KAFKA`; every iteration reads the whole
//! topic with a new consumer group through the ingest Kafka source into
//!
//! - `pipeline/kafka_to_engine/consume_only`: a sink that only counts (the
//!   baseline: decode, validate, dedupe, order);
//! - `pipeline/kafka_to_engine/match_traffic_eta`: a sink running the engine's
//!   `LiveEngine` on every batch (map matching, traffic model, per-order ETA
//!   trackers, geofences), as `tracker serve` does minus the store.
//!
//! The engine runs with one shard per core, as `tracker serve` does.
//! `pipeline/engine_only/{1,2,4}_shards` runs the same positions through the
//! engine alone (no broker), in batches of 5,000 in device-time order: the
//! gain of sharding on its own.
//!
//! Timed from the first to the last sink write (the group join is not counted),
//! scaled to all positions, like `ingest/kafka_consume`. The runtime has two
//! worker threads; librdkafka has its own threads. Skipped with a notice when no
//! broker is reachable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, SamplingMode, Throughput};
use engine::{
    ActiveOrder, ActiveStop, LiveConfig, LiveEngine, Metric, OrderId, OrderStatus, Position,
    Router, SpeedProfile, StopKind, TurnCosts, Tz, VehicleKey,
};
use ingest::kafka::{
    ClientTuning, KafkaPublisher, KafkaSourceConfig, ensure_topics, run_kafka_source,
};
use ingest::simulate::{Fleet, FleetConfig};
use ingest::{IngestStats, PositionSink, SinkError, SinkReceipt, shutdown_channel};
use road_graph::{ProfileConfig, RoadGraph, import_pbf};

use crate::ingest::{kafka_broker, unique};

const N_TRUCKS: usize = 2000;
/// Simulated time: positions from every truck over this long.
const SIMULATED_S: i64 = 1800;

pub(crate) struct Setup {
    pub(crate) router: Arc<Router>,
    pub(crate) positions: Vec<Position>,
    pub(crate) orders: Vec<ActiveOrder>,
}

pub(crate) fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pbf = crate::graph::porto_pbf();
        let (graph, _) =
            import_pbf(&pbf, &ProfileConfig::TRUCK, &mut |_| {}).expect("porto imports");
        let graph: Arc<RoadGraph> = Arc::new(graph);
        let router = Arc::new(
            Router::new(
                Arc::clone(&graph),
                &TurnCosts::TRUCK,
                Metric::free_flow(&graph),
            )
            .expect("router"),
        );
        // Half an hour of a fleet, ending a minute ago (Kafka ingest refuses
        // future and week-old device times). ELD intervals 1 s to 5 min.
        let start = Utc::now() - TimeDelta::seconds(SIMULATED_S + 60);
        let mut config = FleetConfig::recommended(N_TRUCKS, 42);
        config.id_prefix = "BENCH-".into();
        let tenant_id = config.tenant_id.clone();
        let mut fleet = Fleet::new(Arc::clone(&graph), config, start).expect("fleet");
        let positions = fleet.advance(router.as_ref(), start + TimeDelta::seconds(SIMULATED_S));
        // One order per trip: picked up at its origin, delivered at its end.
        let orders = fleet
            .take_trips()
            .into_iter()
            .enumerate()
            .map(|(i, trip)| ActiveOrder {
                order_id: OrderId(format!("ord_{i}")),
                tenant_id: tenant_id.clone(),
                vehicle_id: trip.vehicle_id,
                status: OrderStatus::PickedUp,
                stops: vec![
                    ActiveStop {
                        kind: StopKind::Pickup,
                        position: trip.origin,
                        window: None,
                        geofence: None,
                        arrived_at: Some(trip.depart_at),
                        departed_at: Some(trip.depart_at),
                        skipped_at: None,
                    },
                    ActiveStop {
                        kind: StopKind::Delivery,
                        position: trip.destination,
                        window: None,
                        geofence: None,
                        arrived_at: None,
                        departed_at: None,
                        skipped_at: None,
                    },
                ],
            })
            .collect();
        Setup {
            router,
            positions,
            orders,
        }
    })
}

/// Counts writes and remembers the first and last write's end.
#[derive(Debug, Default)]
struct Span {
    written: AtomicU64,
    span: Mutex<Option<(Instant, Instant, u64)>>,
}

impl Span {
    fn record(&self, n: u64) {
        let now = Instant::now();
        let mut span = self.span.lock().unwrap_or_else(|e| e.into_inner());
        *span = Some(span.map_or((now, now, n), |(first, _, first_n)| (first, now, first_n)));
        self.written.fetch_add(n, Ordering::Relaxed);
    }
}

/// The baseline sink: counts.
#[derive(Debug, Default)]
struct CountOnly(Span);

impl PositionSink for CountOnly {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        self.0.record(batch.len() as u64);
        Ok(SinkReceipt::default())
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        Ok(vec![None; vehicles.len()])
    }
}

/// The engine sink: matching, traffic and trackers on every batch.
struct EngineOnly {
    span: Span,
    engine: Mutex<LiveEngine>,
    events: AtomicU64,
}

impl PositionSink for EngineOnly {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let out = {
            let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            engine.process(batch, Utc::now())
        };
        self.events
            .fetch_add(out.events.len() as u64, Ordering::Relaxed);
        self.span.record(batch.len() as u64);
        Ok(SinkReceipt::default())
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        Ok(vec![None; vehicles.len()])
    }
}

/// Reads the whole topic once into `sink`; the time from the first to the last
/// write, scaled to all `n` positions.
async fn consume<S: PositionSink>(
    brokers: &str,
    topic: &str,
    sink: Arc<S>,
    span: impl Fn(&S) -> &Span,
    n: u64,
) -> Duration {
    let mut config = KafkaSourceConfig::recommended(brokers, &unique("group"), topic);
    config.dead_letter_topic = None;
    let (stop, shutdown) = shutdown_channel();
    let stats = Arc::new(IngestStats::new());
    let run = tokio::spawn({
        let sink = Arc::clone(&sink);
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    while span(&sink).written.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.trigger();
    run.await.expect("task").expect("source");
    let (first, last, first_n) = span(&sink)
        .span
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expect("some writes");
    let after_first = n.saturating_sub(first_n).max(1);
    (last - first).mul_f64(n as f64 / after_first as f64)
}

/// An engine over the setup's router and orders, with `shards` shards.
fn engine(setup: &Setup, shards: usize) -> LiveEngine {
    engine_matching(setup, shards, engine::MatcherConfig::TRUCK)
}

/// The same, matching with `matcher`.
fn engine_matching(setup: &Setup, shards: usize, matcher: engine::MatcherConfig) -> LiveEngine {
    let mut config = LiveConfig::truck(Tz::UTC);
    config.shards = shards;
    config.matcher = matcher;
    let mut engine = LiveEngine::new(
        Arc::clone(&setup.router),
        config,
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("engine");
    engine.set_orders(setup.orders.clone());
    engine
}

/// One shard per core, as `tracker serve` sets it.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// A group whose iterations each run all `n` positions once (seconds each):
/// one iteration per sample keeps the run short.
pub(crate) fn whole_passes<'c>(
    c: &'c mut Criterion,
    name: &str,
    n: u64,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n));
    group
}

fn engine_only(c: &mut Criterion) {
    let setup = setup();
    let mut positions = setup.positions.clone();
    positions.sort_by_key(|p| p.time);
    let mut group = whole_passes(c, "pipeline/engine_only", positions.len() as u64);
    // The matcher's settings before issue 24's cross-validated choice, on one
    // shard: what the choice costs the whole engine.
    let before_cv = crate::matching::matcher_before_cv();
    let variants = [
        ("1_shards", 1, engine::MatcherConfig::TRUCK),
        ("2_shards", 2, engine::MatcherConfig::TRUCK),
        ("4_shards", 4, engine::MatcherConfig::TRUCK),
        ("1_shards_matcher_before_cv", 1, before_cv),
    ];
    for (name, shards, matcher) in variants {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut engine = engine_matching(setup, shards, matcher.clone());
                    let now = Utc::now();
                    let started = Instant::now();
                    for batch in positions.chunks(5000) {
                        std::hint::black_box(engine.process(batch, now));
                    }
                    total += started.elapsed();
                    let counters = engine.counters();
                    assert_eq!(counters.positions, positions.len() as u64);
                    assert!(counters.eta_updates > 0, "{counters:?}");
                }
                total
            })
        });
    }
    group.finish();
}

fn kafka_to_engine(c: &mut Criterion) {
    let Some(brokers) = kafka_broker() else {
        eprintln!(
            "pipeline/kafka_to_engine: SKIPPED (set TRACKER_TEST_KAFKA to a reachable tansu broker)"
        );
        return;
    };
    let setup = setup();
    let n = setup.positions.len() as u64;
    eprintln!(
        "pipeline/kafka_to_engine: {n} positions of {N_TRUCKS} trucks, {} orders",
        setup.orders.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let topic = unique("pipeline");
    runtime.block_on(async {
        ensure_topics(&brokers, &[(&topic, 4)])
            .await
            .expect("topic");
        let producer =
            KafkaPublisher::new(&brokers, &topic, ClientTuning::Tuned, &[]).expect("producer");
        for chunk in setup.positions.chunks(20_000) {
            producer.publish(chunk).await.expect("published");
        }
    });
    // Every iteration joins a new group (seconds on tansu, not timed).
    let mut group = whole_passes(c, "pipeline/kafka_to_engine", n);
    group.bench_function("consume_only", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let sink = Arc::new(CountOnly::default());
                    total += consume(&brokers, &topic, sink, |s| &s.0, n).await;
                }
                total
            })
        })
    });
    group.bench_function("match_traffic_eta", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let sink = Arc::new(EngineOnly {
                        span: Span::default(),
                        engine: Mutex::new(engine(setup, cores())),
                        events: AtomicU64::new(0),
                    });
                    total += consume(&brokers, &topic, Arc::clone(&sink), |s| &s.span, n).await;
                    let engine = sink.engine.lock().unwrap_or_else(|e| e.into_inner());
                    let counters = engine.counters();
                    assert!(
                        counters.matched * 10 >= counters.positions * 8,
                        "{counters:?}"
                    );
                    assert!(counters.eta_updates > 0, "{counters:?}");
                }
                total
            })
        })
    });
    group.finish();
}

criterion::criterion_group!(benches, engine_only, kafka_to_engine);
