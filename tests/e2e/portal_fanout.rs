//! Fan-out across nodes: two `tracker serve` processes share one store and fan out
//! through the real Redis at 127.0.0.1:6379. A position posted to node A reaches a
//! tracking page connected to node B (after node A's engine matched it), and a
//! page opened later on B starts from the latest state.

use crate::portal_support;

use std::time::Duration;

use portal_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_posted_on_node_a_reaches_a_viewer_on_node_b() {
    if !redis_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "shared.db");
    let key = create_tenant(dir.path(), &store, "Fan-out Brokerage");
    let args = [
        "--store",
        store.as_str(),
        "--fanout",
        "redis://127.0.0.1:6379",
    ];
    let node_a = Server::start(dir.path(), &args, 0);
    let node_b = Server::start(dir.path(), &args, 0);
    assert_ne!(node_a.base_url, node_b.base_url);

    let order = dispatched_order(&node_a.base_url, &key, "FAN-1", "TRUCK-FAN").await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    let mut on_b = ws_connect(&node_b.ws_url(&code)).await;
    let snapshot = next_json(&mut on_b, Duration::from_secs(5))
        .await
        .expect("snapshot from B");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["reference"], "FAN-1");

    post_position(&node_a.base_url, &key, "TRUCK-FAN", 39.2811, -76.5901).await;
    let delta = next_of_type(&mut on_b, "position", Duration::from_secs(5))
        .await
        .expect("the position reaches B");
    assert_eq!(delta["type"], "position");
    // Node A's engine map-matched the fix: it is on the road next to the posted
    // point, not necessarily on it.
    assert_near(&delta["vehicle"], 39.2811, -76.5901);

    // A status change on A, too.
    let id = order["id"].as_str().expect("id");
    client()
        .post(format!("{}/api/v1/orders/{id}/status", node_a.base_url))
        .bearer_auth(&key)
        .json(&serde_json::json!({"status": "at_pickup"}))
        .send()
        .await
        .expect("status");
    let status = next_of_type(&mut on_b, "status", Duration::from_secs(5))
        .await
        .expect("status reaches B");
    assert_eq!(status["status"], "at_pickup");

    let mut late_on_b = ws_connect(&node_b.ws_url(&code)).await;
    let fresh = next_json(&mut late_on_b, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(fresh["vehicle"]["lat"], delta["vehicle"]["lat"]);
    assert_eq!(fresh["vehicle"]["lon"], delta["vehicle"]["lon"]);
    ws_close(on_b).await;
    ws_close(late_on_b).await;
}

/// The vehicle is within about 50 m of (lat, lon).
fn assert_near(vehicle: &serde_json::Value, lat: f64, lon: f64) {
    let got_lat = vehicle["lat"].as_f64().expect("lat");
    let got_lon = vehicle["lon"].as_f64().expect("lon");
    assert!(
        (got_lat - lat).abs() < 0.0005 && (got_lon - lon).abs() < 0.0005,
        "{vehicle} is not near {lat},{lon}"
    );
}
