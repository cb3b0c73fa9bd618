//! Alerts judged from ETAs, through the live layer and the real store: a truck
//! falls behind and its order gets one `late_risk` (visible on the order,
//! filterable in the list, one e-mail per rule), then catches up and gets one
//! `late_risk_cleared`; an `eta_changed` rule fires on a big enough move and
//! not again within its interval.

use crate::common;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::*;
use engine::{EtaUpdate, OrderId};
use portal_api::{Channel, PortalConfig, TenantId, TriggerEvent};
use serde_json::{Value, json};

/// The delivery window of `order_body`'s second stop ends here.
fn window_end() -> DateTime<Utc> {
    "2025-11-25T20:00:00Z".parse().expect("time")
}

/// An ETA for the delivery stop computed at `computed_at`, arriving at
/// `eta` with a p90 ten minutes later.
fn delivery_eta(order: &str, computed_at: DateTime<Utc>, eta: DateTime<Utc>) -> EtaUpdate {
    EtaUpdate {
        order_id: OrderId(order.to_owned()),
        stop_index: 1,
        eta,
        p10: eta - Duration::minutes(5),
        p90: eta + Duration::minutes(10),
        remaining_distance_m: 20_000.0,
        remaining_drive_s: 1_800.0,
        reasons: Vec::new(),
        computed_at,
        free_flow_drive_s: None,
        route: Vec::new(),
    }
}

async fn tenant_a(t: &TestApp) -> TenantId {
    t.store
        .authenticate(portal_api::secret_hash(&t.key_a))
        .await
        .expect("store")
        .expect("key a")
        .0
        .id
}

/// The order's e-mails by event, after the deliverer's outbox step ran.
async fn messages(t: &TestApp, order: &str) -> Vec<(TriggerEvent, String)> {
    let notes = t.store.notifications().expect("kept");
    notes
        .expand_outbox(Utc::now(), Duration::hours(1), 1000)
        .await
        .expect("expands");
    notes
        .order_notifications(tenant_a(t).await, OrderId(order.to_owned()))
        .await
        .expect("reads")
        .into_iter()
        .filter(|(n, _)| n.channel == Channel::Email)
        .map(|(n, _)| (n.event, n.event_id))
        .collect()
}

async fn rule(t: &TestApp, body: Value) {
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/notification-rules",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

async fn get_order(t: &TestApp, id: &str) -> Value {
    let reply = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}

async fn listed_ids(t: &TestApp, query: &str) -> Vec<String> {
    let reply = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders?{query}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_truck_falling_behind_raises_one_late_risk_then_clears_it_once() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.notify_key = Some(portal_api::NotifyKey::from_bytes(&[3; 32]));
    config.webhook_allow_hosts = vec!["127.0.0.1".into()];
    let t = test_app_with(config, None).await;
    let hook = call(
        &t.app,
        Method::POST,
        "/api/v1/webhooks",
        Some(&t.key_a),
        Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["late_risk"]})),
    )
    .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let hook_id = hook.json["id"].as_str().expect("id").to_owned();
    rule(
        &t,
        json!({"event": "late_risk", "addresses": ["ops@acme.test"]}),
    )
    .await;
    rule(
        &t,
        json!({"event": "late_risk_cleared", "addresses": ["ops@acme.test"]}),
    )
    .await;
    let order = create_order(&t.app, &t.key_a, "LOAD-LATE", Some("truck-1")).await;
    let id = order["id"].as_str().expect("id").to_owned();
    let on_time = create_order(&t.app, &t.key_a, "LOAD-FINE", Some("truck-2")).await;
    let on_time_id = on_time["id"].as_str().expect("id").to_owned();
    for order in [&id, &on_time_id] {
        let reply = set_status(&t.app, &t.key_a, order, "dispatched").await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    assert_eq!(get_order(&t, &id).await["late_risk"], Value::Null);

    // The truck falls behind: its p90 passes the window's end at 18:01 and
    // stays past it; a jitter back inside the band changes nothing.
    let start: DateTime<Utc> = "2025-11-25T18:00:00Z".parse().expect("time");
    let end = window_end();
    let timeline = [
        (0, end - Duration::minutes(30)),  // p90 19:40: fine
        (60, end - Duration::minutes(5)),  // p90 20:05: late, hold starts
        (120, end),                        // p90 20:10: 60 s late
        (180, end + Duration::minutes(2)), // p90 20:12: 120 s late → raised
        (240, end + Duration::minutes(8)), // later still: no second alert
    ];
    let live = t.state.live();
    for (s, eta) in timeline {
        let at = start + Duration::seconds(s);
        live.eta(delivery_eta(&id, at, eta))
            .await
            .expect("recorded");
        live.eta(delivery_eta(&on_time_id, at, end - Duration::hours(1)))
            .await
            .expect("recorded");
    }
    let risky = get_order(&t, &id).await;
    assert_eq!(
        risky["late_risk"],
        json!({"since": "2025-11-25T18:01:00Z", "stop_idx": 1, "by_min": 18}),
        "since the first late p90; by the latest overshoot"
    );
    assert_eq!(listed_ids(&t, "late_risk=true").await, vec![id.clone()]);
    assert_eq!(
        listed_ids(&t, "late_risk=false").await,
        vec![on_time_id.clone()]
    );
    let sent = messages(&t, &id).await;
    assert_eq!(
        sent.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        vec![TriggerEvent::LateRisk],
        "one late_risk message, none for the on-time order: {sent:?}"
    );

    // It catches up: back well inside the window for the hold, then cleared.
    for (s, eta) in [
        (300, end - Duration::minutes(40)),
        (360, end - Duration::minutes(40)),
        (420, end - Duration::minutes(40)),
        (480, end - Duration::minutes(40)),
    ] {
        live.eta(delivery_eta(&id, start + Duration::seconds(s), eta))
            .await
            .expect("recorded");
    }
    assert_eq!(get_order(&t, &id).await["late_risk"], Value::Null);
    assert_eq!(listed_ids(&t, "late_risk=true").await, Vec::<String>::new());
    let sent = messages(&t, &id).await;
    assert_eq!(
        sent.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        vec![TriggerEvent::LateRisk, TriggerEvent::LateRiskCleared],
        "{sent:?}"
    );
    // The webhook subscribed to late risks got one message for each.
    let deliveries = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/webhooks/{hook_id}/deliveries"),
        Some(&t.key_a),
        None,
    )
    .await;
    let events: Vec<&str> = deliveries.json["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        events,
        vec!["late_risk_cleared", "late_risk"],
        "newest first"
    );
    let bad = call(
        &t.app,
        Method::GET,
        "/api/v1/orders?late_risk=maybe",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(error_message(&bad).contains("late_risk"), "{}", bad.text);
}

#[tokio::test]
async fn an_eta_changed_rule_fires_on_a_big_move_and_not_again_within_its_interval() {
    let t = test_app_with(PortalConfig::recommended("https://track.example.com"), None).await;
    rule(
        &t,
        json!({"event": "eta_changed", "recipients": ["customer"], "min_change_min": 15}),
    )
    .await;
    let order = create_order(&t.app, &t.key_a, "LOAD-MOVES", Some("truck-1")).await;
    let id = order["id"].as_str().expect("id").to_owned();
    set_status(&t.app, &t.key_a, &id, "dispatched").await;
    let start: DateTime<Utc> = "2025-11-25T16:00:00Z".parse().expect("time");
    let first = "2025-11-25T19:00:00Z".parse::<DateTime<Utc>>().expect("t");
    let live = t.state.live();
    let steps = [
        (0, first),                           // the baseline: nothing
        (60, first + Duration::minutes(10)),  // 10 min: under the threshold
        (120, first + Duration::minutes(20)), // 20 min: fires
        (300, first + Duration::minutes(50)), // 30 more, 3 min later: too soon
        (780, first + Duration::minutes(50)), // 11 min later: fires again
        (840, first + Duration::minutes(55)), // 5 min from the last announced
    ];
    for (s, eta) in steps {
        live.eta(delivery_eta(&id, start + Duration::seconds(s), eta))
            .await
            .expect("recorded");
    }
    let sent = messages(&t, &id).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|(e, _)| *e == TriggerEvent::EtaChanged));
    assert_ne!(sent[0].1, sent[1].1, "each change is its own event");

    let refused = call(
        &t.app,
        Method::POST,
        "/api/v1/notification-rules",
        Some(&t.key_a),
        Some(json!({"event": "delivered", "recipients": ["customer"], "min_change_min": 5})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&refused).starts_with("`min_change_min`"));
}
