//! Trace files (a vehicle's fixes) parsed from text: CSV with a header naming
//! `lat`, `lon` and a time column (`t`, `time` or `timestamp`: RFC 3339 or seconds
//! since the Unix epoch), or GPX track points, with or without `<time>`. The
//! binary reads the file; this module only parses, so replay, simulation and
//! evaluation share it. Both readers are streaming parsers from maintained crates
//! (`csv`, `quick-xml`), linear in the file's size, and every error names its line.
//!
//! A GPX file without times (a drawn or exported route) is still a trace: its
//! fixes get times made up from the distance between them at a slow 10 m/s, at
//! least a second apart, so that no time-dependent term of the matcher (the
//! speed bound, silences, ordering) ever bites, and it is matched on geometry
//! alone. [`Trace::timed`] says which it was; the ETA evaluation refuses untimed
//! traces.

use chrono::{DateTime, TimeDelta, Utc};
use quick_xml::events::{BytesStart, Event};
use road_graph::LatLon;

use crate::error::{Error, Result};
use crate::matching::Fix;

/// A parsed trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub fixes: Vec<Fix>,
    /// Whether the file gave the fixes' times; when not, they are made up from
    /// the geometry (see the module's documentation).
    pub timed: bool,
}

/// The speed untimed fixes are spaced at, m/s: slow enough that the matcher's
/// speed bound (45 m/s) never decides anything.
const UNTIMED_SPEED_MPS: f64 = 10.0;

/// Parses a CSV or GPX trace (detected from its first non-blank character).
pub fn parse_trace(text: &str) -> Result<Trace> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('<') {
        parse_gpx(text)
    } else {
        parse_csv(text).map(|fixes| Trace { fixes, timed: true })
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
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    // Lines from byte offsets: the crate's own count leaves blank lines out, and
    // a record's offset is where the blank lines before it begin.
    let lines = std::cell::RefCell::new(Lines {
        text: text.as_bytes(),
        offset: 0,
        line: 1,
    });
    let line_at = |position: Option<&csv::Position>| {
        position.map_or(1, |p| {
            let bytes = text.as_bytes();
            let mut at = usize::try_from(p.byte()).unwrap_or(usize::MAX);
            while bytes.get(at).is_some_and(|b| *b == b'\n' || *b == b'\r') {
                at += 1;
            }
            lines.borrow_mut().at(at as u64)
        })
    };
    let line_of = |record: &csv::StringRecord| line_at(record.position());
    let csv_error = |e: csv::Error| {
        let line = line_at(e.position());
        bad(line, format!("not CSV: {e}"))
    };
    let header = loop {
        match records.next() {
            None => return Err(bad(1, "empty trace")),
            Some(Err(e)) => return Err(csv_error(e)),
            Some(Ok(r)) if r.iter().all(str::is_empty) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = line_of(&header);
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
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
    for record in records {
        let record = record.map_err(csv_error)?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let n = line_of(&record);
        let field = |col: usize, name: &str| {
            record
                .get(col)
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
        let accuracy_m = match accuracy_col.and_then(|c| record.get(c)) {
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

/// Counts lines as the reader moves on, so that finding the line of an offset
/// costs only the text since the last one (the old reader counted from the
/// start every time: quadratic).
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, offset: u64) -> usize {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if offset > self.offset {
            self.line += self.text[self.offset..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = offset;
        }
        self.line
    }
}

/// A track point being read: its position, its line and its time once seen.
struct OpenPoint {
    pos: LatLon,
    line: usize,
    time: Option<DateTime<Utc>>,
}

fn point_start(tag: &BytesStart<'_>, line: usize) -> Result<LatLon> {
    let coordinate = |name: &str| -> Result<f64> {
        let attribute = tag
            .try_get_attribute(name)
            .map_err(|e| bad(line, format!("<trkpt> attributes: {e}")))?
            .ok_or_else(|| bad(line, format!("<trkpt> without `{name}`")))?;
        let value = attribute
            .unescape_value()
            .map_err(|e| bad(line, format!("`{name}`: {e}")))?;
        value
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(line, format!("`{name}` is not a number: {value:?}")))
    };
    let pos = LatLon::new(coordinate("lat")?, coordinate("lon")?);
    if !pos.is_valid() {
        return Err(bad(
            line,
            format!("position out of range: {}, {}", pos.lat, pos.lon),
        ));
    }
    Ok(pos)
}

fn parse_gpx(text: &str) -> Result<Trace> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut lines = Lines {
        text: text.as_bytes(),
        offset: 0,
        line: 1,
    };
    // (position, its line, its time when the file has one)
    let mut points: Vec<(LatLon, usize, Option<DateTime<Utc>>)> = Vec::new();
    let mut open: Option<OpenPoint> = None;
    let mut in_time = false;
    let mut time_text = String::new();
    loop {
        let before = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            let line = lines.at(reader.error_position());
            bad(line, format!("not GPX: {e}"))
        })?;
        match event {
            Event::Start(tag) if tag.local_name().as_ref() == b"trkpt" => {
                let line = lines.at(before);
                if open.is_some() {
                    return Err(bad(line, "<trkpt> inside a <trkpt>"));
                }
                let pos = point_start(&tag, line)?;
                open = Some(OpenPoint {
                    pos,
                    line,
                    time: None,
                });
            }
            Event::Empty(tag) if tag.local_name().as_ref() == b"trkpt" => {
                let line = lines.at(before);
                points.push((point_start(&tag, line)?, line, None));
            }
            Event::Start(tag) if tag.local_name().as_ref() == b"time" && open.is_some() => {
                in_time = true;
                time_text.clear();
            }
            Event::Text(t) if in_time => {
                let piece = t.decode().map_err(|e| {
                    let line = lines.at(before);
                    bad(line, format!("<time>: {e}"))
                })?;
                time_text.push_str(&piece);
            }
            Event::End(tag) if tag.local_name().as_ref() == b"time" && in_time => {
                in_time = false;
                if let Some(point) = open.as_mut() {
                    let line = lines.at(before);
                    point.time = Some(
                        parse_time(&time_text)
                            .ok_or_else(|| bad(line, format!("bad <time>: {time_text:?}")))?,
                    );
                }
            }
            Event::End(tag) if tag.local_name().as_ref() == b"trkpt" => {
                if let Some(point) = open.take() {
                    points.push((point.pos, point.line, point.time));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(point) = open {
        return Err(bad(point.line, "unterminated <trkpt>"));
    }
    if points.is_empty() {
        return Err(bad(1, "no <trkpt> in the GPX"));
    }
    let timed = points.iter().filter(|p| p.2.is_some()).count();
    if timed == points.len() {
        let fixes = points
            .into_iter()
            .map(|(pos, _, time)| Fix {
                time: time.unwrap_or_default(),
                pos,
                accuracy_m: None,
            })
            .collect();
        return Ok(Trace { fixes, timed: true });
    }
    if timed > 0 {
        let line = points.iter().find(|p| p.2.is_none()).map_or(1, |p| p.1);
        return Err(bad(
            line,
            "<trkpt> without <time> in a GPX whose other points have one",
        ));
    }
    Ok(Trace {
        fixes: untimed_fixes(points.into_iter().map(|p| p.0)),
        timed: false,
    })
}

/// Fixes for positions with no times: from the Unix epoch, each after the last
/// by its straight distance at [`UNTIMED_SPEED_MPS`], at least a second.
fn untimed_fixes(positions: impl Iterator<Item = LatLon>) -> Vec<Fix> {
    let mut time = DateTime::<Utc>::UNIX_EPOCH;
    let mut last: Option<LatLon> = None;
    positions
        .map(|pos| {
            if let Some(prev) = last {
                let step_s = (road_graph::haversine_m(prev, pos) / UNTIMED_SPEED_MPS).max(1.0);
                time += TimeDelta::milliseconds((step_s * 1000.0).round() as i64);
            }
            last = Some(pos);
            Fix {
                time,
                pos,
                accuracy_m: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubicka_csv_with_seconds_parses() {
        let fixes = parse_trace("lon,lat,t\n37.2,56.0,1.000000\n37.3,56.1,2.5\n")
            .expect("parses")
            .fixes;
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[1].pos, LatLon::new(56.1, 37.3));
        assert_eq!(fixes[1].time.timestamp_millis(), 2500);
    }

    #[test]
    fn rfc3339_times_and_accuracy_parse() {
        let text = "time,lat,lon,accuracy_m\n2024-05-01T10:00:00Z,41.1,-8.6,12\n";
        let fixes = parse_trace(text).expect("parses").fixes;
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
        let trace = parse_trace(gpx).expect("parses");
        assert!(trace.timed);
        let fixes = trace.fixes;
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[0].pos, LatLon::new(41.15, -8.61));
        assert_eq!(fixes[1].pos, LatLon::new(41.16, -8.60));
        assert_eq!((fixes[1].time - fixes[0].time).num_seconds(), 5);
    }

    #[test]
    fn gpx_without_times_gets_times_from_its_geometry() {
        // Two points 1.11 km apart (0.01° of latitude), then one 3 m further.
        let trace = parse_trace(
            r#"<gpx><trk><trkseg><trkpt lat="41.00" lon="-8.6"/>
            <trkpt lat="41.01" lon="-8.6"></trkpt><trkpt lat="41.01003" lon="-8.6"/></trkseg></trk></gpx>"#,
        )
        .expect("an untimed GPX is a trace");
        assert!(!trace.timed);
        let t: Vec<i64> = trace
            .fixes
            .iter()
            .map(|f| f.time.timestamp_millis())
            .collect();
        assert_eq!(t[0], 0);
        assert!((t[1] - 111_195).abs() < 50, "1,112 m at 10 m/s: {t:?}");
        assert_eq!(t[2] - t[1], 1000, "at least a second apart: {t:?}");
    }

    #[test]
    fn a_gpx_that_mixes_timed_and_untimed_points_names_the_line() {
        let err = parse_trace(
            "<gpx>\n<trkpt lat=\"1\" lon=\"2\"><time>2024-05-01T10:00:00Z</time></trkpt>\n<trkpt lat=\"1\" lon=\"2.001\"/>\n</gpx>",
        )
        .expect_err("mixed");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn gpx_errors_name_their_line() {
        let err = parse_trace("<gpx>\n<trk>\n<trkpt lat=\"x\" lon=\"2\"/>\n</trk></gpx>")
            .expect_err("bad lat");
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("`lat` is not a number"), "{err}");
        let err = parse_trace("<gpx>\n<trkpt lat=\"1\" lon=\"2\">\n").expect_err("cut off");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn quoted_csv_fields_with_commas_parse() {
        let text = "\"name, with comma\",lat,lon,time\n\"Dock 3, north\",41.1,-8.6,1700000000\n\n\"x\",41.2,-8.5,1700000001\n";
        let fixes = parse_trace(text).expect("quoted fields").fixes;
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[1].pos, LatLon::new(41.2, -8.5));
        let err = parse_trace("lat,lon,t\n41,-8,0\n\n41,x,1\n").expect_err("bad lon");
        assert!(err.to_string().contains("line 4"), "{err}");
    }
}
