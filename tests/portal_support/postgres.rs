//! A schema of its own on the local PostgreSQL (`TRACKER_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`) for one end-to-end
//! test, with the store URL that puts it on the connections' `search_path`.
//! Absent PostgreSQL follows [`super::service_available`]: a failure under
//! `CI`, a printed skip elsewhere.

use tokio_postgres::{Client, NoTls};

pub struct PgSchema {
    admin: Client,
    name: String,
    /// `--store` for this schema.
    pub url: String,
}

async fn connect(url: &str) -> Option<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.ok()?;
    tokio::spawn(connection);
    Some(client)
}

impl PgSchema {
    pub async fn create() -> Option<PgSchema> {
        let base = std::env::var("TRACKER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = connect(&base).await;
        if !super::service_available(&format!("PostgreSQL at {base}"), admin.is_some()) {
            return None;
        }
        let admin = admin?;
        let name = format!("t_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("a test schema can be created");
        let joiner = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{joiner}options=-csearch_path%3D{name}");
        Some(PgSchema { admin, name, url })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .expect("the test schema is dropped");
    }
}
