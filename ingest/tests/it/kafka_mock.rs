//! The Kafka source against librdkafka's mock cluster (in-process, no broker to
//! install): a broker going down and coming back, injected fetch and commit
//! errors, and a consumer killed mid-stream while the producer batches many
//! messages per record batch (the case tansu 0.6.0 cannot serve; see
//! `common/kafka.rs`). In every case no position is lost or written twice.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{TestSink, fix};
use engine::Position;
use ingest::kafka::{ClientTuning, KafkaPublisher, KafkaSourceConfig, run_kafka_source};
use ingest::{IngestStats, shutdown_channel};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const TOPIC: &str = "positions";

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn positions(n_vehicles: usize, from: i64, to: i64) -> Vec<Position> {
    let start = Utc::now() - TimeDelta::hours(3);
    (from..to)
        .flat_map(|i| (0..n_vehicles).map(move |v| fix(&format!("mock-{v}"), i, start)))
        .collect()
}

fn source_config(brokers: &str, group: &str) -> KafkaSourceConfig {
    let mut config = KafkaSourceConfig::recommended(brokers, group, TOPIC);
    config.dead_letter_topic = None;
    config.max_batch = 200;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_and_back_loses_nothing() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic(TOPIC, 3, 3).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let publisher =
        KafkaPublisher::new(&brokers, TOPIC, ClientTuning::Tuned, &[]).expect("producer");
    let (head, tail) = (positions(12, 0, 200), positions(12, 200, 400));
    publisher.publish(&head).await.expect("published");

    let sink = TestSink::default();
    let stats = Arc::new(IngestStats::new());
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats, config) = (sink.clone(), stats.clone(), source_config(&brokers, "down"));
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    wait_for("some progress", Duration::from_secs(30), || {
        sink.lock().written.len() > 500
    })
    .await;

    cluster.broker_down(1).expect("broker 1 down");
    let publish_tail = tokio::spawn({
        let publisher = publisher.clone();
        async move { publisher.publish(&tail).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.broker_up(1).expect("broker 1 up");
    publish_tail
        .await
        .expect("task")
        .expect("tail published once the broker is back");

    wait_for("the whole stream", Duration::from_secs(60), || {
        sink.lock().counts.len() >= 4800
    })
    .await;
    stop.trigger();
    run.await.expect("task").expect("source");
    assert_eq!(sink.assert_exactly_once_in_order(), 4800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_fetch_and_commit_errors_are_survived() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let publisher =
        KafkaPublisher::new(&brokers, TOPIC, ClientTuning::Tuned, &[]).expect("producer");
    let all = positions(8, 0, 250);
    publisher.publish(&all).await.expect("published");

    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let sink = TestSink::default();
    // And the sink itself fails a few times.
    sink.lock().fail_next = 2;
    let stats = Arc::new(IngestStats::new());
    let (stop, shutdown) = shutdown_channel();
    let run = tokio::spawn({
        let (sink, stats, config) = (
            sink.clone(),
            stats.clone(),
            source_config(&brokers, "errors"),
        );
        async move { run_kafka_source(&config, sink, stats, shutdown).await }
    });
    wait_for("the whole stream", Duration::from_secs(60), || {
        sink.lock().counts.len() >= all.len()
    })
    .await;
    stop.trigger();
    run.await.expect("task").expect("source");
    assert_eq!(sink.assert_exactly_once_in_order(), all.len());
    assert_eq!(stats.snapshot().sink_retries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_batch_resumes_without_loss_or_double_counting() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    // Tuned producer: thousands of messages per record batch, so committed
    // offsets fall inside batches.
    let publisher =
        KafkaPublisher::new(&brokers, TOPIC, ClientTuning::Tuned, &[]).expect("producer");
    let all = positions(30, 0, 200);
    publisher.publish(&all).await.expect("published");

    let sink = TestSink::default();
    sink.lock().write_delay = Duration::from_millis(15);
    for round in 0..3 {
        let stats = Arc::new(IngestStats::new());
        let task = tokio::spawn({
            let (sink, stats, config) = (
                sink.clone(),
                stats.clone(),
                source_config(&brokers, "killed"),
            );
            async move {
                let (_stop, shutdown) = shutdown_channel();
                run_kafka_source(&config, sink, stats, shutdown).await
            }
        });
        let target = all.len() * (round + 1) / 3;
        wait_for("progress", Duration::from_secs(60), || {
            sink.lock().counts.len() >= target
        })
        .await;
        task.abort();
        let _ = task.await;
    }
    assert_eq!(sink.assert_exactly_once_in_order(), all.len());
}
