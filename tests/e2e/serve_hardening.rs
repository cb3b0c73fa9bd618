//! `tracker serve` facing hostile or broken surroundings, end to end with the
//! built binary: its stdout and stderr on a full disk (`/dev/full`) cost log
//! lines, counted, never positions; the server's flags cut off a client that
//! never finishes its headers and answer connections over the cap with a 503.

use crate::portal_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portal_support::*;

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_applied_while_stdout_and_stderr_are_on_a_full_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "full.db");
    let key = create_tenant(dir.path(), &store, "Full Disk Freight");
    // The URL cannot be read from stdout (it goes nowhere): the test picks the port.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Killed(
        Command::new(TRACKER)
            .current_dir(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--store", &store, "--demo", "1"])
            .env("RUST_LOG", "info")
            .stdout(dev_full())
            .stderr(dev_full())
            .spawn()
            .expect("tracker starts"),
    );
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("tracker serve exited ({status}) with its output on a full disk");
        }
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(Instant::now() < deadline, "tracker serve never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let order = dispatched_order(&base, &key, "FULL-1", "TRUCK-FULL").await;
    let code = order["tracking_code"].as_str().expect("code").to_owned();
    let start = chrono::Utc::now() - chrono::Duration::seconds(60);
    for (n, (lat, lon)) in [
        (39.2770, -76.6080),
        (39.2771, -76.6068),
        (39.2772, -76.6056),
    ]
    .into_iter()
    .enumerate()
    {
        // `post_position_at` asserts the 202.
        let at = start + chrono::Duration::seconds(20 * n as i64);
        post_position_at(&base, &key, "TRUCK-FULL", lat, lon, at).await;
    }
    // Applied: the tracking page's JSON shows the truck.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view: serde_json::Value = http
            .get(format!("{base}/api/v1/track/{code}"))
            .send()
            .await
            .expect("track")
            .json()
            .await
            .expect("track JSON");
        if !view["vehicle"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the posted positions were never applied: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tracker_log_write_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the failed-write counter is exported");
    assert!(failures > 0, "nothing was counted as lost:\n{metrics}");
    assert!(
        server.0.try_wait().expect("status").is_none(),
        "tracker serve is still running"
    );
}

/// Reads until the server closes the connection; `true` if it did within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// `GET /healthz` on `stream`: the status and the raw response head and body.
fn get_healthz(stream: &mut TcpStream) -> (u16, String) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    // Our answers are small: the head and body arrive together, or the
    // connection closes right after them.
    while !String::from_utf8_lossy(&text).contains("\r\n\r\n{") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn the_server_flags_cut_off_slow_headers_and_refuse_connections_over_the_cap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "limits.db");
    let server = Server::start(
        dir.path(),
        &[
            "--store",
            &store,
            "--header-read-timeout-s",
            "1",
            "--max-connections",
            "2",
        ],
        0,
    );
    let addr = server.base_url.trim_start_matches("http://").to_owned();

    // Half a request line, then nothing.
    let mut slow = TcpStream::connect(&addr).expect("connects");
    slow.write_all(b"GET /heal").expect("half a line");
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(4)),
        "a slow-header client is still connected after 4 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    drop(slow);
    std::thread::sleep(Duration::from_millis(100));

    // Two connections fill the cap; a third is told so, and closed.
    let mut first = TcpStream::connect(&addr).expect("connects");
    assert_eq!(get_healthz(&mut first).0, 200);
    let mut second = TcpStream::connect(&addr).expect("connects");
    assert_eq!(get_healthz(&mut second).0, 200);
    let mut third = TcpStream::connect(&addr).expect("connects");
    let (status, text) = get_healthz(&mut third);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("\"code\":\"overloaded\""), "{text}");
    assert!(text.to_lowercase().contains("retry-after: 1"), "{text}");
    assert!(closed_within(&mut third, Duration::from_secs(2)));
}

/// Starts `tracker serve` on `port` with `store` and no demo, its stderr (the
/// log, at info) in `log`; waits until `/readyz` says ready.
async fn start_ready(
    dir: &std::path::Path,
    port: u16,
    store: &str,
    log: &std::path::Path,
) -> Killed {
    let server = Killed(
        Command::new(TRACKER)
            .current_dir(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--store", store, "--demo", "0", "--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("tracker starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client()
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return server;
        }
        assert!(Instant::now() < deadline, "tracker serve never got ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM while positions flow in over HTTP: the node stops taking them,
/// finishes what it took, saves, and exits 0 within the bound; every position
/// it answered `accepted` went through the engine (the shutdown log line
/// counts them) and the last one is the truck's latest fix in the store (a
/// restart on the same store shows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_positions_flowing_stops_cleanly_and_keeps_every_accepted_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "sigterm.db");
    let key = create_tenant(dir.path(), &store, "Sigterm Freight");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let mut server = start_ready(dir.path(), port, &store, &log).await;
    let order = dispatched_order(&base, &key, "TERM-1", "TRUCK-TERM").await;
    let order_id = order["id"].as_str().expect("id").to_owned();

    // A truck driving east along Key Highway, a fix a second (device time),
    // posted as fast as the server answers, until the server stops answering.
    let poster = {
        let api = api(&base, &key);
        tokio::spawn(async move {
            let start = chrono::Utc::now() - chrono::Duration::seconds(600);
            let mut accepted = 0_u64;
            let mut last_accepted_at = None;
            for i in 0..3000_i64 {
                let at = start + chrono::Duration::seconds(i / 10);
                let at = at + chrono::Duration::milliseconds(100 * (i % 10));
                let lon = -76.6080 + 0.00001 * i as f64;
                let position = portal_api::contract::PositionBody {
                    speed_mps: Some(10.0),
                    ..portal_api::contract::PositionBody::new("TRUCK-TERM", at, 39.2770, lon)
                };
                match api.post_positions(&[position]).await {
                    Ok(receipt) => {
                        if receipt.accepted == 1 {
                            accepted += 1;
                            last_accepted_at = Some(at);
                        }
                    }
                    // Refused or unreachable: the server is stopping.
                    Err(_) => break,
                }
            }
            (accepted, last_accepted_at)
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = server.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(45),
            "tracker serve did not stop within 45 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let (accepted, last_accepted_at) = poster.await.expect("poster");
    assert!(
        accepted > 10,
        "only {accepted} positions were accepted before the stop"
    );
    let last_accepted_at = last_accepted_at.expect("a last accepted fix");

    let text = std::fs::read_to_string(&log).expect("log");
    let stopped: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "pipeline stopped")
        .unwrap_or_else(|| panic!("no shutdown summary in the log:\n{text}"));
    let positions = stopped["fields"]["positions"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position count in: {stopped}"));
    assert!(
        positions >= accepted,
        "{accepted} accepted but the engine saw {positions}: {stopped}"
    );
    assert_eq!(
        stopped["fields"]["every_task_stopped"], true,
        "a task outlived its stage: {stopped}"
    );

    // The store kept the last accepted fix: a restart shows it as the truck's
    // latest.
    let _restarted = start_ready(dir.path(), port, &store, &dir.path().join("again.log")).await;
    let view = api(&base, &key).order(&order_id).await.expect("the order");
    let expected = last_accepted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        view.feed.last_fix_at.as_deref(),
        Some(expected.as_str()),
        "the latest fix after the restart is not the last accepted one"
    );
    drop(server);
}
