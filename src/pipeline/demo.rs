//! The demo fleet of `tracker serve`: one simulated truck per demo order
//! (`ingest::simulate::Fleet`, scripted), driving real roads of the map from its
//! pickup to its delivery and publishing its ELD fixes to the bus like any other
//! source. The engine does the rest (matching, ETA, geofence statuses).
//!
//! A truck that has reached every stop of its order (and dwelt there) gets the
//! next load: a new demo order from the next demo place to the one after, whose
//! tracking URL is printed like the first ones. Leaving the delivery stop makes
//! the engine mark the old order delivered, so its page becomes the record of the
//! shipment while the truck drives the next one. On a restart, each truck resumes
//! its newest order in progress from the vehicle's last recorded position.
//!
//! `speedup` runs the simulated clock faster than the wall clock, starting now
//! (or after the newest stored fix of a demo truck, when a faster demo left
//! them ahead of now): device times then run ahead of the real time (fine for
//! the in-process bus; Kafka ingest refuses device times more than 5 minutes in
//! the future).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use engine::{OrderStatus, Router, VehicleId, VehicleKey};
use ingest::BusPublisher;
use ingest::simulate::{Fleet, FleetConfig};
use portal_api::demo::{DemoLoad, DemoPlace, DemoSeed, create_load, demo_reference, demo_vehicle};
use portal_api::{ListQuery, Order, Store, Tenant, Window};
use road_graph::{LatLon, RoadGraph, haversine_m};

/// How the demo runs.
#[derive(Debug, Clone)]
pub(crate) struct DemoSettings {
    /// Simulated seconds per wall-clock second.
    pub(crate) speedup: f64,
    /// How often the fleet advances and publishes (wall clock).
    pub(crate) tick: Duration,
    /// The public origin of tracking links.
    pub(crate) public_url: String,
    pub(crate) time_zone: chrono_tz::Tz,
}

/// One truck and the order it drives.
#[derive(Debug)]
struct Truck {
    slot: usize,
    vehicle: VehicleId,
    /// The order it drives now (`None` until it gets one).
    order: Option<Order>,
    /// Index in the places of the next pickup to take.
    next_place: usize,
    loads: usize,
}

/// Runs the demo fleet until shutdown.
// The wiring of `serve` hands over what the demo shares with the rest; a struct
// for it would only be unpacked here.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_demo(
    graph: Arc<RoadGraph>,
    router: Arc<Router>,
    store: Arc<dyn Store>,
    bus: BusPublisher,
    places: Vec<DemoPlace>,
    seed: DemoSeed,
    settings: DemoSettings,
    mut shutdown: ingest::Shutdown,
) -> anyhow::Result<()> {
    if places.len() < 2 || seed.orders.is_empty() {
        return Ok(());
    }
    // A demo that ran faster than the wall clock left device times ahead of
    // it: a restarted clock goes on after the newest stored fix, or every fix
    // would be older than the last one the engine has and dropped as stale.
    let vehicles: Vec<VehicleKey> = (0..seed.orders.len())
        .map(|slot| VehicleKey::new(seed.tenant.id.clone(), demo_vehicle(slot)))
        .collect();
    let newest = store
        .vehicle_times(vehicles)
        .await?
        .into_iter()
        .flatten()
        .max();
    let now = Utc::now();
    let start = match newest {
        Some(t) if t >= now => t + TimeDelta::seconds(1),
        _ => now,
    };
    let mut trucks = Vec::new();
    let mut starts = Vec::new();
    for (slot, seeded) in seed.orders.iter().enumerate() {
        let vehicle = demo_vehicle(slot);
        let order = current_order(&*store, &seed.tenant, &vehicle, seeded).await?;
        let here = start_place(&*store, order.as_ref(), seeded, &places, slot).await?;
        let last_stop = seeded.stops.last().map(|s| LatLon::new(s.lat, s.lon));
        let next_place = last_stop.map_or(slot, |p| nearest_place(&places, p) + 1);
        starts.push((vehicle.clone(), here));
        trucks.push(Truck {
            slot,
            vehicle,
            order,
            next_place,
            loads: 0,
        });
    }
    let mut config = FleetConfig::recommended(trucks.len(), 0xD3_30);
    config.tenant_id = seed.tenant.id.clone();
    config.id_prefix = "demo-".into();
    // Regular fixes (a modern ELD), short stops at the docks.
    config.intervals_s = vec![(2, 1), (5, 2)];
    config.dwell_s = (90, 240);
    let mut fleet = Fleet::scripted(Arc::clone(&graph), config, start, &starts)
        .context("placing the demo trucks")?;
    for truck in &trucks {
        if let Some(order) = &truck.order {
            for stop in order.stops.iter().filter(|s| s.arrived_at.is_none()) {
                fleet.send(&truck.vehicle, LatLon::new(stop.lat, stop.lon));
            }
        }
    }
    let wall = Instant::now();
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.wait() => return Ok(()),
        }
        let sim_now = start
            + TimeDelta::microseconds(
                (wall.elapsed().as_secs_f64() * settings.speedup * 1e6) as i64,
            );
        let planner = Arc::clone(&router);
        let (back, positions) = tokio::task::spawn_blocking(move || {
            let positions = fleet.advance(planner.as_ref(), sim_now);
            let _ = fleet.take_trips();
            (fleet, positions)
        })
        .await
        .context("the demo fleet task failed")?;
        fleet = back;
        if !positions.is_empty() {
            // Counted as they are offered to the bus (the publish returns
            // only once the sink has applied them).
            metrics::counter!(
                "tracker_positions_total",
                "source" => "simulate",
                "outcome" => "received"
            )
            .increment(positions.len() as u64);
            if let Err(err) = bus.publish(positions).await {
                tracing::warn!(error = %err, "publishing demo positions failed");
            }
        }
        for truck in &mut trucks {
            if !fleet.is_idle(&truck.vehicle) {
                continue;
            }
            // Everywhere it was sent: the next load.
            let here = fleet.position_of(&truck.vehicle);
            match next_load(
                &*store,
                &seed.tenant,
                truck,
                &places,
                here,
                sim_now,
                &settings,
            )
            .await
            {
                Ok((order, code)) => {
                    for stop in &order.stops {
                        fleet.send(&truck.vehicle, LatLon::new(stop.lat, stop.lon));
                    }
                    crate::cmd::output::print_line(&format!(
                        "demo tracking page: {}/t/{code}",
                        settings.public_url.trim_end_matches('/')
                    ));
                    truck.order = Some(order);
                }
                Err(err) => tracing::warn!(error = %err, "creating the next demo load failed"),
            }
        }
    }
}

/// The truck's newest order in progress: the seeded one unless it is finished,
/// else a later demo order of the same vehicle.
async fn current_order(
    store: &dyn Store,
    tenant: &Tenant,
    vehicle: &VehicleId,
    seeded: &Order,
) -> anyhow::Result<Option<Order>> {
    let query = ListQuery {
        vehicle_id: Some(vehicle.clone()),
        limit: 20,
        ..ListQuery::default()
    };
    let newest_first = store.list_orders(tenant.id.clone(), query).await?;
    Ok(newest_first
        .into_iter()
        .chain(std::iter::once(seeded.clone()))
        .find(|o| !o.status.is_final()))
}

/// Where a truck starts: a new order's truck comes from another demo place (so
/// its page shows it on the way to the pickup); one that was under way resumes
/// from its last recorded position; one with no order waits at its last
/// delivery.
async fn start_place(
    store: &dyn Store,
    order: Option<&Order>,
    seeded: &Order,
    places: &[DemoPlace],
    slot: usize,
) -> anyhow::Result<LatLon> {
    let stop_place = |o: &Order, last: bool| {
        let stop = if last {
            o.stops.last()
        } else {
            o.stops.first()
        };
        stop.map(|s| LatLon::new(s.lat, s.lon))
    };
    let Some(order) = order else {
        return Ok(stop_place(seeded, true).unwrap_or(place_at(places, slot)));
    };
    if order.status != OrderStatus::Dispatched && order.status != OrderStatus::Created {
        if let Some(view) = store.track_view(order.id.clone()).await?
            && let Some(fix) = view.vehicle
        {
            return Ok(LatLon::new(fix.lat, fix.lon));
        }
        return Ok(stop_place(order, false).unwrap_or(place_at(places, slot)));
    }
    let pickup = stop_place(order, false).unwrap_or(place_at(places, slot));
    let delivery = stop_place(order, true).unwrap_or(pickup);
    // The place before the pickup in the demo list, unless it is one of the
    // order's own stops.
    let before = place_at(places, nearest_place(places, pickup) + places.len() - 1);
    if haversine_m(before, pickup) > 300.0 && haversine_m(before, delivery) > 300.0 {
        Ok(before)
    } else {
        Ok(pickup)
    }
}

/// Creates the truck's next demo order (dispatched): from the next demo place
/// that is not where the truck stands, to the one after. Returns it with its
/// tracking code, which only this moment knows.
async fn next_load(
    store: &dyn Store,
    tenant: &Tenant,
    truck: &mut Truck,
    places: &[DemoPlace],
    here: Option<LatLon>,
    now: DateTime<Utc>,
    settings: &DemoSettings,
) -> anyhow::Result<(Order, String)> {
    let n = places.len();
    let mut from = truck.next_place % n;
    if let Some(here) = here
        && haversine_m(here, place_at(places, from)) < 300.0
    {
        from = (from + 1) % n;
    }
    let to = (from + 1) % n;
    truck.next_place = to + 1;
    truck.loads += 1;
    let load = DemoLoad {
        reference: format!(
            "{}-{}",
            demo_reference(truck.slot),
            now.format("%m%d%H%M%S")
        ),
        vehicle_id: truck.vehicle.clone(),
        from: &places[from],
        to: &places[to],
        pickup: Window {
            from: now,
            to: now + TimeDelta::hours(1),
        },
        delivery: Window {
            from: now + TimeDelta::minutes(30),
            to: now + TimeDelta::hours(3),
        },
        time_zone: settings.time_zone,
        note: format!(
            "Demo load {} for {} (truck on its way to the pickup).",
            truck.loads + 1,
            truck.vehicle
        ),
    };
    Ok(create_load(store, tenant, load, now).await?)
}

fn place_at(places: &[DemoPlace], i: usize) -> LatLon {
    let p = &places[i % places.len()];
    LatLon::new(p.lat, p.lon)
}

fn nearest_place(places: &[DemoPlace], at: LatLon) -> usize {
    places
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            haversine_m(at, LatLon::new(a.lat, a.lon))
                .total_cmp(&haversine_m(at, LatLon::new(b.lat, b.lon)))
        })
        .map_or(0, |(i, _)| i)
}
