//! The records of milestone messages and webhooks, as the store keeps them:
//! the tenant's notification rules ([`Rule`]), webhook endpoints
//! ([`Webhook`]), the messages rules make ([`Notification`], one per order,
//! rule, event and recipient, keyed by [`idempotency_key`]) with their
//! attempts and outcomes, and the versioned webhook payload built when a
//! message is made. Sending them (SMTP, signed HTTP) is the portal's
//! (`portal-api`'s `notify`); the store only keeps and hands them out.

use std::fmt;

use chrono::{DateTime, Utc};
use engine::OrderId;
use serde_json::{Value, json};

use crate::model::{TenantId, rfc3339};

/// What a webhook subscription may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// Status moves and exceptions (`order.status_changed`, `order.exception`).
    StatusChanged,
    /// `order.eta_changed`: a stop's ETA moved by 15 min or more (at most one
    /// per order every `--eta-changed-every-s`).
    EtaChanged,
    /// `order.late_risk` and `order.late_risk_cleared`.
    LateRisk,
    /// `vehicle.position`: the latest fix of a truck on a live order,
    /// coalesced: at most one per vehicle every `--webhook-position-every-s`
    /// (30 s), the fixes between are not sent.
    Position,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::StatusChanged,
        WebhookEvent::EtaChanged,
        WebhookEvent::LateRisk,
        WebhookEvent::Position,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::StatusChanged => "status_changed",
            WebhookEvent::EtaChanged => "eta_changed",
            WebhookEvent::LateRisk => "late_risk",
            WebhookEvent::Position => "position",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A versioned payload.
pub fn payload(kind: &str, at: DateTime<Utc>, data: Value) -> String {
    json!({
        "type": kind,
        "version": 1,
        "timestamp": rfc3339(at),
        "data": data,
    })
    .to_string()
}

/// What a rule fires on: the order's milestones and exceptions, and the
/// alerts judged from its ETAs (`crate::alerts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerEvent {
    Created,
    Dispatched,
    AtPickup,
    PickedUp,
    OutForDelivery,
    AtDelivery,
    Delivered,
    Exception,
    /// A stop's predicted arrival stayed past the end of its window.
    LateRisk,
    /// …and came back within it.
    LateRiskCleared,
    /// A stop's ETA moved by the rule's `min_change_min` or more.
    EtaChanged,
    /// A truck's latest position, coalesced per vehicle (webhooks only).
    Position,
}

impl TriggerEvent {
    pub const ALL: [TriggerEvent; 12] = [
        TriggerEvent::Created,
        TriggerEvent::Dispatched,
        TriggerEvent::AtPickup,
        TriggerEvent::PickedUp,
        TriggerEvent::OutForDelivery,
        TriggerEvent::AtDelivery,
        TriggerEvent::Delivered,
        TriggerEvent::Exception,
        TriggerEvent::LateRisk,
        TriggerEvent::LateRiskCleared,
        TriggerEvent::EtaChanged,
        TriggerEvent::Position,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerEvent::Created => "created",
            TriggerEvent::Dispatched => "dispatched",
            TriggerEvent::AtPickup => "at_pickup",
            TriggerEvent::PickedUp => "picked_up",
            TriggerEvent::OutForDelivery => "out_for_delivery",
            TriggerEvent::AtDelivery => "at_delivery",
            TriggerEvent::Delivered => "delivered",
            TriggerEvent::Exception => "exception",
            TriggerEvent::LateRisk => "late_risk",
            TriggerEvent::LateRiskCleared => "late_risk_cleared",
            TriggerEvent::EtaChanged => "eta_changed",
            TriggerEvent::Position => "position",
        }
    }

    pub fn parse(text: &str) -> Option<TriggerEvent> {
        TriggerEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl fmt::Display for TriggerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `min_change_min` of an `eta_changed` rule that sets none.
pub const DEFAULT_MIN_CHANGE_MIN: u32 = 15;

/// A rule's own wording; `None` on a rule means the event's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// A rule as a tenant creates it (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub event: TriggerEvent,
    /// Whether the order's customer e-mail receives it.
    pub to_customer: bool,
    /// Further addresses, lowercased, without repeats.
    pub addresses: Vec<String>,
    pub template: Option<Template>,
    /// For `eta_changed`: the smallest move worth a message, minutes
    /// (default 15).
    pub min_change_min: Option<u32>,
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub tenant_id: TenantId,
    pub rule: NewRule,
    pub created_at: DateTime<Utc>,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// Claimed by a node that is handing it to the channel.
    Sending,
    /// The channel accepted it.
    Sent,
    /// Given up: refused for good, out of retry time, or interrupted mid-send.
    Failed,
    /// Not sent on purpose: the recipient unsubscribed.
    Suppressed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Suppressed => "suppressed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Sending,
            DeliveryState::Sent,
            DeliveryState::Failed,
            DeliveryState::Suppressed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One message to one recipient, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub idempotency_key: String,
    pub tenant_id: TenantId,
    pub order_id: OrderId,
    /// The e-mail rule, or the webhook endpoint, that made it.
    pub rule_id: String,
    pub channel: Channel,
    pub event: TriggerEvent,
    pub event_id: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub give_up_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// A webhook's signed body (the same bytes on every attempt).
    pub body: Option<String>,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// What an attempt measured, besides its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptReport {
    /// The endpoint's HTTP status (webhooks).
    pub status_code: Option<u16>,
    pub duration_ms: Option<u64>,
    /// A webhook endpoint is disabled once this many of its messages in a
    /// row failed for good.
    pub webhook_disable_after: u32,
}

/// A tenant's webhook endpoint, as listed (its secrets are never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub tenant_id: TenantId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// Until when the secret rotated out still signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Messages in a row that failed for good.
    pub consecutive_failures: u32,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An endpoint as the deliverer needs it: the sealed secrets that sign now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub webhook: Webhook,
    pub deleted: bool,
    pub secret_sealed: String,
    /// The rotated-out secret, while its grace lasts.
    pub previous_sealed: Option<String>,
}

/// One hand-over of a message to its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: u32,
    pub channel: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `sent`, `retry`, `failed`, `suppressed`, `interrupted`; `None` while running.
    pub outcome: Option<String>,
    pub detail: Option<String>,
    /// The endpoint's HTTP status (webhooks), and how long the attempt took.
    pub status_code: Option<u16>,
    pub duration_ms: Option<u64>,
}

/// How a claimed message ended, as the deliverer records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// A failure worth retrying, at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Refused for good, or out of retry time.
    Failed {
        error: String,
    },
    /// The recipient unsubscribed.
    Suppressed {
        reason: String,
    },
}

/// The idempotency key of one message: SHA-256 (hex) of its order, rule,
/// event and recipient. Unique in the store, so a message is made once.
pub fn idempotency_key(order: &str, rule: &str, event_id: &str, recipient: &str) -> String {
    crate::secrets::secret_hash(&format!(
        "{order}\u{1f}{rule}\u{1f}{event_id}\u{1f}{}",
        recipient.to_ascii_lowercase()
    ))
}

/// The `Message-ID` of a message: the same for every attempt, derived from its
/// idempotency key, so receivers that dedupe on it never show a resend twice.
pub fn message_id(key: &str, domain: &str) -> String {
    format!("<{}@{domain}>", &key[..key.len().min(40)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_and_ignores_the_recipients_case() {
        let a = idempotency_key("ord_1", "nr_1", "evt_1", "Ann@Example.com");
        let b = idempotency_key("ord_1", "nr_1", "evt_1", "ann@example.com");
        assert_eq!(a, b);
        assert_ne!(
            a,
            idempotency_key("ord_1", "nr_1", "evt_2", "ann@example.com")
        );
        assert_eq!(message_id(&a, "x.test"), message_id(&b, "x.test"));
    }
}
