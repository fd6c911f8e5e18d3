//! Batched Parquet reading shared by the events and inventory readers: only the wanted columns, a bounded
//! number of rows at a time (`BATCH_ROWS`), so memory stays flat whatever the file size.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use reprieve_core::time::DAY;

use crate::error::ReadError;

/// Rows per batch.
pub(crate) const BATCH_ROWS: usize = 65_536;

/// The column names of a Parquet file.
pub(crate) fn column_names(path: &Path) -> Result<Vec<String>, ReadError> {
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let schema = ParquetReader::new(file)
        .schema()
        .map_err(|e| ReadError::parquet(path, e))?;
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
}

/// Calls `f` with each batch of at most [`BATCH_ROWS`] rows of `columns`, in order.
pub(crate) fn for_each_batch(
    path: &Path,
    columns: &[String],
    mut f: impl FnMut(&DataFrame) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let open = || File::open(path).map_err(|e| ReadError::io(path, e));
    let rows = ParquetReader::new(open()?)
        .num_rows()
        .map_err(|e| ReadError::parquet(path, e))?;
    let mut offset = 0;
    while offset < rows {
        let df = ParquetReader::new(open()?)
            .with_columns(Some(columns.to_vec()))
            .with_slice(Some((offset, BATCH_ROWS)))
            .finish()
            .map_err(|e| ReadError::parquet(path, e))?;
        if df.height() == 0 {
            break;
        }
        offset += df.height();
        f(&df)?;
    }
    Ok(())
}

/// One column's values, normalised for row-wise access.
#[derive(Debug)]
pub(crate) enum Values {
    /// Integers (or times already converted to Unix seconds).
    Int(Int64Chunked),
    /// Text, parsed row by row like a CSV cell.
    Str(StringChunked),
    Missing,
}

impl Values {
    /// The value of row `i` as text (integers formatted), `None` when null or missing.
    pub(crate) fn text(&self, i: usize) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Self::Int(ca) => ca.get(i).map(|v| std::borrow::Cow::Owned(v.to_string())),
            Self::Str(ca) => ca.get(i).map(std::borrow::Cow::Borrowed),
            Self::Missing => None,
        }
    }
}

/// A column as text (booleans become `true`/`false`, numbers their decimal form; Datetime/Date columns become
/// Unix seconds, see [`time_values`]).
pub(crate) fn text_values(df: &DataFrame, name: Option<&str>) -> PolarsResult<Values> {
    let Some(name) = name else {
        return Ok(Values::Missing);
    };
    let col = df.column(name)?;
    match col.dtype() {
        DataType::Datetime(_, _) | DataType::Date => time_values(df, Some(name)),
        DataType::String => Ok(Values::Str(col.str()?.clone())),
        _ => Ok(Values::Str(col.cast(&DataType::String)?.str()?.clone())),
    }
}

/// A time column as Unix seconds: integers are seconds, Datetime (any unit, any zone) and Date are converted;
/// text stays text (Unix seconds or RFC 3339, parsed per row).
pub(crate) fn time_values(df: &DataFrame, name: Option<&str>) -> PolarsResult<Values> {
    let Some(name) = name else {
        return Ok(Values::Missing);
    };
    let col = df.column(name)?;
    let ints = |c: &Column| -> PolarsResult<Int64Chunked> { Ok(c.cast(&DataType::Int64)?.i64()?.clone()) };
    match col.dtype() {
        DataType::Datetime(unit, _) => {
            let per_second = match unit {
                TimeUnit::Nanoseconds => 1_000_000_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Milliseconds => 1_000,
            };
            let phys = ints(col)?;
            Ok(Values::Int(phys.apply_values(|v: i64| v.div_euclid(per_second))))
        }
        DataType::Date => {
            let days = ints(&col.cast(&DataType::Int32)?)?;
            Ok(Values::Int(days.apply_values(|v: i64| v.saturating_mul(DAY))))
        }
        DataType::String => Ok(Values::Str(col.str()?.clone())),
        dt if dt.is_integer() || dt.is_float() => Ok(Values::Int(ints(col)?)),
        _ => Ok(Values::Str(col.cast(&DataType::String)?.str()?.clone())),
    }
}

/// Finds a column by name, case-insensitively, among `names`, trying each alias in turn.
pub(crate) fn find_column<'a>(names: &'a [String], aliases: &[&str]) -> Option<&'a str> {
    aliases.iter().find_map(|a| {
        names
            .iter()
            .find(|n| n.trim().eq_ignore_ascii_case(a))
            .map(String::as_str)
    })
}
