//! The in-process bus of the embedded default (`--bus memory://`): bounded
//! channels partitioned by vehicle, one consumer task per partition, and the same
//! semantics as the Kafka source.
//!
//! - Per-vehicle order: a vehicle always hashes to the same partition, and a
//!   partition is consumed by one task in order.
//! - At-least-once: [`MemoryPublisher::publish`] returns only after the sink has
//!   made the positions durable, so an HTTP 202 means "stored", not "queued";
//!   a crash before that fails the request and the client retries.
//! - Dedupe on tenant, vehicle id and device time, seeded from the sink, so a retried
//!   request changes nothing.
//! - Bounded: a full partition makes publishers wait (backpressure), never drops.
//! - Raw vendor messages can be published too; they are decoded by the consumer
//!   and bad ones go to the sink's dead letters.

use std::sync::Arc;

use chrono::Utc;
use engine::Position;
use tokio::sync::{mpsc, oneshot};

use crate::pipeline::{Dedupe, Hand, deliver, deliver_dead_letters};
use crate::shutdown::Shutdown;
use crate::sink::{DeadLetter, PositionSink};
use crate::stats::IngestStats;
use crate::{Error, Result};
use engine::ValidationRules;
use engine::{Format, decode};

/// Sizing of the in-process bus. No `Default`: start from
/// [`MemoryBusConfig::RECOMMENDED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBusConfig {
    /// Independent consumer tasks; more lets sink writes overlap.
    pub n_partitions: usize,
    /// Queued envelopes (one publish call's share of a partition) per partition
    /// before publishers wait.
    pub capacity: usize,
    /// Most positions handed to the sink in one write.
    pub max_batch: usize,
}

impl MemoryBusConfig {
    /// Four partitions, 1024 envelopes each, sink writes of up to 4096 positions.
    pub const RECOMMENDED: MemoryBusConfig = MemoryBusConfig {
        n_partitions: 4,
        capacity: 1024,
        max_batch: 4096,
    };

    /// Names the first bad setting.
    pub fn validate(&self) -> Result<()> {
        for (setting, value) in [
            ("n_partitions", self.n_partitions),
            ("capacity", self.capacity),
            ("max_batch", self.max_batch),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: "must be positive".into(),
                });
            }
        }
        Ok(())
    }
}

/// One message on the bus.
#[derive(Debug)]
enum Item {
    Position(Position),
    Raw {
        format: Format,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
    },
}

#[derive(Debug)]
struct Envelope {
    items: Vec<Item>,
    /// Fired once the items are durable; dropped (an error for the waiter) if the
    /// bus stops first.
    ack: Option<oneshot::Sender<()>>,
}

/// The publishing side; clone it freely.
#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    partitions: Arc<[mpsc::Sender<Envelope>]>,
}

/// The consuming side: call [`MemoryBusConsumer::run`] once.
#[derive(Debug)]
pub struct MemoryBusConsumer {
    receivers: Vec<mpsc::Receiver<Envelope>>,
    config: MemoryBusConfig,
}

/// Creates the bus.
pub fn memory_bus(config: MemoryBusConfig) -> Result<(MemoryPublisher, MemoryBusConsumer)> {
    config.validate()?;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..config.n_partitions)
        .map(|_| mpsc::channel(config.capacity))
        .unzip();
    Ok((
        MemoryPublisher {
            partitions: senders.into(),
        },
        MemoryBusConsumer { receivers, config },
    ))
}

/// FNV-1a: stable across runs and platforms, and cheap for short ids.
pub(crate) fn partition_of(key: &[u8], n_partitions: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % n_partitions as u64) as usize
}

impl MemoryPublisher {
    /// Publishes positions and waits until the sink has made them durable.
    pub async fn publish(&self, positions: Vec<Position>) -> Result<()> {
        self.send(positions.into_iter().map(Item::Position), true)
            .await
    }

    /// `Err(BusClosed)` once the consumer has stopped.
    pub fn check(&self) -> Result<()> {
        if self.partitions.iter().any(mpsc::Sender::is_closed) {
            return Err(Error::BusClosed);
        }
        Ok(())
    }

    /// Queues positions without waiting for the sink (the demo fleet, which
    /// regenerates what a crash loses). Waits only for queue space.
    pub async fn enqueue(&self, positions: Vec<Position>) -> Result<()> {
        self.send(positions.into_iter().map(Item::Position), false)
            .await
    }

    /// Publishes one raw vendor message (decoded and validated by the consumer)
    /// and waits until it is durable or dead-lettered. The key, when present, is
    /// the vehicle id and chooses the partition.
    pub async fn publish_raw(
        &self,
        format: Format,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.send(
            std::iter::once(Item::Raw {
                format,
                key,
                payload,
            }),
            true,
        )
        .await
    }

    async fn send(&self, items: impl Iterator<Item = Item>, wait: bool) -> Result<()> {
        let n = self.partitions.len();
        let mut groups: Vec<Vec<Item>> = (0..n).map(|_| Vec::new()).collect();
        for item in items {
            let key: &[u8] = match &item {
                Item::Position(p) => p.vehicle_id.as_str().as_bytes(),
                Item::Raw { key, .. } => key.as_deref().unwrap_or_default(),
            };
            groups[partition_of(key, n)].push(item);
        }
        let mut acks = Vec::new();
        for (partition, items) in groups.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let ack = if wait {
                let (tx, rx) = oneshot::channel();
                acks.push(rx);
                Some(tx)
            } else {
                None
            };
            self.partitions[partition]
                .send(Envelope { items, ack })
                .await
                .map_err(|_| Error::BusClosed)?;
        }
        for ack in acks {
            ack.await.map_err(|_| Error::BusClosed)?;
        }
        Ok(())
    }
}

impl MemoryBusConsumer {
    /// Consumes every partition until shutdown (then drains what is already
    /// queued) or until every publisher is dropped.
    pub async fn run<S: PositionSink + Clone>(
        self,
        sink: S,
        stats: Arc<IngestStats>,
        rules: ValidationRules,
        shutdown: Shutdown,
    ) {
        let max_batch = self.config.max_batch;
        // The partitions are this future's own: each is waited for, and a
        // dropped (aborted) consumer aborts them with the set, so none
        // outlives the task tree that runs the consumer.
        let mut tasks = tokio::task::JoinSet::new();
        for rx in self.receivers {
            let partition = Partition {
                rx,
                sink: sink.clone(),
                stats: stats.clone(),
                rules,
                max_batch,
                dedupe: Dedupe::default(),
            };
            tasks.spawn(partition.run(shutdown.clone()));
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(err) = joined {
                tracing::error!(error = %err, "memory bus partition task failed");
            }
        }
    }
}

struct Partition<S> {
    rx: mpsc::Receiver<Envelope>,
    sink: S,
    stats: Arc<IngestStats>,
    rules: ValidationRules,
    max_batch: usize,
    dedupe: Dedupe,
}

impl<S: PositionSink> Partition<S> {
    async fn run(mut self, mut shutdown: Shutdown) {
        loop {
            let first = tokio::select! {
                biased;
                envelope = self.rx.recv() => envelope,
                () = shutdown.wait() => {
                    // Stop taking new work, finish what is queued.
                    self.rx.close();
                    self.rx.recv().await
                }
            };
            let Some(first) = first else { return };
            let mut envelopes = vec![first];
            let mut n_items = envelopes[0].items.len();
            while n_items < self.max_batch {
                match self.rx.try_recv() {
                    Ok(envelope) => {
                        n_items += envelope.items.len();
                        envelopes.push(envelope);
                    }
                    Err(_) => break,
                }
            }
            if !self.process(&mut envelopes, &mut shutdown).await {
                // Interrupted by shutdown while the sink was failing: the
                // envelopes' acks are dropped, so their publishers see an error.
                return;
            }
        }
    }

    /// Decodes, delivers and acks a batch; `false` if shutdown interrupted it.
    async fn process(&mut self, envelopes: &mut [Envelope], shutdown: &mut Shutdown) -> bool {
        let now = Utc::now();
        let mut positions = Vec::new();
        let mut letters = Vec::new();
        for envelope in envelopes.iter_mut() {
            self.stats.received(envelope.items.len() as u64);
            for item in envelope.items.drain(..) {
                match item {
                    Item::Position(p) => positions.push(p),
                    Item::Raw {
                        format,
                        key,
                        payload,
                    } => {
                        let key_str = key.as_deref().and_then(|k| std::str::from_utf8(k).ok());
                        // The in-process bus is bound to no tenant: a raw message
                        // names its own (`tenant_id` or a `TENANT/VEHICLE` key).
                        let envelope = engine::Envelope {
                            key: key_str,
                            tenant: None,
                        };
                        match decode(format, &payload, envelope, now, &self.rules) {
                            Ok(p) => positions.push(p),
                            Err(rejection) => {
                                self.stats.rejected(rejection.reason);
                                let mut letter = DeadLetter::of_message(
                                    rejection,
                                    &payload,
                                    key.as_deref(),
                                    self.rules.max_message_bytes,
                                    "memory".into(),
                                );
                                letter.format = Some(format);
                                letters.push(letter);
                            }
                        }
                    }
                }
            }
        }
        let tags = vec![0; positions.len()];
        if deliver(
            &self.sink,
            Hand::Write,
            &mut self.dedupe,
            positions,
            &tags,
            &self.stats,
            shutdown,
        )
        .await
        .is_err()
        {
            return false;
        }
        if deliver_dead_letters(&self.sink, &letters, &self.stats, shutdown)
            .await
            .is_err()
        {
            return false;
        }
        for envelope in envelopes.iter_mut() {
            if let Some(ack) = envelope.ack.take() {
                // The publisher may have given up waiting; nothing to do then.
                let _ = ack.send(());
            }
        }
        true
    }
}
