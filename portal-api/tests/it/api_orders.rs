//! The orders API through the router, without a socket: creating, reading,
//! listing and updating orders, status updates, and how every bad request is
//! answered (a 4xx JSON error naming the field).

use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_dispatcher_creates_an_order_and_gets_a_tracking_link() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-123", Some("TRUCK-7")).await;
    assert_eq!(order["status"], "created");
    assert_eq!(order["reference"], "LOAD-123");
    let code = code_of(&order);
    assert_eq!(code.len(), 24);
    assert!(portal_api::looks_like_tracking_code(&code));
    assert_eq!(
        order["tracking_url"],
        format!("https://track.example.com/t/{code}")
    );
    assert_eq!(
        order["stops"][0]["window"]["local"],
        "Tue 25 Nov, 08:00–10:00 EST"
    );
    assert_eq!(order["stops"][1]["time_zone"], "America/New_York");

    let id = order["id"].as_str().expect("id");
    let read = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    // Issue 17: the code is stored as its hash only, so it is shown when it is
    // issued and never again; a read says only that a link is active.
    let mut issued = order.clone();
    let fields = issued.as_object_mut().expect("an object");
    fields.remove("tracking_code");
    fields.remove("tracking_url");
    assert_eq!(read.json, issued);
    assert_eq!(read.json["tracking_active"], true);
    assert!(!read.text.contains(&code), "a read never shows the code");
}

#[tokio::test]
async fn listing_pages_through_orders_newest_first() {
    let t = test_app().await;
    for i in 0..5 {
        create_order(&t.app, &t.key_a, &format!("LOAD-{i}"), None).await;
    }
    let first = call(
        &t.app,
        Method::GET,
        "/api/v1/orders?limit=3",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let refs: Vec<&str> = first.json["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["reference"].as_str().expect("ref"))
        .collect();
    assert_eq!(refs, ["LOAD-4", "LOAD-3", "LOAD-2"]);
    assert_eq!(first.json["orders"][0]["tracking_active"], true);
    assert!(
        !first.text.contains("/t/"),
        "a listing never shows tracking links"
    );
    let cursor = first.json["next_cursor"].as_str().expect("a next page");
    let second = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders?limit=3&after={cursor}"),
        Some(&t.key_a),
        None,
    )
    .await;
    let refs: Vec<&str> = second.json["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["reference"].as_str().expect("ref"))
        .collect();
    assert_eq!(refs, ["LOAD-1", "LOAD-0"]);
    assert!(second.json["next_cursor"].is_null());

    let by_ref = call(
        &t.app,
        Method::GET,
        "/api/v1/orders?reference=LOAD-2",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(by_ref.json["orders"].as_array().expect("orders").len(), 1);
}

#[tokio::test]
async fn status_moves_follow_the_state_machine_and_land_in_the_timeline() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-9", Some("TRUCK-9")).await;
    let id = order["id"].as_str().expect("id");
    assert_eq!(
        set_status(&t.app, &t.key_a, id, "dispatched").await.status,
        StatusCode::CREATED
    );
    let at_pickup = call(&t.app, Method::POST, &format!("/api/v1/orders/{id}/status"), Some(&t.key_a),
        Some(json!({"status": "at_pickup", "at": "2025-11-25T13:30:00Z", "source": "driver", "note": "Dock 4"}))).await;
    assert_eq!(at_pickup.status, StatusCode::CREATED, "{}", at_pickup.text);
    assert_eq!(
        at_pickup.json["stops"][0]["arrived_at"],
        "2025-11-25T13:30:00Z"
    );
    assert_eq!(at_pickup.json["event"]["source"], "driver");

    let backwards = set_status(&t.app, &t.key_a, id, "dispatched").await;
    assert_eq!(backwards.status, StatusCode::CONFLICT);
    assert_eq!(backwards.json["error"]["code"], "invalid_transition");

    let exception = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(&t.key_a),
        Some(json!({"status": "exception", "note": "Trailer door jammed, 30 min delay", "visibility": "public"})),
    )
    .await;
    assert_eq!(exception.status, StatusCode::CREATED);
    assert_eq!(
        exception.json["status"], "at_pickup",
        "an exception does not move the status"
    );

    assert_eq!(
        set_status(&t.app, &t.key_a, id, "delivered").await.status,
        StatusCode::CREATED
    );
    let reassign = call(
        &t.app,
        Method::PATCH,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        Some(json!({"vehicle_id": "TRUCK-2"})),
    )
    .await;
    assert_eq!(reassign.status, StatusCode::CONFLICT);
    assert_eq!(
        set_status(&t.app, &t.key_a, id, "cancelled").await.status,
        StatusCode::CONFLICT
    );

    let track = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&order)),
        None,
        None,
    )
    .await;
    let kinds: Vec<&str> = track.json["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["status", "status", "status", "exception", "status"]);
    assert!(track.json["delivered_at"].is_string());
}

#[tokio::test]
async fn patch_assigns_a_vehicle_and_replaces_stops() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-5", None).await;
    let id = order["id"].as_str().expect("id");
    let mut stops = order_body("x", None)["stops"].clone();
    stops[1]["name"] = json!("New Receiver");
    let patched = call(
        &t.app,
        Method::PATCH,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        Some(json!({"vehicle_id": "TRUCK-1", "driver_name": "Sam", "stops": stops})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["vehicle_id"], "TRUCK-1");
    assert_eq!(patched.json["stops"][1]["name"], "New Receiver");
    let cleared = call(
        &t.app,
        Method::PATCH,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        Some(json!({"vehicle_id": null})),
    )
    .await;
    assert!(cleared.json["vehicle_id"].is_null());
}

/// Sends a bad order and checks the answer is a 400 naming `field`.
async fn rejected(t: &TestApp, body: serde_json::Value, field: &str) {
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{body} -> {}",
        reply.text
    );
    assert_eq!(reply.json["error"]["code"], "invalid_field");
    let message = error_message(&reply);
    assert!(
        message.starts_with(&format!("`{field}`")),
        "expected the field `{field}` in: {message}"
    );
}

#[tokio::test]
async fn every_bad_order_gets_a_400_naming_the_field() {
    let t = test_app().await;
    let good = order_body("LOAD-1", None);
    let mut b = good.clone();
    b.as_object_mut().expect("object").remove("reference");
    rejected(&t, b, "reference").await;
    let mut b = good.clone();
    b["stops"][1]["lat"] = json!(123.0);
    rejected(&t, b, "stops[1].lat").await;
    let mut b = good.clone();
    b["stops"][0]["window"]["to"] = json!("2025-11-25T12:00:00Z");
    rejected(&t, b, "stops[0].window.to").await;
    let mut b = good.clone();
    b["stops"][0]["window"]["from"] = json!("yesterday");
    rejected(&t, b, "stops[0].window.from").await;
    let mut b = good.clone();
    b["stops"][0]["time_zone"] = json!("Mars/Olympus");
    rejected(&t, b, "stops[0].time_zone").await;
    let mut b = good.clone();
    b["stops"][1]["kind"] = json!("pickup");
    rejected(&t, b, "stops").await;
    let mut b = good.clone();
    b["vehicleId"] = json!("T1");
    rejected(&t, b, "vehicleId").await;
    let mut b = good.clone();
    b["customer"]["email"] = json!("not-an-address");
    rejected(&t, b, "customer.email").await;
    rejected(&t, json!([1, 2]), "body").await;
}

#[tokio::test]
async fn transport_level_mistakes_are_json_4xx_too() {
    let t = test_app().await;
    let no_key = call(&t.app, Method::GET, "/api/v1/orders", None, None).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.json["error"]["code"], "unauthorized");
    let bad_key = call(
        &t.app,
        Method::GET,
        "/api/v1/orders",
        Some("trk_nope"),
        None,
    )
    .await;
    assert_eq!(bad_key.status, StatusCode::UNAUTHORIZED);

    let not_json = send(
        &t.app,
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/orders")
            .header("authorization", format!("Bearer {}", t.key_a))
            .header("content-type", "text/plain")
            .body(axum::body::Body::from("hello"))
            .expect("request"),
    )
    .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(not_json.json["error"]["code"], "unsupported_media_type");

    let broken = send(
        &t.app,
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/orders")
            .header("authorization", format!("Bearer {}", t.key_a))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{\"reference\": "))
            .expect("request"),
    )
    .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.json["error"]["code"], "invalid_json");

    let wrong_method = call(&t.app, Method::PUT, "/api/v1/orders", Some(&t.key_a), None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json["error"]["code"], "method_not_allowed");
    let nowhere = call(&t.app, Method::GET, "/api/v2/everything", None, None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.json["error"]["code"], "no_such_route");

    let bad_limit = call(
        &t.app,
        Method::GET,
        "/api/v1/orders?limit=0",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&bad_limit).starts_with("`limit`"));
    let bad_status = call(
        &t.app,
        Method::POST,
        "/api/v1/orders/ord_x/status",
        Some(&t.key_a),
        Some(json!({"status": "teleported"})),
    )
    .await;
    assert_eq!(bad_status.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&bad_status).starts_with("`status`"));
    let missing = call(
        &t.app,
        Method::GET,
        "/api/v1/orders/ord_doesnotexist",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let empty_patch = call(
        &t.app,
        Method::PATCH,
        "/api/v1/orders/ord_x",
        Some(&t.key_a),
        Some(json!({})),
    )
    .await;
    assert_eq!(empty_patch.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_route() {
    let t = test_app().await;
    let reply = call(&t.app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            // Every path parameter is declared.
            for name in path
                .split('{')
                .skip(1)
                .map(|p| p.split('}').next().expect("closing brace"))
            {
                let declared = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name && p["in"] == "path");
                assert!(
                    declared,
                    "{method} {path}: path parameter `{name}` is not declared"
                );
            }
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().expect("ref name");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    // The document is generated from the router: it holds every route there
    // is, including itself, and nothing else (the loop below checks the second half).
    documented.sort();
    assert!(
        documented.len() >= 31,
        "only {} routes documented",
        documented.len()
    );
    assert!(documented.contains(&("GET".to_owned(), "/api/openapi.json".to_owned())));
    assert_eq!(
        doc["paths"]["/api/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/NewOrderBody",
        "the order body is the typed request"
    );
    assert_eq!(
        doc["components"]["schemas"]["StopBody"]["additionalProperties"], false,
        "unknown stop fields are refused, and the document says so"
    );

    // And every documented route exists in the router (the fallback answers `no_such_route`).
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "ord_x")
            .replace("{pod_id}", "pod_x")
            .replace("{code}", "aaaaaaaaaaaaaaaaaaaaaaaa")
            .replace("{file}", "track.js");
        let reply = call(
            &t.app,
            method.parse().expect("method"),
            &concrete,
            None,
            None,
        )
        .await;
        assert_ne!(
            reply.json["error"]["code"], "no_such_route",
            "{method} {path}"
        );
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}
