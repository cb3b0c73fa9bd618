//! Counters of what the pipeline did, shared by every source (Kafka, memory bus,
//! HTTP). Lock-free atomics so the hot path only pays a relaxed add; a snapshot is
//! a plain serializable struct for `/metrics`, logs and tests.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use engine::RejectReason;

use crate::kafka::GroupMembership;

/// Live counters. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct IngestStats {
    received: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    dead_lettered: AtomicU64,
    unknown_vehicles: AtomicU64,
    batches: AtomicU64,
    sink_retries: AtomicU64,
    dead_letter_retries: AtomicU64,
    rebalances: AtomicU64,
    discarded_on_revoke: AtomicU64,
    /// The Kafka source's place in its consumer group (empty for other sources).
    membership: GroupMembership,
}

/// A point-in-time copy of [`IngestStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct StatsSnapshot {
    /// Messages (or HTTP items) seen, good or bad.
    pub received: u64,
    /// Positions written to the sink.
    pub accepted: u64,
    /// Same vehicle and device time as a position already written.
    pub duplicates: u64,
    /// Older than the newest position written for the vehicle: a replay of an
    /// older position or a late arrival (the two cannot be told apart).
    pub out_of_order: u64,
    /// Rejections, by reason code (only reasons that occurred).
    pub rejected: Vec<(&'static str, u64)>,
    /// Rejections delivered to the dead-letter destination.
    pub dead_lettered: u64,
    /// Positions of vehicles the sink does not know (kept, not an error).
    pub unknown_vehicles: u64,
    /// Sink writes.
    pub batches: u64,
    /// Sink writes retried after a failure.
    pub sink_retries: u64,
    /// Dead-letter deliveries retried after a failure.
    pub dead_letter_retries: u64,
    /// Partition revocations seen (Kafka).
    pub rebalances: u64,
    /// Fetched but unprocessed messages dropped because their partition was
    /// revoked (the new owner reads them again from the committed offset).
    pub discarded_on_revoke: u64,
}

impl StatsSnapshot {
    /// Total rejections over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Rejections with one reason.
    pub fn rejected_for(&self, reason: RejectReason) -> u64 {
        self.rejected
            .iter()
            .find(|(code, _)| *code == reason.as_str())
            .map_or(0, |(_, n)| *n)
    }
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl IngestStats {
    pub fn new() -> IngestStats {
        IngestStats::default()
    }

    pub(crate) fn received(&self, n: u64) {
        add(&self.received, n);
    }
    pub(crate) fn accepted(&self, n: u64) {
        add(&self.accepted, n);
    }
    pub(crate) fn duplicates(&self, n: u64) {
        add(&self.duplicates, n);
    }
    pub(crate) fn out_of_order(&self, n: u64) {
        add(&self.out_of_order, n);
    }
    pub(crate) fn rejected(&self, reason: RejectReason) {
        add(&self.rejected[reason.index()], 1);
    }
    pub(crate) fn dead_lettered(&self, n: u64) {
        add(&self.dead_lettered, n);
    }
    pub(crate) fn unknown_vehicles(&self, n: u64) {
        add(&self.unknown_vehicles, n);
    }
    pub(crate) fn batch(&self) {
        add(&self.batches, 1);
    }
    pub(crate) fn sink_retry(&self) {
        add(&self.sink_retries, 1);
    }
    pub(crate) fn dead_letter_retry(&self) {
        add(&self.dead_letter_retries, 1);
    }
    pub(crate) fn rebalance(&self) {
        add(&self.rebalances, 1);
    }
    pub(crate) fn discarded_on_revoke(&self, n: u64) {
        add(&self.discarded_on_revoke, n);
    }

    /// The Kafka source's partitions, lag and peers (empty for other sources).
    pub fn membership(&self) -> &GroupMembership {
        &self.membership
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            accepted: get(&self.accepted),
            duplicates: get(&self.duplicates),
            out_of_order: get(&self.out_of_order),
            rejected: RejectReason::ALL
                .iter()
                .zip(&self.rejected)
                .filter_map(|(reason, c)| {
                    let n = get(c);
                    (n > 0).then_some((reason.as_str(), n))
                })
                .collect(),
            dead_lettered: get(&self.dead_lettered),
            unknown_vehicles: get(&self.unknown_vehicles),
            batches: get(&self.batches),
            sink_retries: get(&self.sink_retries),
            dead_letter_retries: get(&self.dead_letter_retries),
            rebalances: get(&self.rebalances),
            discarded_on_revoke: get(&self.discarded_on_revoke),
        }
    }
}
