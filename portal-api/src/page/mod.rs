//! The public tracking page, rendered on the server: semantic HTML that is
//! complete without JavaScript (status, progress, ETA, stops with their windows in
//! local time, the timeline, delivery record). The script then opens the WebSocket,
//! draws the map and keeps every part current; it re-renders the same sections
//! from the same JSON (`view::track_json`), so both paths show the same thing.

mod chart;
pub(crate) mod html;
pub(crate) mod staff;

use chrono::Utc;
use serde_json::Value;

use crate::model::{EventKind, Stop, TrackView};
use crate::state::AppState;
use crate::view::{self, PROGRESS, local_label, progress_step, status_label, window_label};
use html::{Html, esc};

/// The page for a link that does not exist (or no longer does): the same for
/// unknown and revoked codes.
pub(crate) fn not_found() -> (axum::http::StatusCode, axum::response::Html<String>) {
    let mut page = Html::new();
    page.head("Tracking link not found");
    page.raw(
        "<main class=\"wrap\"><h1>Tracking link not found</h1>\
              <p>This tracking link does not exist or is no longer valid. \
              Please ask the sender for a current link.</p></main></body></html>",
    );
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::response::Html(page.finish()),
    )
}

/// The page for a viewer who has opened too many links too fast: readable, with
/// the wait, and the same `Retry-After` the JSON API sends.
pub(crate) fn rate_limited(retry_after_s: u64) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut page = Html::new();
    page.head("Please wait a moment");
    page.raw(&format!(
        "<main class=\"wrap\"><h1>Please wait a moment</h1>\
         <p>Too many tracking pages were opened from your network just now. \
         Please try again in {}.</p></main></body></html>",
        esc(&duration_label(retry_after_s as i64))
    ));
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [
            (axum::http::header::RETRY_AFTER, retry_after_s.to_string()),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        axum::response::Html(page.finish()),
    )
        .into_response()
}

/// The page for any other failure (the store unavailable, say): readable, with
/// the status the API would give and whether trying again may help.
pub(crate) fn failed(err: &crate::error::AppError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut page = Html::new();
    page.head("Tracking is unavailable");
    let advice = if err.status.is_server_error() {
        "This is on our side. Please try again in a few minutes."
    } else {
        "Please check the link, or ask the sender for a current one."
    };
    page.raw(&format!(
        "<main class=\"wrap\"><h1>Tracking is unavailable right now</h1><p>{advice}</p></main></body></html>"
    ));
    (
        err.status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::response::Html(page.finish()),
    )
        .into_response()
}

fn duration_label(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 90 {
        format!("{seconds} s")
    } else if seconds < 90 * 60 {
        format!("{} min", (seconds + 30) / 60)
    } else {
        format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60)
    }
}

fn reason_label(reason: &str) -> &'static str {
    match reason {
        "traffic" => "traffic on the route",
        "hos_break" => "a required driver rest break",
        "dwell" => "time at earlier stops",
        "window_wait" => "waiting for the delivery appointment",
        _ => "other factors",
    }
}

/// What the page says when the map shows the truck's area, not its position
/// (the script writes the same).
const APPROXIMATE_NOTE: &str = " The map shows its approximate area while it is far from the \
     next stop; the exact position shows again as it gets close.";

/// Opens the page's body: a wrapper carrying the tenant's colour (a CSS
/// custom property, `--brand`, from [`crate::branding::Branding::primary_color_used`]:
/// always `#rrggbb` we wrote ourselves), then the header with the logo and
/// the display name. An unbranded tenant's page looks as it always did.
fn open_brand(page: &mut Html, track: &TrackView, code: &str) {
    let brand = &track.branding;
    match brand.primary_color_used() {
        Some((color, _)) => page.raw(&format!(
            "<div class=\"brand branded\" style=\"--brand: {}\">",
            esc(&color)
        )),
        None => page.raw("<div class=\"brand\">"),
    }
    page.raw("<header class=\"top\"><div class=\"wrap\">");
    if brand.logo.is_some() || brand.display_name.is_some() {
        page.raw("<p class=\"brand-bar\">");
        if let Some(logo) = &brand.logo {
            let alt = brand
                .display_name
                .as_deref()
                .map_or_else(|| "Carrier logo".to_owned(), |n| format!("{n} logo"));
            page.raw(&format!(
                "<img class=\"brand-logo\" id=\"brand-logo\" src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">",
                esc(&crate::api::logo_url(code, logo)),
                esc(&alt),
                logo.width_px,
                logo.height_px
            ));
        }
        if let Some(name) = &brand.display_name {
            page.raw(&format!(
                "<span class=\"brand-name\" id=\"brand-name\">{}</span>",
                esc(name)
            ));
        }
        page.raw("</p>");
    }
}

/// The carrier's support contact, when it set one: phone (`tel:`), e-mail
/// (`mailto:`) and a link, every value escaped and every URL one the
/// branding rules accepted (`http(s)://`, digits for `tel:`).
fn support_block(page: &mut Html, brand: &crate::branding::Branding) {
    if brand.support_phone.is_none() && brand.support_email.is_none() && brand.support_url.is_none()
    {
        return;
    }
    let who = brand.display_name.as_deref().unwrap_or("the carrier");
    page.raw(&format!(
        "<section class=\"card support\" id=\"support\" aria-labelledby=\"support-h\">\
         <h2 id=\"support-h\">Questions about this shipment?</h2><p>Contact {}:</p><ul>",
        esc(who)
    ));
    if let (Some(phone), Some(href)) = (&brand.support_phone, brand.phone_href()) {
        page.raw(&format!(
            "<li>Phone: <a href=\"{}\">{}</a></li>",
            esc(&href),
            esc(phone)
        ));
    }
    if let Some(email) = &brand.support_email {
        page.raw(&format!(
            "<li>E-mail: <a href=\"mailto:{}\">{}</a></li>",
            esc(email),
            esc(email)
        ));
    }
    if let Some(url) = &brand.support_url {
        page.raw(&format!(
            "<li><a id=\"support-link\" href=\"{}\" rel=\"noopener noreferrer\">Help centre</a></li>",
            esc(url)
        ));
    }
    page.raw("</ul></section>");
}

/// Renders the page for an order.
pub(crate) fn render(state: &AppState, track: &TrackView, json: &Value, code: &str) -> String {
    let order = &track.order;
    let now = Utc::now();
    let brand = &track.branding;
    let mut page = Html::new();
    let title_brand = brand
        .display_name
        .as_deref()
        .map(|n| format!(" · {n}"))
        .unwrap_or_default();
    page.head(&format!(
        "Shipment {} · {}{title_brand}",
        order.reference,
        status_label(order.status)
    ));
    open_brand(&mut page, track, code);
    page.raw(&format!(
        "<p class=\"kicker\">Shipment tracking</p><h1>Shipment <span class=\"ref\">{}</span></h1>",
        esc(&order.reference)
    ));
    page.raw(&format!(
        "<p class=\"status\" id=\"status\" role=\"status\" aria-live=\"polite\" data-status=\"{}\">{}</p>",
        order.status.as_str(),
        esc(status_label(order.status))
    ));
    page.raw("</div></header><main class=\"wrap\">");

    // Progress indicator.
    let reached = progress_step(order);
    page.raw("<section aria-labelledby=\"progress-h\"><h2 id=\"progress-h\" class=\"visually-hidden\">Progress</h2><ol class=\"progress\" id=\"progress\">");
    for (i, (key, label)) in PROGRESS.iter().enumerate() {
        let (class, current) = if order.status == engine::OrderStatus::Cancelled {
            ("", "")
        } else if i < reached {
            ("done", "")
        } else if i == reached {
            ("current", " aria-current=\"step\"")
        } else {
            ("", "")
        };
        page.raw(&format!(
            "<li class=\"{class}\" data-step=\"{key}\"{current}>{label}</li>"
        ));
    }
    page.raw("</ol></section>");

    // ETA, or the delivery record.
    if let Some(delivered_at) = view::delivered_at(track) {
        let stop = order
            .stops
            .iter()
            .rev()
            .find(|s| s.kind == engine::StopKind::Delivery);
        page.raw("<section class=\"card delivered\" id=\"delivered\" aria-labelledby=\"delivered-h\"><h2 id=\"delivered-h\">Delivered</h2>");
        let label = match stop {
            Some(stop) => local_label(delivered_at, stop),
            None => view::rfc3339(delivered_at),
        };
        page.raw(&format!(
            "<p class=\"big\"><time datetime=\"{}\">{}</time></p>",
            view::rfc3339(delivered_at),
            esc(&label)
        ));
        if !track.pods.is_empty() {
            page.raw("<h3>Proof of delivery</h3><ul class=\"pods\">");
            for pod in &track.pods {
                let url = format!("/t/{code}/pod/{}", pod.id);
                let what = if pod.content_type.starts_with("image/") {
                    "Photo"
                } else {
                    "Document (PDF)"
                };
                let signed = pod
                    .signed_by
                    .as_deref()
                    .map(|s| format!(", signed by {}", esc(s)))
                    .unwrap_or_default();
                page.raw(&format!("<li><a href=\"{url}\">{what}</a>{signed}"));
                if pod.content_type.starts_with("image/") {
                    page.raw(&format!(
                        "<br><img src=\"{url}\" alt=\"Proof of delivery photo\" loading=\"lazy\">"
                    ));
                }
                if let Some(note) = &pod.note {
                    page.raw(&format!("<p>{}</p>", esc(note)));
                }
                page.raw("</li>");
            }
            page.raw("</ul>");
        }
        page.raw("</section>");
    } else {
        page.raw("<section class=\"card eta\" id=\"eta\" aria-labelledby=\"eta-h\">");
        let next = order.next_stop();
        let heading = match next {
            Some(stop) => format!("Estimated arrival at {}", stop_title(&order.stops, stop)),
            None => "Estimated arrival".to_owned(),
        };
        page.raw(&format!("<h2 id=\"eta-h\">{}</h2>", esc(&heading)));
        match (view::shown_eta(order), next) {
            (Some(eta), Some(stop)) => {
                page.raw(&format!(
                    "<p class=\"big\" id=\"eta-time\"><time datetime=\"{}\">{}</time></p>",
                    view::rfc3339(eta.eta),
                    esc(&local_label(eta.eta, stop))
                ));
                page.raw(&format!(
                    "<p id=\"eta-window\">Most likely between {} and {}</p>",
                    esc(&local_label(eta.p10, stop)),
                    esc(&local_label(eta.p90, stop))
                ));
                if !eta.reasons.is_empty() {
                    let reasons: Vec<&str> = eta
                        .reasons
                        .iter()
                        .map(|r| reason_label(r.as_str()))
                        .collect();
                    page.raw(&format!(
                        "<p id=\"eta-reasons\">Includes {}.</p>",
                        esc(&reasons.join(", "))
                    ));
                }
                page.raw(&format!(
                    "<p class=\"muted\"><span id=\"eta-updated\" data-at=\"{}\">updated {} ago</span></p>",
                    view::rfc3339(eta.computed_at),
                    duration_label((now - eta.computed_at).num_seconds())
                ));
            }
            _ => {
                let text = if order.status == engine::OrderStatus::Cancelled {
                    "This shipment was cancelled."
                } else if order.status == engine::OrderStatus::Created {
                    "An arrival estimate will appear once the shipment is dispatched."
                } else {
                    "No arrival estimate yet; it appears once the truck reports its position."
                };
                page.raw(&format!("<p class=\"big\" id=\"eta-time\">{text}</p>"));
            }
        }
        page.raw("</section>");
    }

    // How the estimate moved, against the actual arrival once known.
    if let Some(history) = &track.eta_history
        && let Some(stop) = order.stops.get(history.stop_index as usize)
        && let Some(svg) = chart::eta_history_svg(&history.points, history.actual_arrival, |t| {
            local_label(t, stop)
        })
    {
        page.raw("<section class=\"card\" id=\"eta-history\" aria-labelledby=\"eta-history-h\">");
        page.raw(&format!(
            "<h2 id=\"eta-history-h\">How the estimate for {} changed</h2>",
            esc(&stop_title(&order.stops, stop))
        ));
        page.raw(&svg);
        let actual = match history.actual_arrival {
            Some(at) => format!(
                " The dashed line is the actual arrival, {}.",
                esc(&local_label(at, stop))
            ),
            None => String::new(),
        };
        page.raw(&format!(
            "<p class=\"muted\">Each point is the estimate as it stood then (the band is \
             its likely range), from the first estimate on the left to the latest on the \
             right.{actual}</p></section>"
        ));
    }

    // Map (only while the order is under way).
    if order.shows_live_location() {
        page.raw("<section class=\"card\" id=\"map-section\" aria-labelledby=\"map-h\"><h2 id=\"map-h\">Where it is</h2>");
        let approximate = json["vehicle"]["approximate"] == Value::Bool(true);
        match &track.vehicle {
            Some(fix) => page.raw(&format!(
                "<p id=\"vehicle-text\">Last position reported <time datetime=\"{}\">{} ago</time>.{}</p>",
                view::rfc3339(fix.at),
                duration_label((now - fix.at).num_seconds()),
                if approximate { APPROXIMATE_NOTE } else { "" }
            )),
            None => page.raw("<p id=\"vehicle-text\">The truck has not reported a position yet.</p>"),
        }
        // A region (the zoom buttons inside it are controls, not part of an
        // image), described by the truck's place in words, which the script
        // keeps current.
        page.raw("<div id=\"map\" class=\"map\" role=\"region\" aria-label=\"Map of the truck, its remaining route and the numbered stops\" aria-describedby=\"map-text\"></div>");
        page.raw("<p id=\"map-text\" class=\"visually-hidden\">The map shows the truck and the stops.</p>");
        page.raw("<p class=\"legend\" aria-hidden=\"true\"><span class=\"driven\"></span>driven<span class=\"ahead\"></span>ahead</p>");
        page.raw("<p class=\"attribution\">Map data © OpenStreetMap contributors</p></section>");
    }

    // Stops.
    page.raw("<section class=\"card\" aria-labelledby=\"stops-h\"><h2 id=\"stops-h\">Stops</h2><ol class=\"stops\" id=\"stops\">");
    for stop in &order.stops {
        render_stop(&mut page, &order.stops, stop);
    }
    page.raw("</ol></section>");

    // Timeline, newest first.
    page.raw("<section class=\"card\" aria-labelledby=\"timeline-h\"><h2 id=\"timeline-h\">Updates</h2><ol class=\"timeline\" id=\"timeline\" reversed>");
    for event in track.events.iter().rev() {
        let stop = event
            .stop_index
            .and_then(|i| order.stops.get(i as usize))
            .or_else(|| order.stops.first());
        let when = stop
            .map(|s| local_label(event.at, s))
            .unwrap_or_else(|| view::rfc3339(event.at));
        let (class, title) = match event.kind {
            EventKind::Status => ("status", event.status.map(status_label).unwrap_or("Update")),
            EventKind::Exception => ("exception", "Exception"),
            EventKind::Note => ("note", "Note"),
        };
        page.raw(&format!(
            "<li class=\"{class}\"><time datetime=\"{}\">{}</time> <strong>{}</strong>",
            view::rfc3339(event.at),
            esc(&when),
            esc(title)
        ));
        if let Some(note) = &event.note {
            page.raw(&format!("<p>{}</p>", esc(note)));
        }
        page.raw("</li>");
    }
    page.raw("</ol></section>");
    support_block(&mut page, brand);
    page.raw("</main>");
    page.raw("<footer class=\"wrap\"><p>Map data © OpenStreetMap contributors (ODbL). \
              Map display: <a href=\"/assets/LICENSE-leaflet.txt\">Leaflet</a> (BSD-2-Clause).</p></footer>");
    // Closes the brand's wrapper (see `open_brand`).
    page.raw("</div>");
    page.data_script(json, state.config().tile_url.as_deref());
    page.raw(&format!(
        "<script src=\"{}\"></script><script src=\"{}\"></script><script src=\"{}\"></script></body></html>",
        crate::api::asset_url("leaflet.js"),
        crate::api::asset_url("basemap.js"),
        crate::api::asset_url("track.js"),
    ));
    page.finish()
}

/// "Pickup: Acme DC", or "Delivery 2 of 3: Store 12" when the order has several
/// stops of that kind (the script writes the same, `stopTitle`).
fn stop_title(stops: &[Stop], stop: &Stop) -> String {
    let kind = match stop.kind {
        engine::StopKind::Pickup => "Pickup",
        engine::StopKind::Delivery => "Delivery",
    };
    let same: Vec<&Stop> = stops.iter().filter(|s| s.kind == stop.kind).collect();
    if same.len() > 1 {
        let nth = same.iter().position(|s| s.index == stop.index).unwrap_or(0) + 1;
        format!("{kind} {nth} of {}: {}", same.len(), stop.name)
    } else {
        format!("{kind}: {}", stop.name)
    }
}

fn render_stop(page: &mut Html, stops: &[Stop], stop: &Stop) {
    page.raw(&format!(
        "<li class=\"stop {}\"><h3>{}</h3>",
        stop.kind.as_str(),
        esc(&stop_title(stops, stop))
    ));
    if !stop.address.is_empty() {
        page.raw(&format!("<p class=\"address\">{}</p>", esc(&stop.address)));
    }
    if let Some(label) = window_label(stop) {
        page.raw(&format!(
            "<p>Appointment: <span class=\"window\">{}</span></p>",
            esc(&label)
        ));
    }
    if let Some(at) = stop.arrived_at {
        page.raw(&format!(
            "<p>Arrived <time datetime=\"{}\">{}</time></p>",
            view::rfc3339(at),
            esc(&local_label(at, stop))
        ));
    }
    if let Some(at) = stop.departed_at {
        page.raw(&format!(
            "<p>Departed <time datetime=\"{}\">{}</time></p>",
            view::rfc3339(at),
            esc(&local_label(at, stop))
        ));
    }
    page.raw("</li>");
}
