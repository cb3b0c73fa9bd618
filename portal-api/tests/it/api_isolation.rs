//! Tenant isolation: a key never sees, changes or moves another tenant's orders,
//! whichever route it tries.

use crate::common;

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
    assert_eq!(still.json["tracking_active"], true);
    let code = code_of(&mine);
    let page = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the owner's link was not rotated"
    );
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

/// Issue 17: `?after=<another tenant's order id>` listed the orders created
/// before that order (an empty page for an id that never existed), which told
/// the caller the order existed. Now every cursor that is not one of the
/// caller's own orders gets the same 400, byte for byte.
#[tokio::test]
async fn a_cursor_from_another_tenant_reveals_nothing() {
    let t = test_app().await;
    let theirs = create_order(&t.app, &t.key_a, "A-CURSOR", None).await;
    let their_id = theirs["id"].as_str().expect("id");
    create_order(&t.app, &t.key_b, "B-1", None).await;
    let newest = create_order(&t.app, &t.key_b, "B-2", None).await;

    let list_after = |after: String| {
        let app = t.app.clone();
        let key = t.key_b.clone();
        async move {
            call(
                &app,
                Method::GET,
                &format!("/api/v1/orders?after={after}"),
                Some(&key),
                None,
            )
            .await
        }
    };
    let foreign = list_after(their_id.to_owned()).await;
    let unknown = list_after("ord_nosuchorder00000".to_owned()).await;
    let junk = list_after("not-an-id!".to_owned()).await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST, "{}", foreign.text);
    assert_eq!(foreign.json["error"]["code"], "invalid_field");
    assert!(
        error_message(&foreign).starts_with("`after`"),
        "{}",
        foreign.text
    );
    assert_eq!(foreign.text, unknown.text);
    assert_eq!(foreign.text, junk.text);

    // The caller's own cursor still pages.
    let own = list_after(newest["id"].as_str().expect("id").to_owned()).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.json["orders"][0]["reference"], "B-1");
    assert_eq!(own.json["orders"].as_array().expect("orders").len(), 1);
}
