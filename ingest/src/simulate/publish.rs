//! The simulator's I/O edge: a generator thread advances the fleet with the wall
//! clock (times `speedup`), and an async task publishes what it produces to Kafka
//! (in any vendor format) or to the HTTP API (canonical batches), optionally
//! creating an order per trip through the API so a demo runs end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use engine::Position;
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
    /// `http://HOST:PORT` (the tracker API): positions to `/api/v1/positions`.
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

/// How to publish. No `Default`: the CLI builds it from flags.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub target: SimTarget,
    /// Wire format for Kafka (HTTP always sends canonical batches).
    pub format: Format,
    /// Simulated seconds per wall-clock second.
    pub speedup: f64,
    /// How often the generator advances the fleet.
    pub tick: Duration,
    /// Stop after this much wall-clock time (`None`: until shutdown).
    pub duration: Option<Duration>,
    /// Bearer key for the HTTP API.
    pub api_key: Option<String>,
    /// Create an order per trip through the API at this base URL.
    pub orders_api: Option<String>,
    /// Positions per HTTP request.
    pub http_batch: usize,
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

/// Runs the fleet and publishes until `duration` or shutdown.
pub async fn run_simulation(
    fleet: Fleet,
    planner: Arc<dyn RoutePlanner>,
    start: DateTime<Utc>,
    settings: PublishSettings,
    mut shutdown: Shutdown,
) -> Result<SimReport> {
    if !(settings.speedup.is_finite() && settings.speedup > 0.0) {
        return Err(Error::InvalidConfig {
            setting: "speedup",
            reason: "must be a positive number".into(),
        });
    }
    let vehicles = fleet.n_vehicles();
    let sink = Publisher::new(&settings)?;
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
        if let Err(err) = sink.positions(&tick.positions).await {
            report.publish_errors += 1;
            tracing::warn!(error = %err, "publishing positions failed");
        }
        for trip in &tick.trips {
            match sink.order(trip).await {
                Ok(true) => report.orders_created += 1,
                Ok(false) => {}
                Err(err) => {
                    report.publish_errors += 1;
                    tracing::warn!(error = %err, "creating an order failed");
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

enum Publisher {
    Kafka {
        producer: KafkaPublisher,
        format: Format,
        http: Option<HttpApi>,
    },
    Http(HttpApi),
}

struct HttpApi {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    batch: usize,
    create_orders: bool,
}

impl Publisher {
    fn new(settings: &PublishSettings) -> Result<Publisher> {
        let http = |base_url: &str| -> Result<HttpApi> {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| Error::Http(e.to_string()))?;
            Ok(HttpApi {
                client,
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key: settings.api_key.clone(),
                batch: settings.http_batch.max(1),
                create_orders: settings.orders_api.is_some(),
            })
        };
        match &settings.target {
            SimTarget::Kafka { brokers, topic, .. } => Ok(Publisher::Kafka {
                producer: KafkaPublisher::new(brokers, topic, ClientTuning::Tuned, &[])?,
                format: settings.format,
                http: settings.orders_api.as_deref().map(http).transpose()?,
            }),
            SimTarget::Http { base_url } => {
                let base = settings.orders_api.as_deref().unwrap_or(base_url);
                let mut api = http(base)?;
                api.base_url = base_url.clone();
                Ok(Publisher::Http(api))
            }
        }
    }

    async fn positions(&self, positions: &[Position]) -> Result<()> {
        match self {
            Publisher::Kafka {
                producer, format, ..
            } => {
                let payloads: Vec<Vec<u8>> = positions.iter().map(|p| encode(*format, p)).collect();
                // Vendor shapes carry no tenant: the `TENANT/VEHICLE` key does.
                let keys: Vec<String> = positions.iter().map(|p| p.key().wire_key()).collect();
                let records: Vec<OutRecord<'_>> = keys
                    .iter()
                    .zip(&payloads)
                    .map(|(key, payload)| OutRecord {
                        key: Some(key.as_bytes()),
                        payload,
                        headers: vec![(FORMAT_HEADER, format.as_str().as_bytes())],
                    })
                    .collect();
                producer.send_all(&records).await
            }
            Publisher::Http(api) => {
                // The API key names the tenant; the items name none.
                let items: Vec<serde_json::Value> = positions
                    .iter()
                    .map(|p| {
                        let mut item = serde_json::to_value(p).unwrap_or_default();
                        if let Some(fields) = item.as_object_mut() {
                            fields.remove("tenant_id");
                        }
                        item
                    })
                    .collect();
                for chunk in items.chunks(api.batch) {
                    api.post("/api/v1/positions", &chunk).await?;
                }
                Ok(())
            }
        }
    }

    /// Creates the order of a trip when asked to; `Ok(false)` when not.
    async fn order(&self, trip: &TripPlan) -> Result<bool> {
        let api = match self {
            Publisher::Kafka {
                http: Some(api), ..
            } => api,
            Publisher::Http(api) if api.create_orders => api,
            _ => return Ok(false),
        };
        let arrive =
            trip.depart_at + TimeDelta::seconds((trip.planned_duration_s * 1.5) as i64 + 1800);
        let body = serde_json::json!({
            "reference": format!("LOAD-{}-{}", trip.vehicle_id, trip.depart_at.timestamp()),
            "customer": {"name": "Simulated Customer", "email": "dispatch@example.invalid"},
            "vehicle_id": trip.vehicle_id.as_str(),
            "stops": [
                {"kind": "pickup", "name": "Origin", "address": "simulated",
                 "lat": trip.origin.lat, "lon": trip.origin.lon,
                 "window": {"from": trip.depart_at.to_rfc3339(), "to": (trip.depart_at + TimeDelta::hours(1)).to_rfc3339()}},
                {"kind": "delivery", "name": "Destination", "address": "simulated",
                 "lat": trip.destination.lat, "lon": trip.destination.lon,
                 "window": {"from": trip.depart_at.to_rfc3339(), "to": arrive.to_rfc3339()}}
            ]
        });
        let created = api.post("/api/v1/orders", &body).await?;
        // Dispatched at once, as a broker does when the truck is booked: the
        // engine tracks dispatched orders only.
        let id = created
            .get("id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Error::Http("POST /api/v1/orders: no order id in the reply".into()))?;
        api.post(
            &format!("/api/v1/orders/{id}/status"),
            &serde_json::json!({"status": "dispatched", "note": "simulated trip"}),
        )
        .await?;
        Ok(true)
    }
}

impl HttpApi {
    /// POSTs `body`; the reply's JSON (`null` when it has none).
    async fn post<T: Serialize + ?Sized>(&self, path: &str, body: &T) -> Result<serde_json::Value> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let text = response.text().await.unwrap_or_default();
            Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(Error::Http(format!(
                "POST {path}: {status}: {}",
                text.chars().take(200).collect::<String>()
            )))
        }
    }
}
