//! Fan-out: getting each live update (a position, an ETA, a status change) from
//! the node that processed it to every tracking page that shows that order, on any
//! node.
//!
//! Updates are serialized once, as the exact WebSocket text the pages receive, and
//! shared by reference from then on: one publish per update, never one per viewer.
//! Every node keeps a local [`Hub`] of per-order broadcast channels that its
//! WebSocket connections subscribe to. The [`FanOut`] backend decides how an update
//! reaches the hubs: directly ([`MemoryFanOut`], one node) or through Redis pub/sub
//! ([`RedisFanOut`], many nodes), which also keeps the latest update of each kind per
//! order under a key so a page opened on any node starts from current state.
//!
//! The per-order channels are small ring buffers. A viewer that falls behind does
//! not queue: it gets `Lagged` and is sent a fresh snapshot instead (latest state
//! only), so a slow phone costs the server nothing beyond its socket.

mod held;
mod hub;
mod memory;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use engine::OrderId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};

pub use hub::{Hub, Subscription};
pub use memory::MemoryFanOut;
pub use redis::RedisFanOut;

/// What kind of update a [`LiveMessage`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveKind {
    /// The truck moved (`{"type": "position", "vehicle": {…}}`).
    Position,
    /// A new ETA (`{"type": "eta", "eta": {…}}`).
    Eta,
    /// A status change, exception or note (`{"type": "status", …}`).
    Status,
    /// The tracking link was rotated or revoked: viewers re-check their code.
    Link,
    /// Updates may have been lost (a fan-out reconnect): viewers resync from a
    /// fresh snapshot.
    Resync,
}

impl LiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveKind::Position => "position",
            LiveKind::Eta => "eta",
            LiveKind::Status => "status",
            LiveKind::Link => "link",
            LiveKind::Resync => "resync",
        }
    }

    pub fn parse(text: &str) -> Option<LiveKind> {
        [
            LiveKind::Position,
            LiveKind::Eta,
            LiveKind::Status,
            LiveKind::Link,
            LiveKind::Resync,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// Whether the latest message of this kind is kept per order (for snapshots).
    fn is_state(self) -> bool {
        matches!(self, LiveKind::Position | LiveKind::Eta)
    }
}

/// One update for the viewers of one order: `text` is the WebSocket message,
/// reference-counted so every viewer sends the same bytes.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    pub order_id: OrderId,
    pub kind: LiveKind,
    pub text: Utf8Bytes,
    /// When the update entered the portal (for in→out latency measurements).
    pub published_at: DateTime<Utc>,
}

impl LiveMessage {
    pub fn new(order_id: OrderId, kind: LiveKind, text: impl Into<Utf8Bytes>) -> LiveMessage {
        LiveMessage {
            order_id,
            kind,
            text: text.into(),
            published_at: Utc::now(),
        }
    }
}

/// The latest live state of one order as the fan-out keeps it: the last
/// `position` and `eta` messages (their WebSocket text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latest {
    pub position: Option<String>,
    pub eta: Option<String>,
}

/// What a fan-out holds because it could not send it yet ([`FanOut::held`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldUpdates {
    /// Updates held now (the newest of each order and kind).
    pub held: usize,
    /// Updates let go so far because it held as many as it can.
    pub dropped: u64,
}

/// A boxed, sendable future.
pub type FanOutFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A fan-out backend.
pub trait FanOut: Send + Sync + std::fmt::Debug {
    /// Delivers an update to every node's hub and records it as the latest.
    fn publish(&self, message: LiveMessage) -> FanOutFuture<'_, ()> {
        self.publish_all(vec![message])
    }
    /// Delivers a batch's updates (a batch's positions, one per order) as
    /// [`FanOut::publish`] would one by one, in order; a backend over the
    /// network does it in as few round trips as it can.
    ///
    /// An error means the updates have not reached the other nodes yet. They
    /// are not lost: this node's viewers have them, and the backend holds the
    /// newest of each order and kind and sends it when it can, before
    /// anything published later. So a caller whose write is durable logs the
    /// error and goes on; repeating the write would only record it twice.
    fn publish_all(&self, messages: Vec<LiveMessage>) -> FanOutFuture<'_, ()>;
    /// The latest position and ETA published for an order.
    fn latest(&self, order: OrderId) -> FanOutFuture<'_, Latest>;
    /// This node's hub, where WebSocket connections subscribe.
    fn hub(&self) -> &Hub;
    /// What is held because it could not be sent yet (for metrics).
    fn held(&self) -> HeldUpdates {
        HeldUpdates::default()
    }
}

/// Opens the fan-out a URL names: `memory://`, `redis://HOST:PORT` or
/// `rediss://HOST:PORT` (TLS, for managed Redis). A
/// backend's own tasks (Redis: the subscriber) run in `tasks` and stop when
/// `stop` is cancelled, so the caller's task tree owns them.
pub async fn open_fanout(
    url: &str,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Result<Arc<dyn FanOut>> {
    if url == "memory://" || url == "memory" {
        Ok(Arc::new(MemoryFanOut::new()))
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(Arc::new(RedisFanOut::connect_in(url, tasks, stop).await?))
    } else {
        Err(Error::InvalidConfig {
            setting: "fanout",
            reason: format!(
                "unknown fan-out URL `{url}`; expected memory://, redis://HOST:PORT or rediss://HOST:PORT"
            ),
        })
    }
}
