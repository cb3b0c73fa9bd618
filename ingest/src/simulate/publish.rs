//! The simulator's I/O edge: a generator thread advances the fleet with the wall
//! clock (times `speedup`), and an async task hands what it produces to a
//! [`PositionPublisher`] (Kafka in any vendor format here, [`KafkaPositions`];
//! the HTTP API in the binary, over portal-api's typed client) and, when asked,
//! each new trip to an [`OrderCreator`] (the binary's, through the orders API)
//! so a demo runs end to end. This crate knows no HTTP: ingest and portal-api
//! never depend on each other, so the HTTP side lives where both are known.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use engine::Position;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::mpsc;

use super::fleet::{Fleet, RoutePlanner, TripPlan};
use crate::bus::BusUrl;
use crate::kafka::{ClientTuning, KafkaPublisher, OutRecord};
use crate::shutdown::Shutdown;
use crate::{Error, Result};
use engine::{FORMAT_HEADER, Format, encode};

/// Where the simulator publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimTarget {
    /// `kafka://HOST:PORT[/TOPIC][?tenant=ID]`.
    Kafka {
        brokers: String,
        topic: String,
        tenant: Option<engine::TenantId>,
    },
    /// `http://HOST:PORT` (the tracker API): positions to `/api/v1/positions`
    /// (published by the binary, which knows the API's client).
    Http { base_url: String },
}

impl SimTarget {
    pub fn parse(url: &str) -> Result<SimTarget> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(SimTarget::Http {
                base_url: url.trim_end_matches('/').to_owned(),
            });
        }
        match BusUrl::parse(url) {
            Ok(BusUrl::Kafka {
                brokers,
                topic,
                tenant,
            }) => Ok(SimTarget::Kafka {
                brokers,
                topic,
                tenant,
            }),
            _ => Err(Error::BusUrl {
                url: url.to_owned(),
                reason: "expected kafka://HOST:PORT[/TOPIC] or http://HOST:PORT".into(),
            }),
        }
    }
}

/// Where a run's positions go. Implemented here for Kafka ([`KafkaPositions`])
/// and by the binary for the HTTP API.
pub trait PositionPublisher: Send + Sync {
    /// Publishes one tick's positions (any number, the implementation splits
    /// them as its transport needs); an error counts as one publish error.
    fn publish<'a>(&'a self, positions: &'a [Position]) -> BoxFuture<'a, Result<()>>;
}

/// Creates (and dispatches) the order of each simulated trip, so the engine
/// tracks it. Implemented by the binary over the orders API.
pub trait OrderCreator: Send + Sync {
    fn create<'a>(&'a self, trip: &'a TripPlan) -> BoxFuture<'a, Result<()>>;
}

/// Positions to a Kafka topic in any wire format, keyed `TENANT/VEHICLE`.
#[derive(Debug)]
pub struct KafkaPositions {
    producer: KafkaPublisher,
    format: Format,
}

impl KafkaPositions {
    pub fn new(brokers: &str, topic: &str, format: Format) -> Result<KafkaPositions> {
        Ok(KafkaPositions {
            producer: KafkaPublisher::new(brokers, topic, ClientTuning::Tuned, &[])?,
            format,
        })
    }
}

impl PositionPublisher for KafkaPositions {
    fn publish<'a>(&'a self, positions: &'a [Position]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let payloads: Vec<Vec<u8>> = positions.iter().map(|p| encode(self.format, p)).collect();
            // Vendor shapes carry no tenant: the `TENANT/VEHICLE` key does.
            let keys: Vec<String> = positions.iter().map(|p| p.key().wire_key()).collect();
            let records: Vec<OutRecord<'_>> = keys
                .iter()
                .zip(&payloads)
                .map(|(key, payload)| OutRecord {
                    key: Some(key.as_bytes()),
                    payload,
                    headers: vec![(FORMAT_HEADER, self.format.as_str().as_bytes())],
                })
                .collect();
            self.producer.send_all(&records).await
        })
    }
}

/// How to run. No `Default`: the CLI builds it from flags.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Simulated seconds per wall-clock second.
    pub speedup: f64,
    /// How often the generator advances the fleet.
    pub tick: Duration,
    /// Stop after this much wall-clock time (`None`: until shutdown).
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimReport {
    pub vehicles: usize,
    pub positions: u64,
    pub trips: u64,
    pub orders_created: u64,
    pub publish_errors: u64,
    pub wall_s: f64,
    pub simulated_s: f64,
    pub positions_per_s: f64,
}

struct Tick {
    positions: Vec<Position>,
    trips: Vec<TripPlan>,
    sim_now: DateTime<Utc>,
}

/// Where a run should start its simulated clock so that device times never run
/// ahead of `now`: at `now` for real time, else far enough in the past for the
/// whole `duration` (or six days, inside ingest's seven-day age limit, for an
/// open-ended run; the clock is then held at `now` once it catches up).
pub fn sim_start(now: DateTime<Utc>, speedup: f64, duration: Option<Duration>) -> DateTime<Utc> {
    if speedup <= 1.0 {
        return now;
    }
    let six_days_s = 6.0 * 24.0 * 3600.0;
    let back_s = duration.map_or(six_days_s, |d| (d.as_secs_f64() * speedup).min(six_days_s));
    now - TimeDelta::seconds(back_s.ceil() as i64)
}

/// Runs the fleet until `duration` or shutdown, publishing its positions to
/// `positions` and, with `orders`, creating an order per trip.
pub async fn run_simulation(
    fleet: Fleet,
    planner: Arc<dyn RoutePlanner>,
    start: DateTime<Utc>,
    settings: PublishSettings,
    positions: &dyn PositionPublisher,
    orders: Option<&dyn OrderCreator>,
    mut shutdown: Shutdown,
) -> Result<SimReport> {
    if !(settings.speedup.is_finite() && settings.speedup > 0.0) {
        return Err(Error::InvalidConfig {
            setting: "speedup",
            reason: "must be a positive number".into(),
        });
    }
    let vehicles = fleet.n_vehicles();
    let (tx, mut rx) = mpsc::channel::<Tick>(4);
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (stop, settings) = (stop.clone(), settings.clone());
        std::thread::spawn(move || generate(fleet, planner, start, &settings, &tx, &stop))
    };
    let wall = Instant::now();
    let mut report = SimReport {
        vehicles,
        ..SimReport::default()
    };
    let mut last_log = Instant::now();
    loop {
        let tick = tokio::select! {
            tick = rx.recv() => tick,
            () = shutdown.wait() => None,
        };
        let Some(tick) = tick else { break };
        report.positions += tick.positions.len() as u64;
        report.trips += tick.trips.len() as u64;
        report.simulated_s = (tick.sim_now - start).as_seconds_f64();
        if let Err(err) = positions.publish(&tick.positions).await {
            report.publish_errors += 1;
            tracing::warn!(error = %err, "publishing positions failed");
        }
        if let Some(orders) = orders {
            for trip in &tick.trips {
                match orders.create(trip).await {
                    Ok(()) => report.orders_created += 1,
                    Err(err) => {
                        report.publish_errors += 1;
                        tracing::warn!(error = %err, "creating an order failed");
                    }
                }
            }
        }
        if last_log.elapsed() >= Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::info!(
                positions = report.positions,
                trips = report.trips,
                rate = (report.positions as f64 / wall.elapsed().as_secs_f64()).round(),
                "simulating"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    if generator.join().is_err() {
        return Err(Error::Simulator("the generator thread panicked".into()));
    }
    report.wall_s = wall.elapsed().as_secs_f64();
    report.positions_per_s = report.positions as f64 / report.wall_s.max(1e-9);
    Ok(report)
}

/// The generator thread: advances the fleet to `start + wall elapsed × speedup`
/// every tick (catching up in one step when publishing was slow).
fn generate(
    mut fleet: Fleet,
    planner: Arc<dyn RoutePlanner>,
    start: DateTime<Utc>,
    settings: &PublishSettings,
    tx: &mpsc::Sender<Tick>,
    stop: &AtomicBool,
) {
    let wall = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let elapsed = wall.elapsed();
        if settings.duration.is_some_and(|d| elapsed >= d) {
            return;
        }
        // Never ahead of the real clock: ingest rejects device times from the
        // future, so a sped-up run must start in the past (see `sim_start`).
        let sim_now = (start
            + TimeDelta::microseconds((elapsed.as_secs_f64() * settings.speedup * 1e6) as i64))
        .min(Utc::now());
        let positions = fleet.advance(planner.as_ref(), sim_now);
        let trips = fleet.take_trips();
        if tx
            .blocking_send(Tick {
                positions,
                trips,
                sim_now,
            })
            .is_err()
        {
            return;
        }
        let next = elapsed + settings.tick;
        std::thread::sleep(next.saturating_sub(wall.elapsed()));
    }
}
