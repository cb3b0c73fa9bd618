//! `GET /api/v1/map/tiles/{z}/{x}/{y}` on the Baltimore extract: city-zoom tiles
//! decodes (with a decoder independent of the encoder) into the expected
//! layers; a tile comes gzipped when asked, with an `ETag` that answers 304; a
//! tile outside the map is empty; bad coordinates are a 400 naming the field;
//! and the route is in the OpenAPI document.

use crate::common;
#[path = "../../../road-graph/tests/support/mvt_decode.rs"]
mod mvt_decode;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{call, error_message, send, test_app_with};
use portal_api::PortalConfig;
use road_graph::{LatLon, ProfileConfig, TileId, import_pbf, read_basemap};

/// The app on Baltimore's extract (Porto's holds roads only), with its basemap.
async fn baltimore_app() -> common::TestApp {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/osm/baltimore.osm.pbf");
    let (graph, _) = import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {}).expect("imports");
    let basemap = read_basemap(&path, &graph).expect("the basemap reads");
    let t = test_app_with(
        PortalConfig::recommended("https://track.example.com"),
        Some(Arc::new(graph)),
    )
    .await;
    t.state.install_basemap(Arc::new(basemap));
    t
}

fn tile_uri(p: LatLon, z: u8) -> String {
    let t = TileId::containing(p, z);
    format!("/api/v1/map/tiles/{}/{}/{}", t.z, t.x, t.y)
}

#[tokio::test]
async fn city_zoom_tiles_have_water_roads_with_names_and_places() {
    let t = baltimore_app().await;
    // Fells Point: the neighbourhood's label and its streets' names.
    let fells = call(
        &t.app,
        Method::GET,
        &tile_uri(LatLon::new(39.2822, -76.5946), 14),
        None,
        None,
    )
    .await;
    let layers = mvt_decode::decode(&fells.raw).expect("the tile decodes");
    let places = layers.iter().find(|l| l.name == "places").expect("places");
    assert!(
        places
            .features
            .iter()
            .any(|f| f.properties.get("name").map(String::as_str) == Some("Fells Point"))
    );
    // A basin by the Inner Harbor: water.
    let harbor = LatLon::new(39.2865, -76.6047);
    let uri = tile_uri(harbor, 14);
    let reply = call(&t.app, Method::GET, &uri, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/vnd.mapbox-vector-tile"
    );
    assert!(
        reply.headers[header::CACHE_CONTROL]
            .to_str()
            .expect("ascii")
            .starts_with("public")
    );
    let layers = mvt_decode::decode(&reply.raw).expect("the tile decodes");
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    for wanted in ["water", "roads"] {
        assert!(names.contains(&wanted), "layer {wanted} in {names:?}");
    }
    let roads = layers.iter().find(|l| l.name == "roads").expect("roads");
    assert!(
        roads
            .features
            .iter()
            .any(|f| f.properties.contains_key("name")),
        "street names at zoom 14"
    );

    // The same tile again: gzipped when asked, and 304 for its ETag.
    let etag = reply.headers[header::ETAG]
        .to_str()
        .expect("ascii")
        .to_owned();
    let request = Request::builder()
        .uri(&uri)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .expect("request");
    let gzipped = send(&t.app, request).await;
    assert_eq!(gzipped.headers[header::CONTENT_ENCODING], "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.raw[..])
        .read_to_end(&mut plain)
        .expect("gunzips");
    assert_eq!(plain, reply.raw, "the same tile, compressed");
    assert!(gzipped.raw.len() < reply.raw.len());
    let request = Request::builder()
        .uri(&uri)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&t.app, request).await.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_long_haul_tile_is_not_empty_and_one_outside_the_map_is() {
    let t = baltimore_app().await;
    let wide = call(
        &t.app,
        Method::GET,
        &tile_uri(LatLon::new(39.29, -76.61), 6),
        None,
        None,
    )
    .await;
    let layers = mvt_decode::decode(&wide.raw).expect("decodes");
    assert!(
        layers
            .iter()
            .any(|l| l.name == "roads" && !l.features.is_empty()),
        "main roads at zoom 6"
    );
    let far = call(
        &t.app,
        Method::GET,
        "/api/v1/map/tiles/12/100/100",
        None,
        None,
    )
    .await;
    assert_eq!(far.status, StatusCode::OK);
    assert!(far.raw.is_empty(), "no data there, an empty tile");
}

#[tokio::test]
async fn bad_coordinates_are_a_400_naming_the_field() {
    let t = baltimore_app().await;
    for (uri, field) in [
        ("/api/v1/map/tiles/x/0/0", "`z`"),
        ("/api/v1/map/tiles/21/0/0", "`z`"),
        ("/api/v1/map/tiles/3/8/0", "`x`"),
        ("/api/v1/map/tiles/3/0/-1", "`y`"),
        ("/api/v1/map/tiles/3/0/9.mvt", "`y`"),
    ] {
        let reply = call(&t.app, Method::GET, uri, None, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            error_message(&reply).starts_with(field),
            "{uri}: {}",
            reply.text
        );
    }
    let doc = portal_api::openapi_document();
    let json = serde_json::to_value(&doc).expect("serializes");
    let op = &json["paths"]["/api/v1/map/tiles/{z}/{x}/{y}"]["get"];
    assert!(
        op["responses"]["200"]["content"]["application/vnd.mapbox-vector-tile"].is_object(),
        "{op}"
    );
}
