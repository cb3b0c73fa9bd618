//! A GPS glitch never reaches the customer, through the real binary: a truck on
//! its order reports from Key Highway, then one fix 300 km away (another state)
//! arrives, then the truck goes on. The tracking page keeps the truck where it
//! is and keeps its ETA; the glitch is answered `accepted` (it entered the
//! stream) and is set aside by the engine as `implausible_jump`. Before, the
//! glitch moved the truck to Pennsylvania on the customer's map and removed the
//! ETA.

use crate::portal_support;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use portal_support::{Server, client, create_tenant, dispatched_order, sqlite_url};
use serde_json::{Value, json};

const TRUCK: &str = "glitchy-1";

async fn post(base: &str, key: &str, lat: f64, lon: f64, at: chrono::DateTime<Utc>) {
    let reply = client()
        .post(format!("{base}/api/v1/positions"))
        .bearer_auth(key)
        .json(&json!([{"vehicle_id": TRUCK, "time": at.to_rfc3339(), "lat": lat, "lon": lon, "speed_mps": 10.0}]))
        .send()
        .await
        .expect("post");
    assert_eq!(reply.status(), 202);
}

async fn page(base: &str, code: &str) -> Value {
    client()
        .get(format!("{base}/api/v1/track/{code}"))
        .send()
        .await
        .expect("track")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_300_km_away_never_reaches_the_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "glitch.db");
    let key = create_tenant(dir.path(), &store, "Glitch Freight");
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    let base = server.base_url.as_str();
    let order = dispatched_order(base, &key, "G-1", TRUCK).await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // West along Key Highway towards the pickup, a fix every 10 s.
    let t0 = Utc::now() - TimeDelta::minutes(5);
    for k in 0..6 {
        let at = t0 + TimeDelta::seconds(10 * k);
        post(base, &key, 39.2775, -76.6000 - 0.0010 * k as f64, at).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let p = page(base, &code).await;
        if !p["eta"].is_null() && !p["vehicle"].is_null() {
            break p;
        }
        assert!(Instant::now() < deadline, "an ETA before the glitch: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // One fix in Pennsylvania, 300 km north, ten seconds later. The 202 comes
    // once the engine and the store have had it (the in-process bus), so the
    // page shows what the glitch did, if anything.
    post(base, &key, 41.98, -76.60, t0 + TimeDelta::seconds(60)).await;
    let after = page(base, &code).await;
    assert_eq!(
        after["vehicle"], before["vehicle"],
        "the glitch reached the page"
    );
    assert!(!after["eta"].is_null(), "the ETA stays: {after}");
    // …and the truck goes on along its road.
    post(base, &key, 39.2775, -76.6062, t0 + TimeDelta::seconds(70)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = page(base, &code).await;
        let lat = p["vehicle"]["lat"].as_f64().expect("a truck on the page");
        assert!(
            (lat - 39.2775).abs() < 0.01,
            "the glitch reached the page: {p}"
        );
        assert!(!p["eta"].is_null(), "the ETA stays: {p}");
        if p["vehicle"]["at"] != before["vehicle"]["at"]
            && p["vehicle"]["lon"]
                .as_f64()
                .is_some_and(|lon| lon < -76.606)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the truck went on: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
