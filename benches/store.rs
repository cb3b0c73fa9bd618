//! The durable half of the live pipeline, positions/s, on the simulated porto
//! fleet of `pipeline` (2,000 trucks, each with an order, now created in the
//! store), in batches of 5,000 in device-time order, as the engine sink gets
//! them. Every iteration starts from a fresh store (a SQLite file, or a
//! PostgreSQL schema of the local server) with the orders dispatched; making
//! it is not timed.
//!
//! - `store/positions/{sqlite,postgres}/{one_by_one,batched}`: the positions
//!   alone. `one_by_one` writes each fix with its own `record_position`, a
//!   vehicle's fixes in turn and the vehicles of a batch concurrently (the
//!   sink's path before batching); `batched` writes each batch with one
//!   `record_positions`.
//! - `pipeline/engine_to_store/{engine_only,sqlite,postgres}`: the engine
//!   (two shards, as `tracker serve` on two cores) on every batch, then, for
//!   the store variants, what the engine sink does with its events: the
//!   positions in one write, the ETAs of the orders with nothing else in the
//!   batch in one transaction, the other orders' events in turn and the
//!   orders concurrently, all through `LiveUpdates` (fan-out in memory, no
//!   viewer). Not pipelined: the engine waits for the store, so the store
//!   variants show what storing costs on top of `engine_only`, measured in
//!   the same run. `{sqlite,postgres}_eta_per_order`: the same with every
//!   ETA its own transaction (the sink before ETAs were batched).
//!
//! Kafka is not involved (see `pipeline/kafka_to_engine` for the source). In
//! test mode (`cargo test --benches`, no `--bench`) 10,000 positions, and
//! PostgreSQL only when it answers (under `CI` its absence fails).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::Criterion;
use engine::{
    ActiveOrder, EngineEvent, LiveConfig, LiveEngine, OrderStatus, Position, SpeedProfile,
    StopKind, Tz, VehicleKey,
};
use futures::future::join_all;
use portal_api::{LiveUpdates, MemoryFanOut};
use store::testing::PgSchema;
use store::{
    Customer, EventKind, NewEvent, NewOrder, NewStop, Store, TenantId, VehicleFix, Visibility,
    Window, create_tenant, new_tracking_code, open_store,
};

use crate::pipeline::{Setup, setup, whole_passes};

const BATCH: usize = 5000;

fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The first positions in device-time order: 100,000 when measuring.
fn positions(setup: &Setup) -> Vec<Position> {
    let mut positions = setup.positions.clone();
    positions.sort_by_key(|p| p.time);
    positions.truncate(if measuring() { 100_000 } else { 10_000 });
    positions
}

/// A fresh store and the tenant whose orders it holds, one per trip,
/// dispatched (so positions extend their trails), as the engine tracks them.
struct Fresh {
    store: Arc<dyn Store>,
    tenant: TenantId,
    orders: Vec<ActiveOrder>,
    /// The SQLite file's folder, removed when dropped.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema, dropped by `finish`.
    schema: Option<PgSchema>,
}

impl Fresh {
    async fn finish(self) {
        if let Some(schema) = self.schema {
            schema.finish().await;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

async fn fresh(backend: Backend, setup: &Setup) -> Option<Fresh> {
    let (store, dir, schema) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (open_store(&url).await.expect("store"), Some(dir), None)
        }
        Backend::Postgres => {
            let schema = PgSchema::create().await?;
            let store = open_store(&schema.url).await.expect("store");
            (store, None, Some(schema))
        }
    };
    let (tenant, _) = create_tenant(&*store, "Bench Haulage")
        .await
        .expect("tenant");
    let tenant = tenant.id;
    let stop = |kind, name: &str, at: road_graph::LatLon, window| NewStop {
        kind,
        name: name.into(),
        address: name.into(),
        lat: at.lat,
        lon: at.lon,
        time_zone: Tz::UTC,
        window,
        geofence: None,
    };
    // Appointment windows as `tracker simulate --create-orders` gives them,
    // so that ETAs are judged for late risk as in `serve`.
    let window = |from: DateTime<Utc>, minutes: i64| {
        Some(Window {
            from,
            to: from + TimeDelta::minutes(minutes),
        })
    };
    let made = join_all(setup.orders.iter().enumerate().map(|(i, trip)| {
        let store = Arc::clone(&store);
        let tenant = tenant.clone();
        let picked_up_at = trip.stops[0].arrived_at.unwrap_or_else(Utc::now);
        let new = NewOrder {
            reference: format!("BENCH-{i}"),
            customer: Customer {
                name: "Bench".into(),
                email: Some("dispatch@example.invalid".into()),
            },
            vehicle_id: Some(trip.vehicle_id.clone()),
            driver_name: None,
            stops: vec![
                stop(
                    StopKind::Pickup,
                    "origin",
                    trip.stops[0].position,
                    window(picked_up_at, 60),
                ),
                stop(
                    StopKind::Delivery,
                    "destination",
                    trip.stops[1].position,
                    window(picked_up_at, 45),
                ),
            ],
        };
        async move {
            let order = store
                .create_order(tenant.clone(), new, new_tracking_code())
                .await
                .expect("order");
            let event = NewEvent {
                kind: EventKind::Status,
                status: Some(OrderStatus::Dispatched),
                at: Utc::now(),
                note: None,
                source: engine::StatusSource::Dispatcher,
                stop_index: None,
                visibility: Visibility::Public,
            };
            store
                .add_event(Some(tenant.clone()), order.id.clone(), event)
                .await
                .expect("dispatched");
            // Picked up, as the engine is told: its ETAs are for the
            // delivery, the stop the page shows.
            let picked_up = NewEvent {
                kind: EventKind::Status,
                status: Some(OrderStatus::PickedUp),
                at: picked_up_at,
                note: None,
                source: engine::StatusSource::Dispatcher,
                stop_index: Some(0),
                visibility: Visibility::Public,
            };
            store
                .add_event(Some(tenant), order.id.clone(), picked_up)
                .await
                .expect("picked up");
            order.id
        }
    }))
    .await;
    // The engine tracks the store's orders, picked up as in `pipeline`.
    let orders = setup
        .orders
        .iter()
        .zip(made)
        .map(|(trip, id)| ActiveOrder {
            order_id: id,
            tenant_id: tenant.clone(),
            vehicle_id: trip.vehicle_id.clone(),
            status: OrderStatus::PickedUp,
            stops: trip.stops.clone(),
        })
        .collect();
    Some(Fresh {
        store,
        tenant,
        orders,
        _dir: dir,
        schema,
    })
}

fn fixes(tenant: &TenantId, batch: &[Position]) -> Vec<(TenantId, VehicleFix)> {
    batch
        .iter()
        .map(|p| {
            let fix = VehicleFix {
                vehicle_id: p.vehicle_id.clone(),
                at: p.time,
                lat: p.lat,
                lon: p.lon,
                speed_mps: p.speed_mps,
                heading_deg: p.heading_deg,
            };
            (tenant.clone(), fix)
        })
        .collect()
}

/// Each fix its own write: a vehicle's in turn, vehicles concurrently.
async fn one_by_one(store: &dyn Store, fixes: Vec<(TenantId, VehicleFix)>) {
    let mut chains: HashMap<String, Vec<(TenantId, VehicleFix)>> = HashMap::new();
    for (tenant, fix) in fixes {
        chains
            .entry(fix.vehicle_id.0.clone())
            .or_default()
            .push((tenant, fix));
    }
    join_all(chains.into_values().map(|chain| async move {
        for (tenant, fix) in chain {
            store.record_position(tenant, fix).await.expect("written");
        }
    }))
    .await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn store_positions(c: &mut Criterion) {
    let setup = setup();
    let positions = positions(setup);
    let runtime = runtime();
    let mut group = whole_passes(c, "store/positions", positions.len() as u64);
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // Skipped (loudly, or failed under CI) without a PostgreSQL.
        // Skipped (loudly, or failed under CI) without a PostgreSQL.
        match runtime.block_on(fresh(backend, setup)) {
            Some(probe) => runtime.block_on(probe.finish()),
            None => continue,
        }
        for batched in [false, true] {
            let name = if batched { "batched" } else { "one_by_one" };
            group.bench_function(format!("{}/{name}", backend.name()), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let fresh = fresh(backend, setup).await.expect("a store");
                            let started = Instant::now();
                            for batch in positions.chunks(BATCH) {
                                let fixes = fixes(&fresh.tenant, batch);
                                if batched {
                                    fresh.store.record_positions(fixes).await.expect("written");
                                } else {
                                    one_by_one(&*fresh.store, fixes).await;
                                }
                            }
                            total += started.elapsed();
                            fresh.finish().await;
                        }
                        total
                    })
                })
            });
        }
    }
    group.finish();
}

/// How the ETAs of a flush reach the store.
#[derive(Clone, Copy)]
enum EtaWrites {
    /// As the engine sink does: the ETAs of the orders with nothing else in
    /// the flush in one `LiveUpdates::etas` (one transaction), the other
    /// orders' events chain by chain.
    Batched,
    /// The sink's path before batching: every event of every order through
    /// `LiveUpdates::handle`, each ETA its own transaction, the orders side
    /// by side.
    PerOrder,
}

/// What the engine sink's flush does with a batch's events (`EngineSink::deliver`
/// in the binary, which a bench cannot call): the positions in one write,
/// then the orders' events as `writes` says.
async fn store_events(live: &LiveUpdates, events: Vec<EngineEvent>, writes: EtaWrites) {
    let mut positions = Vec::new();
    let mut chains: HashMap<String, Vec<EngineEvent>> = HashMap::new();
    for event in events {
        match event {
            EngineEvent::PositionUpdated(p) => positions.push(p),
            EngineEvent::EtaUpdated(ref e) => {
                chains.entry(e.order_id.0.clone()).or_default().push(event)
            }
            EngineEvent::StatusChanged(ref s) => {
                chains.entry(s.order_id.0.clone()).or_default().push(event)
            }
        }
    }
    live.position_updates(&positions).await.expect("positions");
    let mut etas = Vec::new();
    if let EtaWrites::Batched = writes {
        chains.retain(|_, chain| {
            let only_etas = chain
                .iter()
                .all(|e| matches!(e, EngineEvent::EtaUpdated(_)));
            if only_etas {
                etas.extend(chain.drain(..).filter_map(|e| match e {
                    EngineEvent::EtaUpdated(u) => Some(u),
                    _ => None,
                }));
            }
            !only_etas
        });
    }
    let batched = async {
        if !etas.is_empty() {
            live.etas(etas).await.expect("ETAs");
        }
    };
    let chained = join_all(chains.into_values().map(|chain| async move {
        for event in chain {
            // A status the order no longer allows is the sink's "dropped".
            let _ = live.handle(event).await;
        }
    }));
    futures::join!(batched, chained);
}

fn engine_to_store(c: &mut Criterion) {
    let setup = setup();
    let positions = positions(setup);
    let runtime = runtime();
    let mut group = whole_passes(c, "pipeline/engine_to_store", positions.len() as u64);
    let engine_for = |orders: Vec<ActiveOrder>| {
        let mut config = LiveConfig::truck(Tz::UTC);
        config.shards = 2;
        let mut engine = LiveEngine::new(
            Arc::clone(&setup.router),
            config,
            SpeedProfile::free_flow(Tz::UTC),
        )
        .expect("engine");
        engine.set_orders(orders);
        engine
    };
    group.bench_function("engine_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut engine = engine_for(setup.orders.clone());
                let started = Instant::now();
                for batch in positions.chunks(BATCH) {
                    std::hint::black_box(engine.process(batch, Utc::now()));
                }
                total += started.elapsed();
            }
            total
        })
    });
    let variants = [
        (Backend::Sqlite, EtaWrites::Batched, ""),
        (Backend::Sqlite, EtaWrites::PerOrder, "_eta_per_order"),
        (Backend::Postgres, EtaWrites::Batched, ""),
        (Backend::Postgres, EtaWrites::PerOrder, "_eta_per_order"),
    ];
    for (backend, writes, suffix) in variants {
        // Skipped (loudly, or failed under CI) without a PostgreSQL.
        match runtime.block_on(fresh(backend, setup)) {
            Some(probe) => runtime.block_on(probe.finish()),
            None => continue,
        }
        group.bench_function(format!("{}{suffix}", backend.name()), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let fresh = fresh(backend, setup).await.expect("a store");
                        let live = LiveUpdates::new(
                            Arc::clone(&fresh.store),
                            Arc::new(MemoryFanOut::new()),
                        );
                        let mut engine = engine_for(fresh.orders.clone());
                        // The fleet's trucks are the store tenant's.
                        let ours: Vec<Position> = positions
                            .iter()
                            .map(|p| Position {
                                tenant_id: fresh.tenant.clone(),
                                ..p.clone()
                            })
                            .collect();
                        let mut etas = 0;
                        let started = Instant::now();
                        for batch in ours.chunks(BATCH) {
                            let out =
                                tokio::task::block_in_place(|| engine.process(batch, Utc::now()));
                            etas += out
                                .events
                                .iter()
                                .filter(|e| matches!(e, EngineEvent::EtaUpdated(_)))
                                .count();
                            store_events(&live, out.events, writes).await;
                        }
                        total += started.elapsed();
                        assert!(etas > 0, "the engine tracked the store's orders");
                        // Most trucks' positions were matched and stored.
                        let mut trucks: Vec<VehicleKey> = ours.iter().map(Position::key).collect();
                        trucks.sort();
                        trucks.dedup();
                        let n = trucks.len();
                        let times = fresh.store.vehicle_times(trucks).await.expect("reads");
                        let stored = times.iter().filter(|t| t.is_some()).count();
                        assert!(stored * 2 > n, "{stored} of {n} trucks reached the store");
                        fresh.finish().await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion::criterion_group!(benches, store_positions, engine_to_store);
