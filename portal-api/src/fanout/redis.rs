//! The multi-node fan-out over Redis. Publishing is one round trip and one
//! `MULTI`/`EXEC` transaction (a batch's updates: one per chunk of
//! [`PUBLISH_CHUNK`]): the message is stored as the order's latest of its
//! kind (`HSET tracker:live:{order} position …`, with an expiry so finished orders
//! fade away) and published once on the channel `tracker:live`. The transaction
//! is what lets a reader trust the snapshot: no other node's update can land
//! between this one's write and its publish, so a viewer that reads the snapshot
//! on receiving a message sees one at least as new as the message, and the
//! snapshot always matches the last message published
//! (`tests/it/fanout_redis.rs`). Every node runs one subscriber that hands what arrives to its
//! local hub, including the node's own updates, so all nodes see the same order of
//! events; it runs in the caller's task tree ([`RedisFanOut::connect_in`]). After a dropped subscription the subscriber reconnects and tells every
//! local viewer to resync from a fresh snapshot, since updates may have been missed.
//!
//! One channel for all orders keeps subscription management trivial; every node
//! receives every update, which is fine up to a few thousand updates per second
//! per node. Beyond that, shard the channel (for example by a hash of the order id)
//! and subscribe to the shards with local viewers.

use std::sync::Arc;
use std::time::Duration;

use engine::OrderId;
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{FanOut, FanOutFuture, Hub, Latest, LiveKind, LiveMessage};
use crate::error::{Error, Result};

/// The pub/sub channel carrying every live update.
const CHANNEL: &str = "tracker:live";
/// Updates per transaction when a batch is published.
const PUBLISH_CHUNK: usize = 256;
/// How long the latest state of an order is kept after its last update.
const LATEST_TTL_S: i64 = 7 * 24 * 3600;

fn latest_key(order: &OrderId) -> String {
    format!("tracker:live:{order}")
}

/// Redis pub/sub fan-out with latest-state keys.
pub struct RedisFanOut {
    hub: Arc<Hub>,
    conn: ConnectionManager,
    /// Stops the subscriber (a child of the owner's token; also on drop).
    stop: CancellationToken,
}

impl std::fmt::Debug for RedisFanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFanOut")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisFanOut {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The wire frame on the channel: `order_id \t kind \t text`. Ids and kinds never
/// contain tabs; the text is passed through untouched (no double JSON encoding).
fn encode(message: &LiveMessage) -> String {
    format!(
        "{}\t{}\t{}",
        message.order_id,
        message.kind.as_str(),
        message.text
    )
}

fn decode(frame: &str) -> Option<LiveMessage> {
    let mut parts = frame.splitn(3, '\t');
    let order = parts.next()?;
    let kind = LiveKind::parse(parts.next()?)?;
    let text = parts.next()?;
    Some(LiveMessage::new(OrderId(order.to_owned()), kind, text))
}

impl RedisFanOut {
    /// [`RedisFanOut::connect_in`] with a task tracker and token of its own:
    /// the subscriber stops when the fan-out is dropped (tests, tools).
    pub async fn connect(url: &str) -> Result<RedisFanOut> {
        RedisFanOut::connect_in(url, &TaskTracker::new(), CancellationToken::new()).await
    }

    /// Connects (publisher and subscriber) and waits until the subscription is
    /// live, so nothing published after this returns is missed. The subscriber
    /// runs in `tasks` until `stop` is cancelled or the fan-out is dropped.
    pub async fn connect_in(
        url: &str,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<RedisFanOut> {
        let stop = stop.child_token();
        // The URL may carry a password (`rediss://:secret@host`): messages
        // name it without.
        let shown = without_credentials(url);
        let bad_url = |e: redis::RedisError| Error::InvalidConfig {
            setting: "fanout",
            reason: format!("{shown}: {e}"),
        };
        let client = redis::Client::open(url).map_err(bad_url)?;
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new(client.clone()),
        )
        .await
        .map_err(|_| Error::FanOut(format!("{shown}: no answer within 5 s")))??;
        let hub = Arc::new(Hub::new());
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        tasks.spawn({
            let (hub, stop) = (hub.clone(), stop.clone());
            async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = subscribe_loop(client, hub, Some(ready)) => {}
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(5), is_ready).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => {
                stop.cancel();
                return Err(err);
            }
            _ => {
                stop.cancel();
                return Err(Error::FanOut(format!("{shown}: subscribing timed out")));
            }
        }
        Ok(RedisFanOut { hub, conn, stop })
    }
}

/// `redis://user:secret@host:6379/0` as `redis://***@host:6379/0`.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

async fn subscribe_loop(
    client: redis::Client,
    hub: Arc<Hub>,
    mut ready: Option<tokio::sync::oneshot::Sender<Result<()>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Ok(()));
                    }
                    None => {
                        // Reconnected: anything published meanwhile was lost.
                        hub.dispatch(LiveMessage::new(
                            OrderId(String::new()),
                            LiveKind::Resync,
                            "",
                        ));
                    }
                }
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(frame) = msg.get_payload::<String>() else {
                        tracing::warn!("fan-out: a non-text message on {CHANNEL}");
                        continue;
                    };
                    match decode(&frame) {
                        Some(message) => hub.dispatch(message),
                        None => tracing::warn!("fan-out: a malformed frame on {CHANNEL}"),
                    }
                }
                tracing::warn!("fan-out: the Redis subscription ended; reconnecting");
            }
            Err(err) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(Error::from(err)));
                    return;
                }
                tracing::warn!(error = %err, "fan-out: subscribing to Redis failed; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl FanOut for RedisFanOut {
    fn publish_all(&self, messages: Vec<LiveMessage>) -> FanOutFuture<'_, ()> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            // Atomic: a plain pipeline may reach Redis in several TCP
            // segments, and another node's update between them would leave a
            // snapshot older than the last message. A batch goes in chunks,
            // each one transaction and one round trip, so no transaction
            // holds Redis for long.
            for chunk in messages.chunks(PUBLISH_CHUNK) {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for message in chunk {
                    if message.kind.is_state() {
                        let key = latest_key(&message.order_id);
                        pipe.hset(&key, message.kind.as_str(), message.text.as_str())
                            .ignore()
                            .expire(&key, LATEST_TTL_S)
                            .ignore();
                    }
                    pipe.publish(CHANNEL, encode(message)).ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            Ok(())
        })
    }

    fn latest(&self, order: OrderId) -> FanOutFuture<'_, Latest> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let (position, eta): (Option<String>, Option<String>) = conn
                .hget(
                    latest_key(&order),
                    &[LiveKind::Position.as_str(), LiveKind::Eta.as_str()],
                )
                .await?;
            Ok(Latest { position, eta })
        })
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_text_untouched() {
        let message = LiveMessage::new(
            OrderId("ord_x".into()),
            LiveKind::Eta,
            "{\"type\":\"eta\",\"note\":\"a\\tb\"}",
        );
        let back = decode(&encode(&message)).expect("decodes");
        assert_eq!(back.order_id, message.order_id);
        assert_eq!(back.kind, LiveKind::Eta);
        assert_eq!(back.text, message.text);
    }

    #[test]
    fn junk_frames_are_rejected() {
        assert!(decode("no tabs").is_none());
        assert!(decode("ord\tbogus\t{}").is_none());
    }

    #[test]
    fn messages_never_show_a_redis_password() {
        assert_eq!(
            without_credentials("rediss://:s3cret@redis.example.com:6380/0"),
            "rediss://***@redis.example.com:6380/0"
        );
        assert_eq!(
            without_credentials("redis://fleet:pw@10.0.0.5"),
            "redis://***@10.0.0.5"
        );
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379/a@b"),
            "redis://127.0.0.1:6379/a@b"
        );
    }

    #[tokio::test]
    async fn a_tls_url_is_understood_and_fails_only_at_the_handshake() {
        // Nothing listens on port 1: a build without TLS would refuse the
        // scheme itself ("not supported") before trying to connect.
        let tasks = TaskTracker::new();
        let err =
            RedisFanOut::connect_in("rediss://:pw@127.0.0.1:1", &tasks, CancellationToken::new())
                .await
                .expect_err("nothing listens there");
        let text = err.to_string();
        assert!(!text.contains("pw@"), "{text}");
        assert!(!matches!(err, Error::InvalidConfig { .. }), "{text}");
    }
}
