//! The Kafka edge: the consumer-group source, the publisher, topic creation and
//! the client settings. Everything here is I/O; decoding and dedupe are the pure
//! modules' work.

mod admin;
mod consumer;
mod fleet;
mod membership;
mod producer;
mod settings;

pub use admin::{ensure_topics, ensure_topics_with};
pub use consumer::{
    DEFAULT_DEAD_LETTER_PUBLISH_TIMEOUT, DEFAULT_DEAD_LETTER_TOPIC, DETAIL_HEADER,
    KafkaSourceConfig, ORIGIN_HEADER, REASON_HEADER, SIZE_HEADER, run_kafka_source,
};
pub use fleet::{
    DEFAULT_FLEET_TOPIC, FleetPublisher, FleetTopicConfig, FleetTopicStats, ORIGIN_INSTANCE_HEADER,
    run_fleet_reader,
};
pub use membership::{
    GroupMembership, GroupPeer, MembershipSnapshot, OwnedPartition, PEER_CHECK_INTERVAL,
};
pub use producer::{KafkaPublisher, OutRecord};
pub use settings::{ClientTuning, client_options};
