//! The tracking page checked by axe-core (the accessibility engine from npm,
//! loaded into headless Debian Chromium) at phone and desktop sizes, in the
//! states a customer sees: in transit with an ETA and the map, and
//! delivered; and the page for a link that does not exist. No violation of
//! impact `serious` or `critical` may remain; the lesser ones are printed.
//! Screenshots go to `test-artifacts/a11y-*.png`.
//!
//! axe-core is installed by `.ci/test` (`npm install axe-core@4` under
//! `target/npm`); `TRACKER_AXE_JS` may point at another `axe.min.js`.

use crate::portal_support;

use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use portal_api::contract::{StatusName, StatusUpdateBody};
use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::{Value, json};

fn axe_path() -> PathBuf {
    std::env::var_os("TRACKER_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/npm/node_modules/axe-core/axe.min.js")
        })
}

/// The two sizes customers open links at.
const SIZES: [(&str, u32, u32, bool); 2] =
    [("phone", 390, 844, true), ("desktop", 1280, 800, false)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_serious_issue_on_the_tracking_pages() {
    if !chromium_available() {
        return;
    }
    let axe = axe_path();
    if !service_available(
        &format!("axe-core at {} (.ci/test installs it)", axe.display()),
        axe.exists(),
    ) {
        return;
    }
    let axe_source = std::fs::read_to_string(&axe).expect("axe-core source");

    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "a11y.db");
    let key = create_tenant(dir.path(), &store, "Accessible Freight");
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    let base = server.base_url.clone();
    let moving = order_with_eta(&base, &key, "A11Y-1", "TRUCK-A").await;
    let delivered = order_with_eta(&base, &key, "A11Y-2", "TRUCK-B").await;
    let api = api(&base, &key);
    let id = delivered["id"].as_str().expect("id");
    for status in [
        StatusName::AtPickup,
        StatusName::PickedUp,
        StatusName::AtDelivery,
        StatusName::Delivered,
    ] {
        api.post_status(
            id,
            &StatusUpdateBody {
                status,
                at: None,
                note: None,
                source: None,
                stop_index: None,
                visibility: None,
            },
        )
        .await
        .expect("status");
    }

    let pages = [
        (
            "in-transit",
            url_of(&moving),
            "!!document.querySelector('#eta-time time') && document.getElementById('live').textContent === 'Live'",
        ),
        (
            "delivered",
            url_of(&delivered),
            "!!document.getElementById('delivered')",
        ),
        (
            "not-found",
            format!("{base}/t/AAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "!!document.querySelector('h1')",
        ),
    ];
    let mut browser = Browser::launch(&dir.path().join("chromium-profile")).await;
    browser.call("Page.enable", json!({})).await;
    let mut serious = Vec::new();
    for (size, width, height, mobile) in SIZES {
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await;
        for (name, url, ready) in &pages {
            browser.call("Page.navigate", json!({"url": url})).await;
            browser.wait_for(&format!("the {name} page"), ready).await;
            browser.eval(&axe_source).await;
            let report = browser
                .call(
                    "Runtime.evaluate",
                    json!({
                        "expression": "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))",
                        "awaitPromise": true,
                        "returnByValue": true,
                    }),
                )
                .await;
            let violations = report["result"]["value"]
                .as_array()
                .unwrap_or_else(|| panic!("axe ran on {name}: {report}"))
                .clone();
            for v in &violations {
                let line = format!(
                    "{size} {name}: {} ({}) {} at {}",
                    v["id"], v["impact"], v["help"], v["nodes"]
                );
                if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
                    serious.push(line);
                } else {
                    eprintln!("axe, lesser: {line}");
                }
            }
            browser.screenshot(&format!("a11y-{size}-{name}.png")).await;
        }
    }
    assert!(
        serious.is_empty(),
        "axe-core found:\n{}",
        serious.join("\n")
    );
}

fn url_of(order: &Value) -> String {
    order["tracking_url"]
        .as_str()
        .expect("tracking url")
        .to_owned()
}

/// A dispatched order whose truck has reported near the pickup, once the
/// engine has published its ETA.
async fn order_with_eta(base: &str, key: &str, reference: &str, vehicle: &str) -> Value {
    let order = dispatched_order(base, key, reference, vehicle).await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    let first_fix = Utc::now() - Duration::seconds(600);
    let mut tries = 0;
    loop {
        let at = first_fix + Duration::seconds(tries);
        post_position_at(base, key, vehicle, 39.280391, -76.597566, at).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let track: Value = client()
            .get(format!("{base}/api/v1/track/{code}"))
            .send()
            .await
            .expect("track")
            .json()
            .await
            .expect("track json");
        if !track["eta"].is_null() {
            return order;
        }
        tries += 1;
        assert!(tries < 40, "the engine never published an ETA: {track}");
    }
}
