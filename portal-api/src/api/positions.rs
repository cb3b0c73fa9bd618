//! `POST /api/v1/positions`: a batch of positions from a tenant's ELD
//! integration or vendor webhook, in the canonical format or a vendor's shape
//! (`?format=samsara|motive|geotab`). Decoding and validation are the one
//! position contract every source uses (`engine::decode_batch`), so HTTP and
//! Kafka accept and refuse the same fixes for the same reasons.
//!
//! Every position is the API key's tenant's: a truck is (tenant, vehicle id),
//! so a tenant can only ever move its own trucks, and nothing in the answer
//! depends on another tenant's use of the same vehicle id. The receipt is
//! honest item by item: `accepted`, `duplicate` (the vehicle already has a fix
//! at that time), `stale` (older than the vehicle's newest recorded fix) or
//! `rejected` with the reason code and the field.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use engine::{BatchError, Format, VehicleKey, decode_batch, receipts};

use super::responses::{BodyErrors, KeyedErrors};
use super::{Params, PositionsKey, RawBody};
use crate::contract::{
    ErrorDetail, PositionBody, PositionFormatName, PositionResultView, PositionStatusName,
    PositionsBadRequest, PositionsReceipt, PositionsRefused,
};
use crate::error::AppError;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/v1/positions",
    tag = "positions",
    summary = "Post a batch of positions",
    params(("format" = Option<PositionFormatName>, Query, description = "canonical (default), samsara, motive or geotab")),
    request_body(content = Vec<PositionBody>, description = "positions in the canonical shape (or a vendor's, with `?format=`)"),
    responses(
        (status = 202, description = "a result per item: accepted, duplicate, stale or rejected with its reason", body = PositionsReceipt),
        (status = 400, description = "nothing in the batch was usable: the receipt and an `error`; or the request was refused (`format`, not an array, empty): the error object", body = PositionsBadRequest),
        KeyedErrors,
        BodyErrors
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn post_batch(
    State(state): State<AppState>,
    PositionsKey(tenant): PositionsKey,
    Params(params): Params,
    RawBody(body): RawBody,
) -> Result<Response, AppError> {
    let format = match params.get("format") {
        None => Format::Canonical,
        Some(name) => Format::parse(name).ok_or_else(|| {
            AppError::invalid(
                "format",
                format!("`{name}`: expected canonical, samsara, motive or geotab"),
            )
        })?,
    };
    let config = state.config();
    let decode_started = std::time::Instant::now();
    let decoded = decode_batch(
        format,
        &body,
        config.max_batch,
        &tenant.id,
        Utc::now(),
        &config.position_rules,
    )
    .map_err(|err| match err {
        BatchError::TooLarge { limit } => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("`body`: more than {limit} positions; at most {limit} per batch"),
        ),
        BatchError::Malformed(reason) => AppError::new(
            StatusCode::BAD_REQUEST,
            "malformed_batch",
            format!("`body`: not a JSON array of positions: {reason}"),
        ),
    })?;
    metrics::histogram!("tracker_stage_seconds", "stage" => "decode")
        .record(decode_started.elapsed());
    if decoded.is_empty() {
        return Err(AppError::invalid("body", "the batch is empty"));
    }
    let newest = newest_times(&state, &decoded).await?;
    let (results, accepted) = receipts(decoded, |key| newest.get(key).copied().flatten());
    let results: Vec<PositionResultView> = results.iter().map(PositionResultView::from).collect();
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let receipt = PositionsReceipt {
        accepted: accepted.len(),
        duplicate: count(PositionStatusName::Duplicate),
        stale: count(PositionStatusName::Stale),
        rejected: count(PositionStatusName::Rejected),
        results,
    };
    count_outcomes(&receipt);
    if receipt.rejected == receipt.results.len() {
        // Nothing usable: the request as a whole is bad; the first item's
        // reason names the field.
        let first = &receipt.results[0];
        let message = format!(
            "`[0]{}`: {} ({})",
            first
                .field
                .as_ref()
                .map(|f| format!(".{f}"))
                .unwrap_or_default(),
            first.detail.as_deref().unwrap_or("rejected"),
            first.reason.as_deref().unwrap_or("rejected"),
        );
        let refused = PositionsRefused {
            receipt,
            error: ErrorDetail {
                code: "invalid_field".to_owned(),
                message,
            },
        };
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(PositionsBadRequest::Refused(refused)),
        )
            .into_response());
    }
    if !accepted.is_empty() {
        state.inner.intake.submit(accepted).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(receipt)).into_response())
}

/// Counts a batch's items into `tracker_positions_total{source="http"}` and
/// its rejections into `tracker_positions_rejected_total` by reason.
fn count_outcomes(receipt: &PositionsReceipt) {
    for (outcome, n) in [
        ("received", receipt.results.len()),
        ("accepted", receipt.accepted),
        ("duplicate", receipt.duplicate),
        ("stale", receipt.stale),
        ("rejected", receipt.rejected),
    ] {
        if n > 0 {
            metrics::counter!("tracker_positions_total", "source" => "http", "outcome" => outcome)
                .increment(n as u64);
        }
    }
    for item in &receipt.results {
        if item.status == PositionStatusName::Rejected {
            let reason = item.reason.clone().unwrap_or_else(|| "rejected".to_owned());
            metrics::counter!(
                "tracker_positions_rejected_total",
                "source" => "http",
                "reason" => reason
            )
            .increment(1);
        }
    }
}

/// The newest recorded device time of each vehicle in the batch.
async fn newest_times(
    state: &AppState,
    decoded: &[Result<engine::Position, engine::Rejection>],
) -> Result<std::collections::HashMap<VehicleKey, Option<chrono::DateTime<Utc>>>, AppError> {
    let mut keys: Vec<VehicleKey> = decoded
        .iter()
        .filter_map(|p| p.as_ref().ok().map(engine::Position::key))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let times = state.inner.store.vehicle_times(keys.clone()).await?;
    Ok(keys.into_iter().zip(times).collect())
}
