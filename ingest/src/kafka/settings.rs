//! librdkafka client settings: the ones that carry our delivery semantics (always
//! applied) and the ones tuned for throughput and latency (applied unless a bench
//! asks for librdkafka's defaults to compare). The figures behind each tuned value
//! are in ARCHITECTURE.md (ingest section) and `benches/ingest.rs`.

use rdkafka::ClientConfig;

/// Which performance settings to apply on top of the semantic ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTuning {
    /// Our measured choice.
    Tuned,
    /// librdkafka's defaults (for comparison in benches).
    LibrdkafkaDefaults,
}

/// Settings of the consumer that are about correctness, not speed.
const CONSUMER_SEMANTICS: &[(&str, &str)] = &[
    // Offsets are committed by librdkafka's timer and on revoke/close, but only
    // offsets that we stored after the sink made the work durable.
    ("enable.auto.commit", "true"),
    ("enable.auto.offset.store", "false"),
    ("auto.commit.interval.ms", "1000"),
    // A new group must not skip positions already in the topic.
    ("auto.offset.reset", "earliest"),
    // Surface partition EOF as nothing: a quiet partition is not an event.
    ("enable.partition.eof", "false"),
    // No message may stall its partition: one of several MiB (far over the
    // validation limit, so it will be dead-lettered) must still be fetched
    // whole. 16 MiB per partition and 64 MiB per fetch (librdkafka needs the
    // receive buffer a little above the fetch size).
    ("max.partition.fetch.bytes", "16777216"),
    ("fetch.max.bytes", "67108864"),
    ("receive.message.max.bytes", "67109376"),
];

/// Consumer performance settings.
const CONSUMER_TUNED: &[(&str, &str)] = &[
    // Wait for a fuller fetch under load (fewer, larger fetch round trips) but
    // never longer than 10 ms, so a quiet fleet's positions are not held back.
    ("fetch.min.bytes", "65536"),
    ("fetch.wait.max.ms", "10"),
    // Detect a dead consumer in seconds, not 45 s, so its partitions move fast.
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
];

/// Producer settings about correctness.
const PRODUCER_SEMANTICS: &[(&str, &str)] = &[
    // A position is published when every in-sync replica has it.
    ("acks", "all"),
];

/// Producer performance settings.
const PRODUCER_TUNED: &[(&str, &str)] = &[
    // Batch up to 10 ms: a good trade of latency for much fewer requests.
    ("linger.ms", "10"),
    ("batch.num.messages", "10000"),
    ("batch.size", "1048576"),
    // Positions are small JSON objects that compress several times over.
    ("compression.type", "lz4"),
    ("queue.buffering.max.messages", "500000"),
];

/// A consumer configuration for `brokers` in `group_id`.
pub(crate) fn consumer_config(
    brokers: &str,
    group_id: &str,
    tuning: ClientTuning,
    overrides: &[(String, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("client.id", "tracker-ingest");
    apply(&mut config, CONSUMER_SEMANTICS);
    if tuning == ClientTuning::Tuned {
        apply(&mut config, CONSUMER_TUNED);
    }
    for (key, value) in overrides {
        config.set(key, value);
    }
    config
}

/// A producer configuration for `brokers`.
pub(crate) fn producer_config(
    brokers: &str,
    tuning: ClientTuning,
    overrides: &[(String, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "tracker-producer");
    apply(&mut config, PRODUCER_SEMANTICS);
    if tuning == ClientTuning::Tuned {
        apply(&mut config, PRODUCER_TUNED);
    }
    for (key, value) in overrides {
        config.set(key, value);
    }
    config
}

fn apply(config: &mut ClientConfig, settings: &[(&str, &str)]) {
    for (key, value) in settings {
        config.set(*key, *value);
    }
}
