//! Shared by the portal end-to-end tests: starting the real `tracker` binary,
//! talking to it over HTTP and WebSocket, and the rule for services (Redis,
//! Chromium): absent with `CI` set is a failure, absent otherwise a printed skip.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use portal_api::contract::{
    CustomerBody, NewOrderBody, PositionBody, StatusName, StatusUpdateBody, StopBody, StopKindName,
    WindowBody,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub mod browser;

pub const TRACKER: &str = env!("CARGO_BIN_EXE_tracker");

/// Whether a needed service is there. Without it: a failure under CI, a skip
/// (with a notice) elsewhere.
pub fn service_available(name: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required under CI but is not available");
    }
    eprintln!("SKIPPED: {name} is not available (set CI to make this a failure)");
    false
}

pub fn redis_available() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().expect("address"),
        Duration::from_millis(500),
    )
    .is_ok();
    service_available("Redis at 127.0.0.1:6379", up)
}

/// The Kafka broker of `TRACKER_TEST_KAFKA` (tansu, started by `.ci/test`)
/// and a topic name no other test or run uses, or `None` when it is absent
/// outside CI.
pub fn kafka_broker(test: &str) -> Option<(String, String)> {
    let brokers = std::env::var("TRACKER_TEST_KAFKA").ok();
    let reachable = brokers.as_deref().is_some_and(|a| {
        a.parse::<std::net::SocketAddr>()
            .is_ok_and(|s| std::net::TcpStream::connect_timeout(&s, Duration::from_secs(2)).is_ok())
    });
    if !service_available("the Kafka broker of TRACKER_TEST_KAFKA", reachable) {
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let topic = format!("t-{test}-{}-{nanos}", std::process::id());
    Some((brokers?, topic))
}

/// A running `tracker serve`, killed on drop.
pub struct Server {
    child: Child,
    pub base_url: String,
    pub demo_urls: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `tracker serve --listen 127.0.0.1:0 ARGS…` in `dir` and waits for
    /// its `listening on` line and `demo` demo lines.
    pub fn start(dir: &Path, args: &[&str], demo: usize) -> Server {
        let demo_arg = demo.to_string();
        let mut child = Command::new(TRACKER)
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--demo", &demo_arg])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tracker starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut base_url = None;
        let mut demo_urls = Vec::new();
        while base_url.is_none() || demo_urls.len() < demo {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("tracker serve printed its URLs in time");
            if let Some(url) = line.strip_prefix("listening on ") {
                base_url = Some(url.trim().to_owned());
            } else if let Some(url) = line.strip_prefix("demo tracking page: ") {
                demo_urls.push(url.trim().to_owned());
            }
        }
        Server {
            child,
            base_url: base_url.expect("a listening line"),
            demo_urls,
        }
    }

    /// Stops the server as systemd would (SIGTERM), waiting at most `limit`
    /// for it to drain and exit (then SIGKILL on drop).
    pub fn terminate(mut self, limit: Duration) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM to {pid}");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tracker serve did not stop within {limit:?} of SIGTERM");
    }

    pub fn ws_url(&self, code: &str) -> String {
        format!(
            "{}/t/{code}/ws",
            self.base_url.replacen("http://", "ws://", 1)
        )
    }
}

/// Runs `tracker ARGS…` in `dir` to the end; it must succeed and print JSON,
/// which is returned.
pub fn tracker_json(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(TRACKER)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("tracker runs");
    assert!(
        out.status.success(),
        "tracker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// `tracker tenant create NAME --store URL` → the API key.
pub fn create_tenant(dir: &Path, store: &str, name: &str) -> String {
    let json = tracker_json(dir, &["tenant", "create", name, "--store", store]);
    assert!(
        json["tenant_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("ten_"))
    );
    json["api_key"].as_str().expect("api_key").to_owned()
}

pub fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// The typed API client for one tenant of a running server.
pub fn api(base: &str, key: &str) -> portal_api::client::Client {
    portal_api::client::Client::new(base, key).expect("API client")
}

/// A stop in central Baltimore with a window on 25 Nov 2025 (UTC hours).
fn baltimore_stop(
    kind: StopKindName,
    name: &str,
    lat: f64,
    lon: f64,
    hours: (u32, u32),
) -> StopBody {
    let at = |h: u32| {
        chrono::NaiveDate::from_ymd_opt(2025, 11, 25)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .expect("a time")
            .and_utc()
    };
    StopBody {
        kind,
        name: name.to_owned(),
        address: None,
        lat,
        lon,
        time_zone: Some("America/New_York".to_owned()),
        window: Some(WindowBody {
            from: at(hours.0),
            to: at(hours.1),
        }),
        geofence: None,
    }
}

/// Creates a dispatched order for `vehicle` in central Baltimore through the
/// typed client; returns its JSON (with the tracking code).
pub async fn dispatched_order(base: &str, key: &str, reference: &str, vehicle: &str) -> Value {
    let api = api(base, key);
    let order = NewOrderBody {
        reference: reference.to_owned(),
        customer: CustomerBody {
            name: "Receiver Inc".to_owned(),
            email: None,
        },
        vehicle_id: Some(vehicle.to_owned()),
        driver_name: None,
        stops: vec![
            baltimore_stop(
                StopKindName::Pickup,
                "Key Highway Warehouse",
                39.2770,
                -76.6080,
                (13, 15),
            ),
            baltimore_stop(
                StopKindName::Delivery,
                "Canton Crossing",
                39.2760,
                -76.5700,
                (18, 20),
            ),
        ],
    };
    let created = api.create_order(&order).await.expect("create order");
    let dispatched = api
        .post_status(
            &created.id,
            &StatusUpdateBody {
                status: StatusName::Dispatched,
                at: None,
                note: None,
                source: None,
                stop_index: None,
                visibility: None,
            },
        )
        .await
        .expect("dispatch");
    assert_eq!(dispatched.status, "dispatched");
    serde_json::to_value(created).expect("order JSON")
}

pub async fn post_position(base: &str, key: &str, vehicle: &str, lat: f64, lon: f64) {
    post_position_at(base, key, vehicle, lat, lon, chrono::Utc::now()).await;
}

/// Posts one position with the given device time (202, through the typed client).
pub async fn post_position_at(
    base: &str,
    key: &str,
    vehicle: &str,
    lat: f64,
    lon: f64,
    at: chrono::DateTime<chrono::Utc>,
) {
    let position = PositionBody {
        speed_mps: Some(12.0),
        ..PositionBody::new(vehicle, at, lat, lon)
    };
    api(base, key)
        .post_positions(&[position])
        .await
        .expect("post positions");
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connects");
    ws
}

/// The next JSON text message (skipping heartbeats), within `timeout`.
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("JSON message");
                if value["type"] != "heartbeat" {
                    return Some(value);
                }
            }
            Message::Close(frame) => {
                return Some(json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))}));
            }
            _ => {}
        }
    }
}

pub async fn ws_close(mut ws: Ws) {
    let _ = ws.send(Message::Close(None)).await;
}

pub fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("test-artifacts dir");
    dir
}

/// The next message of type `kind`, skipping others (a delta published just
/// before the connection may still be in flight from another node).
pub async fn next_of_type(ws: &mut Ws, kind: &str, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_json(ws, left).await?;
        if message["type"] == kind {
            return Some(message);
        }
    }
}
