//! `tracker export predictions|arrivals|orders --store URL --from T --to T
//! --format csv|parquet --out FILE`: the prediction log, stop arrivals or
//! orders of every tenant in a time range, for analysts' own tools (DuckDB,
//! pandas, a spreadsheet). The store gives a typed table
//! (`portal_api::analytics::ExportTable`); this module only writes it: CSV
//! with a header (times RFC 3339 UTC with milliseconds, nulls empty), or
//! Parquet with typed columns (`parquet_out.rs`).
//!
//! The file is written under a temporary name beside `--out` and renamed
//! when complete, so a failed export never leaves a half file behind.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use portal_api::analytics::{ExportKind, ExportTable};
use serde_json::json;

use super::bad_input;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportWhat {
    /// Every logged ETA, with its free-flow baseline and actual arrival
    /// (range on `predicted_at`).
    Predictions,
    /// Every stop reached (range on `arrived_at`).
    Arrivals,
    /// Every order (range on `created_at`).
    Orders,
}

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    what: ExportWhat,
    /// Where the data lives.
    #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
    store: String,
    /// Start of the range (RFC 3339, included); default: everything.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (RFC 3339, excluded); default: now.
    #[arg(long)]
    to: Option<String>,
    /// `csv` or `parquet`.
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
}

fn time_arg(
    flag: &str,
    text: Option<&str>,
    default: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    match text {
        None => Ok(default),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad_input(format!("{flag} {text}: not an RFC 3339 time ({e})"))),
    }
}

pub(crate) fn run(args: ExportArgs) -> anyhow::Result<()> {
    let from = time_arg("--from", args.from.as_deref(), DateTime::<Utc>::UNIX_EPOCH)?;
    let to = time_arg("--to", args.to.as_deref(), Utc::now())?;
    if from >= to {
        return Err(bad_input("--from must be before --to"));
    }
    let kind = match args.what {
        ExportWhat::Predictions => ExportKind::Predictions,
        ExportWhat::Arrivals => ExportKind::Arrivals,
        ExportWhat::Orders => ExportKind::Orders,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let table = runtime.block_on(async {
        let store = super::open_store(&args.store).await?;
        let analytics = store
            .analytics()
            .ok_or_else(|| bad_input("--store: this store keeps no analytics"))?;
        analytics
            .export_table(kind, from, to)
            .await
            .context("reading the store")
    })?;
    let partial = partial_path(&args.out);
    match args.format {
        ExportFormat::Csv => write_csv(&table, &partial),
        ExportFormat::Parquet => super::parquet_out::write_parquet(&table, &partial),
    }
    .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.out.display()))?;
    super::output::print_line(
        &json!({
            "rows": table.rows.len(),
            "columns": table.columns.len(),
            "out": args.out.display().to_string(),
        })
        .to_string(),
    );
    Ok(())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// The table as CSV with a header row.
pub(crate) fn write_csv(table: &ExportTable, path: &Path) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record(table.columns.iter().map(|(name, _)| *name))?;
    for row in &table.rows {
        out.write_record(row.iter().map(|cell| cell.to_csv()))?;
    }
    out.flush()?;
    Ok(())
}
