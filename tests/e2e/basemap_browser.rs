//! The vector basemap in a real browser (headless Debian Chromium over the
//! DevTools protocol), at a phone's size and a desktop's: on the tracking page
//! of `tracker serve` (the bundled Baltimore map), at city zoom over the Jones
//! Falls the canvas tiles show water-coloured pixels and labels were drawn;
//! at a view about 1,000 km wide the map is not blank (main roads and the
//! city's label). Screenshots go to `test-artifacts/basemap-*.png`.

use crate::portal_support;

use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::{Value, json};

const SIZES: [(&str, u32, u32, bool); 2] =
    [("phone", 390, 844, true), ("desktop", 1280, 900, false)];

/// Counts, over the basemap's loaded tiles of the current zoom, the pixels
/// that differ from the palette's background and those of its water colour.
const PIXELS: &str = r#"(function () {
  var layer = window.TrackBasemap && window.TrackBasemap.active;
  if (!layer || !layer._map || layer.isLoading()) { return null; }
  var pal = window.TrackBasemap.palette();
  var rgb = function (hex) { return [1, 3, 5].map(function (i) { return parseInt(hex.substr(i, 2), 16); }); };
  var bg = rgb(pal.background), water = rgb(pal.water);
  var near = function (d, i, c) { return Math.abs(d[i] - c[0]) < 4 && Math.abs(d[i + 1] - c[1]) < 4 && Math.abs(d[i + 2] - c[2]) < 4; };
  var z = layer._map.getZoom(), out = { tiles: 0, other: 0, water: 0 };
  Object.keys(layer._tiles).forEach(function (k) {
    var t = layer._tiles[k];
    if (t.coords.z !== z || !t.loaded) { return; }
    out.tiles++;
    var c = t.el, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (var i = 0; i < d.length; i += 4) {
      if (!near(d, i, bg)) { out.other++; }
      if (near(d, i, water)) { out.water++; }
    }
  });
  return out.tiles > 0 ? out : null;
})()"#;

/// Moves the map without animation and waits for its tiles.
async fn view(browser: &mut Browser, what: &str, js: &str) -> Value {
    browser
        .eval(&format!(
            "(function(){{var m=window.TrackBasemap.active._map;{js};return m.getZoom();}})()"
        ))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    browser.wait_for(what, PIXELS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basemap_shows_water_and_labels_in_town_and_is_not_blank_from_afar() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "basemap.db");
    let key = create_tenant(dir.path(), &store, "Basemap Test Brokerage");
    let server = Server::start(dir.path(), &["--store", &store], 0);
    let base = server.base_url.clone();
    let order = dispatched_order(&base, &key, "BASEMAP-1", "TRUCK-M").await;
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
        browser
            .call("Page.navigate", json!({"url": format!("{base}/t/{code}")}))
            .await;
        browser
            .wait_for(
                "vector tiles painted",
                "document.getElementById('map') && Number(document.getElementById('map').getAttribute('data-basemap-tiles')) > 0",
            )
            .await;

        // City zoom over the Jones Falls, which runs into the Inner Harbor (the
        // harbour itself is coastline, which the basemap does not close into
        // water yet).
        let town = view(
            &mut browser,
            "the city-zoom tiles",
            "m.setView([39.2866, -76.6047], 15, {animate: false})",
        )
        .await;
        browser
            .screenshot(&format!("basemap-city-{size}.png"))
            .await;
        assert!(
            town["water"].as_u64().unwrap_or(0) > 200,
            "{size}: water shows at city zoom: {town}"
        );
        let labels = browser
            .eval("Number(document.getElementById('map').getAttribute('data-basemap-labels'))")
            .await;
        assert!(
            labels.as_u64().unwrap_or(0) >= 3,
            "{size}: labels drawn: {labels}"
        );
        assert_eq!(
            browser
                .eval("document.getElementById('map').getAttribute('data-basemap')")
                .await,
            json!("vector"),
            "{size}"
        );

        // About 1,000 km across, centred on the map's city.
        let afar = view(
            &mut browser,
            "the long-haul tiles",
            "m.fitBounds([[34.8, -82.4], [43.8, -70.8]], {animate: false})",
        )
        .await;
        let zoom = browser
            .eval("window.TrackBasemap.active._map.getZoom()")
            .await;
        browser
            .screenshot(&format!("basemap-1000km-{size}.png"))
            .await;
        assert!(
            zoom.as_u64().is_some_and(|z| (4..=8).contains(&z)),
            "{size}: a long-haul zoom: {zoom}"
        );
        // The bundled extract is a city (about 15 km across): at this view
        // it spans a few pixels, its motorways and trunk roads drawn there.
        assert!(
            afar["other"].as_u64().unwrap_or(0) >= 5,
            "{size}: the long-haul view is not blank: {afar}"
        );
    }
}
