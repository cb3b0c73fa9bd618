//! HTTP batches: the pure part of `POST /api/v1/positions`. The handler (in
//! `portal-api`) authenticates, calls [`decode_batch`] with the key's tenant,
//! maps a [`BatchError`] to its status (413 or 400), sorts the items with
//! [`receipts`], publishes the accepted positions to the bus and answers 202
//! with one [`ItemReport`] per item.
//!
//! The body is a JSON array of positions in one format (canonical by default).
//! Items are split without decoding them twice (`RawValue`), and the size limit is
//! enforced while splitting, so an oversized batch costs no validation work.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::format::{Format, decode};
use super::validate::{Envelope, Rejection, ValidationRules};
use crate::position::{Position, TenantId, VehicleKey};

/// What became of one item of a batch. Honest per item: a fix the vehicle
/// already has is a `duplicate`, one older than the vehicle's newest is `stale`
/// (neither is applied), a bad one is `rejected` with its reason and field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Accepted,
    Duplicate,
    Stale,
    Rejected,
}

/// One entry of the 202 response body: `{"index", "status", "reason", "field",
/// "detail"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemReport {
    pub index: usize,
    pub status: ItemStatus,
    /// The rejection's stable code (see [`RejectReason::as_str`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The canonical field at fault, where one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ItemReport {
    fn status(index: usize, status: ItemStatus, detail: Option<String>) -> ItemReport {
        ItemReport {
            index,
            status,
            reason: None,
            field: None,
            detail,
        }
    }

    fn rejected(index: usize, rejection: &Rejection) -> ItemReport {
        ItemReport {
            index,
            status: ItemStatus::Rejected,
            reason: Some(rejection.reason.as_str()),
            field: rejection
                .reason
                .field()
                .map(str::to_owned)
                .or_else(|| missing_field(&rejection.detail)),
            detail: Some(rejection.detail.clone()),
        }
    }
}

/// The field a malformed item lacks, from the decoder's "missing field `x`".
fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.split_once("missing field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

/// Sorts a decoded batch into receipts and the positions to apply. `newest`
/// tells the newest device time already recorded for a vehicle (of the batch's
/// tenant); against it and against the batch's own earlier items, a fix at the
/// same time is a duplicate and an older one is stale. The positions come back
/// in request order (the pipeline orders them by time per vehicle).
pub fn receipts(
    items: Vec<Result<Position, Rejection>>,
    newest: impl Fn(&VehicleKey) -> Option<DateTime<Utc>>,
) -> (Vec<ItemReport>, Vec<Position>) {
    let mut known: HashMap<VehicleKey, Option<DateTime<Utc>>> = HashMap::new();
    let mut taken: HashSet<(VehicleKey, DateTime<Utc>)> = HashSet::new();
    let mut reports = Vec::with_capacity(items.len());
    let mut accepted = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let position = match item {
            Ok(p) => p,
            Err(rejection) => {
                reports.push(ItemReport::rejected(index, &rejection));
                continue;
            }
        };
        let key = position.key();
        let last = *known.entry(key.clone()).or_insert_with(|| newest(&key));
        let report = if last == Some(position.time) || taken.contains(&(key.clone(), position.time))
        {
            ItemReport::status(
                index,
                ItemStatus::Duplicate,
                Some("the vehicle already has a fix at this time".into()),
            )
        } else if last.is_some_and(|t| position.time < t) {
            ItemReport::status(
                index,
                ItemStatus::Stale,
                Some("older than the vehicle's newest recorded fix".into()),
            )
        } else {
            taken.insert((key, position.time));
            accepted.push(position);
            ItemReport::status(index, ItemStatus::Accepted, None)
        };
        reports.push(report);
    }
    (reports, accepted)
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
    tenant: &TenantId,
    now: DateTime<Utc>,
    rules: &ValidationRules,
) -> Result<Vec<Result<Position, Rejection>>, BatchError> {
    let items = split(bytes, limit)?;
    let envelope = Envelope::bound(tenant);
    Ok(items
        .into_iter()
        .map(|raw| decode(format, raw.get().as_bytes(), envelope, now, rules))
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
