//! Two tenants who both run a `truck-7`, through the real binary: over HTTP and
//! over Kafka (the tansu broker of `TRACKER_TEST_KAFKA`), each tenant's fixes
//! move only its own orders, each page shows only its own truck, and nothing
//! tells one tenant that the other uses the id. Before vehicles were scoped by
//! tenant, B's truck showed on A's page, A's fixes drove B's order through its
//! geofences, A was told the id "carries an order of another account", and one
//! fix of A's dated minutes ahead made B's real feed look stale.

use crate::portal_support;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use ingest::kafka::{ClientTuning, KafkaPublisher, OutRecord};
use portal_support::{Server, client, dispatched_order, sqlite_url, tracker_json};
use serde_json::{Value, json};

const TRUCK: &str = "truck-7";
/// Where B's truck really is: north of the harbour.
const B_PLACE: (f64, f64) = (39.2905, -76.6120);
/// The pickup of both orders (see `dispatched_order`).
const PICKUP: (f64, f64) = (39.2770, -76.6080);

struct Tenant {
    id: String,
    key: String,
}

fn tenant(dir: &Path, store: &str, name: &str) -> Tenant {
    let json = tracker_json(dir, &["tenant", "create", name, "--store", store]);
    Tenant {
        id: json["tenant_id"].as_str().expect("tenant_id").to_owned(),
        key: json["api_key"].as_str().expect("api_key").to_owned(),
    }
}

/// How a tenant's fixes reach the server.
enum Feed {
    Http,
    Kafka(KafkaPublisher),
}

impl Feed {
    /// Sends fixes of `truck-7` for `who`; over HTTP every item must be accepted.
    async fn send(&self, base: &str, who: &Tenant, fixes: &[(f64, f64, DateTime<Utc>)]) {
        match self {
            Feed::Http => {
                let body: Vec<Value> = fixes
                    .iter()
                    .map(|(lat, lon, at)| {
                        json!({"vehicle_id": TRUCK, "time": at.to_rfc3339(), "lat": lat, "lon": lon, "speed_mps": 0.0})
                    })
                    .collect();
                let reply = client()
                    .post(format!("{base}/api/v1/positions"))
                    .bearer_auth(&who.key)
                    .json(&body)
                    .send()
                    .await
                    .expect("post positions");
                assert_eq!(reply.status(), 202);
                let receipt: Value = reply.json().await.expect("receipt");
                let text = receipt.to_string();
                assert!(
                    !text.contains("another") && !text.contains("not_available"),
                    "the receipt says nothing of other tenants: {text}"
                );
                for item in receipt["results"].as_array().expect("results") {
                    assert_eq!(item["status"], "accepted", "{receipt}");
                }
            }
            Feed::Kafka(producer) => {
                // The canonical message names its tenant; the key is TENANT/VEHICLE.
                let key = format!("{}/{TRUCK}", who.id);
                let payloads: Vec<Vec<u8>> = fixes
                    .iter()
                    .map(|(lat, lon, at)| {
                        json!({"tenant_id": who.id, "vehicle_id": TRUCK, "time": at.to_rfc3339(),
                               "lat": lat, "lon": lon, "speed_mps": 0.0})
                        .to_string()
                        .into_bytes()
                    })
                    .collect();
                let records: Vec<OutRecord<'_>> = payloads
                    .iter()
                    .map(|payload| OutRecord {
                        key: Some(key.as_bytes()),
                        payload,
                        headers: Vec::new(),
                    })
                    .collect();
                producer.send_all(&records).await.expect("produced");
            }
        }
    }
}

async fn track(base: &str, code: &str) -> Value {
    client()
        .get(format!("{base}/api/v1/track/{code}"))
        .send()
        .await
        .expect("track")
        .json()
        .await
        .expect("track JSON")
}

async fn order(base: &str, key: &str, id: &str) -> Value {
    client()
        .get(format!("{base}/api/v1/orders/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("order JSON")
}

/// Polls the page of `code` until `check` holds for its JSON, or fails.
async fn page_until(base: &str, code: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = track(base, code).await;
        if check(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{what}: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn near(vehicle: &Value, (lat, lon): (f64, f64)) -> bool {
    let (Some(a), Some(b)) = (vehicle["lat"].as_f64(), vehicle["lon"].as_f64()) else {
        return false;
    };
    // 0.001° is about 100 m: a snapped fix stays well inside.
    (a - lat).abs() < 1e-3 && (b - lon).abs() < 1e-3
}

async fn two_tenants_one_truck_id(dir: &Path, store: &str, server: &Server, a_feed: Feed) {
    let base = server.base_url.as_str();
    let (a, b) = (
        tenant(dir, store, "Alpha Logistics"),
        tenant(dir, store, "Bravo Freight"),
    );
    let t0 = Utc::now() - TimeDelta::minutes(10);

    // B's truck-7 carries B's load and reports north of the harbour.
    let b_order = dispatched_order(base, &b.key, "B-1", TRUCK).await;
    let b_code = b_order["tracking_code"].as_str().expect("code").to_owned();
    Feed::Http
        .send(base, &b, &[(B_PLACE.0, B_PLACE.1, t0)])
        .await;
    page_until(base, &b_code, "B's truck on B's page", |p| {
        near(&p["vehicle"], B_PLACE)
    })
    .await;

    // A's truck-7 is another truck: A's fix is taken like any other.
    a_feed
        .send(base, &a, &[(39.3000, -76.6100, t0 + TimeDelta::seconds(1))])
        .await;

    // A dispatches its own load on its truck-7, with the same stops as B's.
    let a_order = dispatched_order(base, &a.key, "A-1", TRUCK).await;
    let a_id = a_order["id"].as_str().expect("id").to_owned();
    let a_code = a_order["tracking_code"].as_str().expect("code").to_owned();
    // The engine reads new orders every half second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A's truck stands at the shared pickup for three minutes.
    let standing: Vec<_> = (0..18)
        .map(|k| (PICKUP.0, PICKUP.1, t0 + TimeDelta::seconds(300 + 10 * k)))
        .collect();
    a_feed.send(base, &a, &standing).await;

    // A's own order moved by geofence (the control: the fixes were applied)…
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = order(base, &a.key, &a_id).await["status"].clone();
        if status != "dispatched" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A's order never reached its pickup"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let a_page = page_until(base, &a_code, "A's truck on A's page", |p| {
        near(&p["vehicle"], PICKUP)
    })
    .await;
    assert!(!near(&a_page["vehicle"], B_PLACE), "{a_page}");

    // …and B's did not: same stops, same vehicle id, another tenant's truck.
    let b_now = order(base, &b.key, b_order["id"].as_str().expect("id")).await;
    assert_eq!(b_now["status"], "dispatched", "{b_now}");
    let b_page = track(base, &b_code).await;
    assert!(
        near(&b_page["vehicle"], B_PLACE),
        "B's page shows B's truck: {b_page}"
    );
    for stop in b_page["stops"].as_array().expect("stops") {
        assert!(stop["arrived_at"].is_null(), "{stop}");
    }

    // One fix of A's, dated nearly five minutes ahead, does not make B's real
    // feed look stale.
    let ahead = Utc::now() + TimeDelta::seconds(290);
    a_feed.send(base, &a, &[(PICKUP.0, PICKUP.1, ahead)]).await;
    let b_later = (B_PLACE.0 + 0.002, B_PLACE.1);
    Feed::Http
        .send(base, &b, &[(b_later.0, b_later.1, Utc::now())])
        .await;
    page_until(base, &b_code, "B's newest fix on B's page", |p| {
        near(&p["vehicle"], b_later)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_one_truck_id_never_touch_each_other_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "tenants.db");
    let server = Server::start(
        dir.path(),
        &["--store", &store, "--orders-every-s", "0.5"],
        0,
    );
    two_tenants_one_truck_id(dir.path(), &store, &server, Feed::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_one_truck_id_never_touch_each_other_over_kafka() {
    let Some((brokers, topic)) = portal_support::kafka_broker("tenants") else {
        return;
    };
    let bus = format!("kafka://{brokers}/{topic}");
    let group = format!("g-{topic}");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "tenants-kafka.db");
    let server = Server::start(
        dir.path(),
        &[
            "--store",
            &store,
            "--bus",
            &bus,
            "--kafka-group",
            &group,
            "--orders-every-s",
            "0.5",
        ],
        0,
    );
    // One record per produce batch: tansu 0.6.0 returns nothing when a fetch
    // starts inside a multi-record batch (see ingest's test helpers).
    let producer = KafkaPublisher::new(
        &brokers,
        &topic,
        ClientTuning::Tuned,
        &[("batch.num.messages".into(), "1".into())],
    )
    .expect("producer");
    two_tenants_one_truck_id(dir.path(), &store, &server, Feed::Kafka(producer)).await;
}
