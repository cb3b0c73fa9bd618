//! The analytics API's query strings, parsed and checked in one step into
//! plain values the store and the aggregation take: every failure names the
//! parameter (`group_by`, `from`, …), and unknown parameters are refused
//! rather than ignored, so a typo never returns unfiltered figures.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::accuracy::GroupBy;
use super::on_time::OnTimeBy;
use crate::error::{Error, Result};

/// The default range when `from` is not given: the last 30 days.
const DEFAULT_RANGE_DAYS: i64 = 30;
/// The default H3 resolution of lanes (cells of about 250 km², a metro area).
pub const DEFAULT_LANE_RES: u8 = 5;

/// Which predictions or stops a query covers, besides its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsFilter {
    /// On `predicted_at` (accuracy) or the arrival (on time); `from`
    /// included, `to` excluded.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub customer: Option<String>,
    pub vehicle_id: Option<String>,
    /// `pickup` or `delivery`.
    pub stop_kind: Option<String>,
}

/// `GET /api/v1/analytics/eta-accuracy`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyQuery {
    pub filter: AnalyticsFilter,
    pub group_by: GroupBy,
}

/// `GET /api/v1/analytics/on-time`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnTimeQuery {
    pub filter: AnalyticsFilter,
    pub group_by: OnTimeBy,
}

const FILTER_PARAMS: [&str; 5] = ["from", "to", "customer", "vehicle", "stop_kind"];

impl AccuracyQuery {
    pub fn parse(params: &HashMap<String, String>, now: DateTime<Utc>) -> Result<AccuracyQuery> {
        refuse_unknown(params, &["group_by", "lane_res"])?;
        // Checked whatever the grouping: a bad parameter is never ignored.
        let lane = lane_res(params)?;
        let group_by = match params.get("group_by").map(String::as_str) {
            None | Some("horizon") => GroupBy::Horizon,
            Some("stop_kind") => GroupBy::StopKind,
            Some("customer") => GroupBy::Customer,
            Some("vehicle") => GroupBy::Vehicle,
            Some("lane") => GroupBy::Lane(lane),
            Some("day") => GroupBy::Day,
            Some(other) => {
                return Err(Error::invalid(
                    "group_by",
                    format!(
                        "`{other}` is not one of horizon, stop_kind, customer, vehicle, lane, day"
                    ),
                ));
            }
        };
        Ok(AccuracyQuery {
            filter: AnalyticsFilter::parse(params, now)?,
            group_by,
        })
    }
}

impl OnTimeQuery {
    pub fn parse(params: &HashMap<String, String>, now: DateTime<Utc>) -> Result<OnTimeQuery> {
        refuse_unknown(params, &["group_by", "lane_res"])?;
        // Checked whatever the grouping: a bad parameter is never ignored.
        let lane = lane_res(params)?;
        let group_by = match params.get("group_by").map(String::as_str) {
            None | Some("day") => OnTimeBy::Day,
            Some("customer") => OnTimeBy::Customer,
            Some("lane") => OnTimeBy::Lane(lane),
            Some(other) => {
                return Err(Error::invalid(
                    "group_by",
                    format!("`{other}` is not one of customer, lane, day"),
                ));
            }
        };
        Ok(OnTimeQuery {
            filter: AnalyticsFilter::parse(params, now)?,
            group_by,
        })
    }
}

impl AnalyticsFilter {
    /// `from`, `to` (RFC 3339; default the last 30 days up to now),
    /// `customer`, `vehicle`, `stop_kind`.
    pub fn parse(params: &HashMap<String, String>, now: DateTime<Utc>) -> Result<AnalyticsFilter> {
        let to = time_param(params, "to")?.unwrap_or(now);
        let from = time_param(params, "from")?.unwrap_or(to - Duration::days(DEFAULT_RANGE_DAYS));
        if from >= to {
            return Err(Error::invalid("from", "must be before `to`"));
        }
        let stop_kind = params.get("stop_kind").cloned();
        if let Some(kind) = &stop_kind
            && kind != "pickup"
            && kind != "delivery"
        {
            return Err(Error::invalid(
                "stop_kind",
                format!("`{kind}` is not pickup or delivery"),
            ));
        }
        let text = |name: &str| -> Result<Option<String>> {
            match params.get(name) {
                Some(v) if v.is_empty() => Err(Error::invalid(name, "must not be empty")),
                other => Ok(other.cloned()),
            }
        };
        Ok(AnalyticsFilter {
            from,
            to,
            customer: text("customer")?,
            vehicle_id: text("vehicle")?,
            stop_kind,
        })
    }

    /// Only a range: for aggregates that take no other filter.
    pub fn parse_range(
        params: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<AnalyticsFilter> {
        refuse_unknown_of(params, &["from", "to"])?;
        AnalyticsFilter::parse(params, now)
    }
}

fn lane_res(params: &HashMap<String, String>) -> Result<road_graph::Resolution> {
    let Some(text) = params.get("lane_res") else {
        return road_graph::h3_resolution(DEFAULT_LANE_RES)
            .map_err(|e| Error::invalid("lane_res", e.to_string()));
    };
    text.parse::<u8>()
        .ok()
        .and_then(|r| road_graph::h3_resolution(r).ok())
        .ok_or_else(|| Error::invalid("lane_res", "must be an H3 resolution from 0 to 15"))
}

fn time_param(params: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>> {
    params
        .get(name)
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::invalid(name, "must be an RFC 3339 time"))
        })
        .transpose()
}

fn refuse_unknown(params: &HashMap<String, String>, own: &[&str]) -> Result<()> {
    let mut known: Vec<&str> = FILTER_PARAMS.to_vec();
    known.extend_from_slice(own);
    refuse_unknown_of(params, &known)
}

fn refuse_unknown_of(params: &HashMap<String, String>, known: &[&str]) -> Result<()> {
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    match names
        .into_iter()
        .find(|name| !known.contains(&name.as_str()))
    {
        Some(name) => Err(Error::invalid(
            name.as_str(),
            format!("unknown parameter; expected one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn field_of(err: Error) -> String {
        match err {
            Error::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let now = Utc::now();
        let bad = [
            (params(&[("group_by", "weather")]), "group_by"),
            (params(&[("from", "yesterday")]), "from"),
            (
                params(&[("group_by", "lane"), ("lane_res", "16")]),
                "lane_res",
            ),
            (params(&[("stop_kind", "depot")]), "stop_kind"),
            (params(&[("customr", "Acme")]), "customr"),
            (
                params(&[
                    ("from", "2026-01-02T00:00:00Z"),
                    ("to", "2026-01-01T00:00:00Z"),
                ]),
                "from",
            ),
        ];
        for (query, field) in bad {
            let err = AccuracyQuery::parse(&query, now).expect_err("refused");
            assert_eq!(field_of(err), field);
        }
        let ok = AccuracyQuery::parse(&params(&[("group_by", "lane"), ("lane_res", "7")]), now)
            .expect("valid");
        assert_eq!(ok.filter.to, now);
        assert_eq!(ok.filter.from, now - Duration::days(30));
        let err = OnTimeQuery::parse(&params(&[("group_by", "horizon")]), now).expect_err("no");
        assert_eq!(field_of(err), "group_by");
    }
}
