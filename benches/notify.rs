//! The deliverer (`portal_api::run_deliverer`): messages per second from the
//! store's outbox to an in-process SMTP sink (a minimal tokio SMTP server) and
//! to an in-process webhook receiver (axum, answering 204), against the
//! baseline of the store's raw outbox read (`SELECT` of the same entries and
//! a JSON parse of each, over rusqlite on the same file) in the same run.
//!
//! Each iteration appends `BATCH` exceptions to one order (untimed: one
//! outbox entry each), then times the deliverer from start until the sink has
//! every message: expansion into messages, claims, composing or signing, the
//! hand-over, and the outcome's record.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use portal_api::{
    Channels, Customer, DelivererConfig, EventKind, NewEvent, NewOrder, NewRule, NewStop,
    NotifyKey, SmtpChannel, SmtpSettings, Store, TenantId, TriggerEvent, Visibility,
    WebhookChannel, WebhookEvent,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::runtime::Runtime;

/// Messages per timed iteration.
const BATCH: usize = 200;

/// A minimal SMTP server that accepts everything and counts messages.
async fn smtp_sink(count: Arc<AtomicUsize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        count.fetch_add(1, Ordering::Relaxed);
                        b"250 OK queued\r\n"
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 OK\r\n",
                        }
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A webhook receiver answering 204 to every POST, counting them.
async fn webhook_sink(count: Arc<AtomicUsize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = Arc::clone(&count);
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

struct Setup {
    _dir: tempfile::TempDir,
    db_path: std::path::PathBuf,
    store: Arc<dyn Store>,
    tenant: TenantId,
    order: engine::OrderId,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let db_path = dir.path().join("notify.db");
    let store = portal_api::open_store(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("store");
    let (tenant, _) = portal_api::create_tenant(&*store, "Bench Freight")
        .await
        .expect("tenant");
    let stop = |kind, lon| NewStop {
        kind,
        name: "Stop".into(),
        address: String::new(),
        lat: 39.28,
        lon,
        time_zone: chrono_tz::America::New_York,
        window: None,
        geofence: None,
    };
    let order = store
        .create_order(
            tenant.id.clone(),
            NewOrder {
                reference: "LOAD-BENCH".into(),
                customer: Customer {
                    name: "Receiver".into(),
                    email: Some("receiver@bench.test".into()),
                },
                vehicle_id: None,
                driver_name: None,
                stops: vec![
                    stop(engine::StopKind::Pickup, -76.61),
                    stop(engine::StopKind::Delivery, -76.57),
                ],
            },
            portal_api::new_tracking_code(),
        )
        .await
        .expect("order");
    Setup {
        _dir: dir,
        db_path,
        store,
        tenant: tenant.id,
        order: order.id,
    }
}

/// Appends `BATCH` exceptions to the order: `BATCH` outbox entries.
async fn append_batch(s: &Setup) {
    let adds = (0..BATCH).map(|i| {
        s.store.add_event(
            Some(s.tenant.clone()),
            s.order.clone(),
            NewEvent {
                kind: EventKind::Exception,
                status: None,
                at: chrono::Utc::now(),
                note: Some(format!("delay {i}")),
                source: engine::StatusSource::Dispatcher,
                stop_index: None,
                visibility: Visibility::Internal,
            },
        )
    });
    futures::future::try_join_all(adds).await.expect("events");
}

/// Runs the deliverer until `count` reaches `target`; the time it took.
async fn deliver_until(
    s: &Setup,
    key: &NotifyKey,
    channels: Channels,
    count: &AtomicUsize,
    target: usize,
) -> Duration {
    let mut config = DelivererConfig::recommended("http://127.0.0.1:1");
    config.poll_every = Duration::from_millis(1);
    config.batch = 50;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(portal_api::run_deliverer(
        Arc::clone(&s.store),
        key.clone(),
        channels,
        config,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let deadline = started + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < deadline, "the deliverer stalled");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    let _ = task.await;
    elapsed
}

fn outbox_read(c: &mut Criterion, rt: &Runtime) {
    let s = rt.block_on(async {
        let s = setup().await;
        append_batch(&s).await;
        s
    });
    let conn = rusqlite::Connection::open(&s.db_path).expect("open");
    let mut group = c.benchmark_group("notify");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("outbox_read", |b| {
        b.iter(|| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, tenant_id, topic, payload FROM outbox \
                     ORDER BY id DESC LIMIT ?1",
                )
                .expect("prepare");
            let rows = stmt
                .query_map([BATCH as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .expect("query");
            let mut n = 0;
            for row in rows {
                let (_, _, _, payload) = row.expect("row");
                let value: serde_json::Value = serde_json::from_str(&payload).expect("json");
                n += usize::from(value.is_object());
            }
            assert_eq!(n, BATCH);
        })
    });
    group.finish();
}

fn email(c: &mut Criterion, rt: &Runtime) {
    let count = Arc::new(AtomicUsize::new(0));
    let key = NotifyKey::from_bytes(&[5; 32]);
    let (s, smtp) = rt.block_on(async {
        let s = setup().await;
        let addr = smtp_sink(Arc::clone(&count)).await;
        let notes = s.store.notifications().expect("notifications");
        let rule = NewRule {
            event: TriggerEvent::Exception,
            to_customer: true,
            addresses: Vec::new(),
            template: None,
            min_change_min: None,
        };
        notes
            .create_rule(s.tenant.clone(), rule)
            .await
            .expect("rule stored");
        let settings =
            SmtpSettings::parse(&format!("smtp://{addr}"), "Bench <bench@bench.test>", None)
                .expect("settings");
        let smtp = SmtpChannel::new(&settings, Duration::from_secs(10)).expect("channel");
        (s, smtp)
    });
    let mut group = c.benchmark_group("notify");
    // Each sample delivers a whole batch: ten are enough, and keep the run short.
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("email_smtp", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    append_batch(&s).await;
                    let target = count.load(Ordering::Relaxed) + BATCH;
                    let channels = Channels {
                        smtp: Some(smtp.clone()),
                        webhooks: WebhookChannel::new(Vec::new(), Duration::from_secs(10)),
                    };
                    total += deliver_until(&s, &key, channels, &count, target).await;
                });
            }
            total
        })
    });
    group.finish();
}

fn webhook(c: &mut Criterion, rt: &Runtime) {
    let count = Arc::new(AtomicUsize::new(0));
    let key = NotifyKey::from_bytes(&[6; 32]);
    let (s, url) = rt.block_on(async {
        let s = setup().await;
        let addr = webhook_sink(Arc::clone(&count)).await;
        let notes = s.store.notifications().expect("notifications");
        let id = "wh_bench".to_owned();
        let secret = format!("whsec_{}", data_encoding::BASE64.encode(&[7u8; 32]));
        let sealed = key.seal_webhook_secret(&secret, &id).expect("sealed");
        let url = format!("http://{addr}/hook");
        notes
            .create_webhook(
                s.tenant.clone(),
                id,
                url.clone(),
                vec![WebhookEvent::StatusChanged],
                sealed,
            )
            .await
            .expect("endpoint");
        (s, url)
    });
    assert!(url.starts_with("http://127.0.0.1:"));
    let mut group = c.benchmark_group("notify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("webhook_http", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    append_batch(&s).await;
                    let target = count.load(Ordering::Relaxed) + BATCH;
                    let channels = Channels {
                        smtp: None,
                        webhooks: WebhookChannel::new(
                            vec!["127.0.0.1".to_owned()],
                            Duration::from_secs(10),
                        ),
                    };
                    total += deliver_until(&s, &key, channels, &count, target).await;
                });
            }
            total
        })
    });
    group.finish();
}

fn deliverer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    outbox_read(c, &rt);
    email(c, &rt);
    webhook(c, &rt);
}

criterion::criterion_group!(benches, deliverer);
