//! The public side through the router: tracking links (lookup, rotation,
//! revocation, one 404 for everything missing, rate limiting), positions reaching
//! the view, ETAs, proof of delivery, the page itself and the basemap.

use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{Duration, Utc};
use common::*;
use portal_api::PortalConfig;
use serde_json::json;

#[tokio::test]
async fn the_public_view_shows_the_shipment_but_not_who_it_is_for() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-77", Some("TRUCK-1")).await;
    let reply = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&order)),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = &reply.json;
    assert_eq!(v["reference"], "LOAD-77");
    assert_eq!(v["status"], "created");
    assert_eq!(v["stops"].as_array().expect("stops").len(), 2);
    assert!(v["vehicle"].is_null() && v["eta"].is_null());
    for secret in ["Jane Receiver", "jane@example.com", "TRUCK-1", "ord_"] {
        assert!(
            !reply.text.contains(secret),
            "the public view leaks `{secret}`"
        );
    }
}

#[tokio::test]
async fn unknown_revoked_and_malformed_codes_get_the_same_404() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-1", None).await;
    let id = order["id"].as_str().expect("id");
    let old = code_of(&order);

    let rotated = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/tracking-link/rotate"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new = code_of(&rotated.json);
    assert_ne!(new, old);
    assert_eq!(
        call(
            &t.app,
            Method::GET,
            &format!("/api/v1/track/{new}"),
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );

    let revoked = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{old}"),
        None,
        None,
    )
    .await;
    let unknown = call(
        &t.app,
        Method::GET,
        "/api/v1/track/abcdefghijklmnopqrstuvwx",
        None,
        None,
    )
    .await;
    let malformed = call(&t.app, Method::GET, "/api/v1/track/../../etc", None, None).await;
    assert_eq!(revoked.status, StatusCode::NOT_FOUND);
    assert_eq!(
        revoked.text, unknown.text,
        "a revoked code must look exactly like one that never existed"
    );
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);

    let page_revoked = call(&t.app, Method::GET, &format!("/t/{old}"), None, None).await;
    let page_unknown = call(
        &t.app,
        Method::GET,
        "/t/abcdefghijklmnopqrstuvwx",
        None,
        None,
    )
    .await;
    assert_eq!(page_revoked.status, StatusCode::NOT_FOUND);
    assert_eq!(page_revoked.text, page_unknown.text);

    let off = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/orders/{id}/tracking-link"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert!(off.json["tracking_url"].is_null());
    assert_eq!(off.json["tracking_active"], false);
    assert_eq!(
        call(
            &t.app,
            Method::GET,
            &format!("/api/v1/track/{new}"),
            None,
            None
        )
        .await
        .text,
        unknown.text
    );
}

#[tokio::test]
async fn public_lookups_are_rate_limited_per_client() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.public_burst = 3;
    config.public_per_s = 0.01;
    let t = test_app_with(config, None).await;
    for _ in 0..3 {
        let reply = call(
            &t.app,
            Method::GET,
            "/api/v1/track/abcdefghijklmnopqrstuvwx",
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let limited = call(
        &t.app,
        Method::GET,
        "/api/v1/track/abcdefghijklmnopqrstuvwx",
        None,
        None,
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json["error"]["code"], "rate_limited");
    assert!(limited.headers.get(header::RETRY_AFTER).is_some());
    // Tenant API calls are not public lookups and are not limited by it.
    let list = call(&t.app, Method::GET, "/api/v1/orders", Some(&t.key_a), None).await;
    assert_eq!(list.status, StatusCode::OK);
}

#[tokio::test]
async fn a_posted_position_shows_on_a_dispatched_order_only() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-3", Some("TRUCK-3")).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    let now = Utc::now();
    let batch = json!([
        {"vehicle_id": "TRUCK-3", "time": (now - Duration::seconds(30)).to_rfc3339(), "lat": 39.2790, "lon": -76.6000, "speed_mps": 11.0},
        {"vehicle_id": "TRUCK-3", "time": now.to_rfc3339(), "lat": 999.0, "lon": -76.6},
        {"vehicle_id": "", "time": now.to_rfc3339(), "lat": 39.0, "lon": -76.6},
    ]);
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(batch.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["accepted"], 1);
    assert_eq!(reply.json["results"][1]["status"], "rejected");
    assert_eq!(reply.json["results"][1]["reason"], "out_of_range");
    assert_eq!(reply.json["results"][1]["field"], "lat");
    assert_eq!(reply.json["results"][2]["reason"], "invalid_vehicle_id");
    assert_eq!(reply.json["results"][2]["field"], "vehicle_id");
    // Not dispatched yet: the truck may be on someone else's load.
    let before = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert!(before.json["vehicle"].is_null());

    set_status(&t.app, &t.key_a, id, "dispatched").await;
    let fresh = json!([{"vehicle_id": "TRUCK-3", "time": now.to_rfc3339(), "lat": 39.2795, "lon": -76.5990}]);
    call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(fresh),
    )
    .await;
    let during = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert_eq!(during.json["vehicle"]["lat"], 39.2795);
    // An older fix arriving late does not move the truck back.
    let stale = json!([{"vehicle_id": "TRUCK-3", "time": (now - Duration::seconds(10)).to_rfc3339(), "lat": 39.0, "lon": -76.0}]);
    let receipt = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(stale),
    )
    .await;
    // Said so, not "accepted" and then dropped.
    assert_eq!(
        receipt.json["results"][0]["status"], "stale",
        "{}",
        receipt.text
    );
    let after = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert_eq!(after.json["vehicle"]["lat"], 39.2795);

    set_status(&t.app, &t.key_a, id, "delivered").await;
    let done = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert!(
        done.json["vehicle"].is_null(),
        "no live location after delivery"
    );

    let empty = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(json!([])),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let all_bad = call(
        &t.app,
        Method::POST,
        "/api/v1/positions",
        Some(&t.key_a),
        Some(json!([{"vehicle_id": "X"}])),
    )
    .await;
    assert_eq!(all_bad.status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&all_bad).starts_with("`[0].time`"),
        "{}",
        all_bad.text
    );
}

#[tokio::test]
async fn an_eta_is_shown_for_the_next_stop_with_its_window() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-4", Some("TRUCK-4")).await;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    let eta = json!({"stop_index": 0, "eta": "2025-11-25T14:10:00Z", "p10": "2025-11-25T14:00:00Z",
                     "p90": "2025-11-25T14:30:00Z", "reasons": ["traffic"], "route": [[-76.60, 39.279], [-76.611, 39.278]]});
    let reply = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/eta"),
        Some(&t.key_a),
        Some(eta),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["shown"], true);
    let track = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{}", code_of(&order)),
        None,
        None,
    )
    .await;
    assert_eq!(track.json["eta"]["at"], "2025-11-25T14:10:00Z");
    assert_eq!(track.json["eta"]["reasons"], json!(["traffic"]));

    let later_stop = json!({"stop_index": 1, "eta": "2025-11-25T19:00:00Z"});
    let reply = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/eta"),
        Some(&t.key_a),
        Some(later_stop),
    )
    .await;
    assert_eq!(
        reply.json["shown"], false,
        "the page shows the next stop's ETA"
    );

    let inverted =
        json!({"stop_index": 0, "eta": "2025-11-25T14:10:00Z", "p10": "2025-11-25T15:00:00Z"});
    let reply = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/eta"),
        Some(&t.key_a),
        Some(inverted),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&reply).starts_with("`p10`"));
    let no_stop = json!({"stop_index": 5, "eta": "2025-11-25T14:10:00Z"});
    let reply = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/eta"),
        Some(&t.key_a),
        Some(no_stop),
    )
    .await;
    assert!(error_message(&reply).starts_with("`stop_index`"));
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

fn multipart(key: &str, uri: &str, parts: &[(&str, Option<&str>, &str, &[u8])]) -> Request<Body> {
    let boundary = "XBOUNDARYX";
    let mut body = Vec::new();
    for (name, file_name, content_type, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes()),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn proof_of_delivery_is_type_checked_size_limited_and_public_only_after_delivery() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.pod_max_bytes = 4096;
    let t = test_app_with(config, None).await;
    let order = create_order(&t.app, &t.key_a, "LOAD-POD", None).await;
    let id = order["id"].as_str().expect("id");
    let code = code_of(&order);
    let uri = format!("/api/v1/orders/{id}/pod");

    let pod = send(
        &t.app,
        multipart(
            &t.key_a,
            &uri,
            &[
                ("file", Some("pod.png"), "image/png", PNG),
                ("signed_by", None, "", b"J. Doe"),
            ],
        ),
    )
    .await;
    assert_eq!(pod.status, StatusCode::CREATED, "{}", pod.text);
    assert_eq!(pod.json["content_type"], "image/png");
    assert_eq!(pod.json["signed_by"], "J. Doe");
    let pod_id = pod.json["id"].as_str().expect("pod id");

    let text = send(
        &t.app,
        multipart(
            &t.key_a,
            &uri,
            &[("file", Some("x.txt"), "text/plain", b"hello")],
        ),
    )
    .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let disguised = send(
        &t.app,
        multipart(
            &t.key_a,
            &uri,
            &[("file", Some("x.pdf"), "application/pdf", PNG)],
        ),
    )
    .await;
    assert_eq!(disguised.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = vec![0xFFu8; 8192];
    let too_big = send(
        &t.app,
        multipart(
            &t.key_a,
            &uri,
            &[("file", Some("big.jpg"), "image/jpeg", &big)],
        ),
    )
    .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let missing = send(
        &t.app,
        multipart(&t.key_a, &uri, &[("note", None, "", b"no file")]),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&missing).starts_with("`file`"));

    let public = format!("/t/{code}/pod/{pod_id}");
    assert_eq!(
        call(&t.app, Method::GET, &public, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    set_status(&t.app, &t.key_a, id, "delivered").await;
    let file = call(&t.app, Method::GET, &public, None, None).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(file.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let track = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    assert_eq!(track.json["pod"][0]["url"], public);
}

#[tokio::test]
async fn the_page_renders_without_javascript() {
    let t = test_app().await;
    let mut body = order_body("<b>LOAD&42</b>", Some("TRUCK-5"));
    body["stops"][0]["name"] = json!("Harbor <Warehouse>");
    let reply = call(
        &t.app,
        Method::POST,
        "/api/v1/orders",
        Some(&t.key_a),
        Some(body),
    )
    .await;
    let order = reply.json;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(&t.key_a),
        Some(
            json!({"status": "note", "note": "Driver checked in <early>", "visibility": "public"}),
        ),
    )
    .await;
    let page = call(
        &t.app,
        Method::GET,
        &format!("/t/{}", code_of(&order)),
        None,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text;
    assert!(
        html.contains("&lt;b&gt;LOAD&amp;42&lt;/b&gt;"),
        "reference escaped"
    );
    assert!(!html.contains("<b>LOAD"), "no raw markup from data");
    assert!(html.contains("Harbor &lt;Warehouse&gt;"));
    assert!(html.contains("id=\"status\"") && html.contains(">Dispatched<"));
    assert!(html.contains("aria-current=\"step\""));
    assert!(
        html.contains("Nov 25, 8:00 AM – 10:00 AM EST"),
        "pickup window in local time, on the English page's 12-hour clock"
    );
    assert!(
        html.contains("Nov 25, 1:00 PM – 3:00 PM EST"),
        "delivery window in local time"
    );
    assert!(html.contains("Driver checked in &lt;early&gt;"));
    assert!(html.contains("© OpenStreetMap contributors"));
    assert!(
        html.contains("id=\"map\""),
        "the map is shown while under way"
    );
    assert!(!html.contains("Jane Receiver"));
    // The page links each asset by its versioned name (`track.<hash>.js`).
    let linked: Vec<&str> = html
        .split('"')
        .filter(|piece| piece.starts_with("/assets/"))
        .collect();
    for (stem, ext) in [
        ("leaflet", "js"),
        ("leaflet", "css"),
        ("track", "js"),
        ("track", "css"),
    ] {
        let asset = linked
            .iter()
            .find(|url| {
                let name = url.trim_start_matches("/assets/");
                let parts: Vec<&str> = name.split('.').collect();
                parts.len() == 3 && parts[0] == stem && parts[2] == ext && parts[1].len() == 10
            })
            .unwrap_or_else(|| panic!("{stem}.{ext} linked by a versioned name: {linked:?}"));
        let reply = call(&t.app, Method::GET, asset, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
    }
    let licence = call(
        &t.app,
        Method::GET,
        "/assets/LICENSE-leaflet.txt",
        None,
        None,
    )
    .await;
    assert!(licence.text.contains("BSD 2-Clause"));
}

#[tokio::test]
async fn the_basemap_comes_from_our_own_road_graph() {
    let mut drawn = road_graph::DrawnMap::new("a---b---c\n    |\n    d", 100.0);
    drawn.way("abc", &[("highway", "primary")]);
    drawn.way("bd", &[("highway", "residential")]);
    let (graph, _) = drawn.build().expect("graph");
    let (a, d) = (drawn.pos('a'), drawn.pos('d'));
    let t = test_app_with(
        PortalConfig::recommended("https://track.example.com"),
        Some(Arc::new(graph)),
    )
    .await;
    let bbox = format!(
        "{},{},{},{}",
        a.lon - 0.01,
        d.lat - 0.01,
        a.lon + 0.02,
        a.lat + 0.01
    );
    let all = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/map/roads?bbox={bbox}"),
        None,
        None,
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.json["type"], "FeatureCollection");
    assert_eq!(all.json["attribution"], "© OpenStreetMap contributors");
    let classes: Vec<&str> = all.json["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["class"].as_str().expect("class"))
        .collect();
    assert!(
        classes.contains(&"primary") && classes.contains(&"residential"),
        "{classes:?}"
    );
    let major = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/map/roads?bbox={bbox}&detail=major"),
        None,
        None,
    )
    .await;
    assert!(
        major.json["features"]
            .as_array()
            .expect("features")
            .iter()
            .all(|f| f["properties"]["class"] == "primary")
    );
    let far = call(
        &t.app,
        Method::GET,
        "/api/v1/map/roads?bbox=10,10,10.1,10.1",
        None,
        None,
    )
    .await;
    assert_eq!(far.json["features"].as_array().expect("features").len(), 0);
    let huge = call(
        &t.app,
        Method::GET,
        "/api/v1/map/roads?bbox=-80,30,-70,40",
        None,
        None,
    )
    .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST);
    assert!(error_message(&huge).starts_with("`bbox`"));
}
