//! The Kafka edge: the consumer-group source, the publisher, topic creation and
//! the client settings. Everything here is I/O; decoding and dedupe are the pure
//! modules' work.

mod admin;
mod consumer;
mod producer;
mod settings;

pub use admin::ensure_topics;
pub use consumer::{
    run_kafka_source, KafkaSourceConfig, DEFAULT_DEAD_LETTER_TOPIC, DETAIL_HEADER, ORIGIN_HEADER,
    REASON_HEADER,
};
pub use producer::{KafkaPublisher, OutRecord};
pub use settings::ClientTuning;
