//! `tracker serve --store postgres://…` end to end: a tenant made by
//! `tracker tenant create` on PostgreSQL, an order created through the API of
//! a server on that store and read back through it, and the order found in
//! the database by a store opened afresh (what a second node would see).

use crate::portal_support;

use portal_support::{Server, api, create_tenant, dispatched_order};
use store::testing::PgSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_keeps_an_order_made_through_the_api() {
    let Some(schema) = PgSchema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_tenant(dir.path(), &schema.url, "Acme Haulage");
    let server = Server::start(dir.path(), &["--store", &schema.url], 0);

    let order = dispatched_order(&server.base_url, &key, "LOAD-PG-1", "truck-1").await;
    let id = order["id"].as_str().expect("an order id").to_owned();
    let read = api(&server.base_url, &key)
        .order(&id)
        .await
        .expect("the order reads back");
    assert_eq!(read.reference, "LOAD-PG-1");
    assert_eq!(read.status, "dispatched");
    drop(server);

    let store = portal_api::open_store(&schema.url)
        .await
        .expect("the store opens again");
    let tenant = store
        .tenant_by_name("Acme Haulage".into())
        .await
        .expect("reads")
        .expect("the tenant is in PostgreSQL");
    let kept = store
        .order(tenant.id, engine::OrderId(id))
        .await
        .expect("reads")
        .expect("the order is in PostgreSQL");
    assert_eq!(kept.status, engine::OrderStatus::Dispatched);
    drop(store);
    schema.finish().await;
}
