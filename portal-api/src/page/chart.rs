//! The tracking page's small chart of how the ETA moved: server-rendered SVG
//! (no script, no library), the time each estimate was made across, the
//! arrival it predicted up, its p10–p90 window as a band, and the actual
//! arrival as a line once the truck is there. Pure: points in, markup out.

use chrono::{DateTime, Utc};

use crate::analytics::EtaPoint;
use crate::i18n::Lang;

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 140.0;
const PAD_LEFT: f64 = 8.0;
const PAD_RIGHT: f64 = 8.0;
const PAD_Y: f64 = 10.0;

/// The chart, or `None` with fewer than two points (nothing has moved yet).
/// `label` turns a time into the text shown for it (the stop's local time),
/// and the chart's title is in `lang`.
pub(crate) fn eta_history_svg(
    lang: Lang,
    points: &[EtaPoint],
    actual: Option<DateTime<Utc>>,
    label: impl Fn(DateTime<Utc>) -> String,
) -> Option<String> {
    if points.len() < 2 {
        return None;
    }
    let secs = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;
    let x0 = secs(points[0].at);
    let x1 = secs(points[points.len() - 1].at).max(x0 + 1.0);
    let mut y0 = f64::INFINITY;
    let mut y1 = f64::NEG_INFINITY;
    for p in points {
        y0 = y0.min(secs(p.p10));
        y1 = y1.max(secs(p.p90));
    }
    if let Some(a) = actual {
        y0 = y0.min(secs(a));
        y1 = y1.max(secs(a));
    }
    let y1 = y1.max(y0 + 60.0);
    let x =
        |t: DateTime<Utc>| PAD_LEFT + (secs(t) - x0) / (x1 - x0) * (WIDTH - PAD_LEFT - PAD_RIGHT);
    // Later arrivals higher up.
    let y = |t: DateTime<Utc>| HEIGHT - PAD_Y - (secs(t) - y0) / (y1 - y0) * (HEIGHT - 2.0 * PAD_Y);
    let line = |at: fn(&EtaPoint) -> DateTime<Utc>, backwards: bool| -> String {
        let mut pts: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.at), y(at(p))))
            .collect();
        if backwards {
            pts.reverse();
        }
        pts.join(" ")
    };
    let band = format!("{} {}", line(|p| p.p90, false), line(|p| p.p10, true));
    let eta_line = line(|p| p.eta, false);
    let mut svg = format!(
        "<svg class=\"eta-chart\" id=\"eta-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"eta-chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"eta-chart-title\">{}</title>\
         <polygon class=\"band\" points=\"{band}\" fill=\"#2563eb\" fill-opacity=\"0.15\"/>\
         <polyline class=\"eta\" points=\"{eta_line}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>",
        super::html::esc(&lang.tf(
            "page.chart_title",
            &[
                ("from", &label(points[0].eta)),
                ("to", &label(points[points.len() - 1].eta)),
            ]
        )),
    );
    if let Some(a) = actual {
        let ya = y(a);
        svg.push_str(&format!(
            "<line class=\"actual\" x1=\"{PAD_LEFT}\" x2=\"{:.1}\" y1=\"{ya:.1}\" y2=\"{ya:.1}\" \
             stroke=\"#16a34a\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>",
            WIDTH - PAD_RIGHT
        ));
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_eta_that_slipped_is_drawn_rising_towards_the_actual_arrival() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("t");
        let min = |m| t0 + chrono::Duration::minutes(m);
        let point = |at, eta| EtaPoint {
            at: min(at),
            eta: min(eta),
            p10: min(eta - 5),
            p90: min(eta + 5),
        };
        let points = [point(0, 60), point(10, 70), point(20, 80)];
        let svg = eta_history_svg(Lang::En, &points, Some(min(82)), |t| {
            t.format("%H:%M").to_string()
        })
        .expect("a chart");
        assert!(svg.contains("from 09:00 to 09:20"), "{svg}");
        assert!(svg.contains("class=\"actual\""));
        // The ETA line climbs: each later point has a smaller y.
        let line = svg
            .split("class=\"eta\" points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the line");
        let ys: Vec<f64> = line
            .split(' ')
            .filter_map(|p| p.split(',').nth(1)?.parse().ok())
            .collect();
        assert_eq!(ys.len(), 3);
        assert!(ys[0] > ys[1] && ys[1] > ys[2], "{ys:?}");
        assert!(eta_history_svg(Lang::En, &points[..1], None, |t| t.to_rfc3339()).is_none());
    }
}
