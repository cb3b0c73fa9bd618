//! What the engine has learned outlives a restart: the fleet's calibrator (the
//! error distribution by horizon that makes the p10–p90 windows, and the
//! finished stalls), the traffic model's history (the running sums its
//! hour-of-week profile is learned from) and each tracker's memory of its
//! truck (pace, hours-of-service clocks, stands, own errors) are read from the
//! store at start and saved back every few minutes and once more at shutdown.
//! Without them, every restart would start every window from the prior, every
//! road from free flow and every driver's day from zero hours.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use engine::{Calibrator, LiveEngine, ProfileHistory, TrackerMemory};
use portal_api::Store;

use super::{SharedEngine, lock};

/// The calibrator's name in the store's learned state.
pub(crate) const CALIBRATOR: &str = "engine.calibrator";
/// The traffic profile history's name in the store's learned state.
pub(crate) const TRAFFIC_PROFILE: &str = "traffic.profile_history";

/// The trackers' memories' name in the store's learned state.
pub(crate) const TRACKERS: &str = "engine.trackers";

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

/// Hands the saved trackers' memories to the trackers of the orders the
/// engine now has (call after the first order sync): `(whole, in part)`. A
/// save that does not parse is logged and not used.
pub(crate) async fn resume_trackers(
    engine: &SharedEngine,
    store: &dyn Store,
) -> anyhow::Result<(usize, usize)> {
    let Some((state, saved_at)) = store
        .learned(TRACKERS.into())
        .await
        .context("reading the saved trackers")?
    else {
        return Ok((0, 0));
    };
    let engine = Arc::clone(engine);
    let resumed = tokio::task::spawn_blocking(move || {
        serde_json::from_str::<Vec<TrackerMemory>>(&state)
            .map(|memories| lock(&engine).resume_trackers(memories))
    })
    .await?;
    match resumed {
        Ok((whole, part)) => {
            tracing::info!(%saved_at, whole, part, "trackers resumed");
            Ok((whole, part))
        }
        Err(err) => {
            tracing::warn!(%saved_at, error = %err, "saved trackers not used; starting afresh");
            Ok((0, 0))
        }
    }
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
        let trackers = serde_json::to_string(&trackers).context("serializing the trackers")?;
        anyhow::Ok((calibrator, history, trackers))
    })
    .await??;
    let now = Utc::now();
    store
        .save_learned(CALIBRATOR.into(), calibrator, now)
        .await
        .context("saving the calibrator")?;
    store
        .save_learned(TRACKERS.into(), trackers, now)
        .await
        .context("saving the trackers")?;
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
        lock(&after).set_orders(vec![order]);
        assert_ne!(
            lock(&after).tracker_memories(),
            lock(&before).tracker_memories(),
            "a fresh tracker knows nothing of T1"
        );
        let resumed = resume_trackers(&after, &store).await.expect("reads");
        assert_eq!(resumed, (1, 0));
        // As the store has them (JSON keeps floats to the last bit or so).
        let through_json: Vec<TrackerMemory> = serde_json::from_str(
            &serde_json::to_string(&lock(&before).tracker_memories()).expect("saves"),
        )
        .expect("parses");
        assert_eq!(lock(&after).tracker_memories(), through_json);

        // Memories of orders the engine no longer has are dropped.
        let without = engine(CalibrationConfig::standard());
        assert_eq!(
            resume_trackers(&without, &store).await.expect("reads"),
            (0, 0)
        );
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
