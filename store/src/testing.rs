//! Test support for the store's own suites and for crates built on it
//! (feature `testing`). The store backends a conformance scenario runs on: a fresh SQLite file, or
//! a fresh schema of the local PostgreSQL (`TRACKER_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Each PostgreSQL store gets its
//! own schema `t_<random>` (on the connections' `search_path`), so tests run
//! in parallel, and the schema is dropped when the store is. Under `CI` a
//! PostgreSQL out of reach fails the test; elsewhere the test says loudly
//! that it skipped.

use std::sync::Arc;

use crate::{Store, open_store};

/// Where the PostgreSQL tests connect (the machines' local server).
pub fn postgres_url() -> String {
    std::env::var("TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store for one test, and what it takes to open it again or clean up.
#[derive(Debug)]
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The URL it was opened from (a second node, or a restart, opens it too).
    pub url: String,
    /// The SQLite file's folder, kept while the store lives.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema to drop at the end.
    schema: Option<PgSchema>,
}

impl TestStore {
    /// Drops the store and opens it again from its URL, as a restart does.
    pub async fn reopen(&mut self) {
        self.store = open_store(&self.url).await.expect("the store opens again");
    }

    /// Drops the PostgreSQL schema (see [`PgSchema::finish`]).
    pub async fn finish(mut self) {
        if let Some(schema) = self.schema.take() {
            schema.finish().await;
        }
    }
}

/// A schema of its own on the local PostgreSQL, for one test or one bench
/// iteration: what a `tracker serve` process is pointed at with `--store`
/// ([`PgSchema::url`]), or what [`postgres`] opens a store on.
#[derive(Debug)]
pub struct PgSchema {
    /// The server's URL, without the schema.
    base: String,
    /// `t_<random>`; taken by `finish`.
    name: Option<String>,
    /// The URL that puts the schema on the connections' `search_path`.
    pub url: String,
}

impl PgSchema {
    /// A new schema on the server at [`postgres_url`], or `None` (with a
    /// loud message) when no server answers and `CI` is not set.
    pub async fn create() -> Option<PgSchema> {
        let base = postgres_url();
        let client = match admin(&base).await {
            Ok(client) => client,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {base} is required under CI: {e}")
            }
            Err(e) => {
                eprintln!(
                    "\n*** SKIPPED: no PostgreSQL at {base} ({e}); set TRACKER_TEST_POSTGRES \
                     or start one. Under CI this fails. ***\n"
                );
                return None;
            }
        };
        let name = format!("t_{}", random_suffix());
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("a test schema can be created");
        let url = Self::on_path(&base, &name);
        Some(PgSchema {
            base,
            name: Some(name),
            url,
        })
    }

    /// `url` with the schema on its connections' `search_path`.
    fn on_path(url: &str, name: &str) -> String {
        let joiner = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joiner}options=-csearch_path%3D{name}")
    }

    /// The schema's URL reached through `via(server URL)` (another host
    /// name, TLS parameters) rather than the server URL itself.
    pub fn url_via(&self, via: impl FnOnce(&str) -> String) -> String {
        Self::on_path(&via(&self.base), self.name.as_deref().unwrap_or("public"))
    }

    /// Drops the schema. Async, so the pool's connections keep running
    /// meanwhile: a transaction an error ended is rolled back by its
    /// connection's task, and until then it holds locks the drop waits for.
    pub async fn finish(mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        let admin = admin(&self.base).await.expect("PostgreSQL answers");
        admin
            .batch_execute(&format!(
                "SET lock_timeout = '30s'; DROP SCHEMA {name} CASCADE"
            ))
            .await
            .expect("the test schema is dropped");
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        // Only after a failed test (`finish` takes the name otherwise).
        // Drop runs outside async: a thread with its own runtime removes the
        // schema; the blocked runtime cannot roll back what a failure left
        // open, so the drop gives up soon and leaves the schema behind.
        let url = self.base.clone();
        let done = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = admin(&url).await {
                    let _ = admin
                        .batch_execute(&format!(
                            "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                        ))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("tracker.db").display());
    TestStore {
        store: open_store(&url).await.expect("SQLite store opens"),
        url,
        _dir: Some(dir),
        schema: None,
    }
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A PostgreSQL store on a schema of its own, or `None` (with a loud message)
/// when no server answers and `CI` is not set.
pub async fn postgres() -> Option<TestStore> {
    postgres_via(|url| url.to_owned()).await
}

/// [`postgres`], the store opened through `via(url)` (another host name, TLS
/// parameters) rather than the URL the schema was made through.
pub async fn postgres_via(via: impl FnOnce(&str) -> String) -> Option<TestStore> {
    let schema = PgSchema::create().await?;
    let url = schema.url_via(via);
    let store = open_store(&url).await.expect("the PostgreSQL store opens");
    Some(TestStore {
        store,
        url,
        _dir: None,
        schema: Some(schema),
    })
}

/// Whether any text the store at `url` keeps contains `needle`: the SQLite
/// file and its WAL read as bytes, or every text column of the PostgreSQL
/// schema searched. What a test runs to show a secret is never stored.
pub async fn stored_anywhere(url: &str, needle: &str) -> bool {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return [path.to_owned(), format!("{path}-wal")].iter().any(|file| {
            let bytes = std::fs::read(file).unwrap_or_default();
            String::from_utf8_lossy(&bytes).contains(needle)
        });
    }
    let client = admin(url).await.expect("PostgreSQL answers");
    let columns = client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type = 'text'",
            &[],
        )
        .await
        .expect("the schema's columns");
    for column in columns {
        let (table, name): (String, String) = (column.get(0), column.get(1));
        let sql = format!("SELECT 1 FROM \"{table}\" WHERE strpos(\"{name}\", $1) > 0 LIMIT 1");
        let hit = client.query_opt(&sql, &[&needle]).await.expect("a search");
        if hit.is_some() {
            return true;
        }
    }
    false
}

/// 16 random lower-case hex digits: a schema name no other test picks.
fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Declares each scenario `fn NAME(Arc<dyn Store>)` (async) as two tests,
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = $crate::testing::sqlite().await;
                    super::$name(store.store.clone()).await;
                    store.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(store) = $crate::testing::postgres().await else {
                        return;
                    };
                    super::$name(store.store.clone()).await;
                    store.finish().await;
                }
            )*
        }
    };
}
