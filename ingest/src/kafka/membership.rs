//! What this node is in its consumer group, for operators: the partitions the
//! group assigned it, how far behind it is on each (librdkafka's statistics),
//! and the other members of the group (its peers). The Kafka source keeps it
//! current: the rebalance callback sets the assignment, the statistics callback
//! the lag, and a watcher thread asks the group coordinator for the members
//! every [`PEER_CHECK_INTERVAL`]. `/readyz` and `/metrics` read it through
//! [`crate::IngestStats::membership`].
//!
//! Why a thread for the peers: listing a group's members is a blocking
//! librdkafka call (a round trip to the coordinator), which must not stall the
//! consume loop nor a runtime worker; a plain thread that sleeps in short
//! steps and stops with the source costs nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

/// How often the watcher lists the group's members.
pub const PEER_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// How long one listing may take before it counts as failed.
const PEER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition this member owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedPartition {
    pub topic: String,
    pub partition: i32,
    /// Messages behind the partition's high watermark, once librdkafka has
    /// reported it (statistics come every few seconds).
    pub lag: Option<i64>,
}

/// Another member of the group, or this one (`is_self`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPeer {
    /// The member's `client.id` (a node's is `tracker-NODE`).
    pub client_id: String,
    /// The address the coordinator sees the member connect from.
    pub client_host: String,
    pub is_self: bool,
}

/// A copy of the membership at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct MembershipSnapshot {
    /// The consumer group; empty before a Kafka source started.
    pub group_id: String,
    /// This member's `client.id`.
    pub client_id: String,
    /// The partitions assigned to this member, by topic and number.
    pub partitions: Vec<OwnedPartition>,
    /// The group's members at the last successful listing (this node
    /// included), ordered by client id.
    pub peers: Vec<GroupPeer>,
    /// When the members were last listed successfully.
    pub peers_checked_at: Option<DateTime<Utc>>,
    /// Why the last listing failed, if it did.
    pub peers_error: Option<String>,
}

impl MembershipSnapshot {
    /// The summed lag over the owned partitions whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// The live membership. Cheap to read; shared behind the stats' `Arc`.
#[derive(Debug, Default)]
pub struct GroupMembership {
    state: Mutex<MembershipSnapshot>,
}

impl GroupMembership {
    fn lock(&self) -> MutexGuard<'_, MembershipSnapshot> {
        // Plain field writes: a panic elsewhere cannot leave this inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The membership now.
    pub fn snapshot(&self) -> MembershipSnapshot {
        self.lock().clone()
    }

    pub(crate) fn joined(&self, group_id: &str, client_id: &str) {
        let mut state = self.lock();
        state.group_id = group_id.to_owned();
        state.client_id = client_id.to_owned();
    }

    /// The group assigned these partitions (added to any already owned).
    pub(crate) fn assigned(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        let mut state = self.lock();
        for (topic, partition) in partitions {
            if !state
                .partitions
                .iter()
                .any(|p| p.topic == topic && p.partition == partition)
            {
                state.partitions.push(OwnedPartition {
                    topic,
                    partition,
                    lag: None,
                });
            }
        }
        state
            .partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }

    /// The group took these partitions away.
    pub(crate) fn revoked(&self, partitions: &[(String, i32)]) {
        self.lock().partitions.retain(|p| {
            !partitions
                .iter()
                .any(|(t, n)| *t == p.topic && *n == p.partition)
        });
    }

    /// This member left the group (the source stopped): it owns nothing.
    pub(crate) fn left(&self) {
        let mut state = self.lock();
        state.partitions.clear();
        state.peers.clear();
    }

    /// librdkafka's latest lag of an owned partition (others are ignored:
    /// statistics may still mention a partition just revoked).
    pub(crate) fn lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut state = self.lock();
        if let Some(p) = state
            .partitions
            .iter_mut()
            .find(|p| p.topic == topic && p.partition == partition)
        {
            p.lag = Some(lag);
        }
    }

    fn peers_listed(&self, result: Result<Vec<GroupPeer>, String>) {
        let mut state = self.lock();
        match result {
            Ok(mut peers) => {
                peers.sort_by(|a, b| a.client_id.cmp(&b.client_id));
                state.peers = peers;
                state.peers_checked_at = Some(Utc::now());
                state.peers_error = None;
            }
            Err(reason) => state.peers_error = Some(reason),
        }
    }
}

/// The thread that lists the group's members until stopped.
pub(crate) struct PeerWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeerWatcher {
    /// Starts listing `group_id`'s members with a client of its own (not a
    /// group member: it never subscribes).
    pub(crate) fn start(
        config: &ClientConfig,
        group_id: String,
        own_client_id: String,
        stats: Arc<crate::IngestStats>,
    ) -> crate::Result<PeerWatcher> {
        let mut config = config.clone();
        // The watcher is not a member; a distinct group keeps it from ever
        // joining the nodes' group by accident.
        config.set("group.id", format!("{group_id}.watcher"));
        config.set("client.id", format!("{own_client_id}.watcher"));
        config.remove("statistics.interval.ms");
        let client: BaseConsumer = config.create()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-peers".to_owned())
            .spawn(move || {
                let step = Duration::from_millis(200);
                let mut next = std::time::Instant::now();
                while !stopping.load(Ordering::Acquire) {
                    if std::time::Instant::now() >= next {
                        let listed = list_members(&client, &group_id, &own_client_id);
                        stats.membership().peers_listed(listed);
                        next = std::time::Instant::now() + PEER_CHECK_INTERVAL;
                    }
                    std::thread::sleep(step);
                }
            })
            .map_err(|e| crate::Error::InvalidConfig {
                setting: "kafka",
                reason: format!("cannot start the group watcher thread: {e}"),
            })?;
        Ok(PeerWatcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one listing's timeout).
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the Kafka group watcher thread panicked");
        }
    }
}

fn list_members(
    client: &BaseConsumer,
    group_id: &str,
    own_client_id: &str,
) -> Result<Vec<GroupPeer>, String> {
    let list = client
        .fetch_group_list(Some(group_id), PEER_CHECK_TIMEOUT)
        .map_err(|e| format!("cannot list the group's members: {e}"))?;
    let Some(group) = list.groups().iter().find(|g| g.name() == group_id) else {
        return Ok(Vec::new());
    };
    Ok(group
        .members()
        .iter()
        .map(|m| GroupPeer {
            client_id: m.client_id().to_owned(),
            client_host: m.client_host().to_owned(),
            is_self: m.client_id() == own_client_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_follows_rebalances_and_lag_only_counts_owned_partitions() {
        let m = GroupMembership::default();
        m.joined("tracker", "tracker-a");
        m.assigned([("positions".to_owned(), 2), ("positions".to_owned(), 0)]);
        m.lag("positions", 0, 40);
        m.lag("positions", 5, 1_000); // not ours: ignored
        let s = m.snapshot();
        assert_eq!(s.group_id, "tracker");
        assert_eq!(
            s.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!(s.total_lag(), 40);

        m.revoked(&[("positions".to_owned(), 0)]);
        let s = m.snapshot();
        assert_eq!(s.partitions.len(), 1);
        assert_eq!(s.partitions[0].lag, None);
        assert_eq!(s.total_lag(), 0);

        m.left();
        assert!(m.snapshot().partitions.is_empty());
    }

    #[test]
    fn a_failed_listing_keeps_the_last_peers_and_says_why() {
        let m = GroupMembership::default();
        m.peers_listed(Ok(vec![
            GroupPeer {
                client_id: "tracker-b".into(),
                client_host: "/127.0.0.1".into(),
                is_self: false,
            },
            GroupPeer {
                client_id: "tracker-a".into(),
                client_host: "/127.0.0.1".into(),
                is_self: true,
            },
        ]));
        m.peers_listed(Err("timed out".into()));
        let s = m.snapshot();
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.peers[0].client_id, "tracker-a");
        assert_eq!(s.peers_error.as_deref(), Some("timed out"));
        assert!(s.peers_checked_at.is_some());
    }
}
