//! `GET /api/openapi.json`: the OpenAPI document, generated. The paths come
//! from the `#[utoipa::path]` of each handler, registered in the router with
//! `routes!` (so a route and its description are one entry), the schemas from
//! the request types of [`crate::contract`]. The document is built once per
//! [`super::app`] and served as is.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::contract::{ErrorBody, OpenApiDocumentView, OrderStatusName, PositionFormatName};

/// The parts of the document that belong to no route: title, version, the
/// bearer scheme, the error object every 4xx/5xx carries.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tracker",
        description = "Real-time shipment tracking and ETA engine: orders, positions, \
                       public tracking links. Errors are `{\"error\": {\"code\", \"message\"}}`; \
                       times are RFC 3339 UTC."
    ),
    modifiers(&BearerKey),
    components(schemas(ErrorBody, OrderStatusName, PositionFormatName)),
    tags(
        (name = "orders", description = "Orders, their statuses, ETAs, POD and tracking links (API key)"),
        (name = "positions", description = "Vehicle positions (API key of scope `positions`)"),
        (name = "api-keys", description = "The tenant's API keys (scope `admin`)"),
        (name = "branding", description = "The tenant's brand and location privacy on its public pages (scope `admin`)"),
        (name = "notifications", description = "E-mail rules and what was sent"),
        (name = "public", description = "No login: tracking pages, their data, the basemap"),
        (name = "ops", description = "Health, readiness, metrics, this document"),
    )
)]
pub(crate) struct ApiDoc;

/// `Authorization: Bearer KEY`, the scheme every tenant route names.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The generated document's text, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct DocumentJson(pub(crate) Arc<str>);

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "ops",
    summary = "This document",
    responses((status = 200, description = "the OpenAPI document", body = OpenApiDocumentView)),
)]
pub(crate) async fn document(Extension(doc): Extension<DocumentJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
        .into_response()
}
