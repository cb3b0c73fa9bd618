//! The hard version of the restart test: a consumer *process* is killed with
//! SIGKILL in the middle of a stream (no destructor, no final commit, no leave
//! group), then a new process takes over the same group. The sink is a file
//! fsynced per batch, standing for the embedded store. Every position must be in
//! the file exactly once, in time order per truck.
//!
//! Bad messages are mixed into the stream while the dead-letter topic is out
//! of service (its producer refuses every dead letter as too large): each
//! must still end up durable, in the sink's dead-letter file, however the
//! kills fall. A dead letter may be kept twice (written, then the process
//! killed before its offset was stored), never lost.
//!
//! This file is its own `main` (harness = false): run with
//! `INGEST_SIGKILL_CHILD=1` it is the consumer child; otherwise it is the test.
//! Needs the tansu broker in `TRACKER_TEST_KAFKA` (fails under `CI` without it).

#[path = "it/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::fix;
use common::kafka::{broker, tansu_publisher, unique_topic};
use engine::{Position, VehicleKey};
use ingest::kafka::OutRecord;
use ingest::kafka::{KafkaSourceConfig, ensure_topics, run_kafka_source};
use ingest::{DeadLetter, IngestStats, PositionSink, SinkError, SinkReceipt, shutdown_channel};

const CHILD_ENV: &str = "INGEST_SIGKILL_CHILD";
const N_VEHICLES: usize = 24;
const PER_VEHICLE: i64 = 250;
/// A bad message after every this many rounds of positions.
const BAD_EVERY: i64 = 25;

/// Appends `vehicle<TAB>time` lines and fsyncs before returning.
#[derive(Debug, Clone)]
struct FileSink {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl PositionSink for FileSink {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        {
            let _guard = self.lock.lock().map_err(|_| SinkError("poisoned".into()))?;
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| SinkError(e.to_string()))?;
            let mut text = String::new();
            for p in batch {
                text.push_str(&format!("{}\t{}\n", p.vehicle_id, p.time.to_rfc3339()));
            }
            file.write_all(text.as_bytes())
                .map_err(|e| SinkError(e.to_string()))?;
            file.sync_all().map_err(|e| SinkError(e.to_string()))?;
        }
        // Durable but offsets not yet stored: where a kill hurts most.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(SinkReceipt::default())
    }

    async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        let _guard = self.lock.lock().map_err(|_| SinkError("poisoned".into()))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dead_path(&self.path))
            .map_err(|e| SinkError(e.to_string()))?;
        let mut text = String::new();
        for letter in letters {
            let key = String::from_utf8_lossy(letter.key.as_deref().unwrap_or_default());
            text.push_str(&format!("{key}\t{}\n", letter.rejection.reason));
        }
        file.write_all(text.as_bytes())
            .map_err(|e| SinkError(e.to_string()))?;
        file.sync_all().map_err(|e| SinkError(e.to_string()))
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        let lines = read_lines(&self.path);
        let mut newest: HashMap<String, DateTime<Utc>> = HashMap::new();
        for (vehicle, time) in lines {
            let entry = newest.entry(vehicle).or_insert(time);
            *entry = (*entry).max(time);
        }
        Ok(vehicles
            .iter()
            .map(|v| newest.get(v.vehicle_id.as_str()).copied())
            .collect())
    }
}

/// Where the sink keeps its dead letters, beside its positions.
fn dead_path(path: &Path) -> PathBuf {
    path.with_extension("dead.tsv")
}

/// The keys of the dead letters kept, with their reasons.
fn dead_keys(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dead_path(path))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, reason) = line.split_once('\t')?;
            Some((key.to_owned(), reason.to_owned()))
        })
        .collect()
}

fn read_lines(path: &Path) -> Vec<(String, DateTime<Utc>)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (vehicle, time) = line.split_once('\t')?;
            Some((
                vehicle.to_owned(),
                DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc),
            ))
        })
        .collect()
}

fn child(brokers: &str, topic: &str, group: &str, path: &Path) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sink = FileSink {
            path: path.to_owned(),
            lock: Arc::new(Mutex::new(())),
        };
        let mut config = KafkaSourceConfig::recommended(brokers, group, topic);
        // The dead-letter topic is out of service: its producer refuses every
        // dead letter (over 1000 bytes) until the bounded retry gives up.
        config.dead_letter_topic = Some(format!("{topic}.dlq"));
        config.dead_letter_overrides = vec![("message.max.bytes".into(), "1000".into())];
        config.dead_letter_publish_timeout = Duration::from_secs(1);
        config.max_batch = 100;
        let (_stop, shutdown) = shutdown_channel();
        run_kafka_source(&config, sink, Arc::new(IngestStats::new()), shutdown)
            .await
            .expect("source runs");
    });
}

fn spawn_child(brokers: &str, topic: &str, group: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, "1")
        .env("CHILD_BROKERS", brokers)
        .env("CHILD_TOPIC", topic)
        .env("CHILD_GROUP", group)
        .env("CHILD_FILE", path)
        .spawn()
        .expect("child starts")
}

fn wait_lines(path: &Path, at_least: usize, limit: Duration) {
    let start = Instant::now();
    while read_lines(path).len() < at_least {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {at_least} lines"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let var = |name| std::env::var(name).expect("child setting");
        child(
            &var("CHILD_BROKERS"),
            &var("CHILD_TOPIC"),
            &var("CHILD_GROUP"),
            Path::new(&var("CHILD_FILE")),
        );
        return;
    }
    let Some(brokers) = broker("kafka_sigkill") else {
        return;
    };
    let topic = unique_topic("sigkill");
    let group = unique_topic("group");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let start = Utc::now() - TimeDelta::hours(1);
    let all: Vec<Position> = (0..PER_VEHICLE)
        .flat_map(|i| (0..N_VEHICLES).map(move |v| fix(&format!("kill-{v}"), i, start)))
        .collect();
    // A bad message (at null island, padded past the dead-letter producer's
    // limit) after every `BAD_EVERY` rounds.
    let padding = "x".repeat(1500);
    let bad: Vec<(String, Vec<u8>)> = (0..PER_VEHICLE / BAD_EVERY)
        .map(|n| {
            let time = (start + TimeDelta::seconds(n)).to_rfc3339();
            let body = format!(
                r#"{{"tenant_id":"{}","vehicle_id":"bad-{n}","time":"{time}","lat":0,"lon":0,"note":"{padding}"}}"#,
                common::TENANT
            );
            (format!("{}/bad-{n}", common::TENANT), body.into_bytes())
        })
        .collect();
    runtime.block_on(async {
        ensure_topics(&brokers, &[(&topic, 3), (&format!("{topic}.dlq"), 1)])
            .await
            .expect("topic");
        let publisher = tansu_publisher(&brokers, &topic);
        let per_chunk = N_VEHICLES * BAD_EVERY as usize;
        for (chunk, (key, body)) in all.chunks(per_chunk).zip(&bad) {
            publisher.publish(chunk).await.expect("published");
            let record = OutRecord {
                key: Some(key.as_bytes()),
                payload: body,
                headers: Vec::new(),
            };
            publisher.send_all(&[record]).await.expect("published");
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.tsv");

    // Kill twice, at a third and at two thirds, then let a third process finish.
    for fraction in [1, 2] {
        let mut consumer = spawn_child(&brokers, &topic, &group, &path);
        wait_lines(&path, all.len() * fraction / 3, Duration::from_secs(90));
        consumer.kill().expect("SIGKILL");
        let _ = consumer.wait();
        eprintln!(
            "killed a consumer after {} durable lines",
            read_lines(&path).len()
        );
    }
    let mut last = spawn_child(&brokers, &topic, &group, &path);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = read_lines(&path);
        let distinct: std::collections::HashSet<_> = lines.iter().collect();
        let dead: std::collections::HashSet<_> = dead_keys(&path).into_iter().collect();
        if (distinct.len() >= all.len() && dead.len() >= bad.len()) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A moment for a wrong replay to show up.
    std::thread::sleep(Duration::from_millis(500));
    let _ = last.kill();
    let _ = last.wait();

    let lines = read_lines(&path);
    let mut counts: HashMap<(String, DateTime<Utc>), u32> = HashMap::new();
    let mut newest: HashMap<String, DateTime<Utc>> = HashMap::new();
    for (vehicle, time) in &lines {
        *counts.entry((vehicle.clone(), *time)).or_default() += 1;
        if let Some(prev) = newest.insert(vehicle.clone(), *time) {
            assert!(prev < *time, "{vehicle} went back in time");
        }
    }
    let twice = counts.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "{twice} positions written more than once");
    assert_eq!(
        counts.len(),
        all.len(),
        "every position written (none lost)"
    );
    let dead = dead_keys(&path);
    let mut kept: Vec<&str> = dead.iter().map(|(key, _)| key.as_str()).collect();
    kept.sort();
    kept.dedup();
    let mut expected: Vec<&str> = bad.iter().map(|(key, _)| key.as_str()).collect();
    expected.sort();
    assert_eq!(kept, expected, "every bad message kept as a dead letter");
    assert!(
        dead.iter().all(|(_, reason)| reason == "null_island"),
        "{dead:?}"
    );
    println!(
        "kafka_sigkill: ok, {} positions exactly once and {} dead letters ({} kept) across two SIGKILLs with the dead-letter topic down",
        all.len(),
        bad.len(),
        dead.len()
    );
}
