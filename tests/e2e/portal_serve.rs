//! `tracker serve` end to end: the embedded default with no store flag keeps its
//! data in `./tracker.db` and reuses its demo orders across restarts (with new
//! links: codes are stored as hashes only); a tenant made
//! with `tracker tenant create` drives an order whose page updates live over a real
//! WebSocket; a rotated link closes open pages and the old code is gone.

use crate::portal_support;

use std::time::Duration;

use portal_support::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_keeps_its_demo_orders_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Server::start(dir.path(), &[], 2);
    assert!(
        dir.path().join("tracker.db").exists(),
        "the default store is ./tracker.db"
    );
    assert_eq!(first.demo_urls.len(), 2);
    let urls = first.demo_urls.clone();
    let page = client().get(&urls[0]).send().await.expect("demo page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("DEMO-1001") && html.contains("Dispatched"));
    assert!(html.contains("© OpenStreetMap contributors"));
    drop(first);

    // The same orders, under new links: the store keeps tracking codes as
    // hashes only, so the demo rotates a reused order's code to print its link,
    // and the previous run's links are gone.
    let second = Server::start(dir.path(), &[], 2);
    assert_eq!(second.demo_urls.len(), 2);
    for (i, (old, new)) in urls.iter().zip(&second.demo_urls).enumerate() {
        let old = old.replace(&url_origin(old), &second.base_url);
        assert_ne!(&old, new, "a reused demo order gets a new code");
        let page = client().get(new).send().await.expect("new demo page");
        assert_eq!(page.status(), 200);
        let reference = format!("DEMO-{}", 1001 + i);
        assert!(page.text().await.expect("html").contains(&reference));
        let gone = client().get(&old).send().await.expect("old demo page");
        assert_eq!(
            gone.status(),
            404,
            "the previous run's link was rotated away"
        );
    }
}

fn url_origin(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    format!("http://{}", rest.split('/').next().expect("host"))
}

#[test]
fn bad_flags_exit_with_code_2() {
    let out = std::process::Command::new(TRACKER)
        .args([
            "serve",
            "--store",
            "postgres://localhost/x",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--store") && stderr.contains("names no user"),
        "{stderr}"
    );
    let out = std::process::Command::new(TRACKER)
        .args([
            "serve",
            "--fanout",
            "carrier-pigeon://",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_follows_its_truck_live_and_a_rotated_link_closes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "live.db");
    let key = create_tenant(dir.path(), &store, "Live Test Brokerage");
    let server = Server::start(dir.path(), &["--store", &store], 0);
    let base = server.base_url.clone();
    let order = dispatched_order(&base, &key, "LIVE-1", "TRUCK-LIVE").await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();

    let mut ws = ws_connect(&server.ws_url(&code)).await;
    let snapshot = next_json(&mut ws, Duration::from_secs(5))
        .await
        .expect("a snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["status"], "dispatched");
    assert!(snapshot["vehicle"].is_null());

    // The position goes through the engine: map matching puts it on the road
    // next to where it was posted (and an engine ETA may come along).
    post_position(&base, &key, "TRUCK-LIVE", 39.2801, -76.6002).await;
    let delta = next_of_type(&mut ws, "position", Duration::from_secs(5))
        .await
        .expect("a position delta");
    let near = |v: &Value| {
        (v["lat"].as_f64().expect("lat") - 39.2801).abs() < 0.0005
            && (v["lon"].as_f64().expect("lon") + 76.6002).abs() < 0.0005
    };
    assert!(near(&delta["vehicle"]), "{delta}");

    let http = client();
    let id = order["id"].as_str().expect("id");
    http.post(format!("{base}/api/v1/orders/{id}/eta")).bearer_auth(&key)
        .json(&json!({"stop_index": 0, "eta": "2025-11-25T14:05:00Z", "p10": "2025-11-25T13:55:00Z", "p90": "2025-11-25T14:25:00Z"}))
        .send().await.expect("eta");
    // The engine's own ETA for the posted position came first; the tenant's
    // one follows and is shown.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let eta = next_of_type(&mut ws, "eta", left)
            .await
            .expect("the tenant's ETA delta");
        if eta["eta"]["at"] == "2025-11-25T14:05:00Z" {
            break;
        }
    }

    http.post(format!("{base}/api/v1/orders/{id}/status"))
        .bearer_auth(&key)
        .json(
            &json!({"status": "at_pickup", "note": "Checked in at gate 2", "visibility": "public"}),
        )
        .send()
        .await
        .expect("status");
    let status = next_of_type(&mut ws, "status", Duration::from_secs(5))
        .await
        .expect("a status delta");
    assert_eq!(status["status"], "at_pickup");
    assert_eq!(status["event"]["note"], "Checked in at gate 2");

    // A second viewer opening now starts from the current state.
    let mut late = ws_connect(&server.ws_url(&code)).await;
    let fresh = next_json(&mut late, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(fresh["status"], "at_pickup");
    assert!(near(&fresh["vehicle"]), "{fresh}");

    let rotated = http
        .post(format!("{base}/api/v1/orders/{id}/tracking-link/rotate"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), 200);
    let closed = next_json(&mut ws, Duration::from_secs(5))
        .await
        .expect("a close");
    assert_eq!(closed, json!({"type": "closed", "code": 4404}));
    let old_page = http
        .get(format!("{base}/t/{code}"))
        .send()
        .await
        .expect("old page");
    assert_eq!(old_page.status(), 404);
    ws_close(late).await;
}
