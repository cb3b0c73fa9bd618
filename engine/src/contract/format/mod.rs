//! Wire formats: the canonical JSON position (DESIGN.md) and the shapes ELD vendors
//! actually send (Samsara, Motive, Geotab). Each decoder is pure and synchronous:
//! bytes in, a [`RawFix`] in canonical units out, then the shared validation. None
//! of them can panic on any input (property-tested in `tests`).
//!
//! One message carries one position. The format of a message is chosen by its
//! `format` header when present, otherwise by the topic's configured format.

mod canonical;
mod encode;
mod geotab;
mod motive;
mod samsara;
mod wire;

use crate::position::{Position, PositionSource};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::validate::{
    Envelope, RawFix, RejectReason, Rejection, ValidationRules, validate,
};

pub use canonical::encode_canonical;
pub use encode::encode;

/// The name of the Kafka header that selects a message's format.
pub const FORMAT_HEADER: &str = "format";

/// A wire format of positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"vehicle_id", "time", "lat", "lon", "speed_mps", "heading_deg", …}`.
    Canonical,
    /// Samsara vehicle GPS stats: `{"id", "gps": {"time", "latitude", "longitude",
    /// "headingDegrees", "speedMilesPerHour"}}` or the bare `gps` object.
    Samsara,
    /// Motive vehicle locations: `{"vehicle_id", "located_at", "lat", "lon",
    /// "bearing", "speed" (mph), "odometer" (mi)}`, bare or wrapped.
    Motive,
    /// Geotab `LogRecord`: `{"dateTime", "latitude", "longitude", "speed" (km/h),
    /// "device": {"id"}}`.
    Geotab,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Canonical,
        Format::Samsara,
        Format::Motive,
        Format::Geotab,
    ];

    /// The name used in headers, flags and topic settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Canonical => "canonical",
            Format::Samsara => "samsara",
            Format::Motive => "motive",
            Format::Geotab => "geotab",
        }
    }

    /// Parses a name (case-insensitive); `None` for an unknown one.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The source recorded on positions decoded from this format.
    pub fn source(self) -> PositionSource {
        match self {
            Format::Canonical => PositionSource::Canonical,
            Format::Samsara => PositionSource::Samsara,
            Format::Motive => PositionSource::Motive,
            Format::Geotab => PositionSource::Geotab,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::parse(s).ok_or_else(|| {
            format!("unknown format `{s}` (expected canonical, samsara, motive or geotab)")
        })
    }
}

/// Decodes and validates one message: the one decoder of every path (Kafka, HTTP,
/// the in-process bus, the simulator, replays). The envelope carries the record
/// key (`TENANT/VEHICLE` or a vehicle id, used where the payload names neither)
/// and the tenant the source is bound to; `now` is the reference for the age and
/// clock-skew checks.
pub fn decode(
    format: Format,
    bytes: &[u8],
    envelope: Envelope<'_>,
    now: DateTime<Utc>,
    rules: &ValidationRules,
) -> Result<Position, Rejection> {
    let raw = decode_raw(format, bytes, rules)?;
    validate(raw, envelope, format.source(), now, rules)
}

/// Decodes without validating (for benches and the HTTP batch splitter).
pub(crate) fn decode_raw(
    format: Format,
    bytes: &[u8],
    rules: &ValidationRules,
) -> Result<RawFix, Rejection> {
    if bytes.len() > rules.max_message_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "message of {} bytes (limit {})",
                bytes.len(),
                rules.max_message_bytes
            ),
        ));
    }
    match format {
        Format::Canonical => canonical::decode(bytes),
        Format::Samsara => samsara::decode(bytes),
        Format::Motive => motive::decode(bytes),
        Format::Geotab => geotab::decode(bytes),
    }
}

/// The format a message asks for in its header, falling back to the topic's.
/// An unknown header value is a rejection, not a silent fallback: guessing would
/// turn a vendor's misconfiguration into wrong positions.
pub fn resolve_format(header: Option<&[u8]>, topic_default: Format) -> Result<Format, Rejection> {
    match header {
        None => Ok(topic_default),
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(Format::parse)
            .ok_or_else(|| {
                Rejection::new(
                    RejectReason::UnknownFormat,
                    format!(
                        "format header {:?} is not one of canonical, samsara, motive, geotab",
                        String::from_utf8_lossy(value)
                    ),
                )
            }),
    }
}

/// Turns a serde error into a `malformed` rejection that says where it failed.
fn malformed(err: serde_json::Error) -> Rejection {
    Rejection::new(RejectReason::Malformed, err.to_string())
}
