//! What a reader of the Redis fan-out can observe (the real Redis at
//! 127.0.0.1:6379; required when `CI` is set). A node's update is the latest
//! snapshot write and the publish, in one `MULTI`/`EXEC`, so a viewer that reads
//! the snapshot on receiving a message always sees one at least as new as that
//! message, and a viewer arriving later gets the snapshot live viewers saw last.
//!
//! Without the transaction, a write split over two TCP segments (as networks do)
//! lets another node's whole update land between this node's snapshot write and
//! its publish: the last message then says "a" while the snapshot says "b", an
//! older state, forever. The test makes that split happen with a proxy that
//! holds back everything from a `PUBLISH` on for a moment.

use std::net::SocketAddr;
use std::time::Duration;

use engine::OrderId;
use portal_api::{FanOut, LiveKind, LiveMessage, RedisFanOut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REDIS: &str = "127.0.0.1:6379";

fn redis_available() -> bool {
    if std::net::TcpStream::connect(REDIS).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Redis at {REDIS} is required under CI"
    );
    eprintln!("SKIPPED: Redis at {REDIS} is not available (set CI to make this a failure)");
    false
}

/// A proxy to Redis that forwards what the client writes, except that from a
/// `PUBLISH` command on it holds the rest of that chunk back for `hold`: the
/// command before it arrives at once, the publish later.
async fn publish_delaying_proxy(hold: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(proxy_connection(client, hold));
        }
    });
    addr
}

async fn proxy_connection(client: TcpStream, hold: Duration) {
    let Ok(upstream) = TcpStream::connect(REDIS).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_redis, mut to_redis) = upstream.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_redis, &mut to_client).await;
    });
    let mut chunk = vec![0u8; 64 * 1024];
    const PUBLISH: &[u8] = b"*3\r\n$7\r\nPUBLISH\r\n";
    loop {
        let n = match from_client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &chunk[..n];
        let split = chunk.windows(PUBLISH.len()).position(|w| w == PUBLISH);
        let sent = match split {
            Some(at) => {
                let first = to_redis.write_all(&chunk[..at]).await;
                tokio::time::sleep(hold).await;
                first.and(to_redis.write_all(&chunk[at..]).await)
            }
            None => to_redis.write_all(chunk).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

fn position(text: &str, order: &OrderId) -> LiveMessage {
    LiveMessage::new(
        order.clone(),
        LiveKind::Position,
        format!("{{\"type\":\"position\",\"from\":\"{text}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_a_snapshot_older_than_the_message_it_just_received() {
    if !redis_available() {
        return;
    }
    let proxy = publish_delaying_proxy(Duration::from_millis(600)).await;
    // Node A's network splits its writes; node B's does not.
    let node_a = RedisFanOut::connect(&format!("redis://{proxy}"))
        .await
        .expect("node a");
    let node_b = RedisFanOut::connect(&format!("redis://{REDIS}"))
        .await
        .expect("node b");
    let reader = RedisFanOut::connect(&format!("redis://{REDIS}"))
        .await
        .expect("reader");
    let order = OrderId(format!(
        "ord_atomic{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    let mut viewer = reader.hub().subscribe(&order);

    // A starts its update; while its publish is held back, B makes a whole one.
    let (a_message, b_message) = (position("a", &order), position("b", &order));
    let a_update = tokio::spawn(async move {
        node_a.publish(a_message).await.expect("node a publishes");
        node_a
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    node_b.publish(b_message).await.expect("node b publishes");
    let _node_a = a_update.await.expect("node a's update");

    // The viewer reads the snapshot on every message, as a page that
    // reconnects would.
    let mut received: Vec<String> = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), viewer.recv())
            .await
            .expect("a message in time")
            .expect("a message");
        received.push(message.text.to_string());
        let snapshot = reader
            .latest(order.clone())
            .await
            .expect("latest")
            .position
            .expect("a snapshot");
        if let Some(seen_at) = received.iter().position(|text| *text == snapshot) {
            assert_eq!(
                seen_at,
                received.len() - 1,
                "on receiving {:?} the snapshot was the older {snapshot:?}",
                received.last()
            );
        }
    }
    // A viewer arriving now gets what live viewers saw last.
    let settled = reader
        .latest(order)
        .await
        .expect("latest")
        .position
        .expect("a snapshot");
    assert_eq!(Some(&settled), received.last());
}

/// A batch's positions go out in one call (chunks of a few hundred, each
/// one transaction): every message reaches a viewer on another node, in
/// order, and each order's snapshot is its last message, across chunk ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_published_at_once_reaches_every_viewer_in_order() {
    if !redis_available() {
        return;
    }
    let node = RedisFanOut::connect(&format!("redis://{REDIS}"))
        .await
        .expect("node");
    let reader = RedisFanOut::connect(&format!("redis://{REDIS}"))
        .await
        .expect("reader");
    let stamp = format!(
        "{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let orders: Vec<OrderId> = (0..100)
        .map(|k| OrderId(format!("ord_batch{k}_{stamp}")))
        .collect();
    let mut viewers: Vec<_> = orders.iter().map(|o| reader.hub().subscribe(o)).collect();
    // Three updates per order, interleaved: 300 messages, more than one chunk.
    let mut batch = Vec::new();
    for n in 0..3 {
        for order in &orders {
            batch.push(position(&format!("{n}"), order));
        }
    }
    node.publish_all(batch)
        .await
        .expect("the batch is published");
    for (order, viewer) in orders.iter().zip(&mut viewers) {
        for n in 0..3 {
            let message = tokio::time::timeout(Duration::from_secs(5), viewer.recv())
                .await
                .expect("a message in time")
                .expect("a message");
            assert_eq!(
                message.text.to_string(),
                position(&format!("{n}"), order).text.to_string()
            );
        }
        let latest = reader.latest(order.clone()).await.expect("latest").position;
        assert_eq!(latest, Some(position("2", order).text.to_string()));
    }
}
