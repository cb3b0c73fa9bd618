//! Scenario tests of the decoders and validation: a real-looking message from each
//! vendor decodes to the canonical position in canonical units, and every rule
//! rejects what it should with its reason code.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use engine::{PositionSource, TenantId, VehicleId};
use ingest::{Envelope, Format, RejectReason, ValidationRules, decode, resolve_format};

const RULES: ValidationRules = ValidationRules::RECOMMENDED;

/// The tenant the source (an API key, a bound topic) vouches for.
static TENANT: LazyLock<TenantId> = LazyLock::new(|| TenantId("ten_test".into()));

fn bound() -> Envelope<'static> {
    Envelope::bound(&TENANT)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn reason(format: Format, json: &str) -> RejectReason {
    match decode(format, json.as_bytes(), bound(), now(), &RULES) {
        Ok(p) => panic!("expected a rejection, decoded {p:?}"),
        Err(r) => r.reason,
    }
}

#[test]
fn canonical_position_round_trips() {
    let json = r#"{"vehicle_id":"TRK-7","time":"2024-05-14T11:59:30Z","lat":41.15,"lon":-8.61,
                   "speed_mps":22.5,"heading_deg":270.0,"hos_drive_remaining_s":3600}"#;
    let p = decode(Format::Canonical, json.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id, VehicleId("TRK-7".into()));
    assert_eq!(
        p.time,
        Utc.with_ymd_and_hms(2024, 5, 14, 11, 59, 30)
            .single()
            .expect("t")
    );
    assert_eq!((p.lat, p.lon), (41.15, -8.61));
    assert_eq!(p.speed_mps, Some(22.5));
    assert_eq!(p.heading_deg, Some(270.0));
    assert_eq!(p.hos_drive_remaining_s, Some(3600));
    assert_eq!(p.source, PositionSource::Canonical);

    let again = decode(
        Format::Canonical,
        &ingest::encode_canonical(&p),
        bound(),
        now(),
        &RULES,
    );
    assert_eq!(again, Ok(p));
}

#[test]
fn canonical_keeps_a_declared_source_and_takes_the_vehicle_from_the_key() {
    let json =
        r#"{"time":"2024-05-14T11:59:30+01:00","lat":41.15,"lon":-8.61,"source":"simulator"}"#;
    let p = decode(
        Format::Canonical,
        json.as_bytes(),
        bound().with_key(Some("TRK-9")),
        now(),
        &RULES,
    )
    .expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "TRK-9");
    assert_eq!(p.source, PositionSource::Simulator);
    // The +01:00 offset is normalized to UTC.
    assert_eq!(
        p.time,
        Utc.with_ymd_and_hms(2024, 5, 14, 10, 59, 30)
            .single()
            .expect("t")
    );
}

#[test]
fn samsara_stats_in_mph_become_metres_per_second() {
    let json = r#"{"id":"212014918086169","name":"Truck A7",
        "gps":{"time":"2024-05-14T11:58:00Z","latitude":39.96,"longitude":-82.99,
               "headingDegrees":90,"speedMilesPerHour":60,
               "reverseGeo":{"formattedLocation":"Columbus, OH"},"isEcuSpeed":true}}"#;
    let p = decode(Format::Samsara, json.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "212014918086169");
    assert!((p.speed_mps.expect("speed") - 26.8224).abs() < 1e-9);
    assert_eq!(p.heading_deg, Some(90.0));
    assert_eq!(p.source, PositionSource::Samsara);
}

#[test]
fn samsara_feed_with_one_point_and_bare_gps_object() {
    let feed = r#"{"id":"42","gps":[{"time":"2024-05-14T11:58:00Z","latitude":39.96,"longitude":-82.99}]}"#;
    assert!(decode(Format::Samsara, feed.as_bytes(), bound(), now(), &RULES).is_ok());
    let two = r#"{"id":"42","gps":[{"time":"2024-05-14T11:58:00Z","latitude":39.96,"longitude":-82.99},
                                   {"time":"2024-05-14T11:58:05Z","latitude":39.96,"longitude":-82.98}]}"#;
    assert_eq!(reason(Format::Samsara, two), RejectReason::Malformed);
    let bare = r#"{"time":"2024-05-14T11:58:00Z","latitude":39.96,"longitude":-82.99,"speedMilesPerHour":0}"#;
    let p = decode(
        Format::Samsara,
        bare.as_bytes(),
        bound().with_key(Some("42")),
        now(),
        &RULES,
    )
    .expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "42");
}

#[test]
fn motive_webhook_and_api_items_in_imperial_units() {
    let webhook = r#"{"action":"vehicle_location_updated","id":991,"vehicle_id":12345,
        "vehicle_number":"T-100","located_at":"2024-05-14T11:57:00Z","lat":40.44,"lon":-79.99,
        "bearing":180.5,"speed":50,"odometer":120000.5,"description":"Pittsburgh, PA"}"#;
    let p = decode(Format::Motive, webhook.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "12345");
    assert!((p.speed_mps.expect("speed") - 22.352).abs() < 1e-9);
    assert!((p.odometer_m.expect("odometer") - 120_000.5 * 1609.344).abs() < 1e-6);
    assert_eq!(p.heading_deg, Some(180.5));

    let v3 = r#"{"vehicle_location":{"id":"a1","located_at":"2024-05-14T11:57:00Z","lat":40.44,
        "lon":-79.99,"bearing":0,"speed":0,"vehicle":{"id":777,"number":"T-7"}}}"#;
    let p = decode(Format::Motive, v3.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "777");

    let v1 = r#"{"vehicle":{"id":555,"number":"T-5","current_location":{"lat":40.44,"lon":-79.99,
        "located_at":"2024-05-14T11:57:00Z","speed":10}}}"#;
    let p = decode(Format::Motive, v1.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "555");
}

#[test]
fn geotab_log_record_in_kilometres_per_hour() {
    let json = r#"{"id":"b2A3F","dateTime":"2024-05-14T11:59:59.123Z","latitude":43.65,
                   "longitude":-79.38,"speed":90,"device":{"id":"b1F"}}"#;
    let p = decode(Format::Geotab, json.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.vehicle_id.as_str(), "b1F");
    assert!((p.speed_mps.expect("speed") - 25.0).abs() < 1e-9);
    assert_eq!(p.time.timestamp_subsec_millis(), 123);
    assert_eq!(p.source, PositionSource::Geotab);
}

#[test]
fn epoch_seconds_and_milliseconds_are_both_times() {
    let secs = now().timestamp() - 10;
    let a = format!(r#"{{"vehicle_id":"v","time":{secs},"lat":1,"lon":1}}"#);
    let b = format!(
        r#"{{"vehicle_id":"v","time":{},"lat":1,"lon":1}}"#,
        secs * 1000
    );
    let pa = decode(Format::Canonical, a.as_bytes(), bound(), now(), &RULES).expect("seconds");
    let pb = decode(Format::Canonical, b.as_bytes(), bound(), now(), &RULES).expect("millis");
    assert_eq!(pa.time, pb.time);
}

#[test]
fn every_rule_rejects_with_its_reason() {
    let c = Format::Canonical;
    let fix =
        |fields: &str| format!(r#"{{"vehicle_id":"v1","time":"2024-05-14T11:59:00Z",{fields}}}"#);
    assert_eq!(reason(c, "not json"), RejectReason::Malformed);
    assert_eq!(
        reason(c, r#"{"vehicle_id":"v1","lat":1,"lon":1}"#),
        RejectReason::Malformed
    );
    assert_eq!(
        reason(c, r#"{"time":"2024-05-14T11:59:00Z","lat":1,"lon":1}"#),
        RejectReason::MissingVehicleId
    );
    assert_eq!(
        reason(
            c,
            r#"{"vehicle_id":"  ","time":"2024-05-14T11:59:00Z","lat":1,"lon":1}"#
        ),
        RejectReason::InvalidVehicleId
    );
    assert_eq!(
        reason(
            c,
            r#"{"vehicle_id":"v1","time":"yesterday","lat":1,"lon":1}"#
        ),
        RejectReason::InvalidTime
    );
    assert_eq!(
        reason(c, &fix(r#""lat":91,"lon":1"#)),
        RejectReason::OutOfRange
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":-180.5"#)),
        RejectReason::OutOfRange
    );
    assert_eq!(
        reason(c, &fix(r#""lat":0,"lon":0.0"#)),
        RejectReason::NullIsland
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":1,"speed_mps":-1"#)),
        RejectReason::ImplausibleSpeed
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":1,"speed_mps":80"#)),
        RejectReason::ImplausibleSpeed
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":1,"heading_deg":400"#)),
        RejectReason::InvalidHeading
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":1,"odometer_m":-5"#)),
        RejectReason::InvalidOdometer
    );
    assert_eq!(
        reason(c, &fix(r#""lat":1,"lon":1,"accuracy_m":-5"#)),
        RejectReason::InvalidAccuracy
    );
    assert_eq!(
        reason(
            c,
            r#"{"vehicle_id":"v1","time":"2024-05-14T12:10:00Z","lat":1,"lon":1}"#
        ),
        RejectReason::FutureTime
    );
    assert_eq!(
        reason(
            c,
            r#"{"vehicle_id":"v1","time":"2024-04-01T12:00:00Z","lat":1,"lon":1}"#
        ),
        RejectReason::StaleTime
    );
    // Geotab speeds in km/h: 250 km/h is a glitch even though 250 m/s is the
    // number a unit mix-up would check.
    let geotab = r#"{"dateTime":"2024-05-14T11:59:00Z","latitude":1,"longitude":1,"speed":250,"device":{"id":"g"}}"#;
    assert_eq!(
        reason(Format::Geotab, geotab),
        RejectReason::ImplausibleSpeed
    );
    let big = format!(
        r#"{{"vehicle_id":"{}","time":"2024-05-14T11:59:00Z","lat":1,"lon":1}}"#,
        "x".repeat(70_000)
    );
    assert_eq!(reason(c, &big), RejectReason::TooLarge);
}

#[test]
fn heading_of_360_is_north() {
    let json =
        r#"{"vehicle_id":"v","time":"2024-05-14T11:59:00Z","lat":1,"lon":1,"heading_deg":360}"#;
    let p = decode(Format::Canonical, json.as_bytes(), bound(), now(), &RULES).expect("valid");
    assert_eq!(p.heading_deg, Some(0.0));
}

#[test]
fn format_header_wins_and_unknown_names_are_rejected() {
    assert_eq!(resolve_format(None, Format::Motive), Ok(Format::Motive));
    assert_eq!(
        resolve_format(Some(b"Geotab"), Format::Motive),
        Ok(Format::Geotab)
    );
    let err = resolve_format(Some(b"omnitracs"), Format::Canonical).expect_err("unknown");
    assert_eq!(err.reason, RejectReason::UnknownFormat);
}

#[test]
fn every_vendor_encoding_decodes_back_to_the_position() {
    let p = engine::Position {
        tenant_id: engine::TenantId("ten_test".into()),
        vehicle_id: VehicleId("TRK-1".into()),
        time: now() - chrono::TimeDelta::milliseconds(12_345),
        lat: 41.1579,
        lon: -8.6291,
        speed_mps: Some(17.5),
        heading_deg: Some(123.0),
        odometer_m: Some(1_234_567.0),
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: PositionSource::Canonical,
    };
    for format in Format::ALL {
        let back =
            decode(format, &ingest::encode(format, &p), bound(), now(), &RULES).expect("decodes");
        assert_eq!(back.vehicle_id, p.vehicle_id, "{format}");
        assert_eq!(back.time, p.time, "{format}");
        assert_eq!((back.lat, back.lon), (p.lat, p.lon), "{format}");
        assert!(
            (back.speed_mps.expect("speed") - 17.5).abs() < 1e-9,
            "{format}"
        );
        assert_eq!(back.source, format.source(), "{format}");
    }
}

fn unbound(key: Option<&str>) -> Envelope<'_> {
    Envelope { key, tenant: None }
}

#[test]
fn a_message_names_its_tenant_in_its_body_or_its_key() {
    let json = r#"{"tenant_id":"ten_a","vehicle_id":"TRK-7","time":"2024-05-14T11:59:30Z","lat":41.15,"lon":-8.61}"#;
    let p = decode(
        Format::Canonical,
        json.as_bytes(),
        unbound(Some("ten_a/TRK-7")),
        now(),
        &RULES,
    )
    .expect("valid");
    assert_eq!(p.key().wire_key(), "ten_a/TRK-7");

    // A vendor shape carries no tenant: the `TENANT/VEHICLE` key does, and
    // names the vehicle where the body does not.
    let bare = r#"{"time":"2024-05-14T11:59:30Z","latitude":41.15,"longitude":-8.61}"#;
    let p = decode(
        Format::Samsara,
        bare.as_bytes(),
        unbound(Some("ten_b/112")),
        now(),
        &RULES,
    )
    .expect("valid");
    assert_eq!(
        (p.tenant_id.as_str(), p.vehicle_id.as_str()),
        ("ten_b", "112")
    );
}

#[test]
fn a_message_without_a_tenant_on_an_unbound_source_is_refused() {
    let json = r#"{"vehicle_id":"TRK-7","time":"2024-05-14T11:59:30Z","lat":41.15,"lon":-8.61}"#;
    for key in [None, Some("TRK-7")] {
        let err = decode(
            Format::Canonical,
            json.as_bytes(),
            unbound(key),
            now(),
            &RULES,
        )
        .expect_err("no tenant");
        assert_eq!(err.reason, RejectReason::NoTenant, "{key:?}");
        assert_eq!(err.reason.as_str(), "no_tenant");
    }
}

#[test]
fn a_message_naming_another_tenant_than_its_source_is_refused_not_relabelled() {
    let json = r#"{"tenant_id":"ten_other","vehicle_id":"TRK-7","time":"2024-05-14T11:59:30Z","lat":41.15,"lon":-8.61}"#;
    let err =
        decode(Format::Canonical, json.as_bytes(), bound(), now(), &RULES).expect_err("mismatch");
    assert_eq!(err.reason, RejectReason::TenantMismatch);
    // The detail names what the message claimed, never the bound tenant.
    assert!(!err.detail.contains("ten_test"), "{}", err.detail);

    // Body and key disagreeing is refused too, bound or not.
    let err = decode(
        Format::Canonical,
        json.as_bytes(),
        unbound(Some("ten_a/TRK-7")),
        now(),
        &RULES,
    )
    .expect_err("mismatch");
    assert_eq!(err.reason, RejectReason::TenantMismatch);

    // The same tenant as the source's is fine.
    let own = json.replace("ten_other", "ten_test");
    let p = decode(Format::Canonical, own.as_bytes(), bound(), now(), &RULES).expect("own");
    assert_eq!(p.tenant_id, *TENANT);
}

#[test]
fn tenant_ids_with_slashes_or_blanks_are_refused() {
    for id in ["", "a/b", "ten a", r"ten\u0007"] {
        let json = format!(
            r#"{{"tenant_id":"{id}","vehicle_id":"v","time":"2024-05-14T11:59:30Z","lat":41.15,"lon":-8.61}}"#
        );
        let err = decode(
            Format::Canonical,
            json.as_bytes(),
            unbound(None),
            now(),
            &RULES,
        )
        .expect_err("invalid");
        assert_eq!(err.reason, RejectReason::InvalidTenantId, "{id:?}");
    }
}
