//! The tracking page in Spanish and French in a real browser (headless
//! Debian Chromium over the DevTools protocol), at a phone's size and a
//! desktop's. After the script has rebuilt the live parts (status, stops,
//! live badge, the map's text alternative), they are still in the page's
//! language, and the windows it rewrites read exactly as the server wrote
//! them (the same zone abbreviation, the 24-hour clock). The language switch
//! is a keyboard-reachable link that keeps the tracking code. Screenshots are
//! kept in `test-artifacts/i18n-{es,fr}-{phone,desktop}.png`.

use crate::portal_support;

use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::json;

/// What each language's page must say once the script has run.
struct Expected {
    lang: &'static str,
    status: &'static str,
    live: &'static str,
    pickup_window: &'static str,
    map_text_start: &'static str,
    zoom_in: &'static str,
}

const LANGUAGES: [Expected; 2] = [
    Expected {
        lang: "es",
        status: "Despachado",
        live: "En directo",
        pickup_window: "25 nov 08:00–10:00 EST",
        map_text_start: "El camión está a",
        zoom_in: "Acercar",
    },
    Expected {
        lang: "fr",
        status: "Expédié",
        live: "En direct",
        pickup_window: "25 nov. 08:00–10:00 EST",
        map_text_start: "Le camion est à",
        zoom_in: "Zoom avant",
    },
];

const SIZES: [(&str, u32, u32, bool); 2] =
    [("phone", 390, 844, true), ("desktop", 1280, 900, false)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spanish_and_french_pages_stay_in_their_language_when_live() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "i18n.db");
    let key = create_tenant(dir.path(), &store, "Acme Brokerage");
    let server = Server::start(dir.path(), &["--store", &store], 0);
    let base = server.base_url.clone();
    let order = dispatched_order(&base, &key, "LOAD-ES-FR", "TRUCK-L").await;
    post_position(&base, &key, "TRUCK-L", 39.2790, -76.6000).await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();

    let mut browser = Browser::launch(&dir.path().join("chromium-profile")).await;
    browser.call("Page.enable", json!({})).await;
    for (size, width, height, mobile) in SIZES {
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await;
        for expected in &LANGUAGES {
            let lang = expected.lang;
            browser
                .call(
                    "Page.navigate",
                    json!({"url": format!("{base}/t/{code}?lang={lang}")}),
                )
                .await;
            // The WebSocket is open and its snapshot applied: the live badge
            // is the script's, in the page's language.
            let live = browser
                .wait_for(
                    "the live badge",
                    "(function(){var e=document.getElementById('live');return e&&e.textContent;})()",
                )
                .await;
            assert_eq!(live, json!(expected.live), "{lang} {size}");
            let html_lang = browser.eval("document.documentElement.lang").await;
            assert_eq!(html_lang, json!(lang), "{size}");
            let status = browser
                .eval("document.getElementById('status').textContent")
                .await;
            assert_eq!(status, json!(expected.status), "{lang} {size}");
            // The stop list as the script rebuilt it: the window is the
            // server's words exactly.
            let window = browser
                .eval("document.querySelector('#stops .window').textContent")
                .await;
            assert_eq!(window, json!(expected.pickup_window), "{lang} {size}");
            let map_text = browser
                .wait_for(
                    "the map's text alternative, with the truck",
                    &format!(
                        "(function(){{var t=document.getElementById('map-text').textContent;return t.indexOf({})===0&&t;}})()",
                        json!(expected.map_text_start)
                    ),
                )
                .await;
            assert!(map_text.is_string(), "{lang} {size}: {map_text}");
            let zoom = browser
                .eval(
                    "document.querySelector('.leaflet-control-zoom-in').getAttribute('aria-label')",
                )
                .await;
            assert_eq!(zoom, json!(expected.zoom_in), "{lang} {size}");
            let title = browser.eval("document.title").await;
            assert!(
                title
                    .as_str()
                    .is_some_and(|t| t.contains(expected.status) && t.contains("LOAD-ES-FR")),
                "{lang} {size}: {title}"
            );
            browser.screenshot(&format!("i18n-{lang}-{size}.png")).await;
        }
    }

    // The switch (on the French page now): real links, so they take the
    // keyboard's focus and follow with Enter; each keeps the code.
    let focused = browser
        .eval(
            "(function(){var a=document.querySelector('.lang-switch a[hreflang=\"es\"]');a.focus();\
             return document.activeElement===a&&a.href;})()",
        )
        .await;
    assert_eq!(focused, json!(format!("{base}/t/{code}?lang=es")));
    browser
        .eval("document.querySelector('.lang-switch a[hreflang=\"es\"]').click()")
        .await;
    browser
        .wait_for(
            "the Spanish page after the switch",
            "document.documentElement.lang==='es'&&location.search==='?lang=es'",
        )
        .await;
}
