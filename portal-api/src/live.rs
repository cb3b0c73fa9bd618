//! Where live state enters the portal: engine events ([`EngineEvent`]), positions
//! posted over HTTP, and status changes from the API all pass through
//! [`LiveUpdates`], which writes them to the store first and then publishes one
//! fan-out message per affected order. Writing first means a page that opens a
//! moment later (and reads the store) never shows less than a live viewer saw.
//! Once the write is durable, the update has happened: a fan-out that cannot
//! reach the other nodes (Redis down) holds the message and sends it later
//! ([`FanOut::publish_all`]), so its error is logged and counted, never
//! returned. Returning it would make the engine's sink (or an API client)
//! write the same update again, and stall the stream for as long as Redis is
//! away.
//!
//! The seam to the engine is explicit: the binary's position sink calls
//! [`LiveUpdates::handle`] for every engine event and awaits it (that is where
//! the pipeline's durability comes from; [`LiveUpdates::run`] drains a channel
//! for embedders that need no acknowledgement), and gives [`crate::AppState`] a
//! [`PositionIntake`] that routes HTTP positions into the engine pipeline.
//! Without one, [`DirectIntake`] records positions as they came (no map
//! matching, no ETA).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use engine::{EngineEvent, EtaUpdate, OrderId, Position, PositionUpdate, StatusChange};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::alerts::AlertPolicy;
use crate::contract::EtaView;
use crate::error::Result;
use crate::fanout::{FanOut, LiveKind, LiveMessage};
use crate::model::{
    EtaRecord, EtaRecorded, EventKind, NewEvent, Order, OrderEvent, TenantId, VehicleFix,
    Visibility,
};
use crate::view;
use store::Store;

/// A boxed, sendable future.
pub type IntakeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Receives validated positions posted by a tenant over HTTP (each carries the
/// tenant of the API key). The binary wires this to the ingest/engine pipeline;
/// the pipeline's output comes back as [`EngineEvent`]s into [`LiveUpdates`].
pub trait PositionIntake: Send + Sync + std::fmt::Debug {
    fn submit(&self, positions: Vec<Position>) -> IntakeFuture<'_, ()>;

    /// Whether what `submit` hands positions to answers (for `/readyz`); an
    /// intake with nothing behind it is always ready.
    fn ready(&self) -> IntakeFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// The pauses before reading a status view again that the store could not
/// read (a retryable failure) right after writing it: about a second in all,
/// so a passing hiccup does not cost the live viewers the change.
const STATUS_READ_PAUSES: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(50),
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(800),
];

/// Turns events into stored state and fan-out messages.
#[derive(Debug, Clone)]
pub struct LiveUpdates {
    store: Arc<dyn Store>,
    fanout: Arc<dyn FanOut>,
    /// When a truck's feed turns stale in the views it publishes.
    stale_after_s: u64,
    /// How recorded ETAs are judged for late risk and ETA changes.
    alerts: AlertPolicy,
}

impl LiveUpdates {
    pub fn new(store: Arc<dyn Store>, fanout: Arc<dyn FanOut>) -> LiveUpdates {
        LiveUpdates {
            store,
            fanout,
            stale_after_s: crate::state::DEFAULT_STALE_AFTER_S,
            alerts: AlertPolicy::recommended(),
        }
    }

    /// The same, judging ETAs for alerts under `alerts` (`--late-risk-on`,
    /// `--late-risk-hold-s`, `--eta-changed-every-s`).
    pub fn with_alerts(self, alerts: AlertPolicy) -> LiveUpdates {
        LiveUpdates { alerts, ..self }
    }

    /// The same, with feeds stale after `stale_after_s` (`--stale-after-s`).
    pub fn with_stale_after_s(self, stale_after_s: u64) -> LiveUpdates {
        LiveUpdates {
            stale_after_s,
            ..self
        }
    }

    fn clock(&self) -> view::ViewClock {
        view::ViewClock {
            now: chrono::Utc::now(),
            stale_after_s: self.stale_after_s,
        }
    }

    /// Handles one engine event.
    pub async fn handle(&self, event: EngineEvent) -> Result<()> {
        match event {
            EngineEvent::PositionUpdated(update) => {
                self.position(update.tenant_id.clone(), fix_of_update(&update))
                    .await?;
            }
            EngineEvent::EtaUpdated(update) => {
                self.eta(update).await?;
            }
            EngineEvent::StatusChanged(change) => {
                self.status_change(change).await?;
            }
        }
        Ok(())
    }

    /// Consumes engine events until the channel closes. Errors are logged and the
    /// loop goes on: one bad event must not stop the live view of every order.
    pub async fn run(self, mut events: mpsc::Receiver<EngineEvent>) {
        while let Some(event) = events.recv().await {
            if let Err(err) = self.handle(event).await {
                tracing::warn!(error = %err, "live update failed");
            }
        }
    }

    /// The engine's position events of a batch, in one store write
    /// ([`LiveUpdates::positions`]).
    pub async fn position_updates(&self, updates: &[PositionUpdate]) -> Result<usize> {
        let fixes = updates
            .iter()
            .map(|u| (u.tenant_id.clone(), fix_of_update(u)))
            .collect();
        self.positions(fixes).await
    }

    /// Records a tenant's vehicle's position and tells the pages of the
    /// tenant's orders the vehicle carries. Returns how many orders were told.
    pub async fn position(&self, tenant: TenantId, fix: VehicleFix) -> Result<usize> {
        self.positions(vec![(tenant, fix)]).await
    }

    /// Records a batch of positions in one store write
    /// ([`Store::record_positions`]) and tells the pages of the orders each
    /// vehicle carries where it is now: one message per order for its
    /// vehicle's newest fix of the batch (a page draws where the truck is;
    /// the fixes before it in the same batch are in the stored trail).
    /// Returns how many messages went out.
    pub async fn positions(&self, fixes: Vec<(TenantId, VehicleFix)>) -> Result<usize> {
        if fixes.is_empty() {
            return Ok(0);
        }
        let outcomes = self.store.record_positions(fixes.clone()).await?;
        // The last applied fix of each vehicle, in the order vehicles come.
        let mut newest: Vec<usize> = Vec::new();
        let mut slot: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for (i, ((tenant, fix), outcome)) in fixes.iter().zip(&outcomes).enumerate() {
            if outcome.orders.is_empty() {
                continue;
            }
            let key = (tenant.as_str(), fix.vehicle_id.as_str());
            match slot.get(&key) {
                Some(&at) => newest[at] = i,
                None => {
                    slot.insert(key, newest.len());
                    newest.push(i);
                }
            }
        }
        let clock = self.clock();
        let mut messages = Vec::new();
        for i in newest {
            let (fix, outcome) = (&fixes[i].1, &outcomes[i]);
            let message = |pending: &[(f64, f64)]| -> Result<Utf8Bytes> {
                message_text(&json!({
                    "type": "position",
                    "vehicle": view::vehicle_json(fix, &outcome.privacy, pending, None),
                    "feed": view::feed_json(Some(fix.at), clock),
                }))
                .map(Utf8Bytes::from)
            };
            // Without privacy every order's viewers get the same text, made
            // once; with it, each order's own stops decide what is shown.
            let shared = (!outcome.privacy.enabled)
                .then(|| message(&[]))
                .transpose()?;
            for (k, order) in outcome.orders.iter().enumerate() {
                let text = match &shared {
                    Some(text) => text.clone(),
                    None => message(outcome.pending_stops.get(k).map_or(&[], Vec::as_slice))?,
                };
                messages.push(LiveMessage::new(order.clone(), LiveKind::Position, text));
            }
        }
        let told = messages.len();
        if told > 0 {
            self.publish_all(messages).await;
        }
        Ok(told)
    }

    /// Records an ETA and, when it is the one the page shows, publishes it.
    pub async fn eta(&self, update: EtaUpdate) -> Result<EtaRecorded> {
        let mut recorded = self.etas(vec![update]).await?;
        Ok(recorded.pop().unwrap_or(EtaRecorded::Ignored))
    }

    /// Records a batch of ETAs in one transaction ([`Store::record_etas`]:
    /// all or none, in order) and publishes, at once, those the pages show.
    /// Answers what each did, in order.
    pub async fn etas(&self, updates: Vec<EtaUpdate>) -> Result<Vec<EtaRecorded>> {
        let records: Vec<(OrderId, EtaRecord)> = updates
            .iter()
            .map(|u| (u.order_id.clone(), EtaRecord::from(u)))
            .collect();
        let recorded = self.store.record_etas(updates, self.alerts).await?;
        let now = chrono::Utc::now();
        let mut messages = Vec::new();
        for ((order, record), answer) in records.into_iter().zip(&recorded) {
            if answer.recorded != EtaRecorded::Shown {
                continue;
            }
            // The page's stop is not reached (or the ETA would not be shown).
            let overdue = record.eta < now;
            // The route ahead starts at the truck: under the tenant's
            // location privacy it is shown as the truck is.
            let eta =
                view::public_eta_view(&record, overdue, &answer.privacy, &answer.pending_stops);
            let text = message_text(&EtaMessage {
                kind: "eta",
                eta: &eta,
            })?;
            messages.push(LiveMessage::new(order, LiveKind::Eta, text));
        }
        if !messages.is_empty() {
            self.publish_all(messages).await;
        }
        Ok(recorded.into_iter().map(|r| r.recorded).collect())
    }

    /// Records a timeline entry (a status move, an exception, a note) and sends
    /// the pages the new full view: status changes are rare and change much of
    /// the page (stops reached, POD, the map hidden after delivery). An
    /// internal note or exception is not published at all (the public view did
    /// not change); an internal status entry goes out without its note.
    pub async fn event(
        &self,
        tenant: Option<TenantId>,
        order: OrderId,
        event: NewEvent,
    ) -> Result<(Order, OrderEvent)> {
        let (order, stored) = self.store.add_event(tenant, order, event).await?;
        if let Some(public) = stored.public() {
            self.publish_status(&order.id, Some(&public)).await;
        }
        Ok((order, stored))
    }

    async fn status_change(&self, change: StatusChange) -> Result<()> {
        let event = NewEvent {
            kind: EventKind::Status,
            status: Some(change.status),
            at: change.at,
            note: change.note,
            source: change.source,
            stop_index: change.stop_index,
            // The engine's own words ("Arrived at the pickup."), for the page.
            visibility: Visibility::Public,
        };
        self.event(None, change.order_id, event).await?;
        Ok(())
    }

    /// Publishes the order's current full view as a `status` message. `event`
    /// must be public ([`OrderEvent::public`]): it goes to every viewer.
    ///
    /// Called after a durable write, so nothing here fails the caller: a view
    /// the store cannot read just now is read again a few times (for about a
    /// second: [`STATUS_READ_PAUSES`]); one still unreadable is logged and
    /// left to the pages' next snapshot (they take one on reconnecting and
    /// on every resync).
    pub(crate) async fn publish_status(&self, order: &OrderId, event: Option<&OrderEvent>) {
        let mut pauses = STATUS_READ_PAUSES.iter();
        let text = loop {
            match self.status_text(order, event).await {
                Ok(Some(text)) => break text,
                Ok(None) => return,
                Err(err) => match pauses.next() {
                    Some(pause) if err.is_retryable() => tokio::time::sleep(*pause).await,
                    _ => {
                        metrics::counter!("tracker_status_unpublished_total").increment(1);
                        tracing::warn!(error = %err, order = %order, "the new view could not be read to publish it");
                        return;
                    }
                },
            }
        };
        self.publish(LiveMessage::new(order.clone(), LiveKind::Status, text))
            .await;
    }

    /// The `status` message of the order's current full view.
    async fn status_text(
        &self,
        order: &OrderId,
        event: Option<&OrderEvent>,
    ) -> Result<Option<String>> {
        let Some(track) = self.store.track_view(order.clone()).await? else {
            return Ok(None);
        };
        message_text(&json!({
            "type": "status",
            "status": track.order.status.as_str(),
            "event": event.map(view::event_json),
            "track": view::track_json(&track, None, self.clock()),
        }))
        .map(Some)
    }

    /// Hands one message to the fan-out, timed as the `fanout` stage.
    async fn publish(&self, message: LiveMessage) {
        self.publish_all(vec![message]).await;
    }

    /// Hands a batch's messages to the fan-out at once (one round trip per
    /// chunk on Redis, not one per message), timed as the `fanout` stage.
    /// What the fan-out could not send yet it holds and sends later (its
    /// error says so): the write before this is durable, so the update
    /// stands and only the fan-out's trouble is logged and counted.
    async fn publish_all(&self, messages: Vec<LiveMessage>) {
        let started = std::time::Instant::now();
        let n = messages.len();
        let published = self.fanout.publish_all(messages).await;
        metrics::histogram!("tracker_stage_seconds", "stage" => "fanout").record(started.elapsed());
        if let Err(err) = published {
            metrics::counter!("tracker_fanout_deferred_total").increment(n as u64);
            tracing::debug!(error = %err, messages = n, "fan-out deferred");
        }
    }

    /// Tells the viewers of an order that its link changed (rotated or revoked):
    /// each connection re-checks its code and closes when it is no longer valid.
    pub async fn link_changed(&self, order: &OrderId) {
        self.publish(LiveMessage::new(
            order.clone(),
            LiveKind::Link,
            "{\"type\":\"link\"}",
        ))
        .await;
    }
}

/// An `eta` message: the page's ETA view, serialized as it is typed (not
/// through a `serde_json::Value`).
#[derive(Serialize)]
struct EtaMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    eta: &'a EtaView,
}

/// A live message's JSON text, written straight into a string (a `Value`'s
/// `to_string` goes through `Display` and the formatter machinery: in a
/// catch-up profile, 3 % of all CPU went there).
///
/// Only a map with non-string keys could fail, and no message has one; were
/// it to, the message is refused for good (retrying cannot help).
fn message_text(message: &impl Serialize) -> Result<String> {
    serde_json::to_string(message)
        .map_err(|e| crate::error::Error::invalid("live message", e.to_string()))
}

fn fix_of_update(update: &PositionUpdate) -> VehicleFix {
    VehicleFix {
        vehicle_id: update.vehicle_id.clone(),
        at: update.time,
        lat: update.lat,
        lon: update.lon,
        speed_mps: update.speed_mps,
        heading_deg: update.heading_deg,
    }
}

/// The position intake when no engine pipeline is wired in (embedders, tests of
/// the portal alone): every posted position is recorded and shown as it came,
/// without map matching or ETA.
#[derive(Debug, Clone)]
pub struct DirectIntake {
    live: LiveUpdates,
}

impl DirectIntake {
    pub fn new(live: LiveUpdates) -> DirectIntake {
        DirectIntake { live }
    }
}

impl PositionIntake for DirectIntake {
    fn submit(&self, positions: Vec<Position>) -> IntakeFuture<'_, ()> {
        Box::pin(async move {
            // One store write for the request. Order within it matters as it
            // would one by one: the store keeps only a fix newer than the one
            // it has, and publishes only those.
            let recorded = positions
                .into_iter()
                .map(|p| {
                    let tenant = p.tenant_id;
                    let fix = VehicleFix {
                        vehicle_id: p.vehicle_id,
                        at: p.time,
                        lat: p.lat,
                        lon: p.lon,
                        speed_mps: p.speed_mps,
                        heading_deg: p.heading_deg,
                    };
                    (tenant, fix)
                })
                .collect();
            self.live.positions(recorded).await?;
            Ok(())
        })
    }
}
