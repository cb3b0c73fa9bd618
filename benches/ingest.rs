//! Ingest hot paths.
//!
//! - `ingest/decode/*`: decode + validate per wire format, against the baseline of
//!   parsing the same bytes into a `serde_json::Value` (what a naive decoder
//!   would do first), messages/s.
//! - `ingest/memory_bus`: positions through the in-process bus to a sink.
//! - `ingest/kafka_produce` and `ingest/kafka_consume`: against the tansu broker
//!   in `TRACKER_TEST_KAFKA` when it is reachable (skipped with a notice
//!   otherwise), with our tuned client settings and with librdkafka's defaults.
//!   Consumption is timed from the first to the last sink write, so the group
//!   join is not counted.

use std::hint::black_box;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput};
use engine::{Position, PositionSource, TenantId, VehicleId, VehicleKey};
use ingest::kafka::{
    ClientTuning, KafkaPublisher, KafkaSourceConfig, ensure_topics, run_kafka_source,
};
use ingest::{
    Envelope, Format, IngestStats, MemoryBusConfig, PositionSink, SinkError, SinkReceipt,
    ValidationRules, decode, encode, memory_bus, shutdown_channel,
};

const N_MESSAGES: usize = 1000;

fn sample_positions(n: usize, now: DateTime<Utc>) -> Vec<Position> {
    (0..n)
        .map(|i| Position {
            tenant_id: TenantId("ten_bench".into()),
            vehicle_id: VehicleId(format!("TRUCK-{:05}", i % 5000)),
            time: now - TimeDelta::seconds(600) + TimeDelta::milliseconds(i as i64 * 37),
            lat: 41.15 + (i % 100) as f64 * 1e-4,
            lon: -8.61 - (i % 77) as f64 * 1e-4,
            speed_mps: Some(12.5 + (i % 10) as f64),
            heading_deg: Some((i * 7 % 360) as f64),
            odometer_m: Some(1.0e6 + i as f64),
            hos_drive_remaining_s: Some(30_000),
            accuracy_m: None,
            source: PositionSource::Canonical,
        })
        .collect()
}

fn decode_formats(c: &mut Criterion) {
    let now = Utc::now();
    let positions = sample_positions(N_MESSAGES, now);
    let rules = ValidationRules::RECOMMENDED;
    let mut group = c.benchmark_group("ingest/decode");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(N_MESSAGES as u64));
    for format in Format::ALL {
        let messages: Vec<Vec<u8>> = positions.iter().map(|p| encode(format, p)).collect();
        // As on Kafka: the key `TENANT/VEHICLE` names the truck (vendor shapes
        // carry no tenant), the topic is bound to none.
        let keys: Vec<String> = positions.iter().map(|p| p.key().wire_key()).collect();
        group.bench_function(format!("{format}/serde_json_value_baseline"), |b| {
            b.iter(|| {
                for m in &messages {
                    black_box(serde_json::from_slice::<serde_json::Value>(m).ok());
                }
            })
        });
        group.bench_function(format!("{format}/decode_validate"), |b| {
            b.iter(|| {
                for (m, key) in messages.iter().zip(&keys) {
                    let envelope = Envelope {
                        key: Some(key),
                        tenant: None,
                    };
                    black_box(decode(format, m, envelope, now, &rules).ok());
                }
            })
        });
    }
    group.finish();
}

/// A sink that counts and remembers when the first and last writes happened.
#[derive(Debug, Default)]
struct CountingSink {
    written: AtomicU64,
    /// First write's end, last write's end, and the size of the first write.
    span: Mutex<Option<(Instant, Instant, u64)>>,
}

impl PositionSink for CountingSink {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let now = Instant::now();
        let n = batch.len() as u64;
        let mut span = self.span.lock().unwrap_or_else(|e| e.into_inner());
        *span = Some(span.map_or((now, now, n), |(first, _, first_n)| (first, now, first_n)));
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(SinkReceipt::default())
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        Ok(vec![None; vehicles.len()])
    }
}

fn memory_bus_throughput(c: &mut Criterion) {
    const N: usize = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("ingest/memory_bus");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N as u64));
    group.bench_function("publish_500_to_sink", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let positions = sample_positions(N, Utc::now());
                    let sink = Arc::new(CountingSink::default());
                    let (publisher, consumer) =
                        memory_bus(MemoryBusConfig::RECOMMENDED).expect("bus");
                    let (stop, shutdown) = shutdown_channel();
                    let stats = Arc::new(IngestStats::new());
                    let run = tokio::spawn(consumer.run(
                        sink.clone(),
                        stats,
                        ValidationRules::RECOMMENDED,
                        shutdown,
                    ));
                    let start = Instant::now();
                    for chunk in positions.chunks(500) {
                        publisher.publish(chunk.to_vec()).await.expect("published");
                    }
                    total += start.elapsed();
                    stop.trigger();
                    run.await.expect("bus stops");
                }
                total
            })
        })
    });
    group.finish();
}

pub(crate) fn kafka_broker() -> Option<String> {
    let addr = std::env::var("TRACKER_TEST_KAFKA").ok()?;
    let socket: SocketAddr = addr.parse().ok()?;
    TcpStream::connect_timeout(&socket, Duration::from_secs(1)).ok()?;
    Some(addr)
}

pub(crate) fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{name}-{}-{nanos}", std::process::id())
}

fn kafka_throughput(c: &mut Criterion) {
    const N: usize = 20_000;
    let Some(brokers) = kafka_broker() else {
        eprintln!("ingest/kafka: SKIPPED (set TRACKER_TEST_KAFKA to a reachable tansu broker)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let positions = sample_positions(N, Utc::now());

    let mut group = c.benchmark_group("ingest/kafka_produce");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(N as u64));
    for (name, tuning) in [
        ("tuned", ClientTuning::Tuned),
        ("librdkafka_defaults", ClientTuning::LibrdkafkaDefaults),
    ] {
        let topic = unique("produce");
        runtime
            .block_on(ensure_topics(&brokers, &[(&topic, 4)]))
            .expect("topic");
        let publisher = KafkaPublisher::new(&brokers, &topic, tuning, &[]).expect("producer");
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(publisher.publish(&positions))
                    .expect("published")
            })
        });
    }
    group.finish();

    // One topic filled once; every iteration reads it whole with a new group.
    let topic = unique("consume");
    runtime.block_on(async {
        ensure_topics(&brokers, &[(&topic, 4)])
            .await
            .expect("topic");
        KafkaPublisher::new(&brokers, &topic, ClientTuning::Tuned, &[])
            .expect("producer")
            .publish(&positions)
            .await
            .expect("published");
    });
    let mut group = c.benchmark_group("ingest/kafka_consume");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(N as u64));
    for (name, tuning) in [
        ("tuned", ClientTuning::Tuned),
        ("librdkafka_defaults", ClientTuning::LibrdkafkaDefaults),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let sink = Arc::new(CountingSink::default());
                        let mut config =
                            KafkaSourceConfig::recommended(&brokers, &unique("group"), &topic);
                        config.tuning = tuning;
                        config.dead_letter_topic = None;
                        let (stop, shutdown) = shutdown_channel();
                        let stats = Arc::new(IngestStats::new());
                        let run = tokio::spawn({
                            let sink = sink.clone();
                            async move { run_kafka_source(&config, sink, stats, shutdown).await }
                        });
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while sink.written.load(Ordering::Relaxed) < N as u64
                            && Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        stop.trigger();
                        run.await.expect("task").expect("source");
                        let (first, last, first_n) = sink
                            .span
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .expect("some writes");
                        // The span covers every write but the first: scale it to
                        // the time all N would take at that rate.
                        let after_first = (N as u64).saturating_sub(first_n).max(1);
                        total += (last - first).mul_f64(N as f64 / after_first as f64);
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion::criterion_group!(
    benches,
    decode_formats,
    memory_bus_throughput,
    kafka_throughput
);
