//! The portal's live path, measured against a real `tracker serve` process: many
//! tracking-page WebSockets held open on one order, memory per connection (the
//! server's RSS growth divided by the connections), updates fanned out per second,
//! and position-in (HTTP POST) to WebSocket-out latency percentiles.
//!
//! Under `cargo bench` it opens `TRACKER_BENCH_WS` connections (default 10 000;
//! the goal is 50 000 per node at ≤ 16 KiB each, more than the file-descriptor
//! limit of a 2-core test box allows with clients in the same machine); in test
//! mode 200. Criterion times one fanned-out update (post a position, wait until
//! every viewer has it) against the baseline of the same post with no viewer.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const TRACKER: &str = env!("CARGO_BIN_EXE_tracker");
/// Largest sequence number of a position in one run.
const MAX_SEQ: usize = 100_000;

struct ServerProcess {
    child: Child,
    base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn start_server(dir: &std::path::Path) -> (ServerProcess, String) {
    let store = format!("sqlite://{}", dir.join("bench.db").display());
    let out = Command::new(TRACKER)
        .args(["tenant", "create", "bench", "--store", &store])
        .output()
        .expect("tenant create");
    let key = serde_json::from_slice::<Value>(&out.stdout).expect("json")["api_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let mut child = Command::new(TRACKER)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "0",
            "--store",
            &store,
            // Every viewer here comes from 127.0.0.1: lift the per-IP limit.
            "--public-burst",
            "1000000",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tracker serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    (ServerProcess { child, base }, key)
}

/// Shared by every viewer task: what arrived, and when each position was sent.
struct Tally {
    t0: Instant,
    sent_ns: Vec<AtomicU64>,
    delivered: AtomicU64,
    resyncs: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

impl Tally {
    /// Messages that reached viewers: deltas, or a snapshot for a viewer that fell
    /// behind (it then has the latest state too).
    fn reached(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.resyncs.load(Ordering::Relaxed)
    }

    fn record(&self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match message["type"].as_str() {
            Some("position") => {
                let now_ns = self.t0.elapsed().as_nanos() as u64;
                let seq = message["vehicle"]["speed_mps"].as_f64().unwrap_or(0.0) as usize;
                if let Some(sent) = self.sent_ns.get(seq) {
                    let sent = sent.load(Ordering::Acquire);
                    if sent > 0 {
                        self.latencies_us
                            .lock()
                            .push(((now_ns.saturating_sub(sent)) / 1000) as u32);
                    }
                }
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Some("snapshot") => {
                self.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    vehicle: &str,
    seq: usize,
    tally: &Tally,
) {
    // The sequence number rides in `speed_mps` (0..90 allowed) modulo the range;
    // latency is looked up by it. Times increase so no fix is dropped as stale.
    let time = chrono::Utc::now() + chrono::Duration::milliseconds(seq as i64);
    tally.sent_ns[seq % 90].store(tally.t0.elapsed().as_nanos() as u64, Ordering::Release);
    let reply = http
        .post(format!("{base}/api/v1/positions"))
        .bearer_auth(key)
        .json(&json!([{"vehicle_id": vehicle, "time": time.to_rfc3339(), "lat": 39.28, "lon": -76.6, "speed_mps": (seq % 90) as f64}]))
        .send()
        .await
        .expect("post");
    assert_eq!(reply.status(), 202);
}

/// CPU time (user + system) a process has used, seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the full line (11 and 12 here),
    // in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

/// Whether a filter on the command line (`cargo bench -- graph/`) leaves this
/// group in: its setup (a server and thousands of sockets) is too heavy to run
/// for nothing.
fn selected(group: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| group.contains(f.as_str()) || f.contains(group))
}

fn ws_fanout(c: &mut Criterion) {
    if !selected("portal/") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let n_viewers: usize = if full {
        std::env::var("TRACKER_BENCH_WS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    } else {
        200
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let (server, key) = start_server(dir.path());
    let base = server.base.clone();
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let tally = Arc::new(Tally {
        t0: Instant::now(),
        sent_ns: (0..MAX_SEQ).map(|_| AtomicU64::new(0)).collect(),
        delivered: AtomicU64::new(0),
        resyncs: AtomicU64::new(0),
        latencies_us: Mutex::new(Vec::new()),
    });

    let code = runtime.block_on(async {
        let order: Value = http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&key)
            .json(&json!({"reference": "BENCH-1", "customer": {"name": "Bench"}, "vehicle_id": "BENCH-TRUCK",
                "stops": [{"kind": "pickup", "name": "A", "lat": 39.277, "lon": -76.608},
                          {"kind": "delivery", "name": "B", "lat": 39.276, "lon": -76.570}]}))
            .send().await.expect("order").json().await.expect("json");
        let id = order["id"].as_str().expect("id").to_owned();
        http.post(format!("{base}/api/v1/orders/{id}/status")).bearer_auth(&key)
            .json(&json!({"status": "dispatched"})).send().await.expect("dispatch");
        order["tracking_code"].as_str().expect("code").to_owned()
    });
    let ws_url = format!("{}/t/{code}/ws", base.replacen("http://", "ws://", 1));

    // Open the viewers; each keeps reading in its own task, as a browser would.
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let open = |count: usize| {
        let tally = tally.clone();
        let ws_url = ws_url.clone();
        runtime.block_on(async move {
            for _ in 0..count {
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(&ws_url, Some(config), false)
                        .await
                        .expect("viewer connects");
                let _snapshot = ws.next().await;
                let tally = tally.clone();
                tokio::spawn(async move {
                    while let Some(Ok(message)) = ws.next().await {
                        if let Message::Text(text) = message {
                            tally.record(&text);
                        }
                    }
                });
            }
        })
    };
    open(10);
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(pid);
    let started = Instant::now();
    open(n_viewers - 10);
    let open_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_kib(pid);
    let per_conn_kib = (rss_after.saturating_sub(rss_before)) as f64 / (n_viewers - 10) as f64;
    println!(
        "portal/ws: {n_viewers} connections held on one order (opened in {open_s:.1} s); server RSS {rss_before} KiB -> {rss_after} KiB = {per_conn_kib:.1} KiB per connection (goal <= 16)"
    );

    // Throughput: a burst of updates, each to every viewer.
    let burst = if full { 20 } else { 5 };
    let delivered_before = tally.delivered.load(Ordering::Relaxed);
    let reached_before = tally.reached();
    let cpu_before = cpu_s(pid);
    let started = Instant::now();
    runtime.block_on(async {
        for seq in 1..=burst {
            post(&http, &base, &key, "BENCH-TRUCK", seq, &tally).await;
        }
        let target = reached_before + (burst * n_viewers) as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while tally.reached() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = tally.delivered.load(Ordering::Relaxed) - delivered_before;
    let reached = tally.reached() - reached_before;
    let server_cpu_s = cpu_s(pid) - cpu_before;
    println!(
        "portal/ws: burst of {burst} updates x {n_viewers} viewers in {elapsed:.2} s: {:.0} messages/s reached viewers ({delivered} as deltas, {} as a fresh snapshot after falling behind)",
        reached as f64 / elapsed,
        reached - delivered
    );
    println!(
        "portal/ws: server CPU {server_cpu_s:.2} s for those = {:.1} µs per delivered message (the clients share the same 2 cores)",
        server_cpu_s * 1e6 / reached.max(1) as f64
    );
    let messages_per_s = reached as f64 / elapsed;

    // Latency below saturation: updates paced so the offered load is about
    // half of the delivery rate just measured.
    let interval = Duration::from_secs_f64((2.0 * n_viewers as f64 / messages_per_s).max(0.1));
    tally.latencies_us.lock().clear();
    let n_updates = if full { 20 } else { 5 };
    runtime.block_on(async {
        for seq in 1..=n_updates {
            post(&http, &base, &key, "BENCH-TRUCK", seq, &tally).await;
            tokio::time::sleep(interval).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let mut latencies = tally.latencies_us.lock().clone();
    latencies.sort_unstable();
    println!(
        "portal/ws: position-in to WebSocket-out, one update every {:.0} ms to {n_viewers} viewers, {} deliveries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 100 ms)",
        interval.as_secs_f64() * 1000.0,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );

    // Criterion: one update to every viewer, against the same post with none.
    let mut group = c.benchmark_group("portal/fanout");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let seq = AtomicU64::new(1000);
    group.bench_function("post_position_no_viewers", |b| {
        b.iter(|| {
            let s = seq.fetch_add(1, Ordering::Relaxed) as usize % MAX_SEQ;
            runtime.block_on(post(&http, &base, &key, "NOBODY-WATCHES", s, &tally));
        })
    });
    group.bench_function(format!("post_position_{n_viewers}_viewers"), |b| {
        b.iter(|| {
            let s = seq.fetch_add(1, Ordering::Relaxed) as usize % MAX_SEQ;
            let target = tally.reached() + n_viewers as u64;
            runtime.block_on(async {
                post(&http, &base, &key, "BENCH-TRUCK", s, &tally).await;
                let deadline = Instant::now() + Duration::from_secs(30);
                while tally.delivered.load(Ordering::Relaxed) < target && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            });
        })
    });
    group.finish();
    drop(server);
    runtime.shutdown_timeout(Duration::from_secs(1));
}

criterion::criterion_group!(benches, ws_fanout);
