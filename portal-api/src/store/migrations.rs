//! The schema, as an ordered list of migrations. `PRAGMA user_version` records how
//! many have run; new ones are appended, never edited, so every deployed database
//! can be brought forward.
//!
//! Times are RFC 3339 UTC text with millisecond precision and a `Z`, so text order
//! is time order (indexes and analysts' SQL both rely on it). Ids are random text,
//! not integers, so a multi-node PostgreSQL deployment can use the same ids.

use rusqlite::Connection;

use crate::error::Result;

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE tenants (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        api_key_hash  TEXT NOT NULL UNIQUE,
        created_at    TEXT NOT NULL
    );
    CREATE INDEX tenants_name ON tenants(name, created_at);

    CREATE TABLE orders (
        id              TEXT PRIMARY KEY,
        tenant_id       TEXT NOT NULL REFERENCES tenants(id),
        reference       TEXT NOT NULL,
        customer_name   TEXT NOT NULL,
        customer_email  TEXT,
        vehicle_id      TEXT,
        driver_name     TEXT,
        status          TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX orders_tenant ON orders(tenant_id, created_at, id);
    CREATE INDEX orders_tenant_reference ON orders(tenant_id, reference);
    CREATE INDEX orders_vehicle ON orders(vehicle_id);

    CREATE TABLE stops (
        order_id         TEXT NOT NULL REFERENCES orders(id),
        idx              INTEGER NOT NULL,
        kind             TEXT NOT NULL,
        name             TEXT NOT NULL,
        address          TEXT NOT NULL,
        lat              REAL NOT NULL,
        lon              REAL NOT NULL,
        time_zone        TEXT NOT NULL,
        window_from      TEXT,
        window_to        TEXT,
        arrived_at       TEXT,
        departed_at      TEXT,
        eta_json         TEXT,
        PRIMARY KEY (order_id, idx)
    );

    -- The timeline: status changes, exceptions and notes, from dispatchers, the
    -- driver app and geofences.
    CREATE TABLE order_events (
        id           TEXT PRIMARY KEY,
        order_id     TEXT NOT NULL REFERENCES orders(id),
        at           TEXT NOT NULL,
        kind         TEXT NOT NULL,
        status       TEXT,
        note         TEXT,
        source       TEXT NOT NULL,
        stop_idx     INTEGER,
        recorded_at  TEXT NOT NULL
    );
    CREATE INDEX order_events_order ON order_events(order_id, at);

    CREATE TABLE pod_files (
        id            TEXT PRIMARY KEY,
        order_id      TEXT NOT NULL REFERENCES orders(id),
        content_type  TEXT NOT NULL,
        file_name     TEXT,
        size_bytes    INTEGER NOT NULL,
        sha256        TEXT NOT NULL,
        signed_by     TEXT,
        note          TEXT,
        taken_at      TEXT,
        uploaded_at   TEXT NOT NULL,
        data          BLOB NOT NULL
    );
    CREATE INDEX pod_files_order ON pod_files(order_id, uploaded_at);

    -- Codes are looked up by their SHA-256 only. The code itself is kept so the
    -- tenant can list its tracking URLs; a revoked code keeps its row (revoked_at)
    -- so it can never be issued again by accident.
    CREATE TABLE tracking_codes (
        code_hash   TEXT PRIMARY KEY,
        code        TEXT NOT NULL,
        order_id    TEXT NOT NULL REFERENCES orders(id),
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    CREATE INDEX tracking_codes_order ON tracking_codes(order_id);

    -- Latest position per vehicle. `tenant_key` is the tenant id for positions
    -- posted by a tenant and '' for positions from the engine (Kafka feeds).
    CREATE TABLE vehicle_positions (
        tenant_key   TEXT NOT NULL,
        vehicle_id   TEXT NOT NULL,
        at           TEXT NOT NULL,
        lat          REAL NOT NULL,
        lon          REAL NOT NULL,
        speed_mps    REAL,
        heading_deg  REAL,
        received_at  TEXT NOT NULL,
        PRIMARY KEY (tenant_key, vehicle_id)
    );

    -- The downsampled path of each order's truck while the order was in progress.
    CREATE TABLE position_trail (
        order_id   TEXT NOT NULL REFERENCES orders(id),
        at         TEXT NOT NULL,
        lat        REAL NOT NULL,
        lon        REAL NOT NULL,
        speed_mps  REAL,
        PRIMARY KEY (order_id, at)
    );

    -- Every published ETA, and the actual arrival once known: the raw material
    -- for accuracy analytics (error by horizon, coverage of the p10-p90 window).
    CREATE TABLE eta_predictions (
        id                    INTEGER PRIMARY KEY,
        order_id              TEXT NOT NULL REFERENCES orders(id),
        stop_idx              INTEGER NOT NULL,
        predicted_at          TEXT NOT NULL,
        eta                   TEXT NOT NULL,
        p10                   TEXT NOT NULL,
        p90                   TEXT NOT NULL,
        horizon_s             REAL NOT NULL,
        remaining_distance_m  REAL NOT NULL,
        remaining_drive_s     REAL NOT NULL,
        reasons               TEXT NOT NULL,
        actual_arrival        TEXT
    );
    CREATE INDEX eta_predictions_stop ON eta_predictions(order_id, stop_idx, predicted_at);

    -- Work for later deliverers (webhooks, e-mails), written in the same
    -- transaction as the change it announces, so nothing is announced that did
    -- not happen and nothing that happened is lost.
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY,
        tenant_id     TEXT NOT NULL,
        topic         TEXT NOT NULL,
        payload       TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        delivered_at  TEXT
    );
    CREATE INDEX outbox_pending ON outbox(delivered_at, id);
    "#,
    // 2: what the engine has learned (the calibrator's error distribution
    // and stall tail; traffic profiles later), saved as JSON under a name, so
    // a restart does not start every ETA window from the prior.
    r#"
    CREATE TABLE learned_state (
        name      TEXT PRIMARY KEY,
        state     TEXT NOT NULL,
        saved_at  TEXT NOT NULL
    );
    "#,
    // (issue 17) dead letters: messages and engine events the stream set
    // aside (oversized, undecodable, refused for good by the store, or whose
    // dead-letter topic would not take them), so that nothing skipped is lost.
    // The payload is truncated; size_bytes is the original size.
    r#"
    CREATE TABLE dead_letters (
        id           INTEGER PRIMARY KEY,
        tenant_id    TEXT,
        origin       TEXT NOT NULL,
        topic        TEXT,
        partition    INTEGER,
        "offset"     INTEGER,
        size_bytes   INTEGER NOT NULL,
        reason       TEXT NOT NULL,
        detail       TEXT NOT NULL,
        payload      BLOB NOT NULL,
        key          BLOB,
        received_at  TEXT NOT NULL
    );
    CREATE INDEX dead_letters_received ON dead_letters(received_at);
    "#,
];

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run");
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len());
    }
}
