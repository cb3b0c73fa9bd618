//! Stops as the ETA sees them: an appointment window (absolute instants, built
//! from local times in the receiver's time zone), whether the receiver takes a
//! truck early, and how long the truck stays.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When a receiver takes the truck: from `from` to `to`, UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl AppointmentWindow {
    /// A window from two instants; `to` must not be before `from`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<AppointmentWindow> {
        if to < from {
            return Err(Error::InvalidConfig {
                setting: "appointment window",
                reason: format!("ends ({to}) before it starts ({from})"),
            });
        }
        Ok(AppointmentWindow { from, to })
    }

    /// A window given as local wall-clock times on a date in the receiver's time
    /// zone, e.g. 08:00–14:00 America/Chicago. A window that ends before it
    /// starts runs over midnight. A local time that does not exist (the spring
    /// forward gap) is moved to the first instant after the gap; an ambiguous one
    /// (fall back) takes the earlier instant.
    pub fn local(
        date: NaiveDate,
        from: NaiveTime,
        to: NaiveTime,
        time_zone: Tz,
    ) -> Result<AppointmentWindow> {
        let start = resolve(time_zone, date.and_time(from))?;
        let end_date = if to < from {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        let end = resolve(time_zone, end_date.and_time(to))?;
        AppointmentWindow::new(start, end)
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at <= self.to
    }
}

fn resolve(time_zone: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>> {
    match time_zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            // Gaps are at most a few hours; step forward a minute at a time.
            let mut probe = local;
            for _ in 0..(4 * 60) {
                probe += chrono::Duration::minutes(1);
                if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) =
                    time_zone.from_local_datetime(&probe)
                {
                    return Ok(t.with_timezone(&Utc));
                }
            }
            Err(Error::InvalidConfig {
                setting: "appointment window",
                reason: format!("{local} does not exist in {time_zone}"),
            })
        }
    }
}

/// One remaining stop of an order, for the ETA.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<AppointmentWindow>,
    /// Whether the receiver takes the truck before the window opens; when not, an
    /// early truck waits (`window_wait`).
    pub early_allowed: bool,
    /// Time spent at the stop before leaving for the next one, seconds; `None`
    /// takes the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_windows_follow_the_receivers_clock_and_daylight_saving() {
        let chicago: Tz = "America/Chicago".parse().expect("known zone");
        let date = NaiveDate::from_ymd_opt(2025, 7, 1).expect("date");
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        let summer = AppointmentWindow::local(date, at(8, 0), at(14, 0), chicago).expect("window");
        assert_eq!(
            summer.from.to_rfc3339(),
            "2025-07-01T13:00:00+00:00",
            "CDT is UTC-5"
        );
        let winter_date = NaiveDate::from_ymd_opt(2025, 1, 15).expect("date");
        let winter =
            AppointmentWindow::local(winter_date, at(8, 0), at(14, 0), chicago).expect("window");
        assert_eq!(
            winter.from.to_rfc3339(),
            "2025-01-15T14:00:00+00:00",
            "CST is UTC-6"
        );
        let overnight =
            AppointmentWindow::local(date, at(22, 0), at(6, 0), chicago).expect("window");
        assert_eq!((overnight.to - overnight.from).num_hours(), 8);
        let gap_day = NaiveDate::from_ymd_opt(2025, 3, 9).expect("date");
        let gap = AppointmentWindow::local(gap_day, at(2, 30), at(5, 0), chicago).expect("window");
        assert_eq!(
            gap.from.to_rfc3339(),
            "2025-03-09T08:00:00+00:00",
            "02:30 does not exist: 03:00 CDT"
        );
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_refused() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        assert!(AppointmentWindow::new(t, t - chrono::Duration::seconds(1)).is_err());
    }
}
