//! Tenant isolation: a key never sees, changes or moves another tenant's orders,
//! whichever route it tries.

mod common;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_key_never_sees_another_tenants_orders() {
    let t = test_app().await;
    let mine = create_order(&t.app, &t.key_a, "A-1", Some("SHARED-UNIT")).await;
    let id = mine["id"].as_str().expect("id");
    create_order(&t.app, &t.key_b, "B-1", None).await;

    let listed = call(&t.app, Method::GET, "/api/v1/orders", Some(&t.key_b), None).await;
    let refs: Vec<&str> = listed.json["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["reference"].as_str().expect("ref"))
        .collect();
    assert_eq!(refs, ["B-1"]);
    let by_ref = call(
        &t.app,
        Method::GET,
        "/api/v1/orders?reference=A-1",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(by_ref.json["orders"].as_array().expect("orders").len(), 0);

    let attempts = [
        (Method::GET, format!("/api/v1/orders/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/orders/{id}"),
            Some(json!({"reference": "stolen"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/status"),
            Some(json!({"status": "cancelled"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/eta"),
            Some(json!({"stop_index": 1, "eta": Utc::now().to_rfc3339()})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/tracking-link/rotate"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/orders/{id}/tracking-link"),
            None,
        ),
        (Method::GET, format!("/api/v1/orders/{id}/pod/pod_x"), None),
    ];
    for (method, uri, body) in attempts {
        let reply = call(&t.app, method.clone(), &uri, Some(&t.key_b), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.text
        );
    }

    // Nothing changed for the owner.
    let still = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(still.json["reference"], "A-1");
    assert_eq!(still.json["status"], "created");
    assert_eq!(still.json["tracking_code"], mine["tracking_code"]);
}

#[tokio::test]
async fn positions_posted_by_one_tenant_never_move_another_tenants_truck() {
    let t = test_app().await;
    let mine = create_order(&t.app, &t.key_a, "A-2", Some("UNIT-42")).await;
    let id = mine["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    // B's UNIT-42 is B's own truck: B's fix is taken, and nothing in the
    // answer tells B that A uses the id too (it once did: an oracle).
    let fix = json!([
        {"vehicle_id": "UNIT-42", "time": Utc::now().to_rfc3339(), "lat": 39.29, "lon": -76.60},
        {"vehicle_id": "B-UNIT", "time": Utc::now().to_rfc3339(), "lat": 39.29, "lon": -76.60},
    ]);
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_b),
        Some(fix),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["accepted"], 2, "{}", reply.text);
    assert!(!reply.text.contains("account"), "{}", reply.text);
    let alone = json!([{"vehicle_id": "UNIT-9", "time": Utc::now().to_rfc3339(), "lat": 39.29, "lon": -76.60}]);
    let unused = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_b),
        Some(alone),
    )
    .await;
    // The answer for an id A uses and for one nobody uses has the same shape.
    assert_eq!(unused.status, reply.status);

    // …and it never reaches A's page or moves A's order.
    let track = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&mine)),
        None,
        None,
    )
    .await;
    assert!(
        track.json["vehicle"].is_null(),
        "B's position leaked into A's page: {}",
        track.json["vehicle"]
    );
    let order = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(order.json["status"], "dispatched");
}

#[tokio::test]
async fn the_owner_of_an_order_moves_its_truck() {
    let t = test_app().await;
    let mine = create_order(&t.app, &t.key_a, "A-3", Some("UNIT-7")).await;
    let id = mine["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    let fix = json!([{"vehicle_id": "UNIT-7", "time": Utc::now().to_rfc3339(), "lat": 39.29, "lon": -76.60}]);
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(fix),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let track = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&mine)),
        None,
        None,
    )
    .await;
    assert!(!track.json["vehicle"].is_null(), "{}", track.json);
}
