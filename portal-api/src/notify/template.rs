//! E-mail templates: `{{name}}` placeholders in a subject and a plain-text
//! body, rendered into a subject, a plain-text part and an HTML part.
//!
//! The syntax is deliberately tiny: `{{ name }}` (spaces optional) with a name
//! from [`PLACEHOLDERS`]; anything else is text. A rule naming an unknown
//! placeholder is refused when it is created ([`unknown_placeholders`]), so a
//! typo never reaches a customer. A known placeholder with no value for this
//! order (no ETA yet) renders as "not available". The HTML part is the
//! rendered text HTML-escaped as a whole (values included), paragraphs on
//! blank lines, with the tracking and unsubscribe URLs made links; nothing a
//! tenant or an order holds can become markup. Times are shown in the stop's
//! own time zone (the recipient's is not known; the stop is where they are).
//! The tenant's brand frames the message (`super::brand`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use engine::StopKind;

use super::brand::EmailBrand;
use super::{Template, TriggerEvent};
use crate::model::{Order, Stop, Window};
use crate::page::html::esc;

/// Every placeholder a template may use.
pub(crate) const PLACEHOLDERS: &[&str] = &[
    "reference",
    "status",
    "event",
    "customer_name",
    "tracking_url",
    "eta",
    "eta_window",
    "next_stop",
    "pickup",
    "pickup_window",
    "delivery",
    "delivery_window",
    "stops",
    "tenant_name",
    "contact",
];

/// What "no value" renders as.
const NOT_AVAILABLE: &str = "not available";

/// The values of one message's placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageContext {
    values: Vec<(&'static str, Option<String>)>,
    pub(crate) tracking_url: Option<String>,
    pub(crate) unsubscribe_url: Option<String>,
    /// The tenant's brand around the message (name only until
    /// [`MessageContext::with_brand`]).
    pub(crate) brand: EmailBrand,
}

impl MessageContext {
    /// The context of `order` at `event`, for a tenant called `tenant_name`
    /// reachable at `contact`.
    pub(crate) fn new(
        order: &Order,
        event: TriggerEvent,
        tenant_name: &str,
        contact: &str,
        tracking_url: Option<String>,
        unsubscribe_url: Option<String>,
    ) -> MessageContext {
        let first = |kind: StopKind| order.stops.iter().find(|s| s.kind == kind);
        let last = |kind: StopKind| order.stops.iter().rev().find(|s| s.kind == kind);
        let pickup = first(StopKind::Pickup);
        let delivery = last(StopKind::Delivery);
        let next = order.next_stop();
        let eta = next.and_then(|s| s.eta.as_ref().map(|e| (s, e)));
        let stops = order
            .stops
            .iter()
            .map(|s| {
                let window = s
                    .window
                    .map(|w| format!(", {}", window_text(w, s.time_zone)))
                    .unwrap_or_default();
                let state = if s.departed_at.is_some() {
                    " (done)"
                } else if s.arrived_at.is_some() {
                    " (arrived)"
                } else {
                    ""
                };
                format!(
                    "- {} {}: {}{window}{state}",
                    kind_label(s.kind),
                    s.index + 1,
                    place(s)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let values = vec![
            ("reference", Some(order.reference.clone())),
            (
                "status",
                Some(status_label(order.status.as_str()).to_owned()),
            ),
            ("event", Some(status_label(event.as_str()).to_owned())),
            ("customer_name", Some(order.customer.name.clone())),
            ("tracking_url", tracking_url.clone()),
            ("eta", eta.map(|(s, e)| time_text(e.eta, s.time_zone))),
            (
                "eta_window",
                eta.map(|(s, e)| {
                    window_text(
                        Window {
                            from: e.p10,
                            to: e.p90,
                        },
                        s.time_zone,
                    )
                }),
            ),
            ("next_stop", next.map(place)),
            ("pickup", pickup.map(place)),
            (
                "pickup_window",
                pickup.and_then(|s| s.window.map(|w| window_text(w, s.time_zone))),
            ),
            ("delivery", delivery.map(place)),
            (
                "delivery_window",
                delivery.and_then(|s| s.window.map(|w| window_text(w, s.time_zone))),
            ),
            ("stops", Some(stops).filter(|s| !s.is_empty())),
            ("tenant_name", Some(tenant_name.to_owned())),
            (
                "contact",
                Some(contact.to_owned()).filter(|c| !c.is_empty()),
            ),
        ];
        MessageContext {
            values,
            tracking_url,
            unsubscribe_url,
            brand: EmailBrand {
                name: tenant_name.to_owned(),
                ..EmailBrand::default()
            },
        }
    }

    /// This context with the tenant's brand (colour, logo, support contact).
    pub(crate) fn with_brand(self, brand: EmailBrand) -> MessageContext {
        MessageContext { brand, ..self }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(NOT_AVAILABLE))
    }
}

fn kind_label(kind: StopKind) -> &'static str {
    match kind {
        StopKind::Pickup => "Pickup",
        StopKind::Delivery => "Delivery",
    }
}

fn place(stop: &Stop) -> String {
    if stop.address.is_empty() {
        stop.name.clone()
    } else {
        format!("{}, {}", stop.name, stop.address)
    }
}

fn status_label(status: &str) -> &str {
    match status {
        "created" => "booked",
        "dispatched" => "dispatched",
        "at_pickup" => "at pickup",
        "picked_up" => "picked up, in transit",
        "out_for_delivery" => "out for delivery",
        "at_delivery" => "at delivery",
        "delivered" => "delivered",
        "exception" => "exception",
        "cancelled" => "cancelled",
        "late_risk" => "at risk of arriving late",
        "late_risk_cleared" => "back on schedule",
        "eta_changed" => "new arrival time",
        other => other,
    }
}

/// `Tue 25 Nov 2025, 09:05 EST`, in `tz`.
fn time_text(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// `Tue 25 Nov 2025, 08:00–10:00 EST` (the date repeated when it changes).
fn window_text(window: Window, tz: Tz) -> String {
    let from = window.from.with_timezone(&tz);
    let to = window.to.with_timezone(&tz);
    if from.date_naive() == to.date_naive() {
        format!(
            "{}–{}",
            from.format("%a %-d %b %Y, %H:%M"),
            to.format("%H:%M %Z")
        )
    } else {
        format!(
            "{} – {}",
            time_text(window.from, tz),
            time_text(window.to, tz)
        )
    }
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a template into text and `{{name}}` placeholders. An unclosed `{{`
/// and a `{{…}}` that is not a name are text.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let name = after[..close].trim();
        let is_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
        if is_name {
            out.push(Piece::Text(&rest[..open]));
            out.push(Piece::Placeholder(name));
            rest = &after[close + 2..];
        } else {
            out.push(Piece::Text(&rest[..open + 2]));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// The placeholders of `template` that do not exist, in order of appearance.
pub(crate) fn unknown_placeholders(template: &str) -> Vec<String> {
    pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(name) if !PLACEHOLDERS.contains(&name) => Some(name.to_owned()),
            _ => None,
        })
        .collect()
}

fn fill(template: &str, ctx: &MessageContext) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces(template) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => match ctx.value(name) {
                Some(value) => out.push_str(value),
                // Refused at rule creation; a stored one renders as written.
                None => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            },
        }
    }
    out
}

/// The default wording of each event.
pub(crate) fn default_template(event: TriggerEvent) -> Template {
    let (subject, line) = match event {
        TriggerEvent::Created => (
            "Shipment {{reference}} is booked",
            "Your shipment {{reference}} is booked. You can follow it live from dispatch to delivery.",
        ),
        TriggerEvent::Dispatched => (
            "Shipment {{reference}} is dispatched",
            "Your shipment {{reference}} is dispatched: a truck is on its way to pick it up.",
        ),
        TriggerEvent::AtPickup => (
            "Shipment {{reference}}: the truck is at pickup",
            "The truck for your shipment {{reference}} has arrived at pickup ({{pickup}}).",
        ),
        TriggerEvent::PickedUp => (
            "Shipment {{reference}} is picked up",
            "Your shipment {{reference}} is picked up and in transit.",
        ),
        TriggerEvent::OutForDelivery => (
            "Shipment {{reference}} is out for delivery",
            "Your shipment {{reference}} is out for delivery.",
        ),
        TriggerEvent::AtDelivery => (
            "Shipment {{reference}}: the truck has arrived",
            "The truck with your shipment {{reference}} has arrived at {{delivery}}.",
        ),
        TriggerEvent::Delivered => (
            "Shipment {{reference}} is delivered",
            "Your shipment {{reference}} is delivered.",
        ),
        TriggerEvent::Exception => (
            "Update on shipment {{reference}}",
            "There is an update on your shipment {{reference}} that may affect its timing. We are on it.",
        ),
        TriggerEvent::LateRisk => (
            "Shipment {{reference}} may arrive late",
            "Your shipment {{reference}} may arrive after its appointment window. We are watching it closely.",
        ),
        TriggerEvent::LateRiskCleared => (
            "Shipment {{reference}} is back on schedule",
            "Your shipment {{reference}} is expected within its appointment window again.",
        ),
        TriggerEvent::EtaChanged => (
            "New arrival time for shipment {{reference}}",
            "The estimated arrival of your shipment {{reference}} has changed.",
        ),
        // Webhooks only (rules refuse it); a wording for completeness.
        TriggerEvent::Position => (
            "Shipment {{reference}}: where the truck is",
            "The truck with your shipment {{reference}} is on its way.",
        ),
    };
    let body = format!(
        "Hello {{{{customer_name}}}},\n\n{line}\n\n\
         Status: {{{{status}}}}\n\
         Next stop: {{{{next_stop}}}}\n\
         Estimated arrival: {{{{eta}}}} (window {{{{eta_window}}}})\n\n\
         Stops:\n{{{{stops}}}}\n\n\
         Track it live: {{{{tracking_url}}}}\n\n\
         {{{{tenant_name}}}}\nQuestions? {{{{contact}}}}"
    );
    Template {
        subject: subject.to_owned(),
        body,
    }
}

/// A message ready for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RenderedMessage {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// Renders `template` (or the event's default) for `ctx`.
pub(crate) fn render_message(
    template: Option<&Template>,
    event: TriggerEvent,
    ctx: &MessageContext,
) -> RenderedMessage {
    let default;
    let template = match template {
        Some(t) => t,
        None => {
            default = default_template(event);
            &default
        }
    };
    // A header holds one line.
    let subject: String = fill(&template.subject, ctx)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut text = fill(&template.body, ctx);
    // The brand's signature, unless the template already signs.
    let signs = pieces(&template.body)
        .iter()
        .any(|p| matches!(p, Piece::Placeholder("tenant_name" | "contact")));
    if !signs {
        text.push_str("\n\n");
        text.push_str(&ctx.brand.text_signature());
    }
    if let Some(url) = &ctx.unsubscribe_url {
        text.push_str(&format!(
            "\n\n--\nTo stop these e-mails, unsubscribe: {url}\n"
        ));
    }
    let mut html_body = String::new();
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut escaped = esc(paragraph.trim_matches('\n')).replace('\n', "<br>\n");
        for url in [&ctx.tracking_url, &ctx.unsubscribe_url]
            .into_iter()
            .flatten()
        {
            let url = esc(url);
            escaped = escaped.replace(&url, &format!("<a href=\"{url}\">{url}</a>"));
        }
        html_body.push_str("<p>");
        html_body.push_str(&escaped);
        html_body.push_str("</p>\n");
    }
    let html = ctx.brand.html(&subject, &html_body);
    RenderedMessage {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Customer, EtaRecord};
    use engine::{OrderId, OrderStatus};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn order() -> Order {
        let tz: Tz = "America/New_York".parse().expect("tz");
        let stop = |index, kind, name: &str, from, to| Stop {
            index,
            kind,
            name: name.to_owned(),
            address: String::new(),
            lat: 39.0,
            lon: -76.0,
            time_zone: tz,
            window: Some(Window {
                from: at(from),
                to: at(to),
            }),
            arrived_at: None,
            departed_at: None,
            skipped_at: None,
            geofence: None,
            eta: None,
            late_risk: None,
        };
        let mut pickup = stop(
            0,
            StopKind::Pickup,
            "Key Highway <Dock 4>",
            "2025-11-25T13:00:00Z",
            "2025-11-25T15:00:00Z",
        );
        pickup.eta = Some(EtaRecord {
            stop_index: 0,
            eta: at("2025-11-25T14:05:00Z"),
            p10: at("2025-11-25T13:55:00Z"),
            p90: at("2025-11-25T14:25:00Z"),
            remaining_distance_m: 1000.0,
            remaining_drive_s: 100.0,
            reasons: vec![],
            computed_at: at("2025-11-25T13:00:00Z"),
            route: vec![],
        });
        Order {
            id: OrderId("ord_x".into()),
            tenant_id: engine::TenantId("ten_x".into()),
            reference: "LOAD-<b>1</b>".into(),
            customer: Customer {
                name: "Ann & Co".into(),
                email: Some("ann@example.com".into()),
            },
            vehicle_id: None,
            driver_name: None,
            status: OrderStatus::Dispatched,
            tracking_active: true,
            stops: vec![
                pickup,
                stop(
                    1,
                    StopKind::Delivery,
                    "Canton",
                    "2025-11-25T18:00:00Z",
                    "2025-11-25T20:00:00Z",
                ),
            ],
            created_at: at("2025-11-25T12:00:00Z"),
            updated_at: at("2025-11-25T12:00:00Z"),
        }
    }

    fn context(tracking: Option<&str>) -> MessageContext {
        MessageContext::new(
            &order(),
            TriggerEvent::Dispatched,
            "Acme \"Freight\"",
            "ops@acme.test",
            tracking.map(str::to_owned),
            Some("https://t.test/unsubscribe/abc".into()),
        )
    }

    #[test]
    fn values_are_escaped_in_html_and_plain_in_text() {
        let message = render_message(
            None,
            TriggerEvent::Dispatched,
            &context(Some("https://t.test/t/abc")),
        );
        assert!(
            message.subject.contains("LOAD-<b>1</b>"),
            "the subject is text"
        );
        assert!(message.text.contains("Hello Ann & Co,"), "{}", message.text);
        assert!(
            message.html.contains("LOAD-&lt;b&gt;1&lt;/b&gt;"),
            "{}",
            message.html
        );
        assert!(message.html.contains("Ann &amp; Co"));
        assert!(message.html.contains("Key Highway &lt;Dock 4&gt;"));
        assert!(!message.html.contains("<b>"), "no markup from order data");
        assert!(message.html.contains("<a href=\"https://t.test/t/abc\">"));
        assert!(
            message
                .html
                .contains("<a href=\"https://t.test/unsubscribe/abc\">")
        );
        assert!(
            message
                .text
                .contains("unsubscribe: https://t.test/unsubscribe/abc")
        );
    }

    #[test]
    fn times_are_shown_in_the_stops_time_zone() {
        let message = render_message(None, TriggerEvent::Dispatched, &context(None));
        // 14:05 UTC is 09:05 in Baltimore in November.
        assert!(
            message
                .text
                .contains("Estimated arrival: Tue 25 Nov 2025, 09:05 EST"),
            "{}",
            message.text
        );
        assert!(
            message
                .text
                .contains("window Tue 25 Nov 2025, 08:55–09:25 EST"),
            "{}",
            message.text
        );
        assert!(
            message.text.contains("Tue 25 Nov 2025, 13:00–15:00 EST"),
            "{}",
            message.text
        );
    }

    #[test]
    fn a_value_the_order_lacks_says_so() {
        let message = render_message(None, TriggerEvent::Dispatched, &context(None));
        assert!(
            message.text.contains("Track it live: not available"),
            "{}",
            message.text
        );
    }

    #[test]
    fn a_custom_template_fills_known_names_and_leaves_other_braces_alone() {
        let template = Template {
            subject: "{{ reference }} moves\nnow".into(),
            body: "Track {{tracking_url}} {{ not a name }} {{unclosed".into(),
        };
        let message = render_message(
            Some(&template),
            TriggerEvent::Dispatched,
            &context(Some("https://t.test/t/abc")),
        );
        assert_eq!(message.subject, "LOAD-<b>1</b> moves now");
        assert!(
            message
                .text
                .starts_with("Track https://t.test/t/abc {{ not a name }} {{unclosed")
        );
    }

    #[test]
    fn unknown_placeholders_are_named() {
        assert_eq!(
            unknown_placeholders("{{reference}} {{refrence}} {{ eta }} {{trackign_url}}"),
            vec!["refrence".to_owned(), "trackign_url".to_owned()]
        );
        for event in TriggerEvent::ALL {
            let t = default_template(event);
            assert!(unknown_placeholders(&t.subject).is_empty());
            assert!(unknown_placeholders(&t.body).is_empty(), "{event}");
        }
    }
}
