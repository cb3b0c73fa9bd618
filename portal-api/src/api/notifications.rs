//! The notification routes: a tenant's e-mail rules (create, list, delete,
//! preview), what was sent about an order, and the public one-click
//! unsubscribe (RFC 8058: `POST /unsubscribe/{token}` unsubscribes at once;
//! `GET` shows a page with a button, because mail scanners follow links and
//! must not unsubscribe anyone by looking).
//!
//! Rules and listings are tenant-scoped through [`OrdersKey`]; another
//! tenant's rule or order is a 404.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use engine::OrderId;

use super::responses::{Invalid, KeyedBodyErrors, KeyedErrors, NotFound, RateLimited, Untrackable};
use super::{ClientIp, JsonBody, OrdersKey, Params, PathParams, rate_limit};
use crate::contract::{
    NewNotificationRuleBody, NotificationListView, NotificationPreviewView,
    NotificationRuleListView, NotificationRuleView, from_json,
};
use crate::error::AppError;
use crate::notify::{
    Composer, looks_like_unsubscribe_token, notification_view, rule_view, validate_rule,
};
use crate::secrets::secret_hash;
use crate::state::AppState;
use store::NotificationStore;

pub(crate) fn notes(state: &AppState) -> Result<&dyn NotificationStore, AppError> {
    state.store().notifications().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "this store keeps no notifications",
        )
    })
}

/// Ids are ours; anything else cannot exist.
fn plain_id(id: &str, what: &str) -> Result<(), AppError> {
    if id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::not_found(what));
    }
    Ok(())
}

/// Keeps a freshly issued tracking code sealed under the server's key, so
/// that milestone e-mails can carry the link (see `notify/seal.rs`). Called
/// before the code is stored, so a seal exists whenever the code does. With
/// e-mails off (no key) nothing is kept.
pub(crate) async fn remember_code(state: &AppState, code: &str) -> Result<(), AppError> {
    let (Some(key), Some(notes)) = (&state.config().notify_key, state.store().notifications())
    else {
        return Ok(());
    };
    let hash = secret_hash(code);
    let sealed = key.seal(code, &hash)?;
    notes.save_code_seal(hash, sealed).await?;
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/notification-rules",
    tag = "notifications",
    summary = "Create an e-mail rule",
    request_body = NewNotificationRuleBody,
    responses(
        (status = 201, description = "the rule", body = NotificationRuleView),
        KeyedBodyErrors,
        Untrackable
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_rule(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    from_json::<NewNotificationRuleBody>(&body)?;
    let rule = validate_rule(&body)?;
    let rule = notes(&state)?.create_rule(tenant.id, rule).await?;
    let location = format!("/api/v1/notification-rules/{}", rule.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(rule_view(&rule)),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/notification-rules",
    tag = "notifications",
    summary = "The tenant's rules",
    responses(
        (status = 200, description = "the rules, in `rules`", body = NotificationRuleListView),
        KeyedErrors
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list_rules(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
) -> Result<Json<NotificationRuleListView>, AppError> {
    let rules = notes(&state)?.rules(tenant.id).await?;
    Ok(Json(NotificationRuleListView {
        rules: rules.iter().map(rule_view).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/notification-rules/{id}",
    tag = "notifications",
    summary = "Delete a rule",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, AppError> {
    plain_id(&id, "notification rule")?;
    notes(&state)?.delete_rule(tenant.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/notification-rules/{id}/preview",
    tag = "notifications",
    summary = "The e-mail a rule would send about an order",
    params(("id" = String, Path), ("order_id" = String, Query)),
    responses(
        (status = 200, description = "the message", body = NotificationPreviewView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
    Params(params): Params,
) -> Result<Json<NotificationPreviewView>, AppError> {
    if let Some(unknown) = params.keys().find(|k| *k != "order_id") {
        return Err(AppError::invalid(
            unknown,
            "unknown parameter; expected order_id",
        ));
    }
    let order_id = params
        .get("order_id")
        .ok_or_else(|| AppError::invalid("order_id", "is required"))?;
    plain_id(&id, "notification rule")?;
    plain_id(order_id, "order")?;
    let notes = notes(&state)?;
    let rule = notes
        .rule(tenant.id.clone(), id)
        .await?
        .ok_or_else(|| AppError::not_found("notification rule"))?;
    let order = state
        .store()
        .order(tenant.id, OrderId(order_id.clone()))
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    let mut recipients = Vec::new();
    if rule.rule.to_customer
        && let Some(email) = &order.customer.email
    {
        recipients.push(email.to_ascii_lowercase());
    }
    recipients.extend(rule.rule.addresses.iter().cloned());
    let config = state.config();
    let contact = config.mail_contact.clone().unwrap_or_default();
    let composer = Composer {
        key: config.notify_key.as_ref(),
        public_base_url: &config.public_base_url,
        contact: &contact,
        settings: state.store().settings(),
    };
    // The preview has no recipient: no unsubscribe token is made for it.
    let composed = composer.compose(notes, &rule, &order, None).await?;
    Ok(Json(NotificationPreviewView {
        rule_id: rule.id,
        order_id: order.id.as_str().to_owned(),
        event: rule.rule.event.as_str().to_owned(),
        to: recipients,
        subject: composed.message.subject,
        text: composed.message.text,
        html: composed.message.html,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/notifications",
    tag = "notifications",
    summary = "What was sent about an order",
    params(("id" = String, Path, description = "the order id")),
    responses(
        (status = 200, description = "the messages, in `notifications`", body = NotificationListView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn order_notifications(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<NotificationListView>, AppError> {
    plain_id(&id, "order")?;
    let list = notes(&state)?
        .order_notifications(tenant.id, OrderId(id))
        .await?;
    Ok(Json(NotificationListView {
        notifications: list
            .iter()
            .map(|(n, attempts)| notification_view(n, attempts))
            .collect(),
    }))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem\">\
         <h1>{title}</h1>{body}</body></html>\n"
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

fn unknown_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not found",
        "<p>This unsubscribe link is not valid.</p>",
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /unsubscribe/{token}`: who is asking to unsubscribe from whom, and a
/// button that posts the one-click request.
#[utoipa::path(
    get,
    path = "/unsubscribe/{token}",
    tag = "public",
    summary = "The unsubscribe page",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "who would be unsubscribed, with a button", content_type = "text/html", body = String),
        (status = 404, description = "an unknown link", content_type = "text/html", body = String),
        Invalid,
        RateLimited
    ),
)]
pub(crate) async fn unsubscribe_page(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(token): PathParams<String>,
) -> Result<Response, AppError> {
    rate_limit(&state, ip)?;
    if !looks_like_unsubscribe_token(&token) {
        return Ok(unknown_link());
    }
    let Some(target) = notes(&state)?
        .unsubscribe_target(secret_hash(&token))
        .await?
    else {
        return Ok(unknown_link());
    };
    let who = escape(&target.address);
    let from = escape(&target.tenant_name);
    if target.unsubscribed {
        return Ok(page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!("<p>{who} receives no more shipment e-mails from {from}.</p>"),
        ));
    }
    Ok(page(
        StatusCode::OK,
        "Unsubscribe?",
        &format!(
            "<p>Stop shipment e-mails from {from} to {who}?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
}

/// `POST /unsubscribe/{token}`: the one-click unsubscribe (whatever the body).
#[utoipa::path(
    post,
    path = "/unsubscribe/{token}",
    tag = "public",
    summary = "One-click unsubscribe (RFC 8058)",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "unsubscribed", content_type = "text/html", body = String),
        (status = 404, description = "an unknown link", content_type = "text/html", body = String),
        Invalid,
        RateLimited
    ),
)]
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(token): PathParams<String>,
) -> Result<Response, AppError> {
    rate_limit(&state, ip)?;
    if !looks_like_unsubscribe_token(&token) {
        return Ok(unknown_link());
    }
    let notes = notes(&state)?;
    let hash = secret_hash(&token);
    if !notes.unsubscribe(hash.clone(), Utc::now()).await? {
        return Ok(unknown_link());
    }
    let target = notes.unsubscribe_target(hash).await?;
    let (who, from) = target
        .map(|t| (escape(&t.address), escape(&t.tenant_name)))
        .unwrap_or_default();
    Ok(page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!("<p>{who} receives no more shipment e-mails from {from}.</p>"),
    ))
}
