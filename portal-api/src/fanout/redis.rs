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
//! When Redis does not answer, an update is not lost and nothing waits for
//! it: the fan-out hands it to this node's viewers at once and holds the
//! newest update of each (order, kind) ([`Held`]); while any are held, new
//! updates are held too, without a round trip, and a resender sends what is
//! held, oldest first, as soon as Redis answers again (every
//! [`RESEND_FIRST`] at first, backing off to [`RESEND_MAX`]). Only then do
//! publishes go straight to Redis again, so what was held reaches the other
//! nodes before anything that came after it. The caller is told with an error
//! that the update has not reached the other nodes yet; one whose write is
//! durable goes on (see [`crate::LiveUpdates`]). Sends are one at a time
//! (a [`tokio::sync::Mutex`]), so no send overtakes an older one.
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

use super::held::Held;
use super::{FanOut, FanOutFuture, HeldUpdates, Hub, Latest, LiveKind, LiveMessage};
use crate::error::{Error, Result};

/// The pub/sub channel carrying every live update.
const CHANNEL: &str = "tracker:live";
/// Updates per transaction when a batch is published.
const PUBLISH_CHUNK: usize = 256;
/// How long the latest state of an order is kept after its last update.
const LATEST_TTL_S: i64 = 7 * 24 * 3600;
/// How long a send (or a read of the latest state) may take before Redis
/// counts as not answering.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Updates held at most while Redis does not answer (one per order and kind).
const HOLD_AT_MOST: usize = 200_000;
/// The resender's first wait after a failed send, doubled up to [`RESEND_MAX`].
const RESEND_FIRST: Duration = Duration::from_millis(250);
/// The resender's longest wait between tries.
const RESEND_MAX: Duration = Duration::from_secs(2);

fn latest_key(order: &OrderId) -> String {
    format!("tracker:live:{order}")
}

/// Redis pub/sub fan-out with latest-state keys.
pub struct RedisFanOut {
    hub: Arc<Hub>,
    sender: Arc<Sender>,
    /// Stops the subscriber and the resender (a child of the owner's token;
    /// also on drop).
    stop: CancellationToken,
}

/// The publishing half: the connection, what could not be sent yet, and the
/// turn to send.
struct Sender {
    conn: ConnectionManager,
    /// Updates Redis has not taken yet; not empty means Redis is not
    /// answering (or has just come back and the resender is on it).
    held: parking_lot::Mutex<Held>,
    /// One send at a time, so none overtakes an older one.
    turn: tokio::sync::Mutex<()>,
    /// Wakes the resender when updates start being held.
    wake: tokio::sync::Notify,
}

impl Sender {
    /// Sends `messages` in order (in [`PUBLISH_CHUNK`]s, each one
    /// transaction), within [`ANSWER_WITHIN`] each.
    async fn send(&self, messages: &[LiveMessage]) -> Result<()> {
        let mut conn = self.conn.clone();
        // Atomic: a plain pipeline may reach Redis in several TCP segments,
        // and another node's update between them would leave a snapshot older
        // than the last message. A batch goes in chunks, each one transaction
        // and one round trip, so no transaction holds Redis for long.
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
            tokio::time::timeout(ANSWER_WITHIN, pipe.query_async::<()>(&mut conn))
                .await
                .map_err(|_| Error::FanOut(no_answer()))?
                .map_err(|e| Error::FanOut(format!("Redis did not take the update: {e}")))?;
        }
        Ok(())
    }

    /// Holds `messages` for the resender; true when nothing was held before
    /// (holding starts now).
    fn hold(&self, messages: &[LiveMessage]) -> bool {
        let mut held = self.held.lock();
        let starts = held.is_empty();
        held.hold(messages.iter().cloned());
        starts
    }

    /// Holds `messages` for the resender if updates are held already, and
    /// says so; `None` when nothing is held.
    fn hold_if_holding(&self, messages: &[LiveMessage]) -> Option<Error> {
        let mut held = self.held.lock();
        if held.is_empty() {
            return None;
        }
        held.hold(messages.iter().cloned());
        Some(Error::FanOut(format!(
            "Redis is not answering: the update is held ({} held) and goes to the other nodes when it answers",
            held.len()
        )))
    }

    /// Sends what is held until nothing is, whenever there is something:
    /// after a failure it waits ([`RESEND_FIRST`], doubling to
    /// [`RESEND_MAX`]); after a success it goes on at once with what was held
    /// meanwhile, so holding ends as soon as a send finds nothing new.
    async fn resend_loop(&self) {
        let mut wait = RESEND_FIRST;
        loop {
            if self.held.lock().is_empty() {
                self.wake.notified().await;
                wait = RESEND_FIRST;
                continue;
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let turn = self.turn.lock().await;
            let (messages, upto) = self.held.lock().copy();
            match self.send(&messages).await {
                Ok(()) => {
                    let mut held = self.held.lock();
                    held.release(upto);
                    if held.is_empty() {
                        tracing::info!(
                            sent = messages.len(),
                            "fan-out: Redis answers again; the held updates went out"
                        );
                    }
                    wait = Duration::ZERO;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "fan-out: Redis still not answering");
                    wait = (wait * 2).clamp(RESEND_FIRST, RESEND_MAX);
                }
            }
            drop(turn);
        }
    }
}

fn no_answer() -> String {
    format!("Redis gave no answer within {} s", ANSWER_WITHIN.as_secs())
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
        // Bounded answers and reconnects: a Redis that hangs must cost a
        // publish seconds at most, and then nothing while updates are held.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(ANSWER_WITHIN)
            .set_response_timeout(ANSWER_WITHIN)
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), config),
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
        let sender = Arc::new(Sender {
            conn,
            held: parking_lot::Mutex::new(Held::new(HOLD_AT_MOST)),
            turn: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        });
        tasks.spawn({
            let (sender, stop) = (sender.clone(), stop.clone());
            async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = sender.resend_loop() => {}
                }
            }
        });
        Ok(RedisFanOut { hub, sender, stop })
    }

    /// Hands `messages` to this node's viewers, who would otherwise miss them
    /// while Redis does not answer (they get them once more when the held
    /// copies go out: the same state again, which a page takes as it is).
    fn dispatch_here(&self, messages: Vec<LiveMessage>) {
        for message in messages {
            self.hub.dispatch(message);
        }
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
        Box::pin(async move {
            let sender = &self.sender;
            // While updates are held, new ones join them without a round trip.
            if let Some(err) = sender.hold_if_holding(&messages) {
                self.dispatch_here(messages);
                return Err(err);
            }
            let turn = sender.turn.lock().await;
            // The resender may have held something while this waited its turn.
            if let Some(err) = sender.hold_if_holding(&messages) {
                drop(turn);
                self.dispatch_here(messages);
                return Err(err);
            }
            let sent = sender.send(&messages).await;
            drop(turn);
            let Err(err) = sent else {
                return Ok(());
            };
            metrics::counter!("tracker_fanout_send_failures_total").increment(1);
            if sender.hold(&messages) {
                tracing::warn!(
                    error = %err,
                    "fan-out: Redis is not answering; holding the newest update of each order for the other nodes"
                );
                sender.wake.notify_one();
            }
            self.dispatch_here(messages);
            Err(err)
        })
    }

    fn latest(&self, order: OrderId) -> FanOutFuture<'_, Latest> {
        let mut conn = self.sender.conn.clone();
        Box::pin(async move {
            if !self.sender.held.lock().is_empty() {
                return Err(Error::FanOut(
                    "Redis is not answering (updates are held)".into(),
                ));
            }
            let fields = [LiveKind::Position.as_str(), LiveKind::Eta.as_str()];
            let read = conn.hget(latest_key(&order), &fields);
            let (position, eta): (Option<String>, Option<String>) =
                tokio::time::timeout(ANSWER_WITHIN, read)
                    .await
                    .map_err(|_| Error::FanOut(no_answer()))??;
            Ok(Latest { position, eta })
        })
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn held(&self) -> HeldUpdates {
        let held = self.sender.held.lock();
        HeldUpdates {
            held: held.len(),
            dropped: held.dropped(),
        }
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
