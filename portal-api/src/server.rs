//! The HTTP server around [`crate::app`]: our own accept loop over hyper, so a
//! node cannot be worn down by clients that hold sockets and do nothing. It owns
//! four limits: a connection cap (a connection over it is answered `503
//! overloaded` with `Retry-After` and closed), a header-read timeout (a request
//! head must arrive within it, counted from the connection's first byte of that
//! head, or from the accept for a connection that has sent nothing yet), an idle
//! timeout (a kept-alive connection, or a request whose bytes have stopped
//! moving, is closed after it) and graceful shutdown (no new connections, open
//! requests finish).
//!
//! Why a watchdog of our own instead of hyper's `header_read_timeout`: hyper's
//! header timer also runs while a kept-alive connection waits for its next
//! request, so it cannot tell a slow-header client from an idle keep-alive one.
//! Upgraded connections (the tracking page's WebSockets, held for hours) leave the
//! watchdog when hyper hands them to the WebSocket task; they still count against
//! the connection cap until their socket closes, because the cap exists to keep
//! file descriptors for new clients.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::error::{Error, Result};
use crate::state::AppState;

/// The server's connection limits, built by the binary from flags.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// The longest a request head may take to arrive.
    pub header_read_timeout: Duration,
    /// The longest a connection may sit with no bytes moving (between kept-alive
    /// requests, or inside a stalled one). WebSockets are exempt.
    pub idle_timeout: Duration,
    /// Open connections (WebSockets included) above which new ones get a 503.
    pub max_connections: usize,
}

/// Connections over the cap that are being answered 503 at once; beyond this
/// they are closed without an answer (answering needs a socket too).
const MAX_REFUSING: usize = 256;
/// The `Retry-After` of a 503 for a connection over the cap.
const OVERLOADED_RETRY_AFTER_S: u64 = 1;

impl ServerLimits {
    /// Checks every limit; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |setting: &'static str, value: Duration| {
            if value.is_zero() {
                Err(Error::InvalidConfig {
                    setting,
                    reason: "must be more than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("header_read_timeout", self.header_read_timeout)?;
        positive("idle_timeout", self.idle_timeout)?;
        if self.max_connections == 0 {
            return Err(Error::InvalidConfig {
                setting: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Serves `state`'s application on `listener` until `shutdown` resolves, then
/// stops accepting and waits for open requests to finish (upgraded WebSockets
/// are closed by their own tasks).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    limits.validate()?;
    let app = crate::app(state.clone());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSING));
    // Dropping `stop_tx` tells every connection to finish gracefully; every
    // connection task (and every 503 being written) is in `connections`, which
    // is waited for before returning: nothing is left running.
    let (stop_tx, stop_rx) = watch::channel(());
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before it
                    // was accepted: wait a moment rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let metrics = &state.inner.metrics;
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                metrics
                    .http_connections_open
                    .fetch_add(1, Ordering::Relaxed);
                let watched = Watched::new(stream, permit, state.clone());
                let (app, stop_rx) = (app.clone(), stop_rx.clone());
                connections.spawn(serve_connection(watched, peer, app, limits, stop_rx));
            }
            Err(_) => {
                metrics
                    .http_connections_refused_total
                    .fetch_add(1, Ordering::Relaxed);
                if let Ok(slot) = Arc::clone(&refusals).try_acquire_owned() {
                    let max = limits.max_connections;
                    connections.spawn(async move {
                        refuse_overloaded(stream, max).await;
                        drop(slot);
                    });
                }
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one connection under the watchdog.
async fn serve_connection(
    io: Watched,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<()>,
) {
    let activity = Arc::clone(&io.activity);
    let on_request = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(Arc::clone(&on_request));
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            let response = app.call(request).await;
            drop(in_flight);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // The watchdog above owns the header timeout (see the module's notes).
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                if Instant::now() >= activity.deadline(&limits) {
                    // Dropping the connection closes the socket.
                    tracing::debug!(%peer, "closing a connection that timed out");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                debug_assert!(changed.is_err(), "the stop channel only ever closes");
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Answers a connection over the cap with a 503 and closes it. The request is
/// read first (briefly, up to the end of its head) so that closing does not
/// reset the connection before the client has read the answer.
async fn refuse_overloaded(mut stream: TcpStream, max_connections: usize) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let body = serde_json::json!({"error": {
        "code": "overloaded",
        "message": format!(
            "the server is at its limit of {max_connections} connections; \
             retry in {OVERLOADED_RETRY_AFTER_S} s"
        ),
    }})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: {OVERLOADED_RETRY_AFTER_S}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// "No head has started" in [`Activity::head_started_ms`].
const NO_HEAD: u64 = u64::MAX;

/// What the watchdog knows of one connection. Times are milliseconds since
/// `opened`, so they fit in atomics shared by the socket and the service.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// The last byte read or written.
    last_io_ms: AtomicU64,
    /// The first byte of a request head not yet handed to the app.
    head_started_ms: AtomicU64,
    /// Requests handed to the app whose response head is not out yet.
    in_flight: AtomicU32,
    /// Whether any request has been handed to the app.
    served_any: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NO_HEAD),
            in_flight: AtomicU32::new(0),
            served_any: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn on_read(&self) {
        let now = self.now_ms();
        self.last_io_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            // The first byte of the next request: its head's clock starts.
            let _ = self.head_started_ms.compare_exchange(
                NO_HEAD,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn on_write(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self, limits: &ServerLimits) -> Instant {
        let last_io = self.at(self.last_io_ms.load(Ordering::Relaxed));
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return last_io + limits.idle_timeout;
        }
        let head = self.head_started_ms.load(Ordering::Relaxed);
        if head != NO_HEAD {
            return self.at(head) + limits.header_read_timeout;
        }
        if !self.served_any.load(Ordering::Relaxed) {
            // Connected and silent: a request head is owed from the start.
            return self.opened + limits.header_read_timeout;
        }
        last_io + limits.idle_timeout
    }
}

/// A request in the app, from its parsed head to its response head.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started_ms.store(NO_HEAD, Ordering::Relaxed);
        activity.served_any.store(true, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.on_write();
    }
}

/// A socket that reports its reads and writes to the watchdog and holds its
/// place under the connection cap until it is dropped (after an upgrade, that is
/// when the WebSocket closes).
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
    state: AppState,
}

impl Watched {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, state: AppState) -> Watched {
        Watched {
            stream,
            activity: Arc::new(Activity::new()),
            _permit: permit,
            state,
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.state
            .inner
            .metrics
            .http_connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ServerLimits = ServerLimits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 10,
    };

    #[test]
    fn a_silent_connection_owes_its_head_from_the_accept() {
        let activity = Activity::new();
        assert_eq!(
            activity.deadline(&LIMITS),
            activity.opened + LIMITS.header_read_timeout
        );
    }

    #[test]
    fn a_kept_alive_connection_waits_the_idle_timeout_then_the_head_timeout() {
        let activity = Arc::new(Activity::new());
        drop(InFlight::start(Arc::clone(&activity)));
        // One request served and answered at t = 0.
        activity.last_io_ms.store(0, Ordering::Relaxed);
        assert_eq!(
            activity.deadline(&LIMITS),
            activity.opened + LIMITS.idle_timeout
        );
        // The next request's first byte at t = 30 s: its head is owed by 40 s.
        activity.head_started_ms.store(30_000, Ordering::Relaxed);
        activity.last_io_ms.store(30_000, Ordering::Relaxed);
        assert_eq!(
            activity.deadline(&LIMITS),
            activity.opened + Duration::from_secs(40)
        );
    }

    #[test]
    fn a_request_in_the_app_is_only_held_to_the_idle_timeout() {
        let activity = Arc::new(Activity::new());
        let request = InFlight::start(Arc::clone(&activity));
        activity.last_io_ms.store(5_000, Ordering::Relaxed);
        assert_eq!(
            activity.deadline(&LIMITS),
            activity.opened + Duration::from_secs(65)
        );
        drop(request);
        assert_eq!(activity.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn limits_name_the_bad_setting() {
        let mut limits = LIMITS;
        limits.max_connections = 0;
        let err = limits.validate().expect_err("zero connections");
        assert!(err.to_string().contains("max_connections"), "{err}");
        let mut limits = LIMITS;
        limits.header_read_timeout = Duration::ZERO;
        let err = limits.validate().expect_err("zero timeout");
        assert!(err.to_string().contains("header_read_timeout"), "{err}");
    }
}
