//! The hard version of the restart test: a consumer *process* is killed with
//! SIGKILL in the middle of a stream (no destructor, no final commit, no leave
//! group), then a new process takes over the same group. The sink is a file
//! fsynced per batch, standing for the embedded store. Every position must be in
//! the file exactly once, in time order per truck.
//!
//! This file is its own `main` (harness = false): run with
//! `INGEST_SIGKILL_CHILD=1` it is the consumer child; otherwise it is the test.
//! Needs the tansu broker in `TRACKER_TEST_KAFKA` (fails under `CI` without it).

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
use ingest::kafka::{KafkaSourceConfig, ensure_topics, run_kafka_source};
use ingest::{IngestStats, PositionSink, SinkError, SinkReceipt, shutdown_channel};

const CHILD_ENV: &str = "INGEST_SIGKILL_CHILD";
const N_VEHICLES: usize = 24;
const PER_VEHICLE: i64 = 250;

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
        config.dead_letter_topic = None;
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
    runtime.block_on(async {
        ensure_topics(&brokers, &[(&topic, 3)])
            .await
            .expect("topic");
        tansu_publisher(&brokers, &topic)
            .publish(&all)
            .await
            .expect("published");
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
        if distinct.len() >= all.len() || Instant::now() > deadline {
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
    println!(
        "kafka_sigkill: ok, {} positions exactly once across two SIGKILLs",
        all.len()
    );
}
