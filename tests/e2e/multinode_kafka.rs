//! Several `tracker serve` nodes in one Kafka consumer group (issue 21), on
//! one machine: tansu, Redis, PostgreSQL and three nodes A, B and C sharing
//! the positions topic's four partitions. `tracker simulate` drives 200
//! trucks with orders through a real Kafka producer; midway node B is
//! stopped (SIGTERM: it hands its trucks over) and node D started. At the end
//! every produced position was applied exactly once (the store counts, per
//! truck, the positions it took as newest and the replays of its newest),
//! every order that was moving when B stopped got a fresh ETA within 60 s
//! (how soon is printed; the goal is 30 s), and a viewer connected to
//! node C saw live positions of a truck that node A owns.
//!
//! Orders standing at their delivery stop have no ETA left to update and are
//! not counted (earlier runs that counted them failed on them alone).
//!
//! At the end every truck is held in the store (`vehicle_holds`, the
//! hand-over marker) by exactly one node still running: B let go of its
//! trucks before it stopped.
//!
//! Ignored (run it with `--ignored`) until it is known to be steady on
//! tansu: of the eight runs before the hand-over marker one had 282 replays
//! of a truck's newest position (tansu answers a member's JoinGroup at once,
//! without waiting for the others to rejoin, so a partition's new owner can
//! read it while the old one still does; the marker now makes the new owner
//! wait for the old one to let go), and runs before those once left a
//! partition unread after a node joined (tansu's group state; not ours to
//! fix). With the marker: seven runs of seven passed, none replayed.
//!
//! Not SIGKILL: tansu 0.6 does not rebalance the group when a member's
//! session expires (tried: after B was killed, A and C still owned three of
//! the four partitions 60 s later, and B's stayed unread for good), so a
//! killed node's partitions cannot move on this broker; a Kafka broker moves
//! them after `session.timeout.ms`.

use crate::portal_support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portal_support::{Server, TRACKER, kafka_broker, next_of_type, redis_available, ws_connect};
use serde_json::Value;
use store::testing::PgSchema;

/// Partitions of the positions topic (`serve` creates it with four).
const PARTITIONS: u32 = 4;
const TRUCKS: usize = 200;

/// The node's `/readyz` answer (503 while not ready is still JSON).
async fn readyz(server: &Server) -> Value {
    portal_support::client()
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .expect("readyz answers")
        .json()
        .await
        .expect("readyz JSON")
}

/// The positions-topic partitions the node owns now.
async fn partitions(server: &Server, topic: &str) -> Vec<u32> {
    let ready = readyz(server).await;
    ready["node"]["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["topic"] == topic)
                .filter_map(|p| p["partition"].as_u64())
                .map(|p| p as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// The partition librdkafka's default partitioner (`consistent_random`: the
/// CRC-32 of the key) gives a truck's positions, keyed `TENANT/VEHICLE`.
fn partition_of(tenant: &str, vehicle: &str) -> u32 {
    crc32fast::hash(format!("{tenant}/{vehicle}").as_bytes()) % PARTITIONS
}

fn start_node(dir: &Path, name: &str, common: &[&str]) -> Server {
    let mut args = common.to_vec();
    args.extend(["--node-name", name]);
    Server::start(dir, &args, 0)
}

/// The node's hand-over lines of `/metrics` (waits, trucks taken over).
async fn handover_metrics(server: &Server) -> String {
    let text = portal_support::client()
        .get(format!("{}/metrics", server.base_url))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("tracker_handover_"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One query's single number.
async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[])
        .await
        .expect("the query runs")
        .get::<_, Option<i64>>(0)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet known steady on tansu: a partition once stayed unread after a node joined (see the module docs)"]
async fn three_nodes_share_the_fleet_and_a_stopped_one_hands_its_trucks_over() {
    let Some((brokers, topic)) = kafka_broker("multinode") else {
        return;
    };
    if !redis_available() {
        return;
    }
    let Some(schema) = PgSchema::create().await else {
        return;
    };
    let (db, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL connects");
    tokio::spawn(connection);

    let dir = tempfile::tempdir().expect("tempdir");
    let created = portal_support::tracker_json(
        dir.path(),
        &[
            "tenant",
            "create",
            "Multi Node Freight",
            "--store",
            &schema.url,
        ],
    );
    let tenant = created["tenant_id"].as_str().expect("tenant id").to_owned();
    let key = created["api_key"].as_str().expect("api key").to_owned();
    let bus = format!("kafka://{brokers}/{topic}");
    let group = format!("{topic}-group");
    let fleet_topic = format!("{topic}-fleet");
    let common = [
        "--store",
        &schema.url,
        "--bus",
        &bus,
        "--kafka-group",
        &group,
        "--fleet-topic",
        &fleet_topic,
        "--fanout",
        "redis://127.0.0.1:6379",
        "--orders-every-s",
        "1",
        "--save-learned-every-s",
        "2",
    ];
    let a = start_node(dir.path(), "a", &common);
    let mut b = Some(start_node(dir.path(), "b", &common));
    let c = start_node(dir.path(), "c", &common);

    // The group settles: every partition owned by exactly one of A, B, C.
    let settled = Instant::now();
    loop {
        let mut owned = Vec::new();
        for node in [&a, b.as_ref().expect("b runs"), &c] {
            owned.extend(partitions(node, &topic).await);
        }
        owned.sort_unstable();
        if owned == (0..PARTITIONS).collect::<Vec<_>>() {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(90),
            "the group never settled: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 200 trucks with orders, through a real Kafka producer, for 60 s (an
    // hour of their day).
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/src/data/baltimore.osm.pbf");
    let to = format!("{bus}?tenant={tenant}");
    let simulate = {
        let (dir, api, key, to) = (
            dir.path().to_owned(),
            a.base_url.clone(),
            key.clone(),
            to.clone(),
        );
        let trucks = TRUCKS.to_string();
        tokio::task::spawn_blocking(move || {
            Command::new(TRACKER)
                .current_dir(dir)
                .args(["simulate", "--map", map, "--vehicles", &trucks])
                .args(["--speedup", "60", "--duration", "60", "--seed", "21"])
                .args(["--to", &to, "--create-orders", "--api-url", &api])
                .args(["--api-key", &key])
                .env("RUST_LOG", "warn")
                .output()
                .expect("tracker simulate runs")
        })
    };
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;

    // A viewer on C of an order whose truck node A owns.
    let a_partitions: HashSet<u32> = partitions(&a, &topic).await.into_iter().collect();
    let orders: Value = portal_support::client()
        .get(format!("{}/api/v1/orders?limit=200", c.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("orders list")
        .json()
        .await
        .expect("orders JSON");
    let orders = orders["orders"].as_array().cloned().unwrap_or_default();
    assert!(!orders.is_empty(), "the simulator made orders");
    eprintln!(
        "A owns {a_partitions:?}; orders: {:?}",
        orders
            .iter()
            .take(12)
            .map(|o| (
                o["status"].as_str().unwrap_or_default().to_owned(),
                o["vehicle_id"].as_str().map(|v| partition_of(&tenant, v))
            ))
            .collect::<Vec<_>>()
    );
    let of_a = orders
        .iter()
        .find(|o| {
            o["status"] != "delivered"
                && o["vehicle_id"]
                    .as_str()
                    .is_some_and(|v| a_partitions.contains(&partition_of(&tenant, v)))
        })
        .expect("an open order of a truck that A owns");
    let id = of_a["id"].as_str().expect("order id");
    let linked: Value = portal_support::client()
        .post(format!(
            "{}/api/v1/orders/{id}/tracking-link/rotate",
            c.base_url
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("order JSON");
    let code = linked["tracking_code"].as_str().expect("a new code");
    let mut viewer = ws_connect(&c.ws_url(code)).await;

    // Stop B as it works; once A and C have its partitions, D joins.
    let before_kill: i64 = count(&db, "SELECT MAX(id) FROM eta_predictions").await;
    let moving: Vec<String> = db
        .query(
            "SELECT id FROM orders WHERE status IN ('dispatched', 'at_pickup', 'picked_up', \
             'out_for_delivery', 'at_delivery')",
            &[],
        )
        .await
        .expect("orders")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let b_partitions = partitions(b.as_ref().expect("b runs"), &topic).await;
    let stopped_at = Instant::now();
    let stopped_wall = chrono::Utc::now();
    b.take().expect("b runs").terminate(Duration::from_secs(60));
    eprintln!(
        "B stopped {:.1} s after SIGTERM",
        stopped_at.elapsed().as_secs_f64()
    );
    let regrouped = Instant::now();
    loop {
        let mut owned = partitions(&a, &topic).await;
        owned.extend(partitions(&c, &topic).await);
        owned.sort_unstable();
        if owned == (0..PARTITIONS).collect::<Vec<_>>() {
            break;
        }
        assert!(
            regrouped.elapsed() < Duration::from_secs(60),
            "A and C never took B's partitions: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "A and C own every partition {:.1} s after B was stopped",
        stopped_at.elapsed().as_secs_f64()
    );
    let d = start_node(dir.path(), "d", &common);

    let live = next_of_type(&mut viewer, "position", Duration::from_secs(30)).await;
    assert!(
        live.is_some(),
        "the viewer on C saw no position of A's truck {}",
        of_a["vehicle_id"]
    );

    // Every order moving when B stopped and still open got an ETA written
    // since (the goal is 30 s; see the module docs).
    let mut stale: Vec<String> = Vec::new();
    while stopped_at.elapsed() < Duration::from_secs(30) {
        stale = db
            .query(
                "SELECT o.id FROM orders o WHERE o.id = ANY($1) \
                 AND o.status IN ('dispatched', 'at_pickup', 'picked_up', 'out_for_delivery') \
                 AND NOT EXISTS (SELECT 1 FROM eta_predictions e \
                                 WHERE e.order_id = o.id AND e.id > $2)",
                &[&moving, &before_kill],
            )
            .await
            .expect("orders")
            .iter()
            .map(|r| r.get(0))
            .collect();
        if stale.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let resumed_s = stopped_at.elapsed().as_secs_f64();
    // What is left behind, by partition, and who owns which now.
    for id in &stale {
        let row = db
            .query_one("SELECT vehicle_id, status FROM orders WHERE id = $1", &[id])
            .await
            .expect("reads");
        let vehicle: String = row.get(0);
        eprintln!(
            "no fresh ETA: {id} {} {vehicle} (partition {})",
            row.get::<_, String>(1),
            partition_of(&tenant, &vehicle)
        );
    }
    for (name, node) in [("a", &a), ("c", &c), ("d", &d)] {
        let ready = readyz(node).await;
        eprintln!("{name}: {}", ready["node"]);
        eprintln!("{name}: {}", handover_metrics(node).await);
    }
    eprintln!(
        "every moving order had a fresh ETA {resumed_s:.1} s after B was stopped \
         (B owned {b_partitions:?}, stopped at {stopped_wall})"
    );
    assert!(
        stale.is_empty(),
        "{} of {} moving orders got no ETA in the 30 s after B stopped: {stale:?}",
        stale.len(),
        moving.len()
    );

    // The simulator ends; every position it produced is applied once.
    let report = simulate.await.expect("simulate task");
    assert!(
        report.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: Value = serde_json::from_slice(&report.stdout).expect("the report JSON");
    assert_eq!(report["publish_errors"], 0, "{report}");
    let produced = report["positions"].as_i64().expect("positions");
    let drained = Instant::now();
    let mut applied = 0;
    while drained.elapsed() < Duration::from_secs(90) {
        applied = count(&db, "SELECT SUM(applied)::BIGINT FROM vehicle_positions").await;
        if applied >= produced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let replayed = count(&db, "SELECT SUM(replayed)::BIGINT FROM vehicle_positions").await;
    let trucks = count(&db, "SELECT COUNT(*) FROM vehicle_positions").await;
    eprintln!(
        "produced {produced}, applied {applied}, replayed {replayed}, trucks {trucks}, \
         {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(trucks, TRUCKS as i64);
    assert_eq!(applied, produced, "every position applied once");
    assert_eq!(replayed, 0, "no position applied twice");
    // Every truck is held by one node, and only by a node still running: B
    // let go of its trucks before it stopped (its beat row is gone).
    let held = count(&db, "SELECT COUNT(*) FROM vehicle_holds").await;
    let orphaned = count(
        &db,
        "SELECT COUNT(*) FROM vehicle_holds h LEFT JOIN node_beats n ON n.holder = h.holder \
         WHERE n.holder IS NULL",
    )
    .await;
    let holders = count(&db, "SELECT COUNT(DISTINCT holder) FROM vehicle_holds").await;
    eprintln!("{held} trucks held by {holders} nodes; {orphaned} by a node gone");
    assert_eq!(held, TRUCKS as i64, "every truck is held");
    assert_eq!(orphaned, 0, "no truck is held by a stopped node");
    let memories = count(&db, "SELECT COUNT(*) FROM tracker_memories").await;
    assert!(
        memories > 0,
        "trackers' memories were saved for the next owner"
    );

    drop((a, c, d));
    drop(db);
    schema.finish().await;
}
