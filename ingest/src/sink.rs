//! Where positions go: the [`PositionSink`] trait that the binary implements over
//! the engine and the store. Ingest knows nothing else about the destination.
//!
//! The contract that makes at-least-once delivery safe:
//! - [`PositionSink::write`] returns only when the batch's effects are durable;
//!   the sources commit their offsets (or ack publishers) after it returns, never
//!   before. A failed write is retried with backoff; the batch is never skipped.
//! - [`PositionSink::last_times`] reports the newest device time the sink has
//!   durably recorded per vehicle. Sources use it to seed deduplication when they
//!   first see a vehicle (after a restart or a rebalance), so a replay of
//!   already-written positions changes nothing.
//! - Per vehicle, the sink sees strictly increasing device times.
//! - Unknown vehicles are the sink's business: it keeps and counts them and says
//!   how many in its receipt; it must not fail the batch for them.

use std::future::Future;

use chrono::{DateTime, Utc};
use engine::{Position, VehicleKey};

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

/// A message that was rejected, with everything needed to inspect or replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub rejection: Rejection,
    /// The message exactly as received.
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    /// The format it was decoded as, when one was resolved.
    pub format: Option<Format>,
    /// Where it came from: `topic/partition@offset`, `http` or `memory`.
    pub origin: String,
}

/// The destination of validated, deduplicated positions.
pub trait PositionSink: Send + Sync + 'static {
    /// Makes the batch's effects durable, then returns. Positions are ordered by
    /// device time, and strictly increasing per vehicle.
    fn write(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send;

    /// The newest durably written device time of each vehicle (`None` for one
    /// never written), in the order asked.
    fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> impl Future<Output = Result<Vec<Option<DateTime<Utc>>>, SinkError>> + Send;

    /// Stores rejected messages where there is no dead-letter topic (the
    /// in-process bus). The default logs them; the embedded store keeps a table.
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
    fn write(
        &self,
        batch: &[Position],
    ) -> impl Future<Output = Result<SinkReceipt, SinkError>> + Send {
        (**self).write(batch)
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
