//! `tracker export --format parquet`: an export table as a Parquet file with
//! typed columns (text as UTF-8, integers as INT64, numbers as DOUBLE, times
//! as TIMESTAMP in milliseconds, UTC), every column nullable, Snappy pages,
//! one row group per 64 k rows.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use portal_api::analytics::{Cell, ColumnType, ExportTable};

const ROWS_PER_BATCH: usize = 65_536;

/// The Arrow type of a column.
fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

/// The table's schema.
pub(crate) fn schema(table: &ExportTable) -> Arc<Schema> {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .map(|(name, ty)| Field::new(*name, data_type(*ty), true))
            .collect::<Vec<_>>(),
    ))
}

/// One column of `rows` as an Arrow array of its declared type (a cell of
/// another type is a null: the store gives every column one type).
fn column(rows: &[Vec<Cell>], index: usize, ty: ColumnType) -> ArrayRef {
    let cells = rows.iter().map(|row| row.get(index));
    match ty {
        ColumnType::Text => {
            let mut b = StringBuilder::new();
            for cell in cells {
                match cell {
                    Some(Cell::Text(Some(v))) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int => {
            let mut b = Int64Builder::new();
            for cell in cells {
                b.append_option(match cell {
                    Some(Cell::Int(v)) => *v,
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        ColumnType::Float => {
            let mut b = Float64Builder::new();
            for cell in cells {
                b.append_option(match cell {
                    Some(Cell::Float(v)) => *v,
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        ColumnType::Time => {
            let mut b = TimestampMillisecondBuilder::new().with_timezone("UTC");
            for cell in cells {
                b.append_option(match cell {
                    Some(Cell::Time(v)) => v.map(|t| t.timestamp_millis()),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
    }
}

/// Writes the table to `path` as Parquet.
pub(crate) fn write_parquet(table: &ExportTable, path: &Path) -> anyhow::Result<()> {
    let schema = schema(table);
    let file = std::fs::File::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))?;
    for chunk in table.rows.chunks(ROWS_PER_BATCH) {
        let columns: Vec<ArrayRef> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| column(chunk, i, *ty))
            .collect();
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), columns)?)?;
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use chrono::TimeZone;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A small table round-trips with its types: timestamps come back as
    /// UTC milliseconds, nulls as nulls.
    #[test]
    fn a_table_round_trips_through_parquet_with_its_types() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("time");
        let table = ExportTable {
            columns: vec![
                ("order_id", ColumnType::Text),
                ("stop_index", ColumnType::Int),
                ("horizon_s", ColumnType::Float),
                ("actual_arrival", ColumnType::Time),
            ],
            rows: vec![
                vec![
                    Cell::Text(Some("ord_1".into())),
                    Cell::Int(Some(1)),
                    Cell::Float(Some(600.5)),
                    Cell::Time(Some(at)),
                ],
                vec![
                    Cell::Text(None),
                    Cell::Int(None),
                    Cell::Float(None),
                    Cell::Time(None),
                ],
            ],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.parquet");
        write_parquet(&table, &path).expect("written");

        let file = std::fs::File::open(&path).expect("open");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a parquet file")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.schema(), schema(&table));
        let text = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert_eq!((text.value(0), text.is_null(1)), ("ord_1", true));
        let int = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int64");
        assert_eq!((int.value(0), int.is_null(1)), (1, true));
        let float = batch
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("double");
        assert_eq!(float.value(0), 600.5);
        let time = batch
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .expect("timestamp");
        assert_eq!(
            (time.value(0), time.is_null(1)),
            (at.timestamp_millis(), true)
        );
    }
}
