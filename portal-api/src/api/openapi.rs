//! `GET /api/openapi.json`: the hand-written OpenAPI 3 document, embedded. A test
//! checks that it parses and describes exactly the routes in [`super::ROUTES`].

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document's text.
pub const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");

pub(crate) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}
