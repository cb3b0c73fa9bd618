//! Milestone e-mails: the tenant's notification rules, the messages they make
//! from the store's outbox, and the deliverer that sends them exactly once per
//! (order, rule, event, recipient).
//!
//! The path of one milestone: a status change writes an `order.event` row to
//! the outbox in the same transaction (`store/writes.rs`). The deliverer
//! (`deliverer.rs`, one task per `tracker serve --smtp`) reads the outbox past
//! its cursor and, in one store transaction, turns each entry into one
//! `notifications` row per matching rule and recipient, keyed by a hash of the
//! four (a unique column, so a second node or a replay inserts nothing) and
//! moves the cursor. It then claims due rows (`pending` → `sending`, with a
//! lease), renders each (`template.rs`) and hands it to its channel (`smtp.rs`),
//! then marks it `sent`, retries it later with backoff, or marks it `failed`.
//!
//! **The one window SMTP cannot close**: between the server's `250` and our
//! mark. A row found in `sending` after its lease ran out (the node died
//! mid-send) is marked `failed` ("interrupted"), never sent again: at most once
//! for that window, exactly once otherwise. Its `Message-ID` is derived from
//! the idempotency key, so even a resend by hand dedupes at receivers that
//! honour it. The same window seen from a live node is a timeout waiting for
//! the server's answer to the message: lettre does not say which command
//! timed out, so that one is retried, with the same `Message-ID` (the only
//! way a recipient can get a milestone twice, and then as one message id).
//!
//! **The tracking link**: the store keeps tracking codes as SHA-256 hashes
//! only, and an e-mail needs the code. When e-mails are on, the code issued by
//! order creation or a link rotation is also stored sealed (XChaCha20-Poly1305
//! under the server's key, `seal.rs`, bound to the code's hash) in
//! `tracking_code_seals`; the deliverer opens the seal of the order's active
//! code. A database dump without the key file reveals no code; a revoked code
//! is never mailed (its hash is no longer the active one).

mod brand;
mod deliverer;
mod rules;
mod seal;
mod smtp;
mod template;
mod webhook;

use std::fmt;

use chrono::{DateTime, Utc};
use engine::OrderId;

use crate::contract::{
    AttemptView, NotificationRuleView, NotificationView, TemplateBody, WebhookView,
};
use crate::model::TenantId;
use crate::view::rfc3339;

pub(crate) use deliverer::Composer;
pub use deliverer::{Channels, DelivererConfig, run_deliverer};
pub use seal::NotifyKey;
pub(crate) use seal::looks_like_unsubscribe_token;
pub use smtp::{SmtpChannel, SmtpSettings, SmtpTls};
pub use webhook::{WebhookChannel, WebhookEvent, validate_allow_hosts};
pub(crate) use webhook::{check_url, message_webhook_id, new_secret, payload};

pub(crate) use rules::validate_rule;
pub(crate) use template::{MessageContext, RenderedMessage, render_message};

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
pub(crate) const DEFAULT_MIN_CHANGE_MIN: u32 = 15;

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

impl Rule {
    pub(crate) fn view(&self) -> NotificationRuleView {
        let mut recipients = Vec::new();
        if self.rule.to_customer {
            recipients.push("customer".to_owned());
        }
        NotificationRuleView {
            id: self.id.clone(),
            event: self.rule.event.as_str().to_owned(),
            channel: "email".to_owned(),
            recipients,
            addresses: self.rule.addresses.clone(),
            template: self.rule.template.as_ref().map(|t| TemplateBody {
                subject: t.subject.clone(),
                body: t.body.clone(),
            }),
            min_change_min: (self.rule.event == TriggerEvent::EtaChanged)
                .then(|| self.rule.min_change_min.unwrap_or(DEFAULT_MIN_CHANGE_MIN)),
            created_at: rfc3339(self.created_at),
        }
    }
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

impl Webhook {
    pub(crate) fn view(&self) -> WebhookView {
        WebhookView {
            id: self.id.clone(),
            url: self.url.clone(),
            events: self.events.iter().map(|e| e.as_str().to_owned()).collect(),
            enabled: self.disabled_at.is_none(),
            disabled_at: self.disabled_at.map(rfc3339),
            disabled_reason: self.disabled_reason.clone(),
            consecutive_failures: self.consecutive_failures,
            previous_secret_valid_until: self.previous_secret_until.map(rfc3339),
            created_at: rfc3339(self.created_at),
        }
    }
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

impl Notification {
    pub(crate) fn view(&self, attempts: &[Attempt]) -> NotificationView {
        NotificationView {
            id: self.id.clone(),
            rule_id: self.rule_id.clone(),
            event: self.event.as_str().to_owned(),
            event_id: self.event_id.clone(),
            channel: self.channel.as_str().to_owned(),
            recipient: self.recipient.clone(),
            state: self.state.as_str().to_owned(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            created_at: rfc3339(self.created_at),
            next_attempt_at: (self.state == DeliveryState::Pending)
                .then(|| rfc3339(self.next_attempt_at)),
            sent_at: self.sent_at.map(rfc3339),
            idempotency_key: self.idempotency_key.clone(),
            // The `webhook-id` header of every attempt and replay.
            webhook_id: (self.channel == Channel::Webhook)
                .then(|| message_webhook_id(&self.idempotency_key)),
            attempt_log: attempts
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    channel: a.channel.clone(),
                    node: a.node.clone(),
                    started_at: rfc3339(a.started_at),
                    finished_at: a.finished_at.map(rfc3339),
                    outcome: a.outcome.clone(),
                    detail: a.detail.clone(),
                    status_code: a.status_code,
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }
    }
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
pub(crate) fn idempotency_key(order: &str, rule: &str, event_id: &str, recipient: &str) -> String {
    crate::secrets::secret_hash(&format!(
        "{order}\u{1f}{rule}\u{1f}{event_id}\u{1f}{}",
        recipient.to_ascii_lowercase()
    ))
}

/// The `Message-ID` of a message: the same for every attempt, derived from its
/// idempotency key, so receivers that dedupe on it never show a resend twice.
pub(crate) fn message_id(key: &str, domain: &str) -> String {
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
