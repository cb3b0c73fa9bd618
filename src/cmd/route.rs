//! `tracker route`: the fastest truck route between two points, with its length,
//! its time and its line (GeoJSON), on the map's free-flow truck speeds.
//!
//! Points are snapped to the nearest road within `--snap-radius-m`, both
//! directions where it is two-way; one-way streets, turn restrictions and the
//! no-U-turn rule apply. `--depart` picks the hour of the week for the time-of-day
//! profile; maps carry no learned profile yet (the traffic model learns one while
//! running), so today the flat profile applies and the departure does not change
//! the result.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use engine::{HourOfWeek, Metric, Snap, WeeklyProfile};
use road_graph::LatLon;
use serde_json::json;

use super::{RouterUse, bad_input, open_routing_map, truck_router};

#[derive(Debug, clap::Args)]
pub(crate) struct RouteArgs {
    /// The map: an `.osm.pbf` extract or a `.graph` snapshot.
    #[arg(long)]
    map: PathBuf,
    /// Start, as `LAT,LON` in degrees.
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    from: String,
    /// Destination, as `LAT,LON` in degrees.
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    to: String,
    /// Departure time (RFC 3339); its own UTC offset gives the local hour.
    #[arg(long, value_name = "RFC3339")]
    depart: Option<String>,
    /// Print JSON: `{"distance_m", "duration_s", "geometry"}` and more.
    #[arg(long)]
    json: bool,
    /// How far from a road a point may lie, metres.
    #[arg(long, default_value_t = 500.0)]
    snap_radius_m: f64,
}

/// The arguments, validated.
#[derive(Debug)]
struct RouteRequest {
    from: LatLon,
    to: LatLon,
    depart: Option<DateTime<FixedOffset>>,
}

fn parse_point(flag: &str, text: &str) -> anyhow::Result<LatLon> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [lat, lon] = parts.as_slice() else {
        return Err(bad_input(format!("{flag} {text:?}: expected LAT,LON")));
    };
    let parse = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| bad_input(format!("{flag} {text:?}: {s:?} is not a number")))
    };
    let p = LatLon::new(parse(lat)?, parse(lon)?);
    if !p.is_valid() {
        return Err(bad_input(format!(
            "{flag} {text:?}: latitude or longitude out of range"
        )));
    }
    Ok(p)
}

impl RouteArgs {
    fn validate(&self) -> anyhow::Result<RouteRequest> {
        if self.snap_radius_m.is_nan()
            || self.snap_radius_m <= 0.0
            || self.snap_radius_m.is_infinite()
        {
            return Err(bad_input(format!(
                "--snap-radius-m {}: must be a positive number",
                self.snap_radius_m
            )));
        }
        let depart = match &self.depart {
            None => None,
            Some(text) => Some(DateTime::parse_from_rfc3339(text).map_err(|e| {
                bad_input(format!("--depart {text:?}: not an RFC 3339 time ({e})"))
            })?),
        };
        Ok(RouteRequest {
            from: parse_point("--from", &self.from)?,
            to: parse_point("--to", &self.to)?,
            depart,
        })
    }
}

pub(crate) fn run(args: RouteArgs) -> anyhow::Result<()> {
    let request = args.validate()?;
    let (road_graph::Snapshot { graph, .. }, prepared) = open_routing_map(&args.map)?;
    let graph = Arc::new(graph);
    let free_flow = Metric::free_flow(&graph);
    let metric = match request.depart {
        Some(t) => WeeklyProfile::flat(&graph).metric_at(&free_flow, HourOfWeek::from_time(t)),
        None => free_flow,
    };
    // The endpoints are snapped while the router's preparation is checked: the
    // two are independent, and the checks take most of a start.
    let snap = |flag: &str, p: LatLon| {
        Snap::nearest(&graph, p, args.snap_radius_m).ok_or_else(|| {
            bad_input(format!(
                "{flag} {},{}: no truck road within {} m",
                p.lat, p.lon, args.snap_radius_m
            ))
        })
    };
    let (endpoints, router) = rayon::join(
        || anyhow::Ok((snap("--from", request.from)?, snap("--to", request.to)?)),
        || {
            truck_router(
                &args.map,
                prepared,
                graph.clone(),
                metric,
                RouterUse::QueriesOnly,
            )
        },
    );
    let (from, to) = endpoints?;
    let (router, notice) = router?;
    if let Some(notice) = notice {
        eprintln!("note: {notice}");
    }
    let route = router
        .route(&from, &to)
        .ok_or_else(|| bad_input("no truck route between --from and --to on this map"))?;

    let mut line = route.geometry(&graph);
    if line.len() == 1 {
        // A LineString needs two positions, even for a route of no length.
        line.push(line[0]);
    }
    let round = |x: f64, digits: i32| {
        let scale = 10f64.powi(digits);
        (x * scale).round() / scale
    };
    let coordinates: Vec<[f64; 2]> = line
        .iter()
        .map(|p| [round(p.lon, 6), round(p.lat, 6)])
        .collect();
    let start = graph.point_along_edge(route.from.edge, route.from.offset_m);
    let end = graph.point_along_edge(route.to.edge, route.to.offset_m);
    if args.json {
        let value = json!({
            "distance_m": round(route.distance_m, 1),
            "duration_s": round(route.duration_s(), 1),
            "geometry": {"type": "LineString", "coordinates": coordinates},
            "snapped_from": [round(start.lon, 6), round(start.lat, 6)],
            "snapped_to": [round(end.lon, 6), round(end.lat, 6)],
            "way_ids": route.way_ids(&graph),
            "depart": request.depart.map(|t| t.to_rfc3339()),
        });
        println!("{value}");
    } else {
        let minutes = (route.duration_s() / 60.0).floor();
        println!("distance: {:.2} km", route.distance_m / 1000.0);
        println!(
            "duration: {minutes:.0} min {:.0} s",
            route.duration_s() - minutes * 60.0
        );
        println!("from:     {:.6},{:.6} (snapped)", start.lat, start.lon);
        println!("to:       {:.6},{:.6} (snapped)", end.lat, end.lon);
        println!(
            "edges:    {}, ways: {}",
            route.edges.len(),
            route.way_ids(&graph).len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: &str, to: &str, depart: Option<&str>) -> RouteArgs {
        RouteArgs {
            map: PathBuf::from("unused"),
            from: from.to_string(),
            to: to.to_string(),
            depart: depart.map(str::to_string),
            json: true,
            snap_radius_m: 500.0,
        }
    }

    #[test]
    fn points_and_departures_are_validated_before_the_map_is_read() {
        assert!(args("41.15,-8.61", "41.16,-8.60", None).validate().is_ok());
        assert!(
            args(
                "41.15, -8.61",
                "41.16,-8.60",
                Some("2025-03-03T08:00:00+00:00")
            )
            .validate()
            .is_ok()
        );
        for (from, depart) in [
            ("41.15", None),
            ("91,0", None),
            ("north,west", None),
            ("41.15,-8.61", Some("tomorrow")),
        ] {
            let err = args(from, "41.16,-8.60", depart)
                .validate()
                .expect_err("bad input");
            assert!(
                err.downcast_ref::<super::super::BadInput>().is_some(),
                "{err}"
            );
        }
    }
}
