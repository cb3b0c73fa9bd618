//! The staff pages in a real browser (headless Debian Chromium): an analyst
//! opens the analytics page, gets the sign-in form, signs in with a key of
//! scope `read`, and reads the analytics page and the order list, rendered
//! on the server without JavaScript. The session cookie is HttpOnly (the
//! page's own script could not read it) and SameSite=Strict. The screenshot
//! is kept in `test-artifacts/staff-analytics.png`.

mod portal_support;

use std::path::Path;

use portal_support::browser::{Browser, CHROMIUM};
use portal_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_signs_in_with_a_read_key_and_reads_analytics_and_orders() {
    if !service_available(
        "chromium at /usr/bin/chromium",
        Path::new(CHROMIUM).exists(),
    ) {
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

    let shot = browser
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = data_encoding::BASE64
        .decode(shot["data"].as_str().expect("png data").as_bytes())
        .expect("DevTools sends valid base64");
    std::fs::write(artifacts_dir().join("staff-analytics.png"), png).expect("screenshot");

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
}
