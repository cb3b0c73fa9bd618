//! The SQLite backend: the embedded default, a real single-node store.
//!
//! SQLite allows one writer at a time, and its calls block. So one dedicated
//! thread owns the write connection and takes jobs from a bounded channel; it runs
//! whatever is queued inside one transaction (group commit: one fsync for many
//! small writes, which is what keeps position bursts cheap), each job in its own
//! savepoint so a failing job rolls back alone. Callers get their result only after
//! the commit. Reads run on tokio's blocking pool with a few read connections,
//! which WAL lets proceed while the writer writes. Nothing here blocks the async
//! runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine::{EtaUpdate, OrderId, VehicleKey};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreFuture, dead_letters, migrations, rows, writes};
use crate::error::{Error, Result};
use crate::model::{
    ApiKey, Created, HoldRequest, IdempotencyClaim, ListQuery, NewApiKey, NewDeadLetter, NewEvent,
    NewOrder, NewPod, Order, OrderEvent, OrderPatch, PodMeta, PositionOutcome, RecordedEta,
    StoredDeadLetter, Tenant, TenantId, TrackView, TrackerMemoryRecord, VehicleFix, VehicleHold,
};

/// Queued write jobs before callers wait for room (backpressure).
const WRITE_QUEUE: usize = 4096;
/// Most jobs folded into one transaction.
const MAX_GROUP: usize = 512;
/// Read connections kept open, and the most reads run at once: a read waits
/// (asynchronously) for a connection rather than opening one of its own, whose
/// first statement would parse the whole schema again. Before this bound, a
/// flush's thousands of concurrent ETA reads each opened a connection: 15 % of
/// the engine-to-store CPU went to parsing the schema.
const READERS: usize = 8;

/// A job for the writer: runs on the write connection inside a savepoint and
/// returns whether it succeeded plus how to answer once the commit is known.
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Option<Error>) + Send>;

/// The SQLite store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    readers: Arc<ReaderPool>,
}

#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per read connection: at most [`READERS`] reads at once.
    permits: Arc<tokio::sync::Semaphore>,
}

impl ReaderPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self.idle.lock().pop() {
            Some(conn) => conn,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock();
        if idle.len() < READERS {
            idle.push(conn);
        }
        result
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    // Several processes may share the file (two nodes in tests); wait for a
    // lock instead of failing at once.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement the store runs stays prepared.
    conn.set_prepared_statement_cache_capacity(64);
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode NORMAL survives a crash of the process; a power cut may lose
        // the last commits but never corrupts the file. The usual trade for a
        // server that commits many small writes.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Each job's savepoint journals the pages it changes; in memory, not
        // in a temporary file written for every job.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoint every ~40 MB of WAL rather than every 4 MB: the stops a
        // busy fleet's ETAs rewrite many times a minute are copied back into
        // the database once per checkpoint, not once per version.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    }
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating and migrating when needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let path = path.to_path_buf();
        let opened_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            if let Some(dir) = opened_path.parent()
                && !dir.as_os_str().is_empty()
                && !dir.exists()
            {
                // The URL was fine; the file system refused (exit 1, not 2).
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::store_permanent(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut conn = open_connection(&opened_path, false)?;
            migrations::migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::store_retryable(format!("opening the database: {e}")))??;

        let (writer, jobs) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, jobs))
            .map_err(|e| Error::store_retryable(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
            }),
            path,
            writer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer thread inside a transaction; resolves after commit.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error| {
                let outcome = match commit_error {
                    Some(err) => Err(err),
                    None => result,
                };
                // The caller may have gone away (request cancelled); nothing to do.
                let _ = answer.send(outcome);
            });
            (ok, reply)
        });
        let queued_at = std::time::Instant::now();
        self.writer
            .send(job)
            .await
            .map_err(|_| Error::store_retryable("the writer thread has stopped"))?;
        self.record_queue_depth();
        let answer = answered
            .await
            .map_err(|_| Error::store_retryable("the writer thread dropped a job"))?;
        // What a caller waits for a write: the queue, its group's transaction
        // and the commit.
        metrics::histogram!("tracker_store_write_seconds").record(queued_at.elapsed());
        self.record_queue_depth();
        answer
    }

    /// Write jobs waiting for the writer thread, as a gauge.
    fn record_queue_depth(&self) {
        let waiting = WRITE_QUEUE.saturating_sub(self.writer.capacity());
        metrics::gauge!("tracker_store_write_queue_depth").set(waiting as f64);
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.readers.clone();
        let permit = Arc::clone(&pool.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::store_retryable("the read connections are closed"))?;
        tokio::task::spawn_blocking(move || {
            let read = pool.with(f);
            drop(permit);
            read
        })
        .await
        .map_err(|e| Error::store_retryable(format!("read task failed: {e}")))?
    }
}

/// The writer thread: group commit with a savepoint per job.
fn write_loop(mut conn: Connection, mut jobs: mpsc::Receiver<WriteJob>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let commit = (|| -> Result<()> {
            let tx = conn.transaction()?;
            // One savepoint per job, so a failed job leaves no half-write; by
            // cached statements (rusqlite's `Savepoint` parses its SQL each time).
            let step = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
            for job in batch.drain(..) {
                step("SAVEPOINT job")?;
                let (ok, reply) = job(&tx);
                if !ok {
                    step("ROLLBACK TO job")?;
                }
                step("RELEASE job")?;
                replies.push(reply);
            }
            tx.commit()?;
            Ok(())
        })();
        // Jobs not reached when the transaction broke early were dropped with
        // their answer channel, so their callers see an error, not a hang.
        // A failed commit fails every job of the group, each with the commit's
        // kind (a busy or full disk is worth retrying; the jobs themselves were
        // fine).
        let failed = commit.err().map(|e| match e {
            Error::Store { kind, message } => (kind, message),
            other => (crate::StoreErrorKind::Retryable, other.to_string()),
        });
        for reply in replies {
            reply(
                failed
                    .clone()
                    .map(|(kind, message)| Error::Store { kind, message }),
            );
        }
    }
}

impl Store for SqliteStore {
    fn create_tenant(&self, name: String, first_key: NewApiKey) -> StoreFuture<'_, Tenant> {
        Box::pin(self.write(move |c| writes::insert_tenant(c, &name, &first_key)))
    }

    fn authenticate(&self, api_key_hash: String) -> StoreFuture<'_, Option<(Tenant, ApiKey)>> {
        Box::pin(self.read(move |c| rows::api_key_by_hash(c, &api_key_hash)))
    }

    fn create_api_key(&self, tenant: TenantId, key: NewApiKey) -> StoreFuture<'_, ApiKey> {
        Box::pin(self.write(move |c| writes::insert_api_key(c, &tenant, &key)))
    }

    fn api_keys(&self, tenant: TenantId) -> StoreFuture<'_, Vec<ApiKey>> {
        Box::pin(self.read(move |c| rows::api_keys(c, &tenant)))
    }

    fn revoke_api_key(&self, tenant: TenantId, key_id: String) -> StoreFuture<'_, ApiKey> {
        Box::pin(self.write(move |c| writes::revoke_api_key(c, &tenant, &key_id)))
    }

    fn tenant_by_name(&self, name: String) -> StoreFuture<'_, Option<Tenant>> {
        Box::pin(self.read(move |c| rows::tenant_by_name(c, &name)))
    }

    fn create_order(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
    ) -> StoreFuture<'_, Order> {
        Box::pin(self.write(move |c| writes::insert_order(c, &tenant, &order, &tracking_code)))
    }

    fn create_order_once(
        &self,
        tenant: TenantId,
        order: NewOrder,
        tracking_code: String,
        claim: Option<IdempotencyClaim>,
        unique_reference: bool,
    ) -> StoreFuture<'_, Created> {
        Box::pin(self.write(move |c| {
            writes::insert_order_once(
                c,
                &tenant,
                &order,
                &tracking_code,
                claim.as_ref(),
                unique_reference,
            )
        }))
    }

    fn order(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Option<Order>> {
        Box::pin(self.read(move |c| rows::order_of_tenant(c, &tenant, &id)))
    }

    fn list_orders(&self, tenant: TenantId, query: ListQuery) -> StoreFuture<'_, Vec<Order>> {
        Box::pin(self.read(move |c| rows::list_orders(c, &tenant, &query)))
    }

    fn update_order(
        &self,
        tenant: TenantId,
        id: OrderId,
        patch: OrderPatch,
    ) -> StoreFuture<'_, Order> {
        Box::pin(self.write(move |c| writes::update_order(c, &tenant, &id, &patch)))
    }

    fn add_event(
        &self,
        tenant: Option<TenantId>,
        id: OrderId,
        event: NewEvent,
    ) -> StoreFuture<'_, (Order, OrderEvent)> {
        Box::pin(self.write(move |c| writes::add_event(c, tenant.as_ref(), &id, &event)))
    }

    fn add_pod(&self, tenant: TenantId, id: OrderId, pod: NewPod) -> StoreFuture<'_, PodMeta> {
        Box::pin(self.write(move |c| writes::add_pod(c, &tenant, &id, &pod)))
    }

    fn pod_file(
        &self,
        order: OrderId,
        pod_id: String,
    ) -> StoreFuture<'_, Option<(PodMeta, Vec<u8>)>> {
        Box::pin(self.read(move |c| rows::pod_file(c, &order, &pod_id)))
    }

    fn rotate_tracking_code(
        &self,
        tenant: TenantId,
        id: OrderId,
        new_code: String,
    ) -> StoreFuture<'_, Order> {
        Box::pin(self.write(move |c| writes::replace_code(c, &tenant, &id, Some(&new_code))))
    }

    fn revoke_tracking_code(&self, tenant: TenantId, id: OrderId) -> StoreFuture<'_, Order> {
        Box::pin(self.write(move |c| writes::replace_code(c, &tenant, &id, None)))
    }

    fn order_by_code_hash(&self, code_hash: String) -> StoreFuture<'_, Option<OrderId>> {
        Box::pin(self.read(move |c| rows::order_by_code_hash(c, &code_hash)))
    }

    fn track_view(&self, order: OrderId) -> StoreFuture<'_, Option<TrackView>> {
        Box::pin(self.read(move |c| rows::track_view(c, &order)))
    }

    fn record_positions(
        &self,
        fixes: Vec<(TenantId, VehicleFix)>,
    ) -> StoreFuture<'_, Vec<PositionOutcome>> {
        // One writer job for the whole batch: one savepoint, one commit.
        Box::pin(self.write(move |c| writes::record_positions(c, &fixes)))
    }

    fn record_etas(
        &self,
        updates: Vec<EtaUpdate>,
        policy: crate::alerts::AlertPolicy,
    ) -> StoreFuture<'_, Vec<RecordedEta>> {
        // One writer job for the whole batch: one savepoint, one commit.
        Box::pin(self.write(move |c| writes::record_etas(c, &updates, &policy)))
    }

    fn active_orders(&self) -> StoreFuture<'_, Vec<Order>> {
        Box::pin(self.read(rows::active_orders))
    }

    fn vehicle_times(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<Option<DateTime<Utc>>>> {
        Box::pin(self.read(move |c| rows::vehicle_times(c, &vehicles)))
    }

    fn save_learned(
        &self,
        name: String,
        state: String,
        saved_at: DateTime<Utc>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| writes::save_learned(c, &name, &state, saved_at)))
    }

    fn learned(&self, name: String) -> StoreFuture<'_, Option<(String, DateTime<Utc>)>> {
        Box::pin(self.read(move |c| rows::learned(c, &name)))
    }

    fn save_tracker_memories(&self, memories: Vec<TrackerMemoryRecord>) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| writes::save_tracker_memories(c, &memories)))
    }

    fn tracker_memories(
        &self,
        vehicles: Vec<VehicleKey>,
    ) -> StoreFuture<'_, Vec<TrackerMemoryRecord>> {
        Box::pin(self.read(move |c| rows::tracker_memories(c, &vehicles)))
    }

    fn hold_vehicles(&self, request: HoldRequest) -> StoreFuture<'_, Vec<VehicleHold>> {
        Box::pin(self.write(move |c| writes::hold_vehicles(c, &request)))
    }

    fn let_go_vehicles(&self, holder: String, vehicles: Vec<VehicleKey>) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| writes::let_go_vehicles(c, &holder, &vehicles)))
    }

    fn node_beat(
        &self,
        holder: String,
        name: String,
        now: DateTime<Utc>,
        gone: bool,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| writes::node_beat(c, &holder, &name, now, gone)))
    }

    fn add_dead_letters(&self, letters: Vec<NewDeadLetter>) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| dead_letters::add_dead_letters(c, &letters)))
    }

    fn outbox_pending(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            // A store whose writer has stopped cannot take anything, even if
            // its file still reads.
            if self.writer.is_closed() {
                return Err(Error::store_retryable("the writer thread has stopped"));
            }
            self.read(|c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")?
                    .query_row([], |row| row.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
        })
    }

    fn recent_dead_letters(&self, limit: usize) -> StoreFuture<'_, Vec<StoredDeadLetter>> {
        Box::pin(self.read(move |c| dead_letters::recent_dead_letters(c, limit)))
    }

    fn notifications(&self) -> Option<&dyn super::NotificationStore> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn super::SettingsStore> {
        Some(self)
    }

    fn analytics(&self) -> Option<&dyn super::AnalyticsStore> {
        Some(self)
    }
}
