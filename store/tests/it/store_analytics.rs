//! The analytics sub-store's contract, run on both backends (`sqlite::NAME`
//! and `postgres::NAME`, as `store_conformance.rs`): a few recorded ETAs and
//! arrivals of two tenants give the accuracy figures worked out by hand,
//! from raw rows and again from summed days, through a late arrival that
//! makes a summed day stale and a retention that prunes raw rows; reached
//! stops and exports list the rows; staff sessions live until they expire,
//! end or lose their key; tracking-page views are counted and summarised
//! per tenant. (Two nodes summing at once, and one history read alike on
//! both backends, are `store_analytics_nodes.rs`.)

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::history::*;
use engine::OrderStatus;
use store::analytics::{AnalyticsFilter, Cell, ExportKind, ExportTable, GroupBy, PageView};
use store::{Error, Order, Store, create_tenant, secret_hash};

async fn accuracy_reads_alike_from_raw_rows_and_summed_days(store: Arc<dyn Store>) {
    let h = record_history(&*store).await;
    let by_customer =
        figures(&accuracy(&*store, &h.acme, first_days(), GroupBy::Customer, false).await);
    assert_eq!(
        by_customer,
        vec![
            ("Douro Wines".into(), 1, 600.0, -600.0, 1.0, Some(900.0)),
            ("Ribeira Foods".into(), 4, 900.0, -600.0, 0.75, Some(1050.0)),
        ],
        "from raw rows"
    );

    let first = analytics(&*store)
        .summarize_days(morning_after(), None)
        .await
        .expect("a pass");
    assert_eq!(first.days_summed, 3, "Acme's 2nd and 3rd, the other's 2nd");
    assert_eq!(first.raw_deleted, 0, "no retention");
    let inputs = analytics(&*store)
        .accuracy_inputs(h.acme.clone(), first_days(), true)
        .await
        .expect("accuracy inputs");
    assert!(inputs.raw.is_empty(), "whole summed days are read summed");
    assert!(!inputs.daily.is_empty());
    let summed = accuracy(&*store, &h.acme, first_days(), GroupBy::Customer, true).await;
    assert_eq!(figures(&summed), by_customer, "from aggregates");
    assert!(summed.iter().all(|g| !g.quantiles_exact));
    let again = analytics(&*store)
        .summarize_days(morning_after(), None)
        .await
        .expect("a pass");
    assert_eq!(again.days_summed, 0, "nothing new to sum");

    // Douro's delivery is reached late: the 3rd, which holds its ETA, is
    // stale and read raw until a pass sums it again.
    use OrderStatus::AtDelivery;
    move_to(&*store, &h.acme, &h.douro, AtDelivery, t(4, 0, 35), Some(1)).await;
    let douro = ("Douro Wines".into(), 2, 450.0, -450.0, 1.0, Some(750.0));
    let stale = figures(&accuracy(&*store, &h.acme, first_days(), GroupBy::Customer, true).await);
    assert_eq!(stale[0], douro, "the late arrival counts at once");

    // A pass with a day's retention sums the stale day and prunes the raw
    // rows of the 2nd and the 3rd (Acme's six, the other tenant's one).
    let pruning = analytics(&*store)
        .summarize_days(morning_after(), Some(1))
        .await
        .expect("a pass");
    assert_eq!(pruning.days_summed, 1);
    assert_eq!(pruning.raw_deleted, 7);
    let kept = figures(&accuracy(&*store, &h.acme, first_days(), GroupBy::Customer, false).await);
    assert_eq!(kept[0], douro, "pruned days are read from aggregates");
    assert_eq!(kept[1].1, 4);
    let by_day = figures(&accuracy(&*store, &h.acme, first_days(), GroupBy::Day, true).await);
    let days: Vec<(&str, u64)> = by_day.iter().map(|g| (g.0.as_str(), g.1)).collect();
    assert_eq!(days, vec![("2026-03-02", 4), ("2026-03-03", 2)]);
    let last = analytics(&*store)
        .summarize_days(morning_after(), Some(1))
        .await
        .expect("a pass");
    assert_eq!((last.days_summed, last.raw_deleted), (0, 0));
}

/// A column of an export, by name.
fn column<'a>(table: &'a ExportTable, name: &str) -> Vec<&'a Cell> {
    let i = table
        .columns
        .iter()
        .position(|c| c.0 == name)
        .expect("the column exists");
    table.rows.iter().map(|r| &r[i]).collect()
}

async fn reached_stops_and_exports_list_the_rows(store: Arc<dyn Store>) {
    let h = record_history(&*store).await;
    let visits = analytics(&*store)
        .stop_visits(h.acme.clone(), first_days())
        .await
        .expect("visits");
    let mut reached: Vec<(String, u32, DateTime<Utc>)> = visits
        .iter()
        .map(|v| (v.customer.clone(), v.stop_index, v.arrived_at))
        .collect();
    reached.sort();
    assert_eq!(
        reached,
        vec![
            ("Douro Wines".into(), 0, t(3, 8, 5)),
            ("Ribeira Foods".into(), 0, t(2, 8, 0)),
            ("Ribeira Foods".into(), 1, t(2, 10, 30)),
            ("Ribeira Foods".into(), 2, t(3, 0, 50)),
        ],
        "Acme's stops only"
    );
    assert!(visits.iter().all(|v| v.lane_ends.is_some()));
    let delivered = AnalyticsFilter {
        stop_kind: Some("delivery".into()),
        vehicle_id: Some("T1".into()),
        ..first_days()
    };
    let filtered = analytics(&*store)
        .stop_visits(h.acme.clone(), delivered)
        .await
        .expect("visits");
    assert_eq!(filtered.len(), 2);

    let export = |kind, from, to| analytics(&*store).export_table(kind, from, to);
    let predictions = export(ExportKind::Predictions, t(1, 0, 0), t(5, 0, 0))
        .await
        .expect("export");
    assert_eq!(predictions.rows.len(), 7, "every tenant's predictions");
    assert_eq!(
        column(&predictions, "predicted_at")[..2],
        [
            &Cell::Time(Some(t(2, 6, 30))),
            &Cell::Time(Some(t(2, 7, 0)))
        ],
        "oldest first"
    );
    assert_eq!(
        column(&predictions, "tenant_id")[0],
        &Cell::Text(Some(h.other.0.clone()))
    );
    assert_eq!(
        column(&predictions, "actual_arrival")[6],
        &Cell::Time(None),
        "Douro's delivery is not reached yet"
    );
    assert_eq!(column(&predictions, "stop_index")[2], &Cell::Int(Some(1)));
    assert_eq!(
        column(&predictions, "horizon_s")[1],
        &Cell::Float(Some(4200.0))
    );

    let arrivals = export(ExportKind::Arrivals, t(2, 0, 0), t(3, 0, 0))
        .await
        .expect("export");
    assert_eq!(
        column(&arrivals, "arrived_at"),
        [
            &Cell::Time(Some(t(2, 8, 0))),
            &Cell::Time(Some(t(2, 8, 0))),
            &Cell::Time(Some(t(2, 10, 30)))
        ]
    );
    let orders = export(
        ExportKind::Orders,
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::hours(1),
    )
    .await
    .expect("export");
    let exported = column(&orders, "order_id");
    for id in [&h.ribeira.id, &h.douro.id] {
        let cell = Cell::Text(Some(id.0.clone()));
        assert!(exported.contains(&&cell), "Acme's order {id:?} is exported");
    }
    assert_eq!(orders.rows.len(), 3);
    assert!(
        column(&orders, "n_stops")
            .iter()
            .all(|c| **c == Cell::Int(Some(3)))
    );
}

async fn staff_sessions_live_until_they_expire_end_or_lose_their_key(store: Arc<dyn Store>) {
    let acme = create_tenant(&*store, "Acme").await.expect("tenant").0.id;
    let key = store.api_keys(acme.clone()).await.expect("keys")[0].clone();
    let now = t(2, 9, 0);
    let sessions = analytics(&*store);
    let open = |token: &str, minutes| {
        sessions.create_staff_session(
            secret_hash(token),
            key.id.clone(),
            now + Duration::minutes(minutes),
        )
    };
    let who = |token: &str, at| sessions.staff_session(secret_hash(token), at);

    open("morning", 60).await.expect("session kept");
    let (tenant, by) = who("morning", now).await.expect("reads").expect("live");
    assert_eq!((tenant.id, by.id), (acme.clone(), key.id.clone()));
    assert!(
        who("morning", now + Duration::minutes(60))
            .await
            .expect("reads")
            .is_none(),
        "expired at its end"
    );
    assert!(who("unknown", now).await.expect("reads").is_none());

    // Ending one session drops it and every expired one.
    open("short", 10).await.expect("session kept");
    open("evening", 600).await.expect("session kept");
    sessions
        .end_staff_session(secret_hash("evening"), now + Duration::minutes(90))
        .await
        .expect("ended");
    assert!(who("evening", now).await.expect("reads").is_none(), "ended");
    assert!(
        who("short", now).await.expect("reads").is_none(),
        "expired sessions are dropped"
    );
    assert!(
        who("morning", now).await.expect("reads").is_none(),
        "dropped with the expired ones"
    );

    open("late", 60).await.expect("session kept");
    store
        .revoke_api_key(acme.clone(), key.id.clone())
        .await
        .expect("revoked");
    assert!(
        who("late", now).await.expect("reads").is_none(),
        "a revoked key ends its sessions"
    );
}

fn view(order: &Order, viewer: &str, at: DateTime<Utc>, delivered: bool) -> PageView {
    PageView {
        order_id: order.id.0.clone(),
        viewer_hash: viewer.into(),
        at,
        delivered,
    }
}

async fn page_views_are_counted_and_summarised_per_tenant(store: Arc<dyn Store>) {
    let acme = create_tenant(&*store, "Acme").await.expect("tenant").0.id;
    let other = create_tenant(&*store, "Other Freight")
        .await
        .expect("tenant")
        .0
        .id;
    let viewed = new_load(&*store, &acme, "Ribeira Foods", "T1", 2).await;
    let unseen = new_load(&*store, &acme, "Douro Wines", "T2", 2).await;
    let theirs = new_load(&*store, &other, "Their Customer", "T9", 2).await;
    let views = analytics(&*store);
    for v in [
        view(&viewed, "viewer-1", t(2, 9, 0), false),
        view(&viewed, "viewer-1", t(2, 9, 30), false),
        view(&viewed, "viewer-2", t(2, 18, 0), true),
        view(&viewed, "viewer-1", t(3, 8, 0), true),
        view(&theirs, "viewer-3", t(2, 9, 0), false),
    ] {
        views.record_view(v).await.expect("counted");
    }

    let counts = views
        .order_views(acme.clone(), viewed.id.clone())
        .await
        .expect("views");
    assert_eq!(counts.views, 4);
    assert_eq!(counts.unique_viewers, 3, "distinct viewers per day, summed");
    assert_eq!(
        (counts.views_before_delivery, counts.views_after_delivery),
        (2, 2)
    );
    assert_eq!(
        counts.first_view_at.as_deref(),
        Some("2026-03-02T09:00:00Z")
    );
    assert_eq!(counts.last_view_at.as_deref(), Some("2026-03-03T08:00:00Z"));
    let none = views
        .order_views(acme.clone(), unseen.id.clone())
        .await
        .expect("views");
    assert_eq!((none.views, none.first_view_at), (0, None));
    assert!(matches!(
        views.order_views(other.clone(), viewed.id.clone()).await,
        Err(Error::NotFound(_))
    ));

    let (from, to) = (
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::hours(1),
    );
    let summary = views
        .views_summary(acme.clone(), from, to)
        .await
        .expect("summary");
    assert_eq!(
        (summary.shipments, summary.viewed, summary.views),
        (2, 1, 4)
    );
    assert_eq!(summary.viewed_share, 0.5);
    let theirs = views.views_summary(other, from, to).await.expect("summary");
    assert_eq!((theirs.shipments, theirs.viewed, theirs.views), (1, 1, 1));
    let before = views
        .views_summary(acme, from - Duration::days(1), from)
        .await
        .expect("summary");
    assert_eq!((before.shipments, before.viewed_share), (0, 0.0));
}

store::on_both_stores!(
    accuracy_reads_alike_from_raw_rows_and_summed_days,
    reached_stops_and_exports_list_the_rows,
    staff_sessions_live_until_they_expire_end_or_lose_their_key,
    page_views_are_counted_and_summarised_per_tenant,
);
