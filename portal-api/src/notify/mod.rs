//! Milestone e-mails: the tenant's notification rules, the messages they make
//! from the store's outbox, and the deliverer that sends them exactly once per
//! (order, rule, event, recipient).
//!
//! The path of one milestone: a status change writes an `order.event` row to
//! the outbox in the same transaction (`store/src/writes.rs`). The deliverer
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

use crate::contract::{
    AttemptView, NotificationRuleView, NotificationView, TemplateBody, WebhookView,
};
use crate::view::rfc3339;

pub(crate) use deliverer::Composer;
pub use deliverer::{Channels, DelivererConfig, run_deliverer};
pub use seal::NotifyKey;
pub(crate) use seal::looks_like_unsubscribe_token;
pub use smtp::{SmtpChannel, SmtpSettings, SmtpTls};
pub use webhook::{WebhookChannel, validate_allow_hosts};
pub(crate) use webhook::{check_url, message_webhook_id, new_secret};

pub(crate) use rules::validate_rule;
pub(crate) use template::{MessageContext, RenderedMessage, render_message};

pub use store::notify::{
    Attempt, AttemptReport, Channel, DeliveryState, NewRule, Notification, Outcome, Rule, Template,
    TriggerEvent, Webhook, WebhookEvent,
};
pub(crate) use store::notify::{DEFAULT_MIN_CHANGE_MIN, message_id};

/// The API's view of a notification rule.
pub(crate) fn rule_view(rule: &Rule) -> NotificationRuleView {
    let mut recipients = Vec::new();
    if rule.rule.to_customer {
        recipients.push("customer".to_owned());
    }
    NotificationRuleView {
        id: rule.id.clone(),
        event: rule.rule.event.as_str().to_owned(),
        channel: "email".to_owned(),
        recipients,
        addresses: rule.rule.addresses.clone(),
        template: rule.rule.template.as_ref().map(|t| TemplateBody {
            subject: t.subject.clone(),
            body: t.body.clone(),
        }),
        min_change_min: (rule.rule.event == TriggerEvent::EtaChanged)
            .then(|| rule.rule.min_change_min.unwrap_or(DEFAULT_MIN_CHANGE_MIN)),
        created_at: rfc3339(rule.created_at),
    }
}

/// The API's view of a webhook endpoint (never its secret).
pub(crate) fn webhook_view(webhook: &Webhook) -> WebhookView {
    WebhookView {
        id: webhook.id.clone(),
        url: webhook.url.clone(),
        events: webhook
            .events
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        enabled: webhook.disabled_at.is_none(),
        disabled_at: webhook.disabled_at.map(rfc3339),
        disabled_reason: webhook.disabled_reason.clone(),
        consecutive_failures: webhook.consecutive_failures,
        previous_secret_valid_until: webhook.previous_secret_until.map(rfc3339),
        created_at: rfc3339(webhook.created_at),
    }
}

/// The API's view of a message, with its attempts.
pub(crate) fn notification_view(message: &Notification, attempts: &[Attempt]) -> NotificationView {
    NotificationView {
        id: message.id.clone(),
        rule_id: message.rule_id.clone(),
        event: message.event.as_str().to_owned(),
        event_id: message.event_id.clone(),
        channel: message.channel.as_str().to_owned(),
        recipient: message.recipient.clone(),
        state: message.state.as_str().to_owned(),
        attempts: message.attempts,
        last_error: message.last_error.clone(),
        created_at: rfc3339(message.created_at),
        next_attempt_at: (message.state == DeliveryState::Pending)
            .then(|| rfc3339(message.next_attempt_at)),
        sent_at: message.sent_at.map(rfc3339),
        idempotency_key: message.idempotency_key.clone(),
        // The `webhook-id` header of every attempt and replay.
        webhook_id: (message.channel == Channel::Webhook)
            .then(|| message_webhook_id(&message.idempotency_key)),
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
