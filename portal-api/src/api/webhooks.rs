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
use serde_json::{Value, json};

use super::{JsonBody, OrdersKey, PathParams};
use crate::error::AppError;
use crate::notify::{NotifyKey, WebhookEvent, check_url, new_secret};
use crate::secrets::new_id;
use crate::state::AppState;
use crate::store::NotificationStore;
use crate::view::rfc3339;

/// Most endpoints a tenant may have.
const MAX_ENDPOINTS: usize = 20;
/// Deliveries listed per endpoint, newest first.
const DELIVERIES_LISTED: usize = 100;

/// `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    url: String,
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

/// A body as `T`; serde's words name the unknown or missing field.
fn typed<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, AppError> {
    serde_json::from_value(body).map_err(|e| {
        let text = e.to_string();
        let field = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .unwrap_or("body")
            .to_owned();
        AppError::invalid(field, text)
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let (notes, key) = parts(&state)?;
    let body: NewWebhookBody = typed(body)?;
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
    let mut json = webhook.json();
    // The only time the secret is shown.
    json["secret"] = Value::String(secret);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/webhooks/{}", webhook.id))],
        Json(json),
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

pub(crate) async fn list(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
) -> Result<Json<Value>, AppError> {
    let notes = super::notifications::notes(&state)?;
    let hooks = notes.webhooks(tenant.id).await?;
    Ok(Json(json!({
        "webhooks": hooks.iter().map(|w| w.json()).collect::<Vec<_>>(),
    })))
}

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

pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, AppError> {
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
    let mut json = webhook.json();
    json["secret"] = Value::String(secret);
    Ok(Json(json))
}

pub(crate) async fn enable(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, AppError> {
    plain_id(&id, "webhook")?;
    let webhook = super::notifications::notes(&state)?
        .enable_webhook(tenant.id, id)
        .await?;
    Ok(Json(webhook.json()))
}

fn delivery_json(n: &crate::notify::Notification, attempts: &[crate::notify::Attempt]) -> Value {
    let mut json = n.json(attempts);
    json["delivery_id"] = json["id"].clone();
    json["order_id"] = Value::String(n.order_id.as_str().to_owned());
    json["created_at"] = Value::String(rfc3339(n.created_at));
    json
}

pub(crate) async fn deliveries(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, AppError> {
    plain_id(&id, "webhook")?;
    let list = super::notifications::notes(&state)?
        .webhook_deliveries(tenant.id, id, DELIVERIES_LISTED)
        .await?;
    Ok(Json(json!({
        "deliveries": list.iter().map(|(n, a)| delivery_json(n, a)).collect::<Vec<_>>(),
    })))
}

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
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&n, &[]))).into_response())
}
