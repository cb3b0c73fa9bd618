//! Branding and location privacy (issue 23): a tenant sets its brand with a
//! key of scope `admin` and sees only its own; a logo is recognised by its
//! bytes and capped in size and pixels; the brand shows on the tenant's
//! pages only (escaped), with its support contact. With location privacy on,
//! every public view of the truck far from the stops (JSON, page, trail,
//! WebSocket snapshot and deltas) shows its H3 area's centre, and the exact
//! position near a stop still ahead.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A PNG signature and IHDR chunk of `w`×`h`: what the upload checks read.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b
}

async fn put_logo(t: &TestApp, key: &str, content_type: &str, bytes: Vec<u8>) -> Reply {
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/branding/logo")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .expect("request");
    send(&t.app, request).await
}

async fn page(t: &TestApp, code: &str) -> String {
    let reply = call(&t.app, Method::GET, &format!("/t/{code}"), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.text
}

async fn put_branding(t: &TestApp, key: &str, body: Value) -> Reply {
    call(
        &t.app,
        Method::PUT,
        "/api/v1/branding",
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn each_tenant_sets_and_sees_only_its_own_brand() {
    let t = test_app().await;
    let set = put_branding(
        &t,
        &t.key_a,
        json!({"display_name": "Acme Freight", "primary_color": "#FFCC00",
               "support_email": "help@acme.example"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    // Yellow behind white text fails WCAG AA: it is darkened, and says so.
    assert_eq!(set.json["primary_color"], "#FFCC00");
    assert_eq!(set.json["adjusted"], true);
    assert_ne!(set.json["primary_color_used"], "#ffcc00");
    assert!(set.json["contrast_with_white"].as_f64().expect("ratio") >= 4.5);

    let a = call(
        &t.app,
        Method::GET,
        "/api/v1/branding",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(a.json["display_name"], "Acme Freight");
    let b = call(
        &t.app,
        Method::GET,
        "/api/v1/branding",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(
        b.json["display_name"],
        Value::Null,
        "B sees none of A's brand"
    );
    // B setting its own leaves A's alone.
    put_branding(&t, &t.key_b, json!({"display_name": "Other Haulage"})).await;
    let a = call(
        &t.app,
        Method::GET,
        "/api/v1/branding",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(a.json["display_name"], "Acme Freight");

    // A key without scope `admin` may not touch the brand.
    let keys = call(
        &t.app,
        Method::POST,
        "/api/v1/api-keys",
        Some(&t.key_a),
        Some(json!({"name": "dispatch", "scopes": ["orders"]})),
    )
    .await;
    let orders_key = keys.json["api_key"].as_str().expect("key").to_owned();
    let refused = put_branding(&t, &orders_key, json!({"display_name": "Hijack"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let no_key = call(&t.app, Method::GET, "/api/v1/branding", None, None).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_brand_fields_are_400s_naming_the_field() {
    let t = test_app().await;
    for (body, field) in [
        (json!({"primary_color": "yellow"}), "primary_color"),
        (json!({"support_email": "not an address"}), "support_email"),
        (json!({"support_url": "javascript:alert(1)"}), "support_url"),
        (json!({"support_phone": "ring ring"}), "support_phone"),
        (json!({"display_name": "x".repeat(200)}), "display_name"),
        (json!({"display_name": 12}), "display_name"),
        (json!({"colour": "#000000"}), "colour"),
    ] {
        let reply = put_branding(&t, &t.key_a, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(
            error_message(&reply).contains(field),
            "{body}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_logo_is_checked_by_its_bytes_and_shows_only_on_its_tenants_pages() {
    let t = test_app().await;
    let order_a = create_order(&t.app, &t.key_a, "LOGO-A", None).await;
    let order_b = create_order(&t.app, &t.key_b, "LOGO-B", None).await;
    let (code_a, code_b) = (code_of(&order_a), code_of(&order_b));

    // Refusals first: SVG (by its declared type), bytes that are not the
    // declared type, too many pixels, too many bytes.
    let svg = put_logo(&t, &t.key_a, "image/svg+xml", b"<svg/>".to_vec()).await;
    assert_eq!(
        svg.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        svg.text
    );
    assert!(error_message(&svg).contains("SVG"));
    let lying = put_logo(
        &t,
        &t.key_a,
        "image/png",
        b"<svg onload=alert(1)/>".to_vec(),
    )
    .await;
    assert_eq!(
        lying.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        lying.text
    );
    assert!(error_message(&lying).contains("`logo`"), "{}", lying.text);
    let mislabelled = put_logo(&t, &t.key_a, "image/jpeg", png_header(10, 10)).await;
    assert_eq!(mislabelled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_message(&mislabelled).contains("image/png"),
        "{}",
        mislabelled.text
    );
    let huge = put_logo(&t, &t.key_a, "image/png", png_header(4000, 100)).await;
    assert_eq!(huge.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&huge).contains("4000"), "{}", huge.text);
    let mut heavy = png_header(100, 100);
    heavy.resize(300 * 1024, 0);
    let heavy = put_logo(&t, &t.key_a, "image/png", heavy).await;
    assert_eq!(
        heavy.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        heavy.text
    );

    let logo = png_header(320, 80);
    let stored = put_logo(&t, &t.key_a, "image/png", logo.clone()).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.json["logo"]["width_px"], 320);
    assert_eq!(stored.json["logo"]["content_type"], "image/png");

    // A's page links it under A's code; B's page has no logo, and B's code
    // never serves A's.
    let html_a = page(&t, &code_a).await;
    assert!(
        html_a.contains(&format!("src=\"/t/{code_a}/logo?v=")),
        "{html_a}"
    );
    let html_b = page(&t, &code_b).await;
    assert!(!html_b.contains("brand-logo"), "B's page shows no logo");
    let from_b = call(
        &t.app,
        Method::GET,
        &format!("/t/{code_b}/logo"),
        None,
        None,
    )
    .await;
    assert_eq!(from_b.status, StatusCode::NOT_FOUND);

    let served = call(
        &t.app,
        Method::GET,
        &format!("/t/{code_a}/logo"),
        None,
        None,
    )
    .await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.raw, logo);
    assert_eq!(served.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(served.headers[header::CACHE_CONTROL], "no-cache");
    let etag = served.headers[header::ETAG]
        .to_str()
        .expect("etag")
        .to_owned();
    let sha = stored.json["logo"]["sha256"].as_str().expect("sha");
    let versioned = call(
        &t.app,
        Method::GET,
        &format!("/t/{code_a}/logo?v={}", &sha[..16]),
        None,
        None,
    )
    .await;
    assert!(
        versioned.headers[header::CACHE_CONTROL]
            .to_str()
            .expect("text")
            .contains("immutable")
    );
    let again = send(
        &t.app,
        Request::builder()
            .uri(format!("/t/{code_a}/logo"))
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // B cannot delete A's logo (B has none), A can.
    let b_delete = call(
        &t.app,
        Method::DELETE,
        "/api/v1/branding/logo",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(b_delete.status, StatusCode::NOT_FOUND);
    let a_delete = call(
        &t.app,
        Method::DELETE,
        "/api/v1/branding/logo",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(a_delete.status, StatusCode::NO_CONTENT);
    let gone = call(
        &t.app,
        Method::GET,
        &format!("/t/{code_a}/logo"),
        None,
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_brand_and_support_contact_show_escaped_and_unbranded_pages_look_as_before() {
    let t = test_app().await;
    let order_a = create_order(&t.app, &t.key_a, "BRAND-A", None).await;
    let order_b = create_order(&t.app, &t.key_b, "BRAND-B", None).await;
    let before = page(&t, &code_of(&order_a)).await;
    assert!(!before.contains("--brand"));
    assert!(!before.contains("id=\"support\""));

    let reply = put_branding(
        &t,
        &t.key_a,
        json!({"display_name": "Acme <script>alert(1)</script> & Sons",
               "primary_color": "#0a5bd3", "support_phone": "+1 (555) 010-0199",
               "support_email": "help@acme.example", "support_url": "https://acme.example/help?x=1&y=2"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["adjusted"], false);
    let html = page(&t, &code_of(&order_a)).await;
    assert!(html.contains("style=\"--brand: #0a5bd3\""), "{html}");
    assert!(html.contains("Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons"));
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("href=\"tel:+15550100199\""));
    assert!(html.contains("href=\"mailto:help@acme.example\""));
    assert!(html.contains("href=\"https://acme.example/help?x=1&amp;y=2\""));
    let html_b = page(&t, &code_of(&order_b)).await;
    assert!(
        !html_b.contains("Acme"),
        "A's brand never shows on B's page"
    );
    assert!(!html_b.contains("--brand"));
}

/// A position posted with tenant A's key for `vehicle`.
/// Positions are taken per whole second: each call is given its own, `ago_s`
/// seconds back.
async fn post_position(
    t: &TestApp,
    vehicle: &str,
    (lat, lon): (f64, f64),
    heading: Option<f64>,
    ago_s: i64,
) {
    let at = Utc::now() - chrono::Duration::seconds(ago_s);
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(json!([{"vehicle_id": vehicle, "time": at.to_rfc3339(),
                     "lat": lat, "lon": lon, "heading_deg": heading}])),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["accepted"], 1, "{}", reply.text);
}

/// The centre of the resolution-7 H3 cell of a point.
fn cell_centre(lat: f64, lon: f64) -> (f64, f64) {
    let cell = h3o::LatLng::new(lat, lon)
        .expect("valid")
        .to_cell(h3o::Resolution::Seven);
    let centre = h3o::LatLng::from(cell);
    (centre.lat(), centre.lng())
}

async fn serve(t: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = portal_api::app(t.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn next_of_type(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    kind: &str,
) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = message {
            let json: Value = serde_json::from_str(&text).expect("JSON");
            if json["type"] == kind {
                return json;
            }
        }
    }
}

#[tokio::test]
async fn with_privacy_on_every_public_view_shows_the_area_far_from_the_stops() {
    let t = test_app().await;
    let bad = call(
        &t.app,
        Method::PUT,
        "/api/v1/tracking-privacy",
        Some(&t.key_a),
        Some(json!({"enabled": true, "cell_resolution": 15})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&bad).contains("cell_resolution"),
        "{}",
        bad.text
    );
    let on = call(
        &t.app,
        Method::PUT,
        "/api/v1/tracking-privacy",
        Some(&t.key_a),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    assert_eq!(
        on.json,
        json!({"enabled": true, "exact_within_m": 5000.0, "cell_resolution": 7})
    );
    let b_sees = call(
        &t.app,
        Method::GET,
        "/api/v1/tracking-privacy",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(
        b_sees.json["enabled"], false,
        "privacy is per tenant, off by default"
    );

    let order = create_order(&t.app, &t.key_a, "PRIV-1", Some("TRUCK-P")).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    // Near York, PA: ~70 km from both Baltimore stops.
    let (far_lat, far_lon) = (39.9626, -76.7277);
    post_position(&t, "TRUCK-P", (far_lat, far_lon), Some(120.0), 30).await;

    let public = public_track(&t, &code).await;
    let (c_lat, c_lon) = cell_centre(far_lat, far_lon);
    assert_eq!(
        public["vehicle"]["approximate"], true,
        "{}",
        public["vehicle"]
    );
    assert_eq!(public["vehicle"]["lat"].as_f64(), Some(c_lat));
    assert_eq!(public["vehicle"]["lon"].as_f64(), Some(c_lon));
    assert_eq!(public["vehicle"]["heading_deg"], Value::Null);
    let text = public.to_string();
    for exact in [far_lat.to_string(), far_lon.to_string()] {
        assert!(
            !text.contains(&exact),
            "{exact} leaked in the public JSON: {text}"
        );
    }
    let html = page(&t, &code).await;
    assert!(html.contains("approximate area"));
    assert!(
        !html.contains(&far_lat.to_string()),
        "the page leaks the exact position"
    );

    // The WebSocket: the snapshot and a delta far away are areas; a delta
    // within 5 km of the delivery is exact.
    let addr = serve(&t).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/t/{code}/ws"))
        .await
        .expect("connect");
    let snapshot = next_of_type(&mut ws, "snapshot").await;
    assert_eq!(snapshot["vehicle"]["approximate"], true);
    assert!(!snapshot.to_string().contains(&far_lat.to_string()));
    let (far2_lat, far2_lon) = (39.8012, -76.6604);
    post_position(&t, "TRUCK-P", (far2_lat, far2_lon), None, 20).await;
    let delta = next_of_type(&mut ws, "position").await;
    assert_eq!(delta["vehicle"]["approximate"], true, "{delta}");
    assert_eq!(
        (
            delta["vehicle"]["lat"].as_f64(),
            delta["vehicle"]["lon"].as_f64()
        ),
        {
            let (a, b) = cell_centre(far2_lat, far2_lon);
            (Some(a), Some(b))
        }
    );
    assert!(!delta.to_string().contains(&far2_lat.to_string()));
    let (near_lat, near_lon) = (39.2905, -76.5900); // ~1.6 km from the pickup
    post_position(&t, "TRUCK-P", (near_lat, near_lon), Some(90.0), 10).await;
    let delta = next_of_type(&mut ws, "position").await;
    assert_eq!(delta["vehicle"]["approximate"], false, "{delta}");
    assert_eq!(delta["vehicle"]["lat"].as_f64(), Some(near_lat));
    assert_eq!(delta["vehicle"]["heading_deg"].as_f64(), Some(90.0));

    // The trail: the far points as their areas, the near one exact.
    let public = public_track(&t, &code).await;
    let trail = public["trail"].as_array().expect("a trail");
    let trail_text = public["trail"].to_string();
    assert!(!trail_text.contains(&far_lat.to_string()), "{trail_text}");
    assert!(!trail_text.contains(&far2_lat.to_string()), "{trail_text}");
    assert_eq!(trail.last(), Some(&json!([near_lon, near_lat])));
}

#[tokio::test]
async fn without_privacy_the_truck_has_a_heading_and_a_trail() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "HEAD-1", Some("TRUCK-H")).await;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    post_position(&t, "TRUCK-H", (39.2600, -76.6500), None, 20).await;
    // ~1.1 km due east: the heading, not given, comes from the trail.
    post_position(&t, "TRUCK-H", (39.2600, -76.6373), None, 10).await;
    let public = public_track(&t, &code_of(&order)).await;
    assert_eq!(public["vehicle"]["approximate"], false);
    let heading = public["vehicle"]["heading_deg"]
        .as_f64()
        .expect("a heading");
    assert!((heading - 90.0).abs() < 1.0, "{heading}");
    assert_eq!(
        public["trail"],
        json!([[-76.65, 39.26], [-76.6373, 39.26]]),
        "the road driven, oldest first"
    );
}
