//! `/api/v1/branding` and `/api/v1/tracking-privacy`: a tenant's brand and
//! location privacy, set with a key of scope `admin` (the scope that manages
//! the tenant's keys, its other tenant-wide setting); and `/t/{code}/logo`,
//! the public logo of the tenant behind a tracking link.
//!
//! A logo is the request body itself (`Content-Type: image/png`,
//! `image/jpeg` or `image/webp`), recognised by its bytes: a body whose bytes
//! are not what its header says is refused, and the stored type is always
//! the sniffed one (see [`crate::branding::sniff_logo`] for why not SVG).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::responses::{Invalid, KeyedBodyErrors, KeyedErrors, NoSettings, RateLimited};
use super::{AdminKey, ClientIp, JsonBody, Params, PathParams, RawBody};
use crate::branding::{LogoMeta, branding_from_body, branding_view, sniff_logo};
use crate::contract::{BrandingBody, BrandingView, ErrorBody, PrivacyBody, from_json};
use crate::error::AppError;
use crate::privacy::{DEFAULT_CELL_RESOLUTION, DEFAULT_EXACT_WITHIN_M, LocationPrivacy};
use crate::secrets::bytes_sha256;
use crate::state::AppState;
use store::SettingsStore;
use store::branding::LogoError;

/// The body limit of `PUT /api/v1/branding/logo`: the logo limit itself, so
/// that a larger file is a 413 naming it.
pub(crate) const LOGO_BODY_BYTES: usize = crate::branding::MAX_LOGO_BYTES;

fn settings(state: &AppState) -> Result<&dyn SettingsStore, AppError> {
    state.store().settings().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_supported",
            "this store keeps no tenant settings",
        )
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/branding",
    tag = "branding",
    summary = "The tenant's brand on its tracking pages and e-mails",
    responses(
        (status = 200, description = "the brand: fields, `primary_color_used` (after the contrast check), `adjusted`, `logo`", body = BrandingView),
        KeyedErrors,
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_branding(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<BrandingView>, AppError> {
    let branding = settings(&state)?.branding(tenant.id).await?;
    Ok(Json(branding_view(&branding)))
}

#[utoipa::path(
    put,
    path = "/api/v1/branding",
    tag = "branding",
    summary = "Set the tenant's brand (the logo has its own route)",
    request_body = BrandingBody,
    responses(
        (status = 200, description = "the brand as stored; `adjusted: true` when the colour was darkened to pass WCAG AA behind white text", body = BrandingView),
        KeyedBodyErrors,
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn put_branding(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    JsonBody(body): JsonBody,
) -> Result<Json<BrandingView>, AppError> {
    let body = from_json::<BrandingBody>(&body)?;
    let store = settings(&state)?;
    let branding = branding_from_body(body, None)?;
    let stored = store.set_branding(tenant.id, branding).await?;
    Ok(Json(branding_view(&stored)))
}

#[utoipa::path(
    put,
    path = "/api/v1/branding/logo",
    tag = "branding",
    summary = "Upload the tenant's logo (PNG, JPEG or WebP; at most 256 KiB and 1024×1024 px)",
    request_body(content = Vec<u8>, description = "the image's bytes", content_type = "image/png"),
    responses(
        (status = 200, description = "the brand with the new logo's metadata", body = BrandingView),
        KeyedErrors,
        (status = 413, description = "the file is over 256 KiB", body = ErrorBody),
        (status = 415, description = "the declared type is not image/png, image/jpeg or image/webp (SVG is refused: it can carry scripts)", body = ErrorBody),
        (status = 422, description = "the bytes are not the declared image type, or the image is over 1024×1024 px; the message says which", body = ErrorBody),
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn put_logo(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Json<BrandingView>, AppError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !matches!(declared.as_str(), "image/png" | "image/jpeg" | "image/webp") {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "`Content-Type`: must be image/png, image/jpeg or image/webp \
             (SVG is refused: it is a document that can carry scripts)",
        ));
    }
    let info = sniff_logo(&bytes).map_err(|err| match err {
        LogoError::TooLarge { .. } => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("`logo`: {err}"),
        ),
        _ => AppError::unprocessable("invalid_logo", "logo", err),
    })?;
    if info.content_type != declared {
        return Err(AppError::unprocessable(
            "invalid_logo",
            "logo",
            format!(
                "the bytes are {}, not the declared {declared}",
                info.content_type
            ),
        ));
    }
    let meta = LogoMeta {
        content_type: info.content_type.to_owned(),
        sha256: bytes_sha256(&bytes),
        width_px: info.width_px,
        height_px: info.height_px,
        size_bytes: bytes.len(),
    };
    let stored = settings(&state)?
        .set_logo(tenant.id, meta, bytes.to_vec())
        .await?;
    Ok(Json(branding_view(&stored)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/branding/logo",
    tag = "branding",
    summary = "Remove the tenant's logo",
    responses(
        (status = 204, description = "removed"),
        KeyedErrors,
        (status = 404, description = "the tenant has no logo", body = ErrorBody),
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_logo(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
) -> Result<StatusCode, AppError> {
    if settings(&state)?.delete_logo(tenant.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("logo"))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/tracking-privacy",
    tag = "branding",
    summary = "The tenant's location privacy on its public pages",
    responses(
        (status = 200, description = "`enabled`, `exact_within_m`, `cell_resolution`", body = LocationPrivacy),
        KeyedErrors,
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_privacy(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<LocationPrivacy>, AppError> {
    Ok(Json(settings(&state)?.privacy(tenant.id).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tracking-privacy",
    tag = "branding",
    summary = "Set the tenant's location privacy (off by default)",
    request_body = PrivacyBody,
    responses(
        (status = 200, description = "the setting as stored", body = LocationPrivacy),
        KeyedBodyErrors,
        NoSettings
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn put_privacy(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    JsonBody(body): JsonBody,
) -> Result<Json<LocationPrivacy>, AppError> {
    let body = from_json::<PrivacyBody>(&body)?;
    let privacy = LocationPrivacy {
        enabled: body.enabled,
        exact_within_m: body.exact_within_m.unwrap_or(DEFAULT_EXACT_WITHIN_M),
        cell_resolution: body.cell_resolution.unwrap_or(DEFAULT_CELL_RESOLUTION),
    }
    .validated()?;
    settings(&state)?.set_privacy(tenant.id, privacy).await?;
    Ok(Json(privacy))
}

/// The public URL of a tenant's logo as a page links it: the code's URL, with
/// the logo's hash so a new logo is a new URL and the old one may be cached
/// for good.
pub(crate) fn logo_url(code: &str, logo: &LogoMeta) -> String {
    format!(
        "/t/{code}/logo?v={}",
        &logo.sha256[..logo.sha256.len().min(16)]
    )
}

#[utoipa::path(
    get,
    path = "/t/{code}/logo",
    tag = "public",
    summary = "The logo of the carrier behind a tracking link",
    params(
        ("code" = String, Path, description = "the tracking code"),
        ("v" = Option<String>, Query, description = "the logo's hash prefix, as the page links it (makes the answer cacheable for good)")
    ),
    responses(
        (status = 200, description = "the image, with an `ETag`", content_type = "image/png", body = Vec<u8>),
        (status = 304, description = "the `If-None-Match` ETag is current"),
        Invalid,
        (status = 404, description = "an unknown or revoked link, or no logo", body = ErrorBody),
        RateLimited
    ),
)]
pub(crate) async fn public_logo(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(code): PathParams<String>,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let order = super::track::resolve(&state, ip, &code).await?;
    let (meta, bytes) = settings(&state)?
        .logo_of_order(order)
        .await?
        .ok_or_else(|| AppError::not_found("logo"))?;
    let etag = format!("\"{}\"", meta.sha256);
    // Immutable only under the URL of this very logo; a stale `v` (or none)
    // is revalidated, so a replaced logo shows at once.
    let versioned = params
        .get("v")
        .is_some_and(|v| !v.is_empty() && meta.sha256.starts_with(v.as_str()));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache.to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'".to_owned(),
        ),
    ];
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((common, [(header::CONTENT_TYPE, meta.content_type)], bytes).into_response())
}
