//! The store: where orders, tenants and their API keys, events, POD files,
//! tracking codes, the position trail, the ETA prediction log, trackers'
//! memories and the outbox live, behind one contract with two backends chosen
//! by URL: SQLite (`sqlite://PATH`), the embedded default, and PostgreSQL
//! (`postgres://USER@HOST:PORT/DB`), for several nodes sharing one database.
//!
//! The contract is split by concern: [`Store`] (tenants, keys, orders, the live
//! path), [`NotificationStore`] (rules, the e-mail and webhook queue),
//! [`AnalyticsStore`] (accuracy, on-time, page views) and [`SettingsStore`]
//! (brands, location privacy). Both backends map rows through `records` and
//! make their decisions through `rules` (the analytics ones through
//! `analytics_rules`, the notification ones through `notify_records` and
//! `notify_rules`), so they cannot drift apart; the conformance suites in
//! `tests/` run every one of them on both. Errors are [`Error`]; a store
//! failure says whether trying again can help ([`StoreErrorKind`]).
//!
//! The records the store keeps and the pure rules it applies while writing
//! them live here too, so the store needs nothing above it: [`model`] (orders,
//! tenants, events), [`alerts`] (late-risk policy), [`analytics`] (accuracy and
//! on-time arithmetic), [`branding`], [`notify`] (rules, messages, outcomes),
//! [`privacy`] and [`secrets`] (ids and hashes). The portal (`portal-api`)
//! builds its HTTP contract on them.
//!
//! Every method takes owned arguments and returns a boxed future, so the trait is
//! object-safe (`Arc<dyn Store>`) and implementations may hop to their own threads.
//! Tenant-scoped methods take the tenant: an order of another tenant is simply
//! "not found", which is what makes tenant isolation hold by construction.

pub mod alerts;
pub mod analytics;
pub mod branding;
mod error;
pub mod model;
pub mod notify;
pub mod privacy;
pub mod secrets;
#[cfg(feature = "testing")]
pub mod testing;

mod alert_store;
mod analytics_rules;
mod analytics_store;
mod daily;
mod dead_letters;
mod migrations;
mod notifications;
mod notify_records;
mod notify_rules;
mod position_batch;
mod postgres;
mod records;
mod rows;
mod rules;
mod settings;
mod sqlite;
mod webhooks;
mod writes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine::{EtaUpdate, OrderId, VehicleKey};

pub use alerts::{AlertPolicy, LateRisk, LateRiskBasis};
pub use analytics_store::{AnalyticsStore, PredictionScan, read_evaluated_predictions};
pub use branding::{Branding, LogoMeta};
pub use daily::{AccuracyInputs, SummaryPass, aggregates_serve, read_accuracy_inputs};
pub use error::{Error, Result, StoreErrorKind};
pub use model::{
    ApiKey, Created, Customer, EtaHistory, EtaRecord, EtaRecorded, EventKind, HoldRequest,
    IdempotencyClaim, ListQuery, NewApiKey, NewDeadLetter, NewEvent, NewOrder, NewPod, NewStop,
    Order, OrderEvent, OrderPatch, PodMeta, PositionOutcome, RecordedEta, Scope, Stop,
    StoredDeadLetter, Tenant, TenantId, TrackView, TrackerMemoryRecord, TrailPoint, VehicleFix,
    VehicleHold, Visibility, Window,
};
pub use notifications::NotificationStore;
pub use notify::{
    Attempt, AttemptReport, Channel, DeliveryState, NewRule, Notification, Outcome, Rule, Template,
    TriggerEvent, Webhook, WebhookEvent, WebhookTarget,
};
pub use postgres::PostgresStore;
pub use privacy::LocationPrivacy;
pub use rows::UNKNOWN_CURSOR;
pub use secrets::{new_tracking_code, secret_hash};
pub use settings::SettingsStore;
pub use sqlite::SqliteStore;

/// A boxed, sendable future: what every [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The persistence interface of the portal.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates a tenant with its first API key.
    fn create_tenant(&self, name: String, first_key: NewApiKey) -> StoreFuture<'_, Tenant>;
    /// The tenant and key behind an API key (by its hash), unless the key is
    /// revoked. Read from the store on every request, never cached, so a
    /// revocation holds on every node at once.
    fn authenticate(&self, api_key_hash: String) -> StoreFuture<'_, Option<(Tenant, ApiKey)>>;
    /// Adds an API key to a tenant ([`Error::NotFound`] for an unknown tenant).
    fn create_api_key(&self, tenant: TenantId, key: NewApiKey) -> StoreFuture<'_, ApiKey>;
    /// A tenant's API keys, revoked ones included, oldest first
    /// ([`Error::NotFound`] for an unknown tenant).
    fn api_keys(&self, tenant: TenantId) -> StoreFuture<'_, Vec<ApiKey>>;
    /// Revokes one of the tenant's API keys; another tenant's key is
    /// [`Error::NotFound`]. Revoking a revoked key changes nothing.
    fn revoke_api_key(&self, tenant: TenantId, key_id: String) -> StoreFuture<'_, ApiKey>;
    /// The oldest tenant with this name (for the demo, which reuses its tenant).
    fn tenant_by_name(&self, name: String) -> StoreFuture<'_, Option<Tenant>>;

    /// Creates an order with its first tracking code (stored as its hash only).
    fn create_order(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
    ) -> StoreFuture<'_, Order>;
    /// Creates an order as [`Store::create_order`] does, unless the claim's
    /// key came before (in the claim's time) or, with `unique_reference`, the
    /// tenant already has an order (not cancelled) with the reference. The
    /// check and the create are one transaction, so two racing retries of
    /// one key make one order.
    fn create_order_once(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
        claim: Option<IdempotencyClaim>,
        unique_reference: bool,
    ) -> StoreFuture<'_, Created>;
    fn order(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Option<Order>>;
    fn list_orders(&self, tenant: TenantId, query: ListQuery) -> StoreFuture<'_, Vec<Order>>;
    fn update_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        patch: OrderPatch,
    ) -> StoreFuture<'_, Order>;
    /// Records a timeline entry; a status entry moves the order's status through
    /// the state machine (refused moves are [`Error::Conflict`]). `tenant` is
    /// `None` for the engine (geofences), which acts for every tenant.
    fn add_event(
        &self,
        tenant: Option<TenantId>,
        id: OrderId,
        event: NewEvent,
    ) -> StoreFuture<'_, (Order, OrderEvent)>;
    fn add_pod(&self, tenant: TenantId, id: OrderId, pod: NewPod) -> StoreFuture<'_, PodMeta>;
    /// A POD file of an order (any tenant: callers check access first).
    fn pod_file(
        &self,
        order: OrderId,
        pod_id: String,
    ) -> StoreFuture<'_, Option<(PodMeta, Vec<u8>)>>;
    /// Revokes the order's active code and issues `new_code` (stored as its
    /// hash only).
    fn rotate_tracking_code(
        &self,
        tenant: TenantId,
        id: OrderId,
        new_code: String,
    ) -> StoreFuture<'_, Order>;
    /// Revokes the order's active code, leaving none.
    fn revoke_tracking_code(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Order>;
    /// The order an active tracking code (by its hash) points to.
    fn order_by_code_hash(&self, code_hash: String) -> StoreFuture<'_, Option<OrderId>>;
    /// Everything the public page shows.
    fn track_view(&self, order: OrderId) -> StoreFuture<'_, Option<TrackView>>;

    /// Records a tenant's vehicle's position: its latest position, the
    /// downsampled trail of the tenant's orders it carries. Another tenant's
    /// vehicle of the same id is another vehicle. One fix is a batch of one
    /// ([`Store::record_positions`]).
    fn record_position(
        &self,
        tenant: TenantId,
        fix: VehicleFix,
    ) -> StoreFuture<'_, PositionOutcome> {
        Box::pin(async move {
            let mut outcomes = self.record_positions(vec![(tenant, fix)]).await?;
            Ok(outcomes.pop().unwrap_or_default())
        })
    }
    /// Records a batch of positions in one transaction, leaving the store as
    /// recording them one by one in this order would, and answering what
    /// each one did, in the same order. Each vehicle's row is written once
    /// and each kind of row read once per batch, whatever the number of
    /// fixes (BENCHMARKS.md, "Store": 5.7× one-by-one writes on SQLite).
    fn record_positions(
        &self,
        fixes: Vec<(TenantId, VehicleFix)>,
    ) -> StoreFuture<'_, Vec<PositionOutcome>>;
    /// Logs an ETA prediction and makes it the stop's latest; in the same
    /// transaction judges the stop's late risk and its `eta_changed`
    /// subscribers under `policy` (`crate::alerts`), writing what fired to
    /// the outbox. One ETA of [`Store::record_etas`].
    fn record_eta(&self, update: EtaUpdate, policy: AlertPolicy) -> StoreFuture<'_, EtaRecorded> {
        Box::pin(async move {
            let mut recorded = self.record_etas(vec![update], policy).await?;
            Ok(recorded.pop().map_or(EtaRecorded::Ignored, |r| r.recorded))
        })
    }
    /// Records a batch of ETAs in one transaction (all or none), leaving the
    /// store as [`Store::record_eta`] on each in turn would, and answering
    /// for each, in the same order, what it did and, for an ETA the page
    /// shows, the order's location privacy (read in the same transaction).
    /// A flush of the engine's ETAs is one commit instead of one per ETA
    /// (BENCHMARKS.md, "Store").
    fn record_etas(
        &self,
        updates: Vec<EtaUpdate>,
        policy: AlertPolicy,
    ) -> StoreFuture<'_, Vec<RecordedEta>>;
    /// Orders in progress with a vehicle assigned, for the engine to compute ETAs.
    fn active_orders(&self) -> StoreFuture<'_, Vec<Order>>;
    /// The device time of the newest recorded position of each vehicle (tenant
    /// and id), in the order asked: where a position source resumes after a
    /// restart, and what an HTTP receipt calls duplicate or stale.
    fn vehicle_times(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<Option<DateTime<Utc>>>>;

    /// Saves what a learned model knows (its serialized state) under its
    /// name, replacing the last save: the engine's calibrator, so that a
    /// restart keeps the ETA windows it has learned.
    fn save_learned(
        &self,
        name: String,
        state: String,
        saved_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()>;
    /// The last saved state of a learned model, and when it was saved.
    fn learned(&self, name: String) -> StoreFuture<'_, Option<(String, DateTime<Utc>)>>;

    /// Saves trackers' memories of their trucks, one per (tenant, order),
    /// all or none. A memory replaces the saved one of its order only when
    /// it goes at least as far (`applied_through`): a node that lets go of a
    /// truck late never overwrites what the truck's new owner saved since.
    fn save_tracker_memories(&self, memories: Vec<TrackerMemoryRecord>) -> StoreFuture<'_, ()>;
    /// The saved memories of these vehicles' orders (any order of rows).
    fn tracker_memories(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<TrackerMemoryRecord>>;

    /// Holds trucks for a node (several nodes on one Kafka group), all in
    /// one transaction, answering for each in the order asked: a truck
    /// nobody holds, or the asker holds already, is the asker's; one whose
    /// holder was last heard from before `silent_before` (or never), or any
    /// when `force`, is taken over; one whose holder was heard from since is
    /// left alone and its holder named. A node takes a truck's positions
    /// only once it holds the truck, and lets go of it
    /// ([`Store::let_go_vehicles`]) only after its last work with the truck
    /// is stored: so the new owner reads where the truck stands only after
    /// the old owner finished, whatever the broker's rebalance did.
    fn hold_vehicles(&self, request: HoldRequest) -> StoreFuture<'_, Vec<VehicleHold>>;
    /// Lets go of those of `vehicles` that `holder` holds; others' holds
    /// stay.
    fn let_go_vehicles(&self, holder: String, vehicles: Vec<VehicleKey>) -> StoreFuture<'_, ()>;
    /// Notes that node `holder` (named `name`) is alive at `now`; `gone`
    /// forgets it instead (a clean stop), so that whatever it still holds is
    /// taken over at once.
    fn node_beat(
        &self,
        holder: String,
        name: String,
        now: DateTime<Utc>,
        gone: bool,
    ) -> StoreFuture<'_, ()>;

    /// Keeps what the position stream set aside, all or none: returns once the
    /// letters are durable (the stream commits past them only then).
    fn add_dead_letters(&self, letters: Vec<NewDeadLetter>) -> StoreFuture<'_, ()>;
    /// Outbox messages not yet delivered (the `/metrics` outbox depth, and
    /// the store's answer to a readiness check).
    fn outbox_pending(&self) -> StoreFuture<'_, u64>;
    /// The `limit` most recent dead letters, newest first.
    fn recent_dead_letters(&self, limit: usize) -> StoreFuture<'_, Vec<StoredDeadLetter>>;

    /// The notification rules and messages (milestone e-mails), when the
    /// backend keeps them; `None` turns the notification routes into 501s.
    fn notifications(&self) -> Option<&dyn NotificationStore> {
        None
    }

    /// The analytics queries and tracking-page view counts, when the backend
    /// keeps them; `None` turns the analytics routes into 501s.
    fn analytics(&self) -> Option<&dyn AnalyticsStore> {
        None
    }

    /// The tenants' brands and location privacy, when the backend keeps
    /// them; `None` turns their routes into 501s (pages look unbranded).
    fn settings(&self) -> Option<&dyn SettingsStore> {
        None
    }
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing,
/// migrated) or `postgres://USER@HOST:PORT/DB` (migrated; see
/// [`PostgresStore::open`]).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(Error::InvalidConfig {
                setting: "store",
                reason: "`sqlite://` needs a file path, e.g. sqlite://./tracker.db".into(),
            });
        }
        let store = SqliteStore::open(std::path::Path::new(path)).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(Error::InvalidConfig {
            setting: "store",
            reason: format!(
                "unknown store URL `{url}`; expected sqlite://PATH or postgres://USER@HOST:PORT/DB"
            ),
        })
    }
}

/// Creates a tenant with one API key, `default`, holding every scope; returns
/// the tenant and the key (shown once; only its hash is stored).
pub async fn create_tenant(store: &dyn Store, name: &str) -> Result<(Tenant, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "must be 1-200 characters"));
    }
    let (first_key, key) = NewApiKey::fresh("default", Scope::ALL.to_vec())?;
    let tenant = store.create_tenant(name.to_owned(), first_key).await?;
    Ok((tenant, key))
}
