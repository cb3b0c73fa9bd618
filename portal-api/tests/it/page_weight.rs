//! What one load of the tracking page costs on the wire, and how it is cached:
//! the page and every file it links, fetched as a browser would (brotli and gzip
//! accepted) and as a client that accepts no encoding, decoded back to the same
//! bytes; versioned asset names cached as immutable with an `ETag` that answers
//! 304; a viewer over the lookup limit and a dead link get readable HTML pages.

use crate::common;

use std::io::Read;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use portal_api::PortalConfig;

/// Sends `GET uri` with `Accept-Encoding: encoding` (none when empty); the
/// reply's body as bytes on the wire and decoded.
async fn fetch(app: &axum::Router, uri: &str, encoding: &str) -> (Reply, usize, Vec<u8>) {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    if !encoding.is_empty() {
        builder = builder.header(header::ACCEPT_ENCODING, encoding);
    }
    let reply = send(app, builder.body(Body::empty()).expect("request")).await;
    let wire = reply.raw.clone();
    let decoded = match reply
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some("br") => {
            let mut out = Vec::new();
            brotli::Decompressor::new(&wire[..], 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
            out
        }
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_end(&mut out)
                .expect("valid gzip");
            out
        }
        Some(other) => panic!("unexpected encoding {other}"),
        None => wire.clone(),
    };
    (reply, wire.len(), decoded)
}

/// The `/assets/…` URLs a page links to.
fn linked_assets(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|piece| piece.starts_with("/assets/") && !piece.contains("LICENSE"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn one_page_load_is_small_compressed_and_decodes_to_the_same_bytes() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "WEIGHT-1", Some("TRUCK-W")).await;
    set_status(
        &t.app,
        &t.key_a,
        order["id"].as_str().expect("valid in this test"),
        "dispatched",
    )
    .await;
    let page = format!("/t/{}", code_of(&order));

    let (plain_page, plain_page_bytes, plain_html) = fetch(&t.app, &page, "").await;
    assert_eq!(plain_page.status, StatusCode::OK);
    assert!(plain_page.headers.get(header::CONTENT_ENCODING).is_none());
    let html = String::from_utf8(plain_html.clone()).expect("utf-8");
    let assets = linked_assets(&html);
    assert_eq!(
        assets.len(),
        5,
        "three scripts (Leaflet, the basemap, the page's) and two style sheets: {assets:?}"
    );

    let mut plain_total = plain_page_bytes;
    let mut wire_total = 0;
    for (uri, encodings) in std::iter::once(&page)
        .chain(assets.iter())
        .map(|uri| (uri, ["br, gzip", "gzip"]))
    {
        let (_, plain_len, plain) = fetch(&t.app, uri, "").await;
        if uri != &page {
            plain_total += plain_len;
        }
        for (i, encoding) in encodings.iter().enumerate() {
            let (reply, wire, decoded) = fetch(&t.app, uri, encoding).await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}");
            let expected = if encoding.starts_with("br") {
                "br"
            } else {
                "gzip"
            };
            assert_eq!(
                reply
                    .headers
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().expect("valid in this test")),
                Some(expected),
                "{uri} with {encoding}"
            );
            // The page is rendered per request (its times move); the assets
            // are the same bytes.
            if uri != &page {
                assert_eq!(decoded, plain, "{uri} decodes to the same bytes");
            } else {
                assert!(
                    String::from_utf8(decoded)
                        .expect("valid in this test")
                        .contains("WEIGHT-1")
                );
            }
            assert!(
                wire < plain_len,
                "{uri}: {wire} bytes compressed of {plain_len}"
            );
            if i == 0 {
                wire_total += wire;
            }
        }
    }
    println!(
        "one page load (HTML + scripts + style sheets, no map data): \
         {plain_total} bytes uncompressed, {wire_total} bytes with brotli"
    );
    assert!(
        wire_total < 150 * 1024,
        "first render {wire_total} bytes compressed, over 150 kB"
    );
    assert!(
        wire_total * 3 < plain_total,
        "compression saves at least two thirds"
    );
}

#[tokio::test]
async fn versioned_assets_are_immutable_and_etags_answer_not_modified() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "CACHE-1", Some("TRUCK-C")).await;
    let (page, _, html) = fetch(&t.app, &format!("/t/{}", code_of(&order)), "").await;
    assert_eq!(page.status, StatusCode::OK);
    for uri in linked_assets(&String::from_utf8(html).expect("valid in this test")) {
        let (first, _, _) = fetch(&t.app, &uri, "br").await;
        let cache = first.headers[header::CACHE_CONTROL]
            .to_str()
            .expect("valid in this test");
        assert!(
            cache.contains("immutable") && cache.contains("max-age=31536000"),
            "{uri}: {cache}"
        );
        assert_eq!(first.headers[header::VARY], "Accept-Encoding");
        let etag = first.headers[header::ETAG]
            .to_str()
            .expect("valid in this test")
            .to_owned();
        let again = send(
            &t.app,
            Request::builder()
                .uri(&uri)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .expect("valid in this test"),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.raw.is_empty());
        assert_eq!(again.headers[header::ETAG], etag.as_str());

        // The plain name is the same file, cached briefly.
        let name = uri.trim_start_matches("/assets/");
        let parts: Vec<&str> = name.split('.').collect();
        let plain = format!("/assets/{}.{}", parts[0], parts[2]);
        let (reply, _, _) = fetch(&t.app, &plain, "").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(reply.headers[header::ETAG], etag.as_str());
    }
    let (missing, _, _) = fetch(&t.app, "/assets/track.0000000000.js", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rate_limited_viewer_and_a_dead_link_get_readable_pages() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.public_burst = 2;
    config.public_per_s = 0.01;
    let t = test_app_with(config, None).await;
    let dead = "/t/abcdefghijklmnopqrstuvwx";
    for _ in 0..2 {
        let (reply, _, _) = fetch(&t.app, dead, "").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(
            reply.text.contains("<h1>Tracking link not found</h1>"),
            "{}",
            reply.text
        );
        assert!(
            reply.headers[header::CONTENT_TYPE]
                .to_str()
                .expect("valid in this test")
                .starts_with("text/html")
        );
    }
    let (limited, _, _) = fetch(&t.app, dead, "").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("valid in this test")
            .starts_with("text/html")
    );
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .expect("valid in this test")
        .parse()
        .expect("valid in this test");
    assert!(retry >= 1);
    assert!(
        limited.text.contains("Please wait a moment"),
        "{}",
        limited.text
    );
    assert!(!limited.text.contains("\"error\""), "not the JSON error");
    // The JSON API keeps its JSON error.
    let json = call(
        &t.app,
        Method::GET,
        "/api/v1/track/abcdefghijklmnopqrstuvwx",
        None,
        None,
    )
    .await;
    assert_eq!(json.json["error"]["code"], "rate_limited");
}
