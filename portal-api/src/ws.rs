//! `GET /t/{code}/ws`: the live part of a tracking page.
//!
//! A connection first gets a full snapshot, then deltas (`position`, `eta`,
//! `status`) as they are published, and a `heartbeat` every few seconds (with a
//! WebSocket ping, so dead peers are noticed). Memory per connection is kept small
//! on purpose: tungstenite's buffers are configured down from their 128 KiB
//! defaults, the subscription is a cursor into the order's shared ring, and a
//! viewer that cannot keep up is never queued for: it lags, and gets a fresh
//! snapshot (latest state only) once it can take one. A send that stalls longer
//! than [`SEND_TIMEOUT`] ends the connection; the page reconnects and resumes from
//! a new snapshot. A revoked or rotated link closes the connection (4404) on
//! the `link` message the change publishes, and at the latest at the next
//! check of the code against the store ([`LINK_RECHECK_BEATS`]), for when that
//! message cannot reach this node.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use engine::OrderId;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::api::responses::{NotFound, RateLimited};
use crate::api::{ClientIp, PathParams};
use crate::contract::ErrorBody;
use crate::error::AppError;
use crate::fanout::LiveKind;
use crate::secrets::secret_hash;
use crate::state::AppState;

/// Bytes tungstenite reads from the socket at a time. Clients only send control
/// frames, so a small buffer is plenty.
pub const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Outgoing bytes buffered before a write is forced.
pub const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// A hard cap on buffered outgoing bytes: beyond it a send fails instead of growing.
pub const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// Largest message a client may send.
const MAX_INCOMING_BYTES: usize = 4 * 1024;
/// A send that takes longer than this means the client is gone or hopeless.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Close code for a link that was revoked or rotated while open.
const CLOSE_LINK_GONE: u16 = 4404;
/// Every this many heartbeats a connection asks the store whether its code
/// still opens its order (a minute at the default 20 s), so a link revoked on
/// a node whose `link` message cannot reach this one (Redis away) still
/// closes here within that time, not only once Redis is back.
const LINK_RECHECK_BEATS: u32 = 3;

#[utoipa::path(
    get,
    path = "/t/{code}/ws",
    tag = "public",
    summary = "Live updates (WebSocket: a snapshot, then deltas)",
    params(("code" = String, Path, description = "the tracking code")),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "not a WebSocket upgrade", body = ErrorBody),
        NotFound,
        RateLimited
    ),
)]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ip: ClientIp,
    PathParams(code): PathParams<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let order = crate::api::track::resolve(&state, ip, &code).await?;
    let ws = ws.map_err(|e| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "websocket_expected",
            format!("this route takes a WebSocket upgrade: {}", e.body_text()),
        )
    })?;
    let code = code.to_ascii_lowercase();
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_INCOMING_BYTES)
        .max_frame_size(MAX_INCOMING_BYTES)
        .on_upgrade(move |socket| session(state, order, code, socket))
        .into_response())
}

/// Why a session ended (for the log only).
#[derive(Debug)]
enum End {
    ClientGone,
    SendFailed,
    LinkGone,
    Silent,
}

async fn send(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::SendFailed),
    }
}

async fn snapshot_message(state: &AppState, order: &OrderId, code: &str) -> Result<Utf8Bytes, End> {
    match crate::api::track::current_view(state, order, code).await {
        Ok(Some((_, public))) => {
            let mut json = json!(public);
            json["type"] = json!("snapshot");
            json["server_time"] = json!(crate::view::rfc3339(Utc::now()));
            Ok(json.to_string().into())
        }
        _ => Err(End::LinkGone),
    }
}

async fn code_still_valid(state: &AppState, order: &OrderId, code: &str) -> bool {
    code_opens(state, order, code).await == Some(true)
}

/// Whether the code still opens this order; `None` when the store cannot say
/// just now (a periodic check then leaves the page open).
async fn code_opens(state: &AppState, order: &OrderId, code: &str) -> Option<bool> {
    match state.store().order_by_code_hash(secret_hash(code)).await {
        Ok(Some(current)) => Some(current == *order),
        Ok(None) => Some(false),
        Err(_) => None,
    }
}

struct OpenGauge<'a>(&'a AppState);

impl Drop for OpenGauge<'_> {
    fn drop(&mut self) {
        self.0.inner.metrics.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn session(state: AppState, order: OrderId, code: String, mut socket: WebSocket) {
    let metrics = &state.inner.metrics;
    metrics.ws_open.fetch_add(1, Ordering::Relaxed);
    metrics.ws_opened_total.fetch_add(1, Ordering::Relaxed);
    let _gauge = OpenGauge(&state);
    let end = run(&state, &order, &code, &mut socket).await;
    if let Err(End::LinkGone) = end {
        let frame = CloseFrame {
            code: CLOSE_LINK_GONE,
            reason: "tracking link no longer valid".into(),
        };
        let _ = send(&mut socket, Message::Close(Some(frame))).await;
    }
    tracing::debug!(order = %order, ?end, "tracking WebSocket closed");
}

async fn run(
    state: &AppState,
    order: &OrderId,
    code: &str,
    socket: &mut WebSocket,
) -> Result<(), End> {
    let metrics = &state.inner.metrics;
    // Subscribe before reading the snapshot, so nothing published in between is
    // lost (at worst a delta repeats what the snapshot already shows).
    let mut updates = state.inner.fanout.hub().subscribe(order);
    send(
        socket,
        Message::Text(snapshot_message(state, order, code).await?),
    )
    .await?;
    let every = state.config().heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    let mut last_heard = Instant::now();
    let mut beats: u32 = 0;
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(message) => match message.kind {
                    LiveKind::Link => {
                        if !code_still_valid(state, order, code).await {
                            return Err(End::LinkGone);
                        }
                    }
                    LiveKind::Resync => {
                        metrics.ws_resyncs_total.fetch_add(1, Ordering::Relaxed);
                        send(socket, Message::Text(snapshot_message(state, order, code).await?)).await?;
                    }
                    _ => {
                        metrics.ws_messages_total.fetch_add(1, Ordering::Relaxed);
                        send(socket, Message::Text(message.text.clone())).await?;
                        // From the update entering the portal (on whichever
                        // node) to its bytes handed to this viewer's socket.
                        let latency = Utc::now() - message.published_at;
                        let latency_s = latency.num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
                        metrics::histogram!("tracker_ws_delivery_seconds").record(latency_s);
                    }
                },
                Err(RecvError::Lagged(_)) => {
                    // Too slow for the deltas: skip them and send the state as it is now.
                    metrics.ws_resyncs_total.fetch_add(1, Ordering::Relaxed);
                    send(socket, Message::Text(snapshot_message(state, order, code).await?)).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > every * 3 {
                    return Err(End::Silent);
                }
                beats = beats.wrapping_add(1);
                if beats.is_multiple_of(LINK_RECHECK_BEATS)
                    && code_opens(state, order, code).await == Some(false)
                {
                    return Err(End::LinkGone);
                }
                let beat = json!({"type": "heartbeat", "at": crate::view::rfc3339(Utc::now())});
                send(socket, Message::Text(beat.to_string().into())).await?;
                send(socket, Message::Ping(Default::default())).await?;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::ClientGone),
                Some(Ok(_)) => last_heard = Instant::now(),
            },
        }
    }
}
