//! The typed answers of every route besides the orders themselves
//! (`views.rs`): API keys, e-mail rules and messages, webhooks and their
//! deliveries, the positions receipt, POD files, the public tracking view,
//! the basemap and the health checks. Handlers build these (never a free
//! `json!` object), so the OpenAPI document describes what is sent, and the
//! typed client reads it back. Times are RFC 3339 UTC strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ErrorBody, ErrorDetail, EtaView, EventView, FeedView, StopView, TemplateBody};

/// An API key as listed: its prefix, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    /// `key_…`; what revocation names.
    pub id: String,
    pub name: String,
    /// `orders`, `positions`, `read`, `admin`.
    pub scopes: Vec<String>,
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

/// A key just made, as its maker sees it this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewApiKeyView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The bearer key; shown only in this answer.
    pub api_key: String,
}

/// `GET /api/v1/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyListView {
    pub api_keys: Vec<ApiKeyView>,
}

/// An e-mail rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationRuleView {
    pub id: String,
    pub event: String,
    /// `email`.
    pub channel: String,
    /// `customer` when the order's customer receives it.
    pub recipients: Vec<String>,
    pub addresses: Vec<String>,
    pub template: Option<TemplateBody>,
    /// For `eta_changed`: the smallest move worth a message, minutes.
    pub min_change_min: Option<u32>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /api/v1/notification-rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationRuleListView {
    pub rules: Vec<NotificationRuleView>,
}

/// What a rule would send about an order now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationPreviewView {
    pub rule_id: String,
    pub order_id: String,
    pub event: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One hand-over of a message to its channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub channel: String,
    pub node: String,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// `sent`, `retry`, `failed`, `suppressed`, `interrupted`; `null` while running.
    pub outcome: Option<String>,
    pub detail: Option<String>,
    /// The endpoint's HTTP status (webhooks).
    pub status_code: Option<u16>,
    pub duration_ms: Option<u64>,
}

/// A message (an e-mail or a webhook call) and its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// The e-mail rule, or the webhook endpoint, that made it.
    pub rule_id: String,
    pub event: String,
    pub event_id: String,
    /// `email` or `webhook`.
    pub channel: String,
    pub recipient: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// While `pending`.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
    pub idempotency_key: String,
    /// The `webhook-id` header of every attempt and replay (webhooks).
    pub webhook_id: Option<String>,
    pub attempt_log: Vec<AttemptView>,
}

/// `GET /api/v1/orders/{id}/notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationListView {
    pub notifications: Vec<NotificationView>,
}

/// A webhook endpoint (never its secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// Messages in a row that failed for good.
    pub consecutive_failures: u32,
    /// Until when the secret rotated out still signs.
    #[schema(format = DateTime)]
    pub previous_secret_valid_until: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An endpoint with its new secret, shown this once (creation, rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecretView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`.
    pub secret: String,
}

/// `GET /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookListView {
    pub webhooks: Vec<WebhookView>,
}

/// A message to a webhook endpoint, as its deliveries list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The message's id (what a replay names).
    pub delivery_id: String,
    pub order_id: String,
    #[serde(flatten)]
    pub message: NotificationView,
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryListView {
    pub deliveries: Vec<DeliveryView>,
}

/// What became of one position of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositionStatusName {
    Accepted,
    Duplicate,
    Stale,
    Rejected,
}

/// One item of a positions receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PositionResultView {
    /// The item's place in the batch.
    pub index: usize,
    pub status: PositionStatusName,
    /// A rejection's stable code (`bad_lat`, `stale_time`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The field at fault, where one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&engine::ItemReport> for PositionResultView {
    fn from(item: &engine::ItemReport) -> PositionResultView {
        use engine::ItemStatus as S;
        PositionResultView {
            index: item.index,
            status: match item.status {
                S::Accepted => PositionStatusName::Accepted,
                S::Duplicate => PositionStatusName::Duplicate,
                S::Stale => PositionStatusName::Stale,
                S::Rejected => PositionStatusName::Rejected,
            },
            reason: item.reason.map(str::to_owned),
            field: item.field.clone(),
            detail: item.detail.clone(),
        }
    }
}

/// `POST /api/v1/positions`: counts and a result per item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PositionsReceipt {
    pub accepted: usize,
    pub duplicate: usize,
    pub stale: usize,
    pub rejected: usize,
    pub results: Vec<PositionResultView>,
}

/// A batch of which nothing was usable: the receipt and the error object
/// naming the first item's fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PositionsRefused {
    #[serde(flatten)]
    pub receipt: PositionsReceipt,
    pub error: ErrorDetail,
}

/// `POST /api/v1/positions` 400: nothing in the batch was usable (the receipt
/// and the error), or the request itself was refused (a bad `format`, not a
/// JSON array, an empty batch: the error object alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PositionsBadRequest {
    Refused(PositionsRefused),
    Invalid(ErrorBody),
}

/// `POST /api/v1/orders/{id}/eta`: recorded, and whether the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalEtaRecorded {
    pub recorded: bool,
    pub shown: bool,
}

/// A proof-of-delivery file as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PodFileView {
    pub id: String,
    pub order_id: String,
    pub content_type: String,
    pub file_name: Option<String>,
    pub size_bytes: u64,
    pub sha256: String,
    pub signed_by: Option<String>,
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub taken_at: Option<String>,
    #[schema(format = DateTime)]
    pub uploaded_at: String,
    /// Where the file is read (with the tenant's key).
    pub url: String,
}

/// A proof-of-delivery file on the public view; `url` needs the tracking
/// code, so it is `null` where the code is not known (live deltas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicPodView {
    pub id: String,
    pub content_type: String,
    pub file_name: Option<String>,
    pub size_bytes: u64,
    pub signed_by: Option<String>,
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub taken_at: Option<String>,
    #[schema(format = DateTime)]
    pub uploaded_at: String,
    pub url: Option<String>,
}

/// The truck's latest position on the public view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VehicleView {
    pub lat: f64,
    pub lon: f64,
    #[schema(format = DateTime)]
    pub at: String,
    pub speed_mps: Option<f64>,
    pub heading_deg: Option<f64>,
    /// The centre of the truck's H3 cell instead of its position: the
    /// tenant's location privacy, far from the stops ahead (public views
    /// only; then no speed or heading).
    #[serde(default)]
    pub approximate: bool,
    /// The H3 resolution of that cell, when approximate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_resolution: Option<u8>,
}

/// Whether the tenant shows the truck's area instead of its position far
/// from the stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicPrivacyView {
    pub approximate_far_from_stops: bool,
}

/// The progress indicator: the steps and how many are reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub steps: Vec<String>,
    pub reached: usize,
}

/// One point of the ETA history chart (one per 5 minutes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EtaHistoryPointView {
    #[schema(format = DateTime)]
    pub at: String,
    #[schema(format = DateTime)]
    pub eta: String,
    #[schema(format = DateTime)]
    pub p10: String,
    #[schema(format = DateTime)]
    pub p90: String,
}

/// `GET /api/v1/track/{code}`: what the public tracking page shows (no
/// customer, vehicle id or driver; internal notes never appear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicOrderView {
    pub reference: String,
    pub status: String,
    pub status_label: String,
    pub progress: ProgressView,
    pub stops: Vec<StopView>,
    pub next_stop_index: Option<u32>,
    /// While tracking is on.
    pub vehicle: Option<VehicleView>,
    /// The road driven as `[lon, lat]` pairs (newest last), while tracking
    /// is on; under the tenant's location privacy like the truck.
    pub trail: Vec<[f64; 2]>,
    pub privacy: PublicPrivacyView,
    pub feed: FeedView,
    /// The ETA at the next stop.
    pub eta: Option<EtaView>,
    pub events: Vec<EventView>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// After delivery.
    pub pod: Vec<PublicPodView>,
    pub live: bool,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub eta_history_stop_index: Option<u32>,
    pub eta_history: Vec<EtaHistoryPointView>,
    #[schema(format = DateTime)]
    pub actual_arrival: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    /// `ok`.
    pub status: String,
    pub uptime_s: u64,
}

/// `GET /readyz` when ready: each check's verdict (`ok`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadyView {
    /// `ready`.
    pub status: String,
    pub checks: BTreeMap<String, String>,
    /// This node among the others, when the program reports it (`serve` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeView>,
}

/// `/readyz`'s account of one node: its name, the bus partitions it owns and
/// how far behind it is on them, and the other members of its consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// `serve --node-name` (by default the host name and process id).
    pub name: String,
    /// `memory` or `kafka`.
    pub bus: String,
    /// The Kafka consumer group (absent on the memory bus).
    pub group: Option<String>,
    /// The partitions the group assigned this node (none on the memory bus).
    pub partitions: Vec<NodePartitionView>,
    /// Messages behind, summed over the owned partitions whose lag is known.
    pub lag: i64,
    /// The group's members at the last listing, this node included.
    pub peers: Vec<NodePeerView>,
    /// When the members were last listed.
    #[schema(format = DateTime)]
    pub peers_checked_at: Option<String>,
    /// Why the last listing of the members failed, if it did.
    pub peers_error: Option<String>,
}

/// One bus partition a node owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodePartitionView {
    pub topic: String,
    pub partition: i32,
    /// Messages behind the partition's end, once known.
    pub lag: Option<i64>,
}

/// One member of a node's consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodePeerView {
    /// The member's Kafka `client.id` (`tracker-NODE` for a node).
    pub client_id: String,
    /// Where the broker sees it connect from.
    pub host: String,
    /// Whether the member is this node.
    pub is_self: bool,
}

/// `GET /readyz` while not ready: what is missing, each check's verdict
/// (`ok` or why not), and the error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotReadyView {
    /// `not_ready`.
    pub status: String,
    pub missing: Vec<String>,
    pub checks: BTreeMap<String, String>,
    /// This node among the others, when the program reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeView>,
    pub error: ErrorDetail,
}

/// GeoJSON's `"type": "FeatureCollection"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureCollectionType {
    FeatureCollection,
}

/// GeoJSON's `"type": "Feature"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureType {
    Feature,
}

/// GeoJSON's `"type": "LineString"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum LineStringType {
    LineString,
}

/// `GET /api/v1/map/roads`: the roads in a box, a GeoJSON FeatureCollection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoadsView {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    pub features: Vec<RoadFeature>,
    /// More roads than one answer carries were in the box.
    pub truncated: bool,
    /// `© OpenStreetMap contributors`.
    pub attribution: String,
}

/// One road piece.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoadFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub properties: RoadProperties,
    pub geometry: LineStringGeometry,
}

/// A road piece's class (`motorway`, `residential`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoadProperties {
    pub class: String,
}

/// A GeoJSON LineString: `[lon, lat]` pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LineStringGeometry {
    #[serde(rename = "type")]
    pub kind: LineStringType,
    pub coordinates: Vec<[f64; 2]>,
}

/// `GET /api/openapi.json`, described by its top-level members only (the
/// document is utoipa's, generated from these types and the routes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenApiDocumentView {
    /// `3.1.0`.
    pub openapi: String,
    #[schema(value_type = Object)]
    pub info: serde_json::Value,
    #[schema(value_type = Object)]
    pub paths: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub components: Option<serde_json::Value>,
}
