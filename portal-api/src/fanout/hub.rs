//! A node's local subscriptions: one small broadcast ring per order that has
//! viewers on this node. Sending costs one reference-count increment per viewer;
//! rings of orders nobody watches any more are swept away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use engine::OrderId;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{LiveKind, LiveMessage};

/// Messages a viewer may fall behind by before it is resynced from a snapshot.
const RING: usize = 8;
/// Subscriptions between sweeps of abandoned rings.
const SWEEP_EVERY: u64 = 1024;

/// Per-order broadcast channels of one node.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<OrderId, broadcast::Sender<LiveMessage>>>,
    subscriptions: AtomicU64,
    delivered: AtomicU64,
}

/// A viewer's subscription to one order's updates.
pub type Subscription = broadcast::Receiver<LiveMessage>;

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Subscribes to an order's updates from now on.
    pub fn subscribe(&self, order: &OrderId) -> Subscription {
        let n = self.subscriptions.fetch_add(1, Ordering::Relaxed);
        let mut channels = self.channels.lock();
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            channels.retain(|_, sender| sender.receiver_count() > 0);
        }
        channels
            .entry(order.clone())
            .or_insert_with(|| broadcast::channel(RING).0)
            .subscribe()
    }

    /// Hands a message to this node's viewers of its order (a `Resync` goes to
    /// every order's viewers).
    pub fn dispatch(&self, message: LiveMessage) {
        let mut channels = self.channels.lock();
        if message.kind == LiveKind::Resync {
            for sender in channels.values() {
                let _ = sender.send(message.clone());
            }
            return;
        }
        let Some(sender) = channels.get(&message.order_id) else {
            return;
        };
        match sender.send(message) {
            Ok(receivers) => {
                self.delivered
                    .fetch_add(receivers as u64, Ordering::Relaxed);
            }
            Err(returned) => {
                // Nobody watches any more.
                channels.remove(&returned.0.order_id);
            }
        }
    }

    /// Orders with a ring on this node.
    pub fn n_orders(&self) -> usize {
        self.channels.lock().len()
    }

    /// Messages handed to viewers so far (for metrics).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str) -> OrderId {
        OrderId(id.into())
    }

    #[tokio::test]
    async fn a_viewer_sees_its_order_only() {
        let hub = Hub::new();
        let mut a = hub.subscribe(&order("a"));
        let mut b = hub.subscribe(&order("b"));
        hub.dispatch(LiveMessage::new(order("a"), LiveKind::Position, "pa"));
        assert_eq!(&*a.recv().await.expect("a gets its update").text, "pa");
        assert!(b.try_recv().is_err(), "b must not see a's update");
    }

    #[tokio::test]
    async fn a_slow_viewer_lags_instead_of_queueing() {
        let hub = Hub::new();
        let mut slow = hub.subscribe(&order("a"));
        for i in 0..(RING * 3) {
            hub.dispatch(LiveMessage::new(
                order("a"),
                LiveKind::Position,
                format!("{i}"),
            ));
        }
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert!(n >= RING as u64),
            other => panic!("expected a lag, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn abandoned_rings_are_dropped() {
        let hub = Hub::new();
        drop(hub.subscribe(&order("gone")));
        hub.dispatch(LiveMessage::new(order("gone"), LiveKind::Eta, "x"));
        assert_eq!(hub.n_orders(), 0);
    }
}
