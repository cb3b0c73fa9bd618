//! A recorded history for the analytics tests: two tenants' trips with
//! their ETAs and arrivals on a few days of March 2026, through the store
//! alone (no router), and the accuracy figures read back from it.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use engine::{EtaUpdate, OrderStatus, StatusSource, StopKind, VehicleId};
use store::analytics::{AccuracyGroup, AnalyticsFilter, GroupBy, accuracy_groups_with_daily};
use store::{
    AlertPolicy, AnalyticsStore, Customer, EventKind, NewEvent, NewOrder, NewStop, Order, Store,
    TenantId, Visibility, Window, create_tenant, new_tracking_code,
};

/// `hour:minute` on the `day`th of March 2026 (UTC).
pub fn t(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0)
        .single()
        .expect("a valid time")
}

pub fn analytics(store: &dyn Store) -> &dyn AnalyticsStore {
    store.analytics().expect("the backend keeps analytics")
}

pub fn stop(
    kind: StopKind,
    name: &str,
    lat: f64,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> NewStop {
    NewStop {
        kind,
        name: name.into(),
        address: format!("{name}, Porto"),
        lat,
        lon: -8.61,
        time_zone: chrono_tz::Europe::Lisbon,
        window: Some(Window {
            from: window.0,
            to: window.1,
        }),
        geofence: None,
    }
}

/// A load for `customer` on `truck` from a pickup to two deliveries, with
/// windows on the `day`th: 07:30-08:30, 09:30-10:30, 11:00-12:00.
pub async fn new_load(
    store: &dyn Store,
    tenant: &TenantId,
    customer: &str,
    truck: &str,
    day: u32,
) -> Order {
    let order = NewOrder {
        reference: format!("LOAD-{customer}-{day}"),
        customer: Customer {
            name: customer.into(),
            email: None,
        },
        vehicle_id: Some(VehicleId(truck.into())),
        driver_name: None,
        stops: vec![
            stop(
                StopKind::Pickup,
                "Matosinhos DC",
                41.18,
                (t(day, 7, 30), t(day, 8, 30)),
            ),
            stop(
                StopKind::Delivery,
                "Baixa store",
                41.15,
                (t(day, 9, 30), t(day, 10, 30)),
            ),
            stop(
                StopKind::Delivery,
                "Gaia store",
                41.13,
                (t(day, 11, 0), t(day, 12, 0)),
            ),
        ],
    };
    store
        .create_order(tenant.clone(), order, new_tracking_code())
        .await
        .expect("order created")
}

/// Moves the order to `to` at `at` (at stop `stop` when given): an arrival
/// for the `at_*` statuses and `delivered`.
pub async fn move_to(
    store: &dyn Store,
    tenant: &TenantId,
    order: &Order,
    to: OrderStatus,
    at: DateTime<Utc>,
    stop: Option<u32>,
) {
    let event = NewEvent {
        kind: EventKind::Status,
        status: Some(to),
        at,
        note: None,
        source: StatusSource::Dispatcher,
        stop_index: stop,
        visibility: Visibility::Public,
    };
    store
        .add_event(Some(tenant.clone()), order.id.clone(), event)
        .await
        .expect("status moved");
}

/// Logs an ETA made at `made` for the order's `stop` saying `eta`, its
/// window ±10 minutes, its free-flow ETA 5 minutes earlier.
pub async fn log_eta(
    store: &dyn Store,
    order: &Order,
    stop: u32,
    made: DateTime<Utc>,
    eta: DateTime<Utc>,
) {
    let update = EtaUpdate {
        order_id: order.id.clone(),
        stop_index: stop,
        eta,
        p10: eta - Duration::minutes(10),
        p90: eta + Duration::minutes(10),
        remaining_distance_m: 10_000.0,
        remaining_drive_s: 600.0,
        reasons: Vec::new(),
        computed_at: made,
        free_flow_drive_s: Some(((eta - made).num_seconds() - 300) as f64),
        route: Vec::new(),
    };
    store
        .record_eta(update, AlertPolicy::recommended())
        .await
        .expect("ETA logged");
}

/// Two tenants' recorded trips.
pub struct History {
    pub acme: TenantId,
    pub other: TenantId,
    /// Acme's load for Ribeira Foods on the 2nd, delivered past midnight.
    pub ribeira: Order,
    /// Acme's load for Douro Wines on the 3rd, its delivery not reached yet.
    pub douro: Order,
}

/// Records the trips. Evaluated predictions of Acme (error = ETA − arrival):
/// Ribeira +10, −30, −10 min (2nd) and −10 min (made on the 2nd, reached
/// on the 3rd), Douro −10 min (3rd); Douro's delivery ETA (made on the 3rd
/// for 00:30 on the 4th) waits for its arrival. The other tenant's one
/// prediction is five hours off and never shows in Acme's figures.
pub async fn record_history(store: &dyn Store) -> History {
    let acme = create_tenant(store, "Acme").await.expect("tenant").0.id;
    let other = create_tenant(store, "Other Freight")
        .await
        .expect("tenant")
        .0
        .id;
    use OrderStatus::{AtDelivery, AtPickup, Delivered, Dispatched, PickedUp};

    let theirs = new_load(store, &other, "Their Customer", "T9", 2).await;
    move_to(store, &other, &theirs, Dispatched, t(2, 6, 0), None).await;
    log_eta(store, &theirs, 0, t(2, 6, 30), t(2, 13, 0)).await;
    move_to(store, &other, &theirs, AtPickup, t(2, 8, 0), None).await;

    let ribeira = new_load(store, &acme, "Ribeira Foods", "T1", 2).await;
    move_to(store, &acme, &ribeira, Dispatched, t(2, 6, 0), None).await;
    log_eta(store, &ribeira, 0, t(2, 7, 0), t(2, 8, 10)).await;
    log_eta(store, &ribeira, 1, t(2, 7, 5), t(2, 10, 0)).await;
    move_to(store, &acme, &ribeira, AtPickup, t(2, 8, 0), None).await;
    move_to(store, &acme, &ribeira, PickedUp, t(2, 8, 20), None).await;
    log_eta(store, &ribeira, 1, t(2, 9, 0), t(2, 10, 20)).await;
    move_to(store, &acme, &ribeira, AtDelivery, t(2, 10, 30), Some(1)).await;
    log_eta(store, &ribeira, 2, t(2, 23, 0), t(3, 0, 40)).await;
    move_to(store, &acme, &ribeira, Delivered, t(3, 0, 50), Some(2)).await;

    let douro = new_load(store, &acme, "Douro Wines", "T2", 3).await;
    move_to(store, &acme, &douro, Dispatched, t(3, 6, 0), None).await;
    log_eta(store, &douro, 0, t(3, 7, 0), t(3, 7, 55)).await;
    move_to(store, &acme, &douro, AtPickup, t(3, 8, 5), None).await;
    move_to(store, &acme, &douro, PickedUp, t(3, 8, 30), None).await;
    log_eta(store, &douro, 1, t(3, 23, 30), t(4, 0, 30)).await;
    History {
        acme,
        other,
        ribeira,
        douro,
    }
}

/// Acme's first days: the 1st to the end of the 4th.
pub fn first_days() -> AnalyticsFilter {
    AnalyticsFilter {
        from: t(1, 0, 0),
        to: t(5, 0, 0),
        customer: None,
        vehicle_id: None,
        stop_kind: None,
    }
}

/// The morning of the 5th: the 2nd to the 4th are over.
pub fn morning_after() -> DateTime<Utc> {
    t(5, 10, 0)
}

/// The tenant's accuracy over `filter`, by `by`, from aggregates wherever
/// they serve (`summed`) or from raw rows only.
pub async fn accuracy(
    store: &dyn Store,
    tenant: &TenantId,
    filter: AnalyticsFilter,
    by: GroupBy,
    summed: bool,
) -> Vec<AccuracyGroup> {
    let inputs = analytics(store)
        .accuracy_inputs(tenant.clone(), filter, summed)
        .await
        .expect("accuracy inputs");
    accuracy_groups_with_daily(&inputs.raw, &inputs.daily, by)
}

/// What raw rows and sketches agree on exactly: key, n, MAE, bias,
/// coverage, baseline MAE.
pub fn figures(groups: &[AccuracyGroup]) -> Vec<(String, u64, f64, f64, f64, Option<f64>)> {
    groups
        .iter()
        .map(|g| {
            (
                g.key.clone(),
                g.n,
                g.mae_s,
                g.bias_s,
                g.coverage,
                g.baseline_mae_s,
            )
        })
        .collect()
}

/// A longer history for one tenant: a load a day on each day of `days`,
/// its pickup and first delivery reached a minute later each day than the
/// day before, so each day sums to other figures.
pub async fn record_days(
    store: &dyn Store,
    tenant: &TenantId,
    customer: &str,
    days: std::ops::RangeInclusive<u32>,
) {
    use OrderStatus::{AtDelivery, AtPickup, Dispatched, PickedUp};
    for day in days {
        let late = Duration::minutes(i64::from(day));
        let order = new_load(store, tenant, customer, "T1", day).await;
        move_to(store, tenant, &order, Dispatched, t(day, 6, 0), None).await;
        log_eta(store, &order, 0, t(day, 7, 0), t(day, 8, 0)).await;
        move_to(store, tenant, &order, AtPickup, t(day, 8, 0) + late, None).await;
        move_to(store, tenant, &order, PickedUp, t(day, 8, 40), None).await;
        log_eta(store, &order, 1, t(day, 9, 0), t(day, 10, 0)).await;
        move_to(
            store,
            tenant,
            &order,
            AtDelivery,
            t(day, 10, 0) - late,
            Some(1),
        )
        .await;
    }
}
