//! The HTTP surface: [`app`] builds the router (tests call it without a socket),
//! plus the extractors every handler shares: the tenant behind a bearer key
//! holding the scope the route needs, the client address for rate limiting,
//! JSON bodies and query strings whose every failure is a JSON 4xx naming what
//! was wrong.

mod analytics;
mod assets;
mod basemap;
mod client_ip;
mod idempotency;
mod keys;
pub(crate) mod notifications;
mod openapi;
mod orders;
mod positions;
mod staff;
pub(crate) mod track;
mod validate;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{MethodRouter, delete, get, post};
use serde_json::Value;

use crate::error::AppError;
use crate::model::{Scope, Tenant};
use crate::secrets::secret_hash;
use crate::state::AppState;

pub use client_ip::TrustedProxies;
pub use openapi::OPENAPI_JSON;

/// Every route as `(method, path)`, in the router's syntax. The OpenAPI document
/// must describe exactly these (a test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{id}"),
    ("PATCH", "/api/v1/orders/{id}"),
    ("POST", "/api/v1/orders/{id}/status"),
    ("POST", "/api/v1/orders/{id}/eta"),
    ("POST", "/api/v1/orders/{id}/pod"),
    ("GET", "/api/v1/orders/{id}/pod/{pod_id}"),
    ("POST", "/api/v1/orders/{id}/tracking-link/rotate"),
    ("DELETE", "/api/v1/orders/{id}/tracking-link"),
    ("POST", "/api/v1/positions"),
    ("POST", "/api/v1/notification-rules"),
    ("GET", "/api/v1/notification-rules"),
    ("DELETE", "/api/v1/notification-rules/{id}"),
    ("GET", "/api/v1/notification-rules/{id}/preview"),
    ("GET", "/api/v1/orders/{id}/notifications"),
    ("GET", "/api/v1/orders/{id}/views"),
    ("GET", "/api/v1/analytics/eta-accuracy"),
    ("GET", "/api/v1/analytics/on-time"),
    ("GET", "/api/v1/analytics/views"),
    ("GET", "/staff"),
    ("POST", "/staff/sign-in"),
    ("POST", "/staff/sign-out"),
    ("GET", "/staff/analytics"),
    ("GET", "/staff/orders"),
    ("POST", "/staff/orders/{id}/rotate"),
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
    ("POST", "/api/v1/api-keys"),
    ("GET", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{id}"),
    ("GET", "/api/v1/track/{code}"),
    ("GET", "/api/v1/map/roads"),
    ("GET", "/api/openapi.json"),
    ("GET", "/t/{code}"),
    ("GET", "/t/{code}/ws"),
    ("GET", "/t/{code}/pod/{pod_id}"),
    ("GET", "/assets/{file}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

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
    let router = Router::new()
        .route(
            "/api/v1/orders",
            limited(post(orders::create), ORDER_BODY_BYTES).get(orders::list),
        )
        .route(
            "/api/v1/orders/{id}",
            get(orders::get_one).patch(orders::update),
        )
        .route("/api/v1/orders/{id}/status", post(orders::add_status))
        .route("/api/v1/orders/{id}/eta", post(orders::post_eta))
        .route(
            "/api/v1/orders/{id}/pod",
            limited(post(orders::upload_pod), pod_limit),
        )
        .route(
            "/api/v1/orders/{id}/pod/{pod_id}",
            get(orders::download_pod),
        )
        .route(
            "/api/v1/orders/{id}/tracking-link/rotate",
            post(orders::rotate_link),
        )
        .route(
            "/api/v1/orders/{id}/tracking-link",
            delete(orders::revoke_link),
        )
        .route(
            "/api/v1/positions",
            limited(post(positions::post_batch), positions_limit),
        )
        .route(
            "/api/v1/notification-rules",
            post(notifications::create_rule).get(notifications::list_rules),
        )
        .route(
            "/api/v1/notification-rules/{id}",
            delete(notifications::delete_rule),
        )
        .route(
            "/api/v1/notification-rules/{id}/preview",
            get(notifications::preview),
        )
        .route(
            "/api/v1/orders/{id}/notifications",
            get(notifications::order_notifications),
        )
        .route(
            "/unsubscribe/{token}",
            get(notifications::unsubscribe_page).post(notifications::unsubscribe),
        )
        .route("/api/v1/orders/{id}/views", get(analytics::order_views))
        .route(
            "/api/v1/analytics/eta-accuracy",
            get(analytics::eta_accuracy),
        )
        .route("/api/v1/analytics/on-time", get(analytics::on_time))
        .route("/api/v1/analytics/views", get(analytics::views))
        .route("/staff", get(staff::home))
        .route("/staff/sign-in", post(staff::sign_in))
        .route("/staff/sign-out", post(staff::sign_out))
        .route("/staff/analytics", get(staff::analytics_page))
        .route("/staff/orders", get(staff::orders_page))
        .route("/staff/orders/{id}/rotate", post(staff::rotate))
        .route("/api/v1/api-keys", post(keys::create).get(keys::list))
        .route("/api/v1/api-keys/{id}", delete(keys::revoke))
        .route("/api/v1/track/{code}", get(track::track_json))
        .route("/api/v1/map/roads", get(basemap::roads))
        .route("/api/openapi.json", get(openapi::document))
        .route("/t/{code}", get(track::page))
        .route("/t/{code}/ws", get(crate::ws::upgrade))
        .route("/t/{code}/pod/{pod_id}", get(track::public_pod))
        .route("/assets/{file}", get(assets::asset))
        .route("/healthz", get(track::healthz))
        .route("/readyz", get(crate::ops::readyz))
        .route("/metrics", get(crate::ops::render))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        // Route limits above sit inside these, so they win where they are set.
        .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES))
        .layer(Extension(BodyLimit(SMALL_BODY_BYTES)));
    crate::ops::observe(router).with_state(state)
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
