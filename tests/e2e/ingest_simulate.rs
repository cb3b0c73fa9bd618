//! End to end through the real binary and a real broker: `tracker simulate`
//! publishes a Motive-format fleet to a tansu topic; the ingest Kafka source
//! reads it back in a consumer group; every published position arrives exactly
//! once, decodes as Motive, passes validation and keeps per-truck time order.
//!
//! Needs the broker in `TRACKER_TEST_KAFKA` (`.ci/test` starts tansu); fails when
//! `CI` is set and it is absent, skips with a notice otherwise.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use engine::{Position, PositionSource, VehicleId, VehicleKey};
use ingest::kafka::{KafkaSourceConfig, run_kafka_source};
use ingest::{Format, IngestStats, PositionSink, SinkError, SinkReceipt, shutdown_channel};

fn broker() -> Option<String> {
    let addr = std::env::var("TRACKER_TEST_KAFKA").ok();
    let reachable = addr.as_deref().is_some_and(|a| {
        a.parse::<SocketAddr>()
            .is_ok_and(|s| TcpStream::connect_timeout(&s, Duration::from_secs(2)).is_ok())
    });
    if reachable {
        return addr;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the Kafka broker TRACKER_TEST_KAFKA={addr:?} is not reachable"
    );
    eprintln!("SKIPPED ingest_simulate: no Kafka broker (set TRACKER_TEST_KAFKA=127.0.0.1:PORT)");
    None
}

#[derive(Debug, Default, Clone)]
struct Collect(Arc<Mutex<Vec<Position>>>);

impl PositionSink for Collect {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        self.0.lock().expect("lock").extend_from_slice(batch);
        Ok(SinkReceipt::default())
    }
    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        Ok(vec![None; vehicles.len()])
    }
}

#[test]
fn simulated_motive_fleet_through_kafka_arrives_exactly_once() {
    let Some(brokers) = broker() else { return };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let topic = format!("sim-e2e-{}-{nanos}", std::process::id());
    let map = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/osm/baltimore.osm.pbf"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args([
            "simulate",
            "--map",
            map,
            "--vehicles",
            "40",
            "--speedup",
            "120",
        ])
        .args([
            "--to",
            &format!("kafka://{brokers}/{topic}"),
            "--partitions",
            "3",
        ])
        .args(["--duration", "4", "--format", "motive", "--seed", "42"])
        // Motive bodies name no tenant: the `TENANT/VEHICLE` key does.
        .args(["--tenant", "ten_sim"])
        .output()
        .expect("tracker runs");
    assert!(
        output.status.success(),
        "tracker simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON report on stdout");
    let published = report["positions"].as_u64().expect("positions count");
    assert!(
        published > 200,
        "40 trucks over 8 simulated minutes report plenty: {report}"
    );
    assert_eq!(report["publish_errors"], 0, "{report}");
    assert!(report["trips"].as_u64().is_some_and(|t| t > 0), "{report}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sink = Collect::default();
    let stats = Arc::new(IngestStats::new());
    runtime.block_on(async {
        let mut config =
            KafkaSourceConfig::recommended(&brokers, &format!("{topic}-reader"), &topic);
        // The topic's own format is canonical; the simulator's `format` header
        // must switch each message to Motive.
        config.topics = vec![(topic.clone(), Format::Canonical)];
        config.dead_letter_topic = None;
        let (stop, shutdown) = shutdown_channel();
        let run = tokio::spawn({
            let (sink, stats) = (sink.clone(), stats.clone());
            async move { run_kafka_source(&config, sink, stats, shutdown).await }
        });
        let start = Instant::now();
        while stats.snapshot().received < published && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.trigger();
        run.await.expect("task").expect("source");
    });

    let snap = stats.snapshot();
    assert_eq!(snap.received, published, "every published message was read");
    assert_eq!(snap.rejected_total(), 0, "{snap:?}");
    let positions = sink.0.lock().expect("lock").clone();
    assert_eq!(
        positions.len() as u64 + snap.duplicates + snap.out_of_order,
        published
    );
    assert_eq!(snap.duplicates + snap.out_of_order, 0, "{snap:?}");
    assert!(
        positions.iter().all(|p| p.tenant_id.as_str() == "ten_sim"),
        "every position is the simulated tenant's"
    );
    let mut last: HashMap<&VehicleId, DateTime<Utc>> = HashMap::new();
    for p in &positions {
        assert_eq!(p.source, PositionSource::Motive);
        if let Some(prev) = last.insert(&p.vehicle_id, p.time) {
            assert!(prev < p.time, "{} out of order", p.vehicle_id);
        }
    }
    assert!(last.len() > 10, "many trucks reported: {}", last.len());
}
