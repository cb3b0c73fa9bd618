//! The WebSocket with a real client over a real socket (in-process server): a
//! snapshot first, then deltas; a viewer that falls behind gets the latest state
//! (a fresh snapshot) instead of a queue of stale deltas; a fan-out reconnect
//! makes every viewer resync.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use common::*;
use futures::StreamExt;
use portal_api::{AppState, FanOut, LiveKind, LiveMessage, MemoryFanOut, PortalConfig};
use tokio_tungstenite::tungstenite::Message;

async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = portal_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn next_text(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .ok()??
            .ok()?
        {
            Message::Text(text) => return serde_json::from_str(&text).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// One node on a fresh store, with one order and a viewer on its page that
/// has had its snapshot.
struct Watched {
    _dir: tempfile::TempDir,
    store: Arc<dyn portal_api::Store>,
    tenant: portal_api::Tenant,
    fanout: Arc<MemoryFanOut>,
    order_id: engine::OrderId,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

async fn watched(config: PortalConfig, reference: &str) -> Watched {
    let dir = tempfile::tempdir().expect("dir");
    let store = portal_api::open_store(&format!("sqlite://{}", dir.path().join("ws.db").display()))
        .await
        .expect("store");
    let (tenant, key) = portal_api::create_tenant(&*store, "T")
        .await
        .expect("tenant");
    let fanout = Arc::new(MemoryFanOut::new());
    let state = AppState::new(config, store.clone(), fanout.clone(), None, None).expect("state");
    let app = portal_api::app(state.clone());
    let order = create_order(&app, &key, reference, Some("TRUCK-W")).await;
    let order_id = engine::OrderId(order["id"].as_str().expect("id").to_owned());
    let addr = serve(state).await;
    let url = format!("ws://{addr}/t/{}/ws", code_of(&order));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let snapshot = next_text(&mut ws).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    Watched {
        _dir: dir,
        store,
        tenant,
        fanout,
        order_id,
        ws,
    }
}

#[tokio::test]
async fn a_slow_viewer_gets_the_latest_state_not_a_queue() {
    let Watched {
        fanout,
        order_id,
        mut ws,
        ..
    } = watched(PortalConfig::recommended("http://127.0.0.1"), "SLOW-1").await;

    // A burst far larger than the per-order ring, all at once: the connection
    // task cannot send them in between, so it falls behind.
    for i in 0..200 {
        let text = format!(
            "{{\"type\":\"position\",\"vehicle\":{{\"lat\":{},\"lon\":-76.6,\"at\":\"2025-11-25T14:00:00Z\"}}}}",
            39.0 + f64::from(i) * 1e-4
        );
        fanout
            .hub()
            .dispatch(LiveMessage::new(order_id.clone(), LiveKind::Position, text));
    }
    let mut messages = Vec::new();
    while let Ok(Some(Some(Ok(Message::Text(text))))) =
        tokio::time::timeout(Duration::from_millis(500), ws.next())
            .await
            .map(Some)
    {
        messages.push(serde_json::from_str::<serde_json::Value>(&text).expect("json"));
    }
    assert!(
        messages.len() < 50,
        "{} messages: the slow viewer was queued for",
        messages.len()
    );
    assert!(
        messages.iter().any(|m| m["type"] == "snapshot"),
        "the viewer was resynced with a snapshot"
    );

    // A fan-out reconnect: every viewer resyncs.
    fanout.hub().dispatch(LiveMessage::new(
        engine::OrderId(String::new()),
        LiveKind::Resync,
        "",
    ));
    let resynced = next_text(&mut ws).await.expect("a message");
    assert_eq!(resynced["type"], "snapshot");
}

#[tokio::test]
async fn a_link_rotated_where_this_node_cannot_hear_of_it_closes_within_three_heartbeats() {
    let mut config = PortalConfig::recommended("http://127.0.0.1");
    config.heartbeat = Duration::from_secs(1);
    let Watched {
        store,
        tenant,
        order_id,
        mut ws,
        ..
    } = watched(config, "ROT-1").await;

    // Rotated on another node whose fan-out cannot reach this one: no `link`
    // message comes, only the store knows.
    store
        .rotate_tracking_code(tenant.id, order_id, portal_api::new_tracking_code())
        .await
        .expect("rotates");
    let rotated = std::time::Instant::now();
    let closing = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {} // heartbeats
                other => panic!("the page broke: {other:?}"),
            }
        }
    };
    let close = tokio::time::timeout(Duration::from_secs(6), closing)
        .await
        .expect("the page still open 6 s after its link was rotated");
    let frame = close.expect("a close frame");
    assert_eq!(u16::from(frame.code), 4404, "{frame:?}");
    assert!(
        rotated.elapsed() <= Duration::from_secs(4),
        "closed {:?} after the rotation (three heartbeats are 3 s)",
        rotated.elapsed()
    );
}

#[tokio::test]
async fn a_plain_get_on_the_websocket_route_is_a_json_400() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "WS-1", None).await;
    let reply = call(
        &t.app,
        Method::GET,
        &format!("/t/{}/ws", code_of(&order)),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["code"], "websocket_expected");
    let unknown = call(
        &t.app,
        Method::GET,
        "/t/abcdefghijklmnopqrstuvwx/ws",
        None,
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn redis_fan_out_delivers_once_per_update_and_keeps_the_latest() {
    let up = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "Redis is required under CI"
        );
        eprintln!("SKIPPED: Redis at 127.0.0.1:6379 is not available");
        return;
    }
    let a = portal_api::RedisFanOut::connect("redis://127.0.0.1:6379")
        .await
        .expect("node a");
    let b = portal_api::RedisFanOut::connect("redis://127.0.0.1:6379")
        .await
        .expect("node b");
    let order = engine::OrderId(format!("ord_test{}", std::process::id()));
    let mut on_a = a.hub().subscribe(&order);
    let mut on_b = b.hub().subscribe(&order);
    a.publish(LiveMessage::new(
        order.clone(),
        LiveKind::Position,
        "{\"type\":\"position\",\"n\":1}",
    ))
    .await
    .expect("publish");
    for sub in [&mut on_a, &mut on_b] {
        let got = tokio::time::timeout(Duration::from_secs(3), sub.recv())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(got.text.as_str(), "{\"type\":\"position\",\"n\":1}");
        assert!(sub.try_recv().is_err(), "exactly one delivery per node");
    }
    let latest = b.latest(order).await.expect("latest");
    assert_eq!(
        latest.position.as_deref(),
        Some("{\"type\":\"position\",\"n\":1}")
    );
}

/// Issue 18: an internal note or exception never goes over the WebSocket,
/// neither as a delta nor in a snapshot; a public one does, and so does a
/// status whose note is internal (without the note).
#[tokio::test]
async fn internal_notes_never_reach_the_websocket() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "WS-VIS", Some("TRUCK-W")).await;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    let uri = format!("/api/v1/orders/{id}/status");
    let post =
        |body: serde_json::Value| call(&t.app, Method::POST, &uri, Some(&t.key_a), Some(body));
    // Before the viewer connects: in the snapshot, if anywhere.
    post(serde_json::json!({"status": "note", "note": "Gate code 4471"})).await;
    let addr = serve(t.state.clone()).await;
    let url = format!("ws://{addr}/t/{}/ws", code_of(&order));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let snapshot = next_text(&mut ws).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["feed"]["state"], "none");
    let mut seen = vec![snapshot];

    // While connected: an internal exception, an internal note on a status,
    // then a public note.
    post(serde_json::json!({"status": "exception", "note": "Reefer alarm"})).await;
    post(serde_json::json!({"status": "at_pickup", "note": "Driver asleep in the cab"})).await;
    post(
        serde_json::json!({"status": "note", "note": "Loading at dock 3", "visibility": "public"}),
    )
    .await;
    while let Some(message) = next_text(&mut ws).await {
        let done = message["event"]["note"] == "Loading at dock 3";
        seen.push(message);
        if done {
            break;
        }
    }
    let text = serde_json::Value::Array(seen.clone()).to_string();
    for secret in ["4471", "Reefer", "asleep"] {
        assert!(
            !text.contains(secret),
            "`{secret}` went over the WebSocket: {text}"
        );
    }
    let kinds: Vec<(&str, &str)> = seen[1..]
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap_or(""),
                m["event"]["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("status", "status"), ("status", "note")],
        "the status (without its note) and the public note; nothing for the internal exception"
    );
    assert!(seen[1]["event"]["note"].is_null());
    assert_eq!(seen[2]["track"]["events"].as_array().map(Vec::len), Some(4));
}
