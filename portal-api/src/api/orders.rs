//! The orders API for dispatchers and driver apps: create, read, list, update,
//! status updates, proof of delivery, and the order's tracking link. Every handler
//! is tenant-scoped through its key extractor ([`OrdersKey`] to change, [`ReadKey`]
//! to read): another tenant's order is a 404.
//!
//! The tracking code (and URL) appears only in the answers that issue one:
//! creating the order and rotating its link. The store keeps its hash only, so
//! later reads say whether a link is active, not what it is.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use engine::{OrderId, OrderStatus, VehicleId, VehicleKey};

use super::responses::{Conflict, Invalid, KeyedBodyErrors, KeyedErrors, NotFound, Untrackable};
use super::{JsonBody, OrdersKey, Params, PathParams, ReadKey, idempotency, map_check};
use crate::contract::LateRiskView;
use crate::contract::{
    CustomerBody, EventView, ExternalEtaBody, ExternalEtaRecorded, NewOrderBody, OrderListView,
    OrderPatchBody, OrderStatusName, OrderView, PodFileView, PodUpload, StatusUpdateBody, StopView,
    from_json,
};
use crate::error::AppError;
use crate::model::{Created, ListQuery, NewPod, NewStop, Order, PodMeta};
use crate::secrets::{new_tracking_code, secret_hash};
use crate::state::AppState;
use crate::view::{self, ViewClock, rfc3339};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// An order as its tenant sees it (whether a tracking link is active, not the
/// link: see [`issued_order_view`]), with its truck's feed.
fn order_view(
    order: &Order,
    last_fix_at: Option<chrono::DateTime<Utc>>,
    clock: ViewClock,
) -> OrderView {
    OrderView {
        id: order.id.as_str().to_owned(),
        reference: order.reference.clone(),
        customer: CustomerBody {
            name: order.customer.name.clone(),
            email: order.customer.email.clone(),
        },
        vehicle_id: order.vehicle_id.as_ref().map(|v| v.as_str().to_owned()),
        driver_name: order.driver_name.clone(),
        status: order.status.as_str().to_owned(),
        tracking_active: order.tracking_active,
        // The first pending stop at risk of missing its window (`alerts`).
        late_risk: order.late_risk().map(|(stop, risk)| LateRiskView {
            since: rfc3339(risk.since),
            stop_idx: stop.index,
            by_min: risk.by_min,
        }),
        stops: order
            .stops
            .iter()
            .map(|stop| StopView {
                eta: stop
                    .eta
                    .as_ref()
                    .map(|eta| view::eta_view(eta, view::overdue(stop, eta, clock.now))),
                ..view::stop_view(stop)
            })
            .collect(),
        created_at: rfc3339(order.created_at),
        updated_at: rfc3339(order.updated_at),
        feed: view::feed_view(last_fix_at, clock),
        tracking_code: None,
        tracking_url: None,
        event: None,
    }
}

/// Orders as their tenant sees them, each with its truck's `feed` (how old
/// the assigned vehicle's latest fix is: the tracking page's `feed` object,
/// shown here whatever the order's status), read in one go.
async fn order_views(state: &AppState, orders: &[Order]) -> Result<Vec<OrderView>, AppError> {
    let clock = state.view_clock();
    let vehicles: Vec<VehicleKey> = orders
        .iter()
        .filter_map(|o| {
            o.vehicle_id
                .clone()
                .map(|v| VehicleKey::new(o.tenant_id.clone(), v))
        })
        .collect();
    let mut times = if vehicles.is_empty() {
        Vec::new()
    } else {
        state.store().vehicle_times(vehicles).await?
    }
    .into_iter();
    Ok(orders
        .iter()
        .map(|order| {
            let last_fix_at = match order.vehicle_id {
                Some(_) => times.next().flatten(),
                None => None,
            };
            order_view(order, last_fix_at, clock)
        })
        .collect())
}

async fn one_order_view(state: &AppState, order: &Order) -> Result<OrderView, AppError> {
    let mut all = order_views(state, std::slice::from_ref(order)).await?;
    all.pop()
        .ok_or_else(|| AppError::from(crate::Error::store_permanent("an order without its view")))
}

/// An order with the tracking code just issued for it: the one answer that
/// carries the code and its URL.
async fn issued_order_view(
    state: &AppState,
    order: &Order,
    code: &str,
) -> Result<OrderView, AppError> {
    Ok(OrderView {
        tracking_code: Some(code.to_owned()),
        tracking_url: Some(state.tracking_url(code)),
        ..one_order_view(state, order).await?
    })
}

pub(super) fn order_id(id: String) -> Result<OrderId, AppError> {
    // Ids are ours; anything else cannot exist (and must not reach SQL as junk).
    if id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::not_found("order"));
    }
    Ok(OrderId(id))
}

/// Checks a new stop list against the map, when the server has one (`serve`
/// installs it once loaded; until then `/readyz` says not ready and orders are
/// taken unchecked).
fn stops_on_the_map(state: &AppState, stops: &[NewStop]) -> Result<(), AppError> {
    match state.inner.graph.get() {
        Some(graph) => map_check::on_the_map(
            stops,
            graph,
            state.config().max_stop_road_distance_m,
            "stops",
        ),
        None => Ok(()),
    }
}

/// `POST /api/v1/orders`: 201 with the new order and its tracking link; with
/// an `Idempotency-Key` seen in the last 24 h and the same body, 200 with the
/// order the first request made (and its link while that link is active).
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    summary = "Create an order and its tracking link",
    params(("Idempotency-Key" = Option<String>, Header, description = "replays within 24 h return the first answer")),
    request_body = NewOrderBody,
    responses(
        (status = 201, description = "the new order with its tracking code and URL", body = OrderView),
        (status = 200, description = "an `Idempotency-Key` replay: the order the first request made", body = OrderView),
        KeyedBodyErrors,
        Conflict,
        Untrackable
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let key = idempotency::from_headers(&headers, &tenant.id)?;
    let new = from_json::<NewOrderBody>(&body)?.check()?;
    stops_on_the_map(&state, &new.stops)?;
    let code = new_tracking_code();
    super::notifications::remember_code(&state, &code).await?;
    let claim = key.as_ref().map(|k| k.claim(&body, &code, Utc::now()));
    let created = state
        .store()
        .create_order_once(
            tenant.id,
            new,
            code.clone(),
            claim,
            state.config().unique_order_references,
        )
        .await?;
    let order = match created {
        Created::New(order) => order,
        Created::Replayed { order, sealed_code } => {
            // The first answer's link, while it is still the order's link
            // (not rotated or revoked since).
            let code = match key.as_ref().and_then(|k| k.open(&sealed_code)) {
                Some(code)
                    if state
                        .store()
                        .order_by_code_hash(secret_hash(&code))
                        .await?
                        .as_ref()
                        == Some(&order.id) =>
                {
                    Some(code)
                }
                _ => None,
            };
            let view = match code {
                Some(code) => issued_order_view(&state, &order, &code).await?,
                None => one_order_view(&state, &order).await?,
            };
            return Ok((StatusCode::OK, Json(view)).into_response());
        }
        Created::KeyReused => return Err(idempotency::reused()),
        Created::ReferenceTaken(existing) => {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "reference_taken",
                format!(
                    "`reference`: order {existing} already has this reference \
                     (references are unique per tenant on this server)"
                ),
            ));
        }
    };
    let location = format!("/api/v1/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(issued_order_view(&state, &order, &code).await?),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    summary = "One order",
    params(("id" = String, Path, description = "the order id")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderView>, AppError> {
    let order = state
        .store()
        .order(tenant.id, order_id(id)?)
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    Ok(Json(one_order_view(&state, &order).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    summary = "List orders, newest first",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200), ("status" = Option<OrderStatusName>, Query), ("reference" = Option<String>, Query), ("vehicle_id" = Option<String>, Query), ("late_risk" = Option<bool>, Query, description = "only orders with (true) or without (false) a stop at late risk"), ("after" = Option<String>, Query, description = "the `next_cursor` of the page before")),
    responses(
        (status = 200, description = "a page of orders", body = OrderListView),
        KeyedErrors,
        Invalid
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    Params(params): Params,
) -> Result<Json<OrderListView>, AppError> {
    let allowed = [
        "limit",
        "status",
        "reference",
        "vehicle_id",
        "late_risk",
        "after",
    ];
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(AppError::invalid(
            unknown,
            format!("unknown parameter; expected one of: {}", allowed.join(", ")),
        ));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                AppError::invalid("limit", format!("`{text}`: expected 1..{MAX_PAGE}"))
            })?,
    };
    let status = params
        .get("status")
        .map(|s| {
            OrderStatus::parse(s)
                .ok_or_else(|| AppError::invalid("status", format!("`{s}` is not a status")))
        })
        .transpose()?;
    let late_risk = params
        .get("late_risk")
        .map(|text| match text.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(AppError::invalid(
                "late_risk",
                format!("`{other}`: expected true or false"),
            )),
        })
        .transpose()?;
    let query = ListQuery {
        status,
        late_risk,
        reference: params.get("reference").cloned(),
        vehicle_id: params.get("vehicle_id").cloned().map(VehicleId),
        // A malformed cursor gets the answer an unknown one gets (the store's).
        after: params
            .get("after")
            .map(|after| {
                order_id(after.clone())
                    .map_err(|_| AppError::invalid("after", store::UNKNOWN_CURSOR))
            })
            .transpose()?,
        limit,
    };
    let orders = state.store().list_orders(tenant.id, query).await?;
    let next_cursor = if orders.len() == limit as usize {
        orders.last().map(|o| o.id.as_str().to_owned())
    } else {
        None
    };
    Ok(Json(OrderListView {
        orders: order_views(&state, &orders).await?,
        next_cursor,
    }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    summary = "Change an order",
    params(("id" = String, Path, description = "the order id")),
    request_body = OrderPatchBody,
    responses(
        (status = 200, description = "the changed order", body = OrderView),
        KeyedBodyErrors,
        NotFound,
        Conflict,
        Untrackable
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<OrderView>, AppError> {
    let patch = from_json::<OrderPatchBody>(&body)?.check()?;
    if let Some(stops) = &patch.stops {
        stops_on_the_map(&state, stops)?;
    }
    let vehicle_changed = patch.vehicle_id.is_some();
    let order = state
        .store()
        .update_order(tenant.id, order_id(id)?, patch)
        .await?;
    if vehicle_changed || order.status != OrderStatus::Created {
        // The page shows stops, windows and the truck: let viewers refresh.
        state.live().publish_status(&order.id, None).await;
    }
    Ok(Json(one_order_view(&state, &order).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/status",
    tag = "orders",
    summary = "Record a status, exception or note",
    params(("id" = String, Path, description = "the order id")),
    request_body = StatusUpdateBody,
    responses(
        (status = 201, description = "the order and the recorded `event`", body = OrderView),
        KeyedBodyErrors,
        NotFound,
        Conflict
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn add_status(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let event = from_json::<StatusUpdateBody>(&body)?.check(Utc::now())?;
    let (order, stored) = state
        .live()
        .event(Some(tenant.id), order_id(id)?, event)
        .await?;
    let body = OrderView {
        event: Some(EventView {
            id: Some(stored.id.clone()),
            visibility: Some(stored.visibility.as_str().to_owned()),
            ..view::event_view(&stored)
        }),
        ..one_order_view(&state, &order).await?
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/eta",
    tag = "orders",
    summary = "Give an ETA from your own planning",
    params(("id" = String, Path, description = "the order id")),
    request_body = ExternalEtaBody,
    responses(
        (status = 202, description = "recorded; `shown` says whether the page shows it", body = ExternalEtaRecorded),
        KeyedBodyErrors,
        NotFound,
        Conflict
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn post_eta(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let id = order_id(id)?;
    let order = state
        .store()
        .order(tenant.id, id.clone())
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    let update = from_json::<ExternalEtaBody>(&body)?.check(id, Utc::now())?;
    if update.stop_index as usize >= order.stops.len() {
        return Err(AppError::invalid(
            "stop_index",
            format!("the order has {} stops", order.stops.len()),
        ));
    }
    if order.status.is_final() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "order_finished",
            format!("the order is {}", order.status.as_str()),
        ));
    }
    let recorded = state.live().eta(update).await?;
    let shown = recorded == crate::model::EtaRecorded::Shown;
    Ok((
        StatusCode::ACCEPTED,
        Json(ExternalEtaRecorded {
            recorded: true,
            shown,
        }),
    )
        .into_response())
}

fn pod_view(order: &OrderId, pod: &PodMeta) -> PodFileView {
    PodFileView {
        id: pod.id.clone(),
        order_id: order.as_str().to_owned(),
        content_type: pod.content_type.clone(),
        file_name: pod.file_name.clone(),
        size_bytes: pod.size_bytes,
        sha256: pod.sha256.clone(),
        signed_by: pod.signed_by.clone(),
        note: pod.note.clone(),
        taken_at: pod.taken_at.map(rfc3339),
        uploaded_at: rfc3339(pod.uploaded_at),
        url: format!("/api/v1/orders/{order}/pod/{}", pod.id),
    }
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> AppError {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::new(status, "too_large", "the upload is larger than allowed")
    } else {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
            err.body_text(),
        )
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/pod",
    tag = "orders",
    summary = "Upload a proof of delivery",
    params(("id" = String, Path, description = "the order id")),
    request_body(content = PodUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "the stored file's description", body = PodFileView),
        KeyedBodyErrors,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn upload_pod(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Result<Response, AppError> {
    let id = order_id(id)?;
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected multipart/form-data with a `file` part: {}",
                e.body_text()
            ),
        )
    })?;
    let max = state.config().pod_max_bytes;
    let mut file: Option<(Vec<u8>, Option<String>, Option<String>)> = None;
    let (mut signed_by, mut note, mut taken_at) = (None, None, None);
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().map(str::to_owned);
                let declared = field.content_type().map(str::to_owned);
                let mut data = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if data.len() + chunk.len() > max {
                        return Err(AppError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too_large",
                            format!("`file`: larger than {max} bytes"),
                        ));
                    }
                    data.extend_from_slice(&chunk);
                }
                file = Some((data, file_name, declared));
            }
            "signed_by" | "note" | "taken_at" => {
                let text = field.text().await.map_err(multipart_error)?;
                let text = text.trim().to_owned();
                if text.chars().count() > 2000 {
                    return Err(AppError::invalid(&name, "longer than 2000 characters"));
                }
                match name.as_str() {
                    "signed_by" => signed_by = Some(text).filter(|t| !t.is_empty()),
                    "note" => note = Some(text).filter(|t| !t.is_empty()),
                    _ => {
                        let parsed = chrono::DateTime::parse_from_rfc3339(&text).map_err(|e| {
                            AppError::invalid("taken_at", format!("`{text}` is not RFC 3339: {e}"))
                        })?;
                        taken_at = Some(parsed.with_timezone(&Utc));
                    }
                }
            }
            other => {
                return Err(AppError::invalid(
                    other,
                    "unknown part; expected file, signed_by, note, taken_at",
                ));
            }
        }
    }
    let (data, file_name, declared) =
        file.ok_or_else(|| AppError::invalid("file", "is required"))?;
    if data.is_empty() {
        return Err(AppError::invalid("file", "is empty"));
    }
    let content_type = store::branding::sniff_type(&data).ok_or_else(|| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "`file`: must be a JPEG, PNG or WebP image or a PDF",
        )
    })?;
    if let Some(declared) = declared.filter(|d| d != "application/octet-stream")
        && declared != content_type
    {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("`file`: declared {declared} but the content is {content_type}"),
        ));
    }
    let file_name = file_name.map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect());
    let pod = NewPod {
        content_type: content_type.to_owned(),
        file_name,
        signed_by,
        note,
        taken_at,
        data,
    };
    let meta = state.store().add_pod(tenant.id, id.clone(), pod).await?;
    state.live().publish_status(&id, None).await;
    Ok((StatusCode::CREATED, Json(pod_view(&id, &meta))).into_response())
}

/// Serves a stored file with headers that keep browsers from sniffing or running it.
pub(crate) fn file_response(meta: &PodMeta, data: Vec<u8>) -> Response {
    let disposition = if meta.content_type == "application/pdf" {
        "attachment"
    } else {
        "inline"
    };
    (
        [
            (header::CONTENT_TYPE, meta.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "{disposition}; filename=\"{}.{}\"",
                    meta.id,
                    extension(&meta.content_type)
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        data,
    )
        .into_response()
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/pod/{pod_id}",
    tag = "orders",
    summary = "Download a proof of delivery",
    params(("id" = String, Path, description = "the order id"), ("pod_id" = String, Path)),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = String),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn download_pod(
    State(state): State<AppState>,
    ReadKey(tenant): ReadKey,
    PathParams((id, pod_id)): PathParams<(String, String)>,
) -> Result<Response, AppError> {
    let id = order_id(id)?;
    // Tenant check first: the POD lookup itself is not tenant-scoped.
    state
        .store()
        .order(tenant.id, id.clone())
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    let (meta, data) = state
        .store()
        .pod_file(id, pod_id)
        .await?
        .ok_or_else(|| AppError::not_found("pod"))?;
    Ok(file_response(&meta, data))
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/tracking-link/rotate",
    tag = "orders",
    summary = "Issue a new tracking link (the old one stops working)",
    params(("id" = String, Path, description = "the order id")),
    responses(
        (status = 200, description = "the order with its new tracking code and URL", body = OrderView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate_link(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderView>, AppError> {
    let code = new_tracking_code();
    super::notifications::remember_code(&state, &code).await?;
    let order = state
        .store()
        .rotate_tracking_code(tenant.id, order_id(id)?, code.clone())
        .await?;
    state.live().link_changed(&order.id).await;
    Ok(Json(issued_order_view(&state, &order, &code).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orders/{id}/tracking-link",
    tag = "orders",
    summary = "Revoke the tracking link",
    params(("id" = String, Path, description = "the order id")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        KeyedErrors,
        Invalid,
        NotFound
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke_link(
    State(state): State<AppState>,
    OrdersKey(tenant): OrdersKey,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderView>, AppError> {
    let order = state
        .store()
        .revoke_tracking_code(tenant.id, order_id(id)?)
        .await?;
    state.live().link_changed(&order.id).await;
    Ok(Json(one_order_view(&state, &order).await?))
}
