//! Two `PostgresStore`s on one schema, as two nodes sharing a database:
//! every due message is claimed by exactly one of them, and two expanders
//! read every outbox entry exactly once.

use std::collections::HashSet;

use store::open_store;

use super::*;
use crate::common::stores;

/// Orders each making one e-mail per address of a dispatch rule.
const ORDERS: usize = 8;
const ADDRESSES: usize = 10;

/// A tenant with a dispatch rule to `ADDRESSES` addresses and `ORDERS`
/// dispatched orders.
async fn busy_tenant(store: &dyn Store) {
    let acme = tenant(store, "Acme Haulage").await;
    let addresses: Vec<String> = (0..ADDRESSES)
        .map(|i| format!("desk{i}@acme.example"))
        .collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    notes(store)
        .create_rule(
            acme.clone(),
            email_rule(TriggerEvent::Dispatched, &addresses),
        )
        .await
        .expect("rule");
    for i in 0..ORDERS {
        dispatched_order(store, &acme, &format!("LOAD-{i}")).await;
    }
}

/// Claims (3 at a time) and finishes until nothing is due; the ids claimed.
async fn drain(store: Arc<dyn Store>, node: &'static str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let claimed = notes(&*store)
            .claim_due(node.into(), at(0), Duration::minutes(5), 3, true)
            .await
            .expect("claims")
            .claimed;
        if claimed.is_empty() {
            return ids;
        }
        for n in claimed {
            assert!(
                finish(&*store, &n, node, Outcome::Sent, 0).await,
                "{node} owns it"
            );
            ids.push(n.id);
        }
    }
}

/// Expands (2 entries at a time) until the outbox is read; entries read.
async fn expand_all(store: Arc<dyn Store>) -> usize {
    let mut read = 0;
    loop {
        let n = notes(&*store)
            .expand_outbox(at(0), Duration::hours(1), 2)
            .await
            .expect("expands");
        if n == 0 {
            return read;
        }
        read += n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_due_message_is_claimed_by_exactly_one_node() {
    let Some(first) = stores::postgres().await else {
        return;
    };
    let second: Arc<dyn Store> = open_store(&first.url).await.expect("a second node");
    busy_tenant(&*first.store).await;
    expand(&*first.store).await;
    let (a, b) = tokio::join!(
        tokio::spawn(drain(first.store.clone(), "node-a")),
        tokio::spawn(drain(second.clone(), "node-b")),
    );
    let (a, b) = (a.expect("node-a ran"), b.expect("node-b ran"));
    let all: HashSet<&String> = a.iter().chain(&b).collect();
    assert_eq!(a.len() + b.len(), ORDERS * (ADDRESSES + 1), "none lost");
    assert_eq!(all.len(), a.len() + b.len(), "none claimed twice");
    drop(second);
    first.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_expanders_read_each_outbox_entry_once() {
    let Some(first) = stores::postgres().await else {
        return;
    };
    let second: Arc<dyn Store> = open_store(&first.url).await.expect("a second node");
    busy_tenant(&*first.store).await;
    let entries = first.store.outbox_pending().await.expect("counts");
    let (a, b) = tokio::join!(
        tokio::spawn(expand_all(first.store.clone())),
        tokio::spawn(expand_all(second.clone())),
    );
    let read = a.expect("node-a ran") + b.expect("node-b ran");
    assert_eq!(read as u64, entries, "every entry read once, by one node");
    let made = drain(first.store.clone(), "node-a").await;
    assert_eq!(
        made.len(),
        ORDERS * (ADDRESSES + 1),
        "each message made once"
    );
    drop(second);
    first.finish().await;
}
