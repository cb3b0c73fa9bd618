//! No message can stop the stream (issue 17), against a real Kafka-compatible
//! broker (tansu): a 5 MiB message ahead of ordinary positions is fetched,
//! dead-lettered with its coordinates, size and first bytes, and the positions
//! behind it are applied within seconds; when the dead-letter topic will not
//! take a dead letter, it lands in the sink's durable table after the publish
//! deadline and the partition's committed offset moves past it.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::kafka::{broker, unique_topic};
use common::{TestSink, fix};
use ingest::kafka::{
    ClientTuning, KafkaPublisher, KafkaSourceConfig, OutRecord, ensure_topics, run_kafka_source,
};
use ingest::{
    DEAD_LETTER_PAYLOAD_BYTES, IngestStats, KafkaCoordinates, RejectReason, encode_canonical,
    shutdown_channel,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A message far over the 64 KiB validation limit (and over librdkafka's
/// default 1 MB fetch and produce sizes).
const HUGE_BYTES: usize = 5 * 1024 * 1024;

/// Waits until `cond` holds, failing the test after `limit`; returns the wait.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// A producer that may send the huge message (one record per batch, as tansu
/// wants of test producers, see `common::kafka`).
fn big_publisher(brokers: &str, topic: &str) -> KafkaPublisher {
    KafkaPublisher::new(
        brokers,
        topic,
        ClientTuning::Tuned,
        &[
            ("batch.num.messages".into(), "1".into()),
            ("message.max.bytes".into(), "16777216".into()),
            ("compression.type".into(), "none".into()),
        ],
    )
    .expect("producer")
}

/// Publishes the huge message (a JSON object padded with spaces, keyed like a
/// position) and then `n` ordinary positions of vehicle `truck-1`.
async fn huge_then_ordinary(brokers: &str, topic: &str, n: i64) -> Vec<u8> {
    let mut huge = br#"{"vehicle_id":"truck-1","note":""#.to_vec();
    huge.resize(HUGE_BYTES - 2, b'x');
    huge.extend_from_slice(br#""}"#);
    let publisher = big_publisher(brokers, topic);
    publisher
        .send_all(&[OutRecord {
            key: Some(b"truck-1"),
            payload: &huge,
            headers: Vec::new(),
        }])
        .await
        .expect("the huge message is published");
    let start = Utc::now() - TimeDelta::minutes(10);
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| encode_canonical(&fix("truck-1", i, start)))
        .collect();
    let records: Vec<OutRecord<'_>> = payloads
        .iter()
        .map(|payload| OutRecord {
            key: Some(b"truck-1"),
            payload,
            headers: Vec::new(),
        })
        .collect();
    publisher.send_all(&records).await.expect("published");
    huge
}

fn header(message: &impl Message, name: &str) -> Option<String> {
    message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The committed offset of partition 0 of `topic` for `group`.
fn committed(brokers: &str, group: &str, topic: &str) -> Option<i64> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut asked = TopicPartitionList::new();
    asked.add_partition(topic, 0);
    let offsets = consumer
        .committed_offsets(asked, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .find_partition(topic, 0)
        .and_then(|p| match p.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mib_message_is_dead_lettered_and_the_positions_behind_it_flow() {
    let Some(brokers) = broker("a_5_mib_message_is_dead_lettered_and_the_positions_behind_it_flow")
    else {
        return;
    };
    let topic = unique_topic("huge");
    let dlq = format!("{topic}.dlq");
    ensure_topics(&brokers, &[(&topic, 1), (&dlq, 1)])
        .await
        .expect("topics created");
    let huge = huge_then_ordinary(&brokers, &topic, 20).await;

    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let mut config = KafkaSourceConfig::recommended(&brokers, &unique_topic("group"), &topic);
    config.dead_letter_topic = Some(dlq.clone());
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats) = (sink.clone(), stats.clone());
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    let took = wait_for(
        "the 20 positions behind the 5 MiB message",
        Duration::from_secs(10),
        || sink.lock().written.len() == 20,
    )
    .await;
    eprintln!("20 positions behind a 5 MiB message applied in {took:?}");
    wait_for("the dead letter", Duration::from_secs(10), || {
        stats.snapshot().dead_lettered == 1
    })
    .await;
    stop.trigger();
    run.await.expect("task").expect("source ran");
    assert_eq!(stats.snapshot().rejected_for(RejectReason::TooLarge), 1);
    assert!(
        sink.lock().dead.is_empty(),
        "the topic took the dead letter"
    );

    // In the dead-letter topic: where it was, how big, why, and its first KiB.
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique_topic("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    reader.subscribe(&[&dlq]).expect("subscribed");
    let letter = tokio::time::timeout(Duration::from_secs(20), reader.recv())
        .await
        .expect("dead letter arrives")
        .expect("readable");
    assert_eq!(header(&letter, "reason").as_deref(), Some("too_large"));
    assert_eq!(header(&letter, "size_bytes"), Some(HUGE_BYTES.to_string()));
    assert_eq!(header(&letter, "origin"), Some(format!("{topic}/0@0")));
    assert_eq!(letter.key(), Some(&b"truck-1"[..]));
    assert_eq!(letter.payload(), Some(&huge[..DEAD_LETTER_PAYLOAD_BYTES]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_the_topic_refuses_lands_in_the_table_and_offsets_move_on() {
    let Some(brokers) =
        broker("a_dead_letter_the_topic_refuses_lands_in_the_table_and_offsets_move_on")
    else {
        return;
    };
    let topic = unique_topic("refused");
    ensure_topics(&brokers, &[(&topic, 1)])
        .await
        .expect("topic created");
    huge_then_ordinary(&brokers, &topic, 5).await;

    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let group = unique_topic("group");
    let mut config = KafkaSourceConfig::recommended(&brokers, &group, &topic);
    // A dead-letter producer that refuses every dead letter as too large (the
    // MessageSizeTooLarge of the observed outage; 1000 bytes is librdkafka's
    // smallest limit, and the dead letter carries 1 KiB of payload).
    config.dead_letter_topic = Some(format!("{topic}.dlq"));
    config.dead_letter_overrides = vec![("message.max.bytes".into(), "1000".into())];
    config.dead_letter_publish_timeout = Duration::from_secs(2);
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats) = (sink.clone(), stats.clone());
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    wait_for("5 positions", Duration::from_secs(10), || {
        sink.lock().written.len() == 5
    })
    .await;
    let took = wait_for(
        "the dead letter in the table",
        Duration::from_secs(10),
        || !sink.lock().dead.is_empty(),
    )
    .await;
    eprintln!("dead letter in the table {took:?} after the positions");
    // Offsets are stored after the dead letter is durable and auto-committed
    // within a second; the final commit on shutdown covers the rest.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.trigger();
    run.await.expect("task").expect("source ran");

    let dead = sink.lock().dead.clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(letter.rejection.reason, RejectReason::TooLarge);
    assert_eq!(letter.size_bytes, HUGE_BYTES as u64);
    assert_eq!(letter.payload.len(), DEAD_LETTER_PAYLOAD_BYTES);
    assert_eq!(
        letter.kafka,
        Some(KafkaCoordinates {
            topic: topic.clone(),
            partition: 0,
            offset: 0,
        })
    );
    assert!(stats.snapshot().dead_letter_retries >= 1);
    assert_eq!(committed(&brokers, &group, &topic), Some(6));
}
