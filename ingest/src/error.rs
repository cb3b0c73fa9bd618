//! The crate's one error type. Bad input is not an error here: a message that does
//! not decode or validate is a [`crate::Rejection`], counted and dead-lettered. The
//! variants below are failures of configuration or of the infrastructure (broker,
//! sink, HTTP endpoint) that the caller has to know about.

/// Everything that can go wrong in the ingest crate's I/O edges.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting out of its valid range; names the setting.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        setting: &'static str,
        reason: String,
    },
    /// An engine setting (the validation rules) out of its valid range.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A bus URL that is neither `memory://` nor `kafka://HOST:PORT[/TOPIC]`.
    #[error("invalid bus URL `{url}`: {reason}")]
    BusUrl { url: String, reason: String },
    /// The Kafka client failed (creating a client, subscribing, producing).
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("kafka: cannot create topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    /// The position sink failed and the caller asked not to retry.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The in-process bus was shut down while a publisher still used it.
    #[error("the in-process bus is closed")]
    BusClosed,
    /// The simulator's publisher failed (the binary's HTTP client: a
    /// connection, a refusal); `retryable` says whether trying again can help.
    #[error("publishing: {reason}")]
    Publish { reason: String, retryable: bool },
    /// The simulator cannot run on this map.
    #[error("simulator: {0}")]
    Simulator(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
