//! The typed HTTP contract: every JSON request body the API takes is a Rust
//! struct here (serde for the wire, utoipa's `ToSchema` for the OpenAPI
//! document), so the server, the document served at `/api/openapi.json` and
//! the typed client ([`crate::client`]) share one definition and cannot drift.
//!
//! A body is read in two steps, as ripgrep reads its flags: serde turns the
//! JSON into the type ([`from_json`]; a wrong type, a missing or an unknown
//! field is a 400 naming its path, `stops[1].window.to`, found by
//! `serde_path_to_error`), then the type's `check` turns it into the model's
//! value with the domain rules (lengths, ranges, windows in a drivable order),
//! again naming the field. Nothing here does I/O; the map check lives in
//! `api/map_check.rs`.
//!
//! How to add a route with a JSON body: put its body type here (derive
//! `Deserialize`, `Serialize`, `ToSchema`; `deny_unknown_fields`), give the
//! handler a `#[utoipa::path(...)]` naming that type as `request_body` and its
//! responses, and register the handler in `api::router` with
//! `routes!(handler)`. The route and its documentation are then one entry.

mod answers;
mod branding;
#[cfg(test)]
mod fuzz;
mod keys;
mod notifications;
mod orders;
mod positions;
mod views;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::AppError;

pub use answers::{
    ApiKeyListView, ApiKeyView, AttemptView, DeliveryListView, DeliveryView, EtaHistoryPointView,
    ExternalEtaRecorded, FeatureCollectionType, FeatureType, HealthView, LineStringGeometry,
    LineStringType, NewApiKeyView, NodePartitionView, NodePeerView, NodeView, NotReadyView,
    NotificationListView, NotificationPreviewView, NotificationRuleListView, NotificationRuleView,
    NotificationView, OpenApiDocumentView, PodFileView, PositionResultView, PositionStatusName,
    PositionsBadRequest, PositionsReceipt, PositionsRefused, ProgressView, PublicOrderView,
    PublicPodView, PublicPrivacyView, ReadyView, RoadFeature, RoadProperties, RoadsView,
    VehicleView, WebhookListView, WebhookSecretView, WebhookView,
};
pub use branding::{BrandingBody, BrandingView, LogoView, PrivacyBody};
pub use keys::{NewApiKeyBody, ScopeName};
pub use notifications::{NewNotificationRuleBody, PodUpload, TemplateBody, TriggerEventName};
pub use orders::{
    CustomerBody, EtaReasonName, ExternalEtaBody, GeofenceBody, NewOrderBody, OrderPatchBody,
    SourceName, StatusName, StatusUpdateBody, StopBody, StopKindName, VisibilityName, WindowBody,
};
pub use positions::PositionBody;
pub use views::{
    EtaView, EventView, FeedView, LateRiskView, OrderListView, OrderStatusName, OrderView,
    PositionFormatName, StopView, WindowView,
};

/// Every 4xx and 5xx answer: a stable machine-readable code and a message for
/// people that names the bad field first (`` `stops[1].lat`: … ``).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// e.g. `invalid_field`, `not_found`, `unauthorized`, `rate_limited`.
    pub code: String,
    pub message: String,
}

/// Reads a JSON value as `T`; a failure is a 400 `invalid_field` naming the
/// path of the bad value (`stops[1].window.to`), or `body` for the whole.
pub(crate) fn from_json<T: DeserializeOwned>(body: &Value) -> Result<T, AppError> {
    if !body.is_object() {
        return Err(AppError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(body).map_err(|err| {
        let path = err.path().to_string();
        let (field, message) = explain(&path, &err.into_inner().to_string());
        AppError::invalid(field, message)
    })
}

/// The field and message of a serde error at `path` (`.` is the root): a
/// missing or unknown field is named itself rather than its parent.
fn explain(path: &str, message: &str) -> (String, String) {
    let base = if path == "." { "" } else { path };
    let join = |key: &str| {
        if base.is_empty() || base == key || base.ends_with(&format!(".{key}")) {
            if base.is_empty() {
                key.to_owned()
            } else {
                base.to_owned()
            }
        } else {
            format!("{base}.{key}")
        }
    };
    let quoted = |rest: &str| rest.split('`').next().unwrap_or("").to_owned();
    if let Some(rest) = message.strip_prefix("missing field `") {
        return (join(&quoted(rest)), "is required".to_owned());
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = quoted(rest);
        let expected = rest
            .split_once(", ")
            .map(|(_, e)| e.replace('`', ""))
            .unwrap_or_else(|| "no other fields".to_owned());
        return (join(&key), format!("unknown field; {expected}"));
    }
    let field = if base.is_empty() { "body" } else { base };
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let value = quoted(rest);
        let expected = rest
            .split_once(", ")
            .map(|(_, e)| e.replace('`', ""))
            .unwrap_or_default();
        return (field.to_owned(), format!("`{value}`: {expected}"));
    }
    (field.to_owned(), message.to_owned())
}

/// serde reads a struct from a JSON array too (`["Acme"]` as a customer);
/// the contract's objects are objects only. Fields of struct type use these
/// through `deserialize_with`; the path of an error inside stays whole,
/// because the map being read is serde_path_to_error's own.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        de.deserialize_map(Only(std::marker::PhantomData)).map(Obj)
    }
}

/// A field that must be a JSON object.
pub(crate) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<T, D::Error> {
    Obj::deserialize(de).map(|o| o.0)
}

/// An optional field that must be a JSON object when present (`null` is absent).
pub(crate) fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Option<T>, D::Error> {
    Option::<Obj<T>>::deserialize(de).map(|o| o.map(|o| o.0))
}

/// An array of JSON objects.
pub(crate) fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<Obj<T>>::deserialize(de).map(|v| v.into_iter().map(|o| o.0).collect())
}

/// An optional array of JSON objects.
pub(crate) fn optional_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Option::<Vec<Obj<T>>>::deserialize(de).map(|v| v.map(|v| v.into_iter().map(|o| o.0).collect()))
}

/// Checks `text`'s length as sent (as the document's `maxLength` counts it),
/// trims it and checks its characters (newlines are allowed; other control
/// characters are not).
pub(crate) fn clean_text(text: &str, field: &str, max_chars: usize) -> Result<String, AppError> {
    if text.chars().count() > max_chars {
        return Err(AppError::invalid(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    let text = text.trim();
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::invalid(field, "contains control characters"));
    }
    Ok(text.to_owned())
}

/// [`clean_text`] that must not come out empty.
pub(crate) fn required_text(text: &str, field: &str, max_chars: usize) -> Result<String, AppError> {
    let text = clean_text(text, field, max_chars)?;
    if text.is_empty() {
        return Err(AppError::invalid(field, "must not be empty"));
    }
    Ok(text)
}

/// [`clean_text`] of an optional field; empty is absent.
pub(crate) fn optional_text(
    text: Option<&str>,
    field: &str,
    max_chars: usize,
) -> Result<Option<String>, AppError> {
    Ok(text
        .map(|t| clean_text(t, field, max_chars))
        .transpose()?
        .filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let err = from_json::<NewOrderBody>(&json!({"customer": {"name": "x"}, "stops": []}))
            .expect_err("no reference");
        assert_eq!(err.message, "`reference`: is required");
    }

    #[test]
    fn a_wrong_type_deep_inside_names_its_path() {
        let body = json!({"reference": "R", "customer": {"name": "x"}, "stops": [
            {"kind": "pickup", "name": "A", "lat": 1.0, "lon": 1.0},
            {"kind": "delivery", "name": "B", "lat": 1.0, "lon": 1.0, "window": {"from": "2025-11-25T13:00:00Z", "to": 5}}
        ]});
        let err = from_json::<NewOrderBody>(&body).expect_err("bad window");
        assert!(
            err.message.starts_with("`stops[1].window.to`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_unknown_field_is_named_and_refused() {
        let body = json!({"reference": "R", "customer": {"name": "x", "phone": "1"}, "stops": []});
        let err = from_json::<NewOrderBody>(&body).expect_err("unknown field");
        assert!(
            err.message.starts_with("`customer.phone`: unknown field"),
            "{}",
            err.message
        );
    }
}
