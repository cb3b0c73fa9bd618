//! The staff pages' HTML: the sign-in form, the analytics page (error by
//! horizon beside the free-flow baseline, coverage by horizon against the
//! 80 % target, on-time rate by day, the worst lanes) and the order list.
//! Server-rendered, with inline SVG bar charts: complete without
//! JavaScript (one script file only adds "Copy link" buttons to the order
//! list). Pure: figures in, markup out.

use super::html::{Html, esc};
use crate::analytics::{AccuracyGroup, OnTimeGroup};

/// The coverage the p10–p90 window promises.
pub(crate) const COVERAGE_TARGET: f64 = 0.8;

fn head(page: &mut Html, title: &str) {
    page.head("en", title);
    page.raw(
        "<header class=\"top\"><div class=\"wrap\"><p class=\"kicker\">Staff</p>\
         <nav><a href=\"/staff/analytics\">Analytics</a> · <a href=\"/staff/orders\">Orders</a> · \
         <form method=\"post\" action=\"/staff/sign-out\" style=\"display:inline\">\
         <button type=\"submit\">Sign out</button></form></nav></div></header><main class=\"wrap\">",
    );
}

/// The sign-in form, with an optional error.
pub(crate) fn sign_in(error: Option<&str>) -> String {
    let mut page = Html::new();
    page.head("en", "Staff sign-in");
    page.raw("<main class=\"wrap\"><h1>Staff sign-in</h1>");
    if let Some(error) = error {
        page.raw(&format!(
            "<p class=\"error\" id=\"sign-in-error\" role=\"alert\">{}</p>",
            esc(error)
        ));
    }
    page.raw(
        "<form method=\"post\" action=\"/staff/sign-in\" id=\"sign-in\">\
         <label for=\"api_key\">API key (scope <code>read</code>)</label><br>\
         <input type=\"password\" id=\"api_key\" name=\"api_key\" autocomplete=\"off\" required size=\"60\"><br>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"muted\">The key is checked and forgotten: your browser keeps a session \
         cookie, never the key.</p></main></body></html>",
    );
    page.finish()
}

/// A horizontal bar chart: one row per label, up to two bars (ours, and a
/// second series such as the baseline), and an optional target line.
fn bars(
    id: &str,
    title: &str,
    rows: &[(String, f64, Option<f64>)],
    max: f64,
    unit: &str,
    target: Option<f64>,
) -> String {
    let row_h = 22.0;
    let label_w = 130.0;
    let width = 460.0;
    let bar_w = width - label_w - 70.0;
    let height = row_h * rows.len() as f64 + 10.0;
    let max = if max > 0.0 { max } else { 1.0 };
    let mut svg = format!(
        "<svg id=\"{id}\" class=\"staff-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-labelledby=\"{id}-t\" xmlns=\"http://www.w3.org/2000/svg\" style=\"max-width:100%\">\
         <title id=\"{id}-t\">{}</title>",
        esc(title)
    );
    for (i, (label, a, b)) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            y + 13.0,
            esc(label)
        ));
        let wa = (a / max).clamp(0.0, 1.0) * bar_w;
        let h = if b.is_some() { 8.0 } else { 16.0 };
        svg.push_str(&format!(
            "<rect class=\"ours\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{wa:.1}\" height=\"{h}\" fill=\"#2563eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{a:.0}{unit}</text>",
            label_w + wa + 4.0,
            y + 8.0
        ));
        if let Some(b) = b {
            let wb = (b / max).clamp(0.0, 1.0) * bar_w;
            svg.push_str(&format!(
                "<rect class=\"baseline\" x=\"{label_w}\" y=\"{:.1}\" width=\"{wb:.1}\" height=\"8\" fill=\"#9ca3af\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#6b7280\">{b:.0}{unit}</text>",
                y + 9.0,
                label_w + wb + 4.0,
                y + 17.0
            ));
        }
    }
    if let Some(t) = target {
        let x = label_w + (t / max).clamp(0.0, 1.0) * bar_w;
        svg.push_str(&format!(
            "<line class=\"target\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{height}\" \
             stroke=\"#dc2626\" stroke-dasharray=\"4 3\"/>"
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The figures the analytics page shows.
#[derive(Debug)]
pub(crate) struct AnalyticsFigures<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) by_horizon: &'a [AccuracyGroup],
    pub(crate) on_time_by_day: &'a [OnTimeGroup],
    pub(crate) by_lane: &'a [AccuracyGroup],
}

pub(crate) fn analytics(f: &AnalyticsFigures<'_>) -> String {
    let mut page = Html::new();
    head(&mut page, "ETA analytics");
    page.raw(&format!(
        "<h1>ETA analytics</h1><p class=\"muted\">{} · predictions made from {} to {}</p>",
        esc(f.tenant),
        esc(f.from),
        esc(f.to)
    ));
    page.raw("<section class=\"card\" id=\"error-by-horizon\"><h2>Error by horizon</h2>");
    if f.by_horizon.is_empty() {
        page.raw("<p>No evaluated predictions in this range yet.</p>");
    } else {
        let rows: Vec<(String, f64, Option<f64>)> = f
            .by_horizon
            .iter()
            .map(|g| {
                (
                    horizon_label(&g.key),
                    g.mae_s / 60.0,
                    g.baseline_mae_s.map(|b| b / 60.0),
                )
            })
            .collect();
        let max = rows
            .iter()
            .map(|r| r.1.max(r.2.unwrap_or(0.0)))
            .fold(0.0, f64::max);
        page.raw(&bars(
            "mae-chart",
            "Mean absolute error by horizon, minutes: ours (blue) and the free-flow baseline (grey)",
            &rows,
            max,
            " min",
            None,
        ));
        page.raw("<table><thead><tr><th>Horizon</th><th>n</th><th>MAE</th><th>Baseline MAE</th>\
                  <th>Median |error|</th><th>p90 |error|</th><th>Bias</th><th>Coverage</th></tr></thead><tbody>");
        for g in f.by_horizon {
            page.raw(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} %</td></tr>",
                esc(&horizon_label(&g.key)),
                g.n,
                minutes(Some(g.mae_s)),
                minutes(g.baseline_mae_s),
                minutes(g.median_abs_error_s),
                minutes(g.p90_abs_error_s),
                minutes(Some(g.bias_s)),
                g.coverage * 100.0
            ));
        }
        page.raw("</tbody></table>");
    }
    page.raw("</section>");

    page.raw("<section class=\"card\" id=\"coverage-by-horizon\"><h2>Coverage by horizon</h2>");
    if f.by_horizon.is_empty() {
        page.raw("<p>No evaluated predictions in this range yet.</p>");
    } else {
        let rows: Vec<(String, f64, Option<f64>)> = f
            .by_horizon
            .iter()
            .map(|g| (horizon_label(&g.key), g.coverage * 100.0, None))
            .collect();
        page.raw(&bars(
            "coverage-chart",
            "Share of arrivals inside the p10–p90 window by horizon, against the 80 % target (red line)",
            &rows,
            100.0,
            " %",
            Some(COVERAGE_TARGET * 100.0),
        ));
    }
    page.raw("</section>");

    page.raw("<section class=\"card\" id=\"on-time-by-day\"><h2>On-time rate by day</h2>");
    if f.on_time_by_day.is_empty() {
        page.raw("<p>No stops with a window reached in this range.</p>");
    } else {
        let rows: Vec<(String, f64, Option<f64>)> = f
            .on_time_by_day
            .iter()
            .map(|g| (g.key.clone(), g.on_time_rate * 100.0, None))
            .collect();
        page.raw(&bars(
            "on-time-chart",
            "Stops reached inside their window, by day",
            &rows,
            100.0,
            " %",
            None,
        ));
    }
    page.raw("</section>");

    page.raw("<section class=\"card\" id=\"worst-lanes\"><h2>Worst lanes</h2>");
    let mut lanes: Vec<&AccuracyGroup> = f.by_lane.iter().collect();
    lanes.sort_by(|a, b| b.mae_s.total_cmp(&a.mae_s));
    if lanes.is_empty() {
        page.raw("<p>No lanes yet.</p>");
    } else {
        page.raw(
            "<table><thead><tr><th>Lane (H3 cells, first pickup › last delivery)</th><th>n</th>\
                  <th>MAE</th><th>Baseline MAE</th><th>Coverage</th></tr></thead><tbody>",
        );
        for g in lanes.iter().take(10) {
            page.raw(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} %</td></tr>",
                esc(&g.key.replace('>', " › ")),
                g.n,
                minutes(Some(g.mae_s)),
                minutes(g.baseline_mae_s),
                g.coverage * 100.0
            ));
        }
        page.raw("</tbody></table>");
    }
    page.raw("</section></main></body></html>");
    page.finish()
}

/// `"300-900"` → `"5–15 min"`; `"604800-"` → `"over 168 h"`.
fn horizon_label(key: &str) -> String {
    let mut parts = key.split('-');
    let lower: f64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let upper: Option<f64> = parts.next().and_then(|x| x.parse().ok());
    let fmt = |s: f64| {
        if s < 3600.0 {
            format!("{} min", s / 60.0)
        } else {
            format!("{} h", s / 3600.0)
        }
    };
    match upper {
        Some(upper) => format!("{}–{}", fmt(lower), fmt(upper)),
        None => format!("over {}", fmt(lower)),
    }
}

fn minutes(s: Option<f64>) -> String {
    match s {
        Some(s) => format!("{:.1} min", s / 60.0),
        None => "–".to_owned(),
    }
}

/// One row of the order list.
#[derive(Debug)]
pub(crate) struct OrderRow {
    pub(crate) id: String,
    pub(crate) reference: String,
    pub(crate) customer: String,
    pub(crate) status: &'static str,
    pub(crate) created_at: String,
    /// The next stop's ETA, as text.
    pub(crate) eta: Option<String>,
    /// The stop at risk of missing its window, as text.
    pub(crate) late_risk: Option<String>,
    /// Per stop: kind, name, arrived, departed (as text).
    pub(crate) stops: Vec<String>,
    /// The tracking link, where it can be recovered (sealed under the
    /// server's key when issued).
    pub(crate) link: Option<String>,
}

/// The order list with its filter form. `can_rotate`: the session's key
/// may issue new links (scope `orders`).
pub(crate) fn orders(
    rows: &[OrderRow],
    filter: &[(&str, String)],
    can_rotate: bool,
    issued: Option<(&str, &str)>,
) -> String {
    let mut page = Html::new();
    head(&mut page, "Orders");
    page.raw("<h1>Orders</h1>");
    if let Some((reference, link)) = issued {
        page.raw(&format!(
            "<p class=\"card\" id=\"issued\" role=\"status\">New tracking link for {}: \
             <a href=\"{l}\">{l}</a> (shown once; the old link no longer works)</p>",
            esc(reference),
            l = esc(link)
        ));
    }
    let value = |name: &str| {
        filter
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| esc(v))
            .unwrap_or_default()
    };
    page.raw(&format!(
        "<form method=\"get\" action=\"/staff/orders\" id=\"order-filter\">\
         <label>Reference <input name=\"reference\" value=\"{}\"></label> \
         <label>Status <select name=\"status\"><option value=\"\">any</option>",
        value("reference")
    ));
    let chosen = value("status");
    for s in [
        "created",
        "dispatched",
        "at_pickup",
        "picked_up",
        "out_for_delivery",
        "at_delivery",
        "delivered",
        "cancelled",
    ] {
        let sel = if chosen == s { " selected" } else { "" };
        page.raw(&format!("<option value=\"{s}\"{sel}>{s}</option>"));
    }
    page.raw(&format!(
        "</select></label> <label>Late risk <select name=\"late_risk\">{}</select></label> \
         <label>Created from <input type=\"date\" name=\"from\" value=\"{}\"></label> \
         <label>to <input type=\"date\" name=\"to\" value=\"{}\"></label> \
         <button type=\"submit\">Filter</button></form>",
        [("", "any"), ("true", "at risk"), ("false", "not at risk")]
            .iter()
            .map(|(v, label)| {
                let sel = if value("late_risk") == *v {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{v}\"{sel}>{label}</option>")
            })
            .collect::<String>(),
        value("from"),
        value("to")
    ));
    page.raw(
        "<table id=\"orders\"><thead><tr><th>Reference</th><th>Customer</th><th>Status</th>\
              <th>Next ETA</th><th>Stops</th><th>Tracking link</th></tr></thead><tbody>",
    );
    for r in rows {
        page.raw(&format!(
            "<tr data-order=\"{}\"><td>{}<br><small>{}</small></td><td>{}</td><td class=\"status\">{}{}</td><td>{}</td><td><ul>",
            esc(&r.id),
            esc(&r.reference),
            esc(&r.created_at),
            esc(&r.customer),
            r.status,
            r.late_risk
                .as_ref()
                .map(|risk| format!("<br><strong class=\"late-risk\">Late risk: {}</strong>", esc(risk)))
                .unwrap_or_default(),
            esc(r.eta.as_deref().unwrap_or("–"))
        ));
        for s in &r.stops {
            page.raw(&format!("<li>{}</li>", esc(s)));
        }
        page.raw("</ul></td><td>");
        match (&r.link, can_rotate) {
            (Some(link), _) => page.raw(&format!(
                "<a class=\"link\" href=\"{l}\">{l}</a> \
                 <button type=\"button\" class=\"copy\" data-copy=\"{l}\" hidden>Copy link</button>\
                 <span class=\"copied\" role=\"status\" aria-live=\"polite\"></span>",
                l = esc(link)
            )),
            (None, true) => page.raw(&format!(
                "<form method=\"post\" action=\"/staff/orders/{}/rotate\">\
                 <button type=\"submit\" class=\"rotate\">Rotate to get a new link</button></form>",
                esc(&r.id)
            )),
            (None, false) => page.raw(
                "<small>Not recoverable (stored hashed); a key with scope <code>orders</code> \
                 can rotate it to get a new link.</small>",
            ),
        }
        page.raw("</td></tr>");
    }
    page.raw(&format!(
        "</tbody></table></main><script src=\"{}\"></script></body></html>",
        crate::api::asset_url("staff.js")
    ));
    page.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_read_as_minutes_and_hours() {
        assert_eq!(horizon_label("300-900"), "5 min–15 min");
        assert_eq!(horizon_label("3600-7200"), "1 h–2 h");
        assert_eq!(horizon_label("604800-"), "over 168 h");
    }

    #[test]
    fn a_customer_name_with_markup_is_escaped_in_the_order_list() {
        let row = OrderRow {
            id: "ord_1".into(),
            reference: "L-1".into(),
            customer: "<script>x</script>".into(),
            status: "dispatched",
            created_at: "2026-01-01".into(),
            eta: None,
            late_risk: None,
            stops: vec![],
            link: None,
        };
        let html = orders(&[row], &[], true, None);
        assert!(!html.contains("<script>x"));
        assert!(html.contains("Rotate to get a new link"));
        assert!(!html.contains("Late risk:"));
    }

    #[test]
    fn an_order_at_late_risk_says_which_stop_and_the_filter_keeps_its_choice() {
        let row = OrderRow {
            id: "ord_2".into(),
            reference: "L-2".into(),
            customer: "Acme".into(),
            status: "picked_up",
            created_at: "2026-01-01".into(),
            eta: None,
            late_risk: Some("delivery 2 (<b>Store</b>) predicted 12 min past its window".into()),
            stops: vec![],
            link: None,
        };
        let html = orders(&[row], &[("late_risk", "true".to_owned())], false, None);
        assert!(
            html.contains("Late risk: delivery 2 (&lt;b&gt;Store&lt;/b&gt;) predicted 12 min"),
            "{html}"
        );
        assert!(html.contains("<option value=\"true\" selected>at risk</option>"));
        assert!(html.contains("<option value=\"\">any</option>"));
    }
}
