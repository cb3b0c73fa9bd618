//! The analysts' API on a store whose prediction log the test writes: a
//! truck's ETAs for both stops of an order, its arrivals recorded by the
//! dispatcher, and another tenant's order that must never show. Each figure
//! the API returns is worked out by hand below, from the same few numbers.
//! Then the tracking page's views (HTML loads only, viewers never stored as
//! addresses) and the ETA history the page and its JSON carry. Every
//! scenario runs on SQLite and on PostgreSQL (`sqlite::NAME`,
//! `postgres::NAME`), so the routes are shown working on both.

use crate::common;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::*;
use engine::{EtaUpdate, OrderId};
use serde_json::{Value, json};

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// An ETA for `stop` made at `made`, predicting `eta` within ±`half_min`
/// minutes, with a free-flow drive of `free_flow_min` minutes.
fn eta(
    order: &str,
    stop: u32,
    made: &str,
    at: &str,
    half_min: i64,
    free_flow_min: f64,
) -> EtaUpdate {
    let eta = time(at);
    EtaUpdate {
        order_id: OrderId(order.into()),
        stop_index: stop,
        eta,
        p10: eta - Duration::minutes(half_min),
        p90: eta + Duration::minutes(half_min),
        remaining_distance_m: 10_000.0,
        remaining_drive_s: 600.0,
        reasons: Vec::new(),
        computed_at: time(made),
        free_flow_drive_s: Some(free_flow_min * 60.0),
        route: Vec::new(),
    }
}

async fn get(t: &TestApp, uri: &str) -> Reply {
    call(&t.app, Method::GET, uri, Some(&t.key_a), None).await
}

async fn dispatch(t: &TestApp, id: &str) {
    let reply = set_status(&t.app, &t.key_a, id, "dispatched").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

async fn status_at(t: &TestApp, id: &str, status: &str, at: &str) {
    let reply = post_status(t, id, json!({"status": status, "at": at})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

/// Order 1 of tenant A: the pickup reached at 14:00, the delivery at 18:42.
/// Its ETAs: for the pickup, one made at 13:00 saying 13:50 (±15 min);
/// for the delivery, one made at 15:00 saying 18:30 (±20 min, free flow
/// 3 h: 18:00) and one made at 17:00 saying 18:40 (±5 min, free flow 1 h:
/// 18:00). Returns the order's JSON.
async fn logged_trip(t: &TestApp) -> Value {
    let order = create_order(&t.app, &t.key_a, "LOAD-A1", Some("T1")).await;
    let id = order["id"].as_str().expect("id").to_owned();
    dispatch(t, &id).await;
    let log = |u| async move {
        t.store
            .record_eta(u, portal_api::AlertPolicy::recommended())
            .await
            .expect("logged")
    };
    log(eta(
        &id,
        0,
        "2025-11-25T13:00:00Z",
        "2025-11-25T13:50:00Z",
        15,
        40.0,
    ))
    .await;
    log(eta(
        &id,
        1,
        "2025-11-25T15:00:00Z",
        "2025-11-25T18:30:00Z",
        20,
        180.0,
    ))
    .await;
    status_at(t, &id, "at_pickup", "2025-11-25T14:00:00Z").await;
    status_at(t, &id, "picked_up", "2025-11-25T14:30:00Z").await;
    log(eta(
        &id,
        1,
        "2025-11-25T17:00:00Z",
        "2025-11-25T18:40:00Z",
        5,
        60.0,
    ))
    .await;
    status_at(t, &id, "at_delivery", "2025-11-25T18:42:00Z").await;
    order
}

/// Tenant B's order with a wildly wrong ETA: it must never reach A's figures.
async fn other_tenants_trip(t: &TestApp) {
    let order = create_order(&t.app, &t.key_b, "LOAD-B1", Some("T1")).await;
    let id = order["id"].as_str().expect("id").to_owned();
    let reply = set_status(&t.app, &t.key_b, &id, "dispatched").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    t.store
        .record_eta(
            eta(
                &id,
                1,
                "2025-11-25T15:00:00Z",
                "2025-11-26T18:30:00Z",
                5,
                10.0,
            ),
            portal_api::AlertPolicy::recommended(),
        )
        .await
        .expect("logged");
    let reply = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{id}/status"),
        Some(&t.key_b),
        Some(json!({"status": "at_delivery", "at": "2025-11-25T18:42:00Z"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

const RANGE: &str = "from=2025-11-25T00:00:00Z&to=2025-11-26T00:00:00Z";

async fn accuracy_by_horizon_matches_the_numbers_worked_out_by_hand(t: TestApp) {
    logged_trip(&t).await;
    other_tenants_trip(&t).await;

    let reply = get(
        &t,
        &format!("/api/v1/analytics/eta-accuracy?{RANGE}&group_by=horizon"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let groups = reply.json["groups"].as_array().expect("groups");
    let keys: Vec<&str> = groups.iter().filter_map(|g| g["key"].as_str()).collect();
    // To go: pickup 60 min (≤ 1 h), delivery 3 h 42 min and 1 h 42 min.
    assert_eq!(
        keys,
        ["1800-3600", "3600-7200", "7200-14400"],
        "{}",
        reply.text
    );

    // The pickup: said 13:50, came 14:00 (−600 s), inside ±15 min; made
    // 40 min free-flow out: 13:40 (|−1200| s).
    let pickup = &groups[0];
    assert_eq!(pickup["n"], 1);
    assert_eq!(pickup["traces"], 1);
    assert_eq!(pickup["mae_s"], 600.0);
    assert_eq!(pickup["bias_s"], -600.0);
    assert_eq!(pickup["coverage"], 1.0);
    assert_eq!(pickup["median_width_s"], 1800.0);
    assert_eq!(pickup["baseline_mae_s"], 1200.0);

    // 17:00 for 18:40 (±5 min), came 18:42: −120 s, covered; free flow 18:00.
    let late = &groups[1];
    assert_eq!(late["mae_s"], 120.0);
    assert_eq!(late["median_abs_error_s"], 120.0);
    assert_eq!(late["coverage"], 1.0);
    assert_eq!(late["baseline_mae_s"], 2520.0);
    // 15:00 for 18:30 (±20 min), came 18:42: −720 s, covered.
    let early = &groups[2];
    assert_eq!(early["mae_s"], 720.0);
    assert_eq!(early["p90_abs_error_s"], 720.0);
    assert_eq!(early["median_width_s"], 2400.0);
    assert_eq!(early["baseline_mae_s"], 2520.0);

    // By stop kind: the delivery's two predictions together.
    let reply = get(
        &t,
        &format!("/api/v1/analytics/eta-accuracy?{RANGE}&group_by=stop_kind"),
    )
    .await;
    let by_kind = &reply.json["groups"];
    assert_eq!(by_kind[0]["key"], "delivery");
    assert_eq!(by_kind[0]["n"], 2);
    assert_eq!(by_kind[0]["traces"], 1);
    assert_eq!(by_kind[0]["mae_s"], 420.0);
    assert_eq!(by_kind[0]["bias_s"], -420.0);
    assert_eq!(by_kind[0]["median_abs_error_s"], 120.0);
    assert_eq!(by_kind[1]["key"], "pickup");

    // Filters compose: pickups only, by customer; a range that ends before
    // the delivery's ETAs were made.
    let reply = get(
        &t,
        &format!("/api/v1/analytics/eta-accuracy?{RANGE}&group_by=customer&stop_kind=pickup"),
    )
    .await;
    assert_eq!(reply.json["groups"][0]["key"], "Jane Receiver");
    assert_eq!(reply.json["groups"][0]["n"], 1);
    let reply = get(
        &t,
        "/api/v1/analytics/eta-accuracy?from=2025-11-25T00:00:00Z&to=2025-11-25T14:00:00Z&group_by=day",
    )
    .await;
    assert_eq!(reply.json["groups"][0]["key"], "2025-11-25");
    assert_eq!(reply.json["groups"][0]["n"], 1);
    let reply = get(
        &t,
        &format!("/api/v1/analytics/eta-accuracy?{RANGE}&vehicle=T9"),
    )
    .await;
    assert_eq!(reply.json["groups"], json!([]));

    // Lanes: one order, one lane of two H3 cells.
    let reply = get(
        &t,
        &format!("/api/v1/analytics/eta-accuracy?{RANGE}&group_by=lane&lane_res=9"),
    )
    .await;
    let lanes = reply.json["groups"].as_array().expect("lanes");
    assert_eq!(lanes.len(), 1);
    assert_eq!(lanes[0]["n"], 3);
    let key = lanes[0]["key"].as_str().expect("key");
    assert_eq!(key.split('>').count(), 2, "{key}");
    assert_ne!(
        key.split('>').next(),
        key.split('>').nth(1),
        "9: Harbor and Canton differ"
    );
}

async fn on_time_counts_stops_reached_inside_their_windows(t: TestApp) {
    logged_trip(&t).await;
    // Windows: pickup 13:00–15:00 (came 14:00: on time), delivery
    // 18:00–20:00 (came 18:42: on time).
    let reply = get(
        &t,
        &format!("/api/v1/analytics/on-time?{RANGE}&group_by=customer"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let g = &reply.json["groups"][0];
    assert_eq!(g["key"], "Jane Receiver");
    assert_eq!((g["n"].as_u64(), g["on_time"].as_u64()), (Some(2), Some(2)));
    assert_eq!(g["on_time_rate"], 1.0);

    let order = create_order(&t.app, &t.key_a, "LOAD-A2", Some("T2")).await;
    let id = order["id"].as_str().expect("id").to_owned();
    dispatch(&t, &id).await;
    status_at(&t, &id, "at_pickup", "2025-11-25T16:00:00Z").await;
    let reply = get(&t, &format!("/api/v1/analytics/on-time?{RANGE}")).await;
    let day = &reply.json["groups"][0];
    assert_eq!(day["key"], "2025-11-25");
    assert_eq!(
        (day["n"].as_u64(), day["late"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(day["on_time_rate"], 0.667);
}

async fn bad_parameters_are_400s_naming_them_and_keys_are_required(t: TestApp) {
    for (query, named) in [
        ("group_by=weather", "`group_by`"),
        ("from=last-week", "`from`"),
        ("group_by=lane&lane_res=99", "`lane_res`"),
        // Checked even when the grouping does not use it.
        ("lane_res=2147483648", "`lane_res`"),
        ("stop_kind=depot", "`stop_kind`"),
        (
            "from=2025-11-26T00:00:00Z&to=2025-11-25T00:00:00Z",
            "`from`",
        ),
        ("costumer=Jane", "`costumer`"),
    ] {
        let reply = get(&t, &format!("/api/v1/analytics/eta-accuracy?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        assert!(
            error_message(&reply).starts_with(named),
            "{query}: {}",
            reply.text
        );
    }
    let reply = get(&t, "/api/v1/analytics/on-time?group_by=vehicle").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = call(
        &t.app,
        Method::GET,
        "/api/v1/analytics/eta-accuracy",
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

async fn page_loads_are_counted_per_viewer_and_json_lookups_are_not(t: TestApp) {
    let order = logged_trip(&t).await;
    create_order(&t.app, &t.key_a, "LOAD-A3", None).await;
    let id = order["id"].as_str().expect("id").to_owned();
    let code = code_of(&order);

    for _ in 0..2 {
        let page = call(&t.app, Method::GET, &format!("/t/{code}"), None, None).await;
        assert_eq!(page.status, StatusCode::OK);
    }
    public_track(&t, &code).await;
    status_at(&t, &id, "delivered", "2025-11-25T19:00:00Z").await;
    call(&t.app, Method::GET, &format!("/t/{code}"), None, None).await;

    let views = get(&t, &format!("/api/v1/orders/{id}/views")).await;
    assert_eq!(views.status, StatusCode::OK, "{}", views.text);
    assert_eq!(views.json["views"], 3);
    assert_eq!(
        views.json["unique_viewers"], 1,
        "one client address, one day"
    );
    assert_eq!(views.json["views_before_delivery"], 2);
    assert_eq!(views.json["views_after_delivery"], 1);
    assert!(views.json["first_view_at"].as_str().is_some());
    // Another tenant cannot read them.
    let theirs = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}/views"),
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let summary = get(&t, "/api/v1/analytics/views").await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert_eq!(summary.json["shipments"], 2);
    assert_eq!(summary.json["viewed"], 1);
    assert_eq!(summary.json["viewed_share"], 0.5);

    // Nothing in the database can name the viewer: no column holds the
    // client address the test sent from (192.0.2.7).
    assert!(
        !stores::stored_anywhere(&t.db_url, "192.0.2.7").await,
        "the address is stored"
    );
}

async fn the_tracking_json_and_page_carry_the_eta_history_and_the_arrival(t: TestApp) {
    let order = logged_trip(&t).await;
    let code = code_of(&order);
    let view = public_track(&t, &code).await;
    // At the delivery, not yet left: the delivery's history, with its arrival.
    assert_eq!(view["eta_history_stop_index"], 1, "{view}");
    let history = view["eta_history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{view}");
    assert_eq!(history[0]["at"], "2025-11-25T15:00:00Z");
    assert_eq!(history[0]["eta"], "2025-11-25T18:30:00Z");
    assert_eq!(history[1]["p90"], "2025-11-25T18:45:00Z");
    assert_eq!(view["actual_arrival"], "2025-11-25T18:42:00Z");

    let page = call(&t.app, Method::GET, &format!("/t/{code}"), None, None).await;
    assert!(page.text.contains("id=\"eta-chart\""), "{}", page.text);
    assert!(page.text.contains("class=\"actual\""));
}

/// A whole day is summed into aggregates once it is over: the accuracy API
/// then answers from them with the same n, MAE, bias, coverage and baseline,
/// its quantiles read from the day's sketch (within 1 %), its trace count an
/// upper bound. A prediction logged into the summed day makes it stale (read
/// raw, exact again) until the next pass sums it again; past the retention
/// only the aggregates stay.
async fn a_summed_day_answers_from_its_aggregate_and_survives_the_retention(t: TestApp) {
    let order = logged_trip(&t).await;
    let id = order["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v1/analytics/eta-accuracy?{RANGE}&group_by=stop_kind");
    let before = get(&t, &uri).await.json;
    let groups = |v: &Value| v["groups"].as_array().expect("groups").clone();
    for g in groups(&before) {
        assert_eq!(g["quantiles_exact"], true, "{g}");
    }

    let analytics = t.store.analytics().expect("the store keeps analytics");
    let morning_after = time("2025-11-27T06:00:00Z");
    // Today (the 27th) is never summed; the 25th is, once.
    let pass = analytics
        .summarize_days(time("2025-11-25T23:00:00Z"), None)
        .await
        .expect("pass");
    assert_eq!(
        pass,
        portal_api::SummaryPass::default(),
        "the day is not over"
    );
    let pass = analytics
        .summarize_days(morning_after, None)
        .await
        .expect("pass");
    assert_eq!((pass.days_summed, pass.raw_deleted), (1, 0));
    let again = analytics
        .summarize_days(morning_after, None)
        .await
        .expect("again");
    assert_eq!(
        again,
        portal_api::SummaryPass::default(),
        "nothing left to sum"
    );

    let same_but_sketched = |after: &Value| {
        for (b, a) in groups(&before).iter().zip(groups(after).iter()) {
            for field in ["key", "n", "mae_s", "bias_s", "coverage", "baseline_mae_s"] {
                assert_eq!(a[field], b[field], "{field}: {a} vs {b}");
            }
            assert_eq!(a["quantiles_exact"], false, "{a}");
            assert_eq!(a["quantiles_n"], b["n"], "{a}");
            for field in ["median_abs_error_s", "p90_abs_error_s", "median_width_s"] {
                let (x, y) = (
                    a[field].as_f64().expect("sketched"),
                    b[field].as_f64().expect("exact"),
                );
                assert!((x - y).abs() <= y * 0.0101 + 0.1, "{field}: {a} vs {b}");
            }
            // Aggregates count a trace once per (day, bucket, …) cell: an
            // upper bound (the delivery's two predictions sit in two
            // horizon buckets).
            assert!(a["traces"].as_u64() >= b["traces"].as_u64(), "{a} vs {b}");
        }
    };
    let summed = get(&t, &uri).await.json;
    same_but_sketched(&summed);

    // A replayed prediction lands in the summed day: the day is read raw,
    // exactly, until the next pass.
    t.store
        .record_eta(
            eta(
                &id,
                1,
                "2025-11-25T18:00:00Z",
                "2025-11-25T18:41:00Z",
                5,
                40.0,
            ),
            portal_api::AlertPolicy::recommended(),
        )
        .await
        .expect("logged");
    let stale = get(&t, &uri).await.json;
    for g in groups(&stale) {
        assert_eq!(g["quantiles_exact"], true, "{g}");
    }
    let pass = analytics
        .summarize_days(morning_after, None)
        .await
        .expect("pass");
    assert_eq!(pass.days_summed, 1, "the stale day is summed again");

    // Past a one-day retention the raw rows go, the answer stays.
    let pass = analytics
        .summarize_days(morning_after, Some(1))
        .await
        .expect("pass");
    assert_eq!((pass.days_summed, pass.raw_deleted), (0, 4));
    let pruned = get(&t, &uri).await.json;
    assert_eq!(groups(&pruned), groups(&summed), "{pruned}");
    // A range starting after midnight leaves the pruned day out (its raw
    // rows are gone), and one ending before the next midnight keeps it.
    let later = get(
        &t,
        "/api/v1/analytics/eta-accuracy?from=2025-11-25T01:00:00Z&to=2025-11-26T00:00:00Z",
    )
    .await;
    assert_eq!(later.json["groups"], json!([]));
    let shorter = get(
        &t,
        "/api/v1/analytics/eta-accuracy?from=2025-11-25T00:00:00Z&to=2025-11-25T20:00:00Z&group_by=stop_kind",
    )
    .await;
    assert_eq!(groups(&shorter.json), groups(&summed));
}

/// Staff pages: nothing without a session; signing in with a key sets an
/// HttpOnly, SameSite=Strict cookie holding a random token (the store keeps
/// its hash, never the key); the pages then render; signing out ends it.
async fn staff_pages_need_a_session_made_from_a_key_and_never_keep_the_key(t: TestApp) {
    use axum::body::Body;
    use axum::http::{Request, header};
    let trip = logged_trip(&t).await;

    let anonymous = call(&t.app, Method::GET, "/staff/analytics", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.text.contains("id=\"sign-in\""));

    let form = |key: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/staff/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("api_key={key}")))
            .expect("request")
    };
    let refused = send(&t.app, form("trk_not_a_key")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.headers.get(header::SET_COOKIE).is_none());

    let signed = send(&t.app, form(&t.key_a)).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    let cookie = signed.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/staff", "Secure"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains(&t.key_a),
        "the cookie holds a token, not the key"
    );
    let pair = cookie.split(';').next().expect("name=value").to_owned();

    let with_cookie = |uri: &str, method: Method| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, pair.clone())
            .body(Body::empty())
            .expect("request")
    };
    let page = send(
        &t.app,
        with_cookie(
            "/staff/analytics?from=2025-11-25T00:00:00Z&to=2025-11-26T00:00:00Z",
            Method::GET,
        ),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for section in [
        "error-by-horizon",
        "coverage-by-horizon",
        "on-time-by-day",
        "worst-lanes",
        "mae-chart",
    ] {
        assert!(page.text.contains(section), "{section}");
    }
    assert!(
        !page.text.contains("<script"),
        "readable without JavaScript"
    );
    let orders = send(
        &t.app,
        with_cookie("/staff/orders?reference=LOAD-A1", Method::GET),
    )
    .await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(orders.text.contains("LOAD-A1"));
    // Codes are stored hashed and this server seals none: rotate instead.
    assert!(orders.text.contains("Rotate to get a new link"));

    // An `orders` key may rotate: the new link is shown once and works, the
    // old one no longer does.
    let order_id = trip["id"].as_str().expect("id").to_owned();
    assert!(orders.text.contains(&format!("data-order=\"{order_id}\"")));
    let old_code = code_of(&trip);
    let rotated = send(
        &t.app,
        with_cookie(&format!("/staff/orders/{order_id}/rotate"), Method::POST),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let link = rotated
        .text
        .split("id=\"issued\"")
        .nth(1)
        .and_then(|rest| rest.split("href=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the new link")
        .to_owned();
    let new_code = link.rsplit('/').next().expect("code").to_owned();
    assert_ne!(new_code, old_code);
    for (code, status) in [
        (new_code, StatusCode::OK),
        (old_code, StatusCode::NOT_FOUND),
    ] {
        let uri = format!("/api/v1/track/{code}");
        assert_eq!(
            call(&t.app, Method::GET, &uri, None, None).await.status,
            status
        );
    }

    assert!(
        !stores::stored_anywhere(&t.db_url, &t.key_a).await,
        "the key is stored"
    );

    let out = send(&t.app, with_cookie("/staff/sign-out", Method::POST)).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = send(&t.app, with_cookie("/staff/orders", Method::GET)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the session ended");
}

/// Declares each scenario `fn NAME(TestApp)` (async) as two tests: on a
/// fresh SQLite file (`sqlite::NAME`) and on a fresh PostgreSQL schema
/// (`postgres::NAME`; see `common::stores`).
macro_rules! on_both_apps {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::test_app().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(backend) = crate::common::stores::postgres().await else {
                        return;
                    };
                    let url = backend.url.clone();
                    let app = crate::common::test_app_on(backend.store.clone(), url).await;
                    super::$name(app).await;
                    backend.finish().await;
                }
            )*
        }
    };
}

on_both_apps!(
    accuracy_by_horizon_matches_the_numbers_worked_out_by_hand,
    on_time_counts_stops_reached_inside_their_windows,
    bad_parameters_are_400s_naming_them_and_keys_are_required,
    page_loads_are_counted_per_viewer_and_json_lookups_are_not,
    the_tracking_json_and_page_carry_the_eta_history_and_the_arrival,
    a_summed_day_answers_from_its_aggregate_and_survives_the_retention,
    staff_pages_need_a_session_made_from_a_key_and_never_keep_the_key,
);
