//! What an operator sees of a running `tracker serve`, through the real binary:
//! `/readyz` is 503 (naming the map) while the node starts and 200 once it
//! can work; `/metrics` may require a bearer token; after a short run with
//! the demo fleet, positions posted over HTTP and a viewer on a tracking page,
//! `/metrics` has every pipeline metric with plausible values; over Kafka it
//! also has the consumer lag per partition, and two nodes in one consumer
//! group split the partitions and list each other on `/readyz`; and neither the text nor the
//! JSON log of a run that creates an API key, an order and opens its tracking
//! page and WebSocket contains the key, the tracking code or an
//! `Authorization` header.

use crate::portal_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portal_support::{TRACKER, client, next_json, sqlite_url, ws_close, ws_connect};
use serde_json::{Value, json};

/// A `tracker serve` child whose stdout lines are collected and whose stderr
/// (the log) goes to a file; killed on drop.
struct Node {
    child: Child,
    base_url: String,
    stdout: std::sync::mpsc::Receiver<String>,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (bound and released; the server takes it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Node {
    /// Starts `tracker serve` on `port` in `dir` with `args` and `env`, the log
    /// at `RUST_LOG=rust_log` into `dir/log_name`. Returns at once.
    fn spawn(
        dir: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
        rust_log: &str,
        log_name: &str,
    ) -> Node {
        let log = dir.join(log_name);
        let log_file = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(TRACKER)
            .current_dir(dir)
            .args(["serve", "--listen", &listen])
            .args(args)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("tracker starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node {
            child,
            base_url: format!("http://{listen}"),
            stdout: rx,
            log,
        }
    }

    /// Waits for stdout lines until `done` says enough; returns them all.
    fn stdout_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut lines = Vec::new();
        while !done(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stdout
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("tracker serve printed {lines:?} and then nothing"));
            lines.push(line);
        }
        lines
    }

    /// Waits for `listening on` and `demo` demo pages; returns the demo URLs.
    fn wait_started(&self, demo: usize) -> Vec<String> {
        let lines = self.stdout_until(|lines| {
            lines.iter().any(|l| l.starts_with("listening on "))
                && lines
                    .iter()
                    .filter(|l| l.starts_with("demo tracking page: "))
                    .count()
                    >= demo
        });
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("demo tracking page: "))
            .map(str::to_owned)
            .collect()
    }

    /// Stops the node (SIGKILL: the log is flushed line by line) and returns
    /// its log.
    fn stop_and_read_log(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).expect("the log")
    }
}

/// A Prometheus text exposition as `series → value` (`name{labels}` as written).
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the series `name` whose labels include every `label="value"`
/// of `labels` (summed over the series that match).
fn value(metrics: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

async fn scrape(base: &str, token: Option<&str>) -> (u16, String) {
    let mut request = client().get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.expect("GET /metrics");
    let status = reply.status().as_u16();
    (status, reply.text().await.expect("metrics text"))
}

/// `tracker tenant create NAME` → (tenant id, API key).
fn create_tenant(dir: &Path, store: &str) -> String {
    portal_support::create_tenant(dir, store, "Observed Freight")
}

/// A dispatched order on `vehicle`; returns (order id, tracking code).
async fn order_for(base: &str, key: &str, vehicle: &str) -> (String, String) {
    let order = portal_support::dispatched_order(base, key, "LOAD-OBS-1", vehicle).await;
    let code = order["tracking_code"].as_str().expect("tracking code");
    (
        order["id"].as_str().expect("id").to_owned(),
        code.to_owned(),
    )
}

/// Posts a short drive of `vehicle` along Key Highway (one fix a second,
/// ending now) and one fix that cannot be valid (latitude 200).
async fn post_drive(base: &str, key: &str, vehicle: &str) {
    let now = chrono::Utc::now();
    let mut fixes: Vec<Value> = (0..12)
        .map(|i| {
            let at = now - chrono::TimeDelta::seconds(12 - i);
            json!({"vehicle_id": vehicle, "time": at.to_rfc3339(),
                   "lat": 39.2770, "lon": -76.6080 + 0.00012 * i as f64, "speed_mps": 10.0})
        })
        .collect();
    fixes
        .push(json!({"vehicle_id": vehicle, "time": now.to_rfc3339(), "lat": 200.0, "lon": -76.6}));
    let reply = client()
        .post(format!("{base}/api/v1/positions"))
        .bearer_auth(key)
        .json(&fixes)
        .send()
        .await
        .expect("post positions");
    assert_eq!(
        reply.status(),
        202,
        "{}",
        reply.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_map_and_metrics_need_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "ready.db");
    let port = free_port();
    let node = Node::spawn(
        dir.path(),
        port,
        &[
            "--store",
            &store,
            "--demo",
            "0",
            "--metrics-token-env",
            "TRACKER_TEST_METRICS_TOKEN",
        ],
        &[("TRACKER_TEST_METRICS_TOKEN", "scrape-me-7f3a")],
        "warn",
        "ready.log",
    );
    // Poll from the first moment the port answers: while the map loads and
    // the router is built, not ready, naming the map.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut not_ready = Vec::new();
    let ready = loop {
        assert!(Instant::now() < deadline, "never ready: {not_ready:?}");
        let Ok(reply) = http.get(format!("{}/readyz", node.base_url)).send().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.expect("readyz JSON");
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        not_ready.push(body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let first = not_ready.first().expect("a 503 before the node was ready");
    assert_eq!(first["status"], "not_ready");
    assert_eq!(first["error"]["code"], "not_ready");
    let missing: Vec<&str> = first["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(missing.contains(&"map"), "{first}");
    assert_eq!(
        first["checks"]["store"], "ok",
        "the store answered: {first}"
    );
    assert_eq!(ready["status"], "ready");
    for check in ["map", "bus", "store"] {
        assert_eq!(ready["checks"][check], "ok", "{ready}");
    }
    // Liveness never waited.
    let health = http
        .get(format!("{}/healthz", node.base_url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    let (status, body) = scrape(&node.base_url, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = scrape(&node.base_url, Some("scrape-me-7f3b")).await;
    assert_eq!(status, 401);
    let (status, text) = scrape(&node.base_url, Some("scrape-me-7f3a")).await;
    assert_eq!(status, 200);
    assert!(text.contains("tracker_http_connections_open"), "{text}");
    let log = node.stop_and_read_log();
    assert!(!log.contains("scrape-me-7f3a"), "the token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_shows_every_pipeline_metric() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "metrics.db");
    let key = create_tenant(dir.path(), &store);
    let node = Node::spawn(
        dir.path(),
        free_port(),
        &[
            "--store",
            &store,
            "--demo",
            "2",
            "--demo-speedup",
            "60",
            "--recustomize-every-s",
            "1",
            "--orders-every-s",
            "0.5",
        ],
        &[],
        "warn",
        "metrics.log",
    );
    let demo = node.wait_started(2);
    let base = node.base_url.clone();
    let (_, code) = order_for(&base, &key, "OBS-1").await;
    // A viewer on a demo page gets deltas (delivery latency), and one on the
    // posted order's page.
    let demo_code = demo[0].rsplit('/').next().expect("demo code").to_owned();
    let mut demo_ws = ws_connect(&format!(
        "{}/t/{demo_code}/ws",
        base.replacen("http", "ws", 1)
    ))
    .await;
    let mut ws = ws_connect(&format!("{}/t/{code}/ws", base.replacen("http", "ws", 1))).await;
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(10))
            .await
            .expect("snapshot")["type"],
        "snapshot"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    post_drive(&base, &key, "OBS-1").await;
    let mut deltas = 0;
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        if next_json(&mut demo_ws, Duration::from_secs(1))
            .await
            .is_some()
        {
            deltas += 1;
        }
    }
    assert!(deltas > 0, "the demo page got live updates");

    let (status, text) = scrape(&base, None).await;
    assert_eq!(status, 200);
    let m = parse_metrics(&text);
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&m, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} is missing:\n{text}"))
    };
    // Positions in, applied and refused, by source.
    assert!(
        v(
            "tracker_positions_total",
            &[("source", "simulate"), ("outcome", "received")]
        ) > 0.0
    );
    assert!(
        v(
            "tracker_positions_total",
            &[("source", "simulate"), ("outcome", "applied")]
        ) > 0.0
    );
    assert_eq!(
        v(
            "tracker_positions_total",
            &[("source", "http"), ("outcome", "received")]
        ),
        13.0
    );
    assert_eq!(
        v(
            "tracker_positions_total",
            &[("source", "http"), ("outcome", "accepted")]
        ),
        12.0
    );
    assert!(
        v(
            "tracker_positions_total",
            &[("source", "http"), ("outcome", "applied")]
        ) > 0.0
    );
    assert_eq!(
        v("tracker_positions_rejected_total", &[("source", "http")]),
        1.0
    );
    // Every stage's latency histogram has observations.
    for stage in ["decode", "match", "track", "store", "fanout"] {
        let count = v("tracker_stage_seconds_count", &[("stage", stage)]);
        let sum = v("tracker_stage_seconds_sum", &[("stage", stage)]);
        assert!(count > 0.0, "stage {stage}: {count}");
        assert!(
            (0.0..count * 5.0).contains(&sum),
            "stage {stage}: {sum} s over {count}"
        );
    }
    // Matching: most fixes of trucks driving on roads are matched.
    let rate = v("tracker_match_rate", &[]);
    assert!((0.5..=1.0).contains(&rate), "match rate {rate}");
    assert!(v("tracker_match_total", &[("outcome", "matched")]) > 0.0);
    for reason in ["no_road_nearby", "invalid_position", "other"] {
        assert!(v("tracker_unmatched_total", &[("reason", reason)]) >= 0.0);
    }
    // ETAs and the routes behind them.
    assert!(v("tracker_eta_updates_total", &[]) > 0.0);
    assert!(v("tracker_route_queries_total", &[]) > 0.0);
    // The routing metric: its age is bounded by the run; customizations are
    // timed when traffic moved an edge enough.
    let age = v("tracker_metric_age_seconds", &[]);
    assert!((0.0..120.0).contains(&age), "metric age {age}");
    if v("tracker_metrics_installed_total", &[]) > 0.0 {
        assert!(v("tracker_metric_customize_seconds_count", &[]) > 0.0);
    }
    assert!(v("tracker_traffic_samples_total", &[("outcome", "accepted")]) > 0.0);
    // The store.
    assert!(v("tracker_store_write_seconds_count", &[]) > 0.0);
    assert!(v("tracker_store_write_queue_depth", &[]) >= 0.0);
    assert!(v("tracker_engine_pending_events", &[]) >= 0.0);
    assert!(
        v("tracker_outbox_depth", &[]) >= 3.0,
        "three orders announced"
    );
    // WebSockets.
    assert_eq!(v("tracker_ws_open", &[]), 2.0);
    assert!(v("tracker_ws_opened_total", &[]) >= 2.0);
    assert!(v("tracker_ws_delivery_seconds_count", &[]) > 0.0);
    let delivery =
        v("tracker_ws_delivery_seconds_sum", &[]) / v("tracker_ws_delivery_seconds_count", &[]);
    assert!((0.0..5.0).contains(&delivery), "mean delivery {delivery} s");
    assert!(v("tracker_fanout_delivered_total", &[]) > 0.0);
    ws_close(ws).await;
    ws_close(demo_ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_kafka_the_consumer_lag_of_each_partition_is_shown() {
    let Some((brokers, topic)) = portal_support::kafka_broker("observability") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "kafka.db");
    let bus = format!("kafka://{brokers}/{topic}");
    let group = format!("g-{topic}");
    let node = Node::spawn(
        dir.path(),
        free_port(),
        &[
            "--store",
            &store,
            "--bus",
            &bus,
            "--kafka-group",
            &group,
            "--demo",
            "1",
        ],
        &[],
        "warn",
        "kafka.log",
    );
    node.wait_started(1);
    // librdkafka reports its statistics every five seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text) = scrape(&node.base_url, None).await;
        let m = parse_metrics(&text);
        let lag = value(&m, "tracker_kafka_consumer_lag", &[("topic", &topic)]);
        let received = value(
            &m,
            "tracker_positions_total",
            &[("source", "kafka"), ("outcome", "received")],
        );
        if let (Some(lag), Some(received)) = (lag, received)
            && received > 0.0
        {
            assert!(lag >= 0.0, "lag {lag}");
            let applied = value(
                &m,
                "tracker_positions_total",
                &[("source", "simulate"), ("outcome", "applied")],
            );
            assert!(applied.is_some_and(|n| n > 0.0), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no consumer lag in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `/readyz`'s `node`, once it satisfies `done` (or the deadline passes).
async fn node_view_until(base: &str, done: impl Fn(&Value) -> bool) -> Value {
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body: Value = match http.get(format!("{base}/readyz")).send().await {
            Ok(reply) => reply.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let node = body.get("node").cloned().unwrap_or(Value::Null);
        if done(&node) {
            return node;
        }
        assert!(Instant::now() < deadline, "readyz never got there: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn owned_partitions(node: &Value) -> Vec<i64> {
    node["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["partition"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_group_split_the_partitions_list_each_other_and_share_traffic() {
    let Some((brokers, topic)) = portal_support::kafka_broker("two-nodes") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = format!("kafka://{brokers}/{topic}");
    let group = format!("g-{topic}");
    let spawn = |name: &str, demo: &str| {
        let store = sqlite_url(dir.path(), &format!("{name}.db"));
        let node = Node::spawn(
            dir.path(),
            free_port(),
            &[
                "--store",
                &store,
                "--bus",
                &bus,
                "--kafka-group",
                &group,
                "--node-name",
                name,
                "--demo",
                demo,
                "--demo-speedup",
                "20",
                "--fleet-share-every-s",
                "1",
            ],
            &[],
            "info",
            &format!("{name}.log"),
        );
        node.wait_started(demo.parse().expect("a count"));
        node
    };
    // Only A has trucks (the demo fleet, through the topic to whichever node
    // owns their partitions).
    let a = spawn("node-a", "2");
    // Alone, a node owns every partition of the topic (serve makes four).
    let alone = node_view_until(&a.base_url, |n| owned_partitions(n).len() == 4).await;
    assert_eq!(alone["name"], "node-a");
    assert_eq!(alone["bus"], "kafka");
    assert_eq!(alone["group"], group.as_str());

    let b = spawn("node-b", "0");
    // After the rebalance each owns some, none twice, all covered.
    let split = |n: &Value| !owned_partitions(n).is_empty() && owned_partitions(n).len() < 4;
    let view_a = node_view_until(&a.base_url, split).await;
    let view_b = node_view_until(&b.base_url, split).await;
    let mut all = owned_partitions(&view_a);
    all.extend(owned_partitions(&view_b));
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3], "a: {view_a}\nb: {view_b}");

    // Each lists both members of the group. (tansu does not report a
    // member's client id or host, so the members are counted, not named;
    // Kafka names them `tracker-node-a` and `tracker-node-b`.)
    let both = |n: &Value| n["peers"].as_array().is_some_and(|ps| ps.len() == 2);
    node_view_until(&b.base_url, both).await;
    node_view_until(&a.base_url, both).await;

    // Whichever node owns the trucks, both traffic models learn their
    // passages: the other one through the fleet topic.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut accepted = Vec::new();
        let mut learned = 0.0;
        for node in [&a, &b] {
            let (_, text) = scrape(&node.base_url, None).await;
            let m = parse_metrics(&text);
            accepted.push(
                value(
                    &m,
                    "tracker_traffic_samples_total",
                    &[("outcome", "accepted")],
                )
                .unwrap_or(0.0),
            );
            learned +=
                value(&m, "tracker_fleet_records_total", &[("outcome", "learned")]).unwrap_or(0.0);
        }
        if accepted.iter().all(|n| *n > 0.0) && learned > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traffic samples accepted per node {accepted:?}, records learned from the fleet {learned}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A run that handles every kind of secret: an API key (created by the CLI,
/// used as a bearer token, also a wrong one), a tracking code (created with
/// an order, used on the page, its JSON, its WebSocket), the demo tenant's
/// key; then the log must contain none of them.
async fn secrets_stay_out_of_the_log(format: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "secrets.db");
    let key = create_tenant(dir.path(), &store);
    let node = Node::spawn(
        dir.path(),
        free_port(),
        &[
            "--store",
            &store,
            "--demo",
            "1",
            "--demo-speedup",
            "30",
            "--log-format",
            format,
        ],
        &[],
        "debug",
        "secrets.log",
    );
    let lines =
        node.stdout_until(|lines| lines.iter().any(|l| l.starts_with("demo tracking page: ")));
    let demo_key = lines
        .iter()
        .find_map(|l| l.split("(shown once): ").nth(1))
        .expect("the demo tenant's key, once, on stdout")
        .to_owned();
    let base = node.base_url.clone();
    let http = client();
    let (order_id, code) = order_for(&base, &key, "SECRET-1").await;
    for path in [
        format!("/t/{code}"),
        format!("/api/v1/track/{code}"),
        format!("/api/v1/track/{code}?from=log-test"),
    ] {
        let reply = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("page");
        assert_eq!(reply.status(), 200, "{path}");
        assert!(reply.headers().contains_key("x-request-id"));
    }
    let mut ws = ws_connect(&format!("{}/t/{code}/ws", base.replacen("http", "ws", 1))).await;
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(10))
            .await
            .expect("snapshot")["type"],
        "snapshot"
    );
    post_drive(&base, &key, "SECRET-1").await;
    let listed = http
        .get(format!("{base}/api/v1/orders/{order_id}"))
        .bearer_auth(&key)
        .header("x-request-id", "log-test-42")
        .send()
        .await
        .expect("order");
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["x-request-id"], "log-test-42");
    let refused = http
        .get(format!("{base}/api/v1/orders"))
        .bearer_auth(format!("{key}x"))
        .send()
        .await
        .expect("a wrong key");
    assert_eq!(refused.status(), 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    ws_close(ws).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let log = node.stop_and_read_log();
    // The requests were logged, under their route templates and ids.
    assert!(
        log.contains("/t/{code}"),
        "request spans are logged:\n{log}"
    );
    assert!(log.contains("/api/v1/track/{code}"));
    assert!(
        log.contains("log-test-42"),
        "the client's request id is kept"
    );
    assert!(log.contains("engine_batch"), "engine batches have spans");
    for (what, secret) in [
        ("the API key", key.as_str()),
        ("the demo tenant's API key", demo_key.as_str()),
        ("the tracking code", code.as_str()),
    ] {
        let found: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(found.is_empty(), "{what} is in the {format} log: {found:?}");
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer "),
        "an Authorization header is in the {format} log"
    );
    if format == "json" {
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let parsed: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(parsed["level"].is_string() && parsed["timestamp"].is_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_text_log() {
    secrets_stay_out_of_the_log("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_json_log() {
    secrets_stay_out_of_the_log("json").await;
}
