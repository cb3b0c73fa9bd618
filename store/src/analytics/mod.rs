//! Analytics for analysts, with no I/O: ETA accuracy from the prediction log
//! ([`accuracy`]), on-time performance of stops ([`on_time`]), tracking-page
//! views counted without keeping viewers ([`views`]), the thinned ETA history
//! a tracking page draws ([`history`]), the tables `tracker export` writes
//! ([`export`]), the API's query strings ([`query`]) and the mergeable
//! histogram daily aggregates keep distributions in ([`sketch`]). The store
//! finds the rows (`analytics_store.rs`); the HTTP handlers are
//! `portal-api`'s `api/analytics.rs`.

pub mod accuracy;
pub mod export;
pub mod history;
pub mod on_time;
pub mod query;
pub mod sketch;
pub mod views;

pub use accuracy::{
    AccuracyGroup, AccuracySums, DailyAccuracy, EvaluatedPrediction, GroupBy, ROLLUP_LANE_RES,
    accuracy_groups, accuracy_groups_with_daily, accuracy_sums, daily_group_key, finish_groups,
    group_key, horizon_key, lane_key, nearest_rank, roll_up,
};
pub use export::{Cell, ColumnType, ExportKind, ExportTable};
pub use history::{EtaPoint, HISTORY_STEP_S, thin_history};
pub use on_time::{OnTimeBy, OnTimeGroup, StopVisit, on_time_groups};
pub use query::{AccuracyQuery, AnalyticsFilter, DEFAULT_LANE_RES, OnTimeQuery};
pub use sketch::Sketch;
pub use views::{OrderViews, PageView, ViewerSalt, ViewsSummary};
