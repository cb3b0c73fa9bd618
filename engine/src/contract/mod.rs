//! The position contract: the one decoder and the one rule set for every path a
//! fix takes into the system (Kafka, `POST /api/v1/positions`, the in-process
//! bus, the simulator and replays). Pure and synchronous, like the rest of the
//! engine, so `ingest` and `portal-api` (which never depend on each other) share
//! it instead of keeping near-twins with different limits.
//!
//! - [`format`](Format): the canonical JSON and the Samsara, Motive and Geotab
//!   shapes, decoded into canonical units, and their encoders.
//! - [`ValidationRules`] and [`Rejection`]: what makes a fix plausible, and the
//!   stable reason codes of what does not (dead-letter headers, HTTP receipts).
//! - [`Envelope`]: what the transport vouches for (the record key, the tenant a
//!   credential or topic is bound to), which is how every position gets its
//!   tenant.
//! - [`decode_batch`] and [`receipts`]: an HTTP batch, item by item.
//!
//! Nothing here can panic on input (property-tested in `ingest/tests`).

mod batch;
mod format;
mod validate;

pub use batch::{BatchError, ItemReport, ItemStatus, decode_batch, receipts};
pub use format::{FORMAT_HEADER, Format, decode, encode, encode_canonical, resolve_format};
pub use validate::{Envelope, RejectReason, Rejection, ValidationRules};
