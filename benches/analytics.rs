//! The analytics API's accuracy query over a large prediction log: one million
//! generated predictions of one tenant over 30 days (10 000 orders of two
//! stops, every prediction evaluated), next to another tenant's. The query the
//! API runs (the tenant-and-time index, `PredictionScan::Indexed`) against a
//! scan of the whole log (`PredictionScan::FullScan`), for one day and for the
//! whole month, both followed by the same grouping by horizon; and the month
//! as the API reads it once its days are summed (`read_accuracy_inputs`: a
//! few aggregate rows per day with their sketches), against the raw month in
//! the same run. In test mode (`cargo test --benches`, no `--bench`) the log
//! is 20 000 predictions.

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::Criterion;
use portal_api::analytics::{
    AnalyticsFilter, GroupBy, accuracy_groups, accuracy_groups_with_daily,
};
use portal_api::{
    AnalyticsStore, PredictionScan, TenantId, read_accuracy_inputs, read_evaluated_predictions,
};
use rusqlite::params;

const DAYS: i64 = 30;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes `n` predictions for tenant `ten_a` and `n / 4` for `ten_b` into a
/// fresh store at `path`.
fn generate(path: &std::path::Path, n: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // Opening the store creates and migrates the schema.
    let store = runtime
        .block_on(portal_api::SqliteStore::open(path))
        .expect("store");
    drop(store);
    let mut conn = rusqlite::Connection::open(path).expect("open");
    let tx = conn.transaction().expect("tx");
    let t0 = start();
    for (tenant, count) in [("ten_a", n), ("ten_b", n / 4)] {
        tx.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?1, ?2)",
            params![tenant, ts(t0)],
        )
        .expect("tenant");
        let orders = (count / 100).max(1);
        for o in 0..orders {
            let id = format!("{tenant}_ord_{o}");
            tx.execute(
                "INSERT INTO orders (id, tenant_id, reference, customer_name, vehicle_id, status, \
                 created_at, updated_at) VALUES (?1, ?2, ?1, ?3, ?4, 'delivered', ?5, ?5)",
                params![
                    id,
                    tenant,
                    format!("Customer {}", o % 20),
                    format!("T{}", o % 50),
                    ts(t0)
                ],
            )
            .expect("order");
            for (idx, kind) in [(0, "pickup"), (1, "delivery")] {
                tx.execute(
                    "INSERT INTO stops (order_id, idx, kind, name, address, lat, lon, time_zone) \
                     VALUES (?1, ?2, ?3, 'S', '', ?4, ?5, 'UTC')",
                    params![
                        id,
                        idx,
                        kind,
                        39.0 + (o % 30) as f64 * 0.1,
                        -76.0 - idx as f64
                    ],
                )
                .expect("stop");
            }
        }
    }
    // The log is append-only, so rows lie in the order they were made, the
    // two tenants interleaved (one row in five is `ten_b`'s).
    let mut insert = tx
        .prepare(
            "INSERT INTO eta_predictions (order_id, stop_idx, predicted_at, eta, p10, p90, \
             horizon_s, remaining_distance_m, remaining_drive_s, reasons, actual_arrival, \
             tenant_id, free_flow_eta) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, '', ?7, ?8, ?9)",
        )
        .expect("insert");
    let total = n + n / 4;
    let span_ms = DAYS * 86_400_000;
    for i in 0..total {
        let (tenant, orders) = if i % 5 == 4 {
            ("ten_b", (n / 4 / 100).max(1))
        } else {
            ("ten_a", (n / 100).max(1))
        };
        let order = (i * 7919) % orders;
        let made = t0 + Duration::milliseconds(i as i64 * span_ms / total as i64);
        let to_go = Duration::seconds(60 + (i as i64 * 104_729) % 36_000);
        let actual = made + to_go;
        let eta = actual + Duration::seconds((i as i64 % 1201) - 600);
        insert
            .execute(params![
                format!("{tenant}_ord_{order}"),
                (i % 2) as i64,
                ts(made),
                ts(eta),
                ts(eta - Duration::minutes(15)),
                ts(eta + Duration::minutes(15)),
                ts(actual),
                tenant,
                ts(made + to_go * 4 / 5),
            ])
            .expect("prediction");
    }
    drop(insert);
    tx.commit().expect("commit");
}

fn accuracy(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 1_000_000 } else { 20_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("analytics.db");
    generate(&path, n);
    // One summary pass over the month, as `serve` runs it after midnight.
    {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = runtime
            .block_on(portal_api::SqliteStore::open(&path))
            .expect("store");
        let began = std::time::Instant::now();
        let pass = runtime
            .block_on(store.summarize_days(start() + Duration::days(DAYS + 1), None))
            .expect("summary pass");
        eprintln!(
            "summary pass: {} tenant-days summed in {:.1} s",
            pass.days_summed,
            began.elapsed().as_secs_f64()
        );
    }
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("read connection");
    let tenant = TenantId("ten_a".into());
    let day = AnalyticsFilter {
        from: start() + Duration::days(10),
        to: start() + Duration::days(11),
        customer: None,
        vehicle_id: None,
        stop_kind: None,
    };
    let month = AnalyticsFilter {
        from: start(),
        to: start() + Duration::days(DAYS + 1),
        ..day.clone()
    };
    let run = |filter: &AnalyticsFilter, scan| {
        let rows = read_evaluated_predictions(&conn, &tenant, filter, scan).expect("query");
        accuracy_groups(&rows, GroupBy::Horizon)
    };
    // Both ways find the same rows.
    assert_eq!(
        run(&day, PredictionScan::Indexed),
        run(&day, PredictionScan::FullScan)
    );
    let summed = |filter: &AnalyticsFilter| {
        let inputs = read_accuracy_inputs(&conn, &tenant, filter, true).expect("query");
        accuracy_groups_with_daily(&inputs.raw, &inputs.daily, GroupBy::Horizon)
    };
    // The summed month agrees with the raw one but for its sketched
    // quantiles and its trace counts (upper bounds).
    for (s, r) in summed(&month)
        .iter()
        .zip(run(&month, PredictionScan::Indexed).iter())
    {
        assert_eq!((&s.key, s.n, s.coverage), (&r.key, r.n, r.coverage));
        assert!((s.mae_s - r.mae_s).abs() < 0.2, "{s:?} vs {r:?}");
        let (a, b) = (
            s.median_abs_error_s.expect("median"),
            r.median_abs_error_s.expect("median"),
        );
        assert!((a - b).abs() <= b * 0.0101 + 0.1, "{s:?} vs {r:?}");
    }
    let mut group = c.benchmark_group("analytics");
    group.sample_size(10);
    group.bench_function("accuracy_1_day_indexed", |b| {
        b.iter(|| run(&day, PredictionScan::Indexed))
    });
    group.bench_function("accuracy_1_day_full_scan", |b| {
        b.iter(|| run(&day, PredictionScan::FullScan))
    });
    group.bench_function("accuracy_30_days_indexed", |b| {
        b.iter(|| run(&month, PredictionScan::Indexed))
    });
    group.bench_function("accuracy_30_days_summed", |b| b.iter(|| summed(&month)));
    group.finish();
}

criterion::criterion_group!(benches, accuracy);
