//! The staff pages in a real browser (headless Debian Chromium): a
//! truck has delivered one order with ETAs logged on the way; an
//! analyst opens the analytics page, gets the sign-in form, signs in with a
//! key of scope `read`, reads the charts (drawn from that trip), finds an
//! order by reference, copies its tracking link with one click, and opens
//! the delivered order's page to see how its ETA moved against the arrival.
//! The session cookie is HttpOnly (the page's own script could not read it)
//! and SameSite=Strict. Screenshots are kept in `test-artifacts/`
//! (`staff-analytics.png`, `staff-orders.png`, `eta-history.png`).

use crate::portal_support;

use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_signs_in_with_a_read_key_and_reads_analytics_and_orders() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "staff.db");
    let tenant = tracker_json(
        dir.path(),
        &[
            "tenant",
            "create",
            "Staff Test Brokerage",
            "--store",
            &store,
        ],
    );
    let tenant_id = tenant["tenant_id"].as_str().expect("tenant id").to_owned();
    let orders_key = tenant["api_key"].as_str().expect("key").to_owned();
    let read_key = tracker_json(
        dir.path(),
        &[
            "tenant", "key", "create", &tenant_id, "--name", "analyst", "--scopes", "read",
            "--store", &store,
        ],
    )["api_key"]
        .as_str()
        .expect("read key")
        .to_owned();
    let server = Server::start(dir.path(), &["--store", &store], 0);
    let base = server.base_url.clone();
    dispatched_order(&base, &orders_key, "STAFF-1", "TRUCK-S").await;
    let delivered = delivered_trip(&base, &orders_key).await;

    let mut browser = Browser::launch(&dir.path().join("chromium-profile")).await;
    browser.call("Page.enable", json!({})).await;
    browser.call("Network.enable", json!({})).await;
    browser
        .call(
            "Page.navigate",
            json!({"url": format!("{base}/staff/analytics")}),
        )
        .await;
    browser
        .wait_for("the sign-in form", "!!document.getElementById('sign-in')")
        .await;

    // The analyst types the key and submits the form.
    browser
        .eval(&format!(
            "document.getElementById('api_key').value = {}; \
             document.getElementById('sign-in').submit(); true",
            serde_json::to_string(&read_key).expect("json")
        ))
        .await;
    browser
        .wait_for(
            "the analytics page",
            "!!document.getElementById('error-by-horizon')",
        )
        .await;
    for section in ["coverage-by-horizon", "on-time-by-day", "worst-lanes"] {
        let found = browser
            .eval(&format!("!!document.getElementById('{section}')"))
            .await;
        assert_eq!(found, json!(true), "{section}");
    }
    // HttpOnly: the page cannot read its session; the browser holds it.
    assert_eq!(
        browser
            .eval("document.cookie.includes('tracker_staff')")
            .await,
        json!(false)
    );
    let cookies = browser
        .call(
            "Network.getCookies",
            json!({"urls": [format!("{base}/staff")]}),
        )
        .await;
    let session = cookies["cookies"]
        .as_array()
        .expect("cookies")
        .iter()
        .find(|c| c["name"] == "tracker_staff")
        .expect("the session cookie")
        .clone();
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_ne!(session["value"], json!(read_key), "a token, never the key");

    // The delivered trip's ETAs are on the chart: a bar per horizon.
    let bars = browser
        .eval("document.querySelectorAll('#error-by-horizon rect.ours').length")
        .await;
    assert!(bars.as_u64().is_some_and(|n| n >= 1), "bars: {bars}");
    browser.screenshot("staff-analytics.png").await;

    browser
        .call(
            "Page.navigate",
            json!({"url": format!("{base}/staff/orders?reference=STAFF-1")}),
        )
        .await;
    let row = browser
        .wait_for(
            "the order row",
            "document.getElementById('orders') && document.getElementById('orders').innerText",
        )
        .await;
    let row = row.as_str().expect("text");
    assert!(row.contains("STAFF-1"), "{row}");
    assert!(row.contains("dispatched"), "{row}");
    // `serve` keeps a notification key beside its SQLite file and seals every
    // code it issues under it, so the link is shown again (the store keeps
    // only the code's hash for lookups).
    assert!(row.contains(&format!("{base}/t/")), "{row}");
    assert!(
        !row.contains("Rotate to get a new link"),
        "a read key cannot rotate: {row}"
    );

    // One click copies the link (the button exists only where the script
    // runs; the page itself needs none).
    browser
        .call(
            "Browser.grantPermissions",
            json!({"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await;
    let link = browser
        .wait_for(
            "the copy button",
            "(() => { const b = document.querySelector('#orders button.copy'); \
             return b && !b.hidden && b.getAttribute('data-copy'); })()",
        )
        .await;
    let link = link.as_str().expect("link").to_owned();
    assert!(link.starts_with(&format!("{base}/t/")), "{link}");
    // A click as a user makes it (the clipboard wants a user gesture and a
    // focused page).
    browser
        .call(
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        )
        .await;
    browser
        .call(
            "Runtime.evaluate",
            json!({"expression": "document.querySelector('#orders button.copy').click()", "userGesture": true}),
        )
        .await;
    let notice = browser
        .wait_for(
            "the copy notice",
            "document.querySelector('#orders .copied').textContent",
        )
        .await;
    assert_eq!(notice, json!("Copied"));
    let pasted = browser
        .call(
            "Runtime.evaluate",
            json!({"expression": "navigator.clipboard.readText()", "awaitPromise": true, "returnByValue": true}),
        )
        .await;
    assert_eq!(pasted["result"]["value"], json!(link), "{pasted}");
    browser.screenshot("staff-orders.png").await;

    // The delivered order's page: the ETA history against the arrival.
    let url = delivered["tracking_url"].as_str().expect("tracking url");
    browser.call("Page.navigate", json!({"url": url})).await;
    browser
        .wait_for(
            "the ETA history chart",
            "!!document.querySelector('#eta-chart .actual')",
        )
        .await;
    let points = browser
        .eval("document.querySelector('#eta-chart polyline.eta').getAttribute('points').trim().split(' ').length")
        .await;
    assert!(
        points.as_u64().is_some_and(|n| n >= 2),
        "a point per ETA logged on the way: {points}"
    );
    browser.screenshot("eta-history.png").await;
}

/// An order driven to delivery: picked up forty minutes ago, then two fixes
/// ten minutes apart on the way (the engine logs an ETA for the delivery at
/// each), then arrived and delivered. Its ETA history has two points.
async fn delivered_trip(base: &str, key: &str) -> serde_json::Value {
    use chrono::{Duration, Utc};
    use portal_api::contract::{StatusName, StatusUpdateBody};
    let order = dispatched_order(base, key, "STAFF-2", "TRUCK-D").await;
    let id = order["id"].as_str().expect("id").to_owned();
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    let api = api(base, key);
    let t0 = Utc::now();
    let status = |status: StatusName, minutes_ago: i64| StatusUpdateBody {
        status,
        at: Some(t0 - Duration::minutes(minutes_ago)),
        note: None,
        source: None,
        stop_index: None,
        visibility: None,
    };
    for (s, ago) in [(StatusName::AtPickup, 45), (StatusName::PickedUp, 40)] {
        api.post_status(&id, &status(s, ago)).await.expect("status");
    }
    // Two roads near the pickup (as in `portal_browser`), ten minutes apart.
    // Until the engine has the order (its sync is a poll), each fix is
    // repeated a second later.
    for (points, lat, lon, ago) in [
        (1, 39.280391, -76.597566, 30),
        (2, 39.275346, -76.605364, 20),
    ] {
        let mut tries = 0;
        loop {
            let at = t0 - Duration::minutes(ago) + Duration::seconds(tries);
            post_position_at(base, key, "TRUCK-D", lat, lon, at).await;
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            let track: serde_json::Value = client()
                .get(format!("{base}/api/v1/track/{code}"))
                .send()
                .await
                .expect("track")
                .json()
                .await
                .expect("track json");
            let history = track["eta_history"].as_array().map_or(0, Vec::len);
            if history >= points {
                break;
            }
            tries += 1;
            assert!(tries < 40, "no ETA logged for fix {points}: {track}");
        }
    }
    for (s, ago) in [(StatusName::AtDelivery, 5), (StatusName::Delivered, 3)] {
        api.post_status(&id, &status(s, ago)).await.expect("status");
    }
    order
}
