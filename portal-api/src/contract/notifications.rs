//! The bodies of the notification and proof-of-delivery routes. A rule body
//! is read as [`NewNotificationRuleBody`] first (types, unknown fields), then
//! `notify::validate_rule` applies the rules of e-mail notifications (known
//! events, addresses, template placeholders).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/notification-rules`: e-mail `recipients` (`"customer"`)
/// and/or `addresses` when `event` happens to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotificationRuleBody {
    /// A milestone: `dispatched`, `picked_up`, `delivered`, …
    #[schema(value_type = TriggerEventName)]
    pub event: String,
    /// `email` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `["customer"]`: the order's customer e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// Further e-mail addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "super::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub template: Option<TemplateBody>,
    /// Only for `eta_changed`, which this server does not emit yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_change_min: Option<u32>,
}

/// The events an e-mail rule can name (the document's names for
/// `notify::TriggerEvent`; a test holds them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerEventName {
    Created,
    Dispatched,
    AtPickup,
    PickedUp,
    OutForDelivery,
    AtDelivery,
    Delivered,
    Exception,
}

/// A rule's own e-mail text, with `{{placeholders}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    #[schema(min_length = 1)]
    pub subject: String,
    #[schema(min_length = 1)]
    pub body: String,
}

/// `POST /api/v1/orders/{id}/pod`: a multipart form with one `file` part
/// (a photo or a PDF).
#[derive(Debug, ToSchema)]
pub struct PodUpload {
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::TriggerEvent;

    #[test]
    fn the_documented_events_are_the_trigger_events() {
        for name in [
            TriggerEventName::Created,
            TriggerEventName::Dispatched,
            TriggerEventName::AtPickup,
            TriggerEventName::PickedUp,
            TriggerEventName::OutForDelivery,
            TriggerEventName::AtDelivery,
            TriggerEventName::Delivered,
            TriggerEventName::Exception,
        ] {
            let text = serde_json::to_value(name).expect("a name");
            let text = text.as_str().expect("text");
            assert!(TriggerEvent::parse(text).is_some(), "{text}");
        }
    }
}
