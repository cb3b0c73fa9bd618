//! `/api/v1/api-keys`: a tenant's own API keys, managed with a key of scope
//! `admin`. A new key is shown once, in the creation's answer; listings show its
//! prefix. Another tenant's key id is a plain 404, as for orders.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::responses::{Invalid, KeyedBodyErrors, KeyedErrors, NotFound};
use super::{AdminKey, JsonBody, PathParams};
use crate::contract::{ApiKeyListView, ApiKeyView, NewApiKeyBody, NewApiKeyView, from_json};
use crate::error::AppError;
use crate::keys::{api_key_view, create_api_key, new_api_key_view};
use crate::state::AppState;

/// Key ids are ours; anything else cannot exist (and must not reach SQL as junk).
fn key_id(id: String) -> Result<String, AppError> {
    if id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::not_found("API key"));
    }
    Ok(id)
}

#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    summary = "Create an API key (shown once)",
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "the key's description and `api_key`", body = NewApiKeyView),
        KeyedBodyErrors
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let (name, scopes) = from_json::<NewApiKeyBody>(&body)?.check()?;
    let (key, secret) = create_api_key(&**state.store(), &tenant.id, &name, scopes).await?;
    Ok((StatusCode::CREATED, Json(new_api_key_view(&key, &secret))).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    summary = "The tenant's API keys (prefixes only)",
    responses(
        (status = 200, description = "the keys, in `api_keys`", body = ApiKeyListView),
        KeyedErrors
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<ApiKeyListView>, AppError> {
    let keys = state.store().api_keys(tenant.id).await?;
    Ok(Json(ApiKeyListView {
        api_keys: keys.iter().map(api_key_view).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    summary = "Revoke an API key",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the revoked key", body = ApiKeyView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<ApiKeyView>, AppError> {
    let key = state.store().revoke_api_key(tenant.id, key_id(id)?).await?;
    Ok(Json(api_key_view(&key)))
}
