//! Where positions go: the [`PositionSink`] trait that the binary implements over
//! the engine and the store. Ingest knows nothing else about the destination.
//!
//! The contract that makes at-least-once delivery safe:
//! - [`PositionSink::write`] returns only when the batch's effects are durable;
//!   the sources commit their offsets (or ack publishers) after it returns, never
//!   before. A failed write is retried with backoff; the batch is never skipped.
//!   The Kafka source pipelines it: [`PositionSink::take`] hands the sink batch
//!   N+1 while [`PositionSink::flush`] still makes batch N durable, and N's
//!   offsets are stored only after that flush returned.
//! - [`PositionSink::last_times`] reports the newest device time the sink has
//!   durably recorded per vehicle. Sources use it to seed deduplication when they
//!   first see a vehicle (after a restart or a rebalance), so a replay of
//!   already-written positions changes nothing.
//! - Per vehicle, the sink sees strictly increasing device times.
//! - Unknown vehicles are the sink's business: it keeps and counts them and says
//!   how many in its receipt; it must not fail the batch for them.
//! - [`PositionSink::release`] is told when vehicles stop being this node's
//!   (their Kafka partition moved to another member of the group): the sink
//!   makes whatever it keeps of them durable for the new owner and lets them
//!   go. The Kafka source calls it inside the revoke, after committing the
//!   offsets and before the partitions move on, so the new owner reads what
//!   the old one saved.
//! - A sink may refuse a batch for a while (its store is down and its queue is
//!   full): the source retries the same batch with backoff and does not advance,
//!   which is how push-back reaches the consumer.

use std::future::Future;

use chrono::{DateTime, Utc};
use engine::{Position, TenantId, VehicleKey};

use engine::Format;
use engine::Rejection;

/// A failure of the sink (database busy, engine shutting down). Always retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position sink: {0}")]
pub struct SinkError(pub String);

/// What the sink reports about a durable batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkReceipt {
    /// Positions of vehicles the sink does not know (kept and counted).
    pub unknown_vehicles: u64,
}

/// Bytes of an oversized message (and of any key longer than this) kept in its
/// dead letter: enough to recognise it, small enough that the dead letter can
/// be published and stored wherever the original could not be.
pub const DEAD_LETTER_PAYLOAD_BYTES: usize = 1024;

/// A message that was rejected, with everything needed to inspect it (and, when
/// it was not oversized, to replay it).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub rejection: Rejection,
    /// The message as received, or only its first [`DEAD_LETTER_PAYLOAD_BYTES`]
    /// when it was larger than the validation limit (`size_bytes` tells).
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    /// The format it was decoded as, when one was resolved.
    pub format: Option<Format>,
    /// Where it came from: `topic/partition@offset`, `http` or `memory`.
    pub origin: String,
    /// The size of the whole original message.
    pub size_bytes: u64,
    /// The Kafka coordinates of the original message, when it came from Kafka.
    pub kafka: Option<KafkaCoordinates>,
    /// The tenant, when a trusted source names it (a topic bound to one, or
    /// a position the engine refused); never taken from the message itself,
    /// which is what was refused.
    pub tenant_id: Option<TenantId>,
}

/// Where a Kafka message was: enough to fetch it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaCoordinates {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetter {
    /// The dead letter of a message: `payload` is cut to its first
    /// [`DEAD_LETTER_PAYLOAD_BYTES`] when it is over `max_message_bytes` (the
    /// limit it was rejected for), and so is a key over that size.
    pub fn of_message(
        rejection: Rejection,
        payload: &[u8],
        key: Option<&[u8]>,
        max_message_bytes: usize,
        origin: String,
    ) -> DeadLetter {
        let keep = if payload.len() > max_message_bytes {
            DEAD_LETTER_PAYLOAD_BYTES.min(payload.len())
        } else {
            payload.len()
        };
        DeadLetter {
            rejection,
            payload: payload[..keep].to_vec(),
            key: key.map(|k| k[..k.len().min(DEAD_LETTER_PAYLOAD_BYTES)].to_vec()),
            format: None,
            origin,
            size_bytes: payload.len() as u64,
            kafka: None,
            tenant_id: None,
        }
    }
}

/// The destination of validated, deduplicated positions.
pub trait PositionSink: Send + Sync + 'static {
    /// Makes the batch's effects durable, then returns. Positions are ordered by
    /// device time, and strictly increasing per vehicle.
    fn write(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send;

    /// The first half of a pipelined write, for a source that keeps one
    /// batch in flight (Kafka): takes the batch in (the binary runs its
    /// engine on it) and returns before its effects need be durable;
    /// [`PositionSink::flush`] makes them so. A source takes batches in order,
    /// one at a time, and may take the next while the last one's flush runs;
    /// it stores a batch's offsets only after a flush that began after the
    /// batch was taken has returned. A failed take took nothing: the source
    /// retries the same batch. The default is the whole `write`, leaving
    /// nothing to flush.
    fn take(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send {
        self.write(batch)
    }

    /// Makes everything taken so far durable, then returns; flushes run one
    /// at a time, in order. A failed flush keeps what it could not write, for
    /// the next one (the source retries with backoff). The default has
    /// nothing to flush.
    fn flush(&self) -> impl Future<Output = Result<(), SinkError>> + Send {
        std::future::ready(Ok(()))
    }

    /// The newest durably written device time of each vehicle (`None` for one
    /// never written), in the order asked.
    fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> impl Future<Output = Result<Vec<Option<DateTime<Utc>>>, SinkError>> + Send;

    /// These vehicles are no longer this node's (see the module docs): make
    /// what the sink keeps of them durable for their new owner, then forget
    /// them. The default keeps nothing.
    fn release(
        &self,
        vehicles: &[VehicleKey],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = vehicles;
        std::future::ready(Ok(()))
    }

    /// Makes rejected messages durable where there is no dead-letter topic
    /// (the in-process bus) or the topic kept refusing them past the publish
    /// deadline (Kafka); the source acks or commits past them only after this
    /// returns. The default only logs them; the binary keeps them in the
    /// store's `dead_letters` table.
    fn dead_letters(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        for letter in letters {
            tracing::warn!(
                origin = %letter.origin,
                reason = %letter.rejection.reason,
                detail = %letter.rejection.detail,
                "dead letter"
            );
        }
        std::future::ready(Ok(()))
    }
}

impl<S: PositionSink> PositionSink for std::sync::Arc<S> {
    fn release(
        &self,
        vehicles: &[VehicleKey],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).release(vehicles)
    }
    fn write(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send {
        (**self).write(batch)
    }
    fn take(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send {
        (**self).take(batch)
    }
    fn flush(&self) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).flush()
    }
    fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> impl Future<Output = Result<Vec<Option<DateTime<Utc>>>, SinkError>> + Send {
        (**self).last_times(vehicles)
    }
    fn dead_letters(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).dead_letters(letters)
    }
}
