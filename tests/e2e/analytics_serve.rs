//! ETA accuracy end to end, through the real binary: `tracker serve` on a
//! fresh store, `tracker simulate` driving trucks with an order per trip until
//! they reach their deliveries, then the analytics API. Its figures must equal
//! those this test computes on its own from the raw prediction log in the
//! SQLite file (its own horizon bounds, its own arithmetic), and the engine
//! must have logged a free-flow baseline beside its predictions.

use crate::portal_support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use portal_support::{Server, sqlite_url};
use serde_json::Value;

/// The horizon bounds of `tracker eta-eval` and the API, written out again.
const BOUNDS_S: [f64; 9] = [
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 604800.0,
];

fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("stored time")
        .with_timezone(&Utc)
}

#[derive(Default)]
struct Expected {
    n: u64,
    traces: BTreeSet<(String, i64)>,
    abs: Vec<f64>,
    signed_sum: f64,
    covered: u64,
    baseline: Vec<f64>,
}

/// Evaluated predictions from the raw log, grouped by horizon key.
fn expected_by_horizon(db: &std::path::Path) -> BTreeMap<String, Expected> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the store opens read-only");
    let mut stmt = conn
        .prepare(
            "SELECT order_id, stop_idx, predicted_at, eta, p10, p90, free_flow_eta, actual_arrival \
             FROM eta_predictions WHERE actual_arrival IS NOT NULL",
        )
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .expect("rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("readable rows");
    let mut groups: BTreeMap<String, Expected> = BTreeMap::new();
    for (order, stop, made, eta, p10, p90, free, actual) in rows {
        let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds() as f64 / 1000.0;
        let actual = ts(&actual);
        let to_go = secs(actual, ts(&made));
        let k = BOUNDS_S
            .iter()
            .position(|&b| to_go <= b)
            .unwrap_or(BOUNDS_S.len());
        let lower = if k == 0 { 0.0 } else { BOUNDS_S[k - 1] };
        let key = match BOUNDS_S.get(k) {
            Some(upper) => format!("{lower}-{upper}"),
            None => format!("{lower}-"),
        };
        let g = groups.entry(key).or_default();
        let error = secs(ts(&eta), actual);
        g.n += 1;
        g.traces.insert((order, stop));
        g.abs.push(error.abs());
        g.signed_sum += error;
        if ts(&p10) <= actual && actual <= ts(&p90) {
            g.covered += 1;
        }
        if let Some(free) = free {
            g.baseline.push(secs(ts(&free), actual).abs());
        }
    }
    groups
}

fn close(got: &Value, want: f64, tolerance: f64, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: API {got}, log {want}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accuracy_api_agrees_with_the_raw_log_of_simulated_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "analytics.db");
    let key = portal_support::create_tenant(dir.path(), &store, "Analysed Freight");
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/src/data/baltimore.osm.pbf");
    let db = dir.path().join("analytics.db");

    // Trips of 3–25 km at 240× real time: in a minute of real time (four
    // simulated hours) the trucks reach several deliveries and stand there.
    // One run: a second would replay the same truck ids from an earlier
    // clock, and the server would rightly refuse its fixes as stale.
    let base = server.base_url.clone();
    let sim_key = key.clone();
    let dir_path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        portal_support::tracker_json(
            &dir_path,
            &[
                "simulate",
                "--map",
                map,
                "--vehicles",
                "8",
                "--speedup",
                "240",
                "--duration",
                "60",
                "--to",
                &base,
                "--create-orders",
                "--api-key",
                &sim_key,
            ],
        )
    })
    .await
    .expect("simulate ran");

    let expected = expected_by_horizon(&db);
    let n_expected: u64 = expected.values().map(|g| g.n).sum();
    assert!(
        n_expected > 0,
        "no simulated delivery was reached: nothing to evaluate"
    );
    eprintln!(
        "{n_expected} evaluated predictions in {} horizon buckets",
        expected.len()
    );

    let reply: Value = portal_support::client()
        .get(format!(
            "{}/api/v1/analytics/eta-accuracy?group_by=horizon",
            server.base_url
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("analytics answers")
        .json()
        .await
        .expect("JSON");
    let groups = reply["groups"].as_array().expect("groups");
    let got: BTreeMap<String, &Value> = groups
        .iter()
        .map(|g| (g["key"].as_str().expect("key").to_owned(), g))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{reply}"
    );
    let mut with_baseline = 0;
    for (key, want) in &expected {
        let g = got[key];
        let n = want.n as f64;
        assert_eq!(g["n"].as_u64(), Some(want.n), "{key}");
        assert_eq!(
            g["traces"].as_u64(),
            Some(want.traces.len() as u64),
            "{key}"
        );
        close(
            &g["mae_s"],
            want.abs.iter().sum::<f64>() / n,
            0.051,
            "mae_s",
        );
        close(&g["bias_s"], want.signed_sum / n, 0.051, "bias_s");
        close(&g["coverage"], want.covered as f64 / n, 0.0006, "coverage");
        let mut sorted = want.abs.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).max(1) - 1];
        close(&g["median_abs_error_s"], rank(0.5), 0.051, "median");
        close(&g["p90_abs_error_s"], rank(0.9), 0.051, "p90");
        if !want.baseline.is_empty() {
            with_baseline += want.baseline.len();
            let mean = want.baseline.iter().sum::<f64>() / want.baseline.len() as f64;
            close(&g["baseline_mae_s"], mean, 0.051, "baseline_mae_s");
        }
    }
    assert!(
        with_baseline > 0,
        "the engine logs a free-flow ETA with its predictions: {reply}"
    );

    // The export holds the same log: as many evaluated rows, each with the
    // arrival the API counted.
    let csv_path = dir.path().join("predictions.csv");
    let report = portal_support::tracker_json(
        dir.path(),
        &[
            "export",
            "predictions",
            "--store",
            &store,
            "--format",
            "csv",
            "--out",
            csv_path.to_str().expect("utf-8 path"),
        ],
    );
    let mut reader = csv::Reader::from_path(&csv_path).expect("the CSV opens");
    let header = reader.headers().expect("a header").clone();
    let actual_at = header
        .iter()
        .position(|h| h == "actual_arrival")
        .expect("an actual_arrival column");
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("readable rows");
    assert_eq!(report["rows"].as_u64(), Some(records.len() as u64));
    let evaluated = records.iter().filter(|r| !r[actual_at].is_empty()).count() as u64;
    assert!(
        evaluated >= n_expected,
        "the export has {evaluated} evaluated rows, the API counted {n_expected}"
    );

    // The same as Parquet: typed columns, read back by the parquet crate
    // and, where installed (always under CI), by pyarrow.
    let parquet_path = dir.path().join("predictions.parquet");
    let report = portal_support::tracker_json(
        dir.path(),
        &[
            "export",
            "predictions",
            "--store",
            &store,
            "--format",
            "parquet",
            "--out",
            parquet_path.to_str().expect("utf-8 path"),
        ],
    );
    let file = std::fs::File::open(&parquet_path).expect("the Parquet file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file");
    let schema = reader.schema().clone();
    let field = schema
        .field_with_name("actual_arrival")
        .expect("actual_arrival");
    assert!(
        matches!(field.data_type(), arrow_schema::DataType::Timestamp(_, Some(tz)) if tz.as_ref() == "UTC"),
        "{field:?}"
    );
    let rows: usize = reader
        .build()
        .expect("reader")
        .map(|b| b.expect("a batch").num_rows())
        .sum();
    assert_eq!(report["rows"].as_u64(), Some(rows as u64));
    assert!(
        rows >= records.len(),
        "{rows} Parquet rows, {} CSV rows",
        records.len()
    );
    let pyarrow = std::process::Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if portal_support::service_available("python3 with pyarrow", pyarrow) {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); \
                 print(t.num_rows, t.schema.field('predicted_at').type)",
                parquet_path.to_str().expect("utf-8 path"),
            ])
            .output()
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.trim(), format!("{rows} timestamp[ms, tz=UTC]"));
    }
}
