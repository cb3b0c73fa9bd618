//! The PostgreSQL schema, as an ordered list of migrations recorded in
//! `schema_migrations` (one row per migration run). It means what SQLite's
//! schema (`store::migrations`) means, table for table and column for
//! column, so one row mapping (`store::records`) serves both: times are the
//! same RFC 3339 UTC text with milliseconds and a `Z` (text order is time
//! order), ids the same random text. What differs is only the dialect:
//! `BIGINT`, `DOUBLE PRECISION`, `BYTEA`, `BOOLEAN`, and an identity column
//! `seq` where SQLite orders by its implicit `rowid`.
//!
//! Several nodes may open the database at the same moment; migrations run
//! under a session advisory lock, so exactly one of them migrates and the
//! others find the work done.

use crate::error::{Error, Result};

/// The advisory lock every node takes to migrate (an arbitrary constant,
/// "tracker" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_7261_636b_6572;

const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's migrations 1 to 14, as it stands after them.
    r#"
    CREATE TABLE tenants (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX tenants_name ON tenants(name, created_at);

    CREATE TABLE api_keys (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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

    CREATE TABLE orders (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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
    CREATE INDEX orders_tenant ON orders(tenant_id, seq);
    CREATE INDEX orders_tenant_reference ON orders(tenant_id, reference);
    CREATE INDEX orders_tenant_vehicle ON orders(tenant_id, vehicle_id);

    CREATE TABLE stops (
        order_id            TEXT NOT NULL REFERENCES orders(id),
        idx                 BIGINT NOT NULL,
        kind                TEXT NOT NULL,
        name                TEXT NOT NULL,
        address             TEXT NOT NULL,
        lat                 DOUBLE PRECISION NOT NULL,
        lon                 DOUBLE PRECISION NOT NULL,
        time_zone           TEXT NOT NULL,
        window_from         TEXT,
        window_to           TEXT,
        arrived_at          TEXT,
        departed_at         TEXT,
        eta_json            TEXT,
        geofence_json       TEXT,
        skipped_at          TEXT,
        late_risk_since     TEXT,
        late_risk_by_min    BIGINT,
        late_turning_since  TEXT,
        PRIMARY KEY (order_id, idx)
    );
    CREATE INDEX stops_late_risk ON stops(order_id) WHERE late_risk_since IS NOT NULL;
    CREATE INDEX stops_arrived ON stops(arrived_at);

    CREATE TABLE order_events (
        seq          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id           TEXT PRIMARY KEY,
        order_id     TEXT NOT NULL REFERENCES orders(id),
        at           TEXT NOT NULL,
        kind         TEXT NOT NULL,
        status       TEXT,
        note         TEXT,
        source       TEXT NOT NULL,
        stop_idx     BIGINT,
        recorded_at  TEXT NOT NULL,
        visibility   TEXT NOT NULL DEFAULT 'public'
    );
    CREATE INDEX order_events_order ON order_events(order_id, at);

    CREATE TABLE pod_files (
        id            TEXT PRIMARY KEY,
        order_id      TEXT NOT NULL REFERENCES orders(id),
        content_type  TEXT NOT NULL,
        file_name     TEXT,
        size_bytes    BIGINT NOT NULL,
        sha256        TEXT NOT NULL,
        signed_by     TEXT,
        note          TEXT,
        taken_at      TEXT,
        uploaded_at   TEXT NOT NULL,
        data          BYTEA NOT NULL
    );
    CREATE INDEX pod_files_order ON pod_files(order_id, uploaded_at);

    CREATE TABLE tracking_codes (
        code_hash   TEXT PRIMARY KEY,
        order_id    TEXT NOT NULL REFERENCES orders(id),
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    );
    CREATE INDEX tracking_codes_order ON tracking_codes(order_id);

    CREATE TABLE vehicle_positions (
        tenant_id    TEXT NOT NULL,
        vehicle_id   TEXT NOT NULL,
        at           TEXT NOT NULL,
        lat          DOUBLE PRECISION NOT NULL,
        lon          DOUBLE PRECISION NOT NULL,
        speed_mps    DOUBLE PRECISION,
        heading_deg  DOUBLE PRECISION,
        received_at  TEXT NOT NULL,
        PRIMARY KEY (tenant_id, vehicle_id)
    );

    CREATE TABLE position_trail (
        order_id   TEXT NOT NULL REFERENCES orders(id),
        at         TEXT NOT NULL,
        lat        DOUBLE PRECISION NOT NULL,
        lon        DOUBLE PRECISION NOT NULL,
        speed_mps  DOUBLE PRECISION,
        PRIMARY KEY (order_id, at)
    );

    CREATE TABLE eta_predictions (
        id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id              TEXT NOT NULL REFERENCES orders(id),
        stop_idx              BIGINT NOT NULL,
        predicted_at          TEXT NOT NULL,
        eta                   TEXT NOT NULL,
        p10                   TEXT NOT NULL,
        p90                   TEXT NOT NULL,
        horizon_s             DOUBLE PRECISION NOT NULL,
        remaining_distance_m  DOUBLE PRECISION NOT NULL,
        remaining_drive_s     DOUBLE PRECISION NOT NULL,
        reasons               TEXT NOT NULL,
        actual_arrival        TEXT,
        tenant_id             TEXT,
        free_flow_eta         TEXT
    );
    CREATE INDEX eta_predictions_stop ON eta_predictions(order_id, stop_idx, predicted_at);
    CREATE INDEX eta_predictions_tenant_time ON eta_predictions(tenant_id, predicted_at);

    CREATE TABLE outbox (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id     TEXT NOT NULL,
        topic         TEXT NOT NULL,
        payload       TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        attempts      BIGINT NOT NULL DEFAULT 0,
        delivered_at  TEXT
    );
    CREATE INDEX outbox_pending ON outbox(id) WHERE delivered_at IS NULL;

    CREATE TABLE learned_state (
        name      TEXT PRIMARY KEY,
        state     TEXT NOT NULL,
        saved_at  TEXT NOT NULL
    );

    CREATE TABLE dead_letters (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id    TEXT,
        origin       TEXT NOT NULL,
        topic        TEXT,
        partition    INTEGER,
        "offset"     BIGINT,
        size_bytes   BIGINT NOT NULL,
        reason       TEXT NOT NULL,
        detail       TEXT NOT NULL,
        payload      BYTEA NOT NULL,
        key          BYTEA,
        received_at  TEXT NOT NULL
    );
    CREATE INDEX dead_letters_received ON dead_letters(received_at);

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

    CREATE TABLE notification_rules (
        id              TEXT PRIMARY KEY,
        tenant_id       TEXT NOT NULL REFERENCES tenants(id),
        event           TEXT NOT NULL,
        channel         TEXT NOT NULL,
        to_customer     BOOLEAN NOT NULL,
        addresses       TEXT NOT NULL,
        subject         TEXT,
        body            TEXT,
        created_at      TEXT NOT NULL,
        deleted_at      TEXT,
        min_change_min  BIGINT
    );
    CREATE INDEX notification_rules_tenant ON notification_rules(tenant_id, event);

    CREATE TABLE notifications (
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
        attempts         BIGINT NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        give_up_at       TEXT NOT NULL,
        claimed_by       TEXT,
        claimed_until    TEXT,
        last_error       TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT,
        body             TEXT
    );
    CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
    CREATE INDEX notifications_order ON notifications(order_id, created_at);
    CREATE INDEX notifications_rule ON notifications(rule_id, created_at);

    CREATE TABLE notification_attempts (
        notification_id  TEXT NOT NULL REFERENCES notifications(id),
        attempt          BIGINT NOT NULL,
        channel          TEXT NOT NULL,
        node             TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        finished_at      TEXT,
        outcome          TEXT,
        detail           TEXT,
        status_code      BIGINT,
        duration_ms      BIGINT,
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
        last_id  BIGINT NOT NULL
    );
    INSERT INTO outbox_cursors (reader, last_id) VALUES ('email', 0);

    CREATE TABLE eta_announcements (
        subscriber_id  TEXT NOT NULL,
        order_id       TEXT NOT NULL REFERENCES orders(id),
        stop_idx       BIGINT NOT NULL,
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

    CREATE TABLE webhook_endpoints (
        id                     TEXT PRIMARY KEY,
        tenant_id              TEXT NOT NULL REFERENCES tenants(id),
        url                    TEXT NOT NULL,
        events                 TEXT NOT NULL,
        secret_sealed          TEXT NOT NULL,
        previous_secret_sealed TEXT,
        previous_until         TEXT,
        consecutive_failures   BIGINT NOT NULL DEFAULT 0,
        disabled_at            TEXT,
        disabled_reason        TEXT,
        created_at             TEXT NOT NULL,
        deleted_at             TEXT
    );
    CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created_at);

    CREATE TABLE webhook_position_marks (
        endpoint_id  TEXT NOT NULL,
        vehicle_id   TEXT NOT NULL,
        fix_at       TEXT NOT NULL,
        sent_at      TEXT NOT NULL,
        PRIMARY KEY (endpoint_id, vehicle_id)
    );

    CREATE TABLE link_views (
        order_id         TEXT NOT NULL REFERENCES orders(id),
        day              TEXT NOT NULL,
        viewer_hash      TEXT NOT NULL,
        views            BIGINT NOT NULL,
        before_delivery  BIGINT NOT NULL,
        after_delivery   BIGINT NOT NULL,
        first_at         TEXT NOT NULL,
        last_at          TEXT NOT NULL,
        PRIMARY KEY (order_id, day, viewer_hash)
    );
    CREATE INDEX link_views_day ON link_views(day);

    CREATE TABLE eta_accuracy_daily (
        tenant_id                 TEXT NOT NULL,
        day                       TEXT NOT NULL,
        horizon_bucket            BIGINT NOT NULL,
        stop_kind                 TEXT NOT NULL,
        customer                  TEXT NOT NULL,
        vehicle_id                TEXT NOT NULL,
        lane                      TEXT NOT NULL,
        n                         BIGINT NOT NULL,
        traces                    BIGINT NOT NULL,
        sum_abs_error_s           DOUBLE PRECISION NOT NULL,
        sum_error_s               DOUBLE PRECISION NOT NULL,
        sum_sq_error_s            DOUBLE PRECISION NOT NULL,
        covered                   BIGINT NOT NULL,
        baseline_n                BIGINT NOT NULL,
        baseline_sum_abs_error_s  DOUBLE PRECISION NOT NULL,
        abs_error_sketch          BYTEA,
        width_sketch              BYTEA,
        PRIMARY KEY (tenant_id, day, horizon_bucket, stop_kind, customer, vehicle_id, lane)
    );
    CREATE TABLE eta_accuracy_days (
        tenant_id  TEXT NOT NULL,
        day        TEXT NOT NULL,
        raw_kept   BOOLEAN NOT NULL,
        stale      BOOLEAN NOT NULL,
        PRIMARY KEY (tenant_id, day)
    );

    CREATE TABLE staff_sessions (
        token_hash  TEXT PRIMARY KEY,
        api_key_id  TEXT NOT NULL REFERENCES api_keys(id),
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );

    CREATE TABLE tenant_branding (
        tenant_id      TEXT PRIMARY KEY REFERENCES tenants(id),
        display_name   TEXT,
        primary_color  TEXT,
        support_phone  TEXT,
        support_email  TEXT,
        support_url    TEXT,
        logo           BYTEA,
        logo_type      TEXT,
        logo_sha256    TEXT,
        logo_width     BIGINT,
        logo_height    BIGINT,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE tenant_privacy (
        tenant_id        TEXT PRIMARY KEY REFERENCES tenants(id),
        enabled          BOOLEAN NOT NULL,
        exact_within_m   DOUBLE PRECISION NOT NULL,
        cell_resolution  BIGINT NOT NULL,
        updated_at       TEXT NOT NULL
    );
    "#,
    // 2: SQLite's migration 15 (trackers' memories by order, found by vehicle).
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
    // 3: a vehicle's live orders, oldest first, are read for every position
    // batch; the index gives them in that order (as SQLite's 16th does).
    r#"
    DROP INDEX orders_tenant_vehicle;
    CREATE INDEX orders_tenant_vehicle ON orders(tenant_id, vehicle_id, created_at, seq);
    "#,
    // 4: SQLite's migration 17 (which node holds which truck; nodes' beats).
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

/// Brings the database (the first schema of the connection's
/// `search_path`) to the latest schema, holding the migration lock.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = migrate_locked(client).await;
    // The lock is the session's: release it even when a migration failed,
    // or the pooled connection would hold it for its whole life.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(client: &mut tokio_postgres::Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version     BIGINT PRIMARY KEY, \
                 applied_at  TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    let done: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let known = MIGRATIONS.len() as i64;
    if done > known {
        return Err(Error::store_permanent(format!(
            "the database's schema is at version {done}, newer than this build's {known}; \
             run a newer tracker"
        )));
    }
    for (version, sql) in (1_i64..).zip(MIGRATIONS.iter()).skip(done as usize) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
