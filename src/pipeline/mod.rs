//! The live pipeline of `tracker serve`: positions from the bus (the in-process
//! memory bus or a Kafka consumer group) run through the engine
//! ([`engine::LiveEngine`]: matching, traffic, per-order ETA trackers) and its
//! events go through [`portal_api::LiveUpdates`] into the store and out to the
//! tracking pages.
//!
//! Who does what, and on which thread:
//! - [`EngineSink`] is the bus's [`PositionSink`], in two halves. `take` runs
//!   the engine on the batch on the blocking pool (the engine is CPU work
//!   behind one mutex; the async runtime never waits on it) and queues its
//!   events; `flush` hands the queued events to `LiveUpdates` (a batch's
//!   positions in one store write, then each order's ETAs and status moves)
//!   and awaits the store writes, one flush at a time. `write` is both: when
//!   it returns the batch's effects are durable, and only then does the memory
//!   bus ack its publisher. The Kafka source pipelines them: the engine of
//!   batch N+1 runs while the store writes batch N, and N's offsets are stored
//!   after N's flush. Events whose store write failed for a retryable reason
//!   (busy, locked, I/O) stay queued and go first on the next flush; an event
//!   the store refuses for good goes to the store's dead-letter table instead,
//!   so it cannot hold up the stream. The queue is bounded: while it is full,
//!   `take` tries to flush and fails before running the engine, so the bus
//!   backs off and its consumer does not advance (push-back instead of
//!   unbounded memory). Dead letters handed to the sink (the in-process bus's,
//!   and the Kafka source's when its dead-letter topic refuses them) go to the
//!   same table.
//! - [`sync_orders`] re-reads the store's active orders every few seconds and
//!   gives them to the engine, so orders created, changed, assigned or moved
//!   through the API reach their trackers (polling, not notification: the store
//!   may be shared by several nodes, and a few seconds is well inside the time a
//!   truck takes to do anything that matters).
//! - [`run_metric_loop`] is a thread that, every `recustomize_every_s`, asks the
//!   engine what the traffic model changed (quick, under the lock), customizes
//!   the router with it (slow, without the lock: queries go on on the old metric)
//!   and installs the result (quick).
//! - [`BusIntake`] is the portal's [`PositionIntake`]: positions posted over HTTP
//!   go onto the same bus, so they take exactly the same path.
//! - [`ownership`] says which trucks are this node's: every one on the
//!   in-process bus, those of its partitions on Kafka. The engine tracks only
//!   their orders; a truck's trackers' memories are read when it is taken up
//!   and saved when its partition is revoked ([`PositionSink::release`]).
//! - [`learning`] keeps the engine's calibrator in the store across restarts.
//! - [`telemetry`] records what all of this does into `/metrics`; every sink
//!   write runs in an `engine_batch` span.

pub(crate) mod demo;
pub(crate) mod fleet;
pub(crate) mod handover;
pub(crate) mod learning;
pub(crate) mod ownership;
pub(crate) mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::{
    ActiveOrder, ActiveStop, AppointmentWindow, EngineEvent, EtaUpdate, LiveEngine, Position,
    TenantId, VehicleKey,
};
use futures::future::join_all;
use ingest::{BusPublisher, DeadLetter, PositionSink, SinkError, SinkReceipt};
use parking_lot::{Mutex, MutexGuard};
use portal_api::{IntakeFuture, LiveUpdates, NewDeadLetter, Order, PositionIntake, Store};
use road_graph::LatLon;
use tracing::Instrument;

pub(crate) use ownership::{Ownership, SharedOwnership};

/// The engine, shared by the sink, the order sync and the metric loop.
pub(crate) type SharedEngine = Arc<Mutex<LiveEngine>>;

pub(crate) fn lock(engine: &SharedEngine) -> MutexGuard<'_, LiveEngine> {
    // parking_lot does not poison: a panic while holding the lock leaves the
    // engine as it was at the panic, and carrying on is better than stopping
    // every truck's live view.
    engine.lock()
}

/// The bus's destination: the engine, then the store and the fan-out.
#[derive(Debug)]
pub(crate) struct EngineSink {
    engine: SharedEngine,
    /// Which trucks are this node's; a truck's memories are read when it is
    /// taken up and saved when it is let go.
    ownership: SharedOwnership,
    live: LiveUpdates,
    store: Arc<dyn Store>,
    /// Events produced by the engine whose store write has not succeeded yet.
    pending: tokio::sync::Mutex<Vec<EngineEvent>>,
    /// Held by a flush for its whole store write: flushes one at a time.
    storing: tokio::sync::Mutex<()>,
    /// While `pending` holds this many events, no new batch runs (push-back).
    max_pending_events: usize,
    dropped_events: AtomicU64,
    dead_lettered_events: AtomicU64,
    /// The `source` label of positions that are not the simulator's: `http`
    /// on the in-process bus, `kafka` on Kafka.
    bus_source: &'static str,
    /// On Kafka, the node's part in handing trucks between nodes: a truck is
    /// held before its first position here and let go after its release.
    handover: Option<Arc<handover::Handover>>,
}

/// The default bound of the queue between the engine and the store: about a
/// minute of a busy node's events while the store is away, a few tens of MB.
pub(crate) const DEFAULT_MAX_PENDING_EVENTS: usize = 50_000;

impl EngineSink {
    pub(crate) fn new(
        engine: SharedEngine,
        ownership: SharedOwnership,
        live: LiveUpdates,
        store: Arc<dyn Store>,
        max_pending_events: usize,
    ) -> Self {
        EngineSink {
            engine,
            ownership,
            live,
            store,
            pending: tokio::sync::Mutex::new(Vec::new()),
            storing: tokio::sync::Mutex::new(()),
            max_pending_events: max_pending_events.max(1),
            dropped_events: AtomicU64::new(0),
            dead_lettered_events: AtomicU64::new(0),
            bus_source: "http",
            handover: None,
        }
    }

    /// Holds each truck in the store before taking its positions, and lets
    /// go of it on release (several nodes on one Kafka group).
    pub(crate) fn with_handover(mut self, handover: Arc<handover::Handover>) -> Self {
        self.handover = Some(handover);
        self
    }

    /// Labels the positions of this sink's bus (not the simulator's) as
    /// `source` in the metrics (`http` by default; `kafka`).
    pub(crate) fn with_bus_source(mut self, source: &'static str) -> Self {
        self.bus_source = source;
        self
    }

    /// Events waiting for the store.
    #[cfg(test)]
    pub(crate) async fn pending_events(&self) -> usize {
        self.pending.lock().await.len()
    }

    /// Events the store refused for good, kept in its dead-letter table.
    #[cfg(test)]
    pub(crate) fn dead_lettered_events(&self) -> u64 {
        self.dead_lettered_events.load(Ordering::Relaxed)
    }

    /// Events refused for good by the store (a status move the order no longer
    /// allows, an order deleted meanwhile).
    pub(crate) fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Writes the queued events: the positions in one store write (a batch
    /// folded per vehicle), then the events of one order in their order,
    /// different orders concurrently (so the store's writer can fold them
    /// into few transactions). What failed for a retryable reason stays
    /// queued. When the store refuses the positions' batch for good, they go
    /// one by one like the rest, so that only the one at fault is set aside.
    async fn deliver(&self, pending: &mut Vec<EngineEvent>) -> Result<(), SinkError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut positions = Vec::new();
        let mut others = Vec::new();
        for event in pending.drain(..) {
            match event {
                EngineEvent::PositionUpdated(p) => positions.push(p),
                other => others.push(other),
            }
        }
        let mut first_error = None;
        if !positions.is_empty() {
            match self.live.position_updates(&positions).await {
                Ok(_) => {}
                Err(err) if err.is_retryable() => {
                    first_error = Some(err.to_string());
                    pending.extend(positions.into_iter().map(EngineEvent::PositionUpdated));
                }
                Err(err) => {
                    tracing::debug!(error = %err, "position batch refused; writing one by one");
                    let one_by_one = positions.into_iter().map(EngineEvent::PositionUpdated);
                    others.splice(0..0, one_by_one);
                }
            }
        }
        let mut chains: HashMap<String, Vec<EngineEvent>> = HashMap::new();
        let mut keys = Vec::new();
        for event in others {
            let key = match &event {
                EngineEvent::PositionUpdated(p) => format!("v:{}/{}", p.tenant_id, p.vehicle_id),
                EngineEvent::EtaUpdated(e) => format!("o:{}", e.order_id),
                EngineEvent::StatusChanged(s) => format!("o:{}", s.order_id),
            };
            let chain = chains.entry(key.clone()).or_default();
            if chain.is_empty() {
                keys.push(key);
            }
            chain.push(event);
        }
        // The orders whose events are ETAs alone (most of them) are recorded
        // in one transaction; the others chain by chain, side by side.
        let (etas_only, mixed): (Vec<String>, Vec<String>) = keys.into_iter().partition(|key| {
            chains[key]
                .iter()
                .all(|e| matches!(e, EngineEvent::EtaUpdated(_)))
        });
        let etas: Vec<EngineEvent> = etas_only
            .iter()
            .flat_map(|key| chains.remove(key).unwrap_or_default())
            .collect();
        let (batched, results) = futures::join!(
            self.deliver_etas(etas),
            join_all(mixed.iter().map(|key| {
                let chain = chains.remove(key).unwrap_or_default();
                self.deliver_chain(chain)
            }))
        );
        for (left, error) in std::iter::once(batched).chain(results) {
            pending.extend(left);
            if first_error.is_none() {
                first_error = error;
            }
        }
        match first_error {
            None => Ok(()),
            Some(err) => Err(SinkError(err)),
        }
    }

    /// ETAs of orders with nothing else in this flush, in one batch; on a
    /// refusal for good, chain by chain (so only the refused ETA is set
    /// aside). Returns what is left after a retryable failure.
    async fn deliver_etas(&self, events: Vec<EngineEvent>) -> (Vec<EngineEvent>, Option<String>) {
        let updates: Vec<EtaUpdate> = events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::EtaUpdated(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        if updates.is_empty() {
            return (Vec::new(), None);
        }
        match self.live.etas(updates).await {
            Ok(_) => (Vec::new(), None),
            Err(err) if err.is_retryable() => (events, Some(err.to_string())),
            Err(err) => {
                tracing::debug!(error = %err, "ETA batch refused; writing order by order");
                // `events` holds each order's ETAs together (see `deliver`).
                let order_of = |e: &EngineEvent| match e {
                    EngineEvent::EtaUpdated(u) => Some(u.order_id.clone()),
                    _ => None,
                };
                let results = join_all(
                    events
                        .chunk_by(|a, b| order_of(a) == order_of(b))
                        .map(|chain| self.deliver_chain(chain.to_vec())),
                )
                .await;
                let mut left = Vec::new();
                let mut first_error = None;
                for (rest, error) in results {
                    left.extend(rest);
                    first_error = first_error.or(error);
                }
                (left, first_error)
            }
        }
    }

    /// One chain in order; returns what is left after a retryable failure.
    async fn deliver_chain(&self, chain: Vec<EngineEvent>) -> (Vec<EngineEvent>, Option<String>) {
        let mut events = chain.into_iter();
        while let Some(event) = events.next() {
            match self.live.handle(event.clone()).await {
                Ok(()) => {}
                Err(
                    err @ (portal_api::Error::Conflict { .. }
                    | portal_api::Error::NotFound(_)
                    | portal_api::Error::Invalid { .. }),
                ) => {
                    // The order moved on meanwhile (a dispatcher was quicker than
                    // the geofence): nothing to retry.
                    self.dropped_events.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %err, "engine event not applicable");
                }
                Err(err) if err.is_retryable() => {
                    let mut left = vec![event];
                    left.extend(events);
                    return (left, Some(err.to_string()));
                }
                Err(err) => {
                    // Refused for good (a constraint, a value the database
                    // cannot hold): retrying would stop this chain forever, so
                    // the event is set aside where an operator can see it. Only
                    // if even that fails does it stay queued.
                    if let Err(failed) = self.dead_letter_event(&event, &err).await {
                        let mut left = vec![event];
                        left.extend(events);
                        return (left, Some(failed.to_string()));
                    }
                }
            }
        }
        (Vec::new(), None)
    }

    /// Writes an event the store refused for good to the dead-letter table.
    async fn dead_letter_event(
        &self,
        event: &EngineEvent,
        err: &portal_api::Error,
    ) -> portal_api::Result<()> {
        let payload = serde_json::to_vec(event).unwrap_or_default();
        let tenant_id = match event {
            EngineEvent::PositionUpdated(p) => Some(p.tenant_id.clone()),
            EngineEvent::EtaUpdated(_) | EngineEvent::StatusChanged(_) => None,
        };
        let letter = NewDeadLetter {
            tenant_id,
            origin: "engine".into(),
            topic: None,
            partition: None,
            offset: None,
            size_bytes: payload.len() as u64,
            reason: "store_permanent".into(),
            detail: err.to_string(),
            payload: truncated(&payload),
            key: None,
            received_at: Utc::now(),
        };
        self.store.add_dead_letters(vec![letter]).await?;
        self.dead_lettered_events.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(
            "tracker_dead_letters_total",
            "path" => "engine_event",
            "reason" => "store_permanent"
        )
        .increment(1);
        tracing::warn!(error = %err, "engine event refused by the store; dead-lettered");
        Ok(())
    }
}

/// The first bytes of a payload, for a dead letter.
fn truncated(payload: &[u8]) -> Vec<u8> {
    payload[..payload.len().min(ingest::DEAD_LETTER_PAYLOAD_BYTES)].to_vec()
}

/// An ingest dead letter as the store keeps it.
fn stored_letter(letter: &DeadLetter) -> NewDeadLetter {
    let (topic, partition, offset) = match &letter.kafka {
        Some(at) => (Some(at.topic.clone()), Some(at.partition), Some(at.offset)),
        None => (None, None, None),
    };
    NewDeadLetter {
        tenant_id: letter.tenant_id.clone(),
        origin: letter.origin.clone(),
        topic,
        partition,
        offset,
        size_bytes: letter.size_bytes,
        reason: letter.rejection.reason.as_str().to_owned(),
        detail: letter.rejection.detail.clone(),
        // Already cut by ingest when oversized; a smaller one is kept whole
        // so that it can be replayed.
        payload: letter.payload.clone(),
        key: letter.key.clone(),
        received_at: Utc::now(),
    }
}

impl PositionSink for EngineSink {
    async fn write(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let receipt = self.take(batch).await?;
        self.flush().await?;
        Ok(receipt)
    }

    async fn take(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        let span = tracing::debug_span!("engine_batch", positions = batch.len());
        self.take_batch(batch).instrument(span).await
    }

    async fn flush(&self) -> Result<(), SinkError> {
        // One flush at a time, so a later batch's events never reach the
        // store before an earlier one's.
        let _storing = self.storing.lock().await;
        let mut events = std::mem::take(&mut *self.pending.lock().await);
        let started = std::time::Instant::now();
        let delivered = self.deliver(&mut events).await;
        // The store writes and their fan-out publishes (each publish is also
        // timed alone as the `fanout` stage).
        metrics::histogram!("tracker_stage_seconds", "stage" => "store").record(started.elapsed());
        let waiting = {
            let mut pending = self.pending.lock().await;
            if !events.is_empty() {
                // What failed goes first, before what was taken meanwhile.
                events.append(&mut pending);
                *pending = events;
            }
            pending.len()
        };
        metrics::gauge!("tracker_engine_pending_events").set(waiting as f64);
        tracing::debug!(
            events_waiting = waiting,
            store_ms = started.elapsed().as_secs_f64() * 1e3,
            "engine events stored"
        );
        delivered
    }

    async fn last_times(
        &self,
        vehicles: &[VehicleKey],
    ) -> Result<Vec<Option<DateTime<Utc>>>, SinkError> {
        // Asked for the trucks new to this node, before their first
        // position: where they stand is read once their last holder has
        // stored its last work with them and let go.
        if let Some(handover) = &self.handover {
            handover.hold(vehicles).await?;
        }
        self.store
            .vehicle_times(vehicles.to_vec())
            .await
            .map_err(|e| SinkError(e.to_string()))
    }

    async fn release(&self, vehicles: &[VehicleKey]) -> Result<(), SinkError> {
        // What the engine made of their last positions first: the new owner
        // asks the store where each truck stands.
        self.flush()
            .await
            .map_err(|e| SinkError(format!("storing before the release: {}", e.0)))?;
        let engine = Arc::clone(&self.engine);
        let ownership = Arc::clone(&self.ownership);
        let let_go = vehicles.to_vec();
        let records = tokio::task::spawn_blocking(move || {
            let mut engine = lock(&engine);
            ownership.lock().let_go(&let_go);
            learning::records_of(engine.release_vehicles(&let_go), Utc::now())
        })
        .await
        .map_err(|e| SinkError(format!("the engine task failed: {e}")))?
        .map_err(|e| SinkError(format!("{e:#}")))?;
        let saved = records.len();
        self.store
            .save_tracker_memories(records)
            .await
            .map_err(|e| SinkError(format!("saving the memories of released trucks: {e}")))?;
        if let Some(handover) = &self.handover {
            handover.let_go(vehicles).await?;
        }
        tracing::info!(vehicles = vehicles.len(), memories = saved, "trucks let go");
        Ok(())
    }

    async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        // Most batches have none: no empty write through the store's writer.
        if letters.is_empty() {
            return Ok(());
        }
        for letter in letters {
            tracing::warn!(
                origin = %letter.origin,
                reason = %letter.rejection.reason,
                detail = %letter.rejection.detail,
                size_bytes = letter.size_bytes,
                "dead letter"
            );
        }
        // Durable before the source acks or commits past them.
        self.store
            .add_dead_letters(letters.iter().map(stored_letter).collect())
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        for letter in letters {
            let path = if letter.kafka.is_some() {
                "kafka"
            } else if letter.origin == "engine" {
                "engine"
            } else {
                "bus"
            };
            metrics::counter!(
                "tracker_dead_letters_total",
                "path" => path,
                "reason" => letter.rejection.reason.as_str()
            )
            .increment(1);
        }
        Ok(())
    }
}

impl EngineSink {
    /// One batch taken: the engine (timed by stage), its outliers to the
    /// dead letters, its events queued for the next flush.
    async fn take_batch(&self, batch: &[Position]) -> Result<SinkReceipt, SinkError> {
        // Push-back: with the queue full, the store must take the backlog
        // before the engine makes more; the error makes the source retry
        // this batch later without advancing.
        if self.pending.lock().await.len() >= self.max_pending_events {
            self.flush()
                .await
                .map_err(|err| SinkError(format!("engine events wait for the store: {}", err.0)))?;
            let waiting = self.pending.lock().await.len();
            if waiting >= self.max_pending_events {
                return Err(SinkError(format!(
                    "{waiting} engine events wait for the store"
                )));
            }
        }
        // Trucks new to this node resume what their trackers knew (saved by
        // this node before a restart, or by the node that had them before).
        let newcomers = self.ownership.lock().newcomers(batch);
        let memories = if newcomers.is_empty() {
            Vec::new()
        } else {
            let records = self
                .store
                .tracker_memories(newcomers.clone())
                .await
                .map_err(|e| SinkError(format!("reading the memories of new trucks: {e}")))?;
            learning::memories_of(records)
        };
        let engine = Arc::clone(&self.engine);
        let ownership = Arc::clone(&self.ownership);
        let positions = batch.to_vec();
        let (output, snapshot, positions) = tokio::task::spawn_blocking(move || {
            let mut engine = lock(&engine);
            if !newcomers.is_empty() {
                take_up(&mut engine, &ownership, &newcomers, memories);
            }
            // The engine's `now` for housekeeping; device times drive the rest.
            let output = engine.process_timed(&positions, Utc::now(), std::time::Instant::now);
            let snapshot = telemetry::EngineSnapshot {
                counters: engine.counters(),
                traffic: engine.traffic_counters(),
                route_queries: engine.router().queries(),
                vehicles: engine.vehicles(),
                tracked_orders: engine.tracked_orders(),
            };
            (output, snapshot, positions)
        })
        .await
        .map_err(|e| SinkError(format!("the engine task failed: {e}")))?;
        telemetry::record_engine(output.timings, &snapshot);
        let applied: Vec<(&str, &str, DateTime<Utc>)> = output
            .events
            .iter()
            .filter_map(|event| match event {
                EngineEvent::PositionUpdated(p) => {
                    Some((p.tenant_id.as_str(), p.vehicle_id.as_str(), p.time))
                }
                _ => None,
            })
            .collect();
        let outlier_positions: Vec<&Position> =
            output.outliers.iter().map(|o| &o.position).collect();
        telemetry::record_outcomes(&positions, self.bus_source, &outlier_positions, &applied);
        drop(applied);
        // Physically implausible fixes (a 300 km jump) were kept off the map and
        // out of every ETA; they are dead-lettered like any refused message.
        // The events are queued first: should the dead letters fail, the
        // retried batch is stale to the engine, and its events must not be
        // lost with it.
        let queued = {
            let mut pending = self.pending.lock().await;
            pending.extend(output.events);
            pending.len()
        };
        let outliers: Vec<DeadLetter> = output.outliers.iter().map(outlier_letter).collect();
        self.dead_letters(&outliers).await?;
        tracing::debug!(events_queued = queued, "engine batch done");
        Ok(SinkReceipt::default())
    }
}

/// Makes `newcomers` the node's: their orders join the engine (when it does
/// not track every truck anyway) and their trackers resume `memories`.
fn take_up(
    engine: &mut LiveEngine,
    ownership: &SharedOwnership,
    newcomers: &[VehicleKey],
    memories: Vec<engine::TrackerMemory>,
) {
    let share = ownership.lock().take_up(newcomers);
    if let Some(share) = share {
        for (order, reason) in engine.set_orders(share) {
            tracing::warn!(order = %order, %reason, "order cannot be tracked (no ETA)");
        }
    }
    if !memories.is_empty() {
        let (whole, part) = engine.resume_trackers(memories);
        tracing::debug!(
            trucks = newcomers.len(),
            whole,
            part,
            "trucks taken up with their memories"
        );
    }
}

/// A dead letter for a fix the engine refused as physically implausible.
fn outlier_letter(outlier: &engine::Outlier) -> DeadLetter {
    let payload = ingest::encode_canonical(&outlier.position);
    DeadLetter {
        rejection: ingest::Rejection::new(
            ingest::RejectReason::ImplausibleJump,
            outlier.detail.clone(),
        ),
        size_bytes: payload.len() as u64,
        payload,
        key: Some(outlier.position.key().wire_key().into_bytes()),
        format: Some(ingest::Format::Canonical),
        origin: "engine".into(),
        kafka: None,
        tenant_id: Some(outlier.position.tenant_id.clone()),
    }
}

/// The store's view of an order, as the engine tracks it.
pub(crate) fn active_order(order: &Order) -> Option<ActiveOrder> {
    Some(ActiveOrder {
        order_id: order.id.clone(),
        tenant_id: order.tenant_id.clone(),
        vehicle_id: order.vehicle_id.clone()?,
        status: order.status,
        stops: order
            .stops
            .iter()
            .map(|s| ActiveStop {
                kind: s.kind,
                position: LatLon::new(s.lat, s.lon),
                window: s
                    .window
                    .as_ref()
                    .and_then(|w| AppointmentWindow::new(w.from, w.to).ok()),
                geofence: s.geofence.clone(),
                arrived_at: s.arrived_at,
                departed_at: s.departed_at,
                skipped_at: s.skipped_at,
            })
            .collect(),
    })
}

/// Reads the active orders once and gives them to the engine; orders just
/// dispatched (or moved on by hand) to a truck with a recent fix get their
/// ETAs from it at once, through `live`.
pub(crate) async fn sync_orders_once(
    engine: &SharedEngine,
    ownership: &SharedOwnership,
    store: &dyn Store,
    live: &LiveUpdates,
) -> anyhow::Result<()> {
    let orders = store.active_orders().await?;
    let active: Vec<ActiveOrder> = orders.iter().filter_map(active_order).collect();
    let engine = Arc::clone(engine);
    let ownership = Arc::clone(ownership);
    let (untrackable, primed) = tokio::task::spawn_blocking(move || {
        let mut engine = lock(&engine);
        // The share under the engine's lock: a batch taking up a truck
        // meanwhile cannot be undone by an older share.
        let share = ownership.lock().set_orders(active);
        let untrackable = engine.set_orders(share);
        (untrackable, engine.etas_from_last_fixes(Utc::now()))
    })
    .await?;
    for (order, reason) in untrackable {
        tracing::warn!(order = %order, %reason, "order cannot be tracked (no ETA)");
    }
    for event in primed.events {
        if let Err(err) = live.handle(event).await {
            tracing::warn!(error = %err, "recording an ETA from a truck's last fix failed");
        }
    }
    Ok(())
}

/// Keeps the engine's orders in step with the store, every `every`.
pub(crate) async fn sync_orders(
    engine: SharedEngine,
    ownership: SharedOwnership,
    store: Arc<dyn Store>,
    live: LiveUpdates,
    every: Duration,
    shutdown: ingest::Shutdown,
) {
    periodically(every, shutdown, || async {
        if let Err(err) = sync_orders_once(&engine, &ownership, &*store, &live).await {
            tracing::warn!(error = %err, "reading the active orders failed");
        }
        let (counters, orders, vehicles) = {
            let engine = lock(&engine);
            (
                engine.counters(),
                engine.tracked_orders(),
                engine.vehicles(),
            )
        };
        tracing::debug!(?counters, orders, vehicles, "engine");
    })
    .await;
}

/// Runs `work` every `every` (first one period from now; a late run delays
/// the next rather than bunching up) until shutdown.
pub(crate) async fn periodically<F, W>(every: Duration, mut shutdown: ingest::Shutdown, mut work: W)
where
    W: FnMut() -> F,
    F: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // An interval's first tick is now.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.wait() => return,
        }
        work().await;
    }
}

/// The re-customization thread: every `every`, the traffic model's changes go
/// into the router without holding up positions. Runs until `stop` is set.
/// Each customization is timed into `tracker_metric_customize_seconds`, and
/// `clock` learns when a metric was installed (`tracker_metric_age_seconds`).
pub(crate) fn run_metric_loop(
    engine: SharedEngine,
    every: Duration,
    stop: Arc<AtomicBool>,
    clock: Arc<telemetry::MetricClock>,
) {
    let step = Duration::from_millis(100).min(every);
    let mut waited = Duration::ZERO;
    // Exported from the start, before the first traffic change.
    metrics::counter!("tracker_metrics_installed_total").absolute(0);
    metrics::counter!("tracker_metric_edges_updated_total").absolute(0);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        waited += step;
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        let (update, router) = {
            let mut engine = lock(&engine);
            // The engine's clock: device times may run ahead of the wall clock
            // (a sped-up demo) or behind it (a replay).
            let now = engine.latest_time().unwrap_or_else(Utc::now);
            (engine.prepare_metric(now), Arc::clone(engine.router()))
        };
        let update = match update {
            Ok(Some(update)) => update,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "deriving the traffic metric failed");
                continue;
            }
        };
        let n_changes = update.n_changes();
        let customizing = std::time::Instant::now();
        let applied = update.apply(&router);
        let customize_s = customizing.elapsed().as_secs_f64();
        metrics::histogram!("tracker_metric_customize_seconds").record(customize_s);
        match applied {
            Ok(version) => {
                let counters = {
                    let mut engine = lock(&engine);
                    engine.install_metric(version);
                    engine.counters()
                };
                clock.installed_now();
                metrics::counter!("tracker_metrics_installed_total")
                    .absolute(counters.metrics_installed);
                metrics::counter!("tracker_metric_edges_updated_total")
                    .absolute(counters.edges_updated);
                metrics::counter!("tracker_profiles_learned_total")
                    .absolute(counters.profiles_learned);
                tracing::debug!(edges = n_changes, customize_s, "traffic metric installed");
            }
            Err(err) => tracing::warn!(error = %err, "customizing the router failed"),
        }
    }
}

/// HTTP positions onto the bus: the same path as every other source. The HTTP
/// 202 comes after the bus took them durably (the sink for `memory://`, the
/// brokers' acknowledgement for Kafka).
#[derive(Debug, Clone)]
pub(crate) struct BusIntake {
    bus: BusPublisher,
    /// The tenant the position topic is bound to (`?tenant=`), whose consumer
    /// would refuse every other tenant's positions.
    bound: Option<TenantId>,
}

impl BusIntake {
    pub(crate) fn new(bus: BusPublisher, bound: Option<TenantId>) -> Self {
        BusIntake { bus, bound }
    }
}

impl PositionIntake for BusIntake {
    fn submit(&self, positions: Vec<Position>) -> IntakeFuture<'_, ()> {
        Box::pin(async move {
            if let Some(bound) = &self.bound
                && positions.iter().any(|p| p.tenant_id != *bound)
            {
                return Err(portal_api::Error::Conflict {
                    code: "positions_not_accepted_here",
                    message: "this node's position topic is bound to a single tenant; \
                              post positions to a node that serves your tenant"
                        .into(),
                });
            }
            self.bus
                .publish(positions)
                .await
                .map_err(|e| portal_api::Error::store_retryable(format!("position bus: {e}")))
        })
    }
}

#[cfg(test)]
mod engine_sink_tests;
