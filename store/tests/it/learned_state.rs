//! The store keeps what the engine has learned: a save under a name replaces
//! the last one, and it is still there when the store is opened again, as
//! after a restart. On both backends (see `common::stores`).

use crate::common;

use chrono::{DateTime, Utc};
use common::stores::{self, TestStore};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid time")
}

async fn a_learned_state_is_replaced_by_the_next_save_and_outlives_a_restart(mut t: TestStore) {
    let store = t.store.clone();
    assert_eq!(
        store.learned("calibrator".into()).await.expect("reads"),
        None
    );

    store
        .save_learned("calibrator".into(), r#"{"v":1}"#.into(), at(0))
        .await
        .expect("saves");
    store
        .save_learned("calibrator".into(), r#"{"v":2}"#.into(), at(60))
        .await
        .expect("saves again");
    store
        .save_learned("traffic".into(), r#"{"w":1}"#.into(), at(30))
        .await
        .expect("another model");
    drop(store);

    t.reopen().await;
    let reopened = t.store.clone();
    assert_eq!(
        reopened.learned("calibrator".into()).await.expect("reads"),
        Some((r#"{"v":2}"#.to_string(), at(60)))
    );
    assert_eq!(
        reopened.learned("traffic".into()).await.expect("reads"),
        Some((r#"{"w":1}"#.to_string(), at(30)))
    );
    drop(reopened);
    t.finish().await;
}

#[tokio::test]
async fn on_sqlite_a_learned_state_outlives_a_restart() {
    a_learned_state_is_replaced_by_the_next_save_and_outlives_a_restart(stores::sqlite().await)
        .await;
}

#[tokio::test]
async fn on_postgres_a_learned_state_outlives_a_restart() {
    let Some(t) = stores::postgres().await else {
        return;
    };
    a_learned_state_is_replaced_by_the_next_save_and_outlives_a_restart(t).await;
}
