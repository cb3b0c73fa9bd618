//! Fixtures of the store scenarios (`store_conformance.rs`,
//! `store_notifications.rs`): a fixed clock, a three-stop load, status
//! events, fixes, and tenants and orders made through the [`Store`] seam.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use engine::{OrderStatus, StatusSource, StopKind, VehicleId};
use store::{
    Customer, Error, EventKind, NewEvent, NewOrder, NewStop, Order, Store, TenantId, VehicleFix,
    Visibility, Window, create_tenant, new_tracking_code,
};

pub fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
        .single()
        .expect("a valid time")
        + Duration::minutes(minute)
}

pub fn stop(kind: StopKind, name: &str, lat: f64, window_to: Option<i64>) -> NewStop {
    NewStop {
        kind,
        name: name.into(),
        address: format!("{name}, Porto"),
        lat,
        lon: -8.61,
        time_zone: chrono_tz::Europe::Lisbon,
        window: window_to.map(|to| Window {
            from: at(to - 60),
            to: at(to),
        }),
        geofence: None,
    }
}

/// A load from a pickup to two deliveries, carried by `vehicle`.
pub fn load(reference: &str, vehicle: Option<&str>) -> NewOrder {
    NewOrder {
        reference: reference.into(),
        customer: Customer {
            name: "Ribeira Foods".into(),
            email: Some("ops@ribeira.example".into()),
        },
        vehicle_id: vehicle.map(|v| VehicleId(v.into())),
        driver_name: Some("Ana".into()),
        stops: vec![
            stop(StopKind::Pickup, "Matosinhos DC", 41.18, Some(60)),
            stop(StopKind::Delivery, "Baixa store", 41.15, Some(180)),
            stop(StopKind::Delivery, "Gaia store", 41.13, Some(240)),
        ],
    }
}

pub fn status(to: OrderStatus, minute: i64) -> NewEvent {
    NewEvent {
        kind: EventKind::Status,
        status: Some(to),
        at: at(minute),
        note: None,
        source: StatusSource::Dispatcher,
        stop_index: None,
        visibility: Visibility::Public,
    }
}

pub async fn tenant(store: &dyn Store, name: &str) -> TenantId {
    create_tenant(store, name)
        .await
        .expect("tenant created")
        .0
        .id
}

pub async fn new_order(store: &dyn Store, tenant: &TenantId, reference: &str) -> (Order, String) {
    let code = new_tracking_code();
    let order = store
        .create_order(
            tenant.clone(),
            load(reference, Some("truck-7")),
            code.clone(),
        )
        .await
        .expect("order created");
    (order, code)
}

pub fn is_not_found<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::NotFound(_)))
}

pub fn fix(vehicle: &str, minute: i64, lat: f64) -> VehicleFix {
    VehicleFix {
        vehicle_id: VehicleId(vehicle.into()),
        at: at(minute),
        lat,
        lon: -8.61,
        speed_mps: Some(12.0),
        heading_deg: Some(180.0),
    }
}
