//! The tracking page in a real browser: headless Chromium (Debian's `chromium`)
//! driven over the Chrome DevTools protocol. The test opens a tracking page of
//! `tracker serve`, finds the status, the ETA and the truck marker on the map,
//! all computed by the engine from a posted position, then posts a newer position
//! and watches the page update itself (new ETA, truck moved) over its WebSocket. The screenshot is kept in
//! `test-artifacts/portal-browser.png`. A second scenario (issue 18) drives a
//! truck through a pickup's fence and on, and watches the stop list, the
//! status and the progress indicator move live (never backwards), then the
//! feed fall silent and the page say so.

use crate::portal_support;

use std::time::{Duration, Instant};

use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracking_page_shows_status_eta_and_truck_and_updates_live() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "browser.db");
    let key = create_tenant(dir.path(), &store, "Browser Test Brokerage");
    // The order sync runs often so the engine knows the order almost at once.
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    let base = server.base_url.clone();
    let order = dispatched_order(&base, &key, "BROWSER-1", "TRUCK-B").await;
    let code = order["tracking_code"]
        .as_str()
        .expect("tracking code")
        .to_owned();

    // The truck on a road north-east of the pickup ten minutes ago (the truck
    // route from there to Key Highway is about 12 km, 13 min): the engine matches
    // the fix and computes the ETA. Until the engine has the order (its sync is a poll), the
    // fix is repeated a second later.
    let first_fix = chrono::Utc::now() - chrono::TimeDelta::seconds(600);
    let mut tries = 0;
    loop {
        let at = first_fix + chrono::TimeDelta::seconds(tries);
        post_position_at(&base, &key, "TRUCK-B", 39.280391, -76.597566, at).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let track: Value = client()
            .get(format!("{base}/api/v1/track/{code}"))
            .send()
            .await
            .expect("track")
            .json()
            .await
            .expect("track json");
        if !track["eta"].is_null() {
            break;
        }
        tries += 1;
        assert!(tries < 40, "the engine never published an ETA: {track}");
    }

    let mut browser = Browser::launch(&dir.path().join("chromium-profile")).await;
    let page_url = order["tracking_url"]
        .as_str()
        .expect("tracking url")
        .to_owned();
    browser.call("Page.enable", json!({})).await;
    browser
        .call("Page.navigate", json!({"url": page_url}))
        .await;

    let status = browser
        .wait_for(
            "the status",
            "document.getElementById('status') && document.getElementById('status').textContent",
        )
        .await;
    assert_eq!(status, "Dispatched");
    let eta_text = browser.wait_for("the ETA", "document.querySelector('#eta-time time') && document.querySelector('#eta-time time').textContent").await;
    assert!(
        eta_text.as_str().expect("text").ends_with("EST")
            || eta_text.as_str().expect("text").ends_with("EDT"),
        "the ETA in the stop's time zone: {eta_text}"
    );
    let window = browser
        .eval("document.getElementById('eta-window').textContent")
        .await;
    assert!(
        !window.as_str().expect("text").trim().is_empty(),
        "the p10-p90 window: {window}"
    );
    browser
        .wait_for(
            "the truck marker",
            "document.querySelector('.truck-marker') !== null",
        )
        .await;
    browser.wait_for("the live connection", "document.getElementById('live') && document.getElementById('live').textContent === 'Live'").await;
    browser.wait_for("the basemap roads", "document.querySelectorAll('.leaflet-overlay-pane canvas, .leaflet-overlay-pane path').length > 0").await;
    let attribution = browser
        .eval("document.body.innerText.includes('© OpenStreetMap contributors')")
        .await;
    assert_eq!(attribution, true);
    let truck_before = browser.eval("(function(){var r=document.querySelector('.truck-marker').getBoundingClientRect();return [r.x,r.y];})()").await;

    // The truck reports again now, about 1 km before the pickup: ten minutes
    // gone, most of the way done. The engine's new ETA and position reach the page over its
    // WebSocket, without a reload.
    browser.eval("window.__sameDocument = true").await;
    post_position_at(
        &base,
        &key,
        "TRUCK-B",
        39.275346,
        -76.605364,
        chrono::Utc::now(),
    )
    .await;
    let new_eta = browser
        .wait_for(
            "the new ETA",
            &format!(
                "(function(){{var t=document.querySelector('#eta-time time');return t && t.textContent !== {first} && t.textContent;}})()",
                first = Value::String(eta_text.as_str().expect("text").to_owned())
            ),
        )
        .await;
    assert_ne!(new_eta, eta_text);
    let truck_after = browser.wait_for("the truck moving",
        &format!("(function(){{var r=document.querySelector('.truck-marker').getBoundingClientRect();var b={truck_before};return (Math.abs(r.x-b[0])+Math.abs(r.y-b[1])>1) && [r.x,r.y];}})()")).await;
    assert_ne!(truck_after, truck_before);
    assert_eq!(
        browser.eval("window.__sameDocument === true").await,
        true,
        "updated live, not by reloading"
    );

    let shot = browser
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = data_encoding::BASE64
        .decode(shot["data"].as_str().expect("data").as_bytes())
        .expect("base64");
    let path = artifacts_dir().join("portal-browser.png");
    std::fs::write(&path, png).expect("screenshot written");
    eprintln!("screenshot: {}", path.display());
}

/// Posts fixes in one batch (device times as given, speed as given).
async fn post_fixes(
    base: &str,
    key: &str,
    vehicle: &str,
    fixes: &[(f64, f64, chrono::DateTime<chrono::Utc>, f64)],
) {
    let items: Vec<Value> = fixes
        .iter()
        .map(|(lat, lon, at, speed)| {
            json!({"vehicle_id": vehicle, "time": at.to_rfc3339(), "lat": lat, "lon": lon, "speed_mps": speed})
        })
        .collect();
    let reply = client()
        .post(format!("{base}/api/v1/positions"))
        .bearer_auth(key)
        .json(&items)
        .send()
        .await
        .expect("post positions");
    assert_eq!(reply.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_stop_load_moves_the_page_forward_live_and_a_silent_feed_shows_stale() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "browser-stops.db");
    let key = create_tenant(dir.path(), &store, "Browser Stops Brokerage");
    // The feed counts as stale a minute after the last fix, so the test sees
    // it go stale without waiting a quarter of an hour.
    let server = Server::start(
        dir.path(),
        &[
            "--store",
            &store,
            "--orders-every-s",
            "0.5",
            "--stale-after-s",
            "60",
        ],
        0,
    );
    let base = server.base_url.clone();
    let started = chrono::Utc::now();
    let order = dispatched_order(&base, &key, "BROWSER-STOPS", "TRUCK-S").await;
    let page_url = order["tracking_url"]
        .as_str()
        .expect("tracking url")
        .to_owned();
    // Let the engine learn of the order (its sync is a half-second poll).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut browser = Browser::launch(&dir.path().join("chromium-profile-stops")).await;
    browser.call("Page.enable", json!({})).await;
    browser
        .call("Page.navigate", json!({"url": page_url}))
        .await;
    browser
        .wait_for(
            "the stop list",
            "document.querySelectorAll('#stops li').length === 2",
        )
        .await;
    // Every step the progress indicator shows, from now on.
    browser
        .eval(
            "window.__sameDocument = true; window.__steps = []; \
             new MutationObserver(function () { \
               var li = Array.prototype.slice.call(document.querySelectorAll('#progress li')); \
               window.__steps.push(li.findIndex(function (x) { return x.classList.contains('current'); })); \
             }).observe(document.getElementById('progress'), {subtree: true, attributes: true, childList: true}); true",
        )
        .await;

    // The truck stands two minutes in the pickup's yard (at its point, speed
    // 0), 320 to 200 s ago: the fence marks it arrived after a minute.
    let pickup = (39.2770, -76.6080);
    let t0 = started - chrono::TimeDelta::seconds(320);
    let stand: Vec<_> = (0..13)
        .map(|i| {
            (
                pickup.0,
                pickup.1,
                t0 + chrono::TimeDelta::seconds(10 * i),
                0.0,
            )
        })
        .collect();
    post_fixes(&base, &key, "TRUCK-S", &stand).await;
    browser
        .wait_for(
            "the pickup marked arrived in the stop list",
            "(function(){var li=document.querySelectorAll('#stops li')[0];return li && li.getAttribute('data-state')==='arrived';})()",
        )
        .await;
    let status = browser
        .wait_for("the status at the pickup", "(function(){var t=document.getElementById('status').textContent;return t==='At pickup'&&t;})()")
        .await;
    assert_eq!(status, "At pickup");

    // Then it drives east, out of the fence, for two and a half minutes
    // (10 m/s), the last fix about 20 s before the test started.
    let out: Vec<_> = (0..16)
        .map(|i| {
            let lon = pickup.1 + 0.0035 + 0.00116 * i as f64;
            (
                pickup.0,
                lon,
                t0 + chrono::TimeDelta::seconds(140 + 10 * i),
                10.0,
            )
        })
        .collect();
    post_fixes(&base, &key, "TRUCK-S", &out).await;
    browser
        .wait_for(
            "the pickup marked departed",
            "(function(){var li=document.querySelectorAll('#stops li')[0];return li && li.getAttribute('data-state')==='departed';})()",
        )
        .await;
    browser
        .wait_for(
            "the status after the pickup",
            "document.getElementById('status').textContent === 'Picked up, in transit'",
        )
        .await;
    let heading = browser
        .eval("document.getElementById('eta-h').textContent")
        .await;
    assert_eq!(heading, "Estimated arrival at Delivery: Canton Crossing");
    let next = browser
        .eval(
            "(function(){var li=document.querySelectorAll('#stops li')[1];return li.className;})()",
        )
        .await;
    assert!(
        next.as_str().expect("class").contains("next"),
        "the delivery is the next stop: {next}"
    );
    assert_eq!(
        browser.eval("window.__sameDocument === true").await,
        true,
        "the stop list and status moved live, not by a reload"
    );
    let steps = browser.eval("window.__steps").await;
    let steps: Vec<i64> = serde_json::from_value(steps).expect("steps");
    assert!(!steps.is_empty(), "the progress indicator moved");
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "the progress indicator never goes back: {steps:?}"
    );

    // The feed falls silent: a minute after the last fix the page drops "Live"
    // and says when the last position came.
    let stale = browser
        .wait_for_long(
            "the stale feed",
            "(function(){var l=document.getElementById('live');return l && l.textContent.indexOf('Not live')===0 && l.textContent;})()",
            Duration::from_secs(120),
        )
        .await;
    assert!(
        stale.as_str().expect("text").contains("ago"),
        "says when the last position came: {stale}"
    );
    // The server says so too (it counts whole seconds from the fix's own
    // time, the page from the second-rounded time it was given, so they may
    // differ by a second).
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let track: Value = client()
            .get(format!("{base}/api/v1/track/{code}"))
            .send()
            .await
            .expect("track")
            .json()
            .await
            .expect("json");
        if track["feed"]["state"] == "stale" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the JSON feed never went stale: {}",
            track["feed"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let shot = browser
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = data_encoding::BASE64
        .decode(shot["data"].as_str().expect("data").as_bytes())
        .expect("base64");
    std::fs::write(artifacts_dir().join("portal-browser-stops.png"), png).expect("screenshot");
}
