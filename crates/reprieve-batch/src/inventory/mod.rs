//! Inventory readers: which objects exist, with their size, times, storage class and retention facts.
//!
//! - Generic inventory CSV (header row) or Parquet, columns by name: `key` (required), `tenant` or `bucket`,
//!   `size`, `created`, `modified` (alias `last_modified_date`), `storage_class`, `owner`, `legal_hold`
//!   (`true/false/ON/OFF/1/0`), `retain_until` (alias `object_lock_retain_until_date`), `live_references`,
//!   `content_type`, `cohort`. Times are Unix seconds or RFC 3339 (in Parquet also Datetime/Date columns); an
//!   empty cell is absent; unknown columns are ignored.
//! - S3 Inventory: a `manifest.json` naming CSV (gzip, no header, column order from `fileSchema`, URL-encoded
//!   keys) or Parquet data files, resolved relative to the manifest's directory.
//!
//! Rows that are delete markers (`is_delete_marker`) or noncurrent versions (`is_latest = false`) are valid but
//! not objects (`ignored`). Bad rows are counted as malformed with the same [`ReadReport`] discipline as the log
//! readers (`lines` counts data rows plus the header row).

mod columns;
mod s3_inventory;

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::{DataFrame, DataType, Int64Chunked, PolarsResult, StringChunked, UInt64Chunked};
use reprieve_core::ObjectRecord;
use serde::{Deserialize, Serialize};

pub(crate) use self::columns::RowFacts;
use self::columns::{Cell, Columns, FIELDS, Field, row_from};
use crate::error::{LineError, ReadError};
use crate::formats::fields::csv_fields;
use crate::formats::parquet::{Values, column_names, for_each_batch, row_count, text_values, time_values};
use crate::formats::{ReadReport, SourceFormat, for_each_line, is_parquet, magic};

/// One object of an inventory. `record.history` is empty: reads come from the access logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryRow {
    pub record: ObjectRecord,
    /// A free-form group label (the generator's ground-truth cohort, or a team's own grouping), when given.
    pub cohort: Option<String>,
}

/// How to read an inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryOptions {
    /// Fail on the first malformed row instead of counting it.
    pub strict: bool,
    /// Tenant of rows without a `tenant`/`bucket` value.
    pub default_tenant: String,
}

/// Reads a whole inventory into memory. A path whose file name is `manifest.json` is an S3 Inventory manifest;
/// anything else is a generic inventory, CSV or Parquet by its magic bytes (gzip CSV accepted).
pub fn read_inventory(path: &Path, options: &InventoryOptions) -> Result<(Vec<InventoryRow>, ReadReport), ReadError> {
    let mut rows = Vec::new();
    let report = for_each_inventory_row(path, options, |r| rows.push(r))?;
    Ok((rows, report))
}

/// Streams the rows of an inventory to `f` (see [`read_inventory`]).
pub fn for_each_inventory_row(
    path: &Path,
    options: &InventoryOptions,
    mut f: impl FnMut(InventoryRow),
) -> Result<ReadReport, ReadError> {
    for_each_inventory_facts(path, options, true, &mut |row| f(row.into_row(&options.default_tenant)))
}

/// Streams the rows of an inventory to `f` as [`RowFacts`] borrowing the decoded text (no allocation per row
/// for Parquet inventories). `cohorts`: read the `cohort` column (else every row's `cohort` is `None`).
pub(crate) fn for_each_inventory_facts(
    path: &Path,
    options: &InventoryOptions,
    cohorts: bool,
    f: &mut dyn FnMut(RowFacts<'_>),
) -> Result<ReadReport, ReadError> {
    let reader = Reader { options, cohorts };
    if path.file_name().is_some_and(|n| n == "manifest.json") {
        return s3_inventory::read_manifest(path, &reader, f);
    }
    if is_parquet(&magic(path)?) {
        let mut report = ReadReport::new(path, SourceFormat::InventoryParquet);
        reader.parquet(path, false, "", &mut report, f)?;
        Ok(report)
    } else {
        let mut report = ReadReport::new(path, SourceFormat::InventoryCsv);
        reader.csv(path, None, false, "", &mut report, f)?;
        Ok(report)
    }
}

/// The number of rows of a generic Parquet inventory (from its footer), to size tables up front; `None` for other
/// inventories or when the file cannot be read (the read itself then reports why).
pub(crate) fn row_hint(path: &Path) -> Option<usize> {
    let parquet = path.file_name().is_some_and(|n| n != "manifest.json") && is_parquet(&magic(path).ok()?);
    parquet.then(|| row_count(path).ok()).flatten()
}

/// How the data files of one inventory are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    options: &'a InventoryOptions,
    cohorts: bool,
}

/// Prefixes a malformed row's reason with the data file's name (S3 Inventory), if any.
fn labelled(label: &str, e: LineError) -> LineError {
    if label.is_empty() {
        e
    } else {
        LineError::new(format!("{label}: {}", e.reason))
    }
}

impl Reader<'_> {
    /// Reads one CSV data file. `columns`: the column order when the file has no header row (S3 Inventory);
    /// `None`: the first non-empty line is the header. `label` prefixes malformed reasons (the data file's name).
    pub(crate) fn csv(
        &self,
        path: &Path,
        columns: Option<&Columns>,
        decode_keys: bool,
        label: &str,
        report: &mut ReadReport,
        f: &mut dyn FnMut(RowFacts<'_>),
    ) -> Result<(), ReadError> {
        let strict = self.options.strict;
        let mut header: Option<Columns> = columns.cloned();
        for_each_line(path, |n, line| {
            if line.trim().is_empty() {
                report.record::<()>(n, Ok(None), strict)?;
                return Ok(std::ops::ControlFlow::Continue(()));
            }
            let Some(cols) = &header else {
                let names: Vec<String> = csv_fields(line)
                    .map(|c| c.map(|c| c.into_owned()).unwrap_or_default())
                    .collect();
                let cols = Columns::from_names(&names).map_err(|e| ReadError::Malformed {
                    path: path.to_path_buf(),
                    line: n,
                    reason: format!("inventory header: {e}"),
                })?;
                header = Some(cols);
                report.record::<()>(n, Ok(None), strict)?;
                return Ok(std::ops::ControlFlow::Continue(()));
            };
            let result = parse_csv_row(line, cols, decode_keys, self.cohorts).map_err(|e| labelled(label, e));
            if let Some(row) = report.record(n, result, strict)? {
                f(row);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
    }

    /// Reads one Parquet data file in batches; integer, boolean and time columns are read as numbers.
    pub(crate) fn parquet(
        &self,
        path: &Path,
        decode_keys: bool,
        label: &str,
        report: &mut ReadReport,
        f: &mut dyn FnMut(RowFacts<'_>),
    ) -> Result<(), ReadError> {
        let names = column_names(path)?;
        let cols =
            Columns::from_names(&names).map_err(|e| ReadError::format(path, format!("parquet inventory: {e}")))?;
        let read: Vec<(Field, usize)> = cols
            .index
            .iter()
            .copied()
            .filter(|(field, _)| self.cohorts || *field != Field::Cohort)
            .collect();
        let wanted: Vec<String> = read.iter().map(|(_, i)| names[*i].clone()).collect();
        let mut number = 0u64;
        for_each_batch(path, &wanted, |df| {
            // Indexed by field (`Field as usize`): a row's cells are found without a search.
            let mut columns: Vec<Column> = (0..FIELDS.len()).map(|_| Column::Missing).collect();
            for (field, i) in &read {
                columns[*field as usize] =
                    Column::of(df, &names[*i], field.is_time()).map_err(|e| ReadError::parquet(path, e))?;
            }
            for r in 0..df.height() {
                number += 1;
                let result = row_from(|f| columns[f as usize].cell(r), decode_keys).map_err(|e| labelled(label, e));
                if let Some(row) = report.record(number, result, self.options.strict)? {
                    f(row);
                }
            }
            Ok(())
        })
    }
}

fn parse_csv_row<'a>(
    line: &'a str,
    cols: &Columns,
    decode_keys: bool,
    cohorts: bool,
) -> Result<Option<RowFacts<'a>>, LineError> {
    let mut cells = Vec::with_capacity(cols.index.len() + 4);
    for c in csv_fields(line) {
        cells.push(c.map_err(LineError::new)?);
    }
    let get = |f: Field| {
        if f == Field::Cohort && !cohorts {
            return None;
        }
        cols.index
            .iter()
            .find(|(g, _)| *g == f)
            .and_then(|(_, i)| cells.get(*i).cloned())
            .map(Cell::Text)
    };
    if get(Field::Key).is_none() {
        return Err(LineError::new(format!("{} fields, no key", cells.len())));
    }
    row_from(get, decode_keys)
}

/// One inventory column of a Parquet batch, typed.
enum Column {
    Int(Int64Chunked),
    UInt(UInt64Chunked),
    Str(StringChunked),
    Missing,
}

impl Column {
    /// Times become Unix seconds ([`time_values`]); 64-bit unsigned integers stay unsigned, other integers and
    /// booleans become `i64`; anything else is read as text.
    fn of(df: &DataFrame, name: &str, time: bool) -> PolarsResult<Self> {
        let values = if time {
            time_values(df, Some(name))?
        } else {
            let col = df.column(name)?;
            match col.dtype() {
                DataType::UInt64 => return Ok(Self::UInt(col.u64()?.clone())),
                DataType::Boolean => Values::Int(col.cast(&DataType::Int64)?.i64()?.clone()),
                dt if dt.is_integer() => Values::Int(col.cast(&DataType::Int64)?.i64()?.clone()),
                _ => text_values(df, Some(name))?,
            }
        };
        Ok(match values {
            Values::Int(ca) => Self::Int(ca),
            Values::Str(ca) => Self::Str(ca),
            Values::Missing => Self::Missing,
        })
    }

    fn cell(&self, row: usize) -> Option<Cell<'_>> {
        match self {
            Self::Int(ca) => ca.get(row).map(Cell::Int),
            Self::UInt(ca) => ca.get(row).map(Cell::UInt),
            Self::Str(ca) => ca.get(row).map(|s| Cell::Text(Cow::Borrowed(s))),
            Self::Missing => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn generic_columns() -> Columns {
        Columns::from_names(&[
            "tenant",
            "key",
            "size",
            "created",
            "modified",
            "storage_class",
            "owner",
            "legal_hold",
            "retain_until",
            "live_references",
            "content_type",
            "cohort",
        ])
        .unwrap()
    }

    #[test]
    fn parses_generator_sample() {
        let row = parse_csv_row(
            "t0,img/2024/a_300x200.jpg,52311,1700000000,1700000000,STANDARD,team-a,false,,0,,popular",
            &generic_columns(),
            false,
            true,
        )
        .unwrap()
        .unwrap()
        .into_row("");
        assert_eq!(row.record.key, "img/2024/a_300x200.jpg");
        assert_eq!(row.record.size, Some(52_311));
        assert_eq!(row.record.retain_until, None);
        assert_eq!(row.cohort.as_deref(), Some("popular"));
        assert!(parse_csv_row("t0", &generic_columns(), false, true).is_err());
        assert!(parse_csv_row("t0,k,1,1,1,STANDARD,o,maybe,,0,,", &generic_columns(), false, true).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,200}", decode in any::<bool>()) {
            let _ = parse_csv_row(&line, &generic_columns(), decode, true);
        }

        #[test]
        fn round_trips(
            key in "[a-zA-Z0-9 ,\"_.%?#&+=é/-]{1,40}",
            size in proptest::option::of(0u64..u64::MAX),
            created in 0i64..4_000_000_000,
            rfc in any::<bool>(),
            hold in any::<bool>(),
            refs in 0u32..1000,
            s3_encoded in any::<bool>(),
        ) {
            let t = if rfc { reprieve_core::time::format_rfc3339(created) } else { created.to_string() };
            let size_text = size.map(|s| s.to_string()).unwrap_or_default();
            let key_text = if s3_encoded {
                percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC).to_string()
            } else {
                format!("\"{}\"", key.replace('"', "\"\""))
            };
            let hold_text = if hold { "ON" } else { "OFF" };
            let line = format!("t1,{key_text},{size_text},{t},,GLACIER_IR,,{hold_text},{t},{refs},image/jpeg,c");
            let row = parse_csv_row(&line, &generic_columns(), s3_encoded, true).unwrap().unwrap().into_row("");
            prop_assert_eq!(&row.record.key, &key);
            prop_assert_eq!(row.record.size, size);
            prop_assert_eq!(row.record.created, Some(created));
            prop_assert_eq!(row.record.retain_until, Some(created));
            prop_assert_eq!(row.record.modified, None);
            prop_assert_eq!(row.record.legal_hold, hold);
            prop_assert_eq!(row.record.live_references, refs);
            prop_assert_eq!(row.record.storage_class, reprieve_core::StorageClass::GlacierIr);
            prop_assert_eq!(row.record.owner, None);
        }
    }
}
