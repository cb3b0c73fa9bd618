//! The notification store contract, run on both backends as
//! `store_conformance.rs` is (`sqlite::NAME`, `postgres::NAME`): rules kept
//! per tenant; the outbox made into messages, claimed and finished (sent,
//! retried later, given up, or interrupted by a node that died); webhook
//! endpoints and their deliveries; coalesced positions; unsubscribes. Then,
//! on PostgreSQL only, two nodes (two independent stores on one schema) at
//! once: every due message is claimed by exactly one of them, and two
//! expanders read every outbox entry exactly once.

use crate::common;

use std::sync::Arc;

use chrono::Duration;
use engine::{OrderId, OrderStatus};
use store::{
    AttemptReport, Channel, DeliveryState, NewRule, Notification, NotificationStore, Outcome,
    Store, TenantId, TriggerEvent, WebhookEvent,
};

use common::fixtures::{at, fix, is_not_found, new_order, status, tenant};

/// The notification half of a store (both backends keep it).
fn notes(store: &dyn Store) -> &dyn NotificationStore {
    store
        .notifications()
        .expect("the backend keeps notifications")
}

/// An e-mail rule for `event` to the customer and `addresses`.
fn email_rule(event: TriggerEvent, addresses: &[&str]) -> NewRule {
    NewRule {
        event,
        to_customer: true,
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        template: None,
        min_change_min: None,
    }
}

/// An order of `tenant` with its dispatch recorded (so the outbox holds an
/// `order.created` and an `order.event` entry for it).
async fn dispatched_order(store: &dyn Store, tenant: &TenantId, reference: &str) -> OrderId {
    let (order, _) = new_order(store, tenant, reference).await;
    store
        .add_event(
            Some(tenant.clone()),
            order.id.clone(),
            status(OrderStatus::Dispatched, 0),
        )
        .await
        .expect("dispatched");
    order.id
}

/// Expands the outbox at minute 0, messages retried for an hour.
async fn expand(store: &dyn Store) -> usize {
    notes(store)
        .expand_outbox(at(0), Duration::hours(1), 100)
        .await
        .expect("expands")
}

/// The messages `node` claims at `minute` (leases of 5 min; e-mails too).
async fn claim(store: &dyn Store, node: &str, minute: i64) -> Vec<Notification> {
    notes(store)
        .claim_due(node.into(), at(minute), Duration::minutes(5), 100, true)
        .await
        .expect("claims")
        .claimed
}

async fn finish(
    store: &dyn Store,
    n: &Notification,
    node: &str,
    outcome: Outcome,
    minute: i64,
) -> bool {
    let report = AttemptReport {
        webhook_disable_after: 1,
        ..AttemptReport::default()
    };
    notes(store)
        .finish(n.clone(), node.into(), outcome, report, at(minute))
        .await
        .expect("finishes")
}

/// The order's messages, with each one's attempt outcomes.
async fn messages(
    store: &dyn Store,
    tenant: &TenantId,
    order: &OrderId,
) -> Vec<(Notification, Vec<Option<String>>)> {
    notes(store)
        .order_notifications(tenant.clone(), order.clone())
        .await
        .expect("reads")
        .into_iter()
        .map(|(n, attempts)| (n, attempts.into_iter().map(|a| a.outcome).collect()))
        .collect()
}

async fn rules_are_kept_per_tenant(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    let other = tenant(&*store, "Other Freight").await;
    let mut moved = email_rule(TriggerEvent::EtaChanged, &["desk@acme.example"]);
    moved.min_change_min = Some(30);
    let rule = notes(&*store)
        .create_rule(acme.clone(), moved.clone())
        .await
        .expect("created");
    assert_eq!(rule.rule, moved);
    assert_eq!(
        notes(&*store).rules(acme.clone()).await.expect("lists"),
        vec![rule.clone()]
    );
    assert!(
        notes(&*store)
            .rules(other.clone())
            .await
            .expect("lists")
            .is_empty()
    );
    assert_eq!(
        notes(&*store)
            .rule(other.clone(), rule.id.clone())
            .await
            .expect("reads"),
        None,
        "another tenant does not see the rule"
    );
    assert!(is_not_found(
        notes(&*store).delete_rule(other, rule.id.clone()).await
    ));
    notes(&*store)
        .delete_rule(acme.clone(), rule.id.clone())
        .await
        .expect("deleted");
    assert!(
        notes(&*store)
            .rules(acme.clone())
            .await
            .expect("lists")
            .is_empty()
    );
    assert!(is_not_found(
        notes(&*store).delete_rule(acme, rule.id).await
    ));
}

async fn the_outbox_becomes_messages_sent_retried_or_given_up(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    notes(&*store)
        .create_rule(
            acme.clone(),
            email_rule(TriggerEvent::Dispatched, &["desk@acme.example"]),
        )
        .await
        .expect("rule");
    let order = dispatched_order(&*store, &acme, "LOAD-1").await;
    assert_eq!(expand(&*store).await, 2, "order.created and order.event");
    assert_eq!(expand(&*store).await, 0, "the cursor moved past both");
    let made = messages(&*store, &acme, &order).await;
    let mut recipients: Vec<&str> = made.iter().map(|(n, _)| n.recipient.as_str()).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, ["desk@acme.example", "ops@ribeira.example"]);
    assert!(made.iter().all(|(n, _)| n.state == DeliveryState::Pending
        && n.channel == Channel::Email
        && n.event == TriggerEvent::Dispatched));

    let webhooks_only = notes(&*store)
        .claim_due("node-a".into(), at(0), Duration::minutes(5), 100, false)
        .await
        .expect("claims");
    assert!(
        webhooks_only.claimed.is_empty(),
        "a node without SMTP takes no e-mail"
    );
    let claimed = claim(&*store, "node-a", 0).await;
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|n| n.state == DeliveryState::Sending && n.attempts == 1)
    );
    assert!(
        claim(&*store, "node-b", 1).await.is_empty(),
        "leased to node-a"
    );

    let (sent, retried) = (&claimed[0], &claimed[1]);
    assert!(finish(&*store, sent, "node-a", Outcome::Sent, 1).await);
    let retry = Outcome::Retry {
        at: at(10),
        error: "421 try later".into(),
    };
    assert!(finish(&*store, retried, "node-a", retry, 1).await);
    assert!(
        claim(&*store, "node-b", 9).await.is_empty(),
        "not due before its retry time"
    );
    let again = claim(&*store, "node-b", 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].attempts),
        (retried.id.as_str(), 2)
    );
    let failed = Outcome::Failed {
        error: "550 no such user".into(),
    };
    assert!(
        !finish(&*store, &again[0], "node-a", failed.clone(), 11).await,
        "node-a's claim is over"
    );
    assert!(finish(&*store, &again[0], "node-b", failed, 11).await);

    let after = messages(&*store, &acme, &order).await;
    let of = |id: &str| {
        after
            .iter()
            .find(|(n, _)| n.id == id)
            .expect("still listed")
            .clone()
    };
    let (sent_now, sent_attempts) = of(&sent.id);
    assert_eq!(sent_now.state, DeliveryState::Sent);
    assert_eq!(sent_now.sent_at, Some(at(1)));
    assert_eq!(sent_attempts, [Some("sent".to_owned())]);
    let (failed_now, failed_attempts) = of(&retried.id);
    assert_eq!(failed_now.state, DeliveryState::Failed);
    assert_eq!(failed_now.last_error.as_deref(), Some("550 no such user"));
    assert_eq!(
        failed_attempts,
        [Some("retry".to_owned()), Some("failed".to_owned())]
    );
    assert_eq!(
        notes(&*store)
            .delivery_gauges()
            .await
            .expect("reads")
            .email_waiting,
        0
    );
}

async fn a_message_whose_sender_died_is_failed_not_resent(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    notes(&*store)
        .create_rule(acme.clone(), email_rule(TriggerEvent::Dispatched, &[]))
        .await
        .expect("rule");
    let order = dispatched_order(&*store, &acme, "LOAD-1").await;
    expand(&*store).await;
    assert_eq!(claim(&*store, "node-a", 0).await.len(), 1);
    assert_eq!(
        notes(&*store)
            .delivery_gauges()
            .await
            .expect("reads")
            .email_waiting,
        1,
        "a message being sent is still waiting"
    );
    // node-a dies; its 5 min lease runs out.
    let round = notes(&*store)
        .claim_due("node-b".into(), at(6), Duration::minutes(5), 100, true)
        .await
        .expect("claims");
    assert_eq!((round.claimed.len(), round.interrupted), (0, 1));
    let after = messages(&*store, &acme, &order).await;
    assert_eq!(after[0].0.state, DeliveryState::Failed);
    assert_eq!(after[0].1, [Some("interrupted".to_owned())]);
}

async fn webhooks_are_rotated_disabled_enabled_and_replayed(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    let other = tenant(&*store, "Other Freight").await;
    let created = notes(&*store)
        .create_webhook(
            acme.clone(),
            "whk_1".into(),
            "https://hooks.acme.example/in".into(),
            vec![WebhookEvent::StatusChanged],
            "sealed-1".into(),
        )
        .await
        .expect("created");
    assert_eq!(created.events, [WebhookEvent::StatusChanged]);
    assert_eq!(
        notes(&*store).webhooks(acme.clone()).await.expect("lists"),
        vec![created.clone()]
    );
    assert_eq!(
        notes(&*store)
            .webhook(other.clone(), "whk_1".into())
            .await
            .expect("reads"),
        None
    );
    assert!(is_not_found(
        notes(&*store)
            .rotate_webhook_secret(other.clone(), "whk_1".into(), "x".into(), at(60))
            .await
    ));
    let rotated = notes(&*store)
        .rotate_webhook_secret(acme.clone(), "whk_1".into(), "sealed-2".into(), at(60))
        .await
        .expect("rotated");
    assert_eq!(rotated.previous_secret_until, Some(at(60)));
    let during = notes(&*store)
        .webhook_target("whk_1".into(), at(59))
        .await
        .expect("reads")
        .expect("a target");
    assert_eq!(
        (
            during.secret_sealed.as_str(),
            during.previous_sealed.as_deref()
        ),
        ("sealed-2", Some("sealed-1"))
    );
    let later = notes(&*store)
        .webhook_target("whk_1".into(), at(61))
        .await
        .expect("reads")
        .expect("a target");
    assert_eq!(later.previous_sealed, None, "the grace is over");

    let order = dispatched_order(&*store, &acme, "LOAD-1").await;
    expand(&*store).await;
    let claimed = notes(&*store)
        .claim_due("node-a".into(), at(0), Duration::minutes(5), 100, false)
        .await
        .expect("claims")
        .claimed;
    let events: Vec<TriggerEvent> = claimed.iter().map(|n| n.event).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.contains(&TriggerEvent::Created));
    let hook = claimed
        .iter()
        .find(|n| n.event == TriggerEvent::Dispatched)
        .expect("the dispatch");
    assert_eq!(
        (hook.channel, hook.order_id.clone()),
        (Channel::Webhook, order)
    );
    let body = hook.body.clone().expect("a signed body");
    assert!(
        body.contains("order.status_changed") && body.contains("LOAD-1"),
        "{body}"
    );
    let failed = Outcome::Failed {
        error: "HTTP 410".into(),
    };
    let created = claimed
        .iter()
        .find(|n| n.event == TriggerEvent::Created)
        .expect("the creation");
    assert!(finish(&*store, created, "node-a", Outcome::Sent, 1).await);
    assert!(finish(&*store, hook, "node-a", failed, 1).await);
    let disabled = notes(&*store)
        .webhook(acme.clone(), "whk_1".into())
        .await
        .expect("reads")
        .expect("still there");
    assert_eq!(
        disabled.disabled_at,
        Some(at(1)),
        "one failure in a row disables it"
    );
    assert_eq!(disabled.consecutive_failures, 1);
    assert_eq!(
        notes(&*store)
            .delivery_gauges()
            .await
            .expect("reads")
            .webhooks_disabled,
        1
    );
    let enabled = notes(&*store)
        .enable_webhook(acme.clone(), "whk_1".into())
        .await
        .expect("enabled");
    assert_eq!(
        (enabled.disabled_at, enabled.consecutive_failures),
        (None, 0)
    );

    let deliveries = notes(&*store)
        .webhook_deliveries(acme.clone(), "whk_1".into(), 10)
        .await
        .expect("lists");
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|(_, attempts)| attempts.len() == 1));
    let replayed = notes(&*store)
        .replay_delivery(
            acme.clone(),
            "whk_1".into(),
            hook.id.clone(),
            at(2),
            Duration::hours(1),
        )
        .await
        .expect("replayed");
    assert_eq!(
        (replayed.state, replayed.next_attempt_at, replayed.body),
        (DeliveryState::Pending, at(2), Some(body))
    );
    let busy = notes(&*store)
        .replay_delivery(
            acme.clone(),
            "whk_1".into(),
            hook.id.clone(),
            at(2),
            Duration::hours(1),
        )
        .await;
    assert!(
        matches!(busy, Err(store::Error::Conflict { .. })),
        "{busy:?}"
    );
    assert_eq!(
        notes(&*store)
            .delivery_gauges()
            .await
            .expect("reads")
            .webhook_waiting,
        1
    );

    notes(&*store)
        .delete_webhook(acme.clone(), "whk_1".into())
        .await
        .expect("deleted");
    assert!(
        notes(&*store)
            .webhooks(acme.clone())
            .await
            .expect("lists")
            .is_empty()
    );
    assert!(is_not_found(
        notes(&*store).delete_webhook(acme, "whk_1".into()).await
    ));
    let gone = notes(&*store)
        .webhook_target("whk_1".into(), at(3))
        .await
        .expect("reads")
        .expect("kept for its pending messages");
    assert!(gone.deleted);
}

async fn positions_are_coalesced_per_endpoint_and_vehicle(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    notes(&*store)
        .create_webhook(
            acme.clone(),
            "whk_pos".into(),
            "https://hooks.acme.example/pos".into(),
            vec![WebhookEvent::Position],
            "sealed".into(),
        )
        .await
        .expect("created");
    dispatched_order(&*store, &acme, "LOAD-1").await;
    let every = Duration::seconds(30);
    let enqueue = |minute: i64| {
        let store = store.clone();
        async move {
            notes(&*store)
                .enqueue_positions(at(minute), every)
                .await
                .expect("enqueues")
        }
    };
    assert_eq!(enqueue(1).await, 0, "no fix yet");
    store
        .record_position(acme.clone(), fix("truck-7", 1, 41.17))
        .await
        .expect("recorded");
    assert_eq!(enqueue(1).await, 1);
    assert_eq!(enqueue(1).await, 0, "that fix was sent");
    store
        .record_position(acme.clone(), fix("truck-7", 2, 41.16))
        .await
        .expect("recorded");
    assert_eq!(
        enqueue(2).await,
        1,
        "a newer fix, sent a minute after the last"
    );
    let claimed = notes(&*store)
        .claim_due("node-a".into(), at(2), Duration::minutes(5), 100, false)
        .await
        .expect("claims")
        .claimed;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|n| n.event == TriggerEvent::Position));
}

async fn an_unsubscribe_holds_for_the_tenant_and_address(store: Arc<dyn Store>) {
    let acme = tenant(&*store, "Acme Haulage").await;
    let other = tenant(&*store, "Other Freight").await;
    notes(&*store)
        .register_unsubscribe_token("tok-hash".into(), acme.clone(), "Ann@Example.com".into())
        .await
        .expect("registered");
    let target = notes(&*store)
        .unsubscribe_target("tok-hash".into())
        .await
        .expect("reads")
        .expect("known");
    assert_eq!(
        (
            target.tenant_name.as_str(),
            target.address.as_str(),
            target.unsubscribed
        ),
        ("Acme Haulage", "ann@example.com", false)
    );
    assert!(
        notes(&*store)
            .unsubscribe("tok-hash".into(), at(0))
            .await
            .expect("writes")
    );
    assert!(
        notes(&*store)
            .unsubscribe("tok-hash".into(), at(1))
            .await
            .expect("writes"),
        "twice is fine"
    );
    assert!(
        !notes(&*store)
            .unsubscribe("unknown".into(), at(1))
            .await
            .expect("writes")
    );
    let is_off = |tenant: TenantId, address: &'static str| {
        let store = store.clone();
        async move {
            notes(&*store)
                .is_unsubscribed(tenant, address.into())
                .await
                .expect("reads")
        }
    };
    assert!(is_off(acme.clone(), "ANN@example.com").await);
    assert!(
        !is_off(other, "ann@example.com").await,
        "another tenant's list"
    );
    assert!(!is_off(acme, "bob@example.com").await);
}

store::on_both_stores!(
    rules_are_kept_per_tenant,
    the_outbox_becomes_messages_sent_retried_or_given_up,
    a_message_whose_sender_died_is_failed_not_resent,
    webhooks_are_rotated_disabled_enabled_and_replayed,
    positions_are_coalesced_per_endpoint_and_vehicle,
    an_unsubscribe_holds_for_the_tenant_and_address,
);

#[path = "../store_notifications/two_nodes.rs"]
mod two_nodes;
