//! Position sources: everything between an ELD vendor's bytes and the engine.
//!
//! - The position contract (decoders for the canonical JSON and the Samsara,
//!   Motive and Geotab shapes, the [`ValidationRules`], [`decode_batch`]) lives
//!   in `engine` so that `portal-api` shares it; it is re-exported here.
//! - [`PositionSink`]: the one thing ingest knows about its destination; sources
//!   commit offsets (or ack publishers) only after the sink made a batch durable.
//! - [`memory`] bus (the embedded default) and [`kafka`] consumer/producer: the
//!   I/O edges, with the same semantics (at-least-once, dedupe on tenant,
//!   vehicle id and device time, per-vehicle order, dead letters with the
//!   reason).
//! - [`simulate`]: a deterministic fleet of trucks on a road graph (pure), and
//!   the loop that publishes it to Kafka or HTTP.
//!
//! Invariants: decoding and validation never panic on input and never do I/O;
//! per vehicle, the sink sees strictly increasing device times.

mod bus;
mod error;
pub mod kafka;
mod pipeline;
mod shutdown;
pub mod simulate;
mod sink;
mod stats;

pub use bus::memory::{MemoryBusConfig, MemoryBusConsumer, MemoryPublisher, memory_bus};
pub use bus::{BusPublisher, BusUrl, DEFAULT_TOPIC};
pub use engine::{
    BatchError, Envelope, FORMAT_HEADER, Format, ItemReport, ItemStatus, RejectReason, Rejection,
    ValidationRules, decode, decode_batch, encode, encode_canonical, receipts, resolve_format,
};
pub use error::{Error, Result};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use sink::{
    DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, KafkaCoordinates, PositionSink, SinkError, SinkReceipt,
};
pub use stats::{IngestStats, StatsSnapshot};
