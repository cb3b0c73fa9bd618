//! Learning from the whole fleet when several nodes share it (`--bus kafka://`):
//! every `--fleet-share-every-s` the engine hands over what it learned from its
//! own trucks (edge passages, ETA outcomes, stalls and dwells), published on
//! the fleet topic; a reader feeds every other node's batches into this
//! engine as if it had seen those trucks. So each node's traffic metric and
//! ETA window reflect all trucks, not only its partitions'.
//!
//! How far two nodes can differ: a passage reaches the other nodes' traffic
//! models within one share period plus the topic's latency (milliseconds on a
//! local broker), and their routing metrics at the next re-customization
//! (`--recustomize-every-s`). With the defaults (2 s and 10 s) two nodes'
//! metrics agree within about 12 s of the same evidence; between those
//! moments they differ only on edges driven in the last period. A batch that
//! cannot be published is dropped (counted): the evidence it held is then seen
//! by its own node only, until it ages out of the traffic window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use engine::{FleetLearning, MapIdentity};
use ingest::kafka::{FleetPublisher, FleetTopicConfig, FleetTopicStats, run_fleet_reader};

use super::{SharedEngine, lock, periodically};

/// Publishes what the engine learned from its own trucks, every `every`,
/// until shutdown (and once more at the end).
pub(crate) async fn share_learning(
    engine: SharedEngine,
    publisher: FleetPublisher,
    map: MapIdentity,
    every: Duration,
    shutdown: ingest::Shutdown,
) {
    let send = || {
        let learning = lock(&engine).take_fleet_learning();
        let publisher = publisher.clone();
        async move {
            if learning.is_empty() {
                return;
            }
            if let Err(err) = publisher.send(&learning.encode(map)).await {
                tracing::warn!(error = %err, records = learning.len(), "fleet batch not published; dropped");
            }
        }
    };
    periodically(every, shutdown, &send).await;
    send().await;
}

/// Feeds other nodes' batches into the engine until shutdown. A batch of
/// another map or in a bad shape is refused and counted in `refused`.
pub(crate) async fn learn_from_fleet(
    engine: SharedEngine,
    config: FleetTopicConfig,
    stats: Arc<FleetTopicStats>,
    refused: Arc<AtomicU64>,
    map: MapIdentity,
    shutdown: ingest::Shutdown,
) {
    let on_batch = |bytes: &[u8]| match FleetLearning::decode(bytes, map) {
        Ok(learning) => {
            lock(&engine).learn_from_fleet(&learning);
        }
        Err(err) => {
            refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err, "fleet batch refused");
        }
    };
    if let Err(err) = run_fleet_reader(&config, stats, on_batch, shutdown).await {
        tracing::error!(error = %err, "the fleet topic reader stopped; this node learns from its own trucks only");
    }
}

/// Copies the fleet topic's counters into `tracker_fleet_batches_total`.
pub(crate) fn record_fleet_stats(stats: &FleetTopicStats, refused: &AtomicU64) {
    for (outcome, counter) in [
        ("sent", &stats.sent),
        ("send_failed", &stats.send_failures),
        ("received", &stats.received),
        ("own_skipped", &stats.own_skipped),
        ("refused", refused),
    ] {
        metrics::counter!("tracker_fleet_batches_total", "outcome" => outcome)
            .absolute(counter.load(Ordering::Relaxed));
    }
}
