//! The hand-over of trucks between the nodes of one Kafka group, through the
//! store. The group's rebalance is meant to keep two nodes from reading one
//! partition at once, but it does not always: a broker may hand a partition
//! to its new owner before the old one has let it go (tansu, the tests'
//! broker, does not wait for every member to rejoin), and a node that lost
//! its session without noticing (a long pause) keeps reading until it does.
//! Two nodes on one truck would each apply its positions and write ETAs for
//! its orders, and the new one would resume from memories saved before the
//! old one's last batch.
//!
//! So a node takes a truck's positions only once it **holds** the truck in
//! the store ([`Store::hold_vehicles`], asked when a truck is first seen on
//! the node's partitions, before the node reads where the truck stands), and
//! lets go of it ([`Store::let_go_vehicles`]) only after its last work with
//! the truck is stored and its trackers' memories saved (the sink's
//! `release`, on revoke). A truck another node holds is waited for. A holder
//! that has not beaten ([`Store::node_beat`], every [`BEAT_EVERY`]) for
//! [`SILENT_AFTER`] is taken to be gone (killed) and its trucks are taken
//! over at once; one that keeps beating but does not let go within
//! [`WAIT_AT_MOST`] is overridden (forced), so no truck waits for ever. Both
//! are counted (`tracker_handover_taken_over_total{reason}`) and warned.
//!
//! On the in-process bus every truck is the node's and nothing is held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use engine::VehicleKey;
use ingest::SinkError;
use portal_api::Store;
use store::{HoldRequest, VehicleHold};

/// How often a node tells the store it is alive.
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(1);
/// A holder not heard from for this long is gone: its trucks are taken over.
/// Shorter than the Kafka session timeout (10 s), after which the group
/// moves a silent node's partitions, so a killed node's trucks are taken
/// over as soon as their partitions move.
pub(crate) const SILENT_AFTER: Duration = Duration::from_secs(6);
/// The longest a node waits for a live holder to let go before taking its
/// trucks anyway.
pub(crate) const WAIT_AT_MOST: Duration = Duration::from_secs(20);

/// The first pause between two asks while a truck is held elsewhere, and
/// the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// This node's part in the hand-over (see the module docs).
#[derive(Debug)]
pub(crate) struct Handover {
    store: Arc<dyn Store>,
    /// This process's instance id: a restarted node is another holder.
    holder: String,
    /// The node's name, for operators reading the store.
    name: String,
    /// [`WAIT_AT_MOST`], shorter in tests.
    wait_at_most: Duration,
}

impl Handover {
    pub(crate) fn new(store: Arc<dyn Store>, holder: String, name: String) -> Handover {
        Handover {
            store,
            holder,
            name,
            wait_at_most: WAIT_AT_MOST,
        }
    }

    /// Holds `vehicles`, waiting while another live node holds some of them
    /// (at most [`WAIT_AT_MOST`], then forced). An error only when the store
    /// cannot be asked: the caller retries the batch.
    pub(crate) async fn hold(&self, vehicles: &[VehicleKey]) -> Result<(), SinkError> {
        if vehicles.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut wanted = vehicles.to_vec();
        let mut pause = FIRST_PAUSE;
        let mut waited_for: Option<String> = None;
        loop {
            let now = Utc::now();
            let force = started.elapsed() >= self.wait_at_most;
            let request = HoldRequest {
                holder: self.holder.clone(),
                vehicles: wanted.clone(),
                now,
                silent_before: now - TimeDelta::from_std(SILENT_AFTER).unwrap_or(TimeDelta::MAX),
                force,
            };
            let outcomes = self
                .store
                .hold_vehicles(request)
                .await
                .map_err(|e| SinkError(format!("holding new trucks: {e}")))?;
            let mut still = Vec::new();
            for (vehicle, outcome) in wanted.into_iter().zip(outcomes) {
                match outcome {
                    VehicleHold::Taken => {}
                    VehicleHold::TakenOver { from } => {
                        let reason = if force { "forced" } else { "silent" };
                        metrics::counter!("tracker_handover_taken_over_total", "reason" => reason)
                            .increment(1);
                        tracing::warn!(
                            vehicle = %vehicle.vehicle_id,
                            from = %from,
                            reason,
                            "truck taken over from a node that did not let go of it"
                        );
                    }
                    VehicleHold::HeldBy { holder } => {
                        if waited_for.is_none() {
                            tracing::info!(
                                holder = %holder,
                                "waiting for another node to hand trucks over"
                            );
                        }
                        waited_for = Some(holder);
                        still.push(vehicle);
                    }
                }
            }
            if still.is_empty() {
                let waited = started.elapsed();
                if let Some(holder) = waited_for {
                    metrics::histogram!("tracker_handover_wait_seconds").record(waited);
                    tracing::info!(
                        last_holder = %holder,
                        waited_ms = waited.as_millis() as u64,
                        trucks = vehicles.len(),
                        "trucks handed over"
                    );
                }
                return Ok(());
            }
            wanted = still;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }

    /// Lets go of `vehicles` (their last work is stored): their next owner
    /// takes them at once.
    pub(crate) async fn let_go(&self, vehicles: &[VehicleKey]) -> Result<(), SinkError> {
        self.store
            .let_go_vehicles(self.holder.clone(), vehicles.to_vec())
            .await
            .map_err(|e| SinkError(format!("letting go of released trucks: {e}")))
    }

    /// Beats every [`BEAT_EVERY`] until `shutdown`, then says the node is
    /// gone (run it in a stage that stops after the pipeline, whose release
    /// lets go of the trucks first). A beat that fails is warned once per
    /// streak: while the store is away, other nodes may take this node's
    /// trucks over after [`SILENT_AFTER`].
    pub(crate) async fn keep_beating(self: Arc<Self>, mut shutdown: ingest::Shutdown) {
        let mut failing = false;
        loop {
            match self
                .store
                .node_beat(self.holder.clone(), self.name.clone(), Utc::now(), false)
                .await
            {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the node's beat reaches the store again");
                }
                Ok(()) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(error = %err, "the node's beat did not reach the store");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.wait() => break,
                () = tokio::time::sleep(BEAT_EVERY) => {}
            }
        }
        if let Err(err) = self
            .store
            .node_beat(self.holder.clone(), self.name.clone(), Utc::now(), true)
            .await
        {
            tracing::warn!(error = %err, "could not tell the store the node is gone; its holds lapse after the silence");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Two nodes on one SQLite store, as two nodes of a group on one
    //! PostgreSQL (the store's rule is checked on both backends by the
    //! store's conformance suite).
    use engine::{TenantId, VehicleId};
    use portal_api::SqliteStore;

    use super::*;

    fn truck(id: &str) -> VehicleKey {
        VehicleKey::new(TenantId("ten_a".into()), VehicleId(id.into()))
    }

    async fn two_nodes(dir: &tempfile::TempDir) -> (Arc<Handover>, Arc<Handover>) {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("t.db"))
                .await
                .expect("store"),
        );
        let node = |holder: &str| {
            let mut node = Handover::new(Arc::clone(&store), holder.into(), holder.into());
            node.wait_at_most = Duration::from_millis(600);
            Arc::new(node)
        };
        let (a, b) = (node("a-1"), node("b-1"));
        for n in [&a, &b] {
            n.store
                .node_beat(n.holder.clone(), n.name.clone(), Utc::now(), false)
                .await
                .expect("beats");
        }
        (a, b)
    }

    #[tokio::test]
    async fn the_new_owner_waits_until_the_old_one_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = two_nodes(&dir).await;
        a.hold(&[truck("T1"), truck("T2")]).await.expect("A holds");

        // A stores its last batch for 300 ms, then lets go of T1.
        let letting_go = {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                a.let_go(&[truck("T1")]).await.expect("lets go");
            })
        };
        let started = Instant::now();
        b.hold(&[truck("T1")]).await.expect("B holds");
        let waited = started.elapsed();
        letting_go.await.expect("task");
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(600),
            "B took T1 once A let go, not before nor by force: {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_holder_that_never_lets_go_is_overridden_and_one_gone_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = two_nodes(&dir).await;
        a.hold(&[truck("T1"), truck("T2")]).await.expect("A holds");

        let started = Instant::now();
        b.hold(&[truck("T1")]).await.expect("B holds");
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "forced only after the wait: {:?}",
            started.elapsed()
        );

        // A stops cleanly (its beat says gone): T2 is B's without a wait.
        let (_stop, stopped) = ingest::shutdown_channel();
        drop(_stop);
        Arc::clone(&a).keep_beating(stopped).await;
        let started = Instant::now();
        b.hold(&[truck("T2")]).await.expect("B holds");
        assert!(started.elapsed() < Duration::from_millis(300));
    }
}
