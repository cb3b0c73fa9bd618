//! The server in front of the app (`portal_api::serve`), over real sockets on
//! 127.0.0.1: a client that never finishes its headers is cut off at the
//! header-read timeout; a kept-alive connection that goes quiet is closed at the
//! idle timeout and not before; a WebSocket outlives both; connections over the
//! cap get a JSON 503 with `Retry-After`, and the cap frees up when one closes;
//! the public rate limit sees the customer behind a trusted proxy, and only
//! behind one. Also the per-route body limits (413 naming the limit).

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use futures::{SinkExt, StreamExt};
use portal_api::{AppState, PortalConfig, ServerLimits, TrustedProxies};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A server on a free port, stopped (gracefully) on drop.
struct Running {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(state: AppState, limits: ServerLimits) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(portal_api::serve(listener, state, limits, async move {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

fn limits(header_read_s: f64, idle_s: f64, max_connections: usize) -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_secs_f64(header_read_s),
        idle_timeout: Duration::from_secs_f64(idle_s),
        max_connections,
    }
}

/// A connection from `local` (any 127.x.y.z is this host).
async fn connect_from(local: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(local), 0))
        .expect("bind the client address");
    socket.connect(server).await.expect("connects")
}

async fn connect(server: SocketAddr) -> TcpStream {
    connect_from(Ipv4Addr::LOCALHOST, server).await
}

/// A response read off a raw connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    json: Value,
}

/// Sends `GET path` with `extra` header lines and reads the whole response
/// (every answer of ours carries a `content-length`).
async fn get(stream: &mut TcpStream, path: &str, extra: &str) -> RawReply {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{extra}\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    read_reply(stream).await
}

async fn read_reply(stream: &mut TcpStream) -> RawReply {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "the connection closed before a response");
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "the connection closed inside the body");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let json = serde_json::from_slice(&bytes[head_end..head_end + length]).unwrap_or(Value::Null);
    RawReply { status, head, json }
}

/// Waits up to `within` for the server to close `stream`: `true` if it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off_at_the_header_timeout() {
    let t = test_app().await;
    let server = start(t.state.clone(), limits(1.0, 30.0, 100)).await;

    // Half a request line, then nothing: a slow-loris client.
    let mut slow = connect(server.addr).await;
    slow.write_all(b"GET /heal").await.expect("half a line");
    // Connected and silent from the start.
    let mut silent = connect(server.addr).await;
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "the slow-header client is still connected after 3 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "cut off after {waited:?}, before its timeout"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(1)).await,
        "a connection that never sent anything is held"
    );

    // A client that sends its request in time is served as ever.
    let mut good = connect(server.addr).await;
    assert_eq!(get(&mut good, "/healthz", "").await.status, 200);
}

#[tokio::test]
async fn a_quiet_kept_alive_connection_is_closed_at_the_idle_timeout_and_not_before() {
    let t = test_app().await;
    let server = start(t.state.clone(), limits(1.0, 3.0, 100)).await;
    let mut conn = connect(server.addr).await;
    assert_eq!(get(&mut conn, "/healthz", "").await.status, 200);
    // Past the header timeout: waiting for the next request is not slow headers.
    assert!(
        !closed_within(&mut conn, Duration::from_secs(2)).await,
        "closed while idle before the idle timeout"
    );
    assert_eq!(get(&mut conn, "/healthz", "").await.status, 200);
    let quiet_from = Instant::now();
    assert!(
        closed_within(&mut conn, Duration::from_secs(5)).await,
        "still open long after the idle timeout"
    );
    assert!(quiet_from.elapsed() >= Duration::from_millis(2800));
}

#[tokio::test]
async fn a_websocket_outlives_the_header_and_idle_timeouts() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    // No heartbeat inside the test: the socket is quiet.
    config.heartbeat = Duration::from_secs(60);
    let t = test_app_with(config, None).await;
    let order = create_order(&t.app, &t.key_a, "WS-LONG", Some("TRUCK-WS")).await;
    let server = start(t.state.clone(), limits(1.0, 1.0, 100)).await;
    let url = format!("ws://{}/t/{}/ws", server.addr, code_of(&order));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("WebSocket connects");
    let first = tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("a snapshot in time");
    assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ws.send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .expect("the WebSocket is still open");
    let pong = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Pong(payload)) => return Some(payload),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    })
    .await
    .expect("an answer in time");
    assert_eq!(pong.as_deref(), Some(&b"still there?"[..]));
}

#[tokio::test]
async fn connections_over_the_cap_get_a_json_503_and_the_cap_frees_when_one_closes() {
    let t = test_app().await;
    let server = start(t.state.clone(), limits(10.0, 30.0, 2)).await;
    let mut first = connect(server.addr).await;
    assert_eq!(get(&mut first, "/healthz", "").await.status, 200);
    let mut second = connect(server.addr).await;
    assert_eq!(get(&mut second, "/healthz", "").await.status, 200);

    let mut third = connect(server.addr).await;
    let refused = get(&mut third, "/healthz", "").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json["error"]["code"], "overloaded", "{refused:?}");
    assert!(
        refused.head.contains("retry-after: 1\r\n"),
        "{}",
        refused.head
    );
    assert!(
        closed_within(&mut third, Duration::from_secs(2)).await,
        "an overloaded answer is followed by a close, not a hang"
    );

    drop(first);
    // The server notices the close on its next read.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = connect(server.addr).await;
        let reply = get(&mut again, "/metrics", "").await;
        if reply.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cap stayed full after a close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&mut second, "/healthz", "").await.status, 200);
}

/// `GET /api/v1/track/UNKNOWN` from `local` with extra headers: 404 while the
/// client's bucket has tokens, 429 after.
async fn lookup_from(server: SocketAddr, local: Ipv4Addr, extra: &str) -> u16 {
    let mut conn = connect_from(local, server).await;
    get(&mut conn, "/api/v1/track/abcdefghijklmnopqrstuvwx", extra)
        .await
        .status
}

#[tokio::test]
async fn customers_behind_a_trusted_proxy_get_their_own_buckets_and_nobody_else_escapes_theirs() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.public_burst = 2;
    config.public_per_s = 0.01;
    // The proxy is 127.0.0.1; 127.0.0.2 is a client on the open internet.
    config.trusted_proxies = TrustedProxies::parse(&["127.0.0.1/32"]).expect("CIDR");
    let t = test_app_with(config, None).await;
    let server = start(t.state.clone(), limits(10.0, 30.0, 100)).await;
    let proxy = Ipv4Addr::LOCALHOST;
    let (alice, bob) = (
        "x-forwarded-for: 198.51.100.1\r\n",
        "forwarded: for=198.51.100.2;proto=https\r\n",
    );

    assert_eq!(lookup_from(server.addr, proxy, alice).await, 404);
    assert_eq!(lookup_from(server.addr, proxy, alice).await, 404);
    assert_eq!(lookup_from(server.addr, proxy, alice).await, 429);
    // Bob comes through the same proxy and has his own bucket.
    assert_eq!(lookup_from(server.addr, proxy, bob).await, 404);
    assert_eq!(lookup_from(server.addr, proxy, bob).await, 404);
    assert_eq!(lookup_from(server.addr, proxy, bob).await, 429);

    // A client that is not a trusted proxy names a new address every time.
    let mallory = Ipv4Addr::new(127, 0, 0, 2);
    let mut statuses = Vec::new();
    for n in 10..14 {
        let spoof = format!("x-forwarded-for: 203.0.113.{n}\r\nforwarded: for=203.0.113.{n}\r\n");
        statuses.push(lookup_from(server.addr, mallory, &spoof).await);
    }
    assert_eq!(statuses, [404, 404, 429, 429]);
}

fn json_request(method: Method, uri: &str, key: &str, body: String) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn bodies_over_a_routes_limit_are_413_naming_the_limit() {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.max_batch = 10;
    let t = test_app_with(config, None).await;

    // An order of 1.5 MiB (a huge note): over the orders limit of 1 MiB.
    let mut order = order_body("BIG-1", Some("TRUCK-1"));
    order["notes"] = json!("x".repeat(1536 * 1024));
    let reply = send(
        &t.app,
        json_request(Method::POST, "/api/v1/orders", &t.key_a, order.to_string()),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"]["code"], "body_too_large");
    assert!(
        error_message(&reply).contains("1048576 bytes"),
        "{}",
        reply.text
    );

    // Positions: sized by the batch limit (10 items here, 1 KiB each).
    let padding = "x".repeat(2048);
    let batch = json!([{"vehicle_id": "TRUCK-1", "time": "2025-11-25T13:00:00Z",
                        "lat": 39.28, "lon": -76.61, "note": padding},
                       {"vehicle_id": "TRUCK-1", "time": "2025-11-25T13:00:01Z",
                        "lat": 39.28, "lon": -76.61, "note": padding.repeat(4)}]);
    let reply = send(
        &t.app,
        json_request(
            Method::POST,
            "/api/v1/positions",
            &t.key_a,
            batch.to_string(),
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert!(
        error_message(&reply).contains("10240 bytes"),
        "{}",
        reply.text
    );

    // Everything else is small: a status change of 100 KiB.
    let created = create_order(&t.app, &t.key_a, "SMALL-1", Some("TRUCK-2")).await;
    let id = created["id"].as_str().expect("id");
    let status = json!({"status": "dispatched", "note": "n".repeat(100 * 1024)});
    let reply = send(
        &t.app,
        json_request(
            Method::POST,
            &format!("/api/v1/orders/{id}/status"),
            &t.key_a,
            status.to_string(),
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert!(
        error_message(&reply).contains("65536 bytes"),
        "{}",
        reply.text
    );

    // Under the limits, the same routes answer as ever.
    let reply = set_status(&t.app, &t.key_a, id, "dispatched").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}
