//! The page's static files, embedded in the binary: our own script and style, and
//! the vendored Leaflet (BSD-2-Clause, its licence served alongside).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::PathParams;
use crate::contract::ErrorBody;
use crate::error::AppError;

/// `(name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "track.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/track.js"),
    ),
    (
        "track.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/track.css"),
    ),
    (
        "leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.js"),
    ),
    (
        "leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.css"),
    ),
    (
        "LICENSE-leaflet.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/LICENSE"),
    ),
];

#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "public",
    summary = "An embedded page asset",
    params(("file" = String, Path)),
    responses(
        (status = 200, description = "the file"),
        (status = 400, description = "a field or parameter is invalid; the message names it", body = ErrorBody),
        (status = 404, description = "no such thing (or another tenant's)", body = ErrorBody)
    ),
)]
pub(crate) async fn asset(PathParams(file): PathParams<String>) -> Result<Response, AppError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, "not_found", "no such asset"))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            // Embedded assets change only with the binary; an hour is a fair cache.
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *bytes,
    )
        .into_response())
}
