//! Orders at the API edge (issue 18): a retried create makes one order
//! (`Idempotency-Key`), an order that cannot be tracked is refused with the
//! field and the reason (a stop off the map, at 0,0, a delivery first,
//! windows that cannot be met in order), and a stop without a time zone gets
//! the zone of its coordinates.

use crate::common;

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use portal_api::PortalConfig;
use road_graph::{LatLon, ProfileConfig, RoadGraph};
use serde_json::{Value, json};

/// The bundled Baltimore extract, imported once for the whole file.
fn baltimore() -> Arc<RoadGraph> {
    static GRAPH: OnceLock<Arc<RoadGraph>> = OnceLock::new();
    GRAPH
        .get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/osm/baltimore.osm.pbf");
            let (graph, _) = road_graph::import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {})
                .expect("the Baltimore extract imports");
            Arc::new(graph)
        })
        .clone()
}

async fn app_on_baltimore(config: PortalConfig) -> TestApp {
    test_app_with(config, Some(baltimore())).await
}

fn config() -> PortalConfig {
    PortalConfig::recommended("https://track.example.com")
}

/// `POST /api/v1/orders` with a raw body and an `Idempotency-Key`.
async fn create_with_key(t: &TestApp, api_key: &str, idempotency_key: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/orders")
        .header(header::AUTHORIZATION, format!("Bearer {api_key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", idempotency_key)
        .body(Body::from(body.to_owned()))
        .expect("request");
    send(&t.app, request).await
}

async fn order_count(t: &TestApp, api_key: &str) -> usize {
    let list = call(&t.app, Method::GET, "/api/v1/orders", Some(api_key), None).await;
    list.json["orders"].as_array().expect("orders").len()
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_gets_the_same_order() {
    let t = test_app().await;
    let body = order_body("LOAD-IDEM-1", Some("TRUCK-1")).to_string();
    let first = create_with_key(&t, &t.key_a, "5d8f0c1e-retry-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);

    // Four retries, as a flaky network makes them: one order, one link.
    for _ in 0..4 {
        let again = create_with_key(&t, &t.key_a, "5d8f0c1e-retry-1", &body).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.json["id"], first.json["id"]);
        assert_eq!(
            again.json["tracking_code"], first.json["tracking_code"],
            "the retry gets the link the lost answer carried"
        );
        assert_eq!(again.json["tracking_url"], first.json["tracking_url"]);
    }
    assert_eq!(order_count(&t, &t.key_a).await, 1);

    // The same body with its keys in another order is the same body.
    let reordered = r#"{"stops": STOPS, "vehicle_id": "TRUCK-1", "customer": {"email": "jane@example.com", "name": "Jane Receiver"}, "reference": "LOAD-IDEM-1"}"#
        .replace("STOPS", &order_body("x", None)["stops"].to_string());
    let again = create_with_key(&t, &t.key_a, "5d8f0c1e-retry-1", &reordered).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422_naming_the_header() {
    let t = test_app().await;
    let body = order_body("LOAD-IDEM-2", Some("TRUCK-1")).to_string();
    let first = create_with_key(&t, &t.key_a, "key-2", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);

    let other = order_body("LOAD-IDEM-2-OTHER", Some("TRUCK-1")).to_string();
    let refused = create_with_key(&t, &t.key_a, "key-2", &other).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json["error"]["code"], "idempotency_key_reused");
    assert!(
        error_message(&refused).contains("Idempotency-Key"),
        "{}",
        refused.text
    );
    assert_eq!(order_count(&t, &t.key_a).await, 1);

    let malformed = create_with_key(&t, &t.key_a, "", &body).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&malformed).contains("`Idempotency-Key`"));
}

#[tokio::test]
async fn two_tenants_with_one_key_get_two_orders() {
    let t = test_app().await;
    let body = order_body("LOAD-SHARED", Some("TRUCK-1")).to_string();
    let a = create_with_key(&t, &t.key_a, "order-1", &body).await;
    let b = create_with_key(&t, &t.key_b, "order-1", &body).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    assert_ne!(a.json["id"], b.json["id"]);
    assert_ne!(a.json["tracking_code"], b.json["tracking_code"]);
    // And neither tenant's retry reaches the other's order.
    let b_again = create_with_key(&t, &t.key_b, "order-1", &body).await;
    assert_eq!(b_again.json["id"], b.json["id"]);
}

#[tokio::test]
async fn a_key_survives_a_restart_and_expires_after_a_day() {
    let t = test_app().await;
    let body = order_body("LOAD-IDEM-3", None).to_string();
    let first = create_with_key(&t, &t.key_a, "key-3", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);

    // A second server on the same database (a restart, or another node).
    let store = portal_api::open_store(&t.db_url).await.expect("store");
    let state = portal_api::AppState::new(
        config(),
        store,
        Arc::new(portal_api::MemoryFanOut::new()),
        None,
        None,
    )
    .expect("state");
    let restarted = TestApp {
        app: portal_api::app(state.clone()),
        state,
        store: t.store.clone(),
        key_a: t.key_a.clone(),
        key_b: t.key_b.clone(),
        db_url: t.db_url.clone(),
        dir: tempfile::tempdir().expect("dir"),
    };
    let again = create_with_key(&restarted, &t.key_a, "key-3", &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);

    // The key was used 25 hours ago: honoured no more, a new order is made.
    let db = rusqlite::Connection::open(t.dir.path().join("portal.db")).expect("db");
    db.execute(
        "UPDATE idempotency_keys SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-25 hours')",
        [],
    )
    .expect("age the key");
    let later = create_with_key(&t, &t.key_a, "key-3", &body).await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.text);
    assert_ne!(later.json["id"], first.json["id"]);
}

#[tokio::test]
async fn a_replay_after_the_link_was_rotated_does_not_give_the_old_link() {
    let t = test_app().await;
    let body = order_body("LOAD-IDEM-4", None).to_string();
    let first = create_with_key(&t, &t.key_a, "key-4", &body).await;
    let id = first.json["id"].as_str().expect("id");
    let rotated = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/tracking-link/rotate"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let again = create_with_key(&t, &t.key_a, "key-4", &body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["id"], first.json["id"]);
    assert!(again.json.get("tracking_code").is_none(), "{}", again.text);
    assert_eq!(again.json["tracking_active"], true);
}

#[tokio::test]
async fn with_unique_references_a_second_order_is_a_409_naming_the_first() {
    let mut unique = config();
    unique.unique_order_references = true;
    let t = test_app_with(unique, None).await;
    let first = create_order(&t.app, &t.key_a, "PO-77", None).await;
    let second = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(order_body("PO-77", None)),
    )
    .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert_eq!(second.json["error"]["code"], "reference_taken");
    let first_id = first["id"].as_str().expect("id");
    assert!(error_message(&second).contains(first_id), "{}", second.text);
    // Another tenant's PO-77 is another reference.
    create_order(&t.app, &t.key_b, "PO-77", None).await;
    // Once the first is cancelled, its reference is free again.
    set_status(&t.app, &t.key_a, first_id, "cancelled").await;
    create_order(&t.app, &t.key_a, "PO-77", None).await;

    // Without the setting, references may repeat (the default).
    let t = test_app().await;
    create_order(&t.app, &t.key_a, "PO-77", None).await;
    create_order(&t.app, &t.key_a, "PO-77", None).await;
}

/// Creates `body` and expects a refusal: returns (status, code, message).
async fn refused(t: &TestApp, body: Value) -> (StatusCode, String, String) {
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert!(
        reply.status.is_client_error(),
        "{} {}",
        reply.status,
        reply.text
    );
    (
        reply.status,
        reply.json["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        error_message(&reply),
    )
}

#[tokio::test]
async fn a_stop_far_from_every_truck_road_is_refused_with_the_distance() {
    let t = app_on_baltimore(config()).await;
    // Paris on the Baltimore map.
    let mut body = order_body("LOAD-PARIS", None);
    body["stops"][1]["lat"] = json!(48.8566);
    body["stops"][1]["lon"] = json!(2.3522);
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "stop_off_map");
    assert!(message.starts_with("`stops[1].lat`"), "{message}");
    // Baltimore to Paris is about 6,200 km; the map's box is nearer, a bit.
    let km: f64 = message
        .split("more than ")
        .nth(1)
        .and_then(|rest| rest.split(" km").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a distance in km: {message}"));
    assert!((6000.0..6300.0).contains(&km), "{message}");
    assert!(message.contains("at most 2000 m"), "{message}");

    // The real stops of the test order are near roads: accepted.
    create_order(&t.app, &t.key_a, "LOAD-OK", None).await;
}

#[tokio::test]
async fn the_road_distance_limit_is_a_setting_and_the_message_gives_the_distance() {
    let mut strict = config();
    strict.max_stop_road_distance_m = 20.0;
    let t = app_on_baltimore(strict).await;
    // The middle of the Inner Harbor's water: hundreds of metres from a road.
    let water = LatLon::new(39.2840, -76.6060);
    let distance_m = baltimore()
        .nearest_edges(water, 2000.0, 1)
        .first()
        .expect("a road within 2 km of the harbor")
        .distance_m;
    assert!(distance_m > 20.0, "{distance_m}");
    let mut body = order_body("LOAD-WATER", None);
    body["stops"][0]["lat"] = json!(water.lat);
    body["stops"][0]["lon"] = json!(water.lon);
    let (status, code, message) = refused(&t, body.clone()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "stop_off_map")
    );
    assert!(message.starts_with("`stops[0].lat`"), "{message}");
    let said_m: f64 = message
        .split(") is ")
        .nth(1)
        .and_then(|rest| rest.split(" m from the nearest truck road").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a distance in m: {message}"));
    assert!(
        (said_m - distance_m).abs() <= 2.0,
        "{said_m} vs {distance_m}: {message}"
    );
    assert!(message.contains("at most 20 m"), "{message}");

    // The default (2 km) takes a stop that far off the road: a yard.
    let t = app_on_baltimore(config()).await;
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    // A PATCH that moves a stop off the map is refused too.
    let id = reply.json["id"].as_str().expect("id");
    let mut stops = order_body("x", None)["stops"].clone();
    stops[1]["lat"] = json!(48.8566);
    stops[1]["lon"] = json!(2.3522);
    let patch = call(
        &t.app,
        Method::PATCH,
        &format!("/api/v1/orders/{id}"),
        Some(&t.key_a),
        Some(json!({"stops": stops})),
    )
    .await;
    assert_eq!(
        patch.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        patch.text
    );
    assert!(error_message(&patch).starts_with("`stops[1].lat`"));
}

#[tokio::test]
async fn a_stop_at_zero_zero_is_a_failed_geocode() {
    let t = test_app().await;
    let mut body = order_body("LOAD-NULL", None);
    body["stops"][0]["lat"] = json!(0.0);
    body["stops"][0]["lon"] = json!(0.0);
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "null_island")
    );
    assert!(message.starts_with("`stops[0].lat`"), "{message}");
    assert!(message.contains("0,0"), "{message}");
}

#[tokio::test]
async fn a_delivery_before_every_pickup_is_refused() {
    let t = test_app().await;
    let mut body = order_body("LOAD-BACKWARDS", None);
    let stops = body["stops"].as_array_mut().expect("stops");
    stops.swap(0, 1);
    // Windows too, so only the kinds are out of order.
    let w0 = stops[0]["window"].clone();
    stops[0]["window"] = stops[1]["window"].clone();
    stops[1]["window"] = w0;
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "delivery_before_pickup")
    );
    assert!(message.starts_with("`stops[0].kind`"), "{message}");
    assert!(
        message.contains("stops[1]"),
        "names the first pickup: {message}"
    );
}

#[tokio::test]
async fn windows_that_cannot_be_met_in_order_are_refused() {
    let t = test_app().await;

    // A window that ends before it starts.
    let mut body = order_body("LOAD-W1", None);
    body["stops"][1]["window"] =
        json!({"from": "2025-11-25T20:00:00Z", "to": "2025-11-25T18:00:00Z"});
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert_eq!(message, "`stops[1].window.to`: is before `from`");

    // The delivery's window closes before the pickup's opens.
    let mut body = order_body("LOAD-W2", None);
    body["stops"][1]["window"] =
        json!({"from": "2025-11-25T10:00:00Z", "to": "2025-11-25T12:00:00Z"});
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "window_order")
    );
    assert!(message.starts_with("`stops[1].window.to`"), "{message}");
    assert!(
        message.contains("2025-11-25T12:00:00Z") && message.contains("2025-11-25T13:00:00Z"),
        "{message}"
    );

    // A second pickup whose window opens after the last delivery's closes.
    let mut body = order_body("LOAD-W3", None);
    let mut late_pickup = body["stops"][0].clone();
    late_pickup["window"] = json!({"from": "2025-11-26T09:00:00Z", "to": "2025-11-26T10:00:00Z"});
    body["stops"]
        .as_array_mut()
        .expect("stops")
        .push(late_pickup);
    let (status, code, message) = refused(&t, body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "window_order")
    );
    assert!(message.starts_with("`stops[2].window.from`"), "{message}");
    assert!(
        message.contains("stops[1]"),
        "names the last delivery: {message}"
    );

    // Overlapping windows in order are fine.
    let mut body = order_body("LOAD-W4", None);
    body["stops"][1]["window"] =
        json!({"from": "2025-11-25T14:00:00Z", "to": "2025-11-25T16:00:00Z"});
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

#[tokio::test]
async fn a_stop_without_a_time_zone_gets_the_zone_of_its_place() {
    let t = test_app().await;
    let mut body = order_body("LOAD-TZ", Some("TRUCK-TZ"));
    for stop in body["stops"].as_array_mut().expect("stops") {
        stop.as_object_mut().expect("stop").remove("time_zone");
    }
    // A third stop in Phoenix (no daylight saving), given no zone either.
    body["stops"].as_array_mut().expect("stops").push(json!({
        "kind": "delivery", "name": "Phoenix DC", "lat": 33.4484, "lon": -112.0740,
        "window": {"from": "2025-11-27T15:00:00Z", "to": "2025-11-27T17:00:00Z"}
    }));
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let stops = &reply.json["stops"];
    assert_eq!(stops[0]["time_zone"], "America/New_York");
    assert_eq!(stops[0]["tz_abbrev"], "EST");
    assert_eq!(stops[0]["window"]["local"], "Tue 25 Nov, 08:00–10:00 EST");
    assert_eq!(stops[2]["time_zone"], "America/Phoenix");
    assert_eq!(stops[2]["tz_abbrev"], "MST");

    // The public JSON shows the same.
    let public = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&reply.json)),
        None,
        None,
    )
    .await;
    assert_eq!(public.json["stops"][1]["time_zone"], "America/New_York");
    assert_eq!(public.json["stops"][1]["tz_abbrev"], "EST");
    assert_eq!(
        public.json["stops"][2]["window"]["local"],
        "Thu 27 Nov, 08:00–10:00 MST"
    );

    // A zone given is kept, even when it is not the place's.
    let mut body = order_body("LOAD-TZ-2", None);
    body["stops"][0]["time_zone"] = json!("America/Chicago");
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    assert_eq!(reply.json["stops"][0]["time_zone"], "America/Chicago");
    assert_eq!(reply.json["stops"][0]["tz_abbrev"], "CST");
}
