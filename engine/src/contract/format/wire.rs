//! Field types shared by the vendor decoders: timestamps that may be RFC 3339
//! text or epoch numbers, and ids that may be strings or numbers. Their visitors
//! never fail on a value of the right JSON kind; a bad timestamp is kept as an
//! error so it can be reported as `invalid_time` rather than `malformed`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::contract::validate::{RejectReason, Rejection};

/// A timestamp as sent: parsed when possible, else the text that failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireTime(pub(crate) Result<DateTime<Utc>, String>);

impl WireTime {
    /// The time, or an `invalid_time` rejection naming `field`.
    pub(crate) fn into_time(self, field: &str) -> Result<DateTime<Utc>, Rejection> {
        self.0.map_err(|text| {
            Rejection::new(
                RejectReason::InvalidTime,
                format!("{field} {text:?} is not an RFC 3339 time or epoch seconds"),
            )
        })
    }
}

/// Parses RFC 3339 (any offset), or a date-time without offset taken as UTC (some
/// vendor exports drop the `Z`).
pub(crate) fn parse_time_text(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// Epoch seconds, or milliseconds when the number is too large to be seconds
/// (1e11 s is the year 5138; 1e11 ms is 1973).
fn epoch_time(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value < 1e11 { value * 1000.0 } else { value };
    if ms > 1e15 {
        return None;
    }
    DateTime::from_timestamp_millis(ms.round() as i64)
}

impl<'de> Deserialize<'de> for WireTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireTime, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or epoch seconds")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireTime, E> {
                Ok(WireTime(parse_time_text(s).ok_or_else(|| truncate(s))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireTime, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireTime, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WireTime, E> {
                Ok(WireTime(epoch_time(v).ok_or_else(|| v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Keeps details short: a rejected field may be megabytes of garbage.
fn truncate(s: &str) -> String {
    if s.len() <= 64 {
        return s.to_owned();
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An id sent as a JSON string or number (Motive's ids are numbers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireId<'a>(pub(crate) Cow<'a, str>);

impl WireId<'_> {
    pub(crate) fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireId<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = WireId<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id (string or integer)")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<WireId<'a>, E> {
                Ok(WireId(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireId<'a>, E> {
                Ok(WireId(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<WireId<'a>, E> {
                Ok(WireId(Cow::Owned(s)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireId<'a>, E> {
                Ok(WireId(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireId<'a>, E> {
                Ok(WireId(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `{"id": …}`, the shape vendors use to reference a vehicle or device.
#[derive(Debug, Deserialize)]
pub(crate) struct IdRef<'a> {
    #[serde(borrow)]
    pub(crate) id: Option<WireId<'a>>,
}

pub(crate) const MPH_TO_MPS: f64 = 0.447_04;
pub(crate) const KPH_TO_MPS: f64 = 1.0 / 3.6;
pub(crate) const MILE_M: f64 = 1_609.344;
