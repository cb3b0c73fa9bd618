//! The Kafka source: a consumer-group member that reads the positions topic(s),
//! decodes and validates each message, writes batches to the sink, dead-letters
//! bad messages, and stores offsets only after both are durable.
//!
//! Why the loop is shaped this way:
//! - Fetch, process and store happen in one task, in sequence, with one batch
//!   in flight: the sink takes batch N+1 ([`PositionSink::take`], its engine)
//!   while a spawned task makes batch N durable ([`PositionSink::flush`], its
//!   store), and N's offsets are stored once that flush returns, before N+1's
//!   flush starts. Rebalance callbacks only run inside `recv()`, so when a
//!   revoke arrives every processed message has its offset stored except the
//!   batch in flight's; the callback commits those offsets synchronously before
//!   the partitions move ("flush and commit on revoke"), and the sink's release
//!   flushes first, so the batch in flight is durable before the new owner
//!   asks the sink where each vehicle stands: it reads that batch again and
//!   finds nothing new in it. Its offsets on revoked partitions are dropped.
//! - Messages fetched but not yet processed when their partition is revoked are
//!   dropped: the new owner reads them again from the committed offset. Keeping
//!   them would let two nodes work on one vehicle at once.
//! - Offsets are stored (`enable.auto.offset.store=false`) after the sink's
//!   flush and the dead-letter acks; librdkafka's auto-commit then commits only stored
//!   offsets. A crash replays at most the last uncommitted second of messages,
//!   and the sink-seeded dedupe makes that replay change nothing.
//! - Handover: the vehicles each partition brought are remembered (from the
//!   dedupe table's seeding). On revoke, after the commit, the callback hands
//!   the revoked partitions' vehicles to [`PositionSink::release`] and waits
//!   for it (at most [`RELEASE_TIMEOUT`]), so the sink's state of those
//!   vehicles is durable before the partitions move and their new owner
//!   reads it. Waiting needs the multi-threaded tokio runtime (the callback
//!   runs inside `recv()` on a worker thread); elsewhere the release is only
//!   logged as skipped, and the new owner starts from the sink's last
//!   periodic save.
//! - Broker outages are librdkafka's business (it reconnects); the loop logs
//!   consumer errors and carries on. It never exits on bad input.
//! - Consumer lag comes from librdkafka's own statistics (every
//!   [`STATS_INTERVAL_MS`]): its per-partition `consumer_lag` (the high
//!   watermark less the consumer's position) goes to the gauge
//!   `tracker_kafka_consumer_lag{topic,partition}` for the partitions this
//!   member is assigned.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::membership::PeerWatcher;
use super::producer::{KafkaPublisher, OutRecord};
use super::settings::{ClientTuning, consumer_config};
use crate::pipeline::{Backoff, Dedupe, Hand, Interrupted, deliver, deliver_dead_letters};
use crate::shutdown::Shutdown;
use crate::sink::{DeadLetter, KafkaCoordinates, PositionSink, SinkError};
use crate::stats::IngestStats;
use crate::{Error, Result};
use engine::{Envelope, FORMAT_HEADER, Format, TenantId, VehicleKey, decode, resolve_format};
use engine::{RejectReason, Rejection, ValidationRules};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::runtime::RuntimeFlavor;

/// The default dead-letter topic.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "positions.dlq";

/// Header names of a dead letter (besides `format`).
pub const REASON_HEADER: &str = "reason";
pub const DETAIL_HEADER: &str = "reason_detail";
pub const ORIGIN_HEADER: &str = "origin";
/// The size of the original message in bytes (decimal); the payload of an
/// oversized one is only its first bytes.
pub const SIZE_HEADER: &str = "size_bytes";

/// How long a dead letter the topic keeps refusing is retried before it goes
/// to the sink's durable table instead.
pub const DEFAULT_DEAD_LETTER_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a revoke waits for the sink to release the partitions' vehicles.
pub(crate) const RELEASE_TIMEOUT: Duration = Duration::from_secs(15);

/// The sink's `release`, callable from the rebalance callback.
type Release = Box<
    dyn Fn(Vec<VehicleKey>) -> BoxFuture<'static, std::result::Result<(), SinkError>> + Send + Sync,
>;

/// The one try a dead letter gets while the topic is known to refuse them.
const DEAD_LETTER_TOPIC_DOWN_TRY: Duration = Duration::from_secs(1);

/// Settings of the Kafka source. No `Default`: start from
/// [`KafkaSourceConfig::recommended`].
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// Consumer group; nodes with the same group share the partitions.
    pub group_id: String,
    /// Topics to read and the format of each (a `format` header overrides it).
    pub topics: Vec<(String, Format)>,
    /// The tenant these topics are bound to (`kafka://…/TOPIC?tenant=ID`): every
    /// message is that tenant's, and one naming another is refused. Unbound, a
    /// message names its tenant (`tenant_id`, or a `TENANT/VEHICLE` key) or is
    /// dead-lettered `no_tenant`.
    pub tenant: Option<TenantId>,
    /// Where rejected messages go; `None` hands them to the sink instead.
    pub dead_letter_topic: Option<String>,
    /// How long publishing a dead letter is retried before it is handed to the
    /// sink's durable table instead (its offset waits for one or the other).
    pub dead_letter_publish_timeout: Duration,
    /// Extra librdkafka settings of the dead-letter producer, applied last.
    pub dead_letter_overrides: Vec<(String, String)>,
    /// Most messages processed (and written to the sink) at once.
    pub max_batch: usize,
    /// Longest wait to fill a batch after its first message arrived.
    pub max_batch_wait: Duration,
    pub tuning: ClientTuning,
    /// Extra librdkafka settings, applied last.
    pub overrides: Vec<(String, String)>,
    pub rules: ValidationRules,
}

impl KafkaSourceConfig {
    /// Our measured defaults for one canonical topic: dead letters to
    /// `positions.dlq`, batches of up to 5000 messages or 5 ms.
    pub fn recommended(brokers: &str, group_id: &str, topic: &str) -> KafkaSourceConfig {
        KafkaSourceConfig {
            brokers: brokers.to_owned(),
            group_id: group_id.to_owned(),
            topics: vec![(topic.to_owned(), Format::Canonical)],
            tenant: None,
            dead_letter_topic: Some(DEFAULT_DEAD_LETTER_TOPIC.to_owned()),
            dead_letter_publish_timeout: DEFAULT_DEAD_LETTER_PUBLISH_TIMEOUT,
            dead_letter_overrides: Vec::new(),
            max_batch: 5000,
            max_batch_wait: Duration::from_millis(5),
            tuning: ClientTuning::Tuned,
            overrides: Vec::new(),
            rules: ValidationRules::RECOMMENDED,
        }
    }

    /// Names the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting, reason: &str| {
            Err(Error::InvalidConfig {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.brokers.trim().is_empty() {
            return bad("brokers", "no broker address");
        }
        if self.group_id.trim().is_empty() {
            return bad("group_id", "must not be empty");
        }
        if self.topics.is_empty() {
            return bad("topics", "at least one topic is needed");
        }
        if self.max_batch == 0 {
            return bad("max_batch", "must be positive");
        }
        Ok(self.rules.validate()?)
    }
}

/// State shared with librdkafka's rebalance callback.
struct IngestContext {
    /// Offsets stored (processed + 1) and not yet known to be committed.
    stored: Mutex<HashMap<(String, i32), i64>>,
    /// Partitions revoked since the loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    revoke_pending: AtomicBool,
    /// The vehicles each partition brought (written positions of), handed
    /// to `release` when it is revoked.
    vehicles: Mutex<HashMap<(String, i32), Vec<VehicleKey>>>,
    release: Release,
    stats: Arc<IngestStats>,
}

impl IngestContext {
    /// Hands the revoked partitions' vehicles to the sink and waits for it
    /// (see the module docs).
    fn release_revoked(&self, revoked: &[(String, i32)]) {
        let vehicles: Vec<VehicleKey> = {
            let mut by_partition = lock(&self.vehicles);
            revoked
                .iter()
                .filter_map(|tp| by_partition.remove(tp))
                .flatten()
                .collect()
        };
        if vehicles.is_empty() {
            return;
        }
        let count = vehicles.len();
        let handle = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => handle,
            _ => {
                tracing::warn!(
                    vehicles = count,
                    "revoked vehicles not released: the revoke ran outside a multi-threaded runtime"
                );
                return;
            }
        };
        let started = Instant::now();
        let release = (self.release)(vehicles);
        let outcome = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(RELEASE_TIMEOUT, release))
        });
        let ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(Ok(())) => tracing::info!(vehicles = count, ms, "released on revoke"),
            Ok(Err(err)) => {
                tracing::warn!(vehicles = count, error = %err, "releasing on revoke failed");
            }
            Err(_) => tracing::warn!(
                vehicles = count,
                timeout_s = RELEASE_TIMEOUT.as_secs(),
                "releasing on revoke timed out"
            ),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain
    // inserts and removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How often librdkafka reports its statistics (consumer lag), milliseconds.
const STATS_INTERVAL_MS: u32 = 5_000;

impl ClientContext for IngestContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // -1 is librdkafka's "unassigned" pseudo-partition; a lag of
                // -1 means not known (a partition this member does not own).
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                self.stats
                    .membership()
                    .lag(topic, *partition, p.consumer_lag);
                metrics::gauge!(
                    "tracker_kafka_consumer_lag",
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(p.consumer_lag as f64);
            }
        }
    }
}

/// The (topic, partition) pairs of a list.
fn pairs(list: &TopicPartitionList) -> Vec<(String, i32)> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ConsumerContext for IngestContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned = pairs(partitions);
            tracing::info!(partitions = ?assigned, "partitions assigned");
            self.stats.membership().assigned(assigned);
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        self.stats.rebalance();
        self.stats.membership().revoked(&pairs(partitions));
        let mut commit = TopicPartitionList::new();
        {
            let mut stored = lock(&self.stored);
            let mut revoked = lock(&self.revoked);
            for elem in partitions.elements() {
                let tp = (elem.topic().to_owned(), elem.partition());
                if let Some(offset) = stored.remove(&tp)
                    && let Err(err) =
                        commit.add_partition_offset(&tp.0, tp.1, Offset::Offset(offset))
                {
                    tracing::warn!(error = %err, "cannot list offset to commit on revoke");
                }
                revoked.push(tp);
            }
        }
        self.revoke_pending.store(true, Ordering::Release);
        if commit.count() > 0 {
            match consumer.commit(&commit, CommitMode::Sync) {
                Ok(()) => tracing::info!(partitions = commit.count(), "committed on revoke"),
                // librdkafka's auto-commit on revoke is the fallback.
                Err(err) => tracing::warn!(error = %err, "commit on revoke failed"),
            }
        }
        self.release_revoked(&pairs(partitions));
    }
}

/// One fetched, decoded message waiting for the sink.
struct Batch {
    positions: Vec<engine::Position>,
    tags: Vec<u32>,
    letters: Vec<(DeadLetter, u32)>,
    /// Highest offset seen per partition slot.
    offsets: HashMap<u32, i64>,
    received: u64,
    /// Time spent decoding and validating the batch's messages.
    decoding: Duration,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            positions: Vec::new(),
            tags: Vec::new(),
            letters: Vec::new(),
            offsets: HashMap::new(),
            received: 0,
            decoding: Duration::ZERO,
        }
    }

    fn len(&self) -> usize {
        self.positions.len() + self.letters.len()
    }

    /// Drops everything from the given partition slots; returns how many.
    fn discard(&mut self, slots: &[u32]) -> u64 {
        let before = self.len();
        let mut keep = self.tags.iter().map(|t| !slots.contains(t));
        self.positions.retain(|_| keep.next().unwrap_or(true));
        self.tags.retain(|t| !slots.contains(t));
        self.letters.retain(|(_, t)| !slots.contains(t));
        self.offsets.retain(|t, _| !slots.contains(t));
        (before - self.len()) as u64
    }
}

/// Runs the Kafka source until shutdown. Returns an error only for
/// configuration or client-creation failures; everything at run time is logged,
/// counted and retried.
pub async fn run_kafka_source<S: PositionSink>(
    config: &KafkaSourceConfig,
    sink: S,
    stats: Arc<IngestStats>,
    shutdown: Shutdown,
) -> Result<()> {
    config.validate()?;
    let sink = Arc::new(sink);
    let releasing = Arc::clone(&sink);
    let context = IngestContext {
        stored: Mutex::new(HashMap::new()),
        revoked: Mutex::new(Vec::new()),
        revoke_pending: AtomicBool::new(false),
        vehicles: Mutex::new(HashMap::new()),
        release: Box::new(move |vehicles: Vec<VehicleKey>| {
            let sink = Arc::clone(&releasing);
            async move { sink.release(&vehicles).await }.boxed()
        }),
        stats: stats.clone(),
    };
    let mut client = consumer_config(
        &config.brokers,
        &config.group_id,
        config.tuning,
        &config.overrides,
    );
    if client.get("statistics.interval.ms").is_none() {
        client.set("statistics.interval.ms", STATS_INTERVAL_MS.to_string());
    }
    let client_id = client.get("client.id").unwrap_or_default().to_owned();
    let consumer: StreamConsumer<IngestContext> = client.create_with_context(context)?;
    let topics: Vec<&str> = config.topics.iter().map(|(t, _)| t.as_str()).collect();
    consumer.subscribe(&topics)?;
    let dead_letters = match &config.dead_letter_topic {
        Some(topic) => {
            // librdkafka gives up on a message after this long (0 would mean
            // never), so a send cannot outlive the publish deadline by much.
            let give_up_ms = config.dead_letter_publish_timeout.as_millis().max(1);
            let mut overrides = vec![("message.timeout.ms".to_owned(), give_up_ms.to_string())];
            overrides.extend(config.dead_letter_overrides.iter().cloned());
            Some(KafkaPublisher::new(
                &config.brokers,
                topic,
                config.tuning,
                &overrides,
            )?)
        }
        None => None,
    };
    // Started last, so that no early return leaves its thread running.
    stats.membership().joined(&config.group_id, &client_id);
    let peers = PeerWatcher::start(&client, config.group_id.clone(), client_id, stats.clone())?;
    let mut source = Source {
        config,
        consumer: &consumer,
        sink,
        stats,
        dead_letters,
        dead_letter_topic_down: false,
        dedupe: Dedupe::keeping_seeded(),
        slots: HashMap::new(),
        slot_names: Vec::new(),
        shutdown,
        in_flight: None,
        revoked_in_flight: Vec::new(),
    };
    source.run().await;
    // The last batch taken: its offsets too, when its flush got through.
    if source.finish_flight().await.is_err() {
        tracing::info!("the last batch was not made durable before shutdown; it is read again");
    }
    source.commit_stored();
    peers.stop();
    source.stats.membership().left();
    Ok(())
}

struct Source<'c, S> {
    config: &'c KafkaSourceConfig,
    consumer: &'c StreamConsumer<IngestContext>,
    sink: Arc<S>,
    stats: Arc<IngestStats>,
    dead_letters: Option<KafkaPublisher>,
    /// The last dead letters fell back to the sink: the topic is not taking
    /// them, so the next ones get one short try instead of the full deadline
    /// (a stream with many bad messages must not crawl at one batch per
    /// deadline while the topic is down).
    dead_letter_topic_down: bool,
    dedupe: Dedupe,
    /// (topic, partition) interned as small tags for the batch and the dedupe table.
    slots: HashMap<(String, i32), u32>,
    slot_names: Vec<(String, i32)>,
    shutdown: Shutdown,
    /// The batch the sink took whose flush is still running (at most one).
    in_flight: Option<InFlight>,
    /// Partition slots revoked while a batch was in flight: its offsets
    /// there are not this node's to store any more.
    revoked_in_flight: Vec<u32>,
}

/// A batch taken by the sink and being made durable.
struct InFlight {
    flushing: tokio::task::JoinHandle<std::result::Result<(), Interrupted>>,
    offsets: HashMap<u32, i64>,
}

impl<S: PositionSink> Source<'_, S> {
    async fn run(&mut self) {
        let mut last_report = (Instant::now(), 0u64);
        loop {
            let mut batch = Batch::new();
            let first = tokio::select! {
                biased;
                () = self.shutdown.wait() => return,
                message = self.consumer.recv() => message,
            };
            self.apply_revocations(&mut batch);
            self.take(first, &mut batch);
            let deadline = tokio::time::Instant::now() + self.config.max_batch_wait;
            while batch.len() < self.config.max_batch {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(message) => {
                        self.apply_revocations(&mut batch);
                        self.take(message, &mut batch);
                    }
                    Err(_elapsed) => break,
                }
            }
            if self.process(batch).await.is_err() {
                return;
            }
            last_report = self.report_rate(last_report);
        }
    }

    /// Logs the accepted rate every ten seconds, so throughput is visible.
    fn report_rate(&self, (at, accepted): (Instant, u64)) -> (Instant, u64) {
        let elapsed = at.elapsed();
        if elapsed < Duration::from_secs(10) {
            return (at, accepted);
        }
        let snap = self.stats.snapshot();
        let rate = (snap.accepted - accepted) as f64 / elapsed.as_secs_f64();
        tracing::info!(
            positions_per_s = rate.round(),
            accepted = snap.accepted,
            rejected = snap.rejected_total(),
            "kafka ingest"
        );
        (Instant::now(), snap.accepted)
    }

    fn slot(&mut self, topic: &str, partition: i32) -> u32 {
        if let Some(slot) = self.slots.get(&(topic.to_owned(), partition)) {
            return *slot;
        }
        let slot = self.slot_names.len() as u32;
        self.slot_names.push((topic.to_owned(), partition));
        self.slots.insert((topic.to_owned(), partition), slot);
        slot
    }

    /// Drops work of partitions revoked since the last look, and forgets their
    /// vehicles' dedupe state (another node may advance them meanwhile).
    fn apply_revocations(&mut self, batch: &mut Batch) {
        let context = self.consumer.context();
        if !context.revoke_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let revoked: Vec<(String, i32)> = std::mem::take(&mut *lock(&context.revoked));
        let slots: Vec<u32> = revoked
            .iter()
            .filter_map(|tp| self.slots.get(tp).copied())
            .collect();
        let discarded = batch.discard(&slots);
        self.stats.discarded_on_revoke(discarded);
        if self.in_flight.is_some() {
            self.revoked_in_flight.extend(&slots);
        }
        self.dedupe.forget_tags(&slots);
        tracing::info!(partitions = revoked.len(), discarded, "partitions revoked");
    }

    /// Decodes one fetched message into the batch.
    fn take(
        &mut self,
        message: rdkafka::error::KafkaResult<BorrowedMessage<'_>>,
        batch: &mut Batch,
    ) {
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                // Transport errors, broker restarts: librdkafka retries itself.
                tracing::warn!(error = %err, "kafka consumer error");
                return;
            }
        };
        batch.received += 1;
        self.stats.received(1);
        let slot = self.slot(message.topic(), message.partition());
        let offset = message.offset();
        let entry = batch.offsets.entry(slot).or_insert(offset);
        *entry = (*entry).max(offset);

        let topic_format = self
            .config
            .topics
            .iter()
            .find(|(t, _)| t == message.topic())
            .map_or(Format::Canonical, |(_, f)| *f);
        let header = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == FORMAT_HEADER)
                .and_then(|h| h.value)
        });
        let key = message.key().and_then(|k| std::str::from_utf8(k).ok());
        let payload = message.payload().unwrap_or_default();
        let format = resolve_format(header, topic_format);
        let resolved = format.as_ref().ok().copied();
        let decode_started = Instant::now();
        let outcome = match (format, message.payload()) {
            (Err(rejection), _) => Err(rejection),
            (Ok(_), None) => Err(Rejection::new(
                RejectReason::Malformed,
                "empty message (tombstone)",
            )),
            (Ok(format), Some(payload)) => {
                let envelope = Envelope {
                    key,
                    tenant: self.config.tenant.as_ref(),
                };
                decode(format, payload, envelope, Utc::now(), &self.config.rules)
            }
        };
        batch.decoding += decode_started.elapsed();
        match outcome {
            Ok(position) => {
                batch.positions.push(position);
                batch.tags.push(slot);
            }
            Err(rejection) => {
                self.stats.rejected(rejection.reason);
                // An oversized message keeps only its first bytes, so that its
                // dead letter can be published (a 5 MiB one would be refused
                // by the dead-letter topic as it was by validation).
                let mut letter = DeadLetter::of_message(
                    rejection,
                    payload,
                    message.key(),
                    self.config.rules.max_message_bytes,
                    format!("{}/{}@{}", message.topic(), message.partition(), offset),
                );
                letter.format = resolved;
                letter.tenant_id = self.config.tenant.clone();
                letter.kafka = Some(KafkaCoordinates {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset,
                });
                batch.letters.push((letter, slot));
            }
        }
    }

    /// Writes the batch, delivers its dead letters, then stores its offsets.
    async fn process(&mut self, batch: Batch) -> std::result::Result<(), Interrupted> {
        tracing::debug!(
            positions = batch.positions.len(),
            letters = batch.letters.len(),
            offsets = ?batch.offsets,
            "processing batch"
        );
        metrics::histogram!("tracker_stage_seconds", "stage" => "decode").record(batch.decoding);
        let letters: Vec<DeadLetter> = batch.letters.into_iter().map(|(l, _)| l).collect();
        let mut dlq_shutdown = self.shutdown.clone();
        let publish_timeout = if self.dead_letter_topic_down {
            self.config
                .dead_letter_publish_timeout
                .min(DEAD_LETTER_TOPIC_DOWN_TRY)
        } else {
            self.config.dead_letter_publish_timeout
        };
        let dead_letters = dead_letters_to(
            self.dead_letters.as_ref(),
            publish_timeout,
            &self.sink,
            &letters,
            &self.stats,
            &mut dlq_shutdown,
        );
        let positions = deliver(
            &*self.sink,
            Hand::Take,
            &mut self.dedupe,
            batch.positions,
            &batch.tags,
            &self.stats,
            &mut self.shutdown,
        );
        let (taken, dead) = tokio::join!(positions, dead_letters);
        let seeded = self.dedupe.take_seeded();
        self.note_vehicles(seeded);
        taken?;
        self.dead_letter_topic_down = dead?;
        // The sink took this batch (its engine ran while the last flush went
        // on). The last batch's offsets once its flush is durable; then this
        // batch's flush runs while the next batch is fetched and taken.
        self.finish_flight().await?;
        let sink = Arc::clone(&self.sink);
        let stats = Arc::clone(&self.stats);
        let mut shutdown = self.shutdown.clone();
        let flushing =
            tokio::spawn(
                async move { crate::pipeline::flush(&*sink, &stats, &mut shutdown).await },
            );
        self.in_flight = Some(InFlight {
            flushing,
            offsets: batch.offsets,
        });
        Ok(())
    }

    /// Waits for the batch in flight to be durable and stores its offsets.
    async fn finish_flight(&mut self) -> std::result::Result<(), Interrupted> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(());
        };
        match flight.flushing.await {
            Ok(Ok(())) => {}
            Ok(Err(Interrupted)) => return Err(Interrupted),
            Err(err) => {
                // The flush task panicked: nothing says the batch is durable,
                // so its offsets stay unstored and it is read again later.
                tracing::error!(error = %err, "the sink's flush task failed");
                return Err(Interrupted);
            }
        }
        // Partitions revoked meanwhile are another node's now.
        let offsets: HashMap<u32, i64> = flight
            .offsets
            .into_iter()
            .filter(|(slot, _)| !self.revoked_in_flight.contains(slot))
            .collect();
        self.revoked_in_flight.clear();
        self.store(&offsets);
        Ok(())
    }

    /// Remembers which partition brought which vehicle, for the release on
    /// revoke. Noted as soon as seeded (before the write returns): a vehicle
    /// released without anything written is let go of harmlessly.
    fn note_vehicles(&self, seeded: Vec<(VehicleKey, u32)>) {
        if seeded.is_empty() {
            return;
        }
        let mut by_partition = lock(&self.consumer.context().vehicles);
        for (vehicle, slot) in seeded {
            if let Some(tp) = self.slot_names.get(slot as usize) {
                by_partition.entry(tp.clone()).or_default().push(vehicle);
            }
        }
    }

    fn store(&self, offsets: &HashMap<u32, i64>) {
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let mut stored = lock(&self.consumer.context().stored);
        for (slot, offset) in offsets {
            let (topic, partition) = &self.slot_names[*slot as usize];
            let next = offset + 1;
            if let Err(err) = tpl.add_partition_offset(topic, *partition, Offset::Offset(next)) {
                tracing::warn!(error = %err, "cannot list offset to store");
                continue;
            }
            stored.insert((topic.clone(), *partition), next);
        }
        if let Err(err) = self.consumer.store_offsets(&tpl) {
            tracing::warn!(error = %err, "storing offsets failed");
        }
    }

    /// Commits every stored offset synchronously (on shutdown).
    fn commit_stored(&self) {
        let stored = std::mem::take(&mut *lock(&self.consumer.context().stored));
        if stored.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &stored {
            if tpl
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                continue;
            }
        }
        if let Err(err) = self.consumer.commit(&tpl, CommitMode::Sync) {
            tracing::warn!(error = %err, "final commit failed");
        }
    }
}

/// Dead letters go to the topic when there is one, else to the sink; those the
/// topic still refuses after `publish_timeout` go to the sink too. Returns once
/// every letter is durable in one place or the other, with whether the topic
/// refused any.
async fn dead_letters_to<S: PositionSink>(
    publisher: Option<&KafkaPublisher>,
    publish_timeout: Duration,
    sink: &S,
    letters: &[DeadLetter],
    stats: &IngestStats,
    shutdown: &mut Shutdown,
) -> std::result::Result<bool, Interrupted> {
    let refused = match publisher {
        Some(publisher) => {
            publish_dead_letters(publisher, letters, publish_timeout, stats, shutdown).await?
        }
        None => letters.to_vec(),
    };
    if publisher.is_some() && !refused.is_empty() {
        tracing::error!(
            letters = refused.len(),
            "the dead-letter topic refused them until the deadline; writing them to the store"
        );
    }
    deliver_dead_letters(sink, &refused, stats, shutdown).await?;
    Ok(publisher.is_some() && !refused.is_empty())
}

/// Produces dead letters with the original key and (possibly truncated) bytes,
/// and the reason, origin and original size in headers. Retries what the broker
/// refuses, with backoff, until `timeout`; returns the letters still refused
/// then. A send cut off by the deadline may still land later, so a letter can
/// end up both in the topic and in the store (at least once, never lost).
async fn publish_dead_letters(
    publisher: &KafkaPublisher,
    letters: &[DeadLetter],
    timeout: Duration,
    stats: &IngestStats,
    shutdown: &mut Shutdown,
) -> std::result::Result<Vec<DeadLetter>, Interrupted> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut left: Vec<&DeadLetter> = letters.iter().collect();
    let mut backoff = Backoff::new();
    while !left.is_empty() {
        let sizes: Vec<String> = left.iter().map(|l| l.size_bytes.to_string()).collect();
        let records: Vec<OutRecord<'_>> = left
            .iter()
            .zip(&sizes)
            .map(|(letter, size)| {
                let mut headers = vec![
                    (REASON_HEADER, letter.rejection.reason.as_str().as_bytes()),
                    (DETAIL_HEADER, letter.rejection.detail.as_bytes()),
                    (ORIGIN_HEADER, letter.origin.as_bytes()),
                    (SIZE_HEADER, size.as_bytes()),
                ];
                if let Some(format) = letter.format {
                    headers.push((FORMAT_HEADER, format.as_str().as_bytes()));
                }
                OutRecord {
                    key: letter.key.as_deref(),
                    payload: &letter.payload,
                    headers,
                }
            })
            .collect();
        let Ok(outcomes) = tokio::time::timeout_at(deadline, publisher.send_each(&records)).await
        else {
            break;
        };
        let mut refused = Vec::new();
        let mut last_error = None;
        for (letter, outcome) in left.iter().zip(outcomes) {
            match outcome {
                Ok(()) => stats.dead_lettered(1),
                Err(err) => {
                    refused.push(*letter);
                    last_error = Some(err);
                }
            }
        }
        left = refused;
        let Some(err) = last_error else { break };
        tracing::warn!(error = %err, topic = publisher.topic(), letters = left.len(), "dead-letter publish failed; retrying");
        stats.dead_letter_retry();
        tokio::select! {
            slept = backoff.sleep(shutdown) => if !slept { return Err(Interrupted) },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    Ok(left.into_iter().cloned().collect())
}
