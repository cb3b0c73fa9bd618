//! The demo data `tracker serve` starts with: a demo tenant and a few demo orders
//! between real places on the bundled map. Seeding is idempotent: a restart finds
//! the tenant and orders it made before (by name and reference) and reuses them.
//!
//! Tracking codes are stored only as their hash, so a reused order's link cannot
//! be shown again: its code is rotated, and the restart prints the new links
//! (the previous run's links stop working).

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use engine::{OrderStatus, StatusSource, StopKind, VehicleId};

use crate::error::Result;
use crate::model::{
    Customer, EventKind, ListQuery, NewEvent, NewOrder, NewStop, Order, Tenant, Window,
};
use store::Store;

/// The demo tenant's name.
pub const DEMO_TENANT: &str = "demo";

/// A place demo orders go from or to.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoPlace {
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
}

/// What seeding found or made.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    pub tenant: Tenant,
    /// The API key, only when the tenant was created now (keys are stored hashed
    /// and cannot be shown again).
    pub new_api_key: Option<String>,
    pub orders: Vec<Order>,
    /// The active tracking code of each of `orders` (same position): issued
    /// now, for a new order or by rotating a reused one's.
    pub tracking_codes: Vec<String>,
}

/// The reference of the `i`-th demo order.
pub fn demo_reference(i: usize) -> String {
    format!("DEMO-{}", 1001 + i)
}

/// The vehicle of the `i`-th demo order.
pub fn demo_vehicle(i: usize) -> VehicleId {
    VehicleId(format!("demo-truck-{}", i + 1))
}

/// Ensures the demo tenant and `n` demo orders exist; orders go between
/// consecutive `places` (wrapping around). Newly made orders are dispatched.
pub async fn seed(
    store: &dyn Store,
    n: usize,
    places: &[DemoPlace],
    time_zone: Tz,
    now: DateTime<Utc>,
) -> Result<DemoSeed> {
    let (tenant, new_api_key) = match store.tenant_by_name(DEMO_TENANT.to_owned()).await? {
        Some(tenant) => (tenant, None),
        None => {
            let (tenant, key) = crate::create_tenant(store, DEMO_TENANT).await?;
            (tenant, Some(key))
        }
    };
    let mut orders = Vec::with_capacity(n);
    let mut tracking_codes = Vec::with_capacity(n);
    if places.len() < 2 {
        return Ok(DemoSeed {
            tenant,
            new_api_key,
            orders,
            tracking_codes,
        });
    }
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    for i in 0..n {
        let reference = demo_reference(i);
        let query = ListQuery {
            reference: Some(reference.clone()),
            limit: 1,
            ..ListQuery::default()
        };
        if let Some(existing) = store.list_orders(tenant.id.clone(), query).await?.pop() {
            let code = crate::new_tracking_code();
            let rotated = store
                .rotate_tracking_code(tenant.id.clone(), existing.id, code.clone())
                .await?;
            orders.push(rotated);
            tracking_codes.push(code);
            continue;
        }
        let from = &places[i % places.len()];
        let to = &places[(i + 1 + i / places.len()) % places.len()];
        let load = DemoLoad {
            reference,
            vehicle_id: demo_vehicle(i),
            from,
            to,
            pickup: Window {
                from: hour - Duration::hours(1),
                to: hour + Duration::hours(1),
            },
            delivery: Window {
                from: hour + Duration::hours(2),
                to: hour + Duration::hours(4),
            },
            time_zone,
            note: "Demo shipment created by `tracker serve`.".into(),
        };
        let (dispatched, code) = create_load(store, &tenant, load, now).await?;
        orders.push(dispatched);
        tracking_codes.push(code);
    }
    Ok(DemoSeed {
        tenant,
        new_api_key,
        orders,
        tracking_codes,
    })
}

/// One demo order to make: a pickup at `from`, a delivery at `to`.
#[derive(Debug, Clone)]
pub struct DemoLoad<'a> {
    pub reference: String,
    pub vehicle_id: VehicleId,
    pub from: &'a DemoPlace,
    pub to: &'a DemoPlace,
    pub pickup: Window,
    pub delivery: Window,
    pub time_zone: Tz,
    /// The note on its `dispatched` entry.
    pub note: String,
}

/// Creates a demo order for the demo customer and dispatches it at `now`;
/// returns it with its tracking code (shown now or never).
pub async fn create_load(
    store: &dyn Store,
    tenant: &Tenant,
    load: DemoLoad<'_>,
    now: DateTime<Utc>,
) -> Result<(Order, String)> {
    let stop = |kind: StopKind, place: &DemoPlace, window: Window| NewStop {
        kind,
        name: place.name.clone(),
        address: place.address.clone(),
        lat: place.lat,
        lon: place.lon,
        time_zone: load.time_zone,
        window: Some(window),
        geofence: None,
    };
    let order = NewOrder {
        reference: load.reference.clone(),
        customer: Customer {
            name: "Demo Customer".into(),
            email: None,
        },
        vehicle_id: Some(load.vehicle_id.clone()),
        driver_name: None,
        stops: vec![
            stop(StopKind::Pickup, load.from, load.pickup),
            stop(StopKind::Delivery, load.to, load.delivery),
        ],
    };
    let code = crate::new_tracking_code();
    let created = store
        .create_order(tenant.id.clone(), order, code.clone())
        .await?;
    let (dispatched, _) = store
        .add_event(
            Some(tenant.id.clone()),
            created.id.clone(),
            NewEvent {
                kind: EventKind::Status,
                status: Some(OrderStatus::Dispatched),
                at: now,
                note: Some(load.note),
                source: StatusSource::System,
                stop_index: None,
                visibility: crate::model::Visibility::Public,
            },
        )
        .await?;
    Ok((dispatched, code))
}
