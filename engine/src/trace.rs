//! Trace files (a vehicle's timed fixes) parsed from text: CSV with a header naming
//! `lat`, `lon` and a time column (`t`, `time` or `timestamp`: RFC 3339 or seconds
//! since the Unix epoch), or GPX track points with `<time>`. The binary reads the
//! file; this module only parses, so replay, simulation and evaluation share it.

use chrono::{DateTime, Utc};
use road_graph::LatLon;

use crate::error::{Error, Result};
use crate::matching::Fix;

/// Parses a CSV or GPX trace (detected from its first non-blank character).
pub fn parse_trace(text: &str) -> Result<Vec<Fix>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('<') {
        parse_gpx(text)
    } else {
        parse_csv(text)
    }
}

fn bad(line: usize, reason: impl Into<String>) -> Error {
    Error::InvalidTrace {
        line,
        reason: reason.into(),
    }
}

/// Parses a time: seconds since the Unix epoch (fractions allowed) or RFC 3339.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return None;
        }
        return DateTime::from_timestamp_micros((seconds * 1e6).round() as i64);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_csv(text: &str) -> Result<Vec<Fix>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_idx, header)) = lines.next() else {
        return Err(bad(1, "empty trace"));
    };
    let names: Vec<String> = header
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let header_line = header_idx + 1;
    let lat_col = find(&["lat", "latitude"])
        .ok_or_else(|| bad(header_line, "no `lat` column in the header"))?;
    let lon_col = find(&["lon", "lng", "longitude"])
        .ok_or_else(|| bad(header_line, "no `lon` column in the header"))?;
    let time_col = find(&["t", "time", "timestamp"]).ok_or_else(|| {
        bad(
            header_line,
            "no time column (`t`, `time` or `timestamp`) in the header",
        )
    })?;
    let accuracy_col = find(&["accuracy", "accuracy_m", "hacc"]);
    let mut fixes = Vec::new();
    for (idx, line) in lines {
        let n = idx + 1;
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        let field = |col: usize, name: &str| {
            fields
                .get(col)
                .copied()
                .ok_or_else(|| bad(n, format!("missing `{name}` field")))
        };
        let number = |col: usize, name: &str| -> Result<f64> {
            let text = field(col, name)?;
            text.parse::<f64>()
                .map_err(|_| bad(n, format!("`{name}` is not a number: {text:?}")))
        };
        let pos = LatLon::new(number(lat_col, "lat")?, number(lon_col, "lon")?);
        if !pos.is_valid() {
            return Err(bad(
                n,
                format!("position out of range: {}, {}", pos.lat, pos.lon),
            ));
        }
        let time_text = field(time_col, "time")?;
        let time = parse_time(time_text).ok_or_else(|| {
            bad(
                n,
                format!("time is neither RFC 3339 nor seconds: {time_text:?}"),
            )
        })?;
        let accuracy_m = match accuracy_col.and_then(|c| fields.get(c)) {
            Some(text) if !text.is_empty() => Some(
                text.parse::<f64>()
                    .map_err(|_| bad(n, format!("accuracy is not a number: {text:?}")))?,
            ),
            _ => None,
        };
        fixes.push(Fix {
            time,
            pos,
            accuracy_m,
        });
    }
    Ok(fixes)
}

/// The value of attribute `name` in a tag's text.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(after) = after.strip_prefix('=') {
            let after = after.trim_start();
            let quote = after.chars().next()?;
            if quote == '"' || quote == '\'' {
                let body = &after[1..];
                return body.find(quote).map(|end| &body[..end]);
            }
            return None;
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn parse_gpx(text: &str) -> Result<Vec<Fix>> {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut fixes = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("<trkpt") {
        let start = from + i;
        let n = line_of(start);
        let tag_end = text[start..]
            .find('>')
            .map(|e| start + e)
            .ok_or_else(|| bad(n, "unterminated <trkpt> tag"))?;
        let tag = &text[start..tag_end];
        let coordinate = |name: &str| -> Result<f64> {
            let value =
                attribute(tag, name).ok_or_else(|| bad(n, format!("<trkpt> without `{name}`")))?;
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| bad(n, format!("`{name}` is not a number: {value:?}")))
        };
        let pos = LatLon::new(coordinate("lat")?, coordinate("lon")?);
        if !pos.is_valid() {
            return Err(bad(
                n,
                format!("position out of range: {}, {}", pos.lat, pos.lon),
            ));
        }
        if tag.ends_with('/') {
            return Err(bad(n, "<trkpt> without <time>"));
        }
        let body_end = text[tag_end..]
            .find("</trkpt>")
            .map(|e| tag_end + e)
            .ok_or_else(|| bad(n, "unterminated <trkpt>"))?;
        let body = &text[tag_end..body_end];
        let time_text = body
            .find("<time>")
            .and_then(|a| {
                body[a + 6..]
                    .find("</time>")
                    .map(|b| &body[a + 6..a + 6 + b])
            })
            .ok_or_else(|| bad(n, "<trkpt> without <time>"))?;
        let time =
            parse_time(time_text).ok_or_else(|| bad(n, format!("bad <time>: {time_text:?}")))?;
        fixes.push(Fix {
            time,
            pos,
            accuracy_m: None,
        });
        from = body_end;
    }
    if fixes.is_empty() {
        return Err(bad(1, "no <trkpt> in the GPX"));
    }
    Ok(fixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubicka_csv_with_seconds_parses() {
        let fixes = parse_trace("lon,lat,t\n37.2,56.0,1.000000\n37.3,56.1,2.5\n").expect("parses");
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[1].pos, LatLon::new(56.1, 37.3));
        assert_eq!(fixes[1].time.timestamp_millis(), 2500);
    }

    #[test]
    fn rfc3339_times_and_accuracy_parse() {
        let text = "time,lat,lon,accuracy_m\n2024-05-01T10:00:00Z,41.1,-8.6,12\n";
        let fixes = parse_trace(text).expect("parses");
        assert_eq!(fixes[0].accuracy_m, Some(12.0));
        assert_eq!(fixes[0].time.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    }

    #[test]
    fn a_header_without_time_is_refused_with_its_line() {
        let err = parse_trace("lat,lon\n41,-8\n").expect_err("no time column");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn a_bad_number_names_its_line() {
        let err = parse_trace("lat,lon,t\n41,-8,0\n41,x,1\n").expect_err("bad lon");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn gpx_track_points_parse() {
        let gpx = r#"<?xml version="1.0"?>
<gpx version="1.1"><trk><trkseg>
<trkpt lat="41.15" lon='-8.61'><ele>10</ele><time>2024-05-01T10:00:00Z</time></trkpt>
<trkpt lon="-8.60" lat="41.16"><time>2024-05-01T10:00:05Z</time></trkpt>
</trkseg></trk></gpx>"#;
        let fixes = parse_trace(gpx).expect("parses");
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[0].pos, LatLon::new(41.15, -8.61));
        assert_eq!(fixes[1].pos, LatLon::new(41.16, -8.60));
        assert_eq!((fixes[1].time - fixes[0].time).num_seconds(), 5);
    }

    #[test]
    fn gpx_without_times_is_refused() {
        let err = parse_trace(r#"<gpx><trkpt lat="1" lon="2"/></gpx>"#).expect_err("no time");
        assert!(err.to_string().contains("time"), "{err}");
    }
}
