//! Store errors say whether trying again can help (issue 17: they were strings,
//! and the pipeline retried everything but three refusals forever), and the
//! `dead_letters` table keeps what the position stream set aside.

use chrono::{TimeZone, Utc};
use rusqlite::Connection;
use store::{Error, NewDeadLetter, SqliteStore, Store, StoreErrorKind, TenantId, open_store};

fn kind_of(err: &Error) -> Option<StoreErrorKind> {
    match err {
        Error::Store { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_cannot_be_opened_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        "these are a driver's notes, not a database\n".repeat(100),
    )
    .expect("written");
    let err = open_store(&format!("sqlite://{}", path.display()))
        .await
        .expect_err("not a database");
    assert_eq!(kind_of(&err), Some(StoreErrorKind::Permanent), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_store_under_a_file_cannot_be_opened_and_that_is_not_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("written");
    let err = open_store(&format!("sqlite://{}/x.db", file.display()))
        .await
        .expect_err("no folder can be made under a file");
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    // Only a URL the binary cannot use is a bad setting.
    let bad_url = open_store("mysql://db/x")
        .await
        .expect_err("unknown scheme");
    assert!(
        matches!(bad_url, Error::InvalidConfig { .. }),
        "{bad_url:?}"
    );
}

#[test]
fn a_refused_write_is_permanent_and_a_locked_database_is_retryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let first = Connection::open(&path).expect("opens");
    first
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE);")
        .expect("schema");
    first
        .execute("INSERT INTO t (v) VALUES ('a')", [])
        .expect("first insert");

    let duplicate = Error::from(
        first
            .execute("INSERT INTO t (v) VALUES ('a')", [])
            .expect_err("unique"),
    );
    assert_eq!(kind_of(&duplicate), Some(StoreErrorKind::Permanent));
    let mismatch = Error::from(
        first
            .query_row("SELECT v FROM t", [], |r| r.get::<_, i64>(0))
            .expect_err("text is not an integer"),
    );
    assert_eq!(kind_of(&mismatch), Some(StoreErrorKind::Permanent));

    // Another connection holds the write lock: busy, worth trying again.
    first.execute_batch("BEGIN EXCLUSIVE").expect("locks");
    let second = Connection::open(&path).expect("opens");
    second
        .busy_timeout(std::time::Duration::ZERO)
        .expect("no wait");
    let busy = Error::from(
        second
            .execute("INSERT INTO t (v) VALUES ('b')", [])
            .expect_err("locked"),
    );
    assert_eq!(kind_of(&busy), Some(StoreErrorKind::Retryable), "{busy}");
    assert!(busy.is_retryable());
}

fn letter(reason: &str, offset: i64) -> NewDeadLetter {
    NewDeadLetter {
        tenant_id: (offset == 0).then(|| TenantId("ten_a".into())),
        origin: format!("positions/2@{offset}"),
        topic: Some("positions".into()),
        partition: Some(2),
        offset: Some(offset),
        size_bytes: 5 * 1024 * 1024,
        reason: reason.into(),
        detail: "message of 5242880 bytes is over the limit of 65536".into(),
        payload: vec![b'{'; 1024],
        key: Some(b"truck-7".to_vec()),
        received_at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time"),
    }
}

#[tokio::test]
async fn dead_letters_are_kept_and_listed_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("store");
    assert!(
        store
            .recent_dead_letters(10)
            .await
            .expect("reads")
            .is_empty()
    );
    let (older, newer) = (letter("too_large", 0), letter("malformed", 1));
    store
        .add_dead_letters(vec![older.clone(), newer.clone()])
        .await
        .expect("kept");
    let listed = store.recent_dead_letters(10).await.expect("reads");
    let letters: Vec<&NewDeadLetter> = listed.iter().map(|s| &s.letter).collect();
    assert_eq!(letters, [&newer, &older]);
    assert!(listed[0].id > listed[1].id);
    assert_eq!(store.recent_dead_letters(1).await.expect("reads").len(), 1);
}
