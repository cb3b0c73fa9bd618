//! The fleet topic: how several nodes learn from each other's trucks. Each
//! node publishes what its engine learned from its own partitions' trucks
//! (batches in the engine's `FleetLearning` format, opaque here) and reads the
//! whole topic, every partition, outside any consumer group, so that every
//! node's traffic model and ETA calibrator see the whole fleet.
//!
//! Why it is shaped this way:
//! - Not a consumer group: every node must read every batch, so the reader
//!   assigns itself all partitions and commits nothing.
//! - It starts `warm_up` back in time (offsets for that timestamp), so a node
//!   that replaces a failed one learns the fleet's current traffic at once
//!   instead of after a window of its own trucks.
//! - A batch carries its sender's instance id (a random id per process) in the
//!   `origin` header; the reader skips its own. A restarted node of the same
//!   name has a new instance id, so it does re-learn what it sent before the
//!   restart (which it lost with its memory).
//! - A batch that cannot be handed over is dropped and counted: traffic
//!   evidence is a stream of estimates, and a lost batch costs little, while a
//!   blocked reader would cost the node its view of the fleet.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::producer::{KafkaPublisher, OutRecord};
use super::settings::ClientTuning;
use crate::shutdown::Shutdown;
use crate::{Error, Result};

/// The default topic of the fleet's shared learning.
pub const DEFAULT_FLEET_TOPIC: &str = "fleet.learning";

/// The header naming the process that sent a batch.
pub const ORIGIN_INSTANCE_HEADER: &str = "origin_instance";

/// How long a metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how a node shares with the others.
#[derive(Debug, Clone)]
pub struct FleetTopicConfig {
    pub brokers: String,
    pub topic: String,
    /// This process's id: its own batches are skipped.
    pub instance: String,
    /// How far back a starting reader begins (the traffic window).
    pub warm_up: Duration,
    /// Extra librdkafka settings (TLS, SASL), applied last.
    pub overrides: Vec<(String, String)>,
}

/// Counts of the fleet topic's traffic, for `/metrics`.
#[derive(Debug, Default)]
pub struct FleetTopicStats {
    pub sent: AtomicU64,
    pub send_failures: AtomicU64,
    pub received: AtomicU64,
    pub own_skipped: AtomicU64,
}

/// Publishes this node's batches.
#[derive(Clone)]
pub struct FleetPublisher {
    publisher: KafkaPublisher,
    instance: String,
    stats: Arc<FleetTopicStats>,
}

impl std::fmt::Debug for FleetPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetPublisher")
            .field("topic", &self.publisher.topic())
            .field("instance", &self.instance)
            .finish()
    }
}

impl FleetPublisher {
    pub fn new(config: &FleetTopicConfig, stats: Arc<FleetTopicStats>) -> Result<FleetPublisher> {
        Ok(FleetPublisher {
            publisher: KafkaPublisher::new(
                &config.brokers,
                &config.topic,
                ClientTuning::Tuned,
                &config.overrides,
            )?,
            instance: config.instance.clone(),
            stats,
        })
    }

    /// Sends one batch; a failure is counted and returned (the caller drops
    /// the batch: the next one carries newer evidence).
    pub async fn send(&self, batch: &[u8]) -> Result<()> {
        let record = OutRecord {
            key: Some(self.instance.as_bytes()),
            payload: batch,
            headers: vec![(ORIGIN_INSTANCE_HEADER, self.instance.as_bytes())],
        };
        let result = self.publisher.send_all(&[record]).await;
        let counter = if result.is_ok() {
            &self.stats.sent
        } else {
            &self.stats.send_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }
}

/// Reads every partition of the fleet topic from `warm_up` ago and hands
/// each batch of another process to `on_batch`, until shutdown.
pub async fn run_fleet_reader(
    config: &FleetTopicConfig,
    stats: Arc<FleetTopicStats>,
    mut on_batch: impl FnMut(&[u8]) + Send,
    mut shutdown: Shutdown,
) -> Result<()> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        // Required by librdkafka for a consumer; never joined (assign, not
        // subscribe) and never committed.
        .set("group.id", format!("fleet-reader-{}", config.instance))
        .set("client.id", format!("tracker-fleet-{}", config.instance))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "latest");
    for (key, value) in &config.overrides {
        client.set(key, value);
    }
    let consumer: StreamConsumer = client.create()?;
    let start = start_offsets(&consumer, config)?;
    consumer.assign(&start)?;
    tracing::info!(
        topic = %config.topic,
        partitions = start.count(),
        warm_up_s = config.warm_up.as_secs(),
        "reading the fleet topic"
    );
    loop {
        let message = tokio::select! {
            () = shutdown.wait() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                // librdkafka reconnects by itself; a bad moment is logged.
                tracing::warn!(error = %err, "fleet topic read failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let own = message.headers().is_some_and(|headers| {
            headers.iter().any(|h| {
                h.key == ORIGIN_INSTANCE_HEADER && h.value == Some(config.instance.as_bytes())
            })
        });
        if own {
            stats.own_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        on_batch(message.payload().unwrap_or_default());
    }
    Ok(())
}

/// Every partition of the topic at the first offset at or after
/// `now - warm_up` (the end, for a partition with nothing that recent, or
/// when the broker cannot look offsets up by time). Blocking librdkafka
/// calls, once at start.
fn start_offsets(
    consumer: &StreamConsumer,
    config: &FleetTopicConfig,
) -> Result<TopicPartitionList> {
    let metadata = consumer.fetch_metadata(Some(&config.topic), REQUEST_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == config.topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::InvalidConfig {
            setting: "fleet-topic",
            reason: format!("topic `{}` has no partitions (not created?)", config.topic),
        });
    }
    let since_ms = chrono::Utc::now().timestamp_millis()
        - i64::try_from(config.warm_up.as_millis()).unwrap_or(i64::MAX);
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted.add_partition_offset(&config.topic, p, Offset::Offset(since_ms))?;
    }
    let found = match consumer.offsets_for_times(wanted, REQUEST_TIMEOUT) {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "cannot look fleet-topic offsets up by time; reading from the end");
            let mut ends = TopicPartitionList::new();
            for &p in &partitions {
                ends.add_partition_offset(&config.topic, p, Offset::End)?;
            }
            return Ok(ends);
        }
    };
    let mut start = TopicPartitionList::new();
    for elem in found.elements() {
        // No message that recent: start at the end.
        let offset = match elem.offset() {
            Offset::Offset(n) if n >= 0 => Offset::Offset(n),
            _ => Offset::End,
        };
        start.add_partition_offset(elem.topic(), elem.partition(), offset)?;
    }
    Ok(start)
}
