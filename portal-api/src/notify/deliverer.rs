//! The deliverer: one task per node that turns the outbox into messages,
//! claims the due ones, composes and sends each, and records the outcome.
//!
//! Retries back off exponentially from [`DelivererConfig::first_retry`]
//! (doubling, capped at [`DelivererConfig::max_backoff`]) with ±50 % jitter,
//! so several nodes or many messages failing together do not retry in step;
//! once the next try would fall after the message's `give_up_at` (created +
//! `--notify-retry-for-s`, default 24 h) it is marked `failed`. A message to a
//! recipient who unsubscribed is `suppressed`, never sent.
//!
//! One deliverer serves both channels: webhooks always (an endpoint is one
//! API call away) and e-mails with an SMTP server (`serve --smtp`). The
//! outbox is expanded into e-mail rows on every node; only a node with SMTP
//! claims them, and one made while no node could send it fails as expired
//! rather than mailing old news. Each round also makes the coalesced
//! `vehicle.position` webhook messages.
//! A webhook message to an endpoint that was removed is `suppressed`; to a
//! disabled one, `failed` (replayable once it is enabled again).
//!
//! Metrics: `tracker_notifications_total{channel, outcome}` (`sent`,
//! `retry`, `failed`, `suppressed`) and
//! `tracker_notification_delivery_seconds{channel}` (one attempt, handing
//! over included).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::brand::EmailBrand;
use super::seal::NotifyKey;
use super::smtp::{SendError, SmtpChannel};
use super::webhook::WebhookChannel;
use super::{
    AttemptReport, Channel, MessageContext, Notification, Outcome, RenderedMessage, Rule,
    message_id, message_webhook_id, render_message,
};
use crate::error::{Error, Result};
use crate::model::{Order, TenantId};
use crate::secrets::{new_id, secret_hash};
use store::{NotificationStore, Store};

/// The deliverer's settings; the binary builds them from flags.
#[derive(Debug, Clone)]
pub struct DelivererConfig {
    /// This node's name in claims and attempts (random per process).
    pub node: String,
    /// The public origin links are built on (tracking pages, unsubscribe).
    pub public_base_url: String,
    /// How long a message is retried before it is marked failed.
    pub retry_for: Duration,
    /// How long a claim holds: a message still `sending` after it is taken to
    /// be interrupted (longer than one SMTP conversation may take).
    pub lease: Duration,
    /// The first retry's delay, doubled per attempt…
    pub first_retry: Duration,
    /// …up to this.
    pub max_backoff: Duration,
    /// How often the outbox and the due messages are looked at when idle.
    pub poll_every: std::time::Duration,
    /// Messages claimed per round.
    pub batch: usize,
    /// Who customers may write to (`{{contact}}`); empty: the sender address.
    pub contact: String,
    /// A webhook endpoint is disabled after this many messages in a row
    /// failed after every retry.
    pub webhook_disable_after: u32,
    /// At most one `vehicle.position` webhook per endpoint and vehicle this
    /// often.
    pub webhook_position_every: Duration,
}

impl DelivererConfig {
    /// The recommended settings for links on `public_base_url`.
    pub fn recommended(public_base_url: &str) -> DelivererConfig {
        DelivererConfig {
            node: new_id("node_"),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            retry_for: Duration::hours(24),
            lease: Duration::seconds(120),
            first_retry: Duration::seconds(2),
            max_backoff: Duration::minutes(15),
            poll_every: std::time::Duration::from_millis(500),
            batch: 20,
            contact: String::new(),
            webhook_disable_after: 5,
            webhook_position_every: Duration::seconds(30),
        }
    }

    /// Checks the settings; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |setting: &'static str, d: Duration| {
            if d <= Duration::zero() {
                Err(Error::InvalidConfig {
                    setting,
                    reason: "must be positive".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("notify_retry_for", self.retry_for)?;
        positive("notify_lease", self.lease)?;
        positive("notify_first_retry", self.first_retry)?;
        positive("notify_max_backoff", self.max_backoff)?;
        if self.webhook_disable_after == 0 {
            return Err(Error::InvalidConfig {
                setting: "webhook_disable_after",
                reason: "must be at least 1".into(),
            });
        }
        if self.lease < Duration::seconds(2) {
            return Err(Error::InvalidConfig {
                setting: "notify_lease",
                reason: "at least 2 s (SMTP commands get half of it to answer)".into(),
            });
        }
        Ok(())
    }

    /// How long the SMTP server has to answer each command: half the lease,
    /// at most 30 s, so a live send never outlasts its claim.
    pub fn smtp_timeout(&self) -> std::time::Duration {
        let half_ms = (self.lease.num_milliseconds() / 2).clamp(1_000, 30_000);
        std::time::Duration::from_millis(half_ms as u64)
    }

    /// When a message that failed its `attempt`-th try (from 1) is tried next.
    fn next_try(&self, attempt: u32, now: DateTime<Utc>, jitter: f64) -> DateTime<Utc> {
        let doublings = attempt.saturating_sub(1).min(30);
        let base_ms = self
            .first_retry
            .num_milliseconds()
            .saturating_mul(1_i64 << doublings)
            .min(self.max_backoff.num_milliseconds());
        let ms = (base_ms as f64 * (0.5 + jitter.clamp(0.0, 1.0))) as i64;
        now + Duration::milliseconds(ms.max(1))
    }
}

/// What composing needs besides the store.
#[derive(Debug, Clone)]
pub(crate) struct Composer<'a> {
    pub(crate) key: Option<&'a NotifyKey>,
    pub(crate) public_base_url: &'a str,
    pub(crate) contact: &'a str,
    /// Where the tenant's brand is kept: its display name and support
    /// contact, when set, fill `{{tenant_name}}` and `{{contact}}`.
    pub(crate) settings: Option<&'a dyn store::SettingsStore>,
}

/// A composed message and its one-click unsubscribe URL.
#[derive(Debug, Clone)]
pub(crate) struct Composed {
    pub(crate) message: RenderedMessage,
    pub(crate) unsubscribe_url: Option<String>,
}

impl Composer<'_> {
    /// Renders `rule`'s message about `order` for `recipient` (the preview
    /// passes none): the tracking link from the order's sealed active code,
    /// the recipient's unsubscribe link (its token registered by hash).
    pub(crate) async fn compose(
        &self,
        notes: &dyn NotificationStore,
        rule: &Rule,
        order: &Order,
        recipient: Option<&str>,
    ) -> Result<Composed> {
        let brand = match self.settings {
            Some(settings) => settings.branding(order.tenant_id.clone()).await?,
            None => crate::branding::Branding::default(),
        };
        let tenant_name = match brand.display_name.clone() {
            Some(name) => name,
            None => notes
                .tenant(order.tenant_id.clone())
                .await?
                .map(|t| t.name)
                .unwrap_or_default(),
        };
        let contact = brand
            .contact_line()
            .unwrap_or_else(|| self.contact.to_owned());
        let code = match (self.key, order.tracking_active) {
            (Some(key), true) => notes
                .active_code_seal(order.id.clone())
                .await?
                .and_then(|(hash, sealed)| key.open(&sealed, &hash)),
            _ => None,
        };
        let tracking_url = code
            .as_ref()
            .map(|code| format!("{}/t/{code}", self.public_base_url));
        let unsubscribe_url = match (self.key, recipient) {
            (Some(key), Some(recipient)) => {
                let token = key.unsubscribe_token(order.tenant_id.as_str(), recipient);
                notes
                    .register_unsubscribe_token(
                        secret_hash(&token),
                        order.tenant_id.clone(),
                        recipient.to_owned(),
                    )
                    .await?;
                Some(format!("{}/unsubscribe/{token}", self.public_base_url))
            }
            _ => None,
        };
        let ctx = MessageContext::new(
            order,
            rule.rule.event,
            &tenant_name,
            &contact,
            tracking_url,
            unsubscribe_url.clone(),
        )
        .with_brand(EmailBrand::new(
            &brand,
            &tenant_name,
            code.as_deref().map(|code| (self.public_base_url, code)),
        ));
        Ok(Composed {
            message: render_message(rule.rule.template.as_ref(), rule.rule.event, &ctx),
            unsubscribe_url,
        })
    }
}

/// The channels a deliverer hands messages to.
#[derive(Debug, Clone)]
pub struct Channels {
    /// E-mails are sent only with an SMTP server.
    pub smtp: Option<SmtpChannel>,
    pub webhooks: WebhookChannel,
}

/// Runs the deliverer until `shutdown` resolves. Store errors are logged and
/// the round is tried again at the next tick; nothing here ends the task.
pub async fn run_deliverer(
    store: Arc<dyn Store>,
    key: NotifyKey,
    channels: Channels,
    config: DelivererConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    config.validate()?;
    if store.notifications().is_none() {
        return Err(Error::InvalidConfig {
            setting: "store",
            reason: "this store does not keep notifications".into(),
        });
    }
    tracing::info!(node = %config.node, email = channels.smtp.is_some(), "deliverer started");
    tokio::pin!(shutdown);
    loop {
        let busy = match round(&*store, &key, &channels, &config).await {
            Ok(busy) => busy,
            Err(err) => {
                tracing::warn!(error = %err, "a delivery round failed; trying again");
                false
            }
        };
        if busy {
            // More may be due right away; still let shutdown in.
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::task::yield_now() => {}
            }
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(config.poll_every) => {}
        }
    }
    tracing::info!("deliverer stopped");
    Ok(())
}

/// One round: expand the outbox, claim, send. True when there was work.
async fn round(
    store: &dyn Store,
    key: &NotifyKey,
    channels: &Channels,
    config: &DelivererConfig,
) -> Result<bool> {
    let notes = store
        .notifications()
        .ok_or_else(|| Error::store_permanent("the store keeps no notifications"))?;
    let email = channels.smtp.is_some();
    let positions = notes
        .enqueue_positions(Utc::now(), config.webhook_position_every)
        .await?;
    let read = notes
        .expand_outbox(Utc::now(), config.retry_for, 200)
        .await?;
    let claims = notes
        .claim_due(
            config.node.clone(),
            Utc::now(),
            config.lease,
            config.batch,
            email,
        )
        .await?;
    if claims.interrupted > 0 {
        tracing::warn!(
            messages = claims.interrupted,
            "messages interrupted mid-send were marked failed, not resent"
        );
    }
    let claimed = claims.claimed.len();
    // The claimed messages go out side by side: each waits on its channel
    // and on the store's commits, which the writer folds into a few
    // transactions; one after the other, every message paid for its own.
    // (Within a batch, two messages of one order may arrive in either order.)
    let attempts = claims
        .claimed
        .into_iter()
        .map(|n| attempt_one(store, notes, key, channels, config, n));
    for result in futures::future::join_all(attempts).await {
        result?;
    }
    Ok(read > 0 || claimed > 0 || positions > 0)
}

/// One attempt of one claimed message, its outcome recorded.
async fn attempt_one(
    store: &dyn Store,
    notes: &dyn NotificationStore,
    key: &NotifyKey,
    channels: &Channels,
    config: &DelivererConfig,
    notification: Notification,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut report = AttemptReport {
        webhook_disable_after: config.webhook_disable_after,
        ..AttemptReport::default()
    };
    let outcome = match (notification.channel, &channels.smtp) {
        (Channel::Email, Some(smtp)) => {
            deliver(store, notes, key, smtp, config, &notification).await
        }
        (Channel::Email, None) => Ok(Outcome::Retry {
            at: config.next_try(notification.attempts, Utc::now(), rand::random()),
            error: "no SMTP server configured on this node".into(),
        }),
        (Channel::Webhook, _) => {
            deliver_webhook(
                notes,
                key,
                &channels.webhooks,
                config,
                &notification,
                &mut report,
            )
            .await
        }
    };
    let elapsed = started.elapsed();
    report.duration_ms = report.duration_ms.or(Some(elapsed.as_millis() as u64));
    let channel = notification.channel.as_str();
    metrics::histogram!("tracker_notification_delivery_seconds", "channel" => channel)
        .record(elapsed);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        // The store failed while composing: the message was not sent.
        Err(err) => Outcome::Retry {
            at: config.next_try(notification.attempts, Utc::now(), rand::random()),
            error: format!("composing: {err}"),
        },
    };
    let outcome = give_up_when_late(outcome, &notification);
    let counted = match &outcome {
        Outcome::Sent => {
            tracing::info!(notification = %notification.id, channel, order = %notification.order_id, event = %notification.event, "message delivered");
            "sent"
        }
        Outcome::Retry { error, .. } => {
            tracing::warn!(notification = %notification.id, channel, attempt = notification.attempts, error = %error, "message not delivered; will retry");
            "retry"
        }
        Outcome::Failed { error } => {
            tracing::warn!(notification = %notification.id, channel, error = %error, "message failed for good");
            "failed"
        }
        Outcome::Suppressed { .. } => "suppressed",
    };
    metrics::counter!("tracker_notifications_total", "channel" => channel, "outcome" => counted)
        .increment(1);
    if !notes
        .finish(
            notification.clone(),
            config.node.clone(),
            outcome,
            report,
            Utc::now(),
        )
        .await?
    {
        tracing::warn!(notification = %notification.id, "the claim ran out before the outcome was recorded");
    }
    Ok(())
}

/// A retry after the message's deadline is a failure.
fn give_up_when_late(outcome: Outcome, n: &Notification) -> Outcome {
    match outcome {
        Outcome::Retry { at, error } if at > n.give_up_at => Outcome::Failed {
            error: format!(
                "gave up after {} attempts over {} min: {error}",
                n.attempts,
                (n.give_up_at - n.created_at).num_minutes()
            ),
        },
        other => other,
    }
}

/// One webhook attempt: the endpoint as it is now, its signing secrets
/// opened, the stored body posted.
async fn deliver_webhook(
    notes: &dyn NotificationStore,
    key: &NotifyKey,
    channel: &WebhookChannel,
    config: &DelivererConfig,
    n: &Notification,
    report: &mut AttemptReport,
) -> Result<Outcome> {
    let now = Utc::now();
    let Some(target) = notes.webhook_target(n.rule_id.clone(), now).await? else {
        return Ok(Outcome::Suppressed {
            reason: "the webhook endpoint no longer exists".into(),
        });
    };
    if target.deleted {
        return Ok(Outcome::Suppressed {
            reason: "the webhook endpoint was removed before it was sent".into(),
        });
    }
    if let Some(reason) = &target.webhook.disabled_reason {
        return Ok(Outcome::Failed {
            error: format!("the endpoint is disabled ({reason}); replay it once enabled"),
        });
    }
    let id = &target.webhook.id;
    let mut secrets = Vec::new();
    for sealed in std::iter::once(&target.secret_sealed).chain(target.previous_sealed.as_ref()) {
        match key.open_webhook_secret(sealed, id) {
            Some(secret) => secrets.push(secret),
            None => {
                return Ok(Outcome::Failed {
                    error: "the endpoint's secret does not open with this server's key".into(),
                });
            }
        }
    }
    let Some(body) = n.body.as_deref() else {
        return Ok(Outcome::Failed {
            error: "the message has no body".into(),
        });
    };
    let response = channel
        .send(
            &target.webhook.url,
            &message_webhook_id(&n.idempotency_key),
            &secrets,
            body,
            now,
        )
        .await;
    report.status_code = response.status_code;
    report.duration_ms = Some(response.duration_ms);
    Ok(match response.error {
        None => Outcome::Sent,
        // Every failure is worth a retry until the message's deadline: an
        // endpoint that answers 4xx may be fixed meanwhile, and retries are
        // what count towards disabling it.
        Some(error) => Outcome::Retry {
            at: config.next_try(n.attempts, Utc::now(), rand::random()),
            error,
        },
    })
}

async fn deliver(
    store: &dyn Store,
    notes: &dyn NotificationStore,
    key: &NotifyKey,
    channel: &SmtpChannel,
    config: &DelivererConfig,
    n: &Notification,
) -> Result<Outcome> {
    // Made while no node had an SMTP server: a milestone that old is news
    // no more.
    if n.attempts <= 1 && Utc::now() > n.give_up_at {
        return Ok(Outcome::Failed {
            error: "expired before an SMTP server could send it".into(),
        });
    }
    if notes
        .is_unsubscribed(n.tenant_id.clone(), n.recipient.clone())
        .await?
    {
        return Ok(Outcome::Suppressed {
            reason: "the recipient unsubscribed".into(),
        });
    }
    let tenant: TenantId = n.tenant_id.clone();
    let Some(order) = store.order(tenant.clone(), n.order_id.clone()).await? else {
        return Ok(Outcome::Failed {
            error: "the order no longer exists".into(),
        });
    };
    let Some(rule) = notes.rule(tenant, n.rule_id.clone()).await? else {
        return Ok(Outcome::Suppressed {
            reason: "the rule was removed before it was sent".into(),
        });
    };
    let contact = if config.contact.is_empty() {
        channel.sender_address()
    } else {
        config.contact.clone()
    };
    let composer = Composer {
        key: Some(key),
        public_base_url: &config.public_base_url,
        contact: &contact,
        settings: store.settings(),
    };
    let composed = composer
        .compose(notes, &rule, &order, Some(&n.recipient))
        .await?;
    let unsubscribe_url = composed.unsubscribe_url.unwrap_or_default();
    let sent = channel
        .send(
            &n.recipient,
            message_id(&n.idempotency_key, &channel.domain()),
            &unsubscribe_url,
            &composed.message,
        )
        .await;
    Ok(match sent {
        Ok(()) => Outcome::Sent,
        Err(SendError {
            retryable: true,
            detail,
        }) => Outcome::Retry {
            at: config.next_try(n.attempts, Utc::now(), rand::random()),
            error: detail,
        },
        Err(SendError {
            retryable: false,
            detail,
        }) => Outcome::Failed { error: detail },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let config = DelivererConfig::recommended("http://127.0.0.1:1");
        let now = Utc::now();
        let delay =
            |attempt, jitter| (config.next_try(attempt, now, jitter) - now).num_milliseconds();
        assert_eq!(delay(1, 0.5), 2_000);
        assert_eq!(delay(2, 0.5), 4_000);
        assert_eq!(delay(3, 0.5), 8_000);
        assert_eq!(delay(1, 0.0), 1_000, "jitter takes off up to half");
        assert_eq!(delay(1, 1.0), 3_000, "and adds up to half");
        assert_eq!(
            delay(30, 0.5),
            15 * 60 * 1000,
            "capped at the maximum backoff"
        );
    }

    #[test]
    fn a_retry_past_the_deadline_is_a_failure() {
        let now = Utc::now();
        let n = Notification {
            id: "ntf_1".into(),
            idempotency_key: "k".repeat(64),
            tenant_id: TenantId("ten_1".into()),
            order_id: engine::OrderId("ord_1".into()),
            rule_id: "nr_1".into(),
            channel: Channel::Email,
            event: super::super::TriggerEvent::Dispatched,
            event_id: "evt_1".into(),
            recipient: "a@b.test".into(),
            state: super::super::DeliveryState::Sending,
            attempts: 7,
            next_attempt_at: now,
            give_up_at: now + Duration::minutes(10),
            last_error: None,
            created_at: now - Duration::minutes(50),
            sent_at: None,
            body: None,
        };
        let early = Outcome::Retry {
            at: now + Duration::minutes(1),
            error: "451".into(),
        };
        assert_eq!(give_up_when_late(early.clone(), &n), early);
        let late = Outcome::Retry {
            at: now + Duration::minutes(11),
            error: "451 busy".into(),
        };
        match give_up_when_late(late, &n) {
            Outcome::Failed { error } => assert!(
                error.contains("after 7 attempts") && error.contains("451 busy"),
                "{error}"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
