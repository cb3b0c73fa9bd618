//! The schema, as an ordered list of migrations. `PRAGMA user_version` records how
//! many have run; new ones are appended, never edited, so every deployed database
//! can be brought forward.
//!
//! Times are RFC 3339 UTC text with millisecond precision and a `Z`, so text order
//! is time order (indexes and analysts' SQL both rely on it). Ids are random text,
//! not integers, so a multi-node PostgreSQL deployment can use the same ids.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

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
    -- posted by a tenant and '' for positions from the engine (Kafka feeds);
    -- migration 3 makes it the tenant id always.
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
    // 3 (issue 17, API keys): several named, scoped, revocable keys per
    // tenant. Each tenant's one key moves here as `default` with every scope
    // (its prefix is unknown: only the hash was kept, so it shows as `trk_`),
    // and `tenants` is rebuilt without `api_key_hash` (SQLite cannot drop a
    // UNIQUE column), so a key lives in exactly one place.
    r#"
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        name        TEXT NOT NULL,
        prefix      TEXT NOT NULL,
        key_hash    TEXT NOT NULL UNIQUE,
        scopes      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    CREATE INDEX api_keys_tenant ON api_keys(tenant_id, created_at);
    INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at)
        SELECT 'key_' || lower(hex(randomblob(10))), id, 'default', 'trk_', api_key_hash,
               'orders,positions,read,admin', created_at
        FROM tenants;

    CREATE TABLE tenants_rebuilt (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    INSERT INTO tenants_rebuilt (id, name, created_at) SELECT id, name, created_at FROM tenants;
    DROP TABLE tenants;
    ALTER TABLE tenants_rebuilt RENAME TO tenants;
    CREATE INDEX tenants_name ON tenants(name, created_at);
    "#,
    // 4 (issue 17, tracking codes hashed only): the plaintext `code` beside
    // `code_hash` goes. A code is shown when it is issued and never again; a
    // lookup hashes what it is given and compares hashes.
    r#"
    ALTER TABLE tracking_codes DROP COLUMN code;
    "#,
    // 5 (issue 17, tenant-scoped vehicles): the latest position is keyed by
    // (tenant, vehicle); rows the engine wrote before it knew tenants (tenant
    // '') could belong to any tenant's truck and are dropped (the next fix of
    // each truck writes its row again).
    r#"
    DELETE FROM vehicle_positions WHERE tenant_key = '';
    ALTER TABLE vehicle_positions RENAME COLUMN tenant_key TO tenant_id;
    DROP INDEX orders_vehicle;
    CREATE INDEX orders_tenant_vehicle ON orders(tenant_id, vehicle_id);
    "#,
    // 6 (issue 17, dead letters): messages and engine events the stream set
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
    // 7 (issue 18, orders at the API edge): a timeline entry is `public`
    // (the tracking page, its JSON and WebSocket show it) or `internal`
    // (dispatchers and drivers only). Notes and exceptions recorded before
    // this had no say and become internal, the default for one posted
    // without `visibility` now: a gate code must not turn public by a
    // migration. Status entries stay public with their notes, as customers
    // already saw them. And `Idempotency-Key`s of order creation, kept 24 h:
    // the key's and the body's hashes (scoped by tenant), the order made, and
    // its first tracking code sealed with the key itself (the store alone
    // cannot open it, see `writes::seal_code`).
    r#"
    ALTER TABLE order_events ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
    UPDATE order_events SET visibility = 'internal' WHERE kind IN ('note', 'exception');

    CREATE TABLE idempotency_keys (
        tenant_id    TEXT NOT NULL REFERENCES tenants(id),
        key_hash     TEXT NOT NULL,
        body_hash    TEXT NOT NULL,
        order_id     TEXT NOT NULL REFERENCES orders(id),
        sealed_code  TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (tenant_id, key_hash)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
    "#,
    // 8 (issue 18, facilities and per-stop states): a stop's own fence, and
    // the time it was skipped (a later stop reached while it was pending).
    r#"
    ALTER TABLE stops ADD COLUMN geofence_json TEXT;
    ALTER TABLE stops ADD COLUMN skipped_at TEXT;
    "#,
    // 9 (issue 19, milestone e-mails): the tenant's notification rules; one
    // row per message to send, unique by its idempotency key (order, rule,
    // event, recipient) and written before anything is sent; every attempt;
    // the one-click unsubscribes; the tracking codes sealed with the server's
    // key (the e-mail needs the link, the store keeps no code in the clear);
    // and how far each outbox reader has read. The e-mail reader starts at the
    // end of the outbox, so turning e-mails on never mails the past.
    r#"
    CREATE TABLE notification_rules (
        id              TEXT PRIMARY KEY,
        tenant_id       TEXT NOT NULL REFERENCES tenants(id),
        event           TEXT NOT NULL,
        channel         TEXT NOT NULL,
        to_customer     INTEGER NOT NULL,
        addresses       TEXT NOT NULL,
        subject         TEXT,
        body            TEXT,
        created_at      TEXT NOT NULL,
        deleted_at      TEXT
    );
    CREATE INDEX notification_rules_tenant ON notification_rules(tenant_id, event);

    CREATE TABLE notifications (
        id               TEXT PRIMARY KEY,
        idempotency_key  TEXT NOT NULL UNIQUE,
        tenant_id        TEXT NOT NULL REFERENCES tenants(id),
        order_id         TEXT NOT NULL REFERENCES orders(id),
        rule_id          TEXT NOT NULL REFERENCES notification_rules(id),
        event            TEXT NOT NULL,
        event_id         TEXT NOT NULL,
        channel          TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        give_up_at       TEXT NOT NULL,
        claimed_by       TEXT,
        claimed_until    TEXT,
        last_error       TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT
    );
    CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
    CREATE INDEX notifications_order ON notifications(order_id, created_at);

    CREATE TABLE notification_attempts (
        notification_id  TEXT NOT NULL REFERENCES notifications(id),
        attempt          INTEGER NOT NULL,
        channel          TEXT NOT NULL,
        node             TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        finished_at      TEXT,
        outcome          TEXT,
        detail           TEXT,
        PRIMARY KEY (notification_id, attempt)
    );

    CREATE TABLE unsubscribe_tokens (
        token_hash  TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        address     TEXT NOT NULL
    );
    CREATE TABLE unsubscribes (
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        address     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (tenant_id, address)
    );

    CREATE TABLE tracking_code_seals (
        code_hash   TEXT PRIMARY KEY,
        sealed      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );

    CREATE TABLE outbox_cursors (
        reader   TEXT PRIMARY KEY,
        last_id  INTEGER NOT NULL
    );
    INSERT INTO outbox_cursors (reader, last_id) SELECT 'email', COALESCE(MAX(id), 0) FROM outbox;
    "#,
    // 10 (issue 19, alerts): a stop's late risk (raised since, by how many
    // minutes; when the opposite condition was first seen, for the hold);
    // an `eta_changed` rule's threshold; the last ETA announced to each
    // subscriber (rule or webhook) per order stop, and when it was last told
    // anything about the order (the interval between two announcements).
    r#"
    ALTER TABLE stops ADD COLUMN late_risk_since TEXT;
    ALTER TABLE stops ADD COLUMN late_risk_by_min INTEGER;
    ALTER TABLE stops ADD COLUMN late_turning_since TEXT;
    CREATE INDEX stops_late_risk ON stops(order_id) WHERE late_risk_since IS NOT NULL;
    ALTER TABLE notification_rules ADD COLUMN min_change_min INTEGER;

    CREATE TABLE eta_announcements (
        subscriber_id  TEXT NOT NULL,
        order_id       TEXT NOT NULL REFERENCES orders(id),
        stop_idx       INTEGER NOT NULL,
        eta            TEXT NOT NULL,
        announced_at   TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, order_id, stop_idx)
    );
    CREATE TABLE eta_change_fired (
        subscriber_id  TEXT NOT NULL,
        order_id       TEXT NOT NULL REFERENCES orders(id),
        fired_at       TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, order_id)
    );
    "#,
    // 11 (issue 19, webhooks): a tenant's endpoints, each with its secret
    // sealed under the server's key (it must sign, so it is kept, never in
    // the clear) and the previous one during a rotation's grace; an endpoint
    // that keeps failing is disabled with a reason. Webhook messages are
    // `notifications` rows of channel `webhook` (one deliverer, one claim):
    // `rule_id` then names the endpoint, so the table is rebuilt without its
    // foreign key to the rules, and gains the signed `body`. Attempts keep
    // the HTTP status and how long each took.
    r#"
    CREATE TABLE webhook_endpoints (
        id                     TEXT PRIMARY KEY,
        tenant_id              TEXT NOT NULL REFERENCES tenants(id),
        url                    TEXT NOT NULL,
        events                 TEXT NOT NULL,
        secret_sealed          TEXT NOT NULL,
        previous_secret_sealed TEXT,
        previous_until         TEXT,
        consecutive_failures   INTEGER NOT NULL DEFAULT 0,
        disabled_at            TEXT,
        disabled_reason        TEXT,
        created_at             TEXT NOT NULL,
        deleted_at             TEXT
    );
    CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created_at);

    CREATE TABLE notifications_new (
        id               TEXT PRIMARY KEY,
        idempotency_key  TEXT NOT NULL UNIQUE,
        tenant_id        TEXT NOT NULL REFERENCES tenants(id),
        order_id         TEXT NOT NULL REFERENCES orders(id),
        rule_id          TEXT NOT NULL,
        event            TEXT NOT NULL,
        event_id         TEXT NOT NULL,
        channel          TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        give_up_at       TEXT NOT NULL,
        claimed_by       TEXT,
        claimed_until    TEXT,
        last_error       TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT,
        body             TEXT
    );
    INSERT INTO notifications_new (id, idempotency_key, tenant_id, order_id, rule_id, event,
        event_id, channel, recipient, state, attempts, next_attempt_at, give_up_at, claimed_by,
        claimed_until, last_error, created_at, sent_at)
      SELECT id, idempotency_key, tenant_id, order_id, rule_id, event, event_id, channel,
        recipient, state, attempts, next_attempt_at, give_up_at, claimed_by, claimed_until,
        last_error, created_at, sent_at FROM notifications;
    DROP TABLE notifications;
    ALTER TABLE notifications_new RENAME TO notifications;
    CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
    CREATE INDEX notifications_order ON notifications(order_id, created_at);
    CREATE INDEX notifications_rule ON notifications(rule_id, created_at);

    ALTER TABLE notification_attempts ADD COLUMN status_code INTEGER;
    ALTER TABLE notification_attempts ADD COLUMN duration_ms INTEGER;

    CREATE TABLE webhook_position_marks (
        endpoint_id  TEXT NOT NULL,
        vehicle_id   TEXT NOT NULL,
        fix_at       TEXT NOT NULL,
        sent_at      TEXT NOT NULL,
        PRIMARY KEY (endpoint_id, vehicle_id)
    );
    "#,
    // 12 (issue 20, analytics): the prediction log names its tenant (so a
    // tenant's range is an index range, not a join over every order) and
    // keeps the free-flow ETA of the same moment, the baseline the accuracy
    // API sets beside ours. Stops are found by arrival time for on-time
    // rates. Tracking-page views are counted per order, UTC day and viewer,
    // where a viewer is a hash of the client address with a salt that lives
    // one day in memory only: no address or user agent is kept, and old
    // days' hashes cannot be linked to each other or recomputed.
    r#"
    ALTER TABLE eta_predictions ADD COLUMN tenant_id TEXT;
    ALTER TABLE eta_predictions ADD COLUMN free_flow_eta TEXT;
    UPDATE eta_predictions
       SET tenant_id = (SELECT o.tenant_id FROM orders o WHERE o.id = eta_predictions.order_id);
    CREATE INDEX eta_predictions_tenant_time ON eta_predictions(tenant_id, predicted_at);
    CREATE INDEX stops_arrived ON stops(arrived_at);

    CREATE TABLE link_views (
        order_id         TEXT NOT NULL REFERENCES orders(id),
        day              TEXT NOT NULL,
        viewer_hash      TEXT NOT NULL,
        views            INTEGER NOT NULL,
        before_delivery  INTEGER NOT NULL,
        after_delivery   INTEGER NOT NULL,
        first_at         TEXT NOT NULL,
        last_at          TEXT NOT NULL,
        PRIMARY KEY (order_id, day, viewer_hash)
    );
    CREATE INDEX link_views_day ON link_views(day);

    -- Retention (`serve --prediction-retention-days`): evaluated predictions
    -- of whole UTC days older than the retention are summed here, per
    -- tenant, day, horizon bucket, stop kind, customer, vehicle and lane
    -- (the H3 cells at resolution 5 of the first pickup and last delivery,
    -- '' when unknown), before the raw rows are deleted. Sums, not
    -- distributions: medians and p90s come from raw rows only. `traces` is
    -- per day, so a trace spanning days counts once per day.
    CREATE TABLE eta_accuracy_daily (
        tenant_id                 TEXT NOT NULL,
        day                       TEXT NOT NULL,
        horizon_bucket            INTEGER NOT NULL,
        stop_kind                 TEXT NOT NULL,
        customer                  TEXT NOT NULL,
        vehicle_id                TEXT NOT NULL,
        lane                      TEXT NOT NULL,
        n                         INTEGER NOT NULL,
        traces                    INTEGER NOT NULL,
        sum_abs_error_s           REAL NOT NULL,
        sum_error_s               REAL NOT NULL,
        sum_sq_error_s            REAL NOT NULL,
        covered                   INTEGER NOT NULL,
        baseline_n                INTEGER NOT NULL,
        baseline_sum_abs_error_s  REAL NOT NULL,
        PRIMARY KEY (tenant_id, day, horizon_bucket, stop_kind, customer, vehicle_id, lane)
    );

    -- Staff pages: a session made by signing in with an API key. The cookie
    -- holds a random token; only its hash is here, and never the key. A
    -- revoked key ends its sessions (they are checked against it).
    CREATE TABLE staff_sessions (
        token_hash  TEXT PRIMARY KEY,
        api_key_id  TEXT NOT NULL REFERENCES api_keys(id),
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );
    "#,
    // 13 (issue 20, bounded accuracy queries): every whole UTC day is summed
    // into `eta_accuracy_daily` once it is over, not only past the
    // retention, and each aggregate keeps the distributions of its absolute
    // errors and window widths (`analytics::Sketch` blobs; NULL for rows
    // summed before), so a month is read from a few rows per day.
    // `eta_accuracy_days` says which tenant-days are summed: `raw_kept` while
    // their raw predictions are still in the log, `stale` when a prediction
    // or an arrival touched the day after it was summed (the query then
    // reads the day's raw rows, and the next pass sums it again). Days
    // rolled up before this migration keep their sums, raw rows gone.
    r#"
    ALTER TABLE eta_accuracy_daily ADD COLUMN abs_error_sketch BLOB;
    ALTER TABLE eta_accuracy_daily ADD COLUMN width_sketch BLOB;
    CREATE TABLE eta_accuracy_days (
        tenant_id  TEXT NOT NULL,
        day        TEXT NOT NULL,
        raw_kept   INTEGER NOT NULL,
        stale      INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, day)
    );
    INSERT OR IGNORE INTO eta_accuracy_days (tenant_id, day, raw_kept, stale)
        SELECT DISTINCT tenant_id, day, 0, 0 FROM eta_accuracy_daily;
    "#,
    // 14 (issue 23, branding and privacy): a tenant's brand (name, colour,
    // support contact; the logo's bytes with their sniffed type, size and
    // SHA-256, the public URL's ETag) and its location privacy (off unless
    // a row says on). One row per tenant each, absent until set.
    r#"
    CREATE TABLE tenant_branding (
        tenant_id      TEXT PRIMARY KEY REFERENCES tenants(id),
        display_name   TEXT,
        primary_color  TEXT,
        support_phone  TEXT,
        support_email  TEXT,
        support_url    TEXT,
        logo           BLOB,
        logo_type      TEXT,
        logo_sha256    TEXT,
        logo_width     INTEGER,
        logo_height    INTEGER,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE tenant_privacy (
        tenant_id        TEXT PRIMARY KEY REFERENCES tenants(id),
        enabled          INTEGER NOT NULL,
        exact_within_m   REAL NOT NULL,
        cell_resolution  INTEGER NOT NULL,
        updated_at       TEXT NOT NULL
    );
    "#,
    // 15 (issue 21, several nodes): each tracker's memory of its truck, by
    // order, found by vehicle; replaces the one `engine.trackers` row of
    // `learned_state`, which several nodes would overwrite with each other's.
    r#"
    CREATE TABLE tracker_memories (
        tenant_id        TEXT NOT NULL,
        order_id         TEXT NOT NULL,
        vehicle_id       TEXT NOT NULL,
        state            TEXT NOT NULL,
        applied_through  TEXT NOT NULL,
        saved_at         TEXT NOT NULL,
        PRIMARY KEY (tenant_id, order_id)
    );
    CREATE INDEX tracker_memories_vehicle ON tracker_memories(tenant_id, vehicle_id);
    DELETE FROM learned_state WHERE name = 'engine.trackers';
    -- How many positions each vehicle's row took as its newest, and how many
    -- times its newest one came again: counted in the store, so that "every
    -- position applied exactly once" across nodes can be checked.
    ALTER TABLE vehicle_positions ADD COLUMN applied BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE vehicle_positions ADD COLUMN replayed BIGINT NOT NULL DEFAULT 0;
    "#,
    // 16: the live orders of a vehicle, oldest first, read for every position
    // batch: with (tenant_id, vehicle_id) alone SQLite's planner preferred
    // `orders_tenant` to avoid the sort, and so walked every order of the
    // tenant, delivered ones included, for each vehicle.
    r#"
    DROP INDEX orders_tenant_vehicle;
    CREATE INDEX orders_tenant_vehicle ON orders(tenant_id, vehicle_id, created_at);
    "#,
    // 17 (issue 21, hand-over between nodes): which node holds which truck,
    // and when each node was last heard from. A truck's new owner takes its
    // positions only once the old owner has let go of it, or fell silent.
    r#"
    CREATE TABLE vehicle_holds (
        tenant_id   TEXT NOT NULL,
        vehicle_id  TEXT NOT NULL,
        holder      TEXT NOT NULL,
        held_since  TEXT NOT NULL,
        PRIMARY KEY (tenant_id, vehicle_id)
    );
    CREATE INDEX vehicle_holds_holder ON vehicle_holds(holder);
    CREATE TABLE node_beats (
        holder     TEXT PRIMARY KEY,
        node_name  TEXT NOT NULL,
        seen_at    TEXT NOT NULL
    );
    "#,
];

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_up_to(conn, MIGRATIONS.len())
}

/// Runs the migrations not yet run, up to the `target`-th.
///
/// Foreign keys are off while they run and checked before each commit: the
/// way SQLite rebuilds a table (create, copy, drop, rename) would otherwise
/// trip over the rows that reference the table being dropped. The setting
/// can only change outside a transaction, hence here and not in the SQL.
fn migrate_up_to(conn: &mut Connection, target: usize) -> Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if done >= target {
        return Ok(());
    }
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Secrets a migration removes (plaintext tracking codes) are overwritten
    // on disk, not merely unlinked from the b-tree.
    let secure_delete: i64 = conn.query_row("PRAGMA secure_delete", [], |row| row.get(0))?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let result = (|| -> Result<()> {
        for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
                .optional()?;
            if let Some(table) = broken {
                return Err(Error::store_permanent(format!(
                    "migration {} left rows in `{table}` whose foreign key points nowhere",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    })();
    conn.pragma_update(None, "secure_delete", secure_delete)?;
    if enforced {
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    result
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

    /// Issue 18: notes and exceptions recorded before visibility existed
    /// become internal (a gate code must not turn public by a migration);
    /// status entries keep their notes public, as customers saw them.
    #[test]
    fn old_notes_and_exceptions_become_internal_and_statuses_stay_public() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        let visibility_at = MIGRATIONS
            .iter()
            .position(|m| m.contains("ADD COLUMN visibility"))
            .expect("the visibility migration");
        migrate_up_to(&mut conn, visibility_at).expect("the schema before visibility");
        conn.execute_batch(
            "INSERT INTO tenants (id, name, created_at) VALUES ('ten_1', 'T', '2025-01-01T00:00:00.000Z');
             INSERT INTO orders (id, tenant_id, reference, customer_name, status, created_at, updated_at) \
               VALUES ('ord_1', 'ten_1', 'R', 'C', 'dispatched', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z');
             INSERT INTO order_events (id, order_id, at, kind, status, note, source, recorded_at) VALUES
               ('evt_1', 'ord_1', '2025-01-01T00:00:01.000Z', 'status', 'dispatched', 'On the way', 'dispatcher', '2025-01-01T00:00:01.000Z'),
               ('evt_2', 'ord_1', '2025-01-01T00:00:02.000Z', 'note', NULL, 'Gate code 4471', 'driver', '2025-01-01T00:00:02.000Z'),
               ('evt_3', 'ord_1', '2025-01-01T00:00:03.000Z', 'exception', NULL, 'Reefer alarm', 'driver', '2025-01-01T00:00:03.000Z');",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrates");
        let events = crate::rows::events(&conn, &engine::OrderId("ord_1".into())).expect("reads");
        let visibility: Vec<&str> = events.iter().map(|e| e.visibility.as_str()).collect();
        assert_eq!(visibility, ["public", "internal", "internal"]);
    }

    /// Issue 17: a database made before API keys and hashed-only codes keeps
    /// working: its tenant's key authenticates (as `default`, every scope),
    /// its order's link still resolves, and neither secret is left readable.
    #[test]
    fn an_old_database_moves_its_key_and_forgets_its_plaintext_codes() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("fk on");
        let keys_at = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE api_keys"))
            .expect("the API keys migration");
        migrate_up_to(&mut conn, keys_at).expect("the schema before API keys");
        conn.execute_batch(
            "INSERT INTO tenants (id, name, api_key_hash, created_at) \
               VALUES ('ten_old', 'Old Brokerage', 'hash-of-old-key', '2025-01-01T00:00:00.000Z');
             INSERT INTO orders (id, tenant_id, reference, customer_name, status, \
                                 created_at, updated_at) \
               VALUES ('ord_old', 'ten_old', 'OLD-1', 'C', 'created', \
                       '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z');
             INSERT INTO tracking_codes (code_hash, code, order_id, created_at) \
               VALUES ('hash-of-code', 'plaintextcodeplaintextco', 'ord_old', \
                       '2025-01-01T00:00:00.000Z');",
        )
        .expect("old rows");

        migrate(&mut conn).expect("migrates");

        let (tenant, key) = crate::rows::api_key_by_hash(&conn, "hash-of-old-key")
            .expect("reads")
            .expect("the old key still authenticates");
        assert_eq!(tenant.id.as_str(), "ten_old");
        assert_eq!(key.name, "default");
        assert_eq!(key.scopes, crate::model::Scope::ALL);
        assert_eq!(
            crate::rows::order_by_code_hash(&conn, "hash-of-code")
                .expect("reads")
                .map(|o| o.0),
            Some("ord_old".to_owned())
        );
        let columns = |table: &str| -> Vec<String> {
            let mut stmt = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .expect("table info");
            stmt.query_map([], |r| r.get(0))
                .expect("columns")
                .collect::<rusqlite::Result<_>>()
                .expect("names")
        };
        assert!(!columns("tracking_codes").contains(&"code".to_owned()));
        assert!(!columns("tenants").contains(&"api_key_hash".to_owned()));
        let enforced: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("pragma");
        assert!(enforced, "foreign keys are enforced again after migrating");
    }
}
