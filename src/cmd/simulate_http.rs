//! The HTTP side of `tracker simulate`: positions to `POST /api/v1/positions`
//! in chunks of `--http-batch`, and an order per trip (`POST /api/v1/orders`,
//! then `POST /api/v1/orders/{id}/status` dispatched), both through
//! portal-api's typed [`Client`] and contract types, so the simulator cannot
//! send a body the server would not read. It lives in the binary because
//! `ingest` (which owns the simulator) and `portal-api` never depend on each
//! other; it implements ingest's [`PositionPublisher`] and [`OrderCreator`].

use chrono::TimeDelta;
use engine::Position;
use futures::future::BoxFuture;
use ingest::simulate::{OrderCreator, PositionPublisher, TripPlan};
use portal_api::client::Client;
use portal_api::contract::{
    CustomerBody, NewOrderBody, PositionBody, StatusName, StatusUpdateBody, StopBody, StopKindName,
    WindowBody,
};

/// A tenant's session with the tracker API, as the simulator's publisher.
pub(crate) struct HttpApi {
    client: Client,
    /// Positions per request (at least 1).
    batch: usize,
}

impl HttpApi {
    pub(crate) fn new(client: Client, batch: usize) -> HttpApi {
        HttpApi {
            client,
            batch: batch.max(1),
        }
    }
}

/// The client's error as ingest's, keeping whether a retry can help.
fn publish_error(what: &str, err: &portal_api::Error) -> ingest::Error {
    ingest::Error::Publish {
        reason: format!("{what}: {err}"),
        retryable: err.is_retryable(),
    }
}

impl PositionPublisher for HttpApi {
    fn publish<'a>(&'a self, positions: &'a [Position]) -> BoxFuture<'a, ingest::Result<()>> {
        Box::pin(async move {
            // The API key names the tenant; the items name none.
            let items: Vec<PositionBody> = positions.iter().map(PositionBody::from).collect();
            for chunk in items.chunks(self.batch) {
                self.client
                    .post_positions(chunk)
                    .await
                    .map_err(|e| publish_error("POST /api/v1/positions", &e))?;
            }
            Ok(())
        })
    }
}

impl OrderCreator for HttpApi {
    fn create<'a>(&'a self, trip: &'a TripPlan) -> BoxFuture<'a, ingest::Result<()>> {
        Box::pin(async move {
            let created = self
                .client
                .create_order(&trip_order(trip))
                .await
                .map_err(|e| publish_error("POST /api/v1/orders", &e))?;
            // Dispatched at once, as a broker does when the truck is booked:
            // the engine tracks dispatched orders only.
            let dispatched = StatusUpdateBody {
                status: StatusName::Dispatched,
                at: None,
                note: Some("simulated trip".to_owned()),
                source: None,
                stop_index: None,
                visibility: None,
            };
            self.client
                .post_status(&created.id, &dispatched)
                .await
                .map_err(|e| publish_error("POST /api/v1/orders/{id}/status", &e))?;
            Ok(())
        })
    }
}

/// The order of a simulated trip: picked up within the hour of departure,
/// delivered by one and a half times the planned drive plus half an hour.
fn trip_order(trip: &TripPlan) -> NewOrderBody {
    let arrive_by =
        trip.depart_at + TimeDelta::seconds((trip.planned_duration_s * 1.5) as i64 + 1800);
    let stop = |kind, name: &str, at: road_graph::LatLon, to| StopBody {
        kind,
        name: name.to_owned(),
        address: Some("simulated".to_owned()),
        lat: at.lat,
        lon: at.lon,
        time_zone: None,
        window: Some(WindowBody {
            from: trip.depart_at,
            to,
        }),
        geofence: None,
    };
    NewOrderBody {
        reference: format!("LOAD-{}-{}", trip.vehicle_id, trip.depart_at.timestamp()),
        customer: CustomerBody {
            name: "Simulated Customer".to_owned(),
            email: Some("dispatch@example.invalid".to_owned()),
        },
        vehicle_id: Some(trip.vehicle_id.as_str().to_owned()),
        driver_name: None,
        stops: vec![
            stop(
                StopKindName::Pickup,
                "Origin",
                trip.origin,
                trip.depart_at + TimeDelta::hours(1),
            ),
            stop(
                StopKindName::Delivery,
                "Destination",
                trip.destination,
                arrive_by,
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use engine::VehicleId;
    use road_graph::LatLon;

    use super::*;

    fn trip() -> TripPlan {
        TripPlan {
            vehicle_id: VehicleId("SIM-0003".to_owned()),
            depart_at: DateTime::parse_from_rfc3339("2026-03-02T14:00:00Z")
                .expect("RFC 3339")
                .with_timezone(&Utc),
            origin: LatLon::new(39.277, -76.608),
            destination: LatLon::new(39.2966, -76.592),
            distance_m: 4_000.0,
            planned_duration_s: 600.0,
        }
    }

    #[test]
    fn a_trip_becomes_an_order_the_server_accepts() {
        let order = trip_order(&trip());
        // The contract's type reads it back (unknown fields are refused).
        let json = serde_json::to_vec(&order).expect("JSON");
        let read: NewOrderBody = serde_json::from_slice(&json).expect("the server reads it");
        assert_eq!(read, order);
        assert_eq!(order.reference, "LOAD-SIM-0003-1772460000");
        assert_eq!(order.stops[0].kind, StopKindName::Pickup);
        assert_eq!(order.stops[1].kind, StopKindName::Delivery);
        let delivery = order.stops[1].window.expect("a delivery window");
        // 600 s × 1.5 + 30 min after departure.
        assert_eq!((delivery.to - delivery.from).num_seconds(), 900 + 1800);
    }
}
