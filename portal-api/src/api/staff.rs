//! The staff pages: sign in with an API key of scope `read` (or `orders`),
//! then the analytics page and the order list, server-rendered. Signing in
//! checks the key and forgets it: the browser gets a cookie holding a random
//! session token (HttpOnly, SameSite=Strict, Secure when the public URL is
//! https), the store keeps only the token's hash, and a revoked key ends its
//! sessions at once. Nothing here is public: without a live session every
//! page answers with the sign-in form (401).

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::{Params, PathParams};
use crate::analytics::{AccuracyQuery, GroupBy, OnTimeBy, OnTimeQuery};
use crate::error::AppError;
use crate::model::{ApiKey, ListQuery, Scope, StopState, Tenant};
use crate::page::staff::{self, AnalyticsFigures, OrderRow};
use crate::secrets::{new_session_token, new_tracking_code, secret_hash};
use crate::state::AppState;
use crate::view;
use store::AnalyticsStore;

const COOKIE: &str = "tracker_staff";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;
/// Orders shown on one page of the list.
const ORDER_LIMIT: u32 = 200;

/// The staff pages allow only our own styles and our own script file (the
/// copy buttons); no inline script.
const STAFF_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, STAFF_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
}

fn analytics_store(state: &AppState) -> Result<&dyn AnalyticsStore, AppError> {
    state.store().analytics().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "this store keeps no analytics",
        )
    })
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The signed-in tenant and key, or the sign-in page to answer with.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<(Tenant, ApiKey), Response> {
    let sign_in = || html(StatusCode::UNAUTHORIZED, staff::sign_in(None));
    let Some(token) = session_token(headers) else {
        return Err(sign_in());
    };
    let store = analytics_store(state).map_err(IntoResponse::into_response)?;
    match store.staff_session(secret_hash(&token), Utc::now()).await {
        Ok(Some((tenant, key))) if key.allows_any(&[Scope::Read, Scope::Orders]) => {
            Ok((tenant, key))
        }
        Ok(_) => Err(sign_in()),
        Err(err) => Err(AppError::from(err).into_response()),
    }
}

pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(_) => Redirect::to("/staff/analytics").into_response(),
        Err(page) => page,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    api_key: String,
}

pub(crate) async fn sign_in(State(state): State<AppState>, Form(form): Form<SignIn>) -> Response {
    let refused = |why: &str| html(StatusCode::UNAUTHORIZED, staff::sign_in(Some(why)));
    let key = form.api_key.trim();
    if key.is_empty() {
        return refused("Enter an API key.");
    }
    let found = match state.store().authenticate(secret_hash(key)).await {
        Ok(found) => found,
        Err(err) => return AppError::from(err).into_response(),
    };
    let Some((_, api_key)) = found else {
        return refused("Unknown or revoked API key.");
    };
    if !api_key.allows_any(&[Scope::Read, Scope::Orders]) {
        return refused("This key lacks scope `read`.");
    }
    let store = match analytics_store(&state) {
        Ok(store) => store,
        Err(err) => return err.into_response(),
    };
    let token = new_session_token();
    let expires = Utc::now() + Duration::hours(SESSION_HOURS);
    if let Err(err) = store
        .create_staff_session(secret_hash(&token), api_key.id.clone(), expires)
        .await
    {
        return AppError::from(err).into_response();
    }
    let secure = if state.config().public_base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={token}; Path=/staff; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/staff/analytics".to_owned()),
        ],
    )
        .into_response()
}

pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let (Some(token), Some(store)) = (session_token(&headers), state.store().analytics())
        && let Err(err) = store
            .end_staff_session(secret_hash(&token), Utc::now())
            .await
    {
        return AppError::from(err).into_response();
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/staff; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
            (header::LOCATION, "/staff".to_owned()),
        ],
    )
        .into_response()
}

pub(crate) async fn analytics_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params,
) -> Response {
    let (tenant, _) = match signed_in(&state, &headers).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    match analytics_figures(&state, &tenant, &params).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(err) => err.into_response(),
    }
}

async fn analytics_figures(
    state: &AppState,
    tenant: &Tenant,
    params: &HashMap<String, String>,
) -> Result<String, AppError> {
    let now = Utc::now();
    let mut range: HashMap<String, String> = HashMap::new();
    for name in ["from", "to"] {
        if let Some(v) = params.get(name) {
            range.insert(name.to_owned(), v.clone());
        }
    }
    let query = AccuracyQuery::parse(&range, now)?;
    let store = analytics_store(state)?;
    // The staff page groups lanes at the aggregates' own resolution, so one
    // read serves both tables.
    let lane_res = road_graph::h3_resolution(crate::analytics::DEFAULT_LANE_RES)
        .map_err(|e| AppError::invalid("lane_res", e))?;
    let inputs = store
        .accuracy_inputs(
            tenant.id.clone(),
            query.filter.clone(),
            store::aggregates_serve(Some(crate::analytics::DEFAULT_LANE_RES)),
        )
        .await?;
    let (rows, daily) = (&inputs.raw, &inputs.daily);
    let by_horizon = crate::analytics::accuracy_groups_with_daily(rows, daily, GroupBy::Horizon);
    let by_lane =
        crate::analytics::accuracy_groups_with_daily(rows, daily, GroupBy::Lane(lane_res));
    let on_time = OnTimeQuery::parse(&range, now)?;
    let visits = store
        .stop_visits(tenant.id.clone(), on_time.filter.clone())
        .await?;
    let on_time_by_day = crate::analytics::on_time_groups(&visits, OnTimeBy::Day);
    Ok(staff::analytics(&AnalyticsFigures {
        tenant: &tenant.name,
        from: &view::rfc3339(query.filter.from),
        to: &view::rfc3339(query.filter.to),
        by_horizon: &by_horizon,
        on_time_by_day: &on_time_by_day,
        by_lane: &by_lane,
    }))
}

pub(crate) async fn orders_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params,
) -> Response {
    let (tenant, key) = match signed_in(&state, &headers).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    match order_rows(&state, &tenant, &params).await {
        Ok((rows, filter)) => html(
            StatusCode::OK,
            staff::orders(&rows, &filter, key.allows_any(&[Scope::Orders]), None),
        ),
        Err(err) => err.into_response(),
    }
}

async fn order_rows(
    state: &AppState,
    tenant: &Tenant,
    params: &HashMap<String, String>,
) -> Result<(Vec<OrderRow>, Vec<(&'static str, String)>), AppError> {
    let nonempty = |name: &str| params.get(name).filter(|v| !v.trim().is_empty()).cloned();
    let status = match nonempty("status") {
        Some(s) => Some(
            engine::OrderStatus::parse(&s)
                .ok_or_else(|| AppError::invalid("status", format!("unknown status `{s}`")))?,
        ),
        None => None,
    };
    let date = |name: &'static str| -> Result<Option<NaiveDate>, AppError> {
        nonempty(name)
            .map(|d| {
                NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map_err(|_| AppError::invalid(name, "must be a date, YYYY-MM-DD"))
            })
            .transpose()
    };
    let (from, to) = (date("from")?, date("to")?);
    let late_risk = match nonempty("late_risk").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(AppError::invalid(
                "late_risk",
                format!("`{other}`: expected true or false"),
            ));
        }
    };
    let orders = state
        .store()
        .list_orders(
            tenant.id.clone(),
            ListQuery {
                status,
                reference: nonempty("reference"),
                vehicle_id: None,
                late_risk,
                after: None,
                limit: ORDER_LIMIT,
            },
        )
        .await?;
    let mut rows = Vec::new();
    for order in orders {
        let day = order.created_at.date_naive();
        if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
            continue;
        }
        let link = recoverable_link(state, &order.id).await?;
        let eta = order.next_stop().and_then(|stop| {
            view::shown_eta(&order).map(|e| {
                format!(
                    "{} (p10–p90 {} – {})",
                    view::local_label(e.eta, stop),
                    view::local_label(e.p10, stop),
                    view::local_label(e.p90, stop)
                )
            })
        });
        let stops = order
            .stops
            .iter()
            .map(|s| {
                let mut text = format!("{} {}: {}", s.kind.as_str(), s.index + 1, s.name);
                if let Some(at) = s.arrived_at {
                    text.push_str(&format!(", arrived {}", view::local_label(at, s)));
                }
                if let Some(at) = s.departed_at {
                    text.push_str(&format!(", left {}", view::local_label(at, s)));
                }
                if s.state() == StopState::Skipped {
                    text.push_str(", skipped");
                }
                text
            })
            .collect();
        rows.push(OrderRow {
            id: order.id.as_str().to_owned(),
            reference: order.reference.clone(),
            customer: order.customer.name.clone(),
            status: order.status.as_str(),
            created_at: view::rfc3339(order.created_at),
            eta,
            late_risk: order.late_risk().map(|(stop, risk)| {
                format!(
                    "{} {} ({}) predicted {} min past its window",
                    stop.kind.as_str(),
                    stop.index + 1,
                    stop.name,
                    risk.by_min
                )
            }),
            stops,
            link,
        });
    }
    let mut filter = Vec::new();
    for name in ["reference", "status", "late_risk", "from", "to"] {
        if let Some(v) = nonempty(name) {
            filter.push((name, v));
        }
    }
    Ok((rows, filter))
}

/// The order's tracking link, where it can be recovered: codes are stored
/// hashed, and only a code sealed under the server's key when it was issued
/// (`serve --notify-key`, for e-mails) can be opened again.
async fn recoverable_link(
    state: &AppState,
    order: &engine::OrderId,
) -> Result<Option<String>, AppError> {
    let (Some(key), Some(notes)) = (&state.config().notify_key, state.store().notifications())
    else {
        return Ok(None);
    };
    Ok(notes
        .active_code_seal(order.clone())
        .await?
        .and_then(|(hash, sealed)| key.open(&sealed, &hash))
        .map(|code| state.tracking_url(&code)))
}

pub(crate) async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
) -> Response {
    let (tenant, key) = match signed_in(&state, &headers).await {
        Ok(who) => who,
        Err(page) => return page,
    };
    if !key.allows_any(&[Scope::Orders]) {
        return AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "rotating a link needs a key with scope `orders`",
        )
        .into_response();
    }
    let result = async {
        let id = super::orders::order_id(id)?;
        let code = new_tracking_code();
        super::notifications::remember_code(&state, &code).await?;
        let order = state
            .store()
            .rotate_tracking_code(tenant.id.clone(), id, code.clone())
            .await?;
        state.live().link_changed(&order.id).await;
        let (rows, filter) = order_rows(&state, &tenant, &HashMap::new()).await?;
        Ok::<_, AppError>(staff::orders(
            &rows,
            &filter,
            true,
            Some((&order.reference, &state.tracking_url(&code))),
        ))
    }
    .await;
    match result {
        Ok(body) => html(StatusCode::OK, body),
        Err(err) => err.into_response(),
    }
}
