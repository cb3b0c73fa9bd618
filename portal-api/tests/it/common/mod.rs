//! Shared test setup: an app on a fresh SQLite file (or on a backend of
//! `stores`) with two tenants, and a helper that sends one request through
//! the router without a socket.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use portal_api::{AppState, FanOut, MemoryFanOut, PortalConfig, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

#[allow(unused_imports)]
pub use store::testing as stores;

pub struct TestApp {
    pub app: Router,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub key_a: String,
    pub key_b: String,
    /// The store's URL (a second node may open it too).
    pub db_url: String,
    pub dir: tempfile::TempDir,
}

pub async fn test_app_with(
    config: PortalConfig,
    graph: Option<Arc<road_graph::RoadGraph>>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("portal.db").display());
    let store = portal_api::open_store(&url).await.expect("store opens");
    app_on(config, graph, store, url, dir).await
}

/// The app of [`test_app`] on a store already open at `url` (a backend of
/// `stores`, which the caller keeps and finishes).
pub async fn test_app_on(store: Arc<dyn Store>, url: String) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = PortalConfig::recommended("https://track.example.com");
    app_on(config, None, store, url, dir).await
}

/// The app of [`test_app`] publishing through `fanout` (Redis, say).
pub async fn test_app_with_fanout(fanout: Arc<dyn FanOut>) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("portal.db").display());
    let store = portal_api::open_store(&url).await.expect("store opens");
    let config = PortalConfig::recommended("https://track.example.com");
    app_with(config, None, store, fanout, url, dir).await
}

async fn app_on(
    config: PortalConfig,
    graph: Option<Arc<road_graph::RoadGraph>>,
    store: Arc<dyn Store>,
    url: String,
    dir: tempfile::TempDir,
) -> TestApp {
    app_with(
        config,
        graph,
        store,
        Arc::new(MemoryFanOut::new()),
        url,
        dir,
    )
    .await
}

async fn app_with(
    config: PortalConfig,
    graph: Option<Arc<road_graph::RoadGraph>>,
    store: Arc<dyn Store>,
    fanout: Arc<dyn FanOut>,
    url: String,
    dir: tempfile::TempDir,
) -> TestApp {
    let (_, key_a) = portal_api::create_tenant(&*store, "Acme Brokerage")
        .await
        .expect("tenant a");
    let (_, key_b) = portal_api::create_tenant(&*store, "Other Logistics")
        .await
        .expect("tenant b");
    let state = AppState::new(config, store.clone(), fanout, None, graph).expect("valid config");
    TestApp {
        app: portal_api::app(state.clone()),
        state,
        store,
        key_a,
        key_b,
        db_url: url,
        dir,
    }
}

pub async fn test_app() -> TestApp {
    test_app_with(PortalConfig::recommended("https://track.example.com"), None).await
}

/// A response: status, headers, body (JSON when it parses, else a string).
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
    pub text: String,
    /// The body's bytes as they came (compressed, when the reply says so).
    pub raw: Vec<u8>,
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40000))));
    let response = app.clone().oneshot(request).await.expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
        text,
        raw: bytes.to_vec(),
    }
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("request");
    send(app, request).await
}

/// A two-stop order in Baltimore with windows in New York time.
pub fn order_body(reference: &str, vehicle: Option<&str>) -> Value {
    json!({
        "reference": reference,
        "customer": {"name": "Jane Receiver", "email": "jane@example.com"},
        "vehicle_id": vehicle,
        "stops": [
            {"kind": "pickup", "name": "Harbor Warehouse", "address": "401 Key Hwy, Baltimore, MD",
             "lat": 39.2780, "lon": -76.6110, "time_zone": "America/New_York",
             "window": {"from": "2025-11-25T13:00:00Z", "to": "2025-11-25T15:00:00Z"}},
            {"kind": "delivery", "name": "Canton Market", "address": "2400 Boston St, Baltimore, MD",
             "lat": 39.2805, "lon": -76.5760, "time_zone": "America/New_York",
             "window": {"from": "2025-11-25T18:00:00Z", "to": "2025-11-25T20:00:00Z"}}
        ]
    })
}

/// Creates an order for the tenant with `key`; returns its JSON.
pub async fn create_order(
    app: &Router,
    key: &str,
    reference: &str,
    vehicle: Option<&str>,
) -> Value {
    let reply = call(
        app,
        Method::POST,
        "/api/v1/orders",
        Some(key),
        Some(order_body(reference, vehicle)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json
}

pub fn code_of(order: &Value) -> String {
    order["tracking_code"]
        .as_str()
        .expect("a tracking code")
        .to_owned()
}

pub async fn set_status(app: &Router, key: &str, id: &str, status: &str) -> Reply {
    call(
        app,
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(key),
        Some(json!({"status": status})),
    )
    .await
}

/// The error message of a JSON error reply.
pub fn error_message(reply: &Reply) -> String {
    reply.json["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// `POST /api/v1/orders/{id}/status` with tenant A's key (a status, note or
/// exception, with whatever fields `body` carries).
pub async fn post_status(t: &TestApp, id: &str, body: Value) -> Reply {
    call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(&t.key_a),
        Some(body),
    )
    .await
}

/// The public JSON of a tracking code (`GET /api/v1/track/{code}`), which must
/// answer 200.
pub async fn public_track(t: &TestApp, code: &str) -> Value {
    let reply = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}
