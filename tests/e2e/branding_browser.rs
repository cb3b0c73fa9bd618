//! Branding and location privacy on the tracking page in a real browser
//! (headless Debian Chromium over the DevTools protocol), at a phone's size
//! (390×844) and a desktop's (1280×900). A branded carrier's page shows its
//! logo (a real PNG, decoded by the browser), its name, its colour in the
//! header and its support contact; a carrier with location privacy on shows
//! the truck's area, not the truck, while it is far from the stops, and says
//! so. Screenshots are kept in `test-artifacts/branding-*.png`.

use crate::portal_support;

use portal_support::browser::{Browser, chromium_available};
use portal_support::*;
use serde_json::{Value, json};

/// A real `w`×`h` PNG (RGB, stripes of `colors`), stored without compression:
/// zlib "stored" blocks, CRC-32 and Adler-32 written out here so the test
/// needs no image library.
fn png(w: u32, h: u32, colors: &[[u8; 3]]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    // One row: filter byte 0 (none), then the stripes; every row alike.
    let n_colors = u32::try_from(colors.len()).expect("a few colours");
    let mut row = vec![0u8];
    for x in 0..w {
        let stripe = usize::try_from(x * n_colors / w).expect("an index");
        row.extend_from_slice(&colors[stripe]);
    }
    let raw = row.repeat(usize::try_from(h).expect("a height"));
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).expect("block");
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

async fn put(base: &str, key: &str, path: &str, content_type: &str, body: Vec<u8>) -> Value {
    let reply = client()
        .put(format!("{base}{path}"))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("PUT answers");
    assert!(reply.status().is_success(), "{path}: {}", reply.status());
    reply.json().await.expect("JSON")
}

async fn screenshot(browser: &mut Browser, name: &str) {
    let shot = browser
        .call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )
        .await;
    let png = data_encoding::BASE64
        .decode(shot["data"].as_str().expect("png data").as_bytes())
        .expect("DevTools sends valid base64");
    std::fs::write(artifacts_dir().join(name), png).expect("screenshot");
}

const SIZES: [(&str, u32, u32, bool); 2] =
    [("phone", 390, 844, true), ("desktop", 1280, 900, false)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branded_page_and_a_private_truck_at_phone_and_desktop_sizes() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "brand.db");
    let branded_key = create_tenant(dir.path(), &store, "Acme Brokerage");
    let private_key = create_tenant(dir.path(), &store, "Quiet Carriers");
    let server = Server::start(dir.path(), &["--store", &store], 0);
    let base = server.base_url.clone();

    // Carrier A: a name, a light colour (darkened for contrast), a contact
    // and a logo.
    let brand = json!({"display_name": "Acme Freight", "primary_color": "#2a9df4",
        "support_phone": "+1 555 010 0199", "support_email": "help@acme.example",
        "support_url": "https://acme.example/help"});
    let set = put(
        &base,
        &branded_key,
        "/api/v1/branding",
        "application/json",
        brand.to_string().into_bytes(),
    )
    .await;
    assert_eq!(set["adjusted"], true, "{set}");
    let logo = png(
        160,
        48,
        &[[0x0b, 0x3d, 0x91], [0xff, 0xff, 0xff], [0xf4, 0x7c, 0x20]],
    );
    put(
        &base,
        &branded_key,
        "/api/v1/branding/logo",
        "image/png",
        logo,
    )
    .await;
    let branded = dispatched_order(&base, &branded_key, "ACME-77", "TRUCK-A").await;
    post_position(&base, &branded_key, "TRUCK-A", 39.2790, -76.6000).await;

    // Carrier B: location privacy on, exact within 1 km; its truck is ~4 km
    // from both stops.
    let privacy = json!({"enabled": true, "exact_within_m": 1000, "cell_resolution": 7});
    put(
        &base,
        &private_key,
        "/api/v1/tracking-privacy",
        "application/json",
        privacy.to_string().into_bytes(),
    )
    .await;
    let private = dispatched_order(&base, &private_key, "QUIET-5", "TRUCK-Q").await;
    let (truck_lat, truck_lon) = (39.3120, -76.6150);
    post_position(&base, &private_key, "TRUCK-Q", truck_lat, truck_lon).await;

    let mut browser = Browser::launch(&dir.path().join("chromium-profile")).await;
    browser.call("Page.enable", json!({})).await;
    for (size, width, height, mobile) in SIZES {
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await;

        let code = branded["tracking_code"].as_str().expect("code");
        browser
            .call("Page.navigate", json!({"url": format!("{base}/t/{code}")}))
            .await;
        let name = browser
            .wait_for("the brand name", "document.getElementById('brand-name') && document.getElementById('brand-name').innerText")
            .await;
        assert_eq!(name, json!("Acme Freight"), "{size}");
        let logo_width = browser
            .wait_for(
                "the logo, decoded",
                "(function(){var i=document.getElementById('brand-logo');return i&&i.complete&&i.naturalWidth;})()",
            )
            .await;
        assert_eq!(
            logo_width,
            json!(160),
            "{size}: the browser decoded the PNG"
        );
        let support = browser
            .eval("(function(){var a=document.getElementById('support-link');return a&&a.href;})()")
            .await;
        assert_eq!(support, json!("https://acme.example/help"), "{size}");
        let tel = browser
            .eval("!!document.querySelector('#support a[href=\"tel:+15550100199\"]')")
            .await;
        assert_eq!(tel, json!(true), "{size}");
        // The header wears the carrier's colour, as darkened by the API
        // (waited for: on a loaded machine the stylesheet may apply after
        // the elements above are in place; seen once as a transparent header).
        let used = set["primary_color_used"].as_str().expect("colour");
        let rgb = |i: usize| u8::from_str_radix(&used[i..i + 2], 16).expect("hex");
        let expected = format!("rgb({}, {}, {})", rgb(1), rgb(3), rgb(5));
        let header_bg = browser
            .wait_for(
                &format!("{size}: the header in the carrier's colour {expected}"),
                &format!(
                    "(function(){{var h=document.querySelector('header.top');\
                     var c=h&&getComputedStyle(h).backgroundColor;\
                     return c==='{expected}'?c:false;}})()"
                ),
            )
            .await;
        assert_eq!(header_bg, json!(expected), "{size}");
        // The route driven and the truck's heading are drawn.
        browser
            .wait_for(
                "the truck marker",
                "!!document.querySelector('.truck-marker')",
            )
            .await;
        screenshot(&mut browser, &format!("branding-{size}.png")).await;

        let code = private["tracking_code"].as_str().expect("code");
        browser
            .call("Page.navigate", json!({"url": format!("{base}/t/{code}")}))
            .await;
        browser
            .wait_for(
                "the truck's area",
                "!!document.querySelector('.truck-area')",
            )
            .await;
        let exact_marker = browser
            .eval("!!document.querySelector('.truck-marker')")
            .await;
        assert_eq!(exact_marker, json!(false), "{size}: no exact truck marker");
        let text = browser
            .eval("document.getElementById('map-text').textContent + ' ' + document.getElementById('vehicle-text').textContent")
            .await;
        assert!(
            text.as_str().expect("text").contains("approximate area"),
            "{size}: {text}"
        );
        let data = browser
            .eval("JSON.parse(document.getElementById('track-data').textContent).track.vehicle")
            .await;
        assert_eq!(data["approximate"], true, "{data}");
        assert_ne!(data["lat"].as_f64(), Some(truck_lat), "{data}");
        let no_brand = browser
            .eval("!!document.getElementById('brand-name')")
            .await;
        assert_eq!(
            no_brand,
            json!(false),
            "{size}: A's brand is not on B's page"
        );
        screenshot(&mut browser, &format!("privacy-{size}.png")).await;
    }
}
