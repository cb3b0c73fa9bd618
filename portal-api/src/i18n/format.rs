//! Times and durations the way a language writes them, in a stop's own time
//! zone with its abbreviation: English "Mar 4, 2:30 PM EST" (12-hour clock),
//! Spanish "4 mar 14:30 CET", French "4 mars 14:30 CET" (24-hour). The
//! patterns, month names and clock live in the message files (`fmt.*`), and
//! the page's script assembles the same pieces from the same table, with
//! [`zone_names`] to name a zone's offsets as chrono-tz does, so a time the
//! script rewrites reads exactly like the one the server wrote.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::Lang;

/// The parts of a local time the patterns use.
struct LocalParts {
    month: String,
    day: u32,
    clock: String,
    zone: String,
    date: chrono::NaiveDate,
}

fn parts(lang: Lang, t: DateTime<Utc>, tz: Tz) -> LocalParts {
    let local = t.with_timezone(&tz);
    let month = lang
        .t("fmt.months")
        .split(' ')
        .nth(local.month0() as usize)
        .unwrap_or_default()
        .to_owned();
    LocalParts {
        month,
        day: local.day(),
        clock: clock(lang, local.hour(), local.minute()),
        zone: local.format("%Z").to_string(),
        date: local.date_naive(),
    }
}

/// `2:30 PM` on a 12-hour clock, `14:30` on a 24-hour one.
fn clock(lang: Lang, hour: u32, minute: u32) -> String {
    if lang.t("fmt.clock") == "12" {
        let h12 = if hour.is_multiple_of(12) {
            12
        } else {
            hour % 12
        };
        let half = if hour < 12 { "fmt.am" } else { "fmt.pm" };
        format!("{h12}:{minute:02} {}", lang.t(half))
    } else {
        format!("{hour:02}:{minute:02}")
    }
}

/// A time in zone `tz`: "Mar 4, 2:30 PM EST" / "4 mar 14:30 CET".
pub(crate) fn time_label(lang: Lang, t: DateTime<Utc>, tz: Tz) -> String {
    let p = parts(lang, t, tz);
    lang.tf(
        "fmt.time",
        &[
            ("month", &p.month),
            ("day", &p.day.to_string()),
            ("clock", &p.clock),
            ("zone", &p.zone),
        ],
    )
}

/// A window in zone `tz`: one date and one abbreviation when both ends share
/// them ("Mar 4, 8:00 AM – 10:00 AM EST"), else both ends in full, so a
/// window across midnight or a change of daylight saving time says so
/// ("Nov 2, 1:30 AM EDT – Nov 2, 1:30 AM EST").
pub(crate) fn window_label(lang: Lang, from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> String {
    let a = parts(lang, from, tz);
    let b = parts(lang, to, tz);
    if a.date == b.date && a.zone == b.zone {
        lang.tf(
            "fmt.window_day",
            &[
                ("month", &a.month),
                ("day", &a.day.to_string()),
                ("from", &a.clock),
                ("to", &b.clock),
                ("zone", &b.zone),
            ],
        )
    } else {
        lang.tf(
            "fmt.window_span",
            &[
                ("from", &time_label(lang, from, tz)),
                ("to", &time_label(lang, to, tz)),
            ],
        )
    }
}

/// A duration as the page says it: "45 s", "12 min", "2 h 5 min".
pub(crate) fn duration_label(lang: Lang, seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 90 {
        lang.tf("fmt.seconds", &[("n", &seconds.to_string())])
    } else if seconds < 90 * 60 {
        lang.tf("fmt.minutes", &[("n", &((seconds + 30) / 60).to_string())])
    } else {
        lang.tf(
            "fmt.hours_minutes",
            &[
                ("h", &(seconds / 3600).to_string()),
                ("m", &((seconds % 3600) / 60).to_string()),
            ],
        )
    }
}

/// The abbreviations zone `tz` uses within a year either side of `around`,
/// by UTC offset in minutes (`"-300": "EST"`). The script reads the offset of
/// a time from the browser and its name from here, since browsers name many
/// zones differently (`GMT+1` for `CET`).
pub(crate) fn zone_names(tz: Tz, around: DateTime<Utc>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    // Weekly samples meet every offset a zone keeps for more than a week.
    for week in -53..=53 {
        let t = around + chrono::Duration::weeks(week);
        let offset = tz.offset_from_utc_datetime(&t.naive_utc());
        let minutes = offset.fix().local_minus_utc() / 60;
        names
            .entry(minutes.to_string())
            .or_insert_with(|| t.with_timezone(&tz).format("%Z").to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test time")
    }

    fn zone(name: &str) -> Tz {
        name.parse().expect("a test zone")
    }

    #[test]
    fn english_uses_a_12_hour_clock_and_spanish_and_french_24() {
        let t = at("2026-03-04T19:30:00Z");
        let ny = zone("America/New_York");
        assert_eq!(time_label(Lang::En, t, ny), "Mar 4, 2:30 PM EST");
        assert_eq!(time_label(Lang::Es, t, ny), "4 mar 14:30 EST");
        assert_eq!(time_label(Lang::Fr, t, ny), "4 mars 14:30 EST");
        let paris = zone("Europe/Paris");
        assert_eq!(time_label(Lang::Es, t, paris), "4 mar 20:30 CET");
        // Midnight and noon on the 12-hour clock.
        assert_eq!(
            time_label(Lang::En, at("2026-03-05T05:05:00Z"), ny),
            "Mar 5, 12:05 AM EST"
        );
        assert_eq!(
            time_label(Lang::En, at("2026-03-05T17:00:00Z"), ny),
            "Mar 5, 12:00 PM EST"
        );
    }

    #[test]
    fn a_window_on_one_day_names_the_date_and_zone_once() {
        let ny = zone("America/New_York");
        let (from, to) = (at("2025-11-25T13:00:00Z"), at("2025-11-25T15:00:00Z"));
        assert_eq!(
            window_label(Lang::En, from, to, ny),
            "Nov 25, 8:00 AM – 10:00 AM EST"
        );
        assert_eq!(
            window_label(Lang::Fr, from, to, ny),
            "25 nov. 08:00–10:00 EST"
        );
    }

    #[test]
    fn a_window_across_the_end_of_daylight_saving_names_both_zones() {
        // 2 Nov 2025, New York: 01:30 EDT, then the clocks go back and 01:30
        // comes again as EST, an hour later.
        let ny = zone("America/New_York");
        let (from, to) = (at("2025-11-02T05:30:00Z"), at("2025-11-02T06:30:00Z"));
        assert_eq!(
            window_label(Lang::En, from, to, ny),
            "Nov 2, 1:30 AM EDT – Nov 2, 1:30 AM EST"
        );
        assert_eq!(
            window_label(Lang::Es, from, to, ny),
            "2 nov 01:30 EDT – 2 nov 01:30 EST"
        );
        // Spring forward in Paris: 01:30 CET to 03:30 CEST is one hour.
        let paris = zone("Europe/Paris");
        let (from, to) = (at("2026-03-29T00:30:00Z"), at("2026-03-29T01:30:00Z"));
        assert_eq!(
            window_label(Lang::Fr, from, to, paris),
            "29 mars 01:30 CET – 29 mars 03:30 CEST"
        );
    }

    #[test]
    fn a_window_across_midnight_shows_both_dates() {
        let ny = zone("America/New_York");
        let (from, to) = (at("2025-11-26T03:00:00Z"), at("2025-11-26T07:00:00Z"));
        assert_eq!(
            window_label(Lang::En, from, to, ny),
            "Nov 25, 10:00 PM EST – Nov 26, 2:00 AM EST"
        );
    }

    #[test]
    fn durations_round_as_the_page_always_did() {
        assert_eq!(duration_label(Lang::En, -3), "0 s");
        assert_eq!(duration_label(Lang::Fr, 89), "89 s");
        assert_eq!(duration_label(Lang::Es, 150), "3 min");
        assert_eq!(duration_label(Lang::En, 2 * 3600 + 5 * 60), "2 h 5 min");
    }

    #[test]
    fn a_zone_names_both_its_offsets() {
        let names = zone_names(zone("America/New_York"), at("2026-01-15T00:00:00Z"));
        assert_eq!(names.get("-300").map(String::as_str), Some("EST"));
        assert_eq!(names.get("-240").map(String::as_str), Some("EDT"));
        assert_eq!(names.len(), 2);
    }
}
