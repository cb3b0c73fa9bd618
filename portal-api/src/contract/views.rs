//! The typed answers of the orders API: an order as its tenant sees it
//! ([`OrderView`]) and the pieces the public tracking view shares with it
//! (stops, ETAs, the truck's feed, timeline events). `view.rs` builds them
//! from the model; the server serializes them, the document describes them
//! and the client ([`crate::client`]) reads them, so the three agree. Times
//! are RFC 3339 UTC strings with whole seconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::CustomerBody;

/// An order's status (the `status` filter of `GET /api/v1/orders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusName {
    Created,
    Dispatched,
    AtPickup,
    PickedUp,
    OutForDelivery,
    AtDelivery,
    Delivered,
    Cancelled,
}

/// The shape of `POST /api/v1/positions` items (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositionFormatName {
    Canonical,
    Samsara,
    Motive,
    Geotab,
}

/// An order as its tenant sees it. `tracking_code` and `tracking_url` appear
/// only in the answers that issue a link (creating the order, rotating it);
/// `event` only in the answer to a status update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub reference: String,
    pub customer: CustomerBody,
    pub vehicle_id: Option<String>,
    pub driver_name: Option<String>,
    /// `created`, `dispatched`, `at_pickup`, `picked_up`, `out_for_delivery`,
    /// `at_delivery`, `delivered` or `cancelled`.
    pub status: String,
    /// Whether a tracking link is active (the link itself is shown once).
    pub tracking_active: bool,
    /// The first pending stop at risk of missing its window; `null` when none.
    pub late_risk: Option<LateRiskView>,
    pub stops: Vec<StopView>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub feed: FeedView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventView>,
}

/// A stop whose predicted arrival (its p90, or its ETA, as the server is set)
/// has stayed past the end of its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LateRiskView {
    /// When the risk was raised.
    #[schema(format = DateTime)]
    pub since: String,
    pub stop_idx: u32,
    /// Minutes past the window's end, when raised.
    pub by_min: i64,
}

/// `GET /api/v1/orders`: a page, and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderListView {
    pub orders: Vec<OrderView>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A stop with what happened there so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StopView {
    pub index: u32,
    /// `pickup` or `delivery`.
    pub kind: String,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub time_zone: String,
    /// The zone's abbreviation at the window's start (`EST`).
    pub tz_abbrev: Option<String>,
    pub window: Option<WindowView>,
    /// `pending`, `arrived`, `departed` or `skipped`.
    pub state: String,
    #[schema(format = DateTime)]
    pub arrived_at: Option<String>,
    #[schema(format = DateTime)]
    pub departed_at: Option<String>,
    #[schema(format = DateTime)]
    pub skipped_at: Option<String>,
    /// `early`, `on_time` or `late`, once the stop is reached.
    pub verdict: Option<String>,
    pub late_by_min: Option<i64>,
    /// The latest ETA, while the stop is ahead.
    #[serde(default)]
    pub eta: Option<EtaView>,
}

/// An appointment window, and its label in the stop's local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WindowView {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub local: Option<String>,
}

/// A predicted arrival with its p10–p90 window; `overdue` when its time has
/// passed and the stop is not reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EtaView {
    pub stop_index: u32,
    #[schema(format = DateTime)]
    pub at: String,
    pub overdue: bool,
    #[schema(format = DateTime)]
    pub p10: String,
    #[schema(format = DateTime)]
    pub p90: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// `traffic`, `hos_break`, `dwell`, `window_wait`.
    pub reasons: Vec<String>,
    pub remaining_distance_m: f64,
    pub remaining_drive_s: f64,
    /// The route ahead as `[lon, lat]` pairs.
    pub route: Vec<[f64; 2]>,
}

/// How fresh the truck's positions are: `live`, `stale` (none for
/// `stale_after_s`) or `none`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    pub state: String,
    #[schema(format = DateTime)]
    pub last_fix_at: Option<String>,
    pub last_fix_age_s: Option<i64>,
    pub stale_after_s: u64,
}

/// A timeline entry. `id` and `visibility` are shown to the tenant only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
    /// `status`, `exception` or `note`.
    pub kind: String,
    pub status: Option<String>,
    pub label: Option<String>,
    pub note: Option<String>,
    pub source: String,
    pub stop_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}
