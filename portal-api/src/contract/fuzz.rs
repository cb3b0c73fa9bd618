//! Fuzzing of the typed request bodies with proptest: no body, however
//! mangled, makes reading or checking one panic; each is a value or a 4xx
//! naming a field. A valid order with one field replaced by arbitrary JSON is
//! the main source of cases (it reaches the deep checks); the counts add up to
//! over 100 k per run (`TRACKER_FUZZ_CASES` scales them).
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{ExternalEtaBody, NewOrderBody, OrderPatchBody, StatusUpdateBody, from_json};

fn cases(default: u32) -> u32 {
    std::env::var("TRACKER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
        Just(Value::from("2025-11-25T13:00:00Z")),
        Just(Value::from("pickup")),
        Just(Value::from("America/New_York")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,8}",
                    Just("kind".to_owned()),
                    Just("lat".to_owned()),
                    Just("window".to_owned()),
                    Just("from".to_owned()),
                    Just("to".to_owned()),
                    Just("name".to_owned()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_order() -> Value {
    json!({
        "reference": "LOAD-1",
        "customer": {"name": "Receiver Inc", "email": "ops@example.com"},
        "vehicle_id": "TRUCK-1",
        "driver_name": "Sam",
        "stops": [
            {"kind": "pickup", "name": "A", "address": "1 Main St", "lat": 39.27, "lon": -76.60,
             "time_zone": "America/New_York",
             "window": {"from": "2025-11-25T13:00:00Z", "to": "2025-11-25T15:00:00Z"}},
            {"kind": "delivery", "name": "B", "lat": 39.28, "lon": -76.57,
             "window": {"from": "2025-11-25T18:00:00Z", "to": "2025-11-25T20:00:00Z"}}
        ]
    })
}

/// Every place a value can be replaced in a valid order, as JSON pointers.
fn pointers() -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&valid_order(), String::new(), &mut out);
    out
}

fn check(body: &Value) -> Result<(), TestCaseError> {
    let now = chrono::Utc::now();
    let order = engine::OrderId("ord_fuzz".to_owned());
    for result in [
        from_json::<NewOrderBody>(body)
            .and_then(|b| b.check())
            .map(drop),
        from_json::<OrderPatchBody>(body)
            .and_then(|b| b.check())
            .map(drop),
        from_json::<StatusUpdateBody>(body)
            .and_then(|b| b.check(now))
            .map(drop),
        from_json::<ExternalEtaBody>(body)
            .and_then(|b| b.check(order.clone(), now))
            .map(drop),
    ] {
        if let Err(err) = result {
            prop_assert!(err.status.is_client_error(), "{err:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(80_000)))]

    #[test]
    fn an_order_with_one_value_replaced_is_parsed_or_refused(which in any::<usize>(), value in any_json()) {
        let mut body = valid_order();
        let all = pointers();
        let pointer = &all[which % all.len()];
        if pointer.is_empty() {
            body = value;
        } else if let Some(slot) = body.pointer_mut(pointer) {
            *slot = value;
        }
        check(&body)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(30_000)))]

    #[test]
    fn arbitrary_json_bodies_are_refused_without_panicking(body in any_json()) {
        check(&body)?;
    }
}
