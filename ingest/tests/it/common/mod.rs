//! Test helpers shared by the ingest integration tests: a durable-looking sink
//! that records every write (so tests can prove nothing was lost or written
//! twice) and can be told to fail. It is pipelined as the binary's is: the
//! Kafka source's `take` keeps a batch in memory only, and the `flush` that
//! follows makes it durable, so a consumer killed in between loses it and
//! must read it again.

#![allow(dead_code, unreachable_pub)]

pub mod kafka;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use engine::{Position, PositionSource, VehicleId, VehicleKey};
use ingest::{DeadLetter, PositionSink, SinkError, SinkReceipt};

#[derive(Debug, Default)]
pub struct Recorded {
    /// Every position written, in write order.
    pub written: Vec<Position>,
    /// How many times each (vehicle, time) was written.
    pub counts: HashMap<(String, DateTime<Utc>), u32>,
    pub dead: Vec<DeadLetter>,
    pub writes: u32,
    /// Fail this many upcoming writes.
    pub fail_next: u32,
    /// Vehicles the "fleet table" knows; others are reported unknown.
    pub known: Option<Vec<String>>,
    /// Time each flush takes after it is recorded (so a kill can land
    /// between "durable" and "offsets committed").
    pub write_delay: std::time::Duration,
    /// Taken by the source and not yet flushed: lost if the consumer dies.
    pub taken: Vec<Position>,
}

/// A sink that keeps everything in memory behind a lock; clones share it, which
/// stands for a database surviving a consumer restart.
#[derive(Debug, Clone, Default)]
pub struct TestSink(pub Arc<Mutex<Recorded>>);

impl TestSink {
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, Recorded> {
        self.0.lock()
    }

    /// Every (vehicle, time) written exactly once and in increasing time per
    /// vehicle; returns how many distinct positions were written.
    pub fn assert_exactly_once_in_order(&self) -> usize {
        let rec = self.lock();
        let twice: Vec<_> = rec.counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "written more than once: {twice:?}");
        let mut last: HashMap<&VehicleId, DateTime<Utc>> = HashMap::new();
        for p in &rec.written {
            if let Some(prev) = last.insert(&p.vehicle_id, p.time) {
                assert!(
                    prev < p.time,
                    "{} went back in time: {prev} then {}",
                    p.vehicle_id,
                    p.time
                );
            }
        }
        rec.counts.len()
    }
}

impl PositionSink for TestSink {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let receipt = self.take(batch).await?;
        self.flush().await?;
        Ok(receipt)
    }

    /// Pipelined like the binary's sink: what is taken is only in memory
    /// (lost if the consumer dies) until a flush makes it "durable".
    async fn take(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let mut rec = self.lock();
        if rec.fail_next > 0 {
            rec.fail_next -= 1;
            return Err(SinkError("database is locked".into()));
        }
        rec.taken.extend_from_slice(batch);
        let unknown = match &rec.known {
            Some(known) => batch
                .iter()
                .filter(|p| !known.contains(&p.vehicle_id.0))
                .count() as u64,
            None => 0,
        };
        Ok(SinkReceipt {
            unknown_vehicles: unknown,
        })
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let taken = std::mem::take(&mut self.lock().taken);
        if !taken.is_empty() {
            self.record(&taken);
        }
        let delay = self.lock().write_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        let rec = self.lock();
        Ok(vehicles
            .iter()
            .map(|v| {
                rec.written
                    .iter()
                    .filter(|p| p.key() == *v)
                    .map(|p| p.time)
                    .max()
            })
            .collect())
    }

    async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        self.lock().dead.extend_from_slice(letters);
        Ok(())
    }
}

impl TestSink {
    /// Makes taken positions "durable".
    fn record(&self, batch: &[Position]) {
        let mut rec = self.lock();
        rec.writes += 1;
        for p in batch {
            *rec.counts
                .entry((p.vehicle_id.0.clone(), p.time))
                .or_default() += 1;
            rec.written.push(p.clone());
        }
    }
}

/// The tenant whose trucks the tests drive.
pub const TENANT: &str = "ten_test";

/// A fixed reference time for deterministic tests.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// Position `i` of vehicle `v`: one per second from `start`, moving east.
pub fn fix(v: &str, i: i64, start: DateTime<Utc>) -> Position {
    Position {
        tenant_id: engine::TenantId(TENANT.to_owned()),
        vehicle_id: VehicleId(v.to_owned()),
        time: start + TimeDelta::seconds(i),
        lat: 41.15,
        lon: -8.61 + i as f64 * 1e-4,
        speed_mps: Some(10.0),
        heading_deg: Some(90.0),
        odometer_m: None,
        hos_drive_remaining_s: None,
        accuracy_m: None,
        source: PositionSource::Canonical,
    }
}
