//! Position sources: everything between an ELD vendor's bytes and the engine.
//!
//! - [`format`]: pure decoders for the canonical JSON and the Samsara, Motive and
//!   Geotab shapes, and [`validate`](ValidationRules) rules shared by all sources.
//! - [`decode_batch`]: the pure HTTP batch decoder `portal-api` calls.
//! - [`PositionSink`]: the one thing ingest knows about its destination; sources
//!   commit offsets (or ack publishers) only after the sink made a batch durable.
//! - [`memory`] bus (the embedded default) and [`kafka`] consumer/producer: the
//!   I/O edges, with the same semantics (at-least-once, dedupe on vehicle id +
//!   device time, per-vehicle order, dead letters with the reason).
//! - [`simulate`]: a deterministic fleet of trucks on a road graph (pure), and
//!   the loop that publishes it to Kafka or HTTP.
//!
//! Invariants: decoding and validation never panic on input and never do I/O;
//! per vehicle, the sink sees strictly increasing device times.

mod batch;
mod bus;
mod error;
mod format;
pub mod kafka;
mod pipeline;
mod shutdown;
pub mod simulate;
mod sink;
mod stats;
mod validate;

pub use batch::{BatchError, ItemReport, ItemResult, ItemStatus, decode_batch};
pub use bus::memory::{MemoryBusConfig, MemoryBusConsumer, MemoryPublisher, memory_bus};
pub use bus::{BusPublisher, BusUrl, DEFAULT_TOPIC};
pub use error::{Error, Result};
pub use format::{FORMAT_HEADER, Format, decode, encode, encode_canonical, resolve_format};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use sink::{
    DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, KafkaCoordinates, PositionSink, SinkError, SinkReceipt,
};
pub use stats::{IngestStats, StatsSnapshot};
pub use validate::{RejectReason, Rejection, ValidationRules};
