//! Property tests (fuzzing with proptest): no decoder panics on any input,
//! whether random bytes with any record key and tenant binding, random JSON, or
//! a valid message with one field replaced by arbitrary JSON. The case counts
//! add up to well over 100 k per run (`TRACKER_FUZZ_CASES` scales them), which
//! takes seconds: decoding is microseconds a message.

use chrono::{TimeZone, Utc};
use engine::TenantId;
use ingest::{Envelope, Format, ValidationRules, decode, decode_batch};
use proptest::prelude::*;

const RULES: ValidationRules = ValidationRules::RECOMMENDED;

/// Cases per property: `TRACKER_FUZZ_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("TRACKER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2024-05-14T11:59:00Z")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,8}",
                    Just("lat".to_owned()),
                    Just("gps".to_owned()),
                    Just("time".to_owned()),
                    Just("device".to_owned()),
                    Just("vehicle".to_owned()),
                    Just("id".to_owned()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn templates() -> [(Format, serde_json::Value); 4] {
    [
        (
            Format::Canonical,
            serde_json::json!({"tenant_id":"ten_a","vehicle_id":"v","time":"2024-05-14T11:59:00Z","lat":41.0,"lon":-8.0,"speed_mps":3.0,"heading_deg":10.0}),
        ),
        (
            Format::Samsara,
            serde_json::json!({"id":"v","gps":{"time":"2024-05-14T11:59:00Z","latitude":41.0,"longitude":-8.0,"speedMilesPerHour":3.0,"headingDegrees":10.0}}),
        ),
        (
            Format::Motive,
            serde_json::json!({"vehicle_id":1,"located_at":"2024-05-14T11:59:00Z","lat":41.0,"lon":-8.0,"speed":3.0,"bearing":10.0,"odometer":5.0}),
        ),
        (
            Format::Geotab,
            serde_json::json!({"dateTime":"2024-05-14T11:59:00Z","latitude":41.0,"longitude":-8.0,"speed":3.0,"device":{"id":"g"}}),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(100_000)))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        key in proptest::option::of(".{0,12}"),
        bound in proptest::option::of("[a-z_/]{0,6}"),
    ) {
        let now = Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0).single().expect("time");
        let bound = bound.map(TenantId);
        let envelope = Envelope { key: key.as_deref(), tenant: bound.as_ref() };
        for format in Format::ALL {
            let _ = decode(format, &bytes, envelope, now, &RULES);
        }
        let tenant = bound.unwrap_or_else(|| TenantId("t".into()));
        let _ = decode_batch(Format::Canonical, &bytes, 10, &tenant, now, &RULES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(30_000)))]

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let now = Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0).single().expect("time");
        let bytes = serde_json::to_vec(&value).expect("serializes");
        for format in Format::ALL {
            let _ = decode(format, &bytes, Envelope::default(), now, &RULES);
        }
        let batch = serde_json::to_vec(&serde_json::Value::Array(vec![value.clone(), value])).expect("serializes");
        let _ = decode_batch(Format::Canonical, &batch, 10, &TenantId("t".into()), now, &RULES);
    }

    /// A valid message with one field replaced: decodes or is rejected, and an
    /// accepted position always satisfies the rules.
    #[test]
    fn mutated_fields_are_decoded_or_rejected(which in 0usize..4, field_idx in 0usize..8, value in any_json()) {
        let now = Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0).single().expect("time");
        let (format, mut template) = templates()[which].clone();
        let target = if format == Format::Samsara { &mut template["gps"] } else { &mut template };
        if let Some(obj) = target.as_object_mut() {
            let keys: Vec<String> = obj.keys().cloned().collect();
            let key = keys[field_idx % keys.len()].clone();
            obj.insert(key, value);
        }
        let bytes = serde_json::to_vec(&template).expect("serializes");
        let tenant = TenantId("ten_a".into());
        if let Ok(p) = decode(format, &bytes, Envelope::bound(&tenant), now, &RULES) {
            prop_assert_eq!(&p.tenant_id, &tenant);
            prop_assert!(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat));
            prop_assert!(p.lon.is_finite() && (-180.0..=180.0).contains(&p.lon));
            prop_assert!(p.speed_mps.is_none_or(|s| (0.0..=RULES.max_speed_mps).contains(&s)));
            prop_assert!(p.heading_deg.is_none_or(|h| (0.0..360.0).contains(&h)));
            prop_assert!(!p.vehicle_id.as_str().trim().is_empty());
        }
    }
}
