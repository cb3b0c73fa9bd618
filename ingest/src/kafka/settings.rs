//! librdkafka client settings: the ones that carry our delivery semantics (always
//! applied) and the ones tuned for throughput and latency (applied unless a bench
//! asks for librdkafka's defaults to compare). The figures behind each tuned value
//! are in ARCHITECTURE.md (ingest section) and `benches/ingest.rs`.

use rdkafka::ClientConfig;
use rdkafka::producer::BaseProducer;

use crate::{Error, Result};

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

/// Settings an operator may not override: they carry the delivery semantics
/// above or name what the node is (its brokers and group come from the bus
/// URL and `--kafka-group`).
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "acks",
];

/// Parses an operator's extra librdkafka settings (`KEY=VALUE`, e.g.
/// `security.protocol=SASL_SSL`) and checks them the way librdkafka will: an
/// unknown key, a bad value, or a TLS/SASL setting this build cannot honour is
/// refused now, naming the setting, instead of at the first connection. Only
/// the key is ever quoted back: a value may be a password.
pub fn client_options(options: &[String]) -> Result<Vec<(String, String)>> {
    let mut parsed = Vec::with_capacity(options.len());
    for option in options {
        let Some((key, value)) = option.split_once('=') else {
            return Err(bad_option(
                option.split('=').next().unwrap_or_default(),
                "expected KEY=VALUE",
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(bad_option(key, "the key is empty"));
        }
        if RESERVED.contains(&key) {
            return Err(bad_option(
                key,
                "set by the tracker itself; it cannot be overridden",
            ));
        }
        parsed.push((key.to_owned(), value.to_owned()));
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", "127.0.0.1:9");
    for (key, value) in &parsed {
        config.set(key, value);
    }
    // Creating a client is where librdkafka checks names and values; it does
    // not wait for a broker.
    if let Err(err) = config.create::<BaseProducer>() {
        let first_key = parsed.first().map_or("", |(k, _)| k.as_str());
        let named = parsed
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| err.to_string().contains(*k))
            .unwrap_or(first_key);
        return Err(bad_option(named, &redact(&err.to_string(), &parsed)));
    }
    Ok(parsed)
}

fn bad_option(key: &str, reason: &str) -> Error {
    Error::InvalidConfig {
        setting: "kafka-option",
        reason: format!("`{key}`: {reason}"),
    }
}

/// librdkafka quotes a refused value back; a value may be a secret.
fn redact(message: &str, options: &[(String, String)]) -> String {
    options
        .iter()
        .filter(|(_, v)| v.len() >= 3)
        .fold(message.to_owned(), |m, (_, v)| m.replace(v.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tls_and_sasl_settings_are_accepted_so_managed_kafka_works() {
        // Refused by a librdkafka built without OpenSSL or SASL.
        let parsed = client_options(&options(&[
            "security.protocol=SASL_SSL",
            "sasl.mechanisms=SCRAM-SHA-512",
            "sasl.username=fleet",
            "sasl.password=s3cret=with=equals",
        ]))
        .expect("TLS and SASL/SCRAM are built in");
        assert_eq!(
            parsed[3],
            ("sasl.password".into(), "s3cret=with=equals".into())
        );
        client_options(&options(&[
            "security.protocol=SSL",
            "ssl.endpoint.identification.algorithm=https",
        ]))
        .expect("TLS alone");
    }

    #[test]
    fn a_bad_option_is_refused_naming_the_key_and_never_the_value() {
        let err = client_options(&options(&["no.such.setting=hunter22"])).expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("no.such.setting"), "{text}");
        assert!(!text.contains("hunter22"), "{text}");
        let err =
            client_options(&options(&["security.protocol=carrier-pigeon"])).expect_err("bad value");
        assert!(err.to_string().contains("security.protocol"), "{err}");
        assert!(!err.to_string().contains("carrier-pigeon"), "{err}");
        let err = client_options(&options(&["group.id=other"])).expect_err("reserved");
        assert!(err.to_string().contains("cannot be overridden"), "{err}");
        assert!(client_options(&options(&["linger.ms"])).is_err());
    }
}
