//! Per-stop states through the orders API and the public tracking JSON: a
//! stop's own geofence, manual statuses that skip steps (a "picked up" with
//! no "at pickup" marks the pickup left, and the next stop becomes the one
//! the page shows), later stops reached before earlier ones (skipped), the
//! on-time verdict of each reached stop, and a progress indicator that never
//! goes backwards at a second pickup.

use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

async fn create(t: &TestApp, body: Value) -> Value {
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json
}

#[tokio::test]
async fn a_pickup_reported_without_arrival_is_left_and_the_delivery_is_next() {
    let t = test_app().await;
    let mut body = order_body("LOAD-F1", Some("T1"));
    body["stops"][0]["geofence"] = json!({"radius_m": 300});
    let order = create(&t, body).await;
    assert_eq!(order["stops"][0]["state"], "pending");
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    assert_eq!(
        set_status(&t.app, &t.key_a, id, "dispatched").await.status,
        StatusCode::CREATED
    );

    let picked = post_status(
        &t,
        id,
        json!({"status": "picked_up", "at": "2025-11-25T14:10:00Z"}),
    )
    .await;
    assert_eq!(picked.status, StatusCode::CREATED, "{}", picked.text);
    let view = public_track(&t, &code).await;
    assert_eq!(view["stops"][0]["state"], "departed");
    assert!(view["stops"][0]["arrived_at"].is_null());
    assert_eq!(view["stops"][0]["departed_at"], "2025-11-25T14:10:00Z");
    assert_eq!(
        view["stops"][0]["verdict"], "on_time",
        "left inside its window"
    );
    assert_eq!(view["next_stop_index"], 1);
    assert_eq!(view["stops"][1]["state"], "pending");
    let picked_event = view["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["status"] == "picked_up")
        .cloned()
        .expect("the picked_up event");
    assert_eq!(picked_event["stop_index"], 0, "the event names its stop");

    // Late at the delivery by 25 minutes (the window ends 20:00 UTC).
    let at = post_status(
        &t,
        id,
        json!({"status": "at_delivery", "at": "2025-11-25T20:24:10Z", "stop_index": 1}),
    )
    .await;
    assert_eq!(at.status, StatusCode::CREATED, "{}", at.text);
    assert_eq!(
        set_status(&t.app, &t.key_a, id, "delivered").await.status,
        StatusCode::CREATED
    );
    let view = public_track(&t, &code).await;
    assert_eq!(view["stops"][1]["state"], "departed");
    assert_eq!(view["stops"][1]["verdict"], "late");
    assert_eq!(view["stops"][1]["late_by_min"], 25);
    assert_eq!(view["progress"]["reached"], 5);
    // The orders API carries the same per stop.
    let read = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(read.json["stops"][1]["verdict"], "late");
    assert_eq!(read.json["stops"][0]["state"], "departed");
}

#[tokio::test]
async fn a_later_stop_reached_first_skips_the_ones_before_it() {
    let t = test_app().await;
    let mut body = order_body("LOAD-F2", Some("T1"));
    let extra = body["stops"][1].clone();
    body["stops"].as_array_mut().expect("stops").push(extra);
    let order = create(&t, body).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    set_status(&t.app, &t.key_a, id, "picked_up").await;
    let reply = post_status(&t, id, json!({"status": "at_delivery", "stop_index": 2})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let view = public_track(&t, &code).await;
    let states: Vec<&str> = view["stops"]
        .as_array()
        .expect("stops")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["departed", "skipped", "arrived"]);
    assert!(view["stops"][1]["skipped_at"].is_string());
    assert!(
        view["next_stop_index"].is_null(),
        "every stop reached or passed"
    );
}

#[tokio::test]
async fn the_progress_indicator_never_goes_back_at_a_second_pickup() {
    let t = test_app().await;
    let mut body = order_body("LOAD-F3", Some("T1"));
    let stops = body["stops"].as_array_mut().expect("stops");
    let (pickup, delivery) = (stops[0].clone(), stops[1].clone());
    *stops = vec![pickup.clone(), pickup, delivery.clone(), delivery];
    let order = create(&t, body).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    let mut reached = Vec::new();
    for (status, stop) in [
        ("dispatched", None),
        ("at_pickup", Some(0)),
        ("picked_up", Some(0)),
        ("at_pickup", Some(1)),
        ("picked_up", Some(1)),
        ("at_delivery", Some(2)),
        ("out_for_delivery", Some(2)),
        ("at_delivery", Some(3)),
        ("delivered", Some(3)),
    ] {
        let reply = post_status(&t, id, json!({"status": status, "stop_index": stop})).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{status}: {}",
            reply.text
        );
        let view = public_track(&t, &code).await;
        reached.push(view["progress"]["reached"].as_u64().expect("reached"));
    }
    assert!(reached.windows(2).all(|w| w[0] <= w[1]), "{reached:?}");
    assert_eq!(reached, [1, 1, 2, 2, 3, 4, 4, 4, 5]);
}

#[tokio::test]
async fn a_bad_geofence_is_refused_naming_the_field() {
    let t = test_app().await;
    for fence in [
        json!({"radius_m": -5}),
        json!({"radius_m": 99999}),
        json!({"polygon": [[-76.61, 39.27], [-76.60, 39.27]]}),
        json!({"circle": 3}),
    ] {
        let mut body = order_body("LOAD-F4", None);
        body["stops"][0]["geofence"] = fence.clone();
        let reply = call(
            &t.app,
            Method::POST,
            "/api/v1/orders",
            Some(&t.key_a),
            Some(body),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{fence} -> {}",
            reply.text
        );
        assert!(
            error_message(&reply).starts_with("`stops[0].geofence`"),
            "{}",
            error_message(&reply)
        );
    }
}
