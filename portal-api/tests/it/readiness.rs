//! `/readyz` and `/healthz` as an orchestrator sees them, on the router without
//! a socket: a portal whose map is not installed yet is alive but not ready
//! (503, naming the map), and ready once the map is in; a portal whose bus
//! consumer has not started says so too.

use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::{send, test_app};

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn tiny_map() -> Arc<road_graph::RoadGraph> {
    let mut drawn = road_graph::DrawnMap::new("a---b---c", 100.0);
    drawn.way("abc", &[("highway", "primary")]);
    Arc::new(drawn.build().expect("graph").0)
}

#[tokio::test]
async fn a_portal_without_its_map_is_alive_but_not_ready_until_the_map_is_installed() {
    let t = test_app().await;
    let health = send(&t.app, get("/healthz")).await;
    assert_eq!(health.status, 200, "liveness does not wait for the map");

    let waiting = send(&t.app, get("/readyz")).await;
    assert_eq!(waiting.status, 503);
    assert_eq!(waiting.json["status"], "not_ready");
    assert_eq!(waiting.json["missing"], serde_json::json!(["map"]));
    assert_eq!(waiting.json["error"]["code"], "not_ready");
    assert!(
        waiting.json["checks"]["map"]
            .as_str()
            .is_some_and(|reason| reason.contains("not loaded")),
        "{}",
        waiting.json
    );
    assert_eq!(waiting.json["checks"]["store"], "ok");

    t.state.install_map(tiny_map());
    let ready = send(&t.app, get("/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert_eq!(ready.json["status"], "ready");
    for check in ["map", "bus", "store"] {
        assert_eq!(ready.json["checks"][check], "ok");
    }
}

/// A position intake that counts for a bus: the portal must wait for its
/// consumer before saying ready.
#[derive(Debug)]
struct Bus;

impl portal_api::PositionIntake for Bus {
    fn submit(&self, _positions: Vec<engine::Position>) -> portal_api::IntakeFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_portal_with_a_bus_waits_for_its_consumer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ready.db").display());
    let store = portal_api::open_store(&url).await.expect("store");
    let state = portal_api::AppState::new(
        portal_api::PortalConfig::recommended("https://track.example.com"),
        store,
        Arc::new(portal_api::MemoryFanOut::new()),
        Some(Arc::new(Bus)),
        Some(tiny_map()),
    )
    .expect("state");
    let app = portal_api::app(state.clone());
    let waiting = send(&app, get("/readyz")).await;
    assert_eq!(waiting.status, 503);
    assert_eq!(waiting.json["missing"], serde_json::json!(["bus"]));
    state.mark_bus_consuming();
    assert_eq!(send(&app, get("/readyz")).await.status, 200);
}
