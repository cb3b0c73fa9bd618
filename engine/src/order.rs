//! The order status machine: which status may follow which. Shared by the API
//! (dispatchers, driver app) and by geofence automation, so both obey one rule.

use serde::{Deserialize, Serialize};

/// An order's id, as the store issued it (opaque text, unique across tenants).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub String);

impl OrderId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kind of a stop on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Pickup,
    Delivery,
}

impl StopKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StopKind::Pickup => "pickup",
            StopKind::Delivery => "delivery",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<StopKind> {
        match text {
            "pickup" => Some(StopKind::Pickup),
            "delivery" => Some(StopKind::Delivery),
            _ => None,
        }
    }
}

/// Status of an order. `Exception` is a note that can be attached at any point and
/// does not move the order; it is therefore not a status here but an event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Dispatched,
    AtPickup,
    /// Picked up and in transit.
    PickedUp,
    OutForDelivery,
    AtDelivery,
    Delivered,
    Cancelled,
}

/// A status change the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from `{}` to `{}`", from.as_str(), to.as_str())]
pub struct StatusTransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    /// All statuses in progress order (`Cancelled` last).
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Created,
        OrderStatus::Dispatched,
        OrderStatus::AtPickup,
        OrderStatus::PickedUp,
        OrderStatus::OutForDelivery,
        OrderStatus::AtDelivery,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The wire name (`"picked_up"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Dispatched => "dispatched",
            OrderStatus::AtPickup => "at_pickup",
            OrderStatus::PickedUp => "picked_up",
            OrderStatus::OutForDelivery => "out_for_delivery",
            OrderStatus::AtDelivery => "at_delivery",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the order is finished: no more tracking, the link becomes a record.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// Checks a move to `to`. Forward moves may skip steps (a dispatcher often
    /// reports "delivered" without the steps between); backward moves are refused,
    /// except what a multi-stop order needs: from `picked_up`-ish states back to
    /// `at_pickup` for its next pickup, from `at_delivery` to the next
    /// `at_delivery`, and to `out_for_delivery` when it leaves a delivery that
    /// is not its last stop. Nothing leaves a final status.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, StatusTransitionError> {
        let refused = StatusTransitionError { from: self, to };
        if self.is_final() {
            return Err(refused);
        }
        if to == OrderStatus::Cancelled || to > self {
            return Ok(to);
        }
        let next_pickup = to == OrderStatus::AtPickup
            && matches!(self, OrderStatus::PickedUp | OrderStatus::OutForDelivery);
        let next_delivery = to == OrderStatus::AtDelivery && self == OrderStatus::AtDelivery;
        // Leaving a delivery that is not the last stop.
        let delivery_left = to == OrderStatus::OutForDelivery && self == OrderStatus::AtDelivery;
        if next_pickup || next_delivery || delivery_left {
            Ok(to)
        } else {
            Err(refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispatcher_may_skip_steps_forward() {
        assert_eq!(
            OrderStatus::Dispatched.transition(OrderStatus::Delivered),
            Ok(OrderStatus::Delivered)
        );
    }

    #[test]
    fn nothing_leaves_delivered_or_cancelled() {
        for to in OrderStatus::ALL {
            assert!(OrderStatus::Delivered.transition(to).is_err());
            assert!(OrderStatus::Cancelled.transition(to).is_err());
        }
    }

    #[test]
    fn backwards_is_refused_except_for_the_next_pickup() {
        assert!(
            OrderStatus::PickedUp
                .transition(OrderStatus::Dispatched)
                .is_err()
        );
        assert!(
            OrderStatus::PickedUp
                .transition(OrderStatus::AtPickup)
                .is_ok()
        );
    }

    #[test]
    fn wire_names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }
}
