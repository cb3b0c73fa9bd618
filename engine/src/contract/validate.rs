//! Validation: the one place that decides whether a decoded fix is plausible enough
//! to enter the engine. Every vendor decoder produces a [`RawFix`] in canonical
//! units and hands it here, so the rules (and their reason codes) are the same for
//! Kafka, HTTP and the in-process bus.
//!
//! A rejected fix is not an error: it is a [`Rejection`] with a stable reason code
//! (used as the dead-letter header and in per-item HTTP results) and a detail that
//! names the offending value.

use crate::position::{Position, PositionSource, TenantId, VehicleId};
use std::borrow::Cow;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// Why a message was rejected. The codes (`as_str`) are a public interface: they
/// appear in the `reason` header of dead letters and in HTTP item results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not JSON, the wrong shape, a required field missing or of the wrong type.
    Malformed,
    /// The message is larger than the configured limit.
    TooLarge,
    /// A `format` header names no format this build knows.
    UnknownFormat,
    /// No tenant named by the message, its key or the source (an unbound topic).
    NoTenant,
    /// The message, its key and the source name different tenants.
    TenantMismatch,
    /// Empty, too long, containing `/` or control characters.
    InvalidTenantId,
    /// No vehicle id in the message nor in the Kafka key.
    MissingVehicleId,
    /// Empty, too long, or containing control characters.
    InvalidVehicleId,
    /// A timestamp that does not parse or is outside chrono's range.
    InvalidTime,
    /// NaN or infinite coordinates (or a unit conversion that overflowed).
    NonFinite,
    /// Latitude outside [-90, 90] or longitude outside [-180, 180].
    OutOfRange,
    /// (0, 0): the classic fix of a receiver without a lock.
    NullIsland,
    /// Device time further in the future than the allowed clock skew.
    FutureTime,
    /// Device time older than the maximum age.
    StaleTime,
    /// Negative speed, or faster than a truck can go.
    ImplausibleSpeed,
    /// Heading outside [0, 360].
    InvalidHeading,
    /// Negative or non-finite odometer.
    InvalidOdometer,
    /// Negative or non-finite accuracy.
    InvalidAccuracy,
    /// Farther from the vehicle's last good fix than a truck can drive in the
    /// time between them (decided per vehicle by the engine, not here).
    ImplausibleJump,
}

impl RejectReason {
    /// Every reason, in a fixed order (used to index counters).
    pub const ALL: [RejectReason; 19] = [
        RejectReason::Malformed,
        RejectReason::TooLarge,
        RejectReason::UnknownFormat,
        RejectReason::NoTenant,
        RejectReason::TenantMismatch,
        RejectReason::InvalidTenantId,
        RejectReason::MissingVehicleId,
        RejectReason::InvalidVehicleId,
        RejectReason::InvalidTime,
        RejectReason::NonFinite,
        RejectReason::OutOfRange,
        RejectReason::NullIsland,
        RejectReason::FutureTime,
        RejectReason::StaleTime,
        RejectReason::ImplausibleSpeed,
        RejectReason::InvalidHeading,
        RejectReason::InvalidOdometer,
        RejectReason::InvalidAccuracy,
        RejectReason::ImplausibleJump,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnknownFormat => "unknown_format",
            RejectReason::NoTenant => "no_tenant",
            RejectReason::TenantMismatch => "tenant_mismatch",
            RejectReason::InvalidTenantId => "invalid_tenant_id",
            RejectReason::MissingVehicleId => "missing_vehicle_id",
            RejectReason::InvalidVehicleId => "invalid_vehicle_id",
            RejectReason::InvalidTime => "invalid_time",
            RejectReason::NonFinite => "non_finite",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::NullIsland => "null_island",
            RejectReason::FutureTime => "future_time",
            RejectReason::StaleTime => "stale_time",
            RejectReason::ImplausibleSpeed => "implausible_speed",
            RejectReason::InvalidHeading => "invalid_heading",
            RejectReason::InvalidOdometer => "invalid_odometer",
            RejectReason::InvalidAccuracy => "invalid_accuracy",
            RejectReason::ImplausibleJump => "implausible_jump",
        }
    }

    /// The canonical field at fault, where one is (a malformed message's
    /// detail says where it broke instead).
    pub fn field(self) -> Option<&'static str> {
        match self {
            RejectReason::Malformed | RejectReason::TooLarge | RejectReason::UnknownFormat => None,
            RejectReason::NoTenant
            | RejectReason::TenantMismatch
            | RejectReason::InvalidTenantId => Some("tenant_id"),
            RejectReason::MissingVehicleId | RejectReason::InvalidVehicleId => Some("vehicle_id"),
            RejectReason::InvalidTime | RejectReason::FutureTime | RejectReason::StaleTime => {
                Some("time")
            }
            RejectReason::NonFinite
            | RejectReason::OutOfRange
            | RejectReason::NullIsland
            | RejectReason::ImplausibleJump => Some("lat"),
            RejectReason::ImplausibleSpeed => Some("speed_mps"),
            RejectReason::InvalidHeading => Some("heading_deg"),
            RejectReason::InvalidOdometer => Some("odometer_m"),
            RejectReason::InvalidAccuracy => Some("accuracy_m"),
        }
    }

    /// Position in [`RejectReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message that did not become a position: the reason code and a detail naming
/// the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// The plausibility rules. There is no `Default`: the binary builds it from its
/// settings, usually starting from [`ValidationRules::RECOMMENDED`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationRules {
    /// Device clocks drift and vendors batch; beyond this skew a time is wrong.
    pub max_future_s: i64,
    /// ELDs buffer through dead zones and upload late; older than this is stale.
    pub max_age_s: i64,
    /// Faster than this is a GPS glitch, not a truck.
    pub max_speed_mps: f64,
    /// Longest accepted vehicle id, bytes.
    pub max_vehicle_id_len: usize,
    /// Largest accepted message, bytes (one position is a few hundred bytes).
    pub max_message_bytes: usize,
}

impl ValidationRules {
    /// Five minutes of clock skew, a week of buffering, 200 km/h, 128-byte ids,
    /// 64 KiB messages.
    pub const RECOMMENDED: ValidationRules = ValidationRules {
        max_future_s: 300,
        max_age_s: 7 * 24 * 3600,
        max_speed_mps: 200.0 / 3.6,
        max_vehicle_id_len: 128,
        max_message_bytes: 64 * 1024,
    };

    /// Checks that the rules themselves make sense; names the bad setting.
    pub fn validate(&self) -> crate::error::Result<()> {
        let bad = |setting, reason: &str| {
            Err(crate::error::Error::InvalidConfig {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.max_future_s < 0 {
            return bad("max_future_s", "must not be negative");
        }
        if self.max_age_s <= 0 {
            return bad("max_age_s", "must be positive");
        }
        if !(self.max_speed_mps.is_finite() && self.max_speed_mps > 0.0) {
            return bad("max_speed_mps", "must be a positive number");
        }
        if self.max_vehicle_id_len == 0 {
            return bad("max_vehicle_id_len", "must be positive");
        }
        if self.max_message_bytes < 64 {
            return bad("max_message_bytes", "must be at least 64");
        }
        Ok(())
    }
}

/// A fix as a decoder read it, already in canonical units (UTC, degrees, m/s,
/// metres) but not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawFix {
    /// The tenant the message names (the canonical format's `tenant_id`).
    pub(crate) tenant_id: Option<String>,
    pub(crate) vehicle_id: Option<String>,
    pub(crate) time: DateTime<Utc>,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) speed_mps: Option<f64>,
    pub(crate) heading_deg: Option<f64>,
    pub(crate) odometer_m: Option<f64>,
    pub(crate) hos_drive_remaining_s: Option<u32>,
    pub(crate) accuracy_m: Option<f64>,
    /// The source the message declares (canonical JSON only); otherwise the
    /// format's own source is used.
    pub(crate) source: Option<PositionSource>,
}

/// What the transport says about a message besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The Kafka record key: `TENANT/VEHICLE`, or a bare vehicle id.
    pub key: Option<&'a str>,
    /// The tenant the source vouches for: the API key's over HTTP, the topic's
    /// binding (`?tenant=`) on Kafka. `None` on an unbound topic.
    pub tenant: Option<&'a TenantId>,
}

impl<'a> Envelope<'a> {
    /// A message from a source bound to `tenant` (an API key, a bound topic).
    pub fn bound(tenant: &'a TenantId) -> Envelope<'a> {
        Envelope {
            key: None,
            tenant: Some(tenant),
        }
    }

    /// The same envelope with a record key.
    pub fn with_key(self, key: Option<&'a str>) -> Envelope<'a> {
        Envelope { key, ..self }
    }

    /// The key's tenant and vehicle parts: `TENANT/VEHICLE` splits at the first
    /// `/` (tenant ids never hold one); a key without `/` is a vehicle id.
    fn key_parts(&self) -> (Option<&'a str>, Option<&'a str>) {
        match self.key {
            Some(key) => match key.split_once('/') {
                Some((tenant, vehicle)) => (Some(tenant), Some(vehicle)),
                None => (None, Some(key)),
            },
            None => (None, None),
        }
    }
}

/// Applies the rules to a decoded fix. The envelope's key names the vehicle when
/// the payload does not; the tenant comes from the payload, the key or the
/// source, which must agree; `source` is used unless the fix declares one.
pub(crate) fn validate(
    raw: RawFix,
    envelope: Envelope<'_>,
    source: PositionSource,
    now: DateTime<Utc>,
    rules: &ValidationRules,
) -> Result<Position, Rejection> {
    let (key_tenant, key_vehicle) = envelope.key_parts();
    let tenant_id = resolve_tenant(raw.tenant_id, key_tenant, envelope.tenant, rules)?;
    let vehicle_id = match raw.vehicle_id.or_else(|| key_vehicle.map(str::to_owned)) {
        Some(id) => check_vehicle_id(id, rules)?,
        None => {
            return Err(Rejection::new(
                RejectReason::MissingVehicleId,
                "no vehicle id in the message or its key",
            ));
        }
    };
    let (lat, lon) = (raw.lat, raw.lon);
    if !lat.is_finite() || !lon.is_finite() {
        return Err(Rejection::new(
            RejectReason::NonFinite,
            format!("lat {lat}, lon {lon}"),
        ));
    }
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Rejection::new(
            RejectReason::OutOfRange,
            format!("lat {lat}, lon {lon} outside [-90, 90] × [-180, 180]"),
        ));
    }
    // A receiver without a fix reports exactly (0, 0); allow for float formatting.
    if lat.abs() < 1e-5 && lon.abs() < 1e-5 {
        return Err(Rejection::new(
            RejectReason::NullIsland,
            format!("lat {lat}, lon {lon}"),
        ));
    }
    let ahead = raw.time - now;
    if ahead > TimeDelta::seconds(rules.max_future_s) {
        return Err(Rejection::new(
            RejectReason::FutureTime,
            format!(
                "time {} is {} s ahead of now",
                raw.time.to_rfc3339(),
                ahead.num_seconds()
            ),
        ));
    }
    let age = now - raw.time;
    if age > TimeDelta::seconds(rules.max_age_s) {
        return Err(Rejection::new(
            RejectReason::StaleTime,
            format!(
                "time {} is {} s old (limit {} s)",
                raw.time.to_rfc3339(),
                age.num_seconds(),
                rules.max_age_s
            ),
        ));
    }
    if let Some(speed) = raw.speed_mps
        && !(speed.is_finite() && (0.0..=rules.max_speed_mps).contains(&speed))
    {
        return Err(Rejection::new(
            RejectReason::ImplausibleSpeed,
            format!("speed {speed} m/s outside [0, {:.1}]", rules.max_speed_mps),
        ));
    }
    let heading_deg = match raw.heading_deg {
        Some(h) if h.is_finite() && (0.0..=360.0).contains(&h) => {
            Some(if h == 360.0 { 0.0 } else { h })
        }
        Some(h) => {
            return Err(Rejection::new(
                RejectReason::InvalidHeading,
                format!("heading {h} outside [0, 360]"),
            ));
        }
        None => None,
    };
    if let Some(odo) = raw.odometer_m
        && !(odo.is_finite() && odo >= 0.0)
    {
        return Err(Rejection::new(
            RejectReason::InvalidOdometer,
            format!("odometer {odo} m"),
        ));
    }
    if let Some(acc) = raw.accuracy_m
        && !(acc.is_finite() && acc >= 0.0)
    {
        return Err(Rejection::new(
            RejectReason::InvalidAccuracy,
            format!("accuracy {acc} m"),
        ));
    }
    Ok(Position {
        tenant_id,
        vehicle_id,
        // Milliseconds, as the store and the matcher keep them: a fix sent
        // again with its nanoseconds is then the same fix (a duplicate).
        time: whole_millis(raw.time),
        lat,
        lon,
        speed_mps: raw.speed_mps,
        heading_deg,
        odometer_m: raw.odometer_m,
        hos_drive_remaining_s: raw.hos_drive_remaining_s,
        accuracy_m: raw.accuracy_m,
        source: raw.source.unwrap_or(source),
    })
}

/// `time` cut to the millisecond. Most device times already are: they pass
/// untouched (chrono's general rounding is a measurable share of a decode).
fn whole_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    let below_ms = time.timestamp_subsec_nanos() % 1_000_000;
    if below_ms == 0 {
        time
    } else {
        time - TimeDelta::nanoseconds(i64::from(below_ms))
    }
}

/// The one tenant a message speaks for. A bound source's tenant wins only when
/// nothing else names another: a message naming a different tenant than its
/// credential or topic is refused, never re-labelled. The detail names the
/// message's claim, never the bound tenant (it may not be the sender's to know).
fn resolve_tenant(
    payload: Option<String>,
    key: Option<&str>,
    bound: Option<&TenantId>,
    rules: &ValidationRules,
) -> Result<TenantId, Rejection> {
    let claimed: Option<Cow<'_, str>> = match (payload, key) {
        (Some(p), Some(k)) if p != k => {
            return Err(Rejection::new(
                RejectReason::TenantMismatch,
                format!("the message names tenant {p:?} and its key {k:?}"),
            ));
        }
        (Some(p), _) => Some(Cow::Owned(p)),
        (None, Some(k)) => Some(Cow::Borrowed(k)),
        (None, None) => None,
    };
    match (claimed, bound) {
        (Some(claim), Some(bound)) if claim != bound.as_str() => Err(Rejection::new(
            RejectReason::TenantMismatch,
            format!("the message names tenant {claim:?}, not the tenant its source is bound to"),
        )),
        (_, Some(bound)) => Ok(bound.clone()),
        (Some(claim), None) => check_tenant_id(claim, rules),
        (None, None) => Err(Rejection::new(
            RejectReason::NoTenant,
            "no tenant: the message names none (`tenant_id` or a `TENANT/VEHICLE` key) \
             and the topic is not bound to one",
        )),
    }
}

fn check_tenant_id(id: Cow<'_, str>, rules: &ValidationRules) -> Result<TenantId, Rejection> {
    let bad = |why: String| Err(Rejection::new(RejectReason::InvalidTenantId, why));
    if id.is_empty() {
        return bad("empty tenant id".into());
    }
    if id.len() > rules.max_vehicle_id_len {
        return bad(format!(
            "tenant id of {} bytes (limit {})",
            id.len(),
            rules.max_vehicle_id_len
        ));
    }
    // Bytes first: tenant ids are ASCII in practice, and this runs per message.
    let ascii_bad = |b: &u8| *b <= b' ' || *b == b'/' || *b == 0x7f;
    if id.as_bytes().iter().any(ascii_bad)
        || (!id.is_ascii() && id.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        return bad(format!(
            "tenant id {:?} contains `/`, blanks or control characters",
            id.chars().take(64).collect::<String>()
        ));
    }
    Ok(TenantId(id.into_owned()))
}

fn check_vehicle_id(id: String, rules: &ValidationRules) -> Result<VehicleId, Rejection> {
    let trimmed = id.trim();
    if trimmed.is_empty() {
        return Err(Rejection::new(
            RejectReason::InvalidVehicleId,
            "empty vehicle id",
        ));
    }
    if trimmed.len() > rules.max_vehicle_id_len {
        return Err(Rejection::new(
            RejectReason::InvalidVehicleId,
            format!(
                "vehicle id of {} bytes (limit {})",
                trimmed.len(),
                rules.max_vehicle_id_len
            ),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Rejection::new(
            RejectReason::InvalidVehicleId,
            format!("vehicle id {trimmed:?} contains control characters"),
        ));
    }
    // Ids are compared as text everywhere; surrounding blanks would make two ids
    // of one truck.
    if trimmed.len() == id.len() {
        Ok(VehicleId(id))
    } else {
        Ok(VehicleId(trimmed.to_owned()))
    }
}
