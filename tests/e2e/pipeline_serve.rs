//! The live pipeline end to end, through the real binary: `tracker serve` with its
//! demo fleet on a temporary store, a customer's WebSocket on a demo tracking
//! page sees the snapshot, then the truck move (a `position` delta on the road)
//! and an engine ETA with its p10–p90 window — over the in-process bus, and over
//! Kafka (the tansu broker of `TRACKER_TEST_KAFKA`; required when `CI` is set).

use crate::portal_support;

use std::time::{Duration, Instant};

use portal_support::{Server, Ws, next_json, sqlite_url, ws_connect};
use serde_json::Value;

/// Reads deltas until a `position` and an `eta` with its window came, or the
/// time is up; returns them.
async fn position_and_eta(ws: &mut Ws, limit: Duration) -> (Vec<Value>, Option<Value>) {
    let deadline = Instant::now() + limit;
    let mut positions = Vec::new();
    let mut eta = None;
    while positions.len() < 2 || eta.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = next_json(ws, left).await else {
            break;
        };
        match message["type"].as_str() {
            Some("position") => positions.push(message),
            Some("eta") => eta = Some(message),
            _ => {}
        }
    }
    (positions, eta)
}

fn code_of(url: &str) -> &str {
    url.rsplit('/').next().expect("a code at the end")
}

fn check_page_is_live(snapshot: &Value, positions: &[Value], eta: Option<&Value>) {
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["reference"], "DEMO-1001");
    assert!(
        positions.len() >= 2,
        "the truck moved on the page: {positions:?}"
    );
    let (a, b) = (&positions[0]["vehicle"], &positions[1]["vehicle"]);
    assert!(
        a["lat"] != b["lat"] || a["lon"] != b["lon"] || a["at"] != b["at"],
        "two different positions: {a} {b}"
    );
    let eta = eta.expect("an engine ETA reached the page");
    let window = &eta["eta"];
    let (at, p10, p90) = (
        window["at"].as_str().expect("at"),
        window["p10"].as_str().expect("p10"),
        window["p90"].as_str().expect("p90"),
    );
    // RFC 3339 UTC text sorts as time.
    assert!(p10 <= at && at <= p90, "p10 {p10} <= eta {at} <= p90 {p90}");
    assert!(p10 < p90, "a real window: {p10}..{p90}");
}

/// Opens the tracking page of `url` on `server` and checks it is live within
/// `limit`; returns the socket, still open.
async fn watch_live(server: &Server, url: &str, limit: Duration) -> Ws {
    let mut ws = ws_connect(&server.ws_url(code_of(url))).await;
    let snapshot = next_json(&mut ws, Duration::from_secs(10))
        .await
        .expect("a snapshot");
    let (positions, eta) = position_and_eta(&mut ws, limit).await;
    check_page_is_live(&snapshot, &positions, eta.as_ref());
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_truck_moves_on_its_page_and_its_eta_arrives_over_the_memory_bus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "demo.db");
    let server = Server::start(dir.path(), &["--store", &store, "--demo-speedup", "200"], 1);
    let url = server.demo_urls[0].clone();
    let mut ws = watch_live(&server, &url, Duration::from_secs(60)).await;
    // On until the truck's device clock is five minutes ahead of the wall clock.
    let ahead = chrono::Utc::now() + chrono::TimeDelta::minutes(5);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = next_json(&mut ws, left)
            .await
            .expect("the demo clock runs ahead");
        let at = message["vehicle"]["at"].as_str().unwrap_or_default();
        if message["type"] == "position"
            && chrono::DateTime::parse_from_rfc3339(at).is_ok_and(|t| t > ahead)
        {
            break;
        }
    }
    drop(ws);
    drop(server);

    // Restarted on the same store at the real pace, the truck goes on where it
    // was: its demo clock ran ahead of the wall clock, and the new one starts
    // after its newest stored fix, not minutes behind it (where every fix
    // would be dropped as stale).
    // (Its link is new: codes are stored as hashes only, so a reused demo
    // order's code is rotated to print it.)
    let server = Server::start(dir.path(), &["--store", &store], 1);
    let url = server.demo_urls[0].clone();
    let page = portal_support::client()
        .get(&url)
        .send()
        .await
        .expect("demo page");
    assert!(
        page.text().await.expect("html").contains("DEMO-1001"),
        "the demo order is reused"
    );
    watch_live(&server, &url, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_through_kafka_reach_the_page_with_an_eta() {
    let Some((brokers, topic)) = portal_support::kafka_broker("pipeline") else {
        return;
    };
    let bus = format!("kafka://{brokers}/{topic}");
    let group = format!("g-{topic}");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "kafka.db");
    // The demo fleet produces to the topic (in real time: Kafka ingest refuses
    // device times from the future), the consumer group reads it back.
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--bus", &bus, "--kafka-group", &group],
        1,
    );
    let url = &server.demo_urls[0];
    watch_live(&server, url, Duration::from_secs(90)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_trucks_with_their_orders_are_dispatched_and_tracked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "sim.db");
    let key = portal_support::create_tenant(dir.path(), &store, "Simulated Freight");
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/src/data/baltimore.osm.pbf");
    // The server is another process: blocking this test's thread is harmless.
    let report = portal_support::tracker_json(
        dir.path(),
        &[
            "simulate",
            "--map",
            map,
            "--vehicles",
            "4",
            "--speedup",
            "120",
            "--duration",
            "10",
            "--to",
            &server.base_url,
            "--create-orders",
            "--api-key",
            &key,
        ],
    );
    let created = report["orders_created"].as_u64().expect("orders_created");
    assert!(created >= 1, "an order per trip: {report}");

    let listed: Value = portal_support::client()
        .get(format!("{}/api/v1/orders?limit=100", server.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let orders = listed["orders"]
        .as_array()
        .or_else(|| listed.as_array())
        .expect("a list of orders");
    assert_eq!(orders.len() as u64, created);
    for order in orders {
        assert_ne!(order["status"], "created", "dispatched at once: {order}");
        assert!(order["vehicle_id"].as_str().is_some(), "{order}");
    }
    let with_eta = orders
        .iter()
        .filter(|o| {
            o["stops"]
                .as_array()
                .is_some_and(|stops| stops.iter().any(|s| !s["eta"].is_null()))
        })
        .count();
    assert!(
        with_eta > 0,
        "the engine tracks the simulated orders: none has an ETA in {listed}"
    );
}
