//! The PostgreSQL backend: the store of several nodes sharing one database.
//!
//! A pool of tokio-postgres connections (deadpool) serves every call; each
//! write is one transaction, committed before the caller gets its answer,
//! as SQLite's writer answers after its commit. SQLite has one writer and so
//! serializes every write for free; here several nodes write at once, so the
//! writes take the locks that give the same outcomes (see `writes`). The
//! schema means what SQLite's means and rows map through the same
//! `store::records`; the decisions (state machine, stop moves, trail
//! downsampling, alert policy) are the same functions (`store::rules`,
//! `crate::alerts`). Connection and serialization failures are
//! [`crate::StoreErrorKind::Retryable`].
//!
//! Every sub-store is here: settings (brand, location privacy), analytics
//! (accuracy, on-time, exports, daily aggregates, staff sessions, page
//! views: `analytics`, `daily`) and notifications (rules, e-mails, webhooks;
//! `notifications`, with the work queues several nodes share in
//! `notify_queue`).

mod alerts;
mod connect;
mod eta_batch;
mod reads;
mod schema;
mod writes;

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use engine::{EtaUpdate, OrderId, VehicleKey};

use super::{Store, StoreFuture};
use crate::alerts::AlertPolicy;
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, Created, HoldRequest, IdempotencyClaim, ListQuery, NewApiKey, NewDeadLetter, NewEvent,
    NewOrder, NewPod, Order, OrderEvent, OrderPatch, PodMeta, PositionOutcome, RecordedEta,
    StoredDeadLetter, Tenant, TenantId, TrackView, TrackerMemoryRecord, VehicleFix, VehicleHold,
};

/// Connections the pool keeps at most: enough for the engine's writes, the
/// API's reads and the deliverers on a small node.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection before a retryable error.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The PostgreSQL store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    /// `HOST:PORT/DB`, for messages (never the password).
    target: String,
}

/// Runs `$body` with `$tx` a transaction on a pooled connection, committing
/// when it succeeds (dropping the transaction on an error rolls it back).
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {
        Box::pin(async move {
            let mut client = $store.client().await?;
            let $tx = tokio_postgres::Client::transaction(&mut client).await?;
            let value = $body;
            $tx.commit().await?;
            Ok::<_, Error>(value)
        })
    };
}

/// Runs `$body` with `$c` a pooled connection (one statement, or several
/// that need no common snapshot).
macro_rules! on_client {
    ($store:expr, |$c:ident| $body:expr) => {
        Box::pin(async move {
            let client = $store.client().await?;
            let $c: &tokio_postgres::Client = &client;
            Ok::<_, Error>($body)
        })
    };
}

// After the macros, which they use.
mod analytics;
mod daily;
mod notifications;
mod notify_queue;
mod settings;
mod webhooks;

impl PostgresStore {
    /// Connects to the database a `postgres://USER@HOST:PORT/DB` URL names
    /// (TLS with `?sslmode=require`, see `connect`) and brings its schema up
    /// to date. A URL that does not parse or names no user is
    /// [`Error::InvalidConfig`] of setting `store`; a server out of reach is a
    /// retryable store error naming the setting and the address.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let (manager, target) = connect::manager(url)?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::store_permanent(format!("building the PostgreSQL pool: {e}")))?;
        let store = PostgresStore { pool, target };
        let mut client = store.pool.get().await.map_err(|e| {
            let cause = match e {
                deadpool_postgres::PoolError::Backend(pg) => match pg.as_db_error() {
                    Some(db) => db.to_string(),
                    None => crate::error::with_causes(&pg),
                },
                other => other.to_string(),
            };
            Error::store_retryable(format!(
                "setting `store`: cannot connect to PostgreSQL at {}: {cause}",
                store.target
            ))
        })?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(pg) => Error::from(pg),
            other => Error::store_retryable(format!(
                "no PostgreSQL connection to {}: {other}",
                self.target
            )),
        })
    }
}

impl Store for PostgresStore {
    fn create_tenant(&self, name: String, first_key: NewApiKey) -> StoreFuture<'_, Tenant> {
        in_tx!(self, |tx| writes::insert_tenant(&tx, &name, &first_key)
            .await?)
    }

    fn authenticate(&self, api_key_hash: String) -> StoreFuture<'_, Option<(Tenant, ApiKey)>> {
        on_client!(self, |c| reads::api_key_by_hash(c, &api_key_hash).await?)
    }

    fn create_api_key(&self, tenant: TenantId, key: NewApiKey) -> StoreFuture<'_, ApiKey> {
        in_tx!(self, |tx| writes::insert_api_key(&tx, &tenant, &key)
            .await?)
    }

    fn api_keys(&self, tenant: TenantId) -> StoreFuture<'_, Vec<ApiKey>> {
        on_client!(self, |c| reads::api_keys(c, &tenant).await?)
    }

    fn revoke_api_key(&self, tenant: TenantId, key_id: String) -> StoreFuture<'_, ApiKey> {
        in_tx!(self, |tx| writes::revoke_api_key(&tx, &tenant, &key_id)
            .await?)
    }

    fn tenant_by_name(&self, name: String) -> StoreFuture<'_, Option<Tenant>> {
        on_client!(self, |c| reads::tenant_by_name(c, &name).await?)
    }

    fn create_order(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
    ) -> StoreFuture<'_, Order> {
        in_tx!(self, |tx| writes::insert_order(
            &tx,
            &tenant,
            &order,
            &tracking_code
        )
        .await?)
    }

    fn create_order_once(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
        claim: Option<IdempotencyClaim>,
        unique_reference: bool,
    ) -> StoreFuture<'_, Created> {
        in_tx!(self, |tx| {
            writes::insert_order_once(
                &tx,
                &tenant,
                &order,
                &tracking_code,
                claim.as_ref(),
                unique_reference,
            )
            .await?
        })
    }

    fn order(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Option<Order>> {
        // One snapshot for the order and its stops.
        in_tx!(self, |tx| reads::order_of_tenant(&tx, &tenant, &id).await?)
    }

    fn list_orders(&self, tenant: TenantId, query: ListQuery) -> StoreFuture<'_, Vec<Order>> {
        in_tx!(self, |tx| reads::list_orders(&tx, &tenant, &query).await?)
    }

    fn update_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        patch: OrderPatch,
    ) -> StoreFuture<'_, Order> {
        in_tx!(self, |tx| writes::update_order(&tx, &tenant, &id, &patch)
            .await?)
    }

    fn add_event(
        &self,
        tenant: Option<TenantId>,
        id: OrderId,
        event: NewEvent,
    ) -> StoreFuture<'_, (Order, OrderEvent)> {
        in_tx!(self, |tx| writes::add_event(
            &tx,
            tenant.as_ref(),
            &id,
            &event
        )
        .await?)
    }

    fn add_pod(&self, tenant: TenantId, id: OrderId, pod: NewPod) -> StoreFuture<'_, PodMeta> {
        in_tx!(self, |tx| writes::add_pod(&tx, &tenant, &id, &pod).await?)
    }

    fn pod_file(
        &self,
        order: OrderId,
        pod_id: String,
    ) -> StoreFuture<'_, Option<(PodMeta, Vec<u8>)>> {
        on_client!(self, |c| reads::pod_file(c, &order, &pod_id).await?)
    }

    fn rotate_tracking_code(
        &self,
        tenant: TenantId,
        id: OrderId,
        new_code: String,
    ) -> StoreFuture<'_, Order> {
        in_tx!(self, |tx| {
            writes::replace_code(&tx, &tenant, &id, Some(&new_code)).await?
        })
    }

    fn revoke_tracking_code(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Order> {
        in_tx!(self, |tx| writes::replace_code(&tx, &tenant, &id, None)
            .await?)
    }

    fn order_by_code_hash(&self, code_hash: String) -> StoreFuture<'_, Option<OrderId>> {
        on_client!(self, |c| reads::order_by_code_hash(c, &code_hash).await?)
    }

    fn track_view(&self, order: OrderId) -> StoreFuture<'_, Option<TrackView>> {
        // One snapshot: the page never shows a status without its stops.
        in_tx!(self, |tx| reads::track_view(&tx, &order).await?)
    }

    fn record_positions(
        &self,
        fixes: Vec<(TenantId, VehicleFix)>,
    ) -> StoreFuture<'_, Vec<PositionOutcome>> {
        in_tx!(self, |tx| writes::record_positions(&tx, &fixes).await?)
    }

    fn record_etas(
        &self,
        updates: Vec<EtaUpdate>,
        policy: AlertPolicy,
    ) -> StoreFuture<'_, Vec<RecordedEta>> {
        in_tx!(self, |tx| eta_batch::record_etas(&tx, &updates, &policy)
            .await?)
    }

    fn active_orders(&self) -> StoreFuture<'_, Vec<Order>> {
        in_tx!(self, |tx| reads::active_orders(&tx).await?)
    }

    fn vehicle_times(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<Option<DateTime<Utc>>>> {
        on_client!(self, |c| reads::vehicle_times(c, &vehicles).await?)
    }

    fn save_learned(
        &self,
        name: String,
        state: String,
        saved_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()> {
        in_tx!(self, |tx| {
            writes::save_learned(&tx, &name, &state, saved_at).await?
        })
    }

    fn learned(&self, name: String) -> StoreFuture<'_, Option<(String, DateTime<Utc>)>> {
        on_client!(self, |c| reads::learned(c, &name).await?)
    }

    fn save_tracker_memories(&self, memories: Vec<TrackerMemoryRecord>) -> StoreFuture<'_, ()> {
        in_tx!(self, |tx| {
            writes::save_tracker_memories(&tx, &memories).await?
        })
    }

    fn tracker_memories(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<TrackerMemoryRecord>> {
        on_client!(self, |c| reads::tracker_memories(c, &vehicles).await?)
    }

    fn hold_vehicles(&self, request: HoldRequest) -> StoreFuture<'_, Vec<VehicleHold>> {
        in_tx!(self, |tx| writes::hold_vehicles(&tx, &request).await?)
    }

    fn let_go_vehicles(&self, holder: String, vehicles: Vec<VehicleKey>) -> StoreFuture<'_, ()> {
        on_client!(self, |c| writes::let_go_vehicles(c, &holder, &vehicles)
            .await?)
    }

    fn node_beat(
        &self,
        holder: String,
        name: String,
        now: DateTime<Utc>,
        gone: bool,
    ) -> StoreFuture<'_, ()> {
        on_client!(self, |c| writes::node_beat(c, &holder, &name, now, gone)
            .await?)
    }

    fn add_dead_letters(&self, letters: Vec<NewDeadLetter>) -> StoreFuture<'_, ()> {
        in_tx!(self, |tx| writes::add_dead_letters(&tx, &letters).await?)
    }

    fn outbox_pending(&self) -> StoreFuture<'_, u64> {
        on_client!(self, |c| reads::outbox_pending(c).await?)
    }

    fn recent_dead_letters(&self, limit: usize) -> StoreFuture<'_, Vec<StoredDeadLetter>> {
        on_client!(self, |c| reads::recent_dead_letters(c, limit).await?)
    }

    fn settings(&self) -> Option<&dyn super::SettingsStore> {
        Some(self)
    }

    fn analytics(&self) -> Option<&dyn super::AnalyticsStore> {
        Some(self)
    }

    fn notifications(&self) -> Option<&dyn super::NotificationStore> {
        Some(self)
    }
}
