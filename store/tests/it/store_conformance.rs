//! The store contract, run on both backends: every scenario here takes an
//! `Arc<dyn Store>` and runs once on a fresh SQLite file (`sqlite::NAME`) and
//! once on a fresh PostgreSQL schema (`postgres::NAME`), so the two
//! implementations answer alike: tenants and keys, order creation and its
//! idempotency, tenant isolation, the status state machine, tracking codes,
//! POD, positions, ETAs, dead letters, the outbox, trackers' memories of
//! their trucks (what a node hands to the next), and the settings sub-store
//! (brand and location privacy). (Learned state, which
//! must outlive a restart, is `learned_state.rs`, on both backends too.)

use crate::common;

use std::sync::Arc;

use chrono::Duration;
use engine::{EtaUpdate, OrderId, OrderStatus, StatusSource, VehicleId, VehicleKey};
use store::{
    AlertPolicy, Created, Error, EventKind, HoldRequest, IdempotencyClaim, ListQuery, NewApiKey,
    NewDeadLetter, NewEvent, NewOrder, NewPod, Order, OrderPatch, Scope, Store, TenantId,
    TrackerMemoryRecord, VehicleFix, VehicleHold, Visibility, create_tenant, new_tracking_code,
    secret_hash,
};

use common::fixtures::{at, fix, is_not_found, load, new_order, status, tenant};

async fn tenants_keys_authenticate_until_revoked(store: Arc<dyn Store>) {
    let (acme, first_key) = create_tenant(&*store, "Acme Haulage")
        .await
        .expect("tenant");
    let (_, who) = store
        .authenticate(secret_hash(&first_key))
        .await
        .expect("reads")
        .expect("the first key authenticates");
    assert_eq!(who.tenant_id, acme.id);
    assert_eq!(
        store
            .tenant_by_name("Acme Haulage".into())
            .await
            .expect("reads")
            .map(|t| t.id),
        Some(acme.id.clone())
    );

    let second = store
        .create_api_key(
            acme.id.clone(),
            NewApiKey {
                name: "eld-bridge".into(),
                prefix: "trk_eld".into(),
                key_hash: secret_hash("trk_eld_secret"),
                scopes: vec![Scope::Positions],
            },
        )
        .await
        .expect("second key");
    let keys = store.api_keys(acme.id.clone()).await.expect("lists");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].id, second.id, "oldest first");
    assert_eq!(keys[1].scopes, vec![Scope::Positions]);

    let other = tenant(&*store, "Other Freight").await;
    assert!(
        is_not_found(store.revoke_api_key(other, second.id.clone()).await),
        "another tenant cannot revoke the key"
    );
    let revoked = store
        .revoke_api_key(acme.id.clone(), second.id.clone())
        .await
        .expect("revokes");
    let first_revoked_at = revoked.revoked_at.expect("revoked");
    let again = store
        .revoke_api_key(acme.id.clone(), second.id.clone())
        .await
        .expect("revoking twice is fine");
    assert_eq!(
        again.revoked_at,
        Some(first_revoked_at),
        "the first time stays"
    );
    assert_eq!(
        store
            .authenticate(secret_hash("trk_eld_secret"))
            .await
            .expect("reads"),
        None,
        "a revoked key no longer authenticates"
    );
    assert!(is_not_found(
        store.api_keys(TenantId("ten_nobody".into())).await
    ));
}

async fn an_order_is_created_once_per_idempotency_key_and_reference(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let claim = IdempotencyClaim {
        key_hash: secret_hash("retry-key-1"),
        body_hash: "body-A".into(),
        sealed_code: "sealed-code-A".into(),
        not_before: at(-24 * 60),
    };
    let once = |order: NewOrder, claim: Option<IdempotencyClaim>, unique: bool| {
        store.create_order_once(acme.clone(), order, new_tracking_code(), claim, unique)
    };
    let Created::New(first) = once(load("LOAD-1", None), Some(claim.clone()), false)
        .await
        .expect("creates")
    else {
        panic!("the first call creates");
    };
    assert_eq!(first.status, OrderStatus::Created);
    assert_eq!(first.stops.len(), 3);
    assert!(first.tracking_active);

    match once(load("LOAD-1", None), Some(claim.clone()), false)
        .await
        .expect("replays")
    {
        Created::Replayed { order, sealed_code } => {
            assert_eq!(order.id, first.id);
            assert_eq!(sealed_code, "sealed-code-A");
        }
        other => panic!("a retry replays, got {other:?}"),
    }
    let other_body = IdempotencyClaim {
        body_hash: "body-B".into(),
        ..claim.clone()
    };
    assert_eq!(
        once(load("LOAD-1", None), Some(other_body), false)
            .await
            .expect("answers"),
        Created::KeyReused
    );
    assert_eq!(
        once(load("LOAD-1", None), None, true)
            .await
            .expect("answers"),
        Created::ReferenceTaken(first.id.clone())
    );
    // A cancelled order frees its reference.
    store
        .add_event(
            Some(acme.clone()),
            first.id.clone(),
            status(OrderStatus::Cancelled, 1),
        )
        .await
        .expect("cancels");
    assert!(matches!(
        once(load("LOAD-1", None), None, true)
            .await
            .expect("creates"),
        Created::New(_)
    ));
}

async fn racing_retries_of_one_key_make_one_order(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let claim = IdempotencyClaim {
        key_hash: secret_hash("racing-key"),
        body_hash: "body".into(),
        sealed_code: "sealed".into(),
        not_before: at(-24 * 60),
    };
    let racers = (0..8).map(|_| {
        let store = store.clone();
        let acme = acme.clone();
        let claim = claim.clone();
        tokio::spawn(async move {
            store
                .create_order_once(
                    acme,
                    load("LOAD-RACE", None),
                    new_tracking_code(),
                    Some(claim),
                    true,
                )
                .await
        })
    });
    let mut made = Vec::new();
    let mut replayed = Vec::new();
    for racer in racers {
        match racer.await.expect("joins").expect("answers") {
            Created::New(order) => made.push(order.id),
            Created::Replayed { order, .. } => replayed.push(order.id),
            other => panic!("a retry of one key either creates or replays, got {other:?}"),
        }
    }
    assert_eq!(made.len(), 1, "exactly one order is made");
    assert!(replayed.iter().all(|id| *id == made[0]));
    let listed = store
        .list_orders(
            acme,
            ListQuery {
                limit: 50,
                ..ListQuery::default()
            },
        )
        .await
        .expect("lists");
    assert_eq!(listed.len(), 1);
}

async fn another_tenants_order_is_not_found(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let rival = tenant(&*store, "Rival").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-9").await;
    let id = order.id.clone();

    assert_eq!(
        store.order(rival.clone(), id.clone()).await.expect("reads"),
        None
    );
    assert!(is_not_found(
        store
            .update_order(rival.clone(), id.clone(), OrderPatch::default())
            .await
    ));
    assert!(is_not_found(
        store
            .add_event(
                Some(rival.clone()),
                id.clone(),
                status(OrderStatus::Dispatched, 1)
            )
            .await
    ));
    assert!(is_not_found(
        store
            .rotate_tracking_code(rival.clone(), id.clone(), new_tracking_code())
            .await
    ));
    assert!(is_not_found(
        store
            .add_pod(
                rival.clone(),
                id.clone(),
                NewPod {
                    content_type: "image/png".into(),
                    file_name: None,
                    signed_by: None,
                    note: None,
                    taken_at: None,
                    data: vec![1, 2, 3],
                },
            )
            .await
    ));
    let rivals = store
        .list_orders(
            rival,
            ListQuery {
                limit: 50,
                ..ListQuery::default()
            },
        )
        .await
        .expect("lists");
    assert!(rivals.is_empty());
    assert_eq!(
        store
            .order(acme, id)
            .await
            .expect("reads")
            .map(|o| o.reference),
        Some("LOAD-9".into())
    );
}

async fn orders_list_newest_first_in_pages(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(new_order(&*store, &acme, &format!("LOAD-{n}")).await.0.id);
    }
    let page = |after: Option<OrderId>| {
        store.list_orders(
            acme.clone(),
            ListQuery {
                limit: 2,
                after,
                ..ListQuery::default()
            },
        )
    };
    let first: Vec<_> = page(None)
        .await
        .expect("page")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(first, vec![made[4].clone(), made[3].clone()]);
    let second: Vec<_> = page(first.last().cloned())
        .await
        .expect("page")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(second, vec![made[2].clone(), made[1].clone()]);
    let by_reference = store
        .list_orders(
            acme.clone(),
            ListQuery {
                reference: Some("LOAD-3".into()),
                limit: 10,
                ..ListQuery::default()
            },
        )
        .await
        .expect("filters");
    assert_eq!(by_reference.len(), 1);
    assert!(matches!(
        page(Some(OrderId("ord_unknown".into()))).await,
        Err(Error::Invalid { .. })
    ));
}

async fn statuses_move_through_the_state_machine_and_mark_stops(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-SM").await;
    let id = order.id.clone();
    let move_to = |to: OrderStatus, minute: i64| {
        store.add_event(Some(acme.clone()), id.clone(), status(to, minute))
    };

    move_to(OrderStatus::Dispatched, 1)
        .await
        .expect("dispatched");
    let (order, event) = move_to(OrderStatus::AtPickup, 30).await.expect("at pickup");
    assert_eq!(event.stop_index, Some(0), "the implied stop is the pickup");
    assert_eq!(order.stops[0].arrived_at, Some(at(30)));
    let (order, _) = move_to(OrderStatus::PickedUp, 50).await.expect("picked up");
    assert_eq!(order.stops[0].departed_at, Some(at(50)));

    // Delivered at the second delivery: the first one, still pending, is skipped.
    let (order, event) = store
        .add_event(
            Some(acme.clone()),
            id.clone(),
            NewEvent {
                stop_index: Some(2),
                ..status(OrderStatus::Delivered, 200)
            },
        )
        .await
        .expect("delivered");
    assert_eq!(event.stop_index, Some(2));
    assert_eq!(order.status, OrderStatus::Delivered);
    assert_eq!(order.stops[1].skipped_at, Some(at(200)));
    assert_eq!(order.stops[2].arrived_at, Some(at(200)));
    assert_eq!(order.stops[2].departed_at, Some(at(200)));

    let refused = move_to(OrderStatus::Dispatched, 210).await;
    assert!(
        matches!(
            refused,
            Err(Error::Conflict {
                code: "invalid_transition",
                ..
            })
        ),
        "{refused:?}"
    );
    let finished = store
        .update_order(
            acme.clone(),
            id.clone(),
            OrderPatch {
                vehicle_id: Some(None),
                ..OrderPatch::default()
            },
        )
        .await;
    assert!(matches!(
        finished,
        Err(Error::Conflict {
            code: "order_finished",
            ..
        })
    ));

    // A note is recorded on a finished order; internal ones stay off the page.
    store
        .add_event(
            Some(acme.clone()),
            id.clone(),
            NewEvent {
                kind: EventKind::Note,
                status: None,
                at: at(220),
                note: Some("gate code 4411".into()),
                source: StatusSource::Dispatcher,
                stop_index: None,
                visibility: Visibility::Internal,
            },
        )
        .await
        .expect("a note");
    let view = store.track_view(id).await.expect("reads").expect("a view");
    // (In time order; `created` is stamped now, after these March times.)
    let shown: Vec<_> = view.events.iter().filter_map(|e| e.status).collect();
    assert_eq!(
        shown,
        vec![
            OrderStatus::Dispatched,
            OrderStatus::AtPickup,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
            OrderStatus::Created,
        ]
    );
    assert!(
        view.events
            .iter()
            .all(|e| e.note.as_deref() != Some("gate code 4411"))
    );
}

async fn a_geofence_never_undoes_what_a_dispatcher_marked(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-GF").await;
    let id = order.id.clone();
    for (to, minute) in [
        (OrderStatus::Dispatched, 1),
        (OrderStatus::AtPickup, 30),
        (OrderStatus::PickedUp, 40),
    ] {
        store
            .add_event(Some(acme.clone()), id.clone(), status(to, minute))
            .await
            .expect("moves");
    }
    let late_fence = store
        .add_event(
            None,
            id.clone(),
            NewEvent {
                source: StatusSource::Geofence,
                stop_index: Some(0),
                ..status(OrderStatus::AtPickup, 45)
            },
        )
        .await;
    assert!(
        matches!(
            late_fence,
            Err(Error::Conflict {
                code: "stop_already_marked",
                ..
            })
        ),
        "{late_fence:?}"
    );
    let order = store.order(acme, id).await.expect("reads").expect("there");
    assert_eq!(order.status, OrderStatus::PickedUp);
}

async fn tracking_codes_rotate_and_revoke(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let (order, first_code) = new_order(&*store, &acme, "LOAD-TC").await;
    let lookup = |code: &str| store.order_by_code_hash(secret_hash(code));
    assert_eq!(
        lookup(&first_code).await.expect("reads"),
        Some(order.id.clone())
    );

    let second_code = new_tracking_code();
    let rotated = store
        .rotate_tracking_code(acme.clone(), order.id.clone(), second_code.clone())
        .await
        .expect("rotates");
    assert!(rotated.tracking_active);
    assert_eq!(
        lookup(&first_code).await.expect("reads"),
        None,
        "the old code is dead"
    );
    assert_eq!(
        lookup(&second_code).await.expect("reads"),
        Some(order.id.clone())
    );

    let revoked = store
        .revoke_tracking_code(acme, order.id.clone())
        .await
        .expect("revokes");
    assert!(!revoked.tracking_active);
    assert_eq!(lookup(&second_code).await.expect("reads"), None);
}

async fn a_pod_is_kept_with_its_bytes(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-POD").await;
    let bytes = b"\x89PNG signed delivery note".to_vec();
    let meta = store
        .add_pod(
            acme,
            order.id.clone(),
            NewPod {
                content_type: "image/png".into(),
                file_name: Some("note.png".into()),
                signed_by: Some("R. Costa".into()),
                note: None,
                taken_at: Some(at(200)),
                data: bytes.clone(),
            },
        )
        .await
        .expect("stored");
    assert_eq!(meta.size_bytes, bytes.len() as u64);
    assert_eq!(meta.taken_at, Some(at(200)));
    let (read, data) = store
        .pod_file(order.id.clone(), meta.id.clone())
        .await
        .expect("reads")
        .expect("there");
    assert_eq!(read, meta);
    assert_eq!(data, bytes);
    let view = store
        .track_view(order.id)
        .await
        .expect("reads")
        .expect("a view");
    assert_eq!(view.pods, vec![meta]);
}

async fn positions_keep_the_newest_per_tenant_vehicle_and_a_trail(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let rival = tenant(&*store, "Rival").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-POS").await;
    store
        .add_event(
            Some(acme.clone()),
            order.id.clone(),
            status(OrderStatus::Dispatched, 0),
        )
        .await
        .expect("dispatched");

    let outcome = store
        .record_position(acme.clone(), fix("truck-7", 1, 41.17))
        .await
        .expect("recorded");
    assert!(outcome.newest);
    assert_eq!(outcome.orders, vec![order.id.clone()]);
    // Ten seconds and a few metres later: newest, but not a new trail point.
    let mut close = fix("truck-7", 1, 41.1701);
    close.at += Duration::seconds(10);
    assert!(
        store
            .record_position(acme.clone(), close)
            .await
            .expect("recorded")
            .newest
    );
    let stale = store
        .record_position(acme.clone(), fix("truck-7", 0, 41.2))
        .await
        .expect("answers");
    assert!(!stale.newest, "an older fix changes nothing");
    store
        .record_position(acme.clone(), fix("truck-7", 5, 41.16))
        .await
        .expect("recorded");
    // Another tenant's truck of the same id is another truck.
    let theirs = store
        .record_position(rival.clone(), fix("truck-7", 3, 38.7))
        .await
        .expect("recorded");
    assert!(theirs.newest);
    assert!(theirs.orders.is_empty());

    let times = store
        .vehicle_times(vec![
            VehicleKey::new(acme.clone(), VehicleId("truck-7".into())),
            VehicleKey::new(rival.clone(), VehicleId("truck-7".into())),
            VehicleKey::new(acme.clone(), VehicleId("truck-unknown".into())),
        ])
        .await
        .expect("reads");
    assert_eq!(times, vec![Some(at(5)), Some(at(3)), None]);

    let view = store
        .track_view(order.id)
        .await
        .expect("reads")
        .expect("a view");
    let vehicle = view.vehicle.expect("the truck's position");
    assert_eq!(vehicle.at, at(5));
    let trail: Vec<_> = view.trail.iter().map(|p| p.at).collect();
    assert_eq!(trail, vec![at(1), at(5)], "downsampled, oldest first");
}

/// Dispatches each (tenant, order) at minute 0.
async fn dispatch_all(store: &dyn Store, orders: &[(&TenantId, &Order)]) {
    for (who, order) in orders {
        store
            .add_event(
                Some((*who).clone()),
                order.id.clone(),
                status(OrderStatus::Dispatched, 0),
            )
            .await
            .expect("dispatched");
    }
}

/// A script of fixes of truck-7 (and one of truck-9, which carries
/// nothing): late ones, replays of the newest, a move too short and too soon
/// for the trail, and far ones.
fn script(round: i64) -> Vec<VehicleFix> {
    let base = round * 10;
    let mut close = fix("truck-7", base + 1, 41.1701);
    close.at += Duration::seconds(10);
    vec![
        fix("truck-7", base + 1, 41.17),
        fix("truck-7", base + 1, 41.17),
        fix("truck-7", base, 41.2),
        close,
        fix("truck-9", base + 2, 41.0),
        fix("truck-7", base + 3, 41.16),
        fix("truck-7", base + 5, 41.15),
        fix("truck-7", base + 4, 41.3),
        fix("truck-7", base + 5, 41.15),
    ]
}

async fn a_batch_of_positions_leaves_what_one_by_one_writes_leave(store: Arc<dyn Store>) {
    let single = tenant(&*store, "One by one").await;
    let batched = tenant(&*store, "Batched").await;
    let (a, _) = new_order(&*store, &single, "LOAD-A").await;
    let (b, _) = new_order(&*store, &batched, "LOAD-B").await;
    dispatch_all(&*store, &[(&single, &a), (&batched, &b)]).await;
    // Twice: onto nothing stored, then onto what the first round left.
    for round in 0..2 {
        let mut one_by_one = Vec::new();
        for fix in script(round) {
            let outcome = store
                .record_position(single.clone(), fix)
                .await
                .expect("recorded");
            one_by_one.push(outcome);
        }
        let together = store
            .record_positions(
                script(round)
                    .into_iter()
                    .map(|f| (batched.clone(), f))
                    .collect(),
            )
            .await
            .expect("recorded");
        let answers = |outcomes: &[store::PositionOutcome]| -> Vec<(bool, usize)> {
            outcomes
                .iter()
                .map(|o| (o.newest, o.orders.len()))
                .collect()
        };
        assert_eq!(answers(&together), answers(&one_by_one), "round {round}");
        assert!(together.iter().flat_map(|o| &o.orders).all(|o| *o == b.id));
        let newest: Vec<bool> = together.iter().map(|o| o.newest).collect();
        // Round 1 starts at minute 11, after round 0's newest (minute 5), so
        // both rounds answer alike.
        let expected = vec![true, false, false, true, true, true, true, false, false];
        assert_eq!(newest, expected, "round {round}");

        let keys = |t: &TenantId| {
            ["truck-7", "truck-9"]
                .map(|v| VehicleKey::new(t.clone(), VehicleId(v.into())))
                .to_vec()
        };
        assert_eq!(
            store.vehicle_times(keys(&batched)).await.expect("reads"),
            store.vehicle_times(keys(&single)).await.expect("reads"),
        );
        let seen = |view: Option<store::TrackView>| {
            let view = view.expect("a view");
            let vehicle = view.vehicle.map(|v| (v.at, v.lat));
            let trail: Vec<_> = view.trail.iter().map(|p| (p.at, p.lat)).collect();
            (vehicle, trail)
        };
        let (vehicle, trail) = seen(store.track_view(b.id.clone()).await.expect("reads"));
        assert_eq!(
            (vehicle, trail.clone()),
            seen(store.track_view(a.id.clone()).await.expect("reads")),
            "round {round}"
        );
        assert_eq!(vehicle.map(|v| v.0), Some(at(round * 10 + 5)));
        let expected_trail = (round + 1) * 3;
        assert_eq!(
            trail.len() as i64,
            expected_trail,
            "minutes 1, 3 and 5 of each round; the close move is not kept"
        );
    }
    // A batch of nothing does nothing.
    assert!(
        store
            .record_positions(Vec::new())
            .await
            .expect("answers")
            .is_empty()
    );
}

fn eta(order: &OrderId, stop_index: u32, computed_minute: i64, eta_minute: i64) -> EtaUpdate {
    EtaUpdate {
        order_id: order.clone(),
        stop_index,
        eta: at(eta_minute),
        p10: at(eta_minute - 5),
        p90: at(eta_minute + 10),
        remaining_distance_m: 12_000.0,
        remaining_drive_s: 900.0,
        reasons: Vec::new(),
        computed_at: at(computed_minute),
        free_flow_drive_s: Some(800.0),
        route: Vec::new(),
    }
}

fn policy() -> AlertPolicy {
    AlertPolicy {
        late_risk_on: store::LateRiskBasis::Eta,
        hold: Duration::zero(),
        clear_margin: Duration::minutes(5),
        eta_changed_every: Duration::minutes(10),
    }
}

async fn etas_are_recorded_for_active_orders_and_judged(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let (idle, _) = new_order(&*store, &acme, "LOAD-IDLE").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-ETA").await;
    store
        .add_event(
            Some(acme.clone()),
            order.id.clone(),
            status(OrderStatus::Dispatched, 0),
        )
        .await
        .expect("dispatched");
    let active: Vec<_> = store
        .active_orders()
        .await
        .expect("reads")
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(
        active,
        vec![order.id.clone()],
        "a created order is not yet active"
    );

    use store::EtaRecorded;
    let next = store
        .record_eta(eta(&order.id, 0, 10, 50), policy())
        .await
        .expect("recorded");
    assert_eq!(next, EtaRecorded::Shown, "stop 0 is the page's next stop");
    let later = store
        .record_eta(eta(&order.id, 1, 10, 150), policy())
        .await
        .expect("recorded");
    assert_eq!(later, EtaRecorded::Logged);
    assert_eq!(
        store
            .record_eta(eta(&idle.id, 7, 10, 50), policy())
            .await
            .expect("answers"),
        EtaRecorded::Ignored,
        "no such stop"
    );
    // Predicted 30 minutes past the pickup window's end: a late risk, noted
    // on the dispatcher's timeline and announced through the outbox.
    let before = store.outbox_pending().await.expect("counts");
    store
        .record_eta(eta(&order.id, 0, 20, 90), policy())
        .await
        .expect("recorded");
    let seen = store
        .order(acme.clone(), order.id.clone())
        .await
        .expect("reads")
        .expect("there");
    let risk = seen.stops[0].late_risk.expect("the pickup is at risk");
    assert_eq!(risk.by_min, 30);
    assert_eq!(seen.stops[0].eta.as_ref().map(|e| e.eta), Some(at(90)));
    assert!(store.outbox_pending().await.expect("counts") > before);

    let view = store
        .track_view(order.id.clone())
        .await
        .expect("reads")
        .expect("a view");
    let history = view.eta_history.expect("the next stop's ETA history");
    assert_eq!(history.stop_index, 0);
    assert!(!history.points.is_empty());

    // Arriving closes the loop: the stop's predictions learn the arrival.
    store
        .add_event(
            Some(acme.clone()),
            order.id.clone(),
            status(OrderStatus::AtPickup, 95),
        )
        .await
        .expect("arrived");
    let view = store
        .track_view(order.id.clone())
        .await
        .expect("reads")
        .expect("a view");
    assert_eq!(
        view.eta_history.map(|h| h.stop_index),
        Some(1),
        "now the next stop"
    );
    store
        .add_event(
            Some(acme),
            order.id.clone(),
            status(OrderStatus::Delivered, 300),
        )
        .await
        .expect("delivered");
    assert_eq!(
        store
            .record_eta(eta(&order.id, 2, 301, 320), policy())
            .await
            .expect("answers"),
        EtaRecorded::Ignored,
        "a finished order takes no ETA"
    );
    assert!(store.active_orders().await.expect("reads").is_empty());
}

/// What a flush's ETAs do to one order, in order: the page's stop, a later
/// stop, the page's stop again 30 minutes past its window (a late risk, and
/// a 40-minute move for the `eta_changed` rule), a stop the order does not
/// have, the later stop 50 minutes later (20 minutes past its window; within
/// the rule's interval of the order's last announcement, so not announced).
fn eta_script(order: &OrderId) -> Vec<EtaUpdate> {
    vec![
        eta(order, 0, 10, 50),
        eta(order, 1, 10, 150),
        eta(order, 0, 20, 90),
        eta(order, 7, 20, 90),
        eta(order, 1, 25, 200),
    ]
}

async fn a_batch_of_etas_leaves_what_one_by_one_writes_leave(store: Arc<dyn Store>) {
    use store::EtaRecorded::{Ignored, Logged, Shown};
    let single = tenant(&*store, "One by one").await;
    let batched = tenant(&*store, "Batched").await;
    let (a, _) = new_order(&*store, &single, "LOAD-A").await;
    let (b, _) = new_order(&*store, &batched, "LOAD-B").await;
    let (c, _) = new_order(&*store, &batched, "LOAD-C").await;
    let (done, _) = new_order(&*store, &batched, "LOAD-DONE").await;
    dispatch_all(&*store, &[(&single, &a), (&batched, &b), (&batched, &c)]).await;
    store
        .add_event(
            Some(batched.clone()),
            done.id.clone(),
            status(OrderStatus::Cancelled, 0),
        )
        .await
        .expect("cancelled");
    let private = store::LocationPrivacy {
        enabled: true,
        exact_within_m: 500.0,
        cell_resolution: 7,
    };
    let settings = store.settings().expect("the backend keeps settings");
    settings
        .set_privacy(batched.clone(), private)
        .await
        .expect("sets");
    let notifications = store
        .notifications()
        .expect("the backend keeps notifications");
    for who in [&single, &batched] {
        let rule = store::NewRule {
            event: store::TriggerEvent::EtaChanged,
            to_customer: false,
            addresses: vec!["ops@example.com".into()],
            template: None,
            min_change_min: Some(15),
        };
        notifications
            .create_rule(who.clone(), rule)
            .await
            .expect("an eta_changed rule");
    }

    let outbox_before = store.outbox_pending().await.expect("counts");
    let mut one_by_one = Vec::new();
    for update in eta_script(&a.id) {
        one_by_one.push(store.record_eta(update, policy()).await.expect("recorded"));
    }
    let outbox_single = store.outbox_pending().await.expect("counts") - outbox_before;
    assert_eq!(one_by_one, vec![Shown, Logged, Shown, Ignored, Logged]);
    assert_eq!(
        outbox_single, 3,
        "late risks at both stops (their windows end at minutes 60 and 180) and one \
         ETA change announced (the second move comes too soon after it)"
    );

    // B's and C's ETAs interleaved, and one of a cancelled order.
    let mut updates = Vec::new();
    for (of_b, of_c) in eta_script(&b.id).into_iter().zip(eta_script(&c.id)) {
        updates.push(of_b);
        updates.push(of_c);
    }
    updates.push(eta(&done.id, 0, 20, 90));
    let outbox_before = store.outbox_pending().await.expect("counts");
    let together = store
        .record_etas(updates, policy())
        .await
        .expect("recorded");
    let answers: Vec<_> = together.iter().map(|r| r.recorded).collect();
    assert_eq!(
        answers,
        vec![
            Shown, Shown, Logged, Logged, Shown, Shown, Ignored, Ignored, Logged, Logged, Ignored
        ],
        "each ETA answered in the batch's order; the cancelled order's ignored"
    );
    assert_eq!(
        store.outbox_pending().await.expect("counts") - outbox_before,
        2 * outbox_single,
        "B and C announced as A was"
    );
    for answer in &together {
        if answer.recorded == Shown {
            assert_eq!(answer.privacy, private, "the page's privacy comes along");
            assert_eq!(answer.pending_stops.len(), 3, "no stop reached yet");
        } else {
            assert!(!answer.privacy.enabled && answer.pending_stops.is_empty());
        }
    }

    let seen = |order: Order| {
        let stops: Vec<_> = order
            .stops
            .iter()
            .map(|s| (s.eta.as_ref().map(|e| e.eta), s.late_risk.map(|r| r.by_min)))
            .collect();
        stops
    };
    let read = |tenant: &TenantId, order: &Order| {
        let store = Arc::clone(&store);
        let (tenant, id) = (tenant.clone(), order.id.clone());
        async move {
            store
                .order(tenant, id)
                .await
                .expect("reads")
                .expect("there")
        }
    };
    let expected = seen(read(&single, &a).await);
    assert_eq!(expected[0], (Some(at(90)), Some(30)));
    assert_eq!(expected[1].0, Some(at(200)));
    assert_eq!(seen(read(&batched, &b).await), expected);
    assert_eq!(seen(read(&batched, &c).await), expected);
    let history = |order: &Order| {
        let store = Arc::clone(&store);
        let id = order.id.clone();
        async move {
            let view = store.track_view(id).await.expect("reads").expect("a view");
            view.eta_history.map(|h| h.points.len())
        }
    };
    assert_eq!(history(&b).await, history(&a).await);
    assert_eq!(
        history(&done).await.unwrap_or(0),
        0,
        "a cancelled order logs nothing"
    );

    // A batch of nothing does nothing.
    assert!(
        store
            .record_etas(Vec::new(), policy())
            .await
            .expect("answers")
            .is_empty()
    );
}

async fn dead_letters_are_kept_newest_first_and_the_outbox_counts(store: Arc<dyn Store>) {
    let letter = |n: u8| NewDeadLetter {
        tenant_id: None,
        origin: "kafka".into(),
        topic: Some("positions".into()),
        partition: Some(2),
        offset: Some(1_000 + i64::from(n)),
        size_bytes: 3,
        reason: "undecodable".into(),
        detail: format!("letter {n}"),
        payload: vec![n, n, n],
        key: Some(b"t/v".to_vec()),
        received_at: at(i64::from(n)),
    };
    store
        .add_dead_letters(vec![letter(1), letter(2), letter(3)])
        .await
        .expect("kept");
    let recent = store.recent_dead_letters(2).await.expect("reads");
    let details: Vec<_> = recent.iter().map(|l| l.letter.detail.as_str()).collect();
    assert_eq!(details, vec!["letter 3", "letter 2"]);
    assert_eq!(recent[0].letter, letter(3));

    assert_eq!(store.outbox_pending().await.expect("counts"), 0);
    let acme = tenant(&*store, "Acme").await;
    new_order(&*store, &acme, "LOAD-OUT").await;
    assert_eq!(
        store.outbox_pending().await.expect("counts"),
        1,
        "order.created waits for its deliverer"
    );
}

async fn brand_and_privacy_reach_the_page_and_the_position_path(store: Arc<dyn Store>) {
    let settings = store.settings().expect("the backend keeps settings");
    let acme = tenant(&*store, "Acme").await;
    let (order, _) = new_order(&*store, &acme, "LOAD-BRAND").await;
    assert_eq!(
        settings.branding(acme.clone()).await.expect("reads"),
        store::Branding::default()
    );
    let brand = store::Branding {
        display_name: Some("Acme Haulage".into()),
        primary_color: Some("#0a5".into()),
        support_phone: None,
        support_email: Some("help@acme.example".into()),
        support_url: None,
        logo: None,
    };
    assert_eq!(
        settings
            .set_branding(acme.clone(), brand.clone())
            .await
            .expect("sets"),
        brand
    );
    let logo = store::LogoMeta {
        content_type: "image/png".into(),
        sha256: "ab".repeat(32),
        width_px: 120,
        height_px: 40,
        size_bytes: 4,
    };
    let with_logo = settings
        .set_logo(acme.clone(), logo.clone(), vec![1, 2, 3, 4])
        .await
        .expect("sets the logo");
    assert_eq!(with_logo.logo, Some(logo.clone()));
    assert_eq!(
        settings
            .logo_of_order(order.id.clone())
            .await
            .expect("reads"),
        Some((logo, vec![1, 2, 3, 4]))
    );
    assert!(settings.delete_logo(acme.clone()).await.expect("deletes"));
    assert!(
        !settings
            .delete_logo(acme.clone())
            .await
            .expect("nothing left")
    );
    assert!(is_not_found(
        settings
            .set_branding(TenantId("ten_nobody".into()), brand.clone())
            .await
    ));

    let private = store::LocationPrivacy {
        enabled: true,
        exact_within_m: 500.0,
        cell_resolution: 7,
    };
    settings
        .set_privacy(acme.clone(), private)
        .await
        .expect("sets");
    assert_eq!(
        settings.privacy(acme.clone()).await.expect("reads"),
        private
    );
    store
        .add_event(
            Some(acme.clone()),
            order.id.clone(),
            status(OrderStatus::Dispatched, 0),
        )
        .await
        .expect("dispatched");
    let outcome = store
        .record_position(acme.clone(), fix("truck-7", 1, 41.17))
        .await
        .expect("recorded");
    assert_eq!(outcome.privacy, private);
    assert_eq!(outcome.pending_stops.len(), 1);
    assert_eq!(outcome.pending_stops[0].len(), 3, "no stop reached yet");
    let (seen, pending) = settings
        .order_privacy(order.id.clone())
        .await
        .expect("reads");
    assert_eq!(seen, private);
    assert_eq!(pending.len(), 3);
    let view = store
        .track_view(order.id)
        .await
        .expect("reads")
        .expect("a view");
    assert_eq!(view.branding, brand);
    assert_eq!(view.privacy, private);
}

async fn trackers_memories_are_kept_per_order_and_never_go_back(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let rival = tenant(&*store, "Rival").await;
    let memory = |tenant: &TenantId, order: &str, vehicle: &str, minute: i64, state: &str| {
        TrackerMemoryRecord {
            tenant_id: tenant.clone(),
            vehicle_id: VehicleId(vehicle.into()),
            order_id: OrderId(order.into()),
            state: state.into(),
            applied_through: at(minute),
            saved_at: at(minute + 1),
        }
    };
    let truck = |tenant: &TenantId, vehicle: &str| {
        VehicleKey::new(tenant.clone(), VehicleId(vehicle.into()))
    };
    assert!(
        store
            .tracker_memories(vec![truck(&acme, "T1")])
            .await
            .expect("reads")
            .is_empty()
    );
    store
        .save_tracker_memories(vec![
            memory(&acme, "ord_1", "T1", 10, "{\"a\":10}"),
            memory(&acme, "ord_2", "T1", 10, "{\"b\":10}"),
            memory(&acme, "ord_3", "T2", 10, "{\"c\":10}"),
            memory(&rival, "ord_9", "T1", 10, "{\"rival\":1}"),
        ])
        .await
        .expect("saves");
    let mut of_t1 = store
        .tracker_memories(vec![truck(&acme, "T1")])
        .await
        .expect("reads");
    of_t1.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(
        of_t1,
        vec![
            memory(&acme, "ord_1", "T1", 10, "{\"a\":10}"),
            memory(&acme, "ord_2", "T1", 10, "{\"b\":10}"),
        ],
        "T1's orders, not the rival's T1"
    );

    // The new owner saves further; the old one, late, less far: kept further.
    store
        .save_tracker_memories(vec![memory(&acme, "ord_1", "T1", 20, "{\"a\":20}")])
        .await
        .expect("saves");
    store
        .save_tracker_memories(vec![memory(&acme, "ord_1", "T1", 15, "{\"a\":15}")])
        .await
        .expect("a late save is no error");
    // Moved to another truck: found under its new one.
    store
        .save_tracker_memories(vec![memory(&acme, "ord_3", "T4", 12, "{\"c\":12}")])
        .await
        .expect("saves");
    let mut read = store
        .tracker_memories(vec![
            truck(&acme, "T1"),
            truck(&acme, "T4"),
            truck(&acme, "T2"),
        ])
        .await
        .expect("reads");
    read.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(
        read,
        vec![
            memory(&acme, "ord_1", "T1", 20, "{\"a\":20}"),
            memory(&acme, "ord_2", "T1", 10, "{\"b\":10}"),
            memory(&acme, "ord_3", "T4", 12, "{\"c\":12}"),
        ]
    );
    store
        .save_tracker_memories(Vec::new())
        .await
        .expect("nothing to save is fine");
}

async fn a_truck_is_held_by_one_node_until_let_go_or_its_node_falls_silent(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme").await;
    let rival = tenant(&*store, "Rival").await;
    let truck = |tenant: &TenantId, vehicle: &str| {
        VehicleKey::new(tenant.clone(), VehicleId(vehicle.into()))
    };
    // Asked at `minute`; a holder not heard from in the 6 s before is gone.
    let ask = |holder: &str, vehicles: Vec<VehicleKey>, minute: i64, force: bool| HoldRequest {
        holder: holder.into(),
        vehicles,
        now: at(minute),
        silent_before: at(minute) - Duration::seconds(6),
        force,
    };
    let hold = |request: HoldRequest| {
        let store = Arc::clone(&store);
        async move { store.hold_vehicles(request).await.expect("holds") }
    };
    let held_by = |holder: &str| VehicleHold::HeldBy {
        holder: holder.into(),
    };
    let taken_from = |holder: &str| VehicleHold::TakenOver {
        from: holder.into(),
    };
    for node in ["node-a", "node-b"] {
        store
            .node_beat(node.into(), node.into(), at(10), false)
            .await
            .expect("beats");
    }

    // Nobody held them: A's. Asking again changes nothing.
    let t1_t2 = vec![truck(&acme, "T1"), truck(&acme, "T2")];
    assert_eq!(
        hold(ask("node-a", t1_t2.clone(), 10, false)).await,
        [VehicleHold::Taken, VehicleHold::Taken]
    );
    assert_eq!(
        hold(ask("node-a", t1_t2, 10, false)).await,
        [VehicleHold::Taken, VehicleHold::Taken]
    );
    // B waits for A's T1; the rival's T1 is another truck, and free.
    assert_eq!(
        hold(ask(
            "node-b",
            vec![truck(&acme, "T1"), truck(&rival, "T1")],
            10,
            false
        ))
        .await,
        [held_by("node-a"), VehicleHold::Taken]
    );

    // A lets go of T1 (and of the rival's, which is B's: that hold stays).
    store
        .let_go_vehicles(
            "node-a".into(),
            vec![truck(&acme, "T1"), truck(&rival, "T1")],
        )
        .await
        .expect("lets go");
    assert_eq!(
        hold(ask("node-b", vec![truck(&acme, "T1")], 10, false)).await,
        [VehicleHold::Taken]
    );
    assert_eq!(
        hold(ask("node-a", vec![truck(&rival, "T1")], 10, false)).await,
        [held_by("node-b")]
    );

    // A falls silent: a minute later B beats on, A does not. A's T2 is B's.
    store
        .node_beat("node-b".into(), "node-b".into(), at(11), false)
        .await
        .expect("beats");
    assert_eq!(
        hold(ask("node-b", vec![truck(&acme, "T2")], 11, false)).await,
        [taken_from("node-a")]
    );
    // A, back, waits for B; forced (it waited long enough), it takes T2.
    assert_eq!(
        hold(ask("node-a", vec![truck(&acme, "T2")], 11, false)).await,
        [held_by("node-b")]
    );
    assert_eq!(
        hold(ask("node-a", vec![truck(&acme, "T2")], 11, true)).await,
        [taken_from("node-b")]
    );
    // B stops cleanly: what it still holds is taken over at once.
    store
        .node_beat("node-b".into(), "node-b".into(), at(11), true)
        .await
        .expect("gone");
    assert_eq!(
        hold(ask("node-a", vec![truck(&acme, "T1")], 11, false)).await,
        [taken_from("node-b")]
    );
    assert!(hold(ask("node-a", Vec::new(), 11, false)).await.is_empty());
}

store::on_both_stores!(
    a_truck_is_held_by_one_node_until_let_go_or_its_node_falls_silent,
    trackers_memories_are_kept_per_order_and_never_go_back,
    brand_and_privacy_reach_the_page_and_the_position_path,
    tenants_keys_authenticate_until_revoked,
    an_order_is_created_once_per_idempotency_key_and_reference,
    racing_retries_of_one_key_make_one_order,
    another_tenants_order_is_not_found,
    orders_list_newest_first_in_pages,
    statuses_move_through_the_state_machine_and_mark_stops,
    a_geofence_never_undoes_what_a_dispatcher_marked,
    tracking_codes_rotate_and_revoke,
    a_pod_is_kept_with_its_bytes,
    positions_keep_the_newest_per_tenant_vehicle_and_a_trail,
    a_batch_of_positions_leaves_what_one_by_one_writes_leave,
    etas_are_recorded_for_active_orders_and_judged,
    a_batch_of_etas_leaves_what_one_by_one_writes_leave,
    dead_letters_are_kept_newest_first_and_the_outbox_counts,
);

mod postgres_open {
    //! Opening a PostgreSQL store: a bad URL and a server out of reach say
    //! which setting is wrong; retrying the latter may help.
    use store::{Error, StoreErrorKind, open_store};

    #[tokio::test]
    async fn a_url_without_a_user_is_a_bad_store_setting() {
        let err = open_store("postgres://127.0.0.1:5432/test")
            .await
            .expect_err("no user");
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    setting: "store",
                    ..
                }
            ),
            "{err:?}"
        );
        let garbled = open_store("postgres://u@[::1/x")
            .await
            .expect_err("bad URL");
        assert!(matches!(
            garbled,
            Error::InvalidConfig {
                setting: "store",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_and_retryable() {
        // Port 9 (discard) on loopback: nothing listens there.
        let err = open_store("postgres://postgres@127.0.0.1:9/test?connect_timeout=2")
            .await
            .expect_err("nothing listens");
        assert!(
            matches!(
                err,
                Error::Store {
                    kind: StoreErrorKind::Retryable,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("`store`"), "{message}");
        assert!(message.contains("127.0.0.1:9/test"), "{message}");
    }
}
