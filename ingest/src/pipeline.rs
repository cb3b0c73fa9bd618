//! What every source does between "messages arrived" and "offsets may be
//! committed": deduplicate per vehicle, order by device time, write to the sink
//! durably with retries, and count. The deduplication table is pure; the delivery
//! helpers are the only async code here.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::{Position, TenantId, VehicleId, VehicleKey};

use crate::shutdown::Shutdown;
use crate::sink::{DeadLetter, PositionSink, SinkReceipt};
use crate::stats::IngestStats;

/// The newest written device time per vehicle (tenant and id), tagged with the
/// partition the vehicle arrived on so a revoked partition's vehicles can be
/// forgotten (another node may advance them; we re-ask the sink if they come
/// back). Kept by tenant, then vehicle, so every position is looked up by
/// reference: no key is built per position on this hot path.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    last: HashMap<TenantId, HashMap<VehicleId, (DateTime<Utc>, u32)>>,
    /// Vehicles seeded since [`Dedupe::take_seeded`] last ran, with their tag,
    /// when the caller asked for them ([`Dedupe::keeping_seeded`]).
    seeded: Option<Vec<(VehicleKey, u32)>>,
}

/// The outcome of filtering a batch.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Filtered {
    /// New positions, ordered by device time (strictly increasing per vehicle).
    pub(crate) accepted: Vec<Position>,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
}

impl Dedupe {
    /// A table that also lists the vehicles it seeds (see
    /// [`Dedupe::take_seeded`]): the Kafka source learns from it which
    /// vehicles each partition brought.
    pub(crate) fn keeping_seeded() -> Dedupe {
        Dedupe {
            last: HashMap::new(),
            seeded: Some(Vec::new()),
        }
    }

    /// The vehicles seeded since the last call, with their tag.
    pub(crate) fn take_seeded(&mut self) -> Vec<(VehicleKey, u32)> {
        self.seeded.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Vehicles in `positions` that the table has never seen (each once), with
    /// the tag (partition) of their first position; `tags` parallels `positions`.
    pub(crate) fn unseen(&self, positions: &[Position], tags: &[u32]) -> Vec<(VehicleKey, u32)> {
        let mut unseen: Vec<(VehicleKey, u32)> = positions
            .iter()
            .zip(tags.iter().copied().chain(std::iter::repeat(0)))
            .filter(|(p, _)| self.newest(p).is_none())
            .map(|(p, tag)| (p.key(), tag))
            .collect();
        // Stable, so each vehicle keeps the tag of its first position.
        unseen.sort_by(|a, b| a.0.cmp(&b.0));
        unseen.dedup_by(|a, b| a.0 == b.0);
        unseen
    }

    /// Records what the sink said about vehicles it was asked about. A vehicle
    /// the sink never wrote gets the earliest time, so it is not asked again.
    pub(crate) fn seed(
        &mut self,
        vehicles: Vec<(VehicleKey, u32)>,
        times: &[Option<DateTime<Utc>>],
    ) {
        if let Some(seeded) = &mut self.seeded {
            seeded.extend(vehicles.iter().cloned());
        }
        for ((vehicle, tag), time) in vehicles.into_iter().zip(times) {
            self.last
                .entry(vehicle.tenant_id)
                .or_default()
                .entry(vehicle.vehicle_id)
                .or_insert((time.unwrap_or(DateTime::<Utc>::MIN_UTC), tag));
        }
    }

    /// The newest written time of the position's vehicle, if it is known.
    fn newest(&self, p: &Position) -> Option<DateTime<Utc>> {
        self.last
            .get(&p.tenant_id)
            .and_then(|vehicles| vehicles.get(&p.vehicle_id))
            .map(|(t, _)| *t)
    }

    /// Sorts the batch by device time and drops what the sink already has: the
    /// same vehicle and time (a duplicate) or an older time (out of order).
    pub(crate) fn filter(&self, mut positions: Vec<Position>) -> Filtered {
        // Stable: positions with equal times keep their arrival order.
        positions.sort_by_key(|p| p.time);
        let mut newest: HashMap<(&TenantId, &VehicleId), DateTime<Utc>> = HashMap::new();
        let mut keep = Vec::with_capacity(positions.len());
        let (mut duplicates, mut out_of_order) = (0, 0);
        for (idx, p) in positions.iter().enumerate() {
            let key = (&p.tenant_id, &p.vehicle_id);
            let last = newest.get(&key).copied().or_else(|| self.newest(p));
            match last {
                Some(t) if p.time == t => duplicates += 1,
                Some(t) if p.time < t => out_of_order += 1,
                _ => {
                    newest.insert(key, p.time);
                    keep.push(idx);
                }
            }
        }
        let mut keep = keep.into_iter().peekable();
        let accepted = positions
            .into_iter()
            .enumerate()
            .filter_map(|(idx, p)| {
                if keep.peek() == Some(&idx) {
                    keep.next();
                    Some(p)
                } else {
                    None
                }
            })
            .collect();
        Filtered {
            accepted,
            duplicates,
            out_of_order,
        }
    }

    /// Advances the table once the sink has made `written` durable. Every
    /// written vehicle was seeded first, so its tag is already known.
    pub(crate) fn commit(&mut self, written: &[Position]) {
        for p in written {
            let vehicles = match self.last.get_mut(&p.tenant_id) {
                Some(vehicles) => vehicles,
                None => self.last.entry(p.tenant_id.clone()).or_default(),
            };
            match vehicles.get_mut(&p.vehicle_id) {
                Some(entry) => entry.0 = entry.0.max(p.time),
                None => {
                    vehicles.insert(p.vehicle_id.clone(), (p.time, 0));
                }
            }
        }
    }

    /// Forgets the vehicles seen on partitions with the given tags.
    pub(crate) fn forget_tags(&mut self, tags: &[u32]) {
        for vehicles in self.last.values_mut() {
            vehicles.retain(|_, (_, tag)| !tags.contains(tag));
        }
        self.last.retain(|_, vehicles| !vehicles.is_empty());
    }
}

/// Exponential backoff for retries of the sink and the dead-letter producer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
        }
    }

    /// Sleeps, unless shutdown comes first; `false` then.
    pub(crate) async fn sleep(&mut self, shutdown: &mut Shutdown) -> bool {
        let wait = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = shutdown.wait() => false,
        }
    }
}

/// Returned when shutdown interrupted a retry loop: the work is not durable and
/// its offsets must not be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interrupted;

/// Retries `$op` (an expression producing a future of `Result<T, SinkError>`)
/// with backoff until it succeeds; evaluates to `Err(Interrupted)` on shutdown.
/// A macro rather than a function taking a closure: closures returning futures
/// that borrow defeat the `Send` inference of the callers' spawned tasks.
macro_rules! retry {
    ($stats:expr, $shutdown:expr, $count:ident, $op:expr) => {{
        let mut backoff = Backoff::new();
        loop {
            match $op.await {
                Ok(value) => break Ok(value),
                Err(err) => {
                    tracing::warn!(error = %err, "retrying after a sink failure");
                    $stats.$count();
                    if !backoff.sleep($shutdown).await {
                        break Err(Interrupted);
                    }
                }
            }
        }
    }};
}

/// How [`deliver`] hands a batch to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hand {
    /// `PositionSink::write`: durable when `deliver` returns.
    Write,
    /// `PositionSink::take`: the sink's when `deliver` returns, durable
    /// after a later `PositionSink::flush` (the Kafka source's pipeline).
    Take,
}

/// Decides, writes and counts one batch of decoded positions: asks the sink about
/// unseen vehicles, filters, writes (or takes, see [`Hand`]) with retries until
/// the sink has it, then advances the table. Returns `Interrupted` only on
/// shutdown.
pub(crate) async fn deliver<S: PositionSink>(
    sink: &S,
    hand: Hand,
    dedupe: &mut Dedupe,
    positions: Vec<Position>,
    tags: &[u32],
    stats: &IngestStats,
    shutdown: &mut Shutdown,
) -> Result<SinkReceipt, Interrupted> {
    if positions.is_empty() {
        return Ok(SinkReceipt::default());
    }
    let unseen = dedupe.unseen(&positions, tags);
    if !unseen.is_empty() {
        let ids: Vec<VehicleKey> = unseen.iter().map(|(id, _)| id.clone()).collect();
        let times = retry!(stats, shutdown, sink_retry, sink.last_times(&ids))?;
        dedupe.seed(unseen, &times);
    }
    let filtered = dedupe.filter(positions);
    stats.duplicates(filtered.duplicates);
    stats.out_of_order(filtered.out_of_order);
    if filtered.accepted.is_empty() {
        return Ok(SinkReceipt::default());
    }
    let receipt = match hand {
        Hand::Write => retry!(stats, shutdown, sink_retry, sink.write(&filtered.accepted))?,
        Hand::Take => retry!(stats, shutdown, sink_retry, sink.take(&filtered.accepted))?,
    };
    dedupe.commit(&filtered.accepted);
    stats.batch();
    stats.accepted(filtered.accepted.len() as u64);
    stats.unknown_vehicles(receipt.unknown_vehicles);
    Ok(receipt)
}

/// Flushes the sink with retries until everything it took is durable.
/// Returns `Interrupted` only on shutdown.
pub(crate) async fn flush<S: PositionSink>(
    sink: &S,
    stats: &IngestStats,
    shutdown: &mut Shutdown,
) -> Result<(), Interrupted> {
    retry!(stats, shutdown, sink_retry, sink.flush())
}

/// Hands dead letters to the sink (the in-process bus has no dead-letter topic).
pub(crate) async fn deliver_dead_letters<S: PositionSink>(
    sink: &S,
    letters: &[DeadLetter],
    stats: &IngestStats,
    shutdown: &mut Shutdown,
) -> Result<(), Interrupted> {
    if letters.is_empty() {
        return Ok(());
    }
    retry!(
        stats,
        shutdown,
        dead_letter_retry,
        sink.dead_letters(letters)
    )?;
    stats.dead_lettered(letters.len() as u64);
    Ok(())
}
