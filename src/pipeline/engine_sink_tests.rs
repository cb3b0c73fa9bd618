//! [`EngineSink`] between the engine and a store that fails (issue 17): an
//! event the store refuses for good is dead-lettered and the stream moves on;
//! a store that keeps failing retryably fills the bounded queue and then
//! pushes back on the bus instead of growing; dead letters handed to the sink
//! are kept in the store's table.

use parking_lot::Mutex;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use engine::{
    EtaUpdate, LiveConfig, LiveEngine, Metric, OrderId, Position, PositionSource, Router,
    SpeedProfile, TurnCosts, Tz, VehicleId,
};
use ingest::{KafkaCoordinates, RejectReason, Rejection};
use portal_api::{
    ApiKey, ListQuery, LiveUpdates, MemoryFanOut, NewApiKey, NewDeadLetter, NewEvent, NewOrder,
    NewPod, OrderEvent, OrderPatch, PodMeta, PositionOutcome, RecordedEta, SqliteStore,
    StoreErrorKind, StoreFuture, StoredDeadLetter, Tenant, TrackView, TrackerMemoryRecord,
    VehicleFix,
};
use road_graph::{DRAWN_ORIGIN, DrawnMap};
use store::{HoldRequest, VehicleHold};

use super::*;

/// A SQLite store whose position writes fail, with the given kind, for the
/// vehicles listed (all of them for `"*"`); everything else goes through.
#[derive(Debug)]
struct FailingStore {
    inner: SqliteStore,
    failing: Mutex<Option<(StoreErrorKind, String)>>,
}

impl FailingStore {
    fn fail(&self, kind: StoreErrorKind, vehicle: &str) {
        *self.failing.lock() = Some((kind, vehicle.to_owned()));
    }

    fn heal(&self) {
        *self.failing.lock() = None;
    }
}

impl Store for FailingStore {
    fn record_positions(
        &self,
        fixes: Vec<(TenantId, VehicleFix)>,
    ) -> StoreFuture<'_, Vec<PositionOutcome>> {
        let failing = self.failing.lock().clone();
        let hit = failing.and_then(|(kind, vehicle)| {
            fixes
                .iter()
                .find(|(_, fix)| vehicle == "*" || vehicle == fix.vehicle_id.0)
                .map(|(_, fix)| (kind, fix.vehicle_id.clone()))
        });
        match hit {
            // A batch with a failing vehicle fails whole, as one transaction.
            Some((kind, vehicle)) => Box::pin(std::future::ready(Err(store::Error::Store {
                kind,
                message: format!("{kind} failure writing {vehicle}"),
            }))),
            None => self.inner.record_positions(fixes),
        }
    }

    fn create_tenant(&self, name: String, first_key: NewApiKey) -> StoreFuture<'_, Tenant> {
        self.inner.create_tenant(name, first_key)
    }
    fn authenticate(&self, hash: String) -> StoreFuture<'_, Option<(Tenant, ApiKey)>> {
        self.inner.authenticate(hash)
    }
    fn create_api_key(&self, tenant: TenantId, key: NewApiKey) -> StoreFuture<'_, ApiKey> {
        self.inner.create_api_key(tenant, key)
    }
    fn api_keys(&self, tenant: TenantId) -> StoreFuture<'_, Vec<ApiKey>> {
        self.inner.api_keys(tenant)
    }
    fn revoke_api_key(&self, tenant: TenantId, key_id: String) -> StoreFuture<'_, ApiKey> {
        self.inner.revoke_api_key(tenant, key_id)
    }
    fn tenant_by_name(&self, name: String) -> StoreFuture<'_, Option<Tenant>> {
        self.inner.tenant_by_name(name)
    }
    fn create_order(
        &self,
        tenant: TenantId,
        order: NewOrder,
        code: String,
    ) -> StoreFuture<'_, Order> {
        self.inner.create_order(tenant, order, code)
    }
    fn create_order_once(
        &self,
        tenant: TenantId,
        order: NewOrder,
        code: String,
        claim: Option<portal_api::IdempotencyClaim>,
        unique_reference: bool,
    ) -> StoreFuture<'_, portal_api::Created> {
        self.inner
            .create_order_once(tenant, order, code, claim, unique_reference)
    }
    fn order(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Option<Order>> {
        self.inner.order(tenant, id)
    }
    fn list_orders(&self, tenant: TenantId, query: ListQuery) -> StoreFuture<'_, Vec<Order>> {
        self.inner.list_orders(tenant, query)
    }
    fn update_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        patch: OrderPatch,
    ) -> StoreFuture<'_, Order> {
        self.inner.update_order(tenant, id, patch)
    }
    fn add_event(
        &self,
        tenant: Option<TenantId>,
        id: OrderId,
        event: NewEvent,
    ) -> StoreFuture<'_, (Order, OrderEvent)> {
        self.inner.add_event(tenant, id, event)
    }
    fn add_pod(&self, tenant: TenantId, id: OrderId, pod: NewPod) -> StoreFuture<'_, PodMeta> {
        self.inner.add_pod(tenant, id, pod)
    }
    fn pod_file(
        &self,
        order: OrderId,
        pod_id: String,
    ) -> StoreFuture<'_, Option<(PodMeta, Vec<u8>)>> {
        self.inner.pod_file(order, pod_id)
    }
    fn rotate_tracking_code(
        &self,
        tenant: TenantId,
        id: OrderId,
        code: String,
    ) -> StoreFuture<'_, Order> {
        self.inner.rotate_tracking_code(tenant, id, code)
    }
    fn revoke_tracking_code(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Order> {
        self.inner.revoke_tracking_code(tenant, id)
    }
    fn order_by_code_hash(&self, hash: String) -> StoreFuture<'_, Option<OrderId>> {
        self.inner.order_by_code_hash(hash)
    }
    fn track_view(&self, order: OrderId) -> StoreFuture<'_, Option<TrackView>> {
        self.inner.track_view(order)
    }
    fn record_etas(
        &self,
        updates: Vec<EtaUpdate>,
        policy: portal_api::AlertPolicy,
    ) -> StoreFuture<'_, Vec<RecordedEta>> {
        self.inner.record_etas(updates, policy)
    }
    fn active_orders(&self) -> StoreFuture<'_, Vec<Order>> {
        self.inner.active_orders()
    }
    fn vehicle_times(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<Option<DateTime<Utc>>>> {
        self.inner.vehicle_times(vehicles)
    }
    fn save_learned(
        &self,
        name: String,
        state: String,
        saved_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()> {
        self.inner.save_learned(name, state, saved_at)
    }
    fn learned(&self, name: String) -> StoreFuture<'_, Option<(String, DateTime<Utc>)>> {
        self.inner.learned(name)
    }
    fn save_tracker_memories(&self, memories: Vec<TrackerMemoryRecord>) -> StoreFuture<'_, ()> {
        self.inner.save_tracker_memories(memories)
    }
    fn tracker_memories(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<TrackerMemoryRecord>> {
        self.inner.tracker_memories(vehicles)
    }
    fn hold_vehicles(&self, request: HoldRequest) -> StoreFuture<'_, Vec<VehicleHold>> {
        self.inner.hold_vehicles(request)
    }
    fn let_go_vehicles(&self, holder: String, vehicles: Vec<VehicleKey>) -> StoreFuture<'_, ()> {
        self.inner.let_go_vehicles(holder, vehicles)
    }
    fn node_beat(
        &self,
        holder: String,
        name: String,
        now: DateTime<Utc>,
        gone: bool,
    ) -> StoreFuture<'_, ()> {
        self.inner.node_beat(holder, name, now, gone)
    }
    fn add_dead_letters(&self, letters: Vec<NewDeadLetter>) -> StoreFuture<'_, ()> {
        self.inner.add_dead_letters(letters)
    }
    fn recent_dead_letters(&self, limit: usize) -> StoreFuture<'_, Vec<StoredDeadLetter>> {
        self.inner.recent_dead_letters(limit)
    }
    fn outbox_pending(&self) -> StoreFuture<'_, u64> {
        self.inner.outbox_pending()
    }
}

/// A sink over a one-road map (`a---------b`) and a failing store, with a
/// queue of at most `max_pending` events.
async fn sink_with(
    max_pending: usize,
) -> (
    tempfile::TempDir,
    Arc<FailingStore>,
    SharedEngine,
    EngineSink,
) {
    let engine = drawn_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FailingStore {
        inner: SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store"),
        failing: Mutex::new(None),
    });
    let as_store: Arc<dyn Store> = store.clone();
    let updates = LiveUpdates::new(as_store.clone(), Arc::new(MemoryFanOut::new()));
    let sink = EngineSink::new(
        Arc::clone(&engine),
        Ownership::every(),
        updates,
        as_store,
        max_pending,
    );
    (dir, store, engine, sink)
}

/// An engine on a 2 km drawn road `a---------b`.
fn drawn_engine() -> SharedEngine {
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
    let live = LiveEngine::new(
        Arc::new(router),
        LiveConfig::truck(Tz::UTC),
        SpeedProfile::free_flow(Tz::UTC),
    )
    .expect("engine");
    Arc::new(Mutex::new(live))
}

/// A Kafka node's sink on a shared store: trucks are its once seen on its
/// partitions, and held in the store for it.
fn kafka_node(store: &Arc<dyn Store>, holder: &str) -> EngineSink {
    let updates = LiveUpdates::new(Arc::clone(store), Arc::new(MemoryFanOut::new()));
    EngineSink::new(
        drawn_engine(),
        Ownership::observed(),
        updates,
        Arc::clone(store),
        DEFAULT_MAX_PENDING_EVENTS,
    )
    .with_handover(Arc::new(handover::Handover::new(
        Arc::clone(store),
        holder.into(),
        holder.into(),
    )))
}

#[tokio::test]
async fn a_trucks_new_owner_reads_where_it_stands_only_after_the_old_owner_let_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    for node in ["a-1", "b-1"] {
        store
            .node_beat(node.into(), node.into(), Utc::now(), false)
            .await
            .expect("beats");
    }
    let (a, b) = (
        kafka_node(&store, "a-1"),
        Arc::new(kafka_node(&store, "b-1")),
    );

    // A has T1's partition: T1 is A's, and A's engine takes three fixes
    // whose store write (the batch in flight) has not run yet.
    assert_eq!(
        a.last_times(&[key("T1")]).await.expect("A holds T1"),
        [None]
    );
    a.take(&[fix("T1", 0), fix("T1", 1), fix("T1", 2)])
        .await
        .expect("A's engine takes them");

    // The partition moves to B while A still works: B waits for A.
    let asking = {
        let b = Arc::clone(&b);
        tokio::spawn(async move { b.last_times(&[key("T1")]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !asking.is_finished(),
        "B read where T1 stands while A held it"
    );

    // A's revoke: its batch stored, T1's memories saved, T1 let go.
    a.release(&[key("T1")]).await.expect("A releases T1");
    let seen_by_b = asking.await.expect("task").expect("B holds T1");
    assert_eq!(
        seen_by_b,
        [Some(fix("T1", 2).time)],
        "B starts after A's last stored fix, so nothing of A's is applied twice"
    );
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("time")
}

fn key(vehicle: &str) -> VehicleKey {
    VehicleKey::new(TenantId("ten_test".into()), VehicleId(vehicle.to_owned()))
}

/// Fix `k` of `vehicle`: every 10 s, 100 m further along the road.
fn fix(vehicle: &str, k: i64) -> Position {
    Position {
        tenant_id: TenantId("ten_test".into()),
        vehicle_id: VehicleId(vehicle.to_owned()),
        time: start() + TimeDelta::seconds(10 * k),
        lat: DRAWN_ORIGIN.lat,
        lon: DRAWN_ORIGIN.lon + 0.0012 * k as f64,
        speed_mps: Some(10.0),
        heading_deg: Some(90.0),
        odometer_m: None,
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: PositionSource::Simulator,
    }
}

#[tokio::test]
async fn an_event_the_store_refuses_for_good_is_dead_lettered_and_the_stream_moves_on() {
    let (_dir, store, _engine, sink) = sink_with(DEFAULT_MAX_PENDING_EVENTS).await;
    store.fail(StoreErrorKind::Permanent, "poison");

    for k in 0..3 {
        sink.write(&[fix("poison", k), fix("healthy", k)])
            .await
            .expect("a permanent refusal does not fail the batch");
    }
    assert_eq!(sink.pending_events().await, 0, "nothing left to retry");
    let times = store
        .vehicle_times(vec![key("healthy"), key("poison")])
        .await
        .expect("reads");
    assert_eq!(times, [Some(fix("healthy", 2).time), None]);

    let letters = store.recent_dead_letters(10).await.expect("reads");
    assert_eq!(letters.len(), 3);
    assert_eq!(sink.dead_lettered_events(), 3);
    let newest = &letters[0].letter;
    assert_eq!(newest.origin, "engine");
    assert_eq!(newest.reason, "store_permanent");
    assert!(newest.detail.contains("permanent failure writing poison"));
    let event: EngineEvent = serde_json::from_slice(&newest.payload).expect("the event");
    assert!(
        matches!(&event, EngineEvent::PositionUpdated(p) if p.vehicle_id.0 == "poison" && p.time == fix("poison", 2).time),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_store_that_keeps_failing_holds_the_queue_at_its_bound_and_pushes_back() {
    let (_dir, store, engine, sink) = sink_with(3).await;
    store.fail(StoreErrorKind::Retryable, "*");

    let mut refused = 0;
    for k in 0..10 {
        if sink.write(&[fix("t1", k)]).await.is_err() {
            refused += 1;
        }
        assert!(
            sink.pending_events().await <= 3,
            "the queue passed its bound"
        );
    }
    assert_eq!(
        refused, 10,
        "a retryable failure is reported, so the bus retries"
    );
    assert_eq!(sink.pending_events().await, 3);
    // The engine ran only the batches that found room: the others were pushed
    // back before it, so the bus will offer them again.
    assert_eq!(lock(&engine).counters().positions, 3);
    assert!(
        store
            .recent_dead_letters(10)
            .await
            .expect("reads")
            .is_empty()
    );

    // The store comes back: the backlog goes first, then the new batch.
    store.heal();
    sink.write(&[fix("t1", 3)]).await.expect("written");
    assert_eq!(sink.pending_events().await, 0);
    let times = store.vehicle_times(vec![key("t1")]).await.expect("reads");
    assert_eq!(times, [Some(fix("t1", 3).time)]);
}

#[tokio::test]
async fn dead_letters_handed_to_the_sink_are_kept_in_the_store() {
    let (_dir, store, _engine, sink) = sink_with(DEFAULT_MAX_PENDING_EVENTS).await;
    let huge = vec![b'x'; 5 * 1024 * 1024];
    let mut letter = DeadLetter::of_message(
        Rejection::new(RejectReason::TooLarge, "5242880 bytes"),
        &huge,
        Some(b"truck-9"),
        64 * 1024,
        "positions/1@42".into(),
    );
    letter.kafka = Some(KafkaCoordinates {
        topic: "positions".into(),
        partition: 1,
        offset: 42,
    });
    sink.dead_letters(&[letter]).await.expect("kept");

    let letters = store.recent_dead_letters(10).await.expect("reads");
    assert_eq!(letters.len(), 1);
    let kept = &letters[0].letter;
    assert_eq!(
        (kept.topic.as_deref(), kept.partition, kept.offset),
        (Some("positions"), Some(1), Some(42))
    );
    assert_eq!(kept.reason, "too_large");
    assert_eq!(kept.size_bytes, 5 * 1024 * 1024);
    assert_eq!(kept.payload.len(), ingest::DEAD_LETTER_PAYLOAD_BYTES);
    assert_eq!(kept.key.as_deref(), Some(&b"truck-9"[..]));
}
