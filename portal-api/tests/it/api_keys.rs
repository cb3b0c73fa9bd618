//! API keys (issue 17): several per tenant, named and scoped, created, listed and
//! revoked through the API with a key of scope `admin`. A revoked key is refused
//! from the next request on, on this node and on another node sharing the store;
//! a key without the scope a route needs gets 403; listings show a prefix, never
//! the key; one tenant can neither see nor revoke another's keys. And no secret
//! (API key, tracking code) is ever written to the database in the clear.

use crate::common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::*;
use portal_api::{AppState, MemoryFanOut, PortalConfig};
use serde_json::{Value, json};

/// Creates a key through the API with `admin_key`; returns the whole answer.
async fn new_key(app: &axum::Router, admin_key: &str, name: &str, scopes: &[&str]) -> Value {
    let reply = call(
        app,
        Method::POST,
        "/api/v1/api-keys",
        Some(admin_key),
        Some(json!({"name": name, "scopes": scopes})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json
}

fn secret(key: &Value) -> String {
    key["api_key"].as_str().expect("the new key").to_owned()
}

async fn list_orders_with(app: &axum::Router, key: &str) -> Reply {
    call(app, Method::GET, "/api/v1/orders", Some(key), None).await
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_on_every_node_and_the_other_key_still_works() {
    let t = test_app().await;
    // A second node: its own store handle and app on the same database.
    let store_2 = portal_api::open_store(&t.db_url)
        .await
        .expect("node 2 store");
    let state_2 = AppState::new(
        PortalConfig::recommended("https://track.example.com"),
        store_2,
        Arc::new(MemoryFanOut::new()),
        None,
        None,
    )
    .expect("node 2 state");
    let node_2 = portal_api::app(state_2);

    let first = new_key(&t.app, &t.key_a, "dispatch desk", &["orders"]).await;
    let second = new_key(&t.app, &t.key_a, "night shift", &["orders"]).await;
    for key in [secret(&first), secret(&second)] {
        for app in [&t.app, &node_2] {
            assert_eq!(list_orders_with(app, &key).await.status, StatusCode::OK);
        }
    }

    let id = first["id"].as_str().expect("key id");
    let revoked = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert!(revoked.json["revoked_at"].is_string());

    // The very next request, on either node: no cache stands in the way.
    for app in [&t.app, &node_2] {
        let refused = list_orders_with(app, &secret(&first)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
        assert_eq!(refused.json["error"]["code"], "unauthorized");
        assert_eq!(
            list_orders_with(app, &secret(&second)).await.status,
            StatusCode::OK
        );
    }
    // Revoking again changes nothing (the first revocation time stays).
    let again = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(again.json["revoked_at"], revoked.json["revoked_at"]);
}

#[tokio::test]
async fn a_key_does_only_what_its_scopes_allow() {
    let t = test_app().await;
    let eld = secret(&new_key(&t.app, &t.key_a, "eld feed", &["positions"]).await);
    let analyst = secret(&new_key(&t.app, &t.key_a, "analyst", &["read"]).await);

    let refused = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&eld),
        Some(order_body("LOAD-1", Some("UNIT-1"))),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "forbidden");
    assert!(
        error_message(&refused).ends_with("needs scope `orders`"),
        "{}",
        refused.text
    );
    let fix = json!([{"vehicle_id": "UNIT-1", "time": Utc::now().to_rfc3339(), "lat": 39.28, "lon": -76.6}]);
    let posted = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&eld),
        Some(fix.clone()),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.text);
    assert_eq!(
        list_orders_with(&t.app, &eld).await.status,
        StatusCode::FORBIDDEN
    );

    // `read` reads, and nothing more.
    let order = create_order(&t.app, &t.key_a, "LOAD-2", None).await;
    let id = order["id"].as_str().expect("id");
    let read = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        Some(&analyst),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(
        list_orders_with(&t.app, &analyst).await.status,
        StatusCode::OK
    );
    let writes = [
        (
            Method::POST,
            "/api/v1/orders".to_owned(),
            Some(order_body("LOAD-3", None)),
        ),
        (
            Method::PATCH,
            format!("/api/v1/orders/{id}"),
            Some(json!({"reference": "X"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/status"),
            Some(json!({"status": "dispatched"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/tracking-link/rotate"),
            None,
        ),
        (Method::POST, "/api/v1/positions".to_owned(), Some(fix)),
        (Method::GET, "/api/v1/api-keys".to_owned(), None),
    ];
    for (method, uri, body) in writes {
        let reply = call(&t.app, method.clone(), &uri, Some(&analyst), body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            reply.text
        );
    }
    // Only `admin` manages keys, even a key with every other scope.
    let worker =
        secret(&new_key(&t.app, &t.key_a, "worker", &["orders", "positions", "read"]).await);
    let made = call(
        &t.app,
        Method::POST,
        "/api/v1/api-keys",
        Some(&worker),
        Some(json!({"name": "escalate", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(made.status, StatusCode::FORBIDDEN, "{}", made.text);
    assert!(error_message(&made).ends_with("needs scope `admin`"));
}

#[tokio::test]
async fn a_bad_key_request_names_the_field() {
    let t = test_app().await;
    let cases = [
        (json!({"scopes": ["orders"]}), "`name`"),
        (json!({"name": "x"}), "`scopes`"),
        (json!({"name": "x", "scopes": []}), "`scopes`"),
        (
            json!({"name": "x", "scopes": ["orders", "write"]}),
            "unknown scope `write`",
        ),
        (
            json!({"name": "x", "scopes": ["orders"], "expires": "never"}),
            "`expires`",
        ),
        (json!({"name": " ", "scopes": ["orders"]}), "`name`"),
    ];
    for (body, expected) in cases {
        let reply = call(
            &t.app,
            Method::POST,
            "/api/v1/api-keys",
            Some(&t.key_a),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "invalid_field");
        assert!(
            error_message(&reply).contains(expected),
            "{body}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_listing_shows_each_keys_prefix_and_never_the_key() {
    let t = test_app().await;
    let made = new_key(&t.app, &t.key_a, "samsara webhook", &["positions", "read"]).await;
    let key = secret(&made);
    assert_eq!(made["scopes"], json!(["positions", "read"]));
    assert_eq!(made["prefix"].as_str(), Some(&key[..12]));

    let listed = call(
        &t.app,
        Method::GET,
        "/api/v1/api-keys",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(!listed.text.contains(&key), "the listing shows the key");
    assert!(
        !listed.text.contains(&t.key_a),
        "the listing shows the caller's key"
    );
    let keys = listed.json["api_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "default");
    assert_eq!(
        keys[0]["scopes"],
        json!(["orders", "positions", "read", "admin"])
    );
    assert_eq!(keys[0]["prefix"].as_str(), Some(&t.key_a[..12]));
    assert_eq!(keys[1]["id"], made["id"]);
    assert_eq!(keys[1]["prefix"], made["prefix"]);
    assert!(keys.iter().all(|k| k.get("api_key").is_none()));
}

#[tokio::test]
async fn another_tenant_can_neither_list_nor_revoke_my_keys() {
    let t = test_app().await;
    let mine = new_key(&t.app, &t.key_a, "mine", &["orders"]).await;
    let id = mine["id"].as_str().expect("id");

    let theirs = call(
        &t.app,
        Method::GET,
        "/api/v1/api-keys",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(theirs.json["api_keys"].as_array().expect("keys").len(), 1);
    assert!(!theirs.text.contains(id));

    let stolen = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        Some(&t.key_b),
        None,
    )
    .await;
    let unknown = call(
        &t.app,
        Method::DELETE,
        "/api/v1/api-keys/key_nosuchkey0000000",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    assert_eq!(
        stolen.text, unknown.text,
        "another tenant's key is a plain 404"
    );
    assert_eq!(
        list_orders_with(&t.app, &secret(&mine)).await.status,
        StatusCode::OK
    );
}

/// Every byte SQLite wrote for the test app (the database and its WAL).
fn database_bytes(t: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(t.dir.path()).expect("the data dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().contains("portal.db") {
            bytes.extend(std::fs::read(&path).expect("readable"));
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_secret_is_written_to_the_database_in_the_clear() {
    let t = test_app().await;
    let key = secret(&new_key(&t.app, &t.key_a, "ci", &["orders"]).await);
    let order = create_order(&t.app, &t.key_a, "LOAD-SECRET", None).await;
    let first_code = code_of(&order);
    let id = order["id"].as_str().expect("id");
    let rotated = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/tracking-link/rotate"),
        Some(&t.key_a),
        None,
    )
    .await;
    let second_code = code_of(&rotated.json);
    // The public lookup still works: it hashes the code it is given.
    let page = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{second_code}"),
        None,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);

    let bytes = database_bytes(&t);
    assert!(
        contains(&bytes, "LOAD-SECRET"),
        "the check reads the real files"
    );
    for secret in [&key, &t.key_a, &first_code, &second_code] {
        assert!(
            !contains(&bytes, secret),
            "`{}…` is in the database",
            &secret[..6]
        );
    }
}

/// Every tenant route checks a scope: a key that may only post positions is
/// refused (403, before anything else is looked at) on every orders and
/// API-key route of the OpenAPI document, so a route added later without a
/// scope fails here.
#[tokio::test]
async fn every_orders_and_key_route_refuses_a_positions_only_key() {
    let t = test_app().await;
    let eld = secret(&new_key(&t.app, &t.key_a, "eld feed", &["positions"]).await);
    let order = create_order(&t.app, &t.key_a, "LOAD-SCOPE", None).await;
    let id = order["id"].as_str().expect("id");
    let mut checked = 0;
    let doc = serde_json::to_value(portal_api::openapi_document()).expect("the document");
    let routes: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods: Vec<String> = item
                .as_object()
                .expect("a path item")
                .keys()
                .cloned()
                .collect();
            methods
                .into_iter()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    for (method, path) in &routes {
        if !(path.starts_with("/api/v1/orders") || path.starts_with("/api/v1/api-keys")) {
            continue;
        }
        let uri = path.replace("{id}", id).replace("{pod_id}", "pod_x");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let reply = call(&t.app, method.clone(), &uri, Some(&eld), Some(json!({}))).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "forbidden");
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} routes checked");
}
