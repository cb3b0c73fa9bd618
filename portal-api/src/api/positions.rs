//! `POST /api/v1/positions`: a batch of positions in the canonical format, from a
//! tenant's ELD integration or vendor webhook. Each item is checked on its own and
//! gets its own result; the good ones go to the position intake (the engine
//! pipeline, or the direct recorder until that is wired), so one bad fix never
//! costs the rest of the batch.
//!
//! Isolation: a vehicle carrying an order in progress of another tenant, and none
//! of the posting tenant's, is refused item by item (`vehicle_not_available`), so
//! one tenant's key can never move another tenant's truck. Vehicles that carry no
//! order in progress are accepted (an ELD unit may report before its load is
//! dispatched).

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use engine::{Position, VehicleId};
use serde_json::{Value, json};

use super::{JsonBody, PositionsKey, parse_position};
use crate::error::AppError;
use crate::model::TenantId;
use crate::state::AppState;

pub(crate) async fn post_batch(
    State(state): State<AppState>,
    PositionsKey(tenant): PositionsKey,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let items = body
        .as_array()
        .ok_or_else(|| AppError::invalid("body", "must be a JSON array of positions"))?;
    if items.is_empty() {
        return Err(AppError::invalid("body", "the batch is empty"));
    }
    let max = state.config().max_batch;
    if items.len() > max {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("`body`: {} positions; at most {max} per batch", items.len()),
        ));
    }
    let now = Utc::now();
    let parsed: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_position(item, index, now))
        .collect();
    let foreign = foreign_vehicles(&state, &tenant.id, &parsed).await?;
    let mut accepted = Vec::with_capacity(items.len());
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in parsed.into_iter().enumerate() {
        match item {
            Ok(position) if foreign.contains(&position.vehicle_id) => results.push(json!({
                "index": index,
                "status": "rejected",
                "error": {
                    "code": "vehicle_not_available",
                    "message": format!(
                        "`[{index}].vehicle_id`: vehicle `{}` carries an order of another account",
                        position.vehicle_id
                    ),
                },
            })),
            Ok(position) => {
                accepted.push(position);
                results.push(json!({"index": index, "status": "accepted"}));
            }
            Err(err) => results.push(json!({
                "index": index,
                "status": "rejected",
                "error": {"code": err.code, "message": err.message},
            })),
        }
    }
    let n_accepted = accepted.len();
    if n_accepted == 0 {
        // Nothing usable: the request as a whole is bad.
        let first = results
            .first()
            .and_then(|r| r["error"]["message"].as_str())
            .unwrap_or("no valid position")
            .to_owned();
        let code = results
            .first()
            .and_then(|r| r["error"]["code"].as_str())
            .filter(|c| *c == "vehicle_not_available")
            .unwrap_or("invalid_field")
            .to_owned();
        let body = json!({
            "error": {"code": code, "message": first},
            "accepted": 0,
            "rejected": items.len(),
            "results": results,
        });
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    {
        state.inner.intake.submit(tenant.id, accepted).await?;
    }
    let body: Value = json!({
        "accepted": n_accepted,
        "rejected": items.len() - n_accepted,
        "results": results,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The vehicles of the batch that carry an order in progress of another tenant
/// and none of `tenant`'s.
async fn foreign_vehicles<E>(
    state: &AppState,
    tenant: &TenantId,
    parsed: &[Result<Position, E>],
) -> Result<HashSet<VehicleId>, AppError> {
    let mut vehicles: Vec<VehicleId> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|p| p.vehicle_id.clone()))
        .collect();
    vehicles.sort();
    vehicles.dedup();
    if vehicles.is_empty() {
        return Ok(HashSet::new());
    }
    let carriers = state.inner.store.vehicle_carriers(vehicles.clone()).await?;
    Ok(vehicles
        .into_iter()
        .zip(carriers)
        .filter(|(_, tenants)| !tenants.is_empty() && !tenants.contains(tenant))
        .map(|(vehicle, _)| vehicle)
        .collect())
}
