//! What the engine has learned outlives a restart: the fleet's calibrator (the
//! error distribution by horizon that makes the p10–p90 windows, and the
//! finished stalls), the traffic model's history (the running sums its
//! hour-of-week profile is learned from) are read from the store at start, and
//! saved back every few minutes and once more at shutdown with each tracker's
//! memory of its truck (pace, hours-of-service clocks, stands, own errors),
//! one row per order; a truck's memories are read back when the node takes
//! the truck up (its first position after a start, or after its Kafka
//! partition came to this node: see [`super::ownership`]).
//! Without them, every restart would start every window from the prior, every
//! road from free flow and every driver's day from zero hours.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use engine::{Calibrator, LiveEngine, ProfileHistory, TrackerMemory, VehicleMemory};
use portal_api::{Store, TrackerMemoryRecord};

use super::{SharedEngine, lock};

/// The calibrator's name in the store's learned state.
pub(crate) const CALIBRATOR: &str = "engine.calibrator";
/// The traffic profile history's name in the store's learned state.
pub(crate) const TRAFFIC_PROFILE: &str = "traffic.profile_history";

/// What [`restore`] took up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restored {
    pub(crate) calibrator: bool,
    pub(crate) traffic_profile: bool,
}

/// Reads the saved calibrator and traffic profile history into the engine.
/// One that is missing or does not fit (other settings, another map) is
/// logged and left out: the engine starts that part afresh. An error only
/// when the store cannot be read.
pub(crate) async fn restore(engine: &SharedEngine, store: &dyn Store) -> anyhow::Result<Restored> {
    let calibrator = restore_one(
        engine,
        store,
        CALIBRATOR,
        "ETA calibration",
        |live, state| {
            let saved: Calibrator =
                serde_json::from_str(state).context("the saved calibrator does not parse")?;
            let recorded = saved.recorded();
            live.restore_calibrator(saved)?;
            Ok(recorded)
        },
    )
    .await?;
    let traffic_profile = restore_one(
        engine,
        store,
        TRAFFIC_PROFILE,
        "traffic profile",
        |live, state| {
            let saved: ProfileHistory =
                serde_json::from_str(state).context("the saved profile history does not parse")?;
            let samples = saved.samples();
            live.restore_traffic_history(saved)?;
            Ok(samples)
        },
    )
    .await?;
    Ok(Restored {
        calibrator,
        traffic_profile,
    })
}

/// Reads one saved state and hands it to `apply` (which returns how many
/// samples it holds, for the log).
async fn restore_one(
    engine: &SharedEngine,
    store: &dyn Store,
    name: &'static str,
    what: &'static str,
    apply: fn(&mut LiveEngine, &str) -> anyhow::Result<u64>,
) -> anyhow::Result<bool> {
    let Some((state, saved_at)) = store
        .learned(name.into())
        .await
        .with_context(|| format!("reading the saved {what}"))?
    else {
        return Ok(false);
    };
    let engine = Arc::clone(engine);
    let restored = tokio::task::spawn_blocking(move || apply(&mut lock(&engine), &state)).await?;
    match restored {
        Ok(samples) => {
            tracing::info!(%saved_at, samples, "{what} restored");
            Ok(true)
        }
        Err(err) => {
            tracing::warn!(%saved_at, error = %err, "saved {what} not used; starting afresh");
            Ok(false)
        }
    }
}

/// The store's records of trackers' memories, as the engine takes them: one
/// that does not parse (another version's) is logged and left out, so the
/// tracker starts that truck afresh.
pub(crate) fn memories_of(records: Vec<TrackerMemoryRecord>) -> Vec<TrackerMemory> {
    records
        .into_iter()
        .filter_map(|r| match serde_json::from_str::<TrackerMemory>(&r.state) {
            Ok(memory) => Some(memory),
            Err(err) => {
                tracing::warn!(
                    order = %r.order_id,
                    vehicle = %r.vehicle_id,
                    error = %err,
                    "a saved tracker memory does not parse; that truck starts afresh"
                );
                None
            }
        })
        .collect()
}

/// The engine's memories as the store keeps them; those of trackers that
/// never took a fix hold nothing and are left out.
pub(crate) fn records_of(
    memories: Vec<VehicleMemory>,
    saved_at: DateTime<Utc>,
) -> anyhow::Result<Vec<TrackerMemoryRecord>> {
    memories
        .into_iter()
        .filter_map(|m| {
            let applied_through = m.memory.applied_through()?;
            Some(
                serde_json::to_string(&m.memory)
                    .context("serializing a tracker's memory")
                    .map(|state| TrackerMemoryRecord {
                        tenant_id: m.vehicle.tenant_id,
                        vehicle_id: m.vehicle.vehicle_id,
                        order_id: m.memory.order_id().clone(),
                        state,
                        applied_through,
                        saved_at,
                    }),
            )
        })
        .collect()
}

/// Saves the engine's calibrator, traffic profile history and trackers'
/// memories now. The engine is locked only to copy them; serializing happens
/// after.
pub(crate) async fn save(engine: &SharedEngine, store: &dyn Store) -> anyhow::Result<()> {
    let engine = Arc::clone(engine);
    let (calibrator, history, trackers) = tokio::task::spawn_blocking(move || {
        let (calibrator, history, trackers) = {
            let live = lock(&engine);
            (
                live.calibrator().clone(),
                live.traffic_history().cloned(),
                live.tracker_memories(),
            )
        };
        let calibrator =
            serde_json::to_string(&calibrator).context("serializing the calibrator")?;
        let history = history
            .map(|h| serde_json::to_string(&h))
            .transpose()
            .context("serializing the traffic profile history")?;
        let trackers = records_of(trackers, Utc::now())?;
        anyhow::Ok((calibrator, history, trackers))
    })
    .await??;
    let now = Utc::now();
    store
        .save_learned(CALIBRATOR.into(), calibrator, now)
        .await
        .context("saving the calibrator")?;
    store
        .save_tracker_memories(trackers)
        .await
        .context("saving the trackers' memories")?;
    if let Some(history) = history {
        store
            .save_learned(TRAFFIC_PROFILE.into(), history, now)
            .await
            .context("saving the traffic profile history")?;
    }
    Ok(())
}

/// Saves what the engine learned every `every` until shutdown (the caller
/// saves once more after the last positions).
pub(crate) async fn keep_saved(
    engine: SharedEngine,
    store: Arc<dyn Store>,
    every: Duration,
    shutdown: ingest::Shutdown,
) {
    super::periodically(every, shutdown, || async {
        if let Err(err) = save(&engine, &*store).await {
            tracing::warn!(error = %err, "saving what the engine learned failed");
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use engine::{
        ActiveOrder, ActiveStop, CalibrationConfig, EtaConfig, Horizon, LiveConfig, LiveEngine,
        Metric, OrderId, OrderStatus, Position, PositionSource, Router, SpeedProfile, StopKind,
        TurnCosts, Tz, VehicleId,
    };
    use portal_api::SqliteStore;
    use road_graph::{DrawnMap, NodeId};

    use super::*;

    fn engine(calibration: CalibrationConfig) -> SharedEngine {
        engine_on("a---------b", calibration)
    }

    fn engine_on(drawing: &str, calibration: CalibrationConfig) -> SharedEngine {
        let mut map = DrawnMap::new(drawing, 200.0);
        map.way("ab", &[("highway", "primary")]);
        let (graph, _) = map.build().expect("builds");
        let graph = Arc::new(graph);
        let router = Router::new(
            Arc::clone(&graph),
            &TurnCosts::TRUCK,
            Metric::free_flow(&graph),
        )
        .expect("router");
        let mut config = LiveConfig::truck(Tz::UTC);
        config.calibration = calibration;
        let live = LiveEngine::new(Arc::new(router), config, SpeedProfile::free_flow(Tz::UTC))
            .expect("engine");
        Arc::new(Mutex::new(live))
    }

    /// An empty store in a temporary folder (kept while the folder lives).
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store");
        (dir, store)
    }

    /// A calibrator that has seen twenty trips run 0–40 % late and twenty
    /// stalls.
    fn learned() -> Calibrator {
        let mut cal = Calibrator::new(CalibrationConfig::standard()).expect("valid");
        let stall = EtaConfig::TRUCK.stall;
        for trip in 0..20 {
            for i in 0..40 {
                let late = 1.0 + 0.01 * f64::from(i);
                cal.record(Horizon::drive(3000.0).on_trip(trip), 3000.0 * late);
            }
            cal.record_stall(&stall, 600.0 + 60.0 * trip as f64);
        }
        cal
    }

    #[tokio::test]
    async fn a_restarted_engine_takes_up_the_windows_it_had_learned() {
        let (_dir, store) = fresh_store().await;
        let before = engine(CalibrationConfig::standard());
        assert!(
            !restore(&before, &store).await.expect("reads").calibrator,
            "nothing saved yet"
        );
        lock(&before)
            .restore_calibrator(learned())
            .expect("same settings");
        save(&before, &store).await.expect("saves");

        let after = engine(CalibrationConfig::standard());
        assert!(restore(&after, &store).await.expect("reads").calibrator);
        {
            let (before, after) = (lock(&before), lock(&after));
            assert_eq!(after.calibrator(), before.calibrator());
            assert_eq!(after.calibrator().recorded(), 800);
            assert!(after.calibrator().window_s(Horizon::drive(3000.0)).1 > 1000.0);
        }

        // An engine calibrated by other horizons starts from its prior.
        let mut other = CalibrationConfig::standard();
        other.bucket_max_s = vec![600.0, 3600.0];
        let elsewhere = engine(other);
        assert!(!restore(&elsewhere, &store).await.expect("reads").calibrator);
        assert_eq!(lock(&elsewhere).calibrator().recorded(), 0);
    }

    #[tokio::test]
    async fn a_restarted_engine_takes_up_its_traffic_profile_on_the_same_map_only() {
        let (_dir, store) = fresh_store().await;
        let before = engine(CalibrationConfig::standard());
        {
            // Twenty slow passages of a–b at 08:00 on Mondays.
            let mut live = lock(&before);
            let graph = Arc::clone(live.router().graph());
            let mut history = ProfileHistory::new(&graph, Tz::UTC);
            let monday_8 = chrono::DateTime::parse_from_rfc3339("2025-01-06T08:00:00Z")
                .expect("time")
                .with_timezone(&Utc);
            for k in 0..20 {
                let entered_at = monday_8 + chrono::Duration::weeks(k);
                let edge = road_graph::EdgeId(0);
                history.record(
                    &graph,
                    &engine::SpeedObservation {
                        edge,
                        entered_at,
                        exited_at: entered_at + chrono::Duration::seconds(3600),
                        distance_m: graph.edge_length_m(edge),
                    },
                    Tz::UTC,
                    live.speed_profile(),
                );
            }
            live.restore_traffic_history(history).expect("same map");
            assert_eq!(live.speed_profile().samples(), 20);
        }
        save(&before, &store).await.expect("saves");

        let after = engine(CalibrationConfig::standard());
        assert_eq!(lock(&after).speed_profile().samples(), 0, "free flow");
        let restored = restore(&after, &store).await.expect("reads");
        assert!(restored.traffic_profile && restored.calibrator);
        assert_eq!(lock(&after).speed_profile(), lock(&before).speed_profile());

        // An engine on another map keeps free flow (and its calibrator).
        let elsewhere = engine_on("a---b", CalibrationConfig::standard());
        let restored = restore(&elsewhere, &store).await.expect("reads");
        assert!(!restored.traffic_profile && restored.calibrator);
        assert_eq!(lock(&elsewhere).speed_profile().samples(), 0);
    }

    /// The order of truck T1 from a to b, delivered at b.
    fn order_a_to_b(engine: &SharedEngine) -> ActiveOrder {
        let live = lock(engine);
        let graph = live.router().graph();
        ActiveOrder {
            tenant_id: engine::TenantId("ten_test".into()),
            order_id: OrderId("ord_restart".into()),
            vehicle_id: VehicleId("T1".into()),
            status: OrderStatus::PickedUp,
            stops: vec![ActiveStop {
                kind: StopKind::Delivery,
                position: graph.node_pos(NodeId(1)),
                window: None,
                geofence: None,
                arrived_at: None,
                departed_at: None,
                skipped_at: None,
            }],
        }
    }

    #[tokio::test]
    async fn a_restarted_engine_resumes_each_truck_where_it_was() {
        let (_dir, store) = fresh_store().await;
        let before = engine(CalibrationConfig::standard());
        let order = order_a_to_b(&before);
        let start = Utc::now() - chrono::Duration::hours(1);
        {
            // T1 crawls 600 m from a towards b, a fix every 10 s for 10 min.
            let mut live = lock(&before);
            live.set_orders(vec![order.clone()]);
            let graph = Arc::clone(live.router().graph());
            let (a, b) = (graph.node_pos(NodeId(0)), graph.node_pos(NodeId(1)));
            let positions: Vec<Position> = (0..=60)
                .map(|k| {
                    let share = 0.3 * f64::from(k) / 60.0;
                    Position {
                        tenant_id: engine::TenantId("ten_test".into()),
                        vehicle_id: order.vehicle_id.clone(),
                        time: start + chrono::Duration::seconds(10 * i64::from(k)),
                        lat: a.lat + share * (b.lat - a.lat),
                        lon: a.lon + share * (b.lon - a.lon),
                        speed_mps: None,
                        heading_deg: None,
                        odometer_m: None,
                        hos_drive_remaining_s: None,
                        accuracy_m: None,
                        source: PositionSource::Simulator,
                    }
                })
                .collect();
            live.process(&positions, start);
            let memories = live.tracker_memories();
            assert_eq!(memories.len(), 1);
        }
        save(&before, &store).await.expect("saves");

        // The new engine reads the orders, then the trucks' memories.
        let after = engine(CalibrationConfig::standard());
        restore(&after, &store).await.expect("reads");
        lock(&after).set_orders(vec![order.clone()]);
        assert_ne!(
            lock(&after).tracker_memories(),
            lock(&before).tracker_memories(),
            "a fresh tracker knows nothing of T1"
        );
        // Read back when the truck is taken up (its first position).
        let records = store
            .tracker_memories(vec![order.vehicle_key()])
            .await
            .expect("reads");
        assert_eq!(records.len(), 1, "one row per order");
        let resumed = lock(&after).resume_trackers(memories_of(records.clone()));
        assert_eq!(resumed, (1, 0));
        // As the store has them (JSON keeps floats to the last bit or so).
        let through_json: Vec<TrackerMemory> = lock(&before)
            .tracker_memories()
            .into_iter()
            .map(|m| {
                serde_json::from_str(&serde_json::to_string(&m.memory).expect("saves"))
                    .expect("parses")
            })
            .collect();
        let after_memories: Vec<TrackerMemory> = lock(&after)
            .tracker_memories()
            .into_iter()
            .map(|m| m.memory)
            .collect();
        assert_eq!(after_memories, through_json);

        // Memories of orders the engine no longer has are dropped.
        let without = engine(CalibrationConfig::standard());
        assert_eq!(lock(&without).resume_trackers(memories_of(records)), (0, 0));
    }

    #[tokio::test]
    async fn an_older_memory_never_replaces_a_newer_one_and_a_bad_one_is_left_out() {
        let (_dir, store) = fresh_store().await;
        let before = engine(CalibrationConfig::standard());
        let order = order_a_to_b(&before);
        lock(&before).set_orders(vec![order.clone()]);
        let t0 = Utc::now() - chrono::Duration::minutes(30);
        let fix = |k: i64| {
            let graph = Arc::clone(lock(&before).router().graph());
            let a = graph.node_pos(NodeId(0));
            Position {
                tenant_id: engine::TenantId("ten_test".into()),
                vehicle_id: order.vehicle_id.clone(),
                time: t0 + chrono::Duration::seconds(10 * k),
                lat: a.lat,
                lon: a.lon + 0.0001 * k as f64,
                speed_mps: None,
                heading_deg: None,
                odometer_m: None,
                hos_drive_remaining_s: None,
                accuracy_m: None,
                source: PositionSource::Simulator,
            }
        };
        let first: Vec<Position> = (0..5).map(fix).collect();
        lock(&before).process(&first, t0);
        let older = records_of(lock(&before).tracker_memories(), Utc::now()).expect("serializes");
        let more: Vec<Position> = (5..10).map(fix).collect();
        lock(&before).process(&more, t0);
        let newer = records_of(lock(&before).tracker_memories(), Utc::now()).expect("serializes");
        assert_eq!(newer[0].applied_through, more[4].time);

        store
            .save_tracker_memories(newer.clone())
            .await
            .expect("saves");
        // A node letting go of the truck late: its save goes less far.
        store.save_tracker_memories(older).await.expect("saves");
        let kept = store
            .tracker_memories(vec![order.vehicle_key()])
            .await
            .expect("reads");
        // Kept to the millisecond, as every time in the store.
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, newer[0].state);
        assert_eq!(
            kept[0].applied_through.timestamp_millis(),
            newer[0].applied_through.timestamp_millis()
        );

        let mut bad = newer[0].clone();
        bad.state = "{not a memory".into();
        assert!(memories_of(vec![bad]).is_empty());
    }

    #[tokio::test]
    async fn a_saved_state_that_does_not_parse_is_not_used() {
        let (_dir, store) = fresh_store().await;
        store
            .save_learned(CALIBRATOR.into(), "{not json".into(), Utc::now())
            .await
            .expect("saves");
        let engine = engine(CalibrationConfig::standard());
        assert!(
            !restore(&engine, &store)
                .await
                .expect("the store reads")
                .calibrator
        );
        assert_eq!(lock(&engine).calibrator().recorded(), 0);
    }
}
