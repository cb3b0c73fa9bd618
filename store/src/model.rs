//! The portal's domain records: tenants and their API keys, orders with their stops and windows, the
//! timeline of status events, proof-of-delivery files, the latest live state
//! (vehicle position, ETA) and what the public tracking view is built from.
//! Wire shapes (what JSON looks like) live in `api/`; these are the records the
//! store reads and writes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use engine::{EtaReason, OrderId, OrderStatus, StatusSource, StopKind, VehicleId, VehicleKey};
use serde::{Deserialize, Serialize};

/// A tenant (a broker or shipper using the service); ids look like `ten_…`.
/// The engine's type: the scope of every vehicle, position and order.
pub use engine::TenantId;

/// A tenant as stored (its API keys, only as hashes, are [`ApiKey`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do. A route names the scopes it accepts; a key holding
/// none of them is refused with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Create, update and read orders: status, POD, ETAs, tracking links.
    Orders,
    /// Post positions (`POST /api/v1/positions`): what an ELD integration needs.
    Positions,
    /// Read only: list and read orders (and analytics).
    Read,
    /// Manage the tenant's API keys.
    Admin,
}

impl Scope {
    /// Every scope, in the canonical order (the order listings show them in).
    pub const ALL: [Scope; 4] = [Scope::Orders, Scope::Positions, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Orders => "orders",
            Scope::Positions => "positions",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as stored: never the key itself, only its hash (elsewhere) and its
/// first characters, enough for a person to recognise it, far too few to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_…`; what revocation names.
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    /// Sorted, without repeats.
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key holds any of `scopes`.
    pub fn allows_any(&self, scopes: &[Scope]) -> bool {
        scopes.iter().any(|s| self.scopes.contains(s))
    }
}

/// An API key to store: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    /// Sorted, without repeats, not empty.
    pub scopes: Vec<Scope>,
}

/// Longest API key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

impl NewApiKey {
    /// A fresh key named `name` with `scopes`: what to store, and the key to
    /// show once (random, from the OS; only its hash and first characters are
    /// kept).
    pub fn fresh(name: &str, scopes: Vec<Scope>) -> crate::Result<(NewApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(crate::Error::invalid(
                "name",
                format!("must be 1-{MAX_KEY_NAME_CHARS} characters"),
            ));
        }
        if scopes.is_empty() {
            return Err(crate::Error::invalid(
                "scopes",
                "at least one scope is needed",
            ));
        }
        let key = crate::secrets::new_api_key();
        let record = NewApiKey {
            name: name.to_owned(),
            prefix: crate::secrets::api_key_prefix(&key),
            key_hash: crate::secrets::secret_hash(&key),
            scopes,
        };
        Ok((record, key))
    }
}

/// The broker's customer for an order. Never shown on the public page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An appointment window, UTC instants; shown in the stop's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A stop as a client describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStop {
    pub kind: StopKind,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    /// IANA time zone of the place (windows are shown in it).
    pub time_zone: Tz,
    pub window: Option<Window>,
    /// The facility's fence (else the engine's default circle).
    pub geofence: Option<engine::Geofence>,
}

/// Where a stop stands: `pending` → `arrived` → `departed`, or `skipped`
/// (a later stop was reached while it was pending). A stop left without an
/// arrival on record (a dispatcher reported "picked up" only) is `departed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopState {
    Pending,
    Arrived,
    Departed,
    Skipped,
}

impl StopState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StopState::Pending => "pending",
            StopState::Arrived => "arrived",
            StopState::Departed => "departed",
            StopState::Skipped => "skipped",
        }
    }
}

/// A reached stop against its appointment window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Early,
    OnTime,
    /// Late by this many whole minutes (rounded up).
    Late {
        minutes: i64,
    },
}

impl Verdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Early => "early",
            Verdict::OnTime => "on_time",
            Verdict::Late { .. } => "late",
        }
    }
}

/// A stop as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// Position in the order's stop list, from 0.
    pub index: u32,
    pub kind: StopKind,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub time_zone: Tz,
    pub window: Option<Window>,
    pub geofence: Option<engine::Geofence>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub departed_at: Option<DateTime<Utc>>,
    pub skipped_at: Option<DateTime<Utc>>,
    /// The latest ETA the engine published for this stop.
    pub eta: Option<EtaRecord>,
    /// Raised when its predicted arrival passed the window's end and stayed
    /// there (`crate::alerts`); cleared when it came back.
    pub late_risk: Option<crate::alerts::LateRisk>,
}

impl Stop {
    pub fn state(&self) -> StopState {
        if self.skipped_at.is_some() && self.arrived_at.is_none() {
            StopState::Skipped
        } else if self.departed_at.is_some() {
            StopState::Departed
        } else if self.arrived_at.is_some() {
            StopState::Arrived
        } else {
            StopState::Pending
        }
    }

    /// The arrival against the appointment window (the departure when no
    /// arrival was recorded); `None` before either or without a window.
    pub fn verdict(&self) -> Option<Verdict> {
        let window = self.window?;
        let reached = self.arrived_at.or(self.departed_at)?;
        Some(if reached < window.from {
            Verdict::Early
        } else if reached <= window.to {
            Verdict::OnTime
        } else {
            let late_s = (reached - window.to).num_seconds();
            Verdict::Late {
                minutes: (late_s + 59) / 60,
            }
        })
    }
}

/// An order as a client creates it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub reference: String,
    pub customer: Customer,
    pub vehicle_id: Option<VehicleId>,
    pub driver_name: Option<String>,
    pub stops: Vec<NewStop>,
}

/// A partial update; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderPatch {
    pub reference: Option<String>,
    pub customer: Option<Customer>,
    pub vehicle_id: Option<Option<VehicleId>>,
    pub driver_name: Option<Option<String>>,
    /// Replaces the whole stop list (arrivals recorded so far are kept by index).
    pub stops: Option<Vec<NewStop>>,
}

impl OrderPatch {
    pub fn is_empty(&self) -> bool {
        *self == OrderPatch::default()
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub reference: String,
    pub customer: Customer,
    pub vehicle_id: Option<VehicleId>,
    pub driver_name: Option<String>,
    pub status: OrderStatus,
    /// Whether a tracking code is active (false after a revocation). The code
    /// itself is stored only as its hash: it is known when it is issued (order
    /// created, link rotated) and never again.
    pub tracking_active: bool,
    pub stops: Vec<Stop>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// Whether the truck's live location may be shown: from dispatch until the
    /// freight is delivered. Before dispatch the truck may still be on another
    /// customer's load; after delivery the link is a record, not a live view.
    pub fn shows_live_location(&self) -> bool {
        !self.status.is_final() && self.status != OrderStatus::Created
    }

    /// The order's late risk: the first stop still pending that is at risk.
    /// A stop reached late is no longer a risk (its verdict says how late).
    pub fn late_risk(&self) -> Option<(&Stop, crate::alerts::LateRisk)> {
        if self.status.is_final() {
            return None;
        }
        self.stops
            .iter()
            .filter(|s| s.state() == StopState::Pending)
            .find_map(|s| s.late_risk.map(|r| (s, r)))
    }

    /// The next stop: the first pending one after every stop reached, left or
    /// skipped; the one the ETA on the page is about.
    pub fn next_stop(&self) -> Option<&Stop> {
        let first = self
            .stops
            .iter()
            .rposition(|s| s.state() != StopState::Pending)
            .map_or(0, |k| k + 1);
        self.stops.get(first)
    }
}

/// What a timeline entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The order moved to `status`.
    Status,
    /// Something went wrong (a delay, damage, a refused delivery); the status
    /// does not move.
    Exception,
    /// A plain note.
    Note,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Exception => "exception",
            EventKind::Note => "note",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        match text {
            "status" => Some(EventKind::Status),
            "exception" => Some(EventKind::Exception),
            "note" => Some(EventKind::Note),
            _ => None,
        }
    }
}

/// Who may read a timeline entry. A note or an exception that is `Internal`
/// never reaches the tracking page, its JSON or its WebSocket; a status entry
/// is always shown (the status itself is public), and only its note follows
/// its visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Shown to whoever holds the tracking link.
    Public,
    /// Shown to the tenant's API keys only (a gate code, a driver's remark).
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<Visibility> {
        match text {
            "public" => Some(Visibility::Public),
            "internal" => Some(Visibility::Internal),
            _ => None,
        }
    }
}

/// A timeline entry to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    /// The new status (for `Status` events).
    pub status: Option<OrderStatus>,
    /// When it happened (device or dispatcher time).
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    pub source: StatusSource,
    pub stop_index: Option<u32>,
    pub visibility: Visibility,
}

/// A timeline entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    pub id: String,
    pub kind: EventKind,
    pub status: Option<OrderStatus>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    pub source: StatusSource,
    pub stop_index: Option<u32>,
    pub visibility: Visibility,
    /// When the server recorded it.
    pub recorded_at: DateTime<Utc>,
}

impl OrderEvent {
    /// The entry as the public view shows it: an internal note or exception
    /// not at all, an internal status entry without its note.
    pub fn public(&self) -> Option<OrderEvent> {
        match (self.visibility, self.kind) {
            (Visibility::Public, _) => Some(self.clone()),
            (Visibility::Internal, EventKind::Status) => Some(OrderEvent {
                note: None,
                ..self.clone()
            }),
            (Visibility::Internal, _) => None,
        }
    }
}

/// A proof-of-delivery file to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPod {
    pub content_type: String,
    pub file_name: Option<String>,
    pub signed_by: Option<String>,
    pub note: Option<String>,
    pub taken_at: Option<DateTime<Utc>>,
    pub data: Vec<u8>,
}

/// Metadata of a stored proof-of-delivery file.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMeta {
    pub id: String,
    pub order_id: OrderId,
    pub content_type: String,
    pub file_name: Option<String>,
    pub size_bytes: u64,
    pub sha256: String,
    pub signed_by: Option<String>,
    pub note: Option<String>,
    pub taken_at: Option<DateTime<Utc>>,
    pub uploaded_at: DateTime<Utc>,
}

/// A vehicle's position as the portal keeps it (latest per vehicle, trail per order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleFix {
    pub vehicle_id: VehicleId,
    pub at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
}

/// The latest ETA for a stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaRecord {
    pub stop_index: u32,
    pub eta: DateTime<Utc>,
    pub p10: DateTime<Utc>,
    pub p90: DateTime<Utc>,
    pub remaining_distance_m: f64,
    pub remaining_drive_s: f64,
    pub reasons: Vec<EtaReason>,
    pub computed_at: DateTime<Utc>,
    /// Remaining route as `[lon, lat]` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<[f64; 2]>,
}

impl From<&engine::EtaUpdate> for EtaRecord {
    fn from(u: &engine::EtaUpdate) -> EtaRecord {
        EtaRecord {
            stop_index: u.stop_index,
            eta: u.eta,
            p10: u.p10,
            p90: u.p90,
            remaining_distance_m: u.remaining_distance_m,
            remaining_drive_s: u.remaining_drive_s,
            reasons: u.reasons.clone(),
            computed_at: u.computed_at,
            route: u.route.clone(),
        }
    }
}

/// Everything the public tracking view shows for one order, read in one go.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackView {
    pub order: Order,
    /// The public timeline only ([`OrderEvent::public`]): internal entries are
    /// left out when it is read, so nothing built from it can show them.
    pub events: Vec<OrderEvent>,
    /// The assigned vehicle's latest position (whether to show it is decided by
    /// [`Order::shows_live_location`]).
    pub vehicle: Option<VehicleFix>,
    pub pods: Vec<PodMeta>,
    /// How the ETA of the next stop (after the last one is reached, of the
    /// last delivery) moved, thinned for the page.
    pub eta_history: Option<EtaHistory>,
    /// Where the vehicle has been while carrying the order, oldest first
    /// (downsampled; the road already driven on the map).
    pub trail: Vec<TrailPoint>,
    /// The tenant's brand (logo metadata, not its bytes).
    pub branding: crate::branding::Branding,
    /// The tenant's location privacy, applied to every position shown.
    pub privacy: crate::privacy::LocationPrivacy,
}

/// A kept point of an order's position trail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrailPoint {
    pub at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
}

/// The ETAs logged for one stop, at most one per few minutes, and the actual
/// arrival once known.
#[derive(Debug, Clone, PartialEq)]
pub struct EtaHistory {
    pub stop_index: u32,
    pub points: Vec<crate::analytics::EtaPoint>,
    pub actual_arrival: Option<DateTime<Utc>>,
}

/// An `Idempotency-Key` claimed by an order creation: hashes only, scoped
/// by the tenant the store is given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// SHA-256 of the tenant and the key (never the key).
    pub key_hash: String,
    /// SHA-256 of the request body in a canonical form (sorted keys).
    pub body_hash: String,
    /// The order's first tracking code sealed with the key (see the store's
    /// `seal_code`), so a replay can give it back while the store alone
    /// cannot read it.
    pub sealed_code: String,
    /// Claims older than this are forgotten (expired): 24 h before now.
    pub not_before: DateTime<Utc>,
}

/// What an order creation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new order.
    New(Order),
    /// The same key and body came before: the order made then, and the
    /// sealed tracking code issued with it.
    Replayed { order: Order, sealed_code: String },
    /// The same key came before with another body.
    KeyReused,
    /// `unique_reference` was asked for and the tenant has an order (not
    /// cancelled) with this reference.
    ReferenceTaken(OrderId),
}

/// Filters for listing a tenant's orders, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    pub status: Option<OrderStatus>,
    pub reference: Option<String>,
    pub vehicle_id: Option<VehicleId>,
    /// Only orders with (`true`) or without (`false`) a late risk.
    pub late_risk: Option<bool>,
    /// Orders created before this one (the cursor from the previous page).
    pub after: Option<OrderId>,
    pub limit: u32,
}

/// What recording a position did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PositionOutcome {
    /// False when the store already had a newer fix for this vehicle (out of order).
    pub newest: bool,
    /// Active orders (dispatched, not delivered) carried by the vehicle: the pages
    /// that should see this position.
    pub orders: Vec<OrderId>,
    /// The tenant's location privacy, read in the same transaction.
    pub privacy: crate::privacy::LocationPrivacy,
    /// With privacy on, the (lat, lon) of each order's stops still ahead, in
    /// the order of `orders` (where the exact position may show); else empty.
    pub pending_stops: Vec<Vec<(f64, f64)>>,
}

/// What recording an ETA did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtaRecorded {
    /// Unknown order or stop, or the order is finished: nothing stored.
    Ignored,
    /// Logged and kept as the stop's latest, but it is not the stop the page
    /// shows (a later stop of a multi-stop order).
    Logged,
    /// Logged, and it is the ETA the page shows now.
    Shown,
}

/// What recording one ETA of a batch did and, for an ETA the page shows,
/// what the page may show of the route ahead: the tenant's location privacy
/// and, when it is on, the order's stops still ahead, read in the same
/// transaction (so publishing it needs no read of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEta {
    pub recorded: EtaRecorded,
    /// The default (off) unless `recorded` is `Shown`.
    pub privacy: crate::privacy::LocationPrivacy,
    /// The (lat, lon) of the order's pending stops when `recorded` is `Shown`
    /// and privacy is on; else empty.
    pub pending_stops: Vec<(f64, f64)>,
}

impl RecordedEta {
    /// An ETA that stored nothing, or one stored but not shown.
    pub(crate) fn unshown(recorded: EtaRecorded) -> RecordedEta {
        RecordedEta {
            recorded,
            privacy: crate::privacy::LocationPrivacy::default(),
            pending_stops: Vec::new(),
        }
    }
}

/// A tracker's memory of a truck as the store keeps it: saved by the node
/// that tracked the truck (every few minutes, at shutdown, and when its Kafka
/// partition moves to another node), read by whichever node tracks it next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerMemoryRecord {
    pub tenant_id: TenantId,
    pub vehicle_id: VehicleId,
    pub order_id: OrderId,
    /// The engine's serialized memory (opaque to the store).
    pub state: String,
    /// The device time of the newest fix the memory includes: a save never
    /// replaces a memory that goes further.
    pub applied_through: DateTime<Utc>,
    pub saved_at: DateTime<Utc>,
}

/// One node's request to hold trucks ([`crate::Store::hold_vehicles`]): the
/// hand-over marker that lets a truck's new owner wait until its old owner
/// has stored everything it did with the truck and let it go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// The node asking (its instance id: one per process).
    pub holder: String,
    pub vehicles: Vec<VehicleKey>,
    pub now: DateTime<Utc>,
    /// A holder last heard from ([`crate::Store::node_beat`]) before this is
    /// taken to be gone: its trucks are taken over.
    pub silent_before: DateTime<Utc>,
    /// Take every truck, whoever holds it (the asker waited long enough).
    pub force: bool,
}

/// What [`crate::Store::hold_vehicles`] made of one truck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VehicleHold {
    /// The asker's now: nobody held it, or the asker did already.
    Taken,
    /// The asker's now, taken from a holder that fell silent (or from any
    /// holder, when forced): the truck's last moments there may be unsaved.
    TakenOver { from: String },
    /// Another node holds it and was heard from lately: not taken.
    HeldBy { holder: String },
}

/// A message or engine event set aside because it could not be applied: an
/// oversized or undecodable position, a dead letter the dead-letter topic
/// refused, an event the store refused for good. Kept so an operator can see
/// (and replay) what the stream skipped; the payload is truncated so that one
/// huge message cannot make its own record huge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// The tenant, when it is known (an engine event's is not).
    pub tenant_id: Option<TenantId>,
    /// Where it came from: `topic/partition@offset`, `memory`, `http`, `engine`.
    pub origin: String,
    /// The Kafka coordinates, when it came from Kafka.
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// The size of the whole original message (the payload may be cut).
    pub size_bytes: u64,
    /// A stable machine-readable reason (`too_large`, `malformed`,
    /// `store_permanent`, …) and the human detail.
    pub reason: String,
    pub detail: String,
    /// The first bytes of the message (see `size_bytes` for the whole size).
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub received_at: DateTime<Utc>,
}

/// A dead letter as stored, with its row id (increasing in arrival order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub letter: NewDeadLetter,
}

/// RFC 3339 UTC with seconds, as the HTTP contract and the payloads say.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
