//! What the engine has learned outlives a restart: the fleet's calibrator (the
//! error distribution by horizon that makes the p10–p90 windows, and the
//! finished stalls) is read from the store at start and saved back every few
//! minutes and once more at shutdown. Without it, every restart would start
//! every window from the prior again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use engine::Calibrator;
use portal_api::Store;

use super::{SharedEngine, lock};

/// The calibrator's name in the store's learned state.
pub(crate) const CALIBRATOR: &str = "engine.calibrator";

/// Reads the saved calibrator into the engine. `Ok(false)` when there is none
/// or it does not fit the engine's settings (logged; the engine starts from
/// the prior); an error only when the store cannot be read.
pub(crate) async fn restore(engine: &SharedEngine, store: &dyn Store) -> anyhow::Result<bool> {
    let Some((state, saved_at)) = store
        .learned(CALIBRATOR.into())
        .await
        .context("reading the saved calibrator")?
    else {
        return Ok(false);
    };
    let engine = Arc::clone(engine);
    let restored = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let saved: Calibrator =
            serde_json::from_str(&state).context("the saved calibrator does not parse")?;
        let recorded = saved.recorded();
        lock(&engine).restore_calibrator(saved)?;
        Ok(recorded)
    })
    .await?;
    match restored {
        Ok(recorded) => {
            tracing::info!(%saved_at, recorded, "ETA calibration restored");
            Ok(true)
        }
        Err(err) => {
            tracing::warn!(%saved_at, error = %err, "saved ETA calibration not used; starting from the prior");
            Ok(false)
        }
    }
}

/// Saves the engine's calibrator now.
pub(crate) async fn save(engine: &SharedEngine, store: &dyn Store) -> anyhow::Result<()> {
    let engine = Arc::clone(engine);
    let state =
        tokio::task::spawn_blocking(move || serde_json::to_string(lock(&engine).calibrator()))
            .await?
            .context("serializing the calibrator")?;
    store
        .save_learned(CALIBRATOR.into(), state, Utc::now())
        .await
        .context("saving the calibrator")
}

/// Saves the calibrator every `every` until shutdown (the caller saves once
/// more after the last positions).
pub(crate) async fn keep_saved(
    engine: SharedEngine,
    store: Arc<dyn Store>,
    every: Duration,
    shutdown: ingest::Shutdown,
) {
    super::periodically(every, shutdown, || async {
        if let Err(err) = save(&engine, &*store).await {
            tracing::warn!(error = %err, "saving the ETA calibration failed");
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use engine::{
        CalibrationConfig, EtaConfig, Horizon, LiveConfig, LiveEngine, Metric, Router,
        SpeedProfile, TurnCosts, Tz,
    };
    use portal_api::SqliteStore;
    use road_graph::DrawnMap;

    use super::*;

    fn engine(calibration: CalibrationConfig) -> SharedEngine {
        let mut map = DrawnMap::new("a---------b", 200.0);
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
            !restore(&before, &store).await.expect("reads"),
            "nothing saved yet"
        );
        lock(&before)
            .restore_calibrator(learned())
            .expect("same settings");
        save(&before, &store).await.expect("saves");

        let after = engine(CalibrationConfig::standard());
        assert!(restore(&after, &store).await.expect("reads"));
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
        assert!(!restore(&elsewhere, &store).await.expect("reads"));
        assert_eq!(lock(&elsewhere).calibrator().recorded(), 0);
    }

    #[tokio::test]
    async fn a_saved_state_that_does_not_parse_is_not_used() {
        let (_dir, store) = fresh_store().await;
        store
            .save_learned(CALIBRATOR.into(), "{not json".into(), Utc::now())
            .await
            .expect("saves");
        let engine = engine(CalibrationConfig::standard());
        assert!(!restore(&engine, &store).await.expect("the store reads"));
        assert_eq!(lock(&engine).calibrator().recorded(), 0);
    }
}
