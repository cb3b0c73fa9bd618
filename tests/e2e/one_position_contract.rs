//! One position contract: the same bad fix is refused with the same reason
//! whether it comes over `POST /api/v1/positions` or a Kafka topic (the tansu
//! broker of `TRACKER_TEST_KAFKA`), and the vendor shapes Kafka takes are taken
//! over HTTP too (`?format=`). Before, the HTTP endpoint had a parser of its
//! own: fixes dated 1970 or 30 days back and a reported 80 m/s were answered
//! 202 and stored, and Samsara, Motive and Geotab bodies were refused.

use crate::portal_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use engine::{Position, VehicleKey};
use ingest::kafka::{ClientTuning, KafkaPublisher, KafkaSourceConfig, OutRecord, ensure_topics};
use ingest::{DeadLetter, IngestStats, PositionSink, SinkError, SinkReceipt, shutdown_channel};
use portal_api::{AppState, MemoryFanOut, PortalConfig};
use serde_json::{Value, json};

/// Collects what the Kafka source hands on.
#[derive(Debug, Default, Clone)]
struct Collect(Arc<Mutex<(Vec<Position>, Vec<DeadLetter>)>>);

impl PositionSink for Collect {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        self.0.lock().expect("lock").0.extend_from_slice(batch);
        Ok(SinkReceipt::default())
    }
    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        Ok(vec![None; vehicles.len()])
    }
    async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        self.0.lock().expect("lock").1.extend_from_slice(letters);
        Ok(())
    }
}

/// Bad canonical fixes, each with the reason every path must give.
fn bad_fixes(now: DateTime<Utc>) -> Vec<(Value, &'static str)> {
    let fix = |vehicle: &str, time: DateTime<Utc>, lat: f64, lon: f64| json!({"vehicle_id": vehicle, "time": time.to_rfc3339(), "lat": lat, "lon": lon});
    let mut speeding = fix("v-speed", now, 39.29, -76.61);
    speeding["speed_mps"] = json!(80.0);
    let mut heading = fix("v-heading", now, 39.29, -76.61);
    heading["heading_deg"] = json!(400.0);
    vec![
        (
            fix(
                "v-1970",
                DateTime::from_timestamp(0, 0).expect("epoch"),
                39.29,
                -76.61,
            ),
            "stale_time",
        ),
        (
            fix("v-month", now - TimeDelta::days(30), 39.29, -76.61),
            "stale_time",
        ),
        (speeding, "implausible_speed"),
        (fix("v-null", now, 0.0, 0.0), "null_island"),
        (fix("v-range", now, 91.0, -76.61), "out_of_range"),
        (
            fix("v-future", now + TimeDelta::hours(1), 39.29, -76.61),
            "future_time",
        ),
        (heading, "invalid_heading"),
        (fix("", now, 39.29, -76.61), "invalid_vehicle_id"),
    ]
}

async fn serve_portal(dir: &std::path::Path) -> (String, String) {
    let store = portal_api::open_store(&portal_support::sqlite_url(dir, "contract.db"))
        .await
        .expect("store");
    let (tenant, key) = portal_api::create_tenant(&*store, "Contract Freight")
        .await
        .expect("tenant");
    let state = AppState::new(
        PortalConfig::recommended("http://127.0.0.1"),
        store,
        Arc::new(MemoryFanOut::new()),
        None,
        None,
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let app = portal_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.expect("serves");
    });
    let _ = tenant;
    (base, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_kafka_refuse_the_same_bad_fix_for_the_same_reason() {
    let Some((brokers, topic)) = portal_support::kafka_broker("contract") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (base, key) = serve_portal(dir.path()).await;
    let now = Utc::now();
    let fixes = bad_fixes(now);

    // Over HTTP: one receipt per item, each rejected with its reason and field.
    let body: Vec<Value> = fixes.iter().map(|(f, _)| f.clone()).collect();
    let reply = portal_support::client()
        .post(format!("{base}/api/v1/positions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(reply.status(), 400, "nothing usable in the batch");
    let receipt: Value = reply.json().await.expect("receipt");
    let http_reasons: Vec<String> = receipt["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "rejected", "{r}");
            assert!(r["field"].is_string(), "the field is named: {r}");
            r["reason"].as_str().expect("reason").to_owned()
        })
        .collect();
    let expected: Vec<&str> = fixes.iter().map(|(_, reason)| *reason).collect();
    assert_eq!(http_reasons, expected);

    // Over Kafka, on a topic bound to a tenant: the same fixes become dead
    // letters with the same reasons.
    ensure_topics(&brokers, &[(&topic, 1)])
        .await
        .expect("topic");
    let producer = KafkaPublisher::new(
        &brokers,
        &topic,
        ClientTuning::Tuned,
        &[("batch.num.messages".into(), "1".into())],
    )
    .expect("producer");
    let payloads: Vec<Vec<u8>> = body.iter().map(|f| f.to_string().into_bytes()).collect();
    let records: Vec<OutRecord<'_>> = payloads
        .iter()
        .map(|payload| OutRecord {
            key: None,
            payload,
            headers: Vec::new(),
        })
        .collect();
    producer.send_all(&records).await.expect("produced");
    let sink = Collect::default();
    let stats = Arc::new(IngestStats::new());
    let mut config = KafkaSourceConfig::recommended(&brokers, &format!("g-{topic}"), &topic);
    config.dead_letter_topic = None;
    config.tenant = Some(engine::TenantId("ten_contract".into()));
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats) = (sink.clone(), stats.clone());
        async move { ingest::kafka::run_kafka_source(&config, sink, stats, shutdown).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.0.lock().expect("lock").1.len() < fixes.len() {
        assert!(Instant::now() < deadline, "the dead letters came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.trigger();
    run.await.expect("task").expect("source ran");
    let collected = sink.0.lock().expect("lock");
    assert!(
        collected.0.is_empty(),
        "no bad fix applied: {:?}",
        collected.0
    );
    // A topic's order is kept within its one partition.
    let kafka_reasons: Vec<&str> = collected
        .1
        .iter()
        .map(|d| d.rejection.reason.as_str())
        .collect();
    assert_eq!(kafka_reasons, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_takes_the_vendor_shapes_kafka_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (base, key) = serve_portal(dir.path()).await;
    let time = (Utc::now() - TimeDelta::seconds(30)).to_rfc3339();
    let bodies = [
        (
            "samsara",
            json!([{"id": "S1", "gps": {"time": time, "latitude": 39.29, "longitude": -76.61, "speedMilesPerHour": 30}}]),
        ),
        (
            "motive",
            json!([{"vehicle_id": 77, "located_at": time, "lat": 39.29, "lon": -76.61, "speed": 10}]),
        ),
        (
            "geotab",
            json!([{"dateTime": time, "latitude": 39.29, "longitude": -76.61, "speed": 50, "device": {"id": "G1"}}]),
        ),
    ];
    for (format, body) in bodies {
        let reply = portal_support::client()
            .post(format!("{base}/api/v1/positions?format={format}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = reply.status();
        let receipt: Value = reply.json().await.expect("receipt");
        assert_eq!(status, 202, "{format}: {receipt}");
        assert_eq!(
            receipt["results"][0]["status"], "accepted",
            "{format}: {receipt}"
        );
        // The same fix again is a duplicate, and an older one is stale.
        let again = portal_support::client()
            .post(format!("{base}/api/v1/positions?format={format}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .expect("post")
            .json::<Value>()
            .await
            .expect("receipt");
        assert_eq!(
            again["results"][0]["status"], "duplicate",
            "{format}: {again}"
        );
    }
    let unknown = portal_support::client()
        .post(format!("{base}/api/v1/positions?format=omnitracs"))
        .bearer_auth(&key)
        .json(&json!([]))
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), 400);
    let text = unknown.text().await.expect("text");
    assert!(text.contains("`format`"), "{text}");
}
