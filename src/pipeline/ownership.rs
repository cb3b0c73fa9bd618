//! Which trucks this node tracks. On the in-process bus every truck is the
//! node's. In a Kafka consumer group a truck's positions all go to one
//! partition (they are keyed by tenant and vehicle), so a truck is this node's
//! from its first position read off one of the node's partitions until that
//! partition is revoked; then the sink saves the truck's trackers' memories
//! and lets it go ([`EngineSink`](super::EngineSink)'s `release`), and the
//! node that takes the partition resumes them before its first position.
//!
//! The engine is given only the orders of the node's trucks, so a node never
//! runs a tracker, an ETA or a status of a truck another node moves. The
//! store's active orders are kept here in full between order syncs: a truck
//! taken up between two syncs gets its orders at once, from the last read.
//!
//! Lock order: the engine's lock first, then this one, so that an order sync
//! and a batch taking up a truck cannot give the engine different shares.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use engine::{ActiveOrder, Position, TenantId, VehicleId, VehicleKey};

/// The ownership shared by the sink and the order sync.
pub(crate) type SharedOwnership = Arc<parking_lot::Mutex<Ownership>>;

/// Which trucks are the node's (see the module docs).
#[derive(Debug)]
pub(crate) struct Ownership {
    /// Every truck (the in-process bus), or those seen on the node's
    /// partitions (Kafka).
    every: bool,
    /// The trucks taken up, by tenant: looked up per position without
    /// building a key.
    owned: HashMap<TenantId, HashSet<VehicleId>>,
    /// The store's active orders as of the last sync, every truck's.
    orders: Vec<ActiveOrder>,
}

impl Ownership {
    /// Every truck is this node's (the in-process bus).
    pub(crate) fn every() -> SharedOwnership {
        Ownership::shared(true)
    }

    /// Trucks are this node's once seen on its partitions (Kafka).
    pub(crate) fn observed() -> SharedOwnership {
        Ownership::shared(false)
    }

    fn shared(every: bool) -> SharedOwnership {
        Arc::new(parking_lot::Mutex::new(Ownership {
            every,
            owned: HashMap::new(),
            orders: Vec::new(),
        }))
    }

    fn owns(&self, tenant: &TenantId, vehicle: &VehicleId) -> bool {
        self.owned
            .get(tenant)
            .is_some_and(|vehicles| vehicles.contains(vehicle))
    }

    /// Takes the store's active orders; returns the engine's share of them.
    pub(crate) fn set_orders(&mut self, orders: Vec<ActiveOrder>) -> Vec<ActiveOrder> {
        self.orders = orders;
        self.share()
    }

    /// The orders the engine is to track: all of them, or those of the
    /// node's trucks.
    fn share(&self) -> Vec<ActiveOrder> {
        self.orders
            .iter()
            .filter(|o| self.every || self.owns(&o.tenant_id, &o.vehicle_id))
            .cloned()
            .collect()
    }

    /// The trucks of `batch` not taken up yet, each once, in order of first
    /// appearance. They become the node's only with [`Ownership::take_up`],
    /// once their memories are read.
    pub(crate) fn newcomers(&self, batch: &[Position]) -> Vec<VehicleKey> {
        let mut fresh: Vec<VehicleKey> = Vec::new();
        let mut seen: HashSet<(&TenantId, &VehicleId)> = HashSet::new();
        for p in batch {
            if !self.owns(&p.tenant_id, &p.vehicle_id) && seen.insert((&p.tenant_id, &p.vehicle_id))
            {
                fresh.push(p.key());
            }
        }
        fresh
    }

    /// Makes `vehicles` the node's. Returns the engine's new share of the
    /// orders when it changed (some of them carry orders and the node does
    /// not track every truck anyway).
    pub(crate) fn take_up(&mut self, vehicles: &[VehicleKey]) -> Option<Vec<ActiveOrder>> {
        for v in vehicles {
            self.owned
                .entry(v.tenant_id.clone())
                .or_default()
                .insert(v.vehicle_id.clone());
        }
        if self.every {
            return None;
        }
        // One pass over the orders, no key built per order: this runs under
        // the engine's lock, and a first batch may bring every truck at once.
        let fresh: HashSet<(&TenantId, &VehicleId)> = vehicles
            .iter()
            .map(|v| (&v.tenant_id, &v.vehicle_id))
            .collect();
        let carry_orders = self
            .orders
            .iter()
            .any(|o| fresh.contains(&(&o.tenant_id, &o.vehicle_id)));
        carry_orders.then(|| self.share())
    }

    /// `vehicles` are no longer the node's: their next position here (after
    /// the partition comes back) takes them up afresh.
    pub(crate) fn let_go(&mut self, vehicles: &[VehicleKey]) {
        for v in vehicles {
            if let Some(set) = self.owned.get_mut(&v.tenant_id) {
                set.remove(&v.vehicle_id);
                if set.is_empty() {
                    self.owned.remove(&v.tenant_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::{ActiveStop, OrderId, OrderStatus, PositionSource, StopKind};
    use road_graph::LatLon;

    use super::*;

    fn order(id: &str, vehicle: &str) -> ActiveOrder {
        ActiveOrder {
            order_id: OrderId(id.into()),
            tenant_id: TenantId("ten_a".into()),
            vehicle_id: VehicleId(vehicle.into()),
            status: OrderStatus::Dispatched,
            stops: vec![ActiveStop {
                kind: StopKind::Delivery,
                position: LatLon::new(41.15, -8.61),
                window: None,
                geofence: None,
                arrived_at: None,
                departed_at: None,
                skipped_at: None,
            }],
        }
    }

    fn fix(tenant: &str, vehicle: &str) -> Position {
        Position {
            tenant_id: TenantId(tenant.into()),
            vehicle_id: VehicleId(vehicle.into()),
            time: chrono::DateTime::UNIX_EPOCH,
            lat: 41.15,
            lon: -8.61,
            speed_mps: None,
            heading_deg: None,
            odometer_m: None,
            hos_drive_remaining_s: None,
            accuracy_m: None,
            source: PositionSource::Canonical,
        }
    }

    fn ids(orders: &[ActiveOrder]) -> Vec<&str> {
        orders.iter().map(|o| o.order_id.as_str()).collect()
    }

    #[test]
    fn a_kafka_node_tracks_the_orders_of_the_trucks_it_has_seen_and_only_those() {
        let ownership = Ownership::observed();
        let mut own = ownership.lock();
        let share = own.set_orders(vec![order("ord_1", "T1"), order("ord_2", "T2")]);
        assert!(share.is_empty(), "no truck seen yet");

        let batch = [fix("ten_a", "T1"), fix("ten_a", "T1"), fix("ten_a", "T3")];
        let fresh = own.newcomers(&batch);
        assert_eq!(fresh.len(), 2, "T1 once, and T3");
        let share = own.take_up(&fresh).expect("T1 carries an order");
        assert_eq!(ids(&share), ["ord_1"]);
        assert!(own.newcomers(&batch).is_empty(), "taken up");
        // Another tenant's T1 is another truck.
        assert_eq!(own.newcomers(&[fix("ten_b", "T1")]).len(), 1);
        // T3 carries no order: nothing for the engine to change.
        assert!(own.take_up(&[fix("ten_a", "T3").key()]).is_none());

        own.let_go(&[fix("ten_a", "T1").key()]);
        let orders = own.orders.clone();
        assert!(own.set_orders(orders).is_empty());
        assert_eq!(own.newcomers(&batch).len(), 1, "T1 is new again");
    }

    #[test]
    fn on_the_memory_bus_every_order_is_the_nodes() {
        let ownership = Ownership::every();
        let mut own = ownership.lock();
        let share = own.set_orders(vec![order("ord_1", "T1"), order("ord_2", "T2")]);
        assert_eq!(ids(&share), ["ord_1", "ord_2"]);
        let fresh = own.newcomers(&[fix("ten_a", "T1")]);
        assert_eq!(fresh.len(), 1, "its memory is still to be read once");
        assert!(own.take_up(&fresh).is_none(), "the engine has its orders");
    }
}
