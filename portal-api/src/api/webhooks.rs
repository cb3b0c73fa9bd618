//! The webhook routes: a tenant creates an endpoint (its secret shown once,
//! in the 201), lists, removes, rotates its secret (the old one signs too for
//! the grace period), re-enables a disabled one, reads every delivery with
//! each attempt, and replays a delivery (same `webhook-id`).
//!
//! Request bodies are typed structs (`deny_unknown_fields`); the endpoint URL
//! is checked against the SSRF rules (`notify/webhook.rs`) with the server's
//! `--webhook-allow-host` list before anything is stored: a refusal is a 422
//! naming `url`. Secrets are sealed under the server's notification key, so
//! without one (no `--notify-key-file` and no SQLite file beside which to keep
//! it) webhooks are a 503.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::responses::{BodyErrors, KeyedErrors, NoNotifyKey, NotFound};
use super::{JsonBody, OrdersKey, PathParams};
use crate::contract::{
    DeliveryListView, DeliveryView, ErrorBody, WebhookListView, WebhookSecretView, WebhookView,
};
use crate::error::AppError;
use crate::notify::{
    NotifyKey, WebhookEvent, check_url, new_secret, notification_view, webhook_view,
};
use crate::secrets::new_id;
use crate::state::AppState;
use store::NotificationStore;

/// Most endpoints a tenant may have.
const MAX_ENDPOINTS: usize = 20;
/// Deliveries listed per endpoint, newest first.
const DELIVERIES_LISTED: usize = 100;

/// `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhookBody {
    /// `https://` to a public address (or an allowed host, see
    /// `serve --webhook-allow-host`).
    url: String,
    /// Any of `status_changed`, `eta_changed`, `late_risk`, `position`.
    #[schema(min_items = 1)]
    events: Vec<String>,
}

fn parts(state: &AppState) -> Result<(&dyn NotificationStore, &NotifyKey), AppError> {
    let notes = super::notifications::notes(state)?;
    let key = state.config().notify_key.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_unavailable",
            "webhooks need the server's notification key (serve --notify-key-file)",
        )
    })?;
    Ok((notes, key))
}

/// Ids are ours; anything else cannot exist.
fn plain_id(id: &str, what: &str) -> Result<(), AppError> {
    if id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::not_found(what));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    summary = "Create a webhook endpoint (its secret is shown once)",
    request_body = NewWebhookBody,
    responses(
        (status = 201, description = "the endpoint, with `secret` (`whsec_…`) shown this once", body = WebhookSecretView),
        (status = 400, description = "a field is invalid; the message names it", body = ErrorBody),
        (status = 409, description = "the tenant has the most endpoints allowed", body = ErrorBody),
        (status = 422, description = "the `url` is refused (not https, or not a public address)", body = ErrorBody),
        KeyedErrors,
        BodyErrors,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let (notes, key) = parts(&state)?;
    let body: NewWebhookBody = crate::contract::from_json(&body)?;
    if body.events.is_empty() {
        return Err(AppError::invalid(
            "events",
            format!("list at least one of: {}", event_names()),
        ));
    }
    let mut events = Vec::new();
    for (i, name) in body.events.iter().enumerate() {
        let event = WebhookEvent::parse(name).ok_or_else(|| {
            AppError::invalid(
                format!("events[{i}]"),
                format!(
                    "`{name}` is not an event; expected one of: {}",
                    event_names()
                ),
            )
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    let url = body.url.trim().to_owned();
    check_url(&url, &state.config().webhook_allow_hosts)
        .await
        .map_err(|reason| {
            AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "url_refused",
                format!("`url`: {reason}"),
            )
        })?;
    if notes.webhooks(tenant.id.clone()).await?.len() >= MAX_ENDPOINTS {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            format!("a tenant may have {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let id = new_id("wh_");
    let secret = new_secret()?;
    let sealed = key.seal_webhook_secret(&secret, &id)?;
    let webhook = notes
        .create_webhook(tenant.id, id, url, events, sealed)
        .await?;
    // The only time the secret is shown.
    let shown = WebhookSecretView {
        webhook: webhook_view(&webhook),
        secret,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/webhooks/{}", webhook.id))],
        Json(shown),
    )
        .into_response())
}

fn event_names() -> String {
    WebhookEvent::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    summary = "The tenant's webhook endpoints (never their secrets)",
    responses(
        (status = 200, description = "the endpoints, in `webhooks`, each with its state and why it was disabled", body = WebhookListView),
        KeyedErrors,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
) -> Result<Json<WebhookListView>, AppError> {
    let notes = super::notifications::notes(&state)?;
    let hooks = notes.webhooks(tenant.id).await?;
    Ok(Json(WebhookListView {
        webhooks: hooks.iter().map(webhook_view).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Remove a webhook endpoint",
    params(("id" = String, Path, description = "the endpoint id")),
    responses(
        (status = 204, description = "removed"),
        KeyedErrors,
        NotFound,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, AppError> {
    plain_id(&id, "webhook")?;
    super::notifications::notes(&state)?
        .delete_webhook(tenant.id, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    summary = "A new secret; the old one also signs for the grace period",
    params(("id" = String, Path, description = "the endpoint id")),
    responses(
        (status = 200, description = "the endpoint with its new `secret`, shown this once; the old one signs until `previous_secret_valid_until`", body = WebhookSecretView),
        KeyedErrors,
        NotFound,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookSecretView>, AppError> {
    plain_id(&id, "webhook")?;
    let (notes, key) = parts(&state)?;
    if notes
        .webhook(tenant.id.clone(), id.clone())
        .await?
        .is_none()
    {
        return Err(AppError::not_found("webhook"));
    }
    let secret = new_secret()?;
    let sealed = key.seal_webhook_secret(&secret, &id)?;
    let grace_until = Utc::now() + state.config().webhook_rotation_grace;
    let webhook = notes
        .rotate_webhook_secret(tenant.id, id, sealed, grace_until)
        .await?;
    Ok(Json(WebhookSecretView {
        webhook: webhook_view(&webhook),
        secret,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/enable",
    tag = "webhooks",
    summary = "Re-enable an endpoint that was disabled after failing",
    params(("id" = String, Path, description = "the endpoint id")),
    responses(
        (status = 200, description = "the endpoint", body = WebhookView),
        KeyedErrors,
        NotFound,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn enable(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookView>, AppError> {
    plain_id(&id, "webhook")?;
    let webhook = super::notifications::notes(&state)?
        .enable_webhook(tenant.id, id)
        .await?;
    Ok(Json(webhook_view(&webhook)))
}

fn delivery_view(
    n: &crate::notify::Notification,
    attempts: &[crate::notify::Attempt],
) -> DeliveryView {
    DeliveryView {
        delivery_id: n.id.clone(),
        order_id: n.order_id.as_str().to_owned(),
        message: notification_view(n, attempts),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "Deliveries to an endpoint, newest first, each with every attempt",
    params(("id" = String, Path, description = "the endpoint id")),
    responses(
        (status = 200, description = "the deliveries, in `deliveries`", body = DeliveryListView),
        KeyedErrors,
        NotFound,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<DeliveryListView>, AppError> {
    plain_id(&id, "webhook")?;
    let list = super::notifications::notes(&state)?
        .webhook_deliveries(tenant.id, id, DELIVERIES_LISTED)
        .await?;
    Ok(Json(DeliveryListView {
        deliveries: list.iter().map(|(n, a)| delivery_view(n, a)).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    summary = "Deliver a message again (same `webhook-id`)",
    params(("id" = String, Path, description = "the endpoint id"), ("delivery_id" = String, Path, description = "the delivery id")),
    responses(
        (status = 202, description = "queued again: the delivery", body = DeliveryView),
        KeyedErrors,
        NotFound,
        NoNotifyKey
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> Result<Response, AppError> {
    plain_id(&id, "webhook")?;
    plain_id(&delivery, "delivery")?;
    let n = super::notifications::notes(&state)?
        .replay_delivery(
            tenant.id,
            id,
            delivery,
            Utc::now(),
            state.config().notify_retry_for,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(&n, &[]))).into_response())
}
