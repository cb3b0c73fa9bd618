//! The single-node fan-out: updates go straight to the local hub. It keeps no
//! latest state of its own: on one node the store, written before every publish,
//! already is the latest state, and a second copy would only grow.

use engine::OrderId;

use super::{FanOut, FanOutFuture, Hub, Latest, LiveMessage};

/// In-process fan-out for one node.
#[derive(Debug, Default)]
pub struct MemoryFanOut {
    hub: Hub,
}

impl MemoryFanOut {
    pub fn new() -> MemoryFanOut {
        MemoryFanOut::default()
    }
}

impl FanOut for MemoryFanOut {
    fn publish_all(&self, messages: Vec<LiveMessage>) -> FanOutFuture<'_, ()> {
        for message in messages {
            self.hub.dispatch(message);
        }
        Box::pin(async { Ok(()) })
    }

    fn latest(&self, _order: OrderId) -> FanOutFuture<'_, Latest> {
        Box::pin(async { Ok(Latest::default()) })
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }
}
