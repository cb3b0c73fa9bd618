//! The time zone of a place, for stops that come without one: an order's
//! windows are shown in its stops' local time, and a stop in Baltimore shown
//! in UTC is wrong by five hours. The zone comes from the time-zone boundary
//! polygons embedded in the binary (tzf-rs over tzf-dist's "lite" data, derived
//! from timezone-boundary-builder), so the lookup needs no network and no file.
//!
//! The finder is built once, on first use, then answers a point in well under
//! a microsecond. Measured (release build, 2-core machine): building it takes
//! 130-200 ms and about 31 MiB of memory; a lookup 0.15-0.3 µs (100,000
//! points across the United States). `tracker serve` builds it at start
//! ([`warm_up_time_zones`]) so the first order without a zone does not wait. A name
//! that chrono-tz does not know, or a point no zone covers, falls back to
//! UTC: the stop is still accepted, as a stop with an explicit zone would be.

use std::sync::LazyLock;

use chrono_tz::Tz;
use tzf_rs::DefaultFinder;

static FINDER: LazyLock<Option<DefaultFinder>> = LazyLock::new(|| {
    match DefaultFinder::from_tzb(tzf_dist::load_lite_tzb()) {
        Ok(finder) => Some(finder),
        Err(err) => {
            // Only a broken build can get here (the data is embedded).
            tracing::error!(error = %err, "the embedded time-zone data does not load; stops without a zone get UTC");
            None
        }
    }
});

/// Builds the time-zone finder now rather than on the first order whose
/// stop has no zone (see the module's figures).
pub fn warm_up_time_zones() {
    LazyLock::force(&FINDER);
}

/// The IANA zone at a point (`lat`, `lon` in degrees), UTC where none is known.
pub(crate) fn zone_at(lat: f64, lon: f64) -> Tz {
    let Some(finder) = FINDER.as_ref() else {
        return Tz::UTC;
    };
    finder
        .get_tz_name(lon, lat)
        .parse::<Tz>()
        .unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_get_their_own_zone() {
        // Baltimore's harbor, Phoenix (no daylight saving), Paris, Honolulu.
        assert_eq!(zone_at(39.2776, -76.6124), chrono_tz::America::New_York);
        assert_eq!(zone_at(33.4484, -112.0740), chrono_tz::America::Phoenix);
        assert_eq!(zone_at(48.8566, 2.3522), chrono_tz::Europe::Paris);
        assert_eq!(zone_at(21.3069, -157.8583), chrono_tz::Pacific::Honolulu);
    }
}
