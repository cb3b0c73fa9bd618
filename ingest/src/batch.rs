//! HTTP batches: the pure part of `POST /api/v1/positions`. The handler (in
//! `portal-api`) authenticates, calls [`decode_batch`], maps a [`BatchError`] to
//! its status (413 or 400), publishes the accepted positions to the bus and
//! answers 202 with one [`ItemReport`] per item.
//!
//! The body is a JSON array of positions in one format (canonical by default).
//! Items are split without decoding them twice (`RawValue`), and the size limit is
//! enforced while splitting, so an oversized batch costs no validation work.

use std::fmt;

use chrono::{DateTime, Utc};
use engine::Position;
use serde::Serialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::format::{Format, decode};
use crate::validate::{Rejection, ValidationRules};

/// The outcome of one item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    Accepted(Position),
    Rejected(Rejection),
}

impl ItemResult {
    /// The per-item report for the HTTP response, `index` being the item's place
    /// in the request.
    pub fn report(&self, index: usize) -> ItemReport {
        match self {
            ItemResult::Accepted(_) => ItemReport {
                index,
                status: ItemStatus::Accepted,
                reason: None,
                detail: None,
            },
            ItemResult::Rejected(r) => ItemReport {
                index,
                status: ItemStatus::Rejected,
                reason: Some(r.reason.as_str()),
                detail: Some(r.detail.clone()),
            },
        }
    }
}

/// Whether an item was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Accepted,
    Rejected,
}

/// One entry of the 202 response body: `{"index", "status", "reason", "detail"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemReport {
    pub index: usize,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a whole batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// More items than allowed: HTTP 413.
    #[error("batch has more than {limit} positions")]
    TooLarge { limit: usize },
    /// Not a JSON array: HTTP 400.
    #[error("body is not a JSON array of positions: {0}")]
    Malformed(String),
}

impl BatchError {
    /// The HTTP status code for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            BatchError::TooLarge { .. } => 413,
            BatchError::Malformed(_) => 400,
        }
    }

    /// The stable error code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::TooLarge { .. } => "batch_too_large",
            BatchError::Malformed(_) => "malformed_batch",
        }
    }
}

/// Decodes and validates a batch: one result per item, in request order. Fails
/// as a whole only when the body is not an array or has more than `limit` items.
pub fn decode_batch(
    format: Format,
    bytes: &[u8],
    limit: usize,
    now: DateTime<Utc>,
    rules: &ValidationRules,
) -> Result<Vec<ItemResult>, BatchError> {
    let items = split(bytes, limit)?;
    Ok(items
        .into_iter()
        .map(
            |raw| match decode(format, raw.get().as_bytes(), None, now, rules) {
                Ok(p) => ItemResult::Accepted(p),
                Err(r) => ItemResult::Rejected(r),
            },
        )
        .collect())
}

/// Splits a JSON array into its raw items, stopping at the first item past
/// `limit`.
fn split(bytes: &[u8], limit: usize) -> Result<Vec<&RawValue>, BatchError> {
    let mut over = false;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Items {
        limit,
        over: &mut over,
    };
    let items = match seed.deserialize(&mut de) {
        Ok(items) => items,
        Err(_) if over => return Err(BatchError::TooLarge { limit }),
        Err(err) => return Err(BatchError::Malformed(err.to_string())),
    };
    de.end()
        .map_err(|err| BatchError::Malformed(err.to_string()))?;
    Ok(items)
}

struct Items<'o> {
    limit: usize,
    over: &'o mut bool,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<&'de RawValue>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit));
        while let Some(item) = seq.next_element::<&RawValue>()? {
            if items.len() == self.limit {
                *self.over = true;
                return Err(serde::de::Error::custom("batch too large"));
            }
            items.push(item);
        }
        Ok(items)
    }
}
