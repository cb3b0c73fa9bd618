//! Access to the test Kafka broker (tansu, address in `TRACKER_TEST_KAFKA`):
//! unique topic names per test, topic creation, and the CI rule (fail when `CI`
//! is set and the broker is absent; skip with a notice otherwise).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The broker address, or `None` (after printing why) when the test should skip.
pub fn broker(test: &str) -> Option<String> {
    let addr = std::env::var("TRACKER_TEST_KAFKA").ok();
    let in_ci = std::env::var_os("CI").is_some();
    let reachable = addr.as_deref().is_some_and(|a| {
        a.parse::<SocketAddr>()
            .is_ok_and(|s| TcpStream::connect_timeout(&s, Duration::from_secs(2)).is_ok())
    });
    match (reachable, in_ci) {
        (true, _) => addr,
        (false, true) => panic!(
            "{test}: CI is set but the Kafka broker TRACKER_TEST_KAFKA={addr:?} is not reachable"
        ),
        (false, false) => {
            eprintln!(
                "SKIPPED {test}: no Kafka broker (set TRACKER_TEST_KAFKA=127.0.0.1:PORT to a tansu broker)"
            );
            None
        }
    }
}

/// A topic name no other test (or earlier run against the same broker) uses.
pub fn unique_topic(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "t-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A producer for tests against tansu. tansu 0.6.0 returns nothing when a fetch
/// starts at an offset inside a multi-record batch (checked: 100 messages in one
/// batch, a consumer assigned at offset 50 receives nothing), which a consumer
/// restarting from a committed offset hits at once. Real Kafka returns the whole
/// batch and librdkafka skips the records before the offset. So test producers
/// send one record per batch; the production settings are unchanged.
pub fn tansu_publisher(brokers: &str, topic: &str) -> ingest::kafka::KafkaPublisher {
    ingest::kafka::KafkaPublisher::new(
        brokers,
        topic,
        ingest::kafka::ClientTuning::Tuned,
        &[("batch.num.messages".into(), "1".into())],
    )
    .expect("producer")
}
