//! The analysts' API (keys of scope `read`): ETA accuracy and on-time
//! performance grouped as asked, tracking-page views per order and overall.
//! Parameters are checked by `crate::analytics::query` (400 naming the bad
//! one); rows come from the store, figures from `crate::analytics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;

use super::responses::{InvalidParameter, KeyedErrors, NoAnalytics};
use super::{Params, PathParams, ReadKey};
use crate::analytics::{
    AccuracyGroup, AccuracyQuery, AnalyticsFilter, OnTimeGroup, OnTimeQuery, OrderViews,
    ViewsSummary, accuracy_groups_with_daily, on_time_groups,
};
use crate::contract::ErrorBody;
use crate::error::AppError;
use crate::state::AppState;
use store::AnalyticsStore;

/// `GET /api/v1/analytics/eta-accuracy`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccuracyResponse {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) group_by: &'static str,
    pub(crate) groups: Vec<AccuracyGroup>,
}

/// `GET /api/v1/analytics/on-time`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OnTimeResponse {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) group_by: &'static str,
    pub(crate) groups: Vec<OnTimeGroup>,
}

fn analytics(state: &AppState) -> Result<&dyn AnalyticsStore, AppError> {
    state.store().analytics().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "this store keeps no analytics",
        )
    })
}

fn group_name(by: crate::analytics::GroupBy) -> &'static str {
    use crate::analytics::GroupBy as G;
    match by {
        G::Horizon => "horizon",
        G::StopKind => "stop_kind",
        G::Customer => "customer",
        G::Vehicle => "vehicle",
        G::Lane(_) => "lane",
        G::Day => "day",
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/eta-accuracy",
    tag = "analytics",
    summary = "ETA accuracy, grouped",
    params(("from" = Option<String>, Query, format = DateTime, description = "start (RFC 3339; default 30 days before `to`)"), ("to" = Option<String>, Query, format = DateTime, description = "end (RFC 3339; default now)"), ("customer" = Option<String>, Query), ("vehicle" = Option<String>, Query), ("stop_kind" = Option<String>, Query, description = "`pickup` or `delivery`"), ("group_by" = Option<String>, Query, description = "`horizon` (default), `stop_kind`, `customer`, `vehicle`, `lane` or `day`"), ("lane_res" = Option<u8>, Query, minimum = 0, maximum = 15, description = "H3 resolution of lanes (default 5)")),
    responses(
        (status = 200, description = "`groups`, each with n, traces, mae_s, median_abs_error_s, p90_abs_error_s, bias_s, coverage, median_width_s, baseline_mae_s", body = AccuracyResponse),
        KeyedErrors,
        InvalidParameter,
        NoAnalytics
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn eta_accuracy(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    Params(params): Params,
) -> Result<Json<AccuracyResponse>, AppError> {
    let query = AccuracyQuery::parse(&params, Utc::now())?;
    let store = analytics(&state)?;
    // Whole summed days from their aggregates, the rest from raw rows
    // (`store/src/daily.rs`): bounded by the days in range, not the predictions.
    let lane_res = match query.group_by {
        crate::analytics::GroupBy::Lane(res) => Some(u8::from(res)),
        _ => None,
    };
    let inputs = store
        .accuracy_inputs(
            tenant.id,
            query.filter.clone(),
            store::aggregates_serve(lane_res),
        )
        .await?;
    Ok(Json(AccuracyResponse {
        from: crate::view::rfc3339(query.filter.from),
        to: crate::view::rfc3339(query.filter.to),
        group_by: group_name(query.group_by),
        groups: accuracy_groups_with_daily(&inputs.raw, &inputs.daily, query.group_by),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/on-time",
    tag = "analytics",
    summary = "Share of stops reached inside their window, grouped",
    params(("from" = Option<String>, Query, format = DateTime, description = "start (RFC 3339; default 30 days before `to`)"), ("to" = Option<String>, Query, format = DateTime, description = "end (RFC 3339; default now)"), ("customer" = Option<String>, Query), ("vehicle" = Option<String>, Query), ("stop_kind" = Option<String>, Query, description = "`pickup` or `delivery`"), ("group_by" = Option<String>, Query, description = "`customer`, `lane` or `day`"), ("lane_res" = Option<u8>, Query, minimum = 0, maximum = 15, description = "H3 resolution of lanes (default 5)")),
    responses(
        (status = 200, description = "`groups` with stops, on_time and the rate", body = OnTimeResponse),
        KeyedErrors,
        InvalidParameter,
        NoAnalytics
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn on_time(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    Params(params): Params,
) -> Result<Json<OnTimeResponse>, AppError> {
    use crate::analytics::OnTimeBy as B;
    let query = OnTimeQuery::parse(&params, Utc::now())?;
    let visits = analytics(&state)?
        .stop_visits(tenant.id, query.filter.clone())
        .await?;
    Ok(Json(OnTimeResponse {
        from: crate::view::rfc3339(query.filter.from),
        to: crate::view::rfc3339(query.filter.to),
        group_by: match query.group_by {
            B::Customer => "customer",
            B::Lane(_) => "lane",
            B::Day => "day",
        },
        groups: on_time_groups(&visits, query.group_by),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/views",
    tag = "analytics",
    summary = "Shipments whose tracking page was opened",
    params(("from" = Option<String>, Query, format = DateTime, description = "start (RFC 3339; default 30 days before `to`)"), ("to" = Option<String>, Query, format = DateTime, description = "end (RFC 3339; default now)")),
    responses(
        (status = 200, description = "orders, orders viewed at least once, views", body = ViewsSummary),
        KeyedErrors,
        InvalidParameter,
        NoAnalytics
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn views(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    Params(params): Params,
) -> Result<Json<ViewsSummary>, AppError> {
    let range = AnalyticsFilter::parse_range(&params, Utc::now())?;
    Ok(Json(
        analytics(&state)?
            .views_summary(tenant.id, range.from, range.to)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/views",
    tag = "analytics",
    summary = "Tracking-page views of one order",
    params(("id" = String, Path, description = "the order id")),
    responses(
        (status = 404, description = "no such order (or another tenant's)", body = ErrorBody),
        (status = 200, description = "views, unique viewers by day, first and last view, before and after delivery", body = OrderViews),
        KeyedErrors,
        InvalidParameter,
        NoAnalytics
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn order_views(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderViews>, AppError> {
    let order = super::orders::order_id(id)?;
    Ok(Json(
        analytics(&state)?.order_views(tenant.id, order).await?,
    ))
}
