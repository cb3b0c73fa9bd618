//! The HTTP surface: [`app`] builds the router (tests call it without a socket),
//! plus the extractors every handler shares: the tenant behind a bearer key
//! holding the scope the route needs, the client address for rate limiting,
//! JSON bodies and query strings whose every failure is a JSON 4xx naming what
//! was wrong.

mod analytics;
mod assets;
mod basemap;
mod branding;
mod client_ip;
mod idempotency;
mod keys;
mod map_check;
pub(crate) mod notifications;
mod openapi;
mod orders;
mod positions;
pub(crate) mod responses;
mod staff;
mod tiles;
pub(crate) mod track;
mod webhooks;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::MethodRouter;
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::error::AppError;
use crate::model::{Scope, Tenant};
use crate::secrets::secret_hash;
use crate::state::AppState;

pub(crate) use assets::url as asset_url;
pub(crate) use branding::logo_url;
pub use client_ip::TrustedProxies;
pub(crate) use tiles::TileCache;

/// The body limit of routes that name none: status changes, ETAs, patches.
const SMALL_BODY_BYTES: usize = 64 * 1024;
/// `POST /api/v1/orders`: an order with many stops and long notes fits easily.
const ORDER_BODY_BYTES: usize = 1024 * 1024;
/// `POST /api/v1/positions`, per position of the largest batch: a vendor's shape
/// with every optional field is well under this.
const POSITION_BODY_BYTES: usize = 1024;

/// A route's body limit, as an extension, so that [`JsonBody`] can name it in
/// its 413.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// `route` with a body limit of `bytes` (over it: 413 naming the limit).
fn limited(route: MethodRouter<AppState>, bytes: usize) -> MethodRouter<AppState> {
    route
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(bytes))
        .layer::<_, std::convert::Infallible>(Extension(BodyLimit(bytes)))
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let pod_limit = state.config().pod_max_bytes + 64 * 1024;
    let positions_limit = state.config().max_batch.saturating_mul(POSITION_BODY_BYTES);
    let (router, doc) = router(pod_limit, positions_limit).split_for_parts();
    // Serializing a document of plain strings and maps cannot fail; if it
    // ever did, the route would serve an empty object rather than panic.
    let doc = openapi::DocumentJson(doc.to_json().unwrap_or_else(|_| "{}".to_owned()).into());
    let router = router
        .merge(staff_pages())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(Extension(doc))
        // Route limits inside these win where they are set.
        .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES))
        .layer(Extension(BodyLimit(SMALL_BODY_BYTES)));
    crate::ops::observe(router.layer(compression())).with_state(state)
}

/// Compresses dynamic responses (the page's HTML, JSON, the roads' GeoJSON) in
/// the encoding the client accepts, at a level cheap enough for every request.
/// Assets arrive already compressed at the best level (see `assets`) and are
/// passed through; so are small bodies, images and WebSocket upgrades.
fn compression() -> tower_http::compression::CompressionLayer {
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Precise(4))
}

/// The OpenAPI document of [`app`]'s routes, as `GET /api/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    router(0, 0).into_openapi()
}

/// Every route with its documentation. To add one: annotate the handler with
/// `#[utoipa::path(method, path = "...", ...)]` (request body type from
/// [`crate::contract`], every status it answers), then add
/// `.routes(routes!(module::handler))` here; a body limit other than
/// [`SMALL_BODY_BYTES`] goes in `.map(|r| limited(r, bytes))`.
fn router(pod_limit: usize, positions_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(orders::create).map(|r| limited(r, ORDER_BODY_BYTES)))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get_one, orders::update))
        .routes(routes!(orders::add_status))
        .routes(routes!(orders::post_eta))
        .routes(routes!(orders::upload_pod).map(|r| limited(r, pod_limit)))
        .routes(routes!(orders::download_pod))
        .routes(routes!(orders::rotate_link))
        .routes(routes!(orders::revoke_link))
        .routes(routes!(positions::post_batch).map(|r| limited(r, positions_limit)))
        .routes(routes!(
            notifications::create_rule,
            notifications::list_rules
        ))
        .routes(routes!(notifications::delete_rule))
        .routes(routes!(notifications::preview))
        .routes(routes!(notifications::order_notifications))
        .routes(routes!(
            notifications::unsubscribe_page,
            notifications::unsubscribe
        ))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::remove))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::enable))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay))
        .routes(routes!(analytics::order_views))
        .routes(routes!(analytics::eta_accuracy))
        .routes(routes!(analytics::on_time))
        .routes(routes!(analytics::views))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(branding::get_branding, branding::put_branding))
        .routes(
            routes!(branding::put_logo, branding::delete_logo)
                .map(|r| limited(r, branding::LOGO_BODY_BYTES)),
        )
        .routes(routes!(branding::get_privacy, branding::put_privacy))
        .routes(routes!(track::track_json))
        .routes(routes!(basemap::roads))
        .routes(routes!(tiles::tile))
        .routes(routes!(openapi::document))
        .routes(routes!(track::page))
        .routes(routes!(crate::ws::upgrade))
        .routes(routes!(track::public_pod))
        .routes(routes!(branding::public_logo))
        .routes(routes!(assets::asset))
        .routes(routes!(track::healthz))
        .routes(routes!(crate::ops::readyz))
        .routes(routes!(crate::ops::render))
}

/// The staff pages: HTML and forms for people signed in with an API key,
/// not part of the API's contract (they are not in the OpenAPI document).
fn staff_pages() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route("/staff", get(staff::home))
        .route("/staff/sign-in", post(staff::sign_in))
        .route("/staff/sign-out", post(staff::sign_out))
        .route("/staff/analytics", get(staff::analytics_page))
        .route("/staff/orders", get(staff::orders_page))
        .route("/staff/orders/{id}/rotate", post(staff::rotate))
}

async fn no_route() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route")
}

async fn wrong_method() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The tenant and key behind `Authorization: Bearer KEY`, if the key holds one
/// of `any_of`: 401 for a missing, unknown or revoked key, 403 naming the scope
/// for a key without it. The key is looked up in the store on every request (no
/// cache), so a revoked key is refused on every node from the next request on.
async fn authorize(parts: &Parts, state: &AppState, any_of: &[Scope]) -> Result<Tenant, AppError> {
    let unauthorized =
        |message: &str| AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned());
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("`Authorization: Bearer KEY` is required"))?;
    let key = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unauthorized("`Authorization` must be `Bearer KEY`"))?;
    let (tenant, api_key) = state
        .store()
        .authenticate(secret_hash(key))
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
    if !api_key.allows_any(any_of) {
        let needed: Vec<String> = any_of.iter().map(|s| format!("`{s}`")).collect();
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "API key `{}…` lacks a scope: this route needs scope {}",
                api_key.prefix,
                needed.join(" or ")
            ),
        ));
    }
    Ok(tenant)
}

/// An extractor for the tenant behind a key holding one of the given scopes.
macro_rules! scoped_key {
    ($(#[$doc:meta])* $name:ident, [$($scope:expr),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub(crate) Tenant);

        impl FromRequestParts<AppState> for $name {
            type Rejection = AppError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, AppError> {
                authorize(parts, state, &[$($scope),+]).await.map($name)
            }
        }
    };
}

scoped_key!(
    /// A key that may change orders: create, update, status, POD, ETAs, links.
    OrdersKey,
    [Scope::Orders]
);
scoped_key!(
    /// A key that may read orders: scope `read`, or `orders` (which includes it).
    ReadKey,
    [Scope::Read, Scope::Orders]
);
scoped_key!(
    /// A key that may post positions.
    PositionsKey,
    [Scope::Positions]
);
scoped_key!(
    /// A key that may manage the tenant's API keys.
    AdminKey,
    [Scope::Admin]
);

/// The client's address: the socket peer, or, when the peer is a trusted
/// reverse proxy, the client it forwards for (see [`TrustedProxies`]).
/// Unspecified when served without a socket, as in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let trusted = &state.config().trusted_proxies;
        Ok(ClientIp(trusted.client_ip(peer, &parts.headers)))
    }
}

/// Takes a token from the client's public-lookup bucket, or answers 429.
pub(crate) fn rate_limit(state: &AppState, ip: ClientIp) -> Result<(), AppError> {
    state
        .inner
        .limiter
        .check(ip.0, std::time::Instant::now())
        .map_err(|retry_after_s| {
            let mut err = AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many lookups; retry in {retry_after_s} s"),
            );
            err.retry_after_s = Some(retry_after_s);
            err
        })
}

/// A request body as bytes, within its route's limit (over it: a JSON 413
/// naming the limit). For bodies that are decoded elsewhere (positions in a
/// vendor's shape) and the base of [`JsonBody`].
#[derive(Debug)]
pub(crate) struct RawBody(pub(crate) axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| match limit {
                Some(BodyLimit(limit_bytes)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!("`body`: over this route's limit of {limit_bytes} bytes"),
                    )
                }
                _ => AppError::new(
                    e.status(),
                    "bad_body",
                    format!("reading the body: {}", e.body_text()),
                ),
            })
    }
}

/// A JSON request body; bad JSON and wrong content types are 4xx with the reason.
#[derive(Debug)]
pub(crate) struct JsonBody(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (`Content-Type: application/json`)",
            ));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("invalid JSON: {e}"),
            )
        })
    }
}

/// Query-string parameters; a malformed query string is a 400.
#[derive(Debug)]
pub(crate) struct Params(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

/// Path parameters; a malformed path segment is a 400 in the JSON error shape.
#[derive(Debug)]
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}
