//! The pipeline's metrics: what the engine, the sink and the ingest sources
//! count, recorded into the `metrics` facade that `/metrics` renders (see
//! `portal_api::prometheus`). The engine itself stays free of any recorder: it
//! keeps plain counters ([`engine::LiveCounters`], [`engine::TrafficCounters`],
//! the router's query count) and times its stages only with the stopwatch the
//! sink hands it; this module copies those values in, after every batch or at
//! scrape time.
//!
//! Sources, as labels: `http` (`POST /api/v1/positions`, over the in-process
//! bus), `kafka` (read from the positions topic) and `simulate` (the demo
//! fleet, on either bus).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use engine::{LiveCounters, Position, PositionSource, StageTimings, TrafficCounters};
use ingest::IngestStats;

/// The `source` label of a position reaching the engine over a bus whose own
/// label is `bus` (`http` for the in-process bus, `kafka`).
pub(crate) fn source_label(position: &Position, bus: &'static str) -> &'static str {
    match position.source {
        PositionSource::Simulator => "simulate",
        _ => bus,
    }
}

/// The engine's fleet-wide state after a batch, copied out under its lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineSnapshot {
    pub(crate) counters: LiveCounters,
    pub(crate) traffic: TrafficCounters,
    pub(crate) route_queries: u64,
    pub(crate) vehicles: usize,
    pub(crate) tracked_orders: usize,
}

/// Records one engine batch: its stage times and the engine's counters.
pub(crate) fn record_engine(timings: Option<StageTimings>, engine: &EngineSnapshot) {
    if let Some(t) = timings {
        metrics::histogram!("tracker_stage_seconds", "stage" => "match").record(t.match_s);
        metrics::histogram!("tracker_stage_seconds", "stage" => "track").record(t.track_s);
    }
    let c = &engine.counters;
    metrics::counter!("tracker_engine_positions_total").absolute(c.positions);
    metrics::counter!("tracker_match_total", "outcome" => "matched").absolute(c.matched);
    for (reason, n) in [
        ("no_road_nearby", c.unmatched_no_road_nearby),
        ("invalid_position", c.unmatched_invalid_position),
        ("other", c.unmatched_other),
    ] {
        metrics::counter!("tracker_unmatched_total", "reason" => reason).absolute(n);
    }
    let judged =
        c.matched + c.unmatched_no_road_nearby + c.unmatched_invalid_position + c.unmatched_other;
    if judged > 0 {
        metrics::gauge!("tracker_match_rate").set(c.matched as f64 / judged as f64);
    }
    metrics::counter!("tracker_eta_updates_total").absolute(c.eta_updates);
    metrics::counter!("tracker_status_changes_total").absolute(c.status_changes);
    metrics::counter!("tracker_route_queries_total").absolute(engine.route_queries);
    metrics::counter!("tracker_vehicle_relocations_total").absolute(c.relocations);
    metrics::counter!("tracker_vehicles_retired_total").absolute(c.vehicles_retired);
    metrics::counter!("tracker_untrackable_orders_total").absolute(c.untrackable_orders);
    metrics::counter!("tracker_fleet_records_total", "outcome" => "learned")
        .absolute(c.fleet_learned);
    metrics::counter!("tracker_fleet_records_total", "outcome" => "dropped")
        .absolute(c.fleet_dropped);
    metrics::gauge!("tracker_vehicles").set(engine.vehicles as f64);
    metrics::gauge!("tracker_tracked_orders").set(engine.tracked_orders as f64);
    let t = &engine.traffic;
    for (outcome, n) in [
        ("accepted", t.accepted),
        ("unknown_edge", t.unknown_edge),
        ("too_short", t.too_short),
        ("too_partial", t.too_partial),
        ("standing", t.standing),
        ("too_fast", t.too_fast),
    ] {
        metrics::counter!("tracker_traffic_samples_total", "outcome" => outcome).absolute(n);
    }
}

/// Counts a batch's positions by source and what the engine made of them:
/// `applied` (matched or not, shown and tracked), `outlier` (refused as
/// physically implausible) and `engine_stale` (not newer than the vehicle's
/// last fix). `applied_keys` are the applied positions' (tenant, vehicle,
/// time), from the engine's position events.
pub(crate) fn record_outcomes(
    batch: &[Position],
    bus: &'static str,
    outliers: &[&Position],
    applied_keys: &[(&str, &str, chrono::DateTime<chrono::Utc>)],
) {
    const SOURCES: [&str; 3] = ["http", "kafka", "simulate"];
    let index = |label: &str| SOURCES.iter().position(|s| *s == label).unwrap_or(0);
    let mut total = [0u64; 3];
    for p in batch {
        total[index(source_label(p, bus))] += 1;
    }
    let mut outlier = [0u64; 3];
    for p in outliers {
        outlier[index(source_label(p, bus))] += 1;
    }
    let mut applied = [0u64; 3];
    let sources_present = total.iter().filter(|n| **n > 0).count();
    if sources_present <= 1 {
        let only = total.iter().position(|n| *n > 0).unwrap_or(0);
        applied[only] = applied_keys.len() as u64;
    } else {
        // A batch from several sources: find each applied position's source.
        let by_key: std::collections::HashMap<(&str, &str, chrono::DateTime<chrono::Utc>), usize> =
            batch
                .iter()
                .map(|p| {
                    let key = (p.tenant_id.as_str(), p.vehicle_id.as_str(), p.time);
                    (key, index(source_label(p, bus)))
                })
                .collect();
        for key in applied_keys {
            if let Some(i) = by_key.get(key) {
                applied[*i] += 1;
            }
        }
    }
    for (i, source) in SOURCES.iter().enumerate() {
        let stale = total[i].saturating_sub(applied[i] + outlier[i]);
        for (outcome, n) in [
            ("applied", applied[i]),
            ("outlier", outlier[i]),
            ("engine_stale", stale),
        ] {
            if n > 0 {
                metrics::counter!("tracker_positions_total", "source" => *source, "outcome" => outcome)
                    .increment(n);
            }
        }
        if outlier[i] > 0 {
            metrics::counter!(
                "tracker_positions_rejected_total",
                "source" => *source,
                "reason" => "implausible_jump"
            )
            .increment(outlier[i]);
        }
    }
}

/// Copies a Kafka source's counters into `tracker_positions_total{source="kafka"}`
/// and `tracker_positions_rejected_total{source="kafka"}` (every rejection on
/// Kafka is also dead-lettered to the dead-letter topic).
pub(crate) fn record_kafka_stats(stats: &IngestStats) {
    let s = stats.snapshot();
    for (outcome, n) in [
        ("received", s.received),
        ("accepted", s.accepted),
        ("duplicate", s.duplicates),
        ("stale", s.out_of_order),
        ("rejected", s.rejected_total()),
    ] {
        metrics::counter!("tracker_positions_total", "source" => "kafka", "outcome" => outcome)
            .absolute(n);
    }
    for (reason, n) in &s.rejected {
        metrics::counter!("tracker_positions_rejected_total", "source" => "kafka", "reason" => *reason)
            .absolute(*n);
    }
    record_bus_stats("kafka", stats);
}

/// The bus consumer's own work: sink writes, retries, rebalances.
pub(crate) fn record_bus_stats(bus: &'static str, stats: &IngestStats) {
    let s = stats.snapshot();
    metrics::counter!("tracker_bus_batches_total", "bus" => bus).absolute(s.batches);
    metrics::counter!("tracker_bus_sink_retries_total", "bus" => bus).absolute(s.sink_retries);
    metrics::counter!("tracker_bus_duplicates_total", "bus" => bus).absolute(s.duplicates);
    metrics::counter!("tracker_bus_out_of_order_total", "bus" => bus).absolute(s.out_of_order);
    metrics::counter!("tracker_bus_rebalances_total", "bus" => bus).absolute(s.rebalances);
}

/// When the routing metric the trackers use was last installed (the free-flow
/// one at start counts), for `tracker_metric_age_seconds`.
#[derive(Debug)]
pub(crate) struct MetricClock {
    origin: Instant,
    installed_ms: AtomicU64,
}

impl MetricClock {
    /// A clock whose metric was installed now.
    pub(crate) fn new() -> MetricClock {
        MetricClock {
            origin: Instant::now(),
            installed_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn installed_now(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.installed_ms.store(ms, Ordering::Relaxed);
    }

    /// Seconds since the last install.
    pub(crate) fn age_s(&self) -> f64 {
        let now_ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(self.installed_ms.load(Ordering::Relaxed)) as f64 / 1000.0
    }
}

/// Registers the scrape-time values: the metric's age, and the bus
/// consumer's counters.
pub(crate) fn register_scrape_hooks(
    state: &portal_api::AppState,
    clock: Arc<MetricClock>,
    stats: Arc<IngestStats>,
    bus: &'static str,
) {
    state.on_scrape(move || {
        metrics::gauge!("tracker_metric_age_seconds").set(clock.age_s());
        if bus == "kafka" {
            record_kafka_stats(&stats);
            let membership = stats.membership().snapshot();
            metrics::gauge!("tracker_kafka_assigned_partitions")
                .set(membership.partitions.len() as f64);
            metrics::gauge!("tracker_kafka_group_members").set(membership.peers.len() as f64);
        } else {
            record_bus_stats("memory", &stats);
        }
    });
}

/// Lets `/readyz` show this node: its name, and for Kafka its group, the
/// partitions it owns with their lag, and the group's members.
pub(crate) fn report_node(
    state: &portal_api::AppState,
    name: String,
    stats: Arc<IngestStats>,
    bus: &'static str,
) {
    use portal_api::contract::{NodePartitionView, NodePeerView, NodeView};
    state.report_node(move || {
        let m = stats.membership().snapshot();
        NodeView {
            name: name.clone(),
            bus: bus.to_owned(),
            group: (!m.group_id.is_empty()).then(|| m.group_id.clone()),
            lag: m.total_lag(),
            partitions: m
                .partitions
                .into_iter()
                .map(|p| NodePartitionView {
                    topic: p.topic,
                    partition: p.partition,
                    lag: p.lag,
                })
                .collect(),
            peers: m
                .peers
                .into_iter()
                .map(|p| NodePeerView {
                    client_id: p.client_id,
                    host: p.client_host,
                    is_self: p.is_self,
                })
                .collect(),
            peers_checked_at: m.peers_checked_at.map(|t| t.to_rfc3339()),
            peers_error: m.peers_error,
        }
    });
}
