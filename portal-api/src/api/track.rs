//! The public side: resolving a tracking code (rate-limited, one 404 for unknown
//! and revoked codes alike), the order's public view as JSON and as the page, POD
//! files after delivery, and the health and metrics endpoints.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use engine::OrderId;
use serde_json::Value;

use super::responses::{Invalid, NotFound, RateLimited};
use super::{ClientIp, PathParams, rate_limit};
use crate::contract::{EtaView, HealthView, PublicOrderView};
use crate::error::AppError;
use crate::fanout::Latest;
use crate::model::{TrackView, VehicleFix};
use crate::secrets::{looks_like_tracking_code, secret_hash};
use crate::state::AppState;
use crate::view;

/// The page runs only our own script; images may come from a configured tile
/// server; the WebSocket and the roads endpoint are same-origin.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: https: http:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Resolves a public code to its order. Unknown, malformed and revoked codes all
/// get the same 404, after the same rate-limit charge.
pub(crate) async fn resolve(
    state: &AppState,
    ip: ClientIp,
    code: &str,
) -> Result<OrderId, AppError> {
    rate_limit(state, ip)?;
    let code = code.to_ascii_lowercase();
    if !looks_like_tracking_code(&code) {
        return Err(AppError::not_found("tracking link"));
    }
    state
        .store()
        .order_by_code_hash(secret_hash(&code))
        .await?
        .ok_or_else(|| AppError::not_found("tracking link"))
}

/// The order's public view as seen through `code` (the code the viewer came
/// with, already resolved to `order`): the store's state, with the fan-out's
/// latest position and ETA where they are newer (another node may have
/// published them a moment before its store write is visible here).
pub(crate) async fn current_view(
    state: &AppState,
    order: &OrderId,
    code: &str,
) -> Result<Option<(TrackView, PublicOrderView)>, AppError> {
    let Some(mut track) = state.store().track_view(order.clone()).await? else {
        return Ok(None);
    };
    // The store alone is a whole view: without the fan-out (Redis away) the
    // page shows what is durable, which is at most a moment behind.
    let latest = match state.inner.fanout.latest(order.clone()).await {
        Ok(latest) => latest,
        Err(err) => {
            tracing::debug!(error = %err, "latest live state unavailable; the store's view alone");
            Latest::default()
        }
    };
    let clock = state.view_clock();
    let mut public = view::public_view(&track, Some(code), clock);
    if track.order.shows_live_location() {
        if let Some(text) = &latest.position
            && let Some(fix) = parse_vehicle(text, &track)
            && track.vehicle.as_ref().is_none_or(|v| v.at < fix.at)
        {
            // The message was published under the tenant's privacy already;
            // applying it again here keeps this path safe on its own.
            let previous = track.vehicle.as_ref().map(|v| (v.lat, v.lon));
            public.vehicle = Some(view::public_vehicle_view(
                &fix,
                &track.privacy,
                &view::pending_stops(&track.order),
                previous,
            ));
            public.feed = view::feed_view(Some(fix.at), clock);
            track.vehicle = Some(fix);
        }
        if let Some(text) = &latest.eta
            && let Some(mut eta) = parse_eta(text)
        {
            let newer = public
                .eta
                .as_ref()
                .is_none_or(|have| eta.updated_at > have.updated_at);
            let for_next_stop = Some(eta.stop_index) == public.next_stop_index;
            if newer && for_next_stop {
                // Judged now, not when it was published: it may have passed since.
                eta.overdue =
                    chrono::DateTime::parse_from_rfc3339(&eta.at).is_ok_and(|at| at < clock.now);
                public.eta = Some(eta);
            }
        }
    }
    Ok(Some((track, public)))
}

/// The ETA of a fan-out `eta` message (`{"type": "eta", "eta": {…}}`).
fn parse_eta(text: &str) -> Option<EtaView> {
    #[derive(serde::Deserialize)]
    struct EtaMessage {
        eta: EtaView,
    }
    serde_json::from_str::<EtaMessage>(text).ok().map(|m| m.eta)
}

fn parse_vehicle(text: &str, track: &TrackView) -> Option<VehicleFix> {
    let message: Value = serde_json::from_str(text).ok()?;
    let v = &message["vehicle"];
    Some(VehicleFix {
        vehicle_id: track.order.vehicle_id.clone()?,
        at: chrono::DateTime::parse_from_rfc3339(v["at"].as_str()?)
            .ok()?
            .with_timezone(&chrono::Utc),
        lat: v["lat"].as_f64()?,
        lon: v["lon"].as_f64()?,
        speed_mps: v["speed_mps"].as_f64(),
        heading_deg: v["heading_deg"].as_f64(),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/track/{code}",
    tag = "public",
    summary = "What the tracking page shows, as JSON",
    params(("code" = String, Path, description = "the tracking code")),
    responses(
        (status = 200, description = "reference, status, stops, vehicle, eta, feed, events", body = PublicOrderView),
        Invalid,
        NotFound,
        RateLimited
    ),
)]
pub(crate) async fn track_json(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(code): PathParams<String>,
) -> Result<Response, AppError> {
    let order = resolve(&state, ip, &code).await?;
    let (_, public) = current_view(&state, &order, &code.to_ascii_lowercase())
        .await?
        .ok_or_else(|| AppError::not_found("tracking link"))?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(public)).into_response())
}

#[utoipa::path(
    get,
    path = "/t/{code}",
    tag = "public",
    summary = "The tracking page",
    params(
        ("code" = String, Path, description = "the tracking code"),
        ("lang" = Option<String>, Query, description = "the page's language (`en`, `es`, `fr`); without it (or for one we lack), the best of `Accept-Language`, else English"),
    ),
    responses(
        (status = 200, description = "the page, with `Content-Language` and `Vary: Accept-Language`", content_type = "text/html", body = String),
        (status = 404, description = "an unknown or revoked link", content_type = "text/html", body = String),
        (status = 429, description = "too many lookups from this address: a page saying how long to wait, with `Retry-After`", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable: a page saying so", content_type = "text/html", body = String),
        Invalid
    ),
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(code): PathParams<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = page_language(query.as_deref(), &headers);
    let resolved = match resolve(&state, ip, &code).await {
        Ok(order) => current_view(&state, &order, &code.to_ascii_lowercase()).await,
        Err(err) => Err(err),
    };
    match resolved {
        Ok(Some((track, public))) => {
            count_view(&state, ip, &track).await;
            let json = serde_json::to_value(&public).unwrap_or_default();
            let html = crate::page::render(&state, lang, &track, &json, &code.to_ascii_lowercase());
            (
                crate::page::language_headers(lang),
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::REFERRER_POLICY, "no-referrer"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
                ],
                Html(html),
            )
                .into_response()
        }
        Ok(None) => crate::page::not_found(lang),
        Err(err) if err.status == StatusCode::NOT_FOUND => crate::page::not_found(lang),
        Err(err) if err.status == StatusCode::TOO_MANY_REQUESTS => {
            crate::page::rate_limited(lang, err.retry_after_s.unwrap_or(60))
        }
        Err(err) => crate::page::failed(lang, &err),
    }
}

/// The page's language: `?lang=` first, then `Accept-Language` (see
/// [`crate::i18n::negotiate`]).
fn page_language(query: Option<&str>, headers: &HeaderMap) -> crate::i18n::Lang {
    let asked = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "lang")
            .map(|(_, value)| value)
    });
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    crate::i18n::negotiate(asked, accept)
}

/// Counts a page load for the order's analytics (HTML only: WebSocket
/// messages, JSON lookups and assets are not views). A failure to count is
/// logged and never fails the page.
async fn count_view(state: &AppState, ip: ClientIp, track: &TrackView) {
    let Some(analytics) = state.store().analytics() else {
        return;
    };
    let now = chrono::Utc::now();
    let view = crate::analytics::PageView {
        order_id: track.order.id.as_str().to_owned(),
        viewer_hash: state.inner.viewer_salt.viewer_hash(ip.0, now),
        at: now,
        delivered: track.order.status == engine::OrderStatus::Delivered,
    };
    if let Err(err) = analytics.record_view(view).await {
        tracing::warn!(error = %err, "a tracking-page view was not counted");
    }
}

#[utoipa::path(
    get,
    path = "/t/{code}/pod/{pod_id}",
    tag = "public",
    summary = "A delivered order's proof of delivery",
    params(("code" = String, Path, description = "the tracking code"), ("pod_id" = String, Path)),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = String),
        Invalid,
        NotFound,
        RateLimited
    ),
)]
pub(crate) async fn public_pod(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams((code, pod_id)): PathParams<(String, String)>,
) -> Result<Response, AppError> {
    let order = resolve(&state, ip, &code).await?;
    let track = state
        .store()
        .track_view(order.clone())
        .await?
        .ok_or_else(|| AppError::not_found("pod"))?;
    // POD is part of the record after the delivery, not before.
    if !track.order.status.is_final() {
        return Err(AppError::not_found("pod"));
    }
    let (meta, data) = state
        .store()
        .pod_file(order, pod_id)
        .await?
        .ok_or_else(|| AppError::not_found("pod"))?;
    Ok(super::orders::file_response(&meta, data))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    summary = "Liveness",
    responses(
        (status = 200, description = "alive, with `uptime_s`", body = HealthView)
    ),
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let uptime_s = state.inner.started.elapsed().as_secs();
    Json(HealthView {
        status: "ok".to_owned(),
        uptime_s,
    })
    .into_response()
}
