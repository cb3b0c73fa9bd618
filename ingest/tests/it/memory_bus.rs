//! The in-process bus: publish returns once the sink made positions durable;
//! per-vehicle order holds across concurrent publishers; replays and retried
//! requests are deduplicated, also after a "restart" against the same sink; sink
//! failures are retried; bad raw messages become dead letters.

use crate::common;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use common::{TestSink, fix};
use ingest::{
    Format, IngestStats, MemoryBusConfig, RejectReason, ValidationRules, memory_bus,
    shutdown_channel,
};

const RULES: ValidationRules = ValidationRules::RECOMMENDED;

fn small() -> MemoryBusConfig {
    MemoryBusConfig {
        n_partitions: 3,
        capacity: 4,
        max_batch: 64,
    }
}

#[tokio::test]
async fn publish_returns_after_the_positions_are_durable() {
    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));

    let start = Utc::now() - TimeDelta::minutes(10);
    publisher
        .publish((0..50).map(|i| fix("truck-1", i, start)).collect())
        .await
        .expect("published");
    assert_eq!(
        sink.lock().written.len(),
        50,
        "durable when publish returns"
    );

    stop.trigger();
    run.await.expect("bus stops");
    assert_eq!(stats.snapshot().accepted, 50);
}

#[tokio::test]
async fn concurrent_publishers_keep_per_vehicle_order_and_duplicates_are_dropped() {
    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));
    let start = Utc::now() - TimeDelta::hours(1);

    // Ten vehicles, each published by its own task in chunks of 7, and every
    // chunk sent twice (a client retrying after a timeout).
    let mut tasks = Vec::new();
    for v in 0..10 {
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let vehicle = format!("v{v}");
            let all: Vec<_> = (0..200).map(|i| fix(&vehicle, i, start)).collect();
            for chunk in all.chunks(7) {
                publisher.publish(chunk.to_vec()).await.expect("published");
                publisher
                    .publish(chunk.to_vec())
                    .await
                    .expect("published again");
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher task");
    }
    stop.trigger();
    run.await.expect("bus stops");

    assert_eq!(sink.assert_exactly_once_in_order(), 2000);
    let snap = stats.snapshot();
    assert_eq!(snap.accepted, 2000);
    // A replayed chunk's last position equals the vehicle's newest time (a
    // duplicate); the rest are older than it (counted as out of order).
    assert_eq!(snap.duplicates + snap.out_of_order, 2000);
    assert_eq!(snap.duplicates, 10 * 29);
    assert_eq!(snap.received, 4000);
}

#[tokio::test]
async fn a_restarted_bus_asks_the_sink_and_changes_nothing_on_replay() {
    let sink = TestSink::default();
    let start = Utc::now() - TimeDelta::hours(1);
    let positions: Vec<_> = (0..100).map(|i| fix("truck-9", i, start)).collect();

    for round in 0..2 {
        let stats = Arc::new(IngestStats::new());
        let (publisher, consumer) = memory_bus(small()).expect("valid config");
        let (stop, shutdown) = shutdown_channel();
        let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));
        publisher
            .publish(positions.clone())
            .await
            .expect("published");
        stop.trigger();
        run.await.expect("bus stops");
        let snap = stats.snapshot();
        if round == 0 {
            assert_eq!(snap.accepted, 100);
        } else {
            assert_eq!(
                (snap.accepted, snap.duplicates + snap.out_of_order),
                (0, 100)
            );
        }
    }
    assert_eq!(sink.assert_exactly_once_in_order(), 100);
}

#[tokio::test]
async fn sink_failures_are_retried_until_durable() {
    let sink = TestSink::default();
    sink.lock().fail_next = 3;
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));
    let start = Utc::now() - TimeDelta::minutes(5);
    publisher
        .publish((0..10).map(|i| fix("t", i, start)).collect())
        .await
        .expect("published despite failures");
    stop.trigger();
    run.await.expect("bus stops");
    assert_eq!(sink.assert_exactly_once_in_order(), 10);
    assert_eq!(stats.snapshot().sink_retries, 3);
}

#[tokio::test]
async fn raw_vendor_messages_are_decoded_and_bad_ones_dead_lettered() {
    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));

    let time = (Utc::now() - TimeDelta::seconds(30)).to_rfc3339();
    let good = format!(
        r#"{{"dateTime":"{time}","latitude":43.6,"longitude":-79.4,"speed":36,"device":{{"id":"b1"}}}}"#
    );
    let bad =
        format!(r#"{{"dateTime":"{time}","latitude":0,"longitude":0,"device":{{"id":"b1"}}}}"#);
    publisher
        .publish_raw(
            Format::Geotab,
            Some(b"ten_test/b1".to_vec()),
            good.into_bytes(),
        )
        .await
        .expect("published");
    publisher
        .publish_raw(
            Format::Geotab,
            Some(b"ten_test/b1".to_vec()),
            bad.clone().into_bytes(),
        )
        .await
        .expect("published");
    stop.trigger();
    run.await.expect("bus stops");

    let rec = sink.lock();
    assert_eq!(rec.written.len(), 1);
    assert!((rec.written[0].speed_mps.expect("speed") - 10.0).abs() < 1e-9);
    assert_eq!(rec.dead.len(), 1);
    assert_eq!(rec.dead[0].rejection.reason, RejectReason::NullIsland);
    assert_eq!(rec.dead[0].payload, bad.into_bytes(), "original bytes kept");
    assert_eq!(stats.snapshot().rejected_for(RejectReason::NullIsland), 1);
}

#[tokio::test]
async fn an_oversized_raw_message_is_dead_lettered_with_its_size_and_first_bytes() {
    // Issue 17: a 5 MiB message's dead letter carried all 5 MiB, which the
    // dead-letter topic refused (MessageSizeTooLarge) forever.
    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));
    let huge = vec![b'{'; 5 * 1024 * 1024];
    publisher
        .publish_raw(Format::Canonical, Some(b"t".to_vec()), huge.clone())
        .await
        .expect("published");
    let start = Utc::now() - TimeDelta::minutes(5);
    publisher
        .publish(vec![fix("t", 0, start)])
        .await
        .expect("the next position goes through");
    stop.trigger();
    run.await.expect("bus stops");

    let rec = sink.lock();
    assert_eq!(rec.written.len(), 1);
    assert_eq!(rec.dead.len(), 1);
    let letter = &rec.dead[0];
    assert_eq!(letter.rejection.reason, RejectReason::TooLarge);
    assert_eq!(letter.size_bytes, huge.len() as u64);
    assert_eq!(letter.payload, huge[..ingest::DEAD_LETTER_PAYLOAD_BYTES]);
    assert_eq!(letter.origin, "memory");
}

#[tokio::test]
async fn unknown_vehicles_are_kept_and_counted() {
    let sink = TestSink::default();
    sink.lock().known = Some(vec!["known".into()]);
    let stats = Arc::new(IngestStats::new());
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn(consumer.run(sink.clone(), stats.clone(), RULES, shutdown));
    let start = Utc::now() - TimeDelta::minutes(5);
    publisher
        .publish(vec![fix("known", 0, start), fix("stranger", 0, start)])
        .await
        .expect("published");
    stop.trigger();
    run.await.expect("bus stops");
    assert_eq!(sink.lock().written.len(), 2);
    assert_eq!(stats.snapshot().unknown_vehicles, 1);
}

#[tokio::test]
async fn publishing_to_a_stopped_bus_is_an_error() {
    let (publisher, consumer) = memory_bus(small()).expect("valid config");
    drop(consumer);
    let err = publisher.publish(vec![fix("t", 0, Utc::now())]).await;
    assert!(matches!(err, Err(ingest::Error::BusClosed)));
}
