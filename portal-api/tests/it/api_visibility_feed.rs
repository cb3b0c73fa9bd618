//! What a customer may see and whether it is current (issue 18): internal
//! notes and exceptions never reach the public JSON or the page (the default
//! for a note posted without a visibility); the truck's feed is `live`,
//! `stale` or `none`; an ETA that has passed is `overdue`, never a future
//! arrival. The WebSocket side is in `ws.rs`.

use crate::common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::*;
use portal_api::PortalConfig;
use serde_json::{Value, json};

async fn page(t: &TestApp, code: &str) -> String {
    let reply = call(&t.app, Method::GET, &format!("/t/{code}"), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.text
}

#[tokio::test]
async fn internal_notes_stay_off_the_page_and_public_ones_show() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-VIS", Some("TRUCK-V")).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    set_status(&t.app, &t.key_a, id, "dispatched").await;

    // Posted without a visibility: internal.
    let gate = post_status(
        &t,
        id,
        json!({"status": "note", "note": "Gate code 4471, dock 3", "source": "driver"}),
    )
    .await;
    assert_eq!(gate.status, StatusCode::CREATED, "{}", gate.text);
    assert_eq!(gate.json["event"]["visibility"], "internal");
    let jammed = post_status(
        &t,
        id,
        json!({"status": "exception", "note": "Reefer unit alarm at 38F", "visibility": "internal"}),
    )
    .await;
    assert_eq!(jammed.json["event"]["visibility"], "internal");
    // A status is public; an internal note on it is not.
    let at_pickup = post_status(
        &t,
        id,
        json!({"status": "at_pickup", "note": "Driver asleep in the cab until 6"}),
    )
    .await;
    assert_eq!(at_pickup.status, StatusCode::CREATED, "{}", at_pickup.text);
    let public_note = post_status(
        &t,
        id,
        json!({"status": "note", "note": "Loading started at dock 3", "visibility": "public"}),
    )
    .await;
    assert_eq!(public_note.json["event"]["visibility"], "public");
    let public_exception = post_status(
        &t,
        id,
        json!({"status": "exception", "note": "Loading delayed 30 min", "visibility": "public"}),
    )
    .await;
    assert_eq!(public_exception.status, StatusCode::CREATED);

    let json = public_track(&t, &code).await;
    let text = json.to_string();
    for secret in ["4471", "Reefer", "asleep"] {
        assert!(
            !text.contains(secret),
            "`{secret}` in the public JSON: {text}"
        );
    }
    let notes: Vec<&str> = json["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert_eq!(
        notes,
        ["Loading started at dock 3", "Loading delayed 30 min"]
    );
    let statuses: Vec<&str> = json["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["created", "dispatched", "at_pickup"],
        "statuses stay"
    );

    let html = page(&t, &code).await;
    for secret in ["4471", "Reefer", "asleep"] {
        assert!(!html.contains(secret), "`{secret}` on the page");
    }
    assert!(html.contains("Loading started at dock 3"));
    assert!(html.contains("Loading delayed 30 min"));
}

#[tokio::test]
async fn a_visibility_that_is_neither_is_refused() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-VIS-2", None).await;
    let id = order["id"].as_str().expect("id");
    let reply = post_status(
        &t,
        id,
        json!({"status": "note", "note": "x", "visibility": "customers"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&reply),
        "`visibility`: `customers`: expected public or internal"
    );
}

async fn post_fix(t: &TestApp, vehicle: &str, at: chrono::DateTime<Utc>) {
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(json!([{"vehicle_id": vehicle, "time": at.to_rfc3339(), "lat": 39.2790, "lon": -76.6050}])),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["accepted"], 1, "{}", reply.text);
}

async fn order_api(t: &TestApp, id: &str) -> Value {
    call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await
    .json
}

#[tokio::test]
async fn the_feed_is_none_then_live_then_stale() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-FEED", Some("TRUCK-F")).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    set_status(&t.app, &t.key_a, id, "dispatched").await;

    // No position yet.
    let json = public_track(&t, &code).await;
    assert_eq!(json["feed"]["state"], "none");
    assert!(json["feed"]["last_fix_age_s"].is_null());
    assert!(json["feed"]["last_fix_at"].is_null());
    assert_eq!(json["feed"]["stale_after_s"], 900);
    assert_eq!(order_api(&t, id).await["feed"]["state"], "none");

    // A fix 20 minutes old: the truck is known, but not live.
    let twenty_min_ago = Utc::now() - Duration::minutes(20);
    post_fix(&t, "TRUCK-F", twenty_min_ago).await;
    let json = public_track(&t, &code).await;
    assert_eq!(json["feed"]["state"], "stale", "{}", json["feed"]);
    let age = json["feed"]["last_fix_age_s"].as_i64().expect("age");
    assert!((1199..1260).contains(&age), "{age}");
    assert_eq!(
        json["feed"]["last_fix_at"],
        twenty_min_ago.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let api = order_api(&t, id).await;
    assert_eq!(api["feed"]["state"], "stale");
    assert_eq!(api["feed"]["last_fix_at"], json["feed"]["last_fix_at"]);

    // A fresh fix: live.
    post_fix(&t, "TRUCK-F", Utc::now()).await;
    let json = public_track(&t, &code).await;
    assert_eq!(json["feed"]["state"], "live");
    assert!(json["feed"]["last_fix_age_s"].as_i64().expect("age") < 60);
    let list = call(&t.app, Method::GET, "/api/v1/orders", Some(&t.key_a), None).await;
    assert_eq!(list.json["orders"][0]["feed"]["state"], "live");

    // After delivery the page is a record: no truck, no feed.
    set_status(&t.app, &t.key_a, id, "delivered").await;
    assert_eq!(public_track(&t, &code).await["feed"]["state"], "none");
}

#[tokio::test]
async fn the_stale_threshold_is_a_setting() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.stale_after_s = 60;
    let t = test_app_with(config, None).await;
    let order = create_order(&t.app, &t.key_a, "LOAD-FEED-2", Some("TRUCK-G")).await;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    post_fix(&t, "TRUCK-G", Utc::now() - Duration::minutes(3)).await;
    let json = public_track(&t, &code_of(&order)).await;
    assert_eq!(json["feed"]["state"], "stale");
    assert_eq!(json["feed"]["stale_after_s"], 60);

    let mut zero = PortalConfig::recommended("https://track.example.com");
    zero.stale_after_s = 0;
    let err = portal_api::AppState::new(
        zero,
        t.store.clone(),
        std::sync::Arc::new(portal_api::MemoryFanOut::new()),
        None,
        None,
    )
    .expect_err("0 s is refused");
    assert!(err.to_string().contains("stale_after_s"), "{err}");
}

#[tokio::test]
async fn an_eta_that_has_passed_is_overdue_not_a_future_arrival() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-LATE", Some("TRUCK-L")).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    let uri = format!("/api/v1/orders/{id}/eta");
    let post_eta = |at: chrono::DateTime<Utc>| {
        let body = json!({"stop_index": 0, "eta": at.to_rfc3339()});
        call(&t.app, Method::POST, &uri, Some(&t.key_a), Some(body))
    };

    let soon = Utc::now() + Duration::minutes(30);
    assert_eq!(post_eta(soon).await.status, StatusCode::ACCEPTED);
    let json = public_track(&t, &code).await;
    assert_eq!(json["eta"]["overdue"], false);
    assert_eq!(order_api(&t, id).await["stops"][0]["eta"]["overdue"], false);

    // Ten minutes ago, and the truck has not arrived.
    let passed = Utc::now() - Duration::minutes(10);
    assert_eq!(post_eta(passed).await.status, StatusCode::ACCEPTED);
    let json = public_track(&t, &code).await;
    assert_eq!(json["eta"]["overdue"], true, "{}", json["eta"]);
    assert_eq!(order_api(&t, id).await["stops"][0]["eta"]["overdue"], true);

    // Arrived: the stop's last ETA is history, not overdue.
    set_status(&t.app, &t.key_a, id, "at_pickup").await;
    assert_eq!(order_api(&t, id).await["stops"][0]["eta"]["overdue"], false);
}
