//! The public tracking page, rendered on the server: semantic HTML that is
//! complete without JavaScript (status, progress, ETA, stops with their windows in
//! local time, the timeline, delivery record), in the viewer's language
//! (`crate::i18n`: every word from the message files, times in each stop's own
//! zone). The script then opens the WebSocket, draws the map and keeps every part
//! current; it re-renders the same sections from the same JSON
//! (`view::track_json`) with the same messages, so both paths show the same thing.

mod chart;
mod errors;
pub(crate) mod html;
pub(crate) mod staff;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub(crate) use errors::{failed, language_headers, not_found, rate_limited};

use crate::i18n::format::{duration_label, time_label, window_label, zone_names};
use crate::i18n::{Lang, fill};
use crate::model::{EventKind, Stop, TrackView};
use crate::state::AppState;
use crate::view::{self, PROGRESS, progress_step};
use html::{Html, esc};

/// A message whose placeholders take markup: the message is escaped, the
/// values are inserted as they are (the caller escapes what it passes).
fn fill_html(lang: Lang, key: &str, values_html: &[(&str, &str)]) -> String {
    fill(&esc(lang.t(key)), values_html)
}

/// A time in a stop's own zone, in the page's language.
fn at_stop(lang: Lang, t: DateTime<Utc>, stop: &Stop) -> String {
    time_label(lang, t, stop.time_zone)
}

fn status_text(lang: Lang, status: engine::OrderStatus) -> &'static str {
    lang.t(&format!("status.{}", status.as_str()))
}

/// The links to the same page in every language (`?lang=`), the current one
/// marked; plain links, so they work by keyboard and without the script.
fn language_switch(page: &mut Html, lang: Lang) {
    page.raw(&format!(
        "<nav class=\"lang-switch\" aria-label=\"{}\"><ul>",
        esc(lang.t("page.language"))
    ));
    for other in Lang::ALL {
        let current = if other == lang {
            " aria-current=\"true\""
        } else {
            ""
        };
        page.raw(&format!(
            "<li><a href=\"?lang={tag}\" hreflang=\"{tag}\" lang=\"{tag}\"{current}>{}</a></li>",
            esc(other.t("language_name")),
            tag = other.tag()
        ));
    }
    page.raw("</ul></nav>");
}

/// Opens the page's body: a wrapper carrying the tenant's colour (a CSS
/// custom property, `--brand`, from [`crate::branding::Branding::primary_color_used`]:
/// always `#rrggbb` we wrote ourselves), then the header with the logo and
/// the display name. An unbranded tenant's page looks as it always did.
fn open_brand(page: &mut Html, lang: Lang, track: &TrackView, code: &str) {
    let brand = &track.branding;
    match brand.primary_color_used() {
        Some((color, _)) => page.raw(&format!(
            "<div class=\"brand branded\" style=\"--brand: {}\">",
            esc(&color)
        )),
        None => page.raw("<div class=\"brand\">"),
    }
    page.raw("<header class=\"top\"><div class=\"wrap\">");
    language_switch(page, lang);
    if brand.logo.is_some() || brand.display_name.is_some() {
        page.raw("<p class=\"brand-bar\">");
        if let Some(logo) = &brand.logo {
            let alt = match brand.display_name.as_deref() {
                Some(name) => lang.tf("brand.logo_alt", &[("name", name)]),
                None => lang.t("brand.logo_alt_unnamed").to_owned(),
            };
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
fn support_block(page: &mut Html, lang: Lang, brand: &crate::branding::Branding) {
    if brand.support_phone.is_none() && brand.support_email.is_none() && brand.support_url.is_none()
    {
        return;
    }
    let who = brand
        .display_name
        .as_deref()
        .unwrap_or(lang.t("brand.the_carrier"));
    page.raw(&format!(
        "<section class=\"card support\" id=\"support\" aria-labelledby=\"support-h\">\
         <h2 id=\"support-h\">{}</h2><p>{}</p><ul>",
        esc(lang.t("brand.support_heading")),
        esc(&lang.tf("brand.support_contact", &[("who", who)]))
    ));
    if let (Some(phone), Some(href)) = (&brand.support_phone, brand.phone_href()) {
        page.raw(&format!(
            "<li>{} <a href=\"{}\">{}</a></li>",
            esc(lang.t("brand.phone")),
            esc(&href),
            esc(phone)
        ));
    }
    if let Some(email) = &brand.support_email {
        page.raw(&format!(
            "<li>{} <a href=\"mailto:{}\">{}</a></li>",
            esc(lang.t("brand.email")),
            esc(email),
            esc(email)
        ));
    }
    if let Some(url) = &brand.support_url {
        page.raw(&format!(
            "<li><a id=\"support-link\" href=\"{}\" rel=\"noopener noreferrer\">{}</a></li>",
            esc(url),
            esc(lang.t("brand.help_link"))
        ));
    }
    page.raw("</ul></section>");
}

/// What the script needs to speak the page's language: the messages and, for
/// every stop's zone, the names of its offsets (see `i18n::format::zone_names`).
fn i18n_data(lang: Lang, track: &TrackView, now: DateTime<Utc>) -> Value {
    let zones: serde_json::Map<String, Value> = track
        .order
        .stops
        .iter()
        .map(|s| {
            (
                s.time_zone.name().to_owned(),
                json!(zone_names(s.time_zone, now)),
            )
        })
        .collect();
    json!({
        "lang": lang.tag(),
        "messages": lang.messages().as_map(),
        "zones": zones,
    })
}

/// Renders the page for an order, in `lang`.
pub(crate) fn render(
    state: &AppState,
    lang: Lang,
    track: &TrackView,
    json: &Value,
    code: &str,
) -> String {
    let order = &track.order;
    let now = Utc::now();
    let brand = &track.branding;
    let mut page = Html::new();
    let title_brand = brand
        .display_name
        .as_deref()
        .map(|n| format!(" · {n}"))
        .unwrap_or_default();
    let title = lang.tf(
        "page.title",
        &[
            ("reference", &order.reference),
            ("status", status_text(lang, order.status)),
        ],
    );
    page.head(lang.tag(), &format!("{title}{title_brand}"));
    open_brand(&mut page, lang, track, code);
    page.raw(&format!(
        "<p class=\"kicker\">{}</p><h1>{}</h1>",
        esc(lang.t("page.kicker")),
        fill_html(
            lang,
            "page.heading",
            &[(
                "reference",
                &format!("<span class=\"ref\">{}</span>", esc(&order.reference))
            )]
        )
    ));
    page.raw(&format!(
        "<p class=\"status\" id=\"status\" role=\"status\" aria-live=\"polite\" data-status=\"{}\">{}</p>",
        order.status.as_str(),
        esc(status_text(lang, order.status))
    ));
    page.raw("</div></header><main class=\"wrap\">");
    progress(&mut page, lang, track);
    if let Some(delivered_at) = view::delivered_at(track) {
        delivered(&mut page, lang, track, code, delivered_at);
    } else {
        eta(&mut page, lang, track, now);
    }
    eta_history(&mut page, lang, track);
    if order.shows_live_location() {
        map(&mut page, lang, track, json, now);
    }

    // Stops.
    page.raw(&format!(
        "<section class=\"card\" aria-labelledby=\"stops-h\"><h2 id=\"stops-h\">{}</h2><ol class=\"stops\" id=\"stops\">",
        esc(lang.t("page.stops"))
    ));
    for stop in &order.stops {
        render_stop(&mut page, lang, &order.stops, stop);
    }
    page.raw("</ol></section>");
    timeline(&mut page, lang, track);
    support_block(&mut page, lang, brand);
    page.raw("</main>");
    page.raw(&format!(
        "<footer class=\"wrap\"><p>{}</p></footer>",
        fill_html(
            lang,
            "page.footer",
            &[(
                "leaflet",
                "<a href=\"/assets/LICENSE-leaflet.txt\">Leaflet</a>"
            )]
        )
    ));
    // Closes the brand's wrapper (see `open_brand`).
    page.raw("</div>");
    page.data_script(
        json,
        state.config().tile_url.as_deref(),
        &i18n_data(lang, track, now),
    );
    page.raw(&format!(
        "<script src=\"{}\"></script><script src=\"{}\"></script><script src=\"{}\"></script></body></html>",
        crate::api::asset_url("leaflet.js"),
        crate::api::asset_url("basemap.js"),
        crate::api::asset_url("track.js"),
    ));
    page.finish()
}

/// The progress indicator.
fn progress(page: &mut Html, lang: Lang, track: &TrackView) {
    let order = &track.order;
    let reached = progress_step(order);
    page.raw(&format!(
        "<section aria-labelledby=\"progress-h\"><h2 id=\"progress-h\" class=\"visually-hidden\">{}</h2><ol class=\"progress\" id=\"progress\">",
        esc(lang.t("page.progress"))
    ));
    for (i, (key, _)) in PROGRESS.iter().enumerate() {
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
            "<li class=\"{class}\" data-step=\"{key}\"{current}>{}</li>",
            esc(lang.t(&format!("step.{key}")))
        ));
    }
    page.raw("</ol></section>");
}

/// The delivery record: when, and the proof of delivery.
fn delivered(
    page: &mut Html,
    lang: Lang,
    track: &TrackView,
    code: &str,
    delivered_at: DateTime<Utc>,
) {
    let stop = track
        .order
        .stops
        .iter()
        .rev()
        .find(|s| s.kind == engine::StopKind::Delivery);
    page.raw(&format!(
        "<section class=\"card delivered\" id=\"delivered\" aria-labelledby=\"delivered-h\"><h2 id=\"delivered-h\">{}</h2>",
        esc(lang.t("page.delivered"))
    ));
    let label = match stop {
        Some(stop) => at_stop(lang, delivered_at, stop),
        None => time_label(lang, delivered_at, chrono_tz::UTC),
    };
    page.raw(&format!(
        "<p class=\"big\"><time datetime=\"{}\">{}</time></p>",
        view::rfc3339(delivered_at),
        esc(&label)
    ));
    if !track.pods.is_empty() {
        page.raw(&format!(
            "<h3>{}</h3><ul class=\"pods\">",
            esc(lang.t("page.proof_of_delivery"))
        ));
        for pod in &track.pods {
            let url = format!("/t/{code}/pod/{}", pod.id);
            let image = pod.content_type.starts_with("image/");
            let what = lang.t(if image {
                "page.pod_photo"
            } else {
                "page.pod_document"
            });
            let signed = pod
                .signed_by
                .as_deref()
                .map(|s| esc(&lang.tf("page.pod_signed_by", &[("name", s)])))
                .unwrap_or_default();
            page.raw(&format!("<li><a href=\"{url}\">{}</a>{signed}", esc(what)));
            if image {
                page.raw(&format!(
                    "<br><img src=\"{url}\" alt=\"{}\" loading=\"lazy\">",
                    esc(lang.t("page.pod_photo_alt"))
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
}

/// The ETA of the next stop, its window and what it includes.
fn eta(page: &mut Html, lang: Lang, track: &TrackView, now: DateTime<Utc>) {
    let order = &track.order;
    page.raw("<section class=\"card eta\" id=\"eta\" aria-labelledby=\"eta-h\">");
    let next = order.next_stop();
    let heading = match next {
        Some(stop) => lang.tf(
            "page.eta_at",
            &[("stop", &stop_title(lang, &order.stops, stop))],
        ),
        None => lang.t("page.eta").to_owned(),
    };
    page.raw(&format!("<h2 id=\"eta-h\">{}</h2>", esc(&heading)));
    match (view::shown_eta(order), next) {
        (Some(eta), Some(stop)) => {
            page.raw(&format!(
                "<p class=\"big\" id=\"eta-time\"><time datetime=\"{}\">{}</time></p>",
                view::rfc3339(eta.eta),
                esc(&at_stop(lang, eta.eta, stop))
            ));
            page.raw(&format!(
                "<p id=\"eta-window\">{}</p>",
                esc(&lang.tf(
                    "page.eta_window",
                    &[
                        ("from", &at_stop(lang, eta.p10, stop)),
                        ("to", &at_stop(lang, eta.p90, stop)),
                    ]
                ))
            ));
            if !eta.reasons.is_empty() {
                let reasons: Vec<&str> = eta
                    .reasons
                    .iter()
                    .map(|r| reason_text(lang, r.as_str()))
                    .collect();
                page.raw(&format!(
                    "<p id=\"eta-reasons\">{}</p>",
                    esc(&lang.tf(
                        "page.eta_reasons",
                        &[("reasons", &reasons.join(lang.t("fmt.list_separator")))]
                    ))
                ));
            }
            page.raw(&format!(
                "<p class=\"muted\"><span id=\"eta-updated\" data-at=\"{}\">{}</span></p>",
                view::rfc3339(eta.computed_at),
                esc(&lang.tf(
                    "page.updated_ago",
                    &[(
                        "ago",
                        &duration_label(lang, (now - eta.computed_at).num_seconds())
                    )]
                ))
            ));
        }
        _ => {
            let key = if order.status == engine::OrderStatus::Cancelled {
                "page.no_eta_cancelled"
            } else if order.status == engine::OrderStatus::Created {
                "page.no_eta_created"
            } else {
                "page.no_eta_yet"
            };
            page.raw(&format!(
                "<p class=\"big\" id=\"eta-time\">{}</p>",
                esc(lang.t(key))
            ));
        }
    }
    page.raw("</section>");
}

fn reason_text(lang: Lang, reason: &str) -> &'static str {
    match reason {
        "traffic" | "hos_break" | "dwell" | "window_wait" => lang.t(&format!("reason.{reason}")),
        _ => lang.t("reason.other"),
    }
}

/// How the estimate moved, against the actual arrival once known.
fn eta_history(page: &mut Html, lang: Lang, track: &TrackView) {
    let order = &track.order;
    let Some(history) = &track.eta_history else {
        return;
    };
    let Some(stop) = order.stops.get(history.stop_index as usize) else {
        return;
    };
    let Some(svg) = chart::eta_history_svg(lang, &history.points, history.actual_arrival, |t| {
        at_stop(lang, t, stop)
    }) else {
        return;
    };
    page.raw("<section class=\"card\" id=\"eta-history\" aria-labelledby=\"eta-history-h\">");
    page.raw(&format!(
        "<h2 id=\"eta-history-h\">{}</h2>",
        esc(&lang.tf(
            "page.history_heading",
            &[("stop", &stop_title(lang, &order.stops, stop))]
        ))
    ));
    page.raw(&svg);
    let actual = match history.actual_arrival {
        Some(at) => format!(
            " {}",
            esc(&lang.tf("page.history_actual", &[("at", &at_stop(lang, at, stop))]))
        ),
        None => String::new(),
    };
    page.raw(&format!(
        "<p class=\"muted\">{}{actual}</p></section>",
        esc(lang.t("page.history_explain"))
    ));
}

/// The map and its text alternative (only while the order is under way).
fn map(page: &mut Html, lang: Lang, track: &TrackView, json: &Value, now: DateTime<Utc>) {
    page.raw(&format!(
        "<section class=\"card\" id=\"map-section\" aria-labelledby=\"map-h\"><h2 id=\"map-h\">{}</h2>",
        esc(lang.t("map.heading"))
    ));
    let approximate = json["vehicle"]["approximate"] == Value::Bool(true);
    match &track.vehicle {
        Some(fix) => {
            let ago = duration_label(lang, (now - fix.at).num_seconds());
            let text = fill_html(
                lang,
                "map.last_position",
                &[(
                    "ago",
                    &format!(
                        "<time datetime=\"{}\">{}</time>",
                        view::rfc3339(fix.at),
                        esc(&ago)
                    ),
                )],
            );
            let note = if approximate {
                format!(" {}", esc(lang.t("map.approximate_note")))
            } else {
                String::new()
            };
            page.raw(&format!("<p id=\"vehicle-text\">{text}{note}</p>"));
        }
        None => page.raw(&format!(
            "<p id=\"vehicle-text\">{}</p>",
            esc(lang.t("map.no_position"))
        )),
    }
    // A region (the zoom buttons inside it are controls, not part of an
    // image), described by the truck's place in words, which the script
    // keeps current.
    page.raw(&format!(
        "<div id=\"map\" class=\"map\" role=\"region\" aria-label=\"{}\" aria-describedby=\"map-text\"></div>",
        esc(lang.t("map.label"))
    ));
    page.raw(&format!(
        "<p id=\"map-text\" class=\"visually-hidden\">{}</p>",
        esc(lang.t("map.text_default"))
    ));
    page.raw(&format!(
        "<p class=\"legend\" aria-hidden=\"true\"><span class=\"driven\"></span>{}<span class=\"ahead\"></span>{}</p>",
        esc(lang.t("map.legend_driven")),
        esc(lang.t("map.legend_ahead"))
    ));
    page.raw(&format!(
        "<p class=\"attribution\">{}</p></section>",
        esc(lang.t("map.attribution"))
    ));
}

/// The timeline, newest first.
fn timeline(page: &mut Html, lang: Lang, track: &TrackView) {
    let order = &track.order;
    page.raw(&format!(
        "<section class=\"card\" aria-labelledby=\"timeline-h\"><h2 id=\"timeline-h\">{}</h2><ol class=\"timeline\" id=\"timeline\" reversed>",
        esc(lang.t("page.updates"))
    ));
    for event in track.events.iter().rev() {
        let stop = event
            .stop_index
            .and_then(|i| order.stops.get(i as usize))
            .or_else(|| order.stops.first());
        let when = match stop {
            Some(s) => at_stop(lang, event.at, s),
            None => time_label(lang, event.at, chrono_tz::UTC),
        };
        let (class, title) = match event.kind {
            EventKind::Status => (
                "status",
                event
                    .status
                    .map_or(lang.t("page.update"), |s| status_text(lang, s)),
            ),
            EventKind::Exception => ("exception", lang.t("page.exception")),
            EventKind::Note => ("note", lang.t("page.note")),
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
}

/// "Pickup: Acme DC", or "Delivery 2 of 3: Store 12" when the order has several
/// stops of that kind (the script writes the same, `stopTitle`).
fn stop_title(lang: Lang, stops: &[Stop], stop: &Stop) -> String {
    let kind = lang.t(&format!("stop.{}", stop.kind.as_str()));
    let same: Vec<&Stop> = stops.iter().filter(|s| s.kind == stop.kind).collect();
    if same.len() > 1 {
        let nth = same.iter().position(|s| s.index == stop.index).unwrap_or(0) + 1;
        lang.tf(
            "stop.title_nth",
            &[
                ("kind", kind),
                ("nth", &nth.to_string()),
                ("total", &same.len().to_string()),
                ("name", &stop.name),
            ],
        )
    } else {
        lang.tf("stop.title", &[("kind", kind), ("name", &stop.name)])
    }
}

fn render_stop(page: &mut Html, lang: Lang, stops: &[Stop], stop: &Stop) {
    page.raw(&format!(
        "<li class=\"stop {}\"><h3>{}</h3>",
        stop.kind.as_str(),
        esc(&stop_title(lang, stops, stop))
    ));
    if !stop.address.is_empty() {
        page.raw(&format!("<p class=\"address\">{}</p>", esc(&stop.address)));
    }
    if let Some(w) = stop.window {
        page.raw(&format!(
            "<p>{} <span class=\"window\">{}</span></p>",
            esc(lang.t("stop.appointment")),
            esc(&window_label(lang, w.from, w.to, stop.time_zone))
        ));
    }
    for (key, at) in [
        ("stop.arrived", stop.arrived_at),
        ("stop.departed", stop.departed_at),
    ] {
        if let Some(at) = at {
            page.raw(&format!(
                "<p>{} <time datetime=\"{}\">{}</time></p>",
                esc(lang.t(key)),
                view::rfc3339(at),
                esc(&at_stop(lang, at, stop))
            ));
        }
    }
    page.raw("</li>");
}
