//! What `tracker export` writes: the prediction log, stop arrivals and
//! orders as typed tables (a column's type is known before any row, so a
//! Parquet writer can declare timestamps as timestamps). The store fills
//! them; the binary writes CSV or Parquet. No secrets are in any column:
//! no tracking code, key, e-mail address or viewer.

use chrono::{DateTime, Utc};

/// Which table to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Every logged ETA (range on `predicted_at`).
    Predictions,
    /// Every stop reached (range on `arrived_at`).
    Arrivals,
    /// Every order (range on `created_at`).
    Orders,
}

impl ExportKind {
    pub fn parse(name: &str) -> Option<ExportKind> {
        match name {
            "predictions" => Some(ExportKind::Predictions),
            "arrivals" => Some(ExportKind::Arrivals),
            "orders" => Some(ExportKind::Orders),
            _ => None,
        }
    }
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    Float,
    /// UTC instant, millisecond precision.
    Time,
}

/// One cell; `None` is a null of the column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Time(Option<DateTime<Utc>>),
}

impl Cell {
    /// The cell as CSV text: times in RFC 3339 with milliseconds, nulls empty.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Text(v) => v.clone().unwrap_or_default(),
            Cell::Int(v) => v.map(|x| x.to_string()).unwrap_or_default(),
            Cell::Float(v) => v.map(|x| x.to_string()).unwrap_or_default(),
            Cell::Time(v) => v
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }
}

/// A typed table.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportTable {
    pub columns: Vec<(&'static str, ColumnType)>,
    pub rows: Vec<Vec<Cell>>,
}
