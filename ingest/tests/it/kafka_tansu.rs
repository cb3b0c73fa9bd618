//! End to end against a real Kafka-compatible broker (tansu): vendor formats and
//! bad messages through the consumer group to the sink and the dead-letter topic;
//! a consumer killed mid-stream and restarted loses and doubles nothing; a second
//! group member joining mid-stream (a rebalance) keeps per-vehicle order, and
//! the member that loses a partition releases its trucks before the other
//! writes them.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::kafka::{broker, tansu_publisher, unique_topic};
use common::{TestSink, fix};
use engine::VehicleKey;
use engine::{Position, TenantId};
use ingest::kafka::{KafkaSourceConfig, OutRecord, ensure_topics, run_kafka_source};
use ingest::{IngestStats, PositionSink, RejectReason, SinkError, SinkReceipt, shutdown_channel};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};

/// Publishes `(key, payload, format header)` records, one per produce batch.
async fn publish(brokers: &str, topic: &str, records: &[(Option<&str>, &[u8], Option<&str>)]) {
    tansu_publisher(brokers, topic)
        .send_all(
            &records
                .iter()
                .map(|(key, payload, format)| OutRecord {
                    key: key.map(str::as_bytes),
                    payload,
                    headers: format
                        .map(|f| vec![("format", f.as_bytes())])
                        .unwrap_or_default(),
                })
                .collect::<Vec<_>>(),
        )
        .await
        .expect("published");
}

/// Waits until `cond` holds, failing the test after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn positions(n_vehicles: usize, per_vehicle: i64) -> Vec<Position> {
    let start = Utc::now() - TimeDelta::hours(2);
    let mut all = Vec::new();
    for i in 0..per_vehicle {
        for v in 0..n_vehicles {
            all.push(fix(&format!("truck-{v}"), i, start));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_formats_and_dead_letters_end_to_end() {
    let Some(brokers) = broker("vendor_formats_and_dead_letters_end_to_end") else {
        return;
    };
    let topic = unique_topic("formats");
    let dlq = format!("{topic}.dlq");
    ensure_topics(&brokers, &[(&topic, 3), (&dlq, 1)])
        .await
        .expect("topics created");

    let time = (Utc::now() - TimeDelta::seconds(20)).to_rfc3339();
    let samsara = format!(
        r#"{{"id":"S1","gps":{{"time":"{time}","latitude":39.96,"longitude":-82.99,"speedMilesPerHour":30}}}}"#
    );
    let motive =
        format!(r#"{{"vehicle_id":77,"located_at":"{time}","lat":40.44,"lon":-79.99,"speed":10}}"#);
    let geotab = format!(
        r#"{{"dateTime":"{time}","latitude":43.65,"longitude":-79.38,"speed":50,"device":{{"id":"G1"}}}}"#
    );
    let canonical = format!(r#"{{"vehicle_id":"C1","time":"{time}","lat":41.15,"lon":-8.61}}"#);
    let null_island = format!(r#"{{"vehicle_id":"C2","time":"{time}","lat":0,"lon":0}}"#);
    let garbage = b"\x00\xffnot json".to_vec();
    let records = [
        (Some("S1"), samsara.as_bytes(), Some("samsara")),
        (Some("77"), motive.as_bytes(), Some("motive")),
        (Some("G1"), geotab.as_bytes(), Some("geotab")),
        (Some("C1"), canonical.as_bytes(), None),
        (Some("C2"), null_island.as_bytes(), None),
        (Some("C3"), garbage.as_slice(), None),
        (Some("C4"), canonical.as_bytes(), Some("omnitracs")),
    ];
    publish(&brokers, &topic, &records).await;

    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let mut config = KafkaSourceConfig::recommended(&brokers, &unique_topic("group"), &topic);
    config.dead_letter_topic = Some(dlq.clone());
    // The vendors' messages name no tenant: the topic is bound to one.
    config.tenant = Some(TenantId(common::TENANT.into()));
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats) = (sink.clone(), stats.clone());
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    wait_for(
        "4 positions and 3 dead letters",
        Duration::from_secs(30),
        || {
            let s = stats.snapshot();
            s.accepted == 4 && s.dead_lettered == 3
        },
    )
    .await;
    stop.trigger();
    run.await.expect("task").expect("source ran");

    let mut ids: Vec<String> = sink
        .lock()
        .written
        .iter()
        .map(|p| p.vehicle_id.0.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["77", "C1", "G1", "S1"]);
    let snap = stats.snapshot();
    assert_eq!(snap.rejected_for(RejectReason::NullIsland), 1);
    assert_eq!(snap.rejected_for(RejectReason::Malformed), 1);
    assert_eq!(snap.rejected_for(RejectReason::UnknownFormat), 1);

    // The dead letters carry the original bytes and the reason in a header.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique_topic("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&dlq]).expect("subscribed");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("dead letter arrives")
            .expect("readable");
        let reason = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "reason").and_then(|h| h.value))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        seen.push((reason, message.payload().map(<[u8]>::to_vec)));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Some("malformed".into()), Some(garbage.clone())),
            (Some("null_island".into()), Some(null_island.into_bytes())),
            (Some("unknown_format".into()), Some(canonical.into_bytes())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_loses_and_doubles_nothing() {
    let Some(brokers) = broker("a_consumer_killed_mid_stream_loses_and_doubles_nothing") else {
        return;
    };
    let topic = unique_topic("restart");
    ensure_topics(&brokers, &[(&topic, 3)])
        .await
        .expect("topic created");
    let all = positions(20, 300);
    let publisher = tansu_publisher(&brokers, &topic);
    publisher.publish(&all).await.expect("published");

    let sink = TestSink::default();
    // The kill most likely lands while a write is durable but its offsets are
    // not yet stored: the case that needs dedupe.
    sink.lock().write_delay = Duration::from_millis(20);
    let group = unique_topic("group");
    let start_consumer = |stats: Arc<IngestStats>| {
        let mut config = KafkaSourceConfig::recommended(&brokers, &group, &topic);
        config.dead_letter_topic = None;
        // Small batches so the kill lands between many commits.
        config.max_batch = 100;
        let sink = sink.clone();
        tokio::spawn(async move {
            let (_stop, shutdown) = shutdown_channel();
            run_kafka_source(&config, sink, stats, shutdown).await
        })
    };

    let first = Arc::new(IngestStats::new());
    let task = start_consumer(first.clone());
    wait_for("a third of the stream", Duration::from_secs(60), || {
        sink.lock().written.len() >= all.len() / 3
    })
    .await;
    // Kill: the task is dropped wherever it is, without a final commit.
    task.abort();
    let _ = task.await;
    let written_at_kill = sink.lock().written.len();
    assert!(written_at_kill < all.len(), "killed before the end");

    let second = Arc::new(IngestStats::new());
    let task = start_consumer(second.clone());
    wait_for("the whole stream", Duration::from_secs(90), || {
        sink.lock().counts.len() >= all.len()
    })
    .await;
    // Give a replay a chance to (wrongly) write something twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();

    assert_eq!(sink.assert_exactly_once_in_order(), all.len());
    let replayed = second.snapshot();
    eprintln!(
        "killed after {written_at_kill} positions; the restart re-read {} already-written ones",
        replayed.duplicates + replayed.out_of_order
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_mid_stream_keeps_order_and_exactly_once() {
    let Some(brokers) = broker("a_member_joining_mid_stream_keeps_order_and_exactly_once") else {
        return;
    };
    let topic = unique_topic("rebalance");
    ensure_topics(&brokers, &[(&topic, 4)])
        .await
        .expect("topic created");
    let all = positions(40, 100);
    let (head, tail) = all.split_at(all.len() / 2);
    let publisher = tansu_publisher(&brokers, &topic);
    publisher.publish(head).await.expect("published");

    let sink = TestSink::default();
    let group = unique_topic("group");
    let (stop, shutdown) = shutdown_channel();
    let member = |stats: Arc<IngestStats>| {
        let mut config = KafkaSourceConfig::recommended(&brokers, &group, &topic);
        config.dead_letter_topic = None;
        config.max_batch = 50;
        let (sink, shutdown) = (sink.clone(), shutdown.clone());
        tokio::spawn(async move { run_kafka_source(&config, sink, stats, shutdown).await })
    };
    let a_stats = Arc::new(IngestStats::new());
    let a = member(a_stats.clone());
    wait_for("some progress", Duration::from_secs(60), || {
        sink.lock().written.len() > 200
    })
    .await;
    let b_stats = Arc::new(IngestStats::new());
    let b = member(b_stats.clone());
    publisher.publish(tail).await.expect("published");
    wait_for("the whole stream", Duration::from_secs(90), || {
        sink.lock().counts.len() >= all.len()
    })
    .await;
    stop.trigger();
    a.await.expect("task").expect("member a");
    b.await.expect("task").expect("member b");

    assert_eq!(sink.assert_exactly_once_in_order(), all.len());
    assert!(
        a_stats.snapshot().rebalances >= 1,
        "member a saw its partitions revoked"
    );
    eprintln!(
        "a accepted {}, b accepted {}",
        a_stats.snapshot().accepted,
        b_stats.snapshot().accepted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_unbound_topic_a_message_names_its_tenant_or_is_dead_lettered_no_tenant() {
    let Some(brokers) = broker("unbound_topic_tenants") else {
        return;
    };
    let topic = unique_topic("tenants");
    ensure_topics(&brokers, &[(&topic, 2)])
        .await
        .expect("topics created");
    let time = (Utc::now() - TimeDelta::seconds(20)).to_rfc3339();
    let named = format!(
        r#"{{"tenant_id":"ten_a","vehicle_id":"truck-7","time":"{time}","lat":41.15,"lon":-8.61}}"#
    );
    let unnamed = format!(r#"{{"vehicle_id":"truck-7","time":"{time}","lat":41.15,"lon":-8.61}}"#);
    let bare_samsara = format!(r#"{{"time":"{time}","latitude":41.15,"longitude":-8.61}}"#);
    let records = [
        (Some("ten_a/truck-7"), named.as_bytes(), None),
        // The same truck id of another tenant, named only by the key.
        (Some("ten_b/truck-7"), unnamed.as_bytes(), None),
        (Some("ten_b/112"), bare_samsara.as_bytes(), Some("samsara")),
        // Nothing names a tenant.
        (Some("truck-7"), unnamed.as_bytes(), None),
        // The body and the key disagree.
        (Some("ten_b/truck-7"), named.as_bytes(), None),
    ];
    publish(&brokers, &topic, &records).await;

    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let mut config = KafkaSourceConfig::recommended(&brokers, &unique_topic("group"), &topic);
    config.dead_letter_topic = None;
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats) = (sink.clone(), stats.clone());
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    wait_for(
        "3 positions and 2 dead letters",
        Duration::from_secs(30),
        || {
            let s = stats.snapshot();
            s.accepted == 3 && s.dead_lettered == 2
        },
    )
    .await;
    stop.trigger();
    run.await.expect("task").expect("source ran");

    let mut keys: Vec<String> = sink
        .lock()
        .written
        .iter()
        .map(|p| p.key().wire_key())
        .collect();
    keys.sort();
    assert_eq!(keys, ["ten_a/truck-7", "ten_b/112", "ten_b/truck-7"]);
    let mut reasons: Vec<&str> = sink
        .lock()
        .dead
        .iter()
        .map(|d| d.rejection.reason.as_str())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["no_tenant", "tenant_mismatch"]);
}

/// What one member of the group did, in the order the shared log saw it.
#[derive(Debug, Clone)]
enum Step {
    Wrote(char, Vec<VehicleKey>),
    Released(char, Vec<VehicleKey>),
}

/// A member's sink: the shared durable sink, and a log of who wrote and who
/// released which trucks.
#[derive(Debug, Clone)]
struct Member {
    name: char,
    sink: TestSink,
    log: Arc<parking_lot::Mutex<Vec<Step>>>,
}

impl PositionSink for Member {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let receipt = self.sink.write(batch).await?;
        let trucks = batch.iter().map(Position::key).collect();
        self.log.lock().push(Step::Wrote(self.name, trucks));
        Ok(receipt)
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<chrono::DateTime<Utc>>>, SinkError> {
        self.sink.last_times(vehicles).await
    }

    async fn release(&self, vehicles: &[VehicleKey]) -> Result<(), SinkError> {
        self.log
            .lock()
            .push(Step::Released(self.name, vehicles.to_vec()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partitions_trucks_are_released_before_their_new_owner_writes_them() {
    let Some(brokers) =
        broker("a_revoked_partitions_trucks_are_released_before_their_new_owner_writes_them")
    else {
        return;
    };
    let topic = unique_topic("handover");
    ensure_topics(&brokers, &[(&topic, 4)])
        .await
        .expect("topic created");
    let all = positions(40, 100);
    let (head, tail) = all.split_at(all.len() / 2);
    let publisher = tansu_publisher(&brokers, &topic);
    publisher.publish(head).await.expect("published");

    let shared = TestSink::default();
    let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let group = unique_topic("group");
    let (stop, shutdown) = shutdown_channel();
    let member = |name: char| {
        let mut config = KafkaSourceConfig::recommended(&brokers, &group, &topic);
        config.dead_letter_topic = None;
        config.max_batch = 50;
        let sink = Member {
            name,
            sink: shared.clone(),
            log: Arc::clone(&log),
        };
        let shutdown = shutdown.clone();
        let stats = Arc::new(IngestStats::new());
        let task = tokio::spawn({
            let stats = Arc::clone(&stats);
            async move { run_kafka_source(&config, sink, stats, shutdown).await }
        });
        (task, stats)
    };
    // A alone writes every truck of the first half; then B joins.
    let (a, _) = member('a');
    wait_for("A through the first half", Duration::from_secs(60), || {
        shared.lock().counts.len() >= head.len()
    })
    .await;
    let (b, b_stats) = member('b');
    wait_for("B given partitions", Duration::from_secs(60), || {
        !b_stats.membership().snapshot().partitions.is_empty()
    })
    .await;
    publisher.publish(tail).await.expect("published");
    wait_for("the whole stream", Duration::from_secs(90), || {
        shared.lock().counts.len() >= all.len()
    })
    .await;
    stop.trigger();
    a.await.expect("task").expect("member a");
    b.await.expect("task").expect("member b");
    assert_eq!(shared.assert_exactly_once_in_order(), all.len());

    // Whenever a truck changed hands, the member that had written it let go
    // of it before the other wrote it.
    let log = log.lock().clone();
    let mut owner: std::collections::HashMap<VehicleKey, char> = Default::default();
    let mut released: std::collections::HashSet<(char, VehicleKey)> = Default::default();
    let mut handovers = 0;
    for step in &log {
        match step {
            Step::Released(name, trucks) => {
                released.extend(trucks.iter().map(|t| (*name, t.clone())));
            }
            Step::Wrote(name, trucks) => {
                for truck in trucks {
                    match owner.insert(truck.clone(), *name) {
                        Some(before) if before != *name => {
                            assert!(
                                released.remove(&(before, truck.clone())),
                                "{} went from {before} to {name} without a release",
                                truck.vehicle_id
                            );
                            handovers += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let releases = log
        .iter()
        .filter(|s| matches!(s, Step::Released(..)))
        .count();
    let by_b = log
        .iter()
        .filter(|s| matches!(s, Step::Wrote('b', _)))
        .count();
    assert!(
        handovers > 0,
        "B took over none of A's trucks ({releases} releases, {by_b} writes by B)"
    );
    eprintln!("{handovers} trucks changed hands");
}
