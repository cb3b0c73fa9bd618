//! `/api/v1/api-keys`: a tenant's own API keys, managed with a key of scope
//! `admin`. A new key is shown once, in the creation's answer; listings show its
//! prefix. Another tenant's key id is a plain 404, as for orders.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AdminKey, JsonBody, PathParams};
use crate::error::AppError;
use crate::keys::{api_key_json, create_api_key, new_api_key_json, scopes_from_names};
use crate::state::AppState;

/// `{"name": "…", "scopes": ["orders", …]}`: both required, nothing else.
fn new_key_body(body: &Value) -> Result<(String, Vec<&str>), AppError> {
    let fields = body
        .as_object()
        .ok_or_else(|| AppError::invalid("body", "must be a JSON object"))?;
    if let Some(unknown) = fields.keys().find(|k| *k != "name" && *k != "scopes") {
        return Err(AppError::invalid(
            unknown,
            "unknown field; expected one of: name, scopes",
        ));
    }
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(AppError::invalid("name", "must be a string")),
        None => return Err(AppError::invalid("name", "is required")),
    };
    let scopes = match fields.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .ok_or_else(|| AppError::invalid(format!("scopes[{i}]"), "must be a string"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(AppError::invalid(
                "scopes",
                "must be an array of scope names",
            ));
        }
        None => return Err(AppError::invalid("scopes", "is required")),
    };
    Ok((name, scopes))
}

/// Key ids are ours; anything else cannot exist (and must not reach SQL as junk).
fn key_id(id: String) -> Result<String, AppError> {
    if id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::not_found("API key"));
    }
    Ok(id)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let (name, scope_names) = new_key_body(&body)?;
    let scopes = scopes_from_names(&scope_names, "scopes")?;
    let (key, secret) = create_api_key(&**state.store(), &tenant.id, &name, scopes).await?;
    Ok((StatusCode::CREATED, Json(new_api_key_json(&key, &secret))).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<Value>, AppError> {
    let keys = state.store().api_keys(tenant.id).await?;
    Ok(Json(json!({
        "api_keys": keys.iter().map(api_key_json).collect::<Vec<_>>(),
    })))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    AdminKey(tenant): AdminKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, AppError> {
    let key = state.store().revoke_api_key(tenant.id, key_id(id)?).await?;
    Ok(Json(api_key_json(&key)))
}
