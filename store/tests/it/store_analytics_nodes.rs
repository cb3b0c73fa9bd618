//! The analytics sub-store across nodes and backends. Two PostgreSQL nodes
//! running the daily summary pass at once make exactly the aggregates (and
//! prune exactly the rows) one node makes alone: no day is summed twice.
//! And one history recorded on SQLite and on PostgreSQL reads back alike:
//! accuracy by every grouping, from raw rows, from summed days and from a
//! stale day, reached stops, exports and views.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::history::*;
use common::stores;
use engine::OrderStatus;
use store::analytics::{
    AccuracyGroup, AnalyticsFilter, DEFAULT_LANE_RES, ExportKind, GroupBy, PageView,
};
use store::{Store, TenantId, create_tenant, open_store};

/// Every grouping of the accuracy figures.
fn groupings() -> Vec<GroupBy> {
    let lanes = road_graph::h3_resolution(DEFAULT_LANE_RES).expect("a resolution");
    vec![
        GroupBy::Horizon,
        GroupBy::StopKind,
        GroupBy::Customer,
        GroupBy::Vehicle,
        GroupBy::Lane(lanes),
        GroupBy::Day,
    ]
}

/// The whole of March.
fn march() -> AnalyticsFilter {
    AnalyticsFilter {
        from: t(1, 0, 0),
        to: t(31, 0, 0),
        ..first_days()
    }
}

/// The tenant's accuracy over March by every grouping.
async fn every_grouping(store: &dyn Store, tenant: &TenantId, summed: bool) -> Vec<AccuracyGroup> {
    let mut all = Vec::new();
    for by in groupings() {
        all.extend(accuracy(store, tenant, march(), by, summed).await);
    }
    all
}

/// Two tenants with a load a day from the 2nd to the 9th.
async fn two_tenants_eight_days(store: &dyn Store) -> [TenantId; 2] {
    let mut tenants = Vec::new();
    for (name, customer) in [("Acme", "Ribeira Foods"), ("Other Freight", "Douro Wines")] {
        let tenant = create_tenant(store, name).await.expect("tenant").0.id;
        record_days(store, &tenant, customer, 2..=9).await;
        tenants.push(tenant);
    }
    [tenants[0].clone(), tenants[1].clone()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_summing_at_once_make_what_one_node_makes() {
    let Some(shared) = stores::postgres().await else {
        return;
    };
    let Some(alone) = stores::postgres().await else {
        return;
    };
    let node_a = shared.store.clone();
    let node_b = open_store(&shared.url).await.expect("a second node opens");
    let ours = two_tenants_eight_days(&*node_a).await;
    let theirs = two_tenants_eight_days(&*alone.store).await;

    // On the 12th, keeping three days of raw rows: every day is summed,
    // the 2nd to the 8th then pruned.
    let now = t(12, 10, 0);
    let (a, b) = tokio::join!(
        analytics(&*node_a).summarize_days(now, Some(3)),
        analytics(&*node_b).summarize_days(now, Some(3)),
    );
    let (a, b) = (a.expect("node A's pass"), b.expect("node B's pass"));
    let one = analytics(&*alone.store)
        .summarize_days(now, Some(3))
        .await
        .expect("the lone pass");
    assert_eq!(one.days_summed, 16, "two tenants, eight days");
    assert_eq!(
        one.raw_deleted,
        2 * 7 * 2,
        "two ETAs a day, seven days pruned"
    );
    assert_eq!(
        a.days_summed + b.days_summed,
        one.days_summed,
        "{a:?} {b:?}"
    );
    assert_eq!(
        a.raw_deleted + b.raw_deleted,
        one.raw_deleted,
        "{a:?} {b:?}"
    );
    for (mine, lone) in ours.iter().zip(&theirs) {
        assert_eq!(
            every_grouping(&*node_b, mine, true).await,
            every_grouping(&*alone.store, lone, true).await
        );
    }
    let by_day = accuracy(&*node_a, &ours[0], march(), GroupBy::Day, true).await;
    assert_eq!(by_day.len(), 8);
    assert!(by_day.iter().all(|g| g.n == 2), "each day counted once");
    drop(node_b);
    shared.finish().await;
    alone.finish().await;
}

/// A table's rows with the random ids blanked, in text order: what two
/// backends holding one history export alike.
fn comparable(store_table: &store::analytics::ExportTable) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = store_table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&store_table.columns)
                .map(|(cell, (name, _))| match *name {
                    "tenant_id" | "order_id" => String::new(),
                    _ => cell.to_csv(),
                })
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

/// What one store says of the history: accuracy by every grouping (raw
/// and as the API reads it), reached stops, exports, and views.
async fn everything(store: &dyn Store, h: &History) -> Vec<String> {
    let a = analytics(store);
    let mut said = vec![
        format!("{:?}", every_grouping(store, &h.acme, false).await),
        format!("{:?}", every_grouping(store, &h.acme, true).await),
    ];
    let mut visits: Vec<String> = a
        .stop_visits(h.acme.clone(), march())
        .await
        .expect("visits")
        .into_iter()
        .map(|v| {
            format!(
                "{} {} {} {:?} {:?} {} {}",
                v.stop_index,
                v.stop_kind,
                v.customer,
                v.vehicle_id,
                v.lane_ends,
                v.arrived_at,
                v.window_to
            )
        })
        .collect();
    visits.sort();
    said.extend(visits);
    for kind in [ExportKind::Predictions, ExportKind::Arrivals] {
        let table = a
            .export_table(kind, t(1, 0, 0), t(31, 0, 0))
            .await
            .expect("export");
        said.push(format!("{:?}", table.columns));
        said.extend(comparable(&table).into_iter().map(|r| r.join(",")));
    }
    let counts = a
        .order_views(h.acme.clone(), h.ribeira.id.clone())
        .await
        .expect("views");
    said.push(format!("{:?}", (counts.views, counts.unique_viewers)));
    let now = Utc::now();
    let summary = a
        .views_summary(
            h.acme.clone(),
            now - Duration::hours(1),
            now + Duration::hours(1),
        )
        .await
        .expect("summary");
    said.push(format!(
        "{:?}",
        (summary.shipments, summary.viewed, summary.views)
    ));
    said
}

/// Page loads of Ribeira's tracking page.
async fn views(store: &dyn Store, h: &History) {
    let at = |hour| -> DateTime<Utc> { t(2, hour, 0) };
    for (viewer, hour) in [("v1", 9), ("v1", 10), ("v2", 19)] {
        let view = PageView {
            order_id: h.ribeira.id.0.clone(),
            viewer_hash: viewer.into(),
            at: at(hour),
            delivered: hour > 12,
        };
        analytics(store).record_view(view).await.expect("counted");
    }
}

#[tokio::test]
async fn sqlite_and_postgres_read_one_history_alike() {
    let Some(pg) = stores::postgres().await else {
        return;
    };
    let lite = stores::sqlite().await;
    let backends = [&*lite.store, &*pg.store];
    let mut histories = Vec::new();
    for store in backends {
        let h = record_history(store).await;
        views(store, &h).await;
        histories.push(h);
    }
    let said = |i: usize| everything(backends[i], &histories[i]);
    let raw = said(0).await;
    assert!(raw.len() > 10, "{raw:?}");
    assert_eq!(raw, said(1).await, "before any pass");

    for (store, h) in backends.iter().zip(&histories) {
        let pass = analytics(*store)
            .summarize_days(morning_after(), None)
            .await
            .expect("a pass");
        assert_eq!(pass.days_summed, 3);
        // Douro's delivery reached late: its day is stale until summed again.
        use OrderStatus::AtDelivery;
        move_to(*store, &h.acme, &h.douro, AtDelivery, t(4, 0, 35), Some(1)).await;
    }
    let stale = said(0).await;
    assert_ne!(stale, raw);
    assert_eq!(stale, said(1).await, "summed days and a stale one");

    for store in backends {
        let pass = analytics(store)
            .summarize_days(morning_after(), Some(1))
            .await
            .expect("a pass");
        assert_eq!((pass.days_summed, pass.raw_deleted), (1, 7));
    }
    assert_eq!(said(0).await, said(1).await, "past the retention");
    pg.finish().await;
    lite.finish().await;
}
