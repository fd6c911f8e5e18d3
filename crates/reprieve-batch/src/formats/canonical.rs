//! The canonical events format: CSV with a header row, or Parquet, columns by name `ts,key[,size][,tenant][,op]`
//! in any order, extra columns ignored.
//!
//! `ts` is Unix seconds (integer) or RFC 3339 (in Parquet also a Datetime/Date column). Every row is an event,
//! except rows whose `op` names a write or delete (see [`is_write_op`]), which are valid but not counted. An empty
//! `tenant` is the default tenant; an empty `size` is unknown.

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::{ChunkCast, ChunkFullNull, DataFrame, DataType, PolarsResult, SerReader, StringChunked};

use reprieve_core::AccessEvent;
use reprieve_core::time::parse_time;

use super::fields::{csv_fields, parse_u64};
use super::parquet::{Values, find_column, for_each_batch, text_values, time_values};
use crate::error::{LineError, ReadError};

/// Whether a canonical `op` names a write or delete rather than a read (`PUT`, `POST`, `DELETE`, `PATCH`,
/// `REST.PUT.*`, `REST.POST.*`, `REST.DELETE.*`, `push`, `write`, `upload`, `delete`; case-insensitive).
pub fn is_write_op(op: &str) -> bool {
    // Compared in place (ASCII case-insensitively, as the uppercased text would be): this runs once per event.
    let op = op.trim();
    const WRITES: [&str; 7] = ["PUT", "POST", "DELETE", "PATCH", "PUSH", "WRITE", "UPLOAD"];
    const WRITE_PREFIXES: [&str; 3] = ["REST.PUT.", "REST.POST.", "REST.DELETE."];
    WRITES.iter().any(|w| op.eq_ignore_ascii_case(w))
        || WRITE_PREFIXES.iter().any(|p| {
            op.as_bytes()
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
        })
}

/// Column positions from the header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    ts: usize,
    key: usize,
    size: Option<usize>,
    tenant: Option<usize>,
    op: Option<usize>,
}

impl CsvColumns {
    /// Parses the header row; `ts` and `key` are required.
    pub fn from_header(line: &str) -> Result<Self, LineError> {
        let mut names = Vec::new();
        for f in csv_fields(line.trim_end_matches(['\r', '\n']).trim_start_matches('\u{feff}')) {
            names.push(f.map_err(LineError::new)?.trim().to_ascii_lowercase());
        }
        let find = |n: &str| names.iter().position(|x| x == n);
        Ok(Self {
            ts: find("ts").ok_or_else(|| LineError::new("header lacks a ts column"))?,
            key: find("key").ok_or_else(|| LineError::new("header lacks a key column"))?,
            size: find("size"),
            tenant: find("tenant"),
            op: find("op"),
        })
    }
}

/// Parses one data row of the canonical events CSV.
pub fn parse_line(line: &str, columns: &CsvColumns, default_tenant: &str) -> Result<Option<AccessEvent>, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (mut ts, mut key, mut size, mut tenant, mut op) = (None, None, None, None, None);
    for (i, f) in csv_fields(line).enumerate() {
        let f = f.map_err(LineError::new)?;
        let slot = if i == columns.ts {
            &mut ts
        } else if i == columns.key {
            &mut key
        } else if Some(i) == columns.size {
            &mut size
        } else if Some(i) == columns.tenant {
            &mut tenant
        } else if Some(i) == columns.op {
            &mut op
        } else {
            continue;
        };
        *slot = Some(f);
    }
    let ts = ts.ok_or_else(|| LineError::new("missing ts field"))?;
    let key = key.ok_or_else(|| LineError::new("missing key field"))?;
    event_from_text(Some(ts), Some(key), size, tenant, op, default_tenant)
}

fn event_from_text(
    ts: Option<Cow<'_, str>>,
    key: Option<Cow<'_, str>>,
    size: Option<Cow<'_, str>>,
    tenant: Option<Cow<'_, str>>,
    op: Option<Cow<'_, str>>,
    default_tenant: &str,
) -> Result<Option<AccessEvent>, LineError> {
    let ts_text = ts.unwrap_or_default();
    let ts = parse_time(&ts_text).map_err(|_| LineError::new(format!("bad ts {ts_text:?}")))?;
    event_from_parts(ts, key, size, tenant, op, default_tenant)
}

fn event_from_parts(
    ts: i64,
    key: Option<Cow<'_, str>>,
    size: Option<Cow<'_, str>>,
    tenant: Option<Cow<'_, str>>,
    op: Option<Cow<'_, str>>,
    default_tenant: &str,
) -> Result<Option<AccessEvent>, LineError> {
    let key = key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| LineError::new("empty key"))?;
    let size = match size.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(parse_u64(s).ok_or_else(|| LineError::new(format!("bad size {s:?}")))?),
    };
    let op = op.filter(|o| !o.is_empty());
    if op.as_deref().is_some_and(is_write_op) {
        return Ok(None);
    }
    let tenant = match tenant {
        Some(t) if !t.is_empty() => t.into_owned(),
        _ => default_tenant.to_owned(),
    };
    Ok(Some(AccessEvent {
        ts,
        key: key.into_owned(),
        tenant,
        size,
        op: op.map(Cow::into_owned),
    }))
}

/// Streams the rows of a canonical events Parquet file, batch by batch; `row` receives the 1-based row number
/// and the parse result of that row.
pub(crate) fn for_each_parquet_row(
    path: &Path,
    default_tenant: &str,
    mut row: impl FnMut(u64, Result<Option<AccessEvent>, LineError>) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let names = super::parquet::column_names(path)?;
    let ts_col =
        find_column(&names, &["ts"]).ok_or_else(|| ReadError::format(path, "parquet events lack a ts column"))?;
    let key_col =
        find_column(&names, &["key"]).ok_or_else(|| ReadError::format(path, "parquet events lack a key column"))?;
    let size_col = find_column(&names, &["size"]);
    let tenant_col = find_column(&names, &["tenant"]);
    let op_col = find_column(&names, &["op"]);
    let wanted: Vec<String> = [Some(ts_col), Some(key_col), size_col, tenant_col, op_col]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    let mut number = 0u64;
    for_each_batch(path, &wanted, |df| {
        let pe = |e| ReadError::parquet(path, e);
        let ts = time_values(df, Some(ts_col)).map_err(pe)?;
        let key = text_values(df, Some(key_col)).map_err(pe)?;
        let size = text_values(df, size_col).map_err(pe)?;
        let tenant = text_values(df, tenant_col).map_err(pe)?;
        let op = text_values(df, op_col).map_err(pe)?;
        for i in 0..df.height() {
            number += 1;
            let result = match &ts {
                Values::Int(ca) => match ca.get(i) {
                    Some(t) => {
                        event_from_parts(t, key.text(i), size.text(i), tenant.text(i), op.text(i), default_tenant)
                    }
                    None => Err(LineError::new("null ts")),
                },
                other => event_from_text(
                    other.text(i),
                    key.text(i),
                    size.text(i),
                    tenant.text(i),
                    op.text(i),
                    default_tenant,
                ),
            };
            row(number, result)?;
        }
        Ok(())
    })
}

/// One row of a canonical events batch as the batch scorer sees it: key and tenant borrowed from the decoded
/// columns (no allocation per row), size and op only checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Row<'a> {
    /// A counted read. `tenant` is the default tenant when the row names none.
    Read { ts: i64, tenant: &'a str, key: &'a str },
    /// A valid row that is not a read (a write or delete `op`).
    Ignored,
    /// The reason, exactly as [`for_each_parquet_row`] gives it.
    Malformed(String),
}

/// The columns of a canonical events Parquet file that the batch scorer needs.
#[derive(Debug, Clone)]
pub(crate) struct EventColumns {
    ts: String,
    key: String,
    tenant: Option<String>,
    op: Option<String>,
    /// Only when its values can be malformed: an unsigned integer column never is, so it is not read at all.
    size: Option<String>,
}

impl EventColumns {
    pub(crate) fn of(path: &Path) -> Result<Self, ReadError> {
        let file = std::fs::File::open(path).map_err(|e| ReadError::io(path, e))?;
        let schema = polars::prelude::ParquetReader::new(file)
            .schema()
            .map_err(|e| ReadError::parquet(path, e))?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        let find = |n: &str| find_column(&names, &[n]).map(str::to_owned);
        let ts = find("ts").ok_or_else(|| ReadError::format(path, "parquet events lack a ts column"))?;
        let key = find("key").ok_or_else(|| ReadError::format(path, "parquet events lack a key column"))?;
        let size = find("size").filter(|name| {
            schema
                .get(name.as_str())
                .is_none_or(|f| !polars::prelude::DataType::from_arrow_field(f).is_unsigned_integer())
        });
        Ok(Self {
            ts,
            key,
            tenant: find("tenant"),
            op: find("op"),
            size,
        })
    }

    /// The columns to read, each once.
    pub(crate) fn wanted(&self) -> Vec<String> {
        let mut wanted: Vec<String> = Vec::with_capacity(5);
        for name in [
            Some(&self.ts),
            Some(&self.key),
            self.size.as_ref(),
            self.tenant.as_ref(),
            self.op.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !wanted.contains(name) {
                wanted.push(name.clone());
            }
        }
        wanted
    }
}

/// A text column of a batch, all null when the file lacks it.
fn str_column(df: &DataFrame, name: Option<&str>) -> PolarsResult<StringChunked> {
    match text_values(df, name)? {
        Values::Str(ca) => Ok(ca),
        Values::Int(ca) => Ok(ca.cast(&DataType::String)?.str()?.clone()),
        Values::Missing => Ok(StringChunked::full_null("".into(), df.height())),
    }
}

/// Rows handed to [`for_each_row`]'s callback at a time.
pub(crate) const ROW_BLOCK: usize = 64;

/// Calls `f` with every row of a batch of a canonical events Parquet file (read with
/// [`EventColumns::wanted`]), in order and in blocks of at most [`ROW_BLOCK`] rows (so that the caller can look
/// up many keys at once), each classified exactly as [`for_each_parquet_row`] classifies it.
pub(crate) fn for_each_row(
    df: &DataFrame,
    columns: &EventColumns,
    default_tenant: &str,
    mut f: impl FnMut(&[Row<'_>]),
) -> PolarsResult<()> {
    let ts = time_values(df, Some(&columns.ts))?;
    let key = str_column(df, Some(&columns.key))?;
    let size = str_column(df, columns.size.as_deref())?;
    let tenant = str_column(df, columns.tenant.as_deref())?;
    let op = str_column(df, columns.op.as_deref())?;
    let text = match &ts {
        Values::Int(_) => None,
        Values::Str(ca) => Some(ca.clone()),
        Values::Missing => Some(StringChunked::full_null("".into(), df.height())),
    };
    let rest = key.iter().zip(size.iter()).zip(tenant.iter()).zip(op.iter());
    let mut block: Vec<Row<'_>> = Vec::with_capacity(ROW_BLOCK);
    let mut emit = |row, block: &mut Vec<_>| {
        block.push(row);
        if block.len() == ROW_BLOCK {
            f(block);
            block.clear();
        }
    };
    match (&ts, &text) {
        (Values::Int(ca), _) => {
            for (t, (((k, s), te), o)) in ca.iter().zip(rest) {
                let row = match t {
                    Some(t) => classify_row(t, k, s, te, o, default_tenant),
                    None => Row::Malformed("null ts".to_owned()),
                };
                emit(row, &mut block);
            }
        }
        (_, Some(text)) => {
            for (t, (((k, s), te), o)) in text.iter().zip(rest) {
                let t = t.unwrap_or_default();
                let row = match parse_time(t) {
                    Ok(t) => classify_row(t, k, s, te, o, default_tenant),
                    Err(_) => Row::Malformed(format!("bad ts {t:?}")),
                };
                emit(row, &mut block);
            }
        }
        (_, None) => {}
    }
    if !block.is_empty() {
        f(&block);
    }
    Ok(())
}

/// [`event_from_parts`] without the allocations: the same checks in the same order.
fn classify_row<'a>(
    ts: i64,
    key: Option<&'a str>,
    size: Option<&str>,
    tenant: Option<&'a str>,
    op: Option<&str>,
    default_tenant: &'a str,
) -> Row<'a> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Row::Malformed("empty key".to_owned());
    };
    if let Some(s) = size.map(str::trim)
        && !s.is_empty()
        && parse_u64(s).is_none()
    {
        return Row::Malformed(format!("bad size {s:?}"));
    }
    if op.is_some_and(|o| !o.is_empty() && is_write_op(o)) {
        return Row::Ignored;
    }
    let tenant = match tenant {
        Some(t) if !t.is_empty() => t,
        _ => default_tenant,
    };
    Row::Read { ts, tenant, key }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_rows() {
        let c = CsvColumns::from_header("op,key,extra,ts,size,tenant").unwrap();
        let e = parse_line("GET,\"img/a,b.png\",x,2024-05-12T10:00:00Z,12,t1", &c, "d")
            .unwrap()
            .unwrap();
        assert_eq!(e.key, "img/a,b.png");
        assert_eq!(e.ts, 1_715_508_000);
        assert_eq!(
            (e.size, e.tenant.as_str(), e.op.as_deref()),
            (Some(12), "t1", Some("GET"))
        );
        let e = parse_line(",k,,1700000000,,", &c, "d").unwrap().unwrap();
        assert_eq!((e.size, e.tenant.as_str(), e.op), (None, "d", None));
        assert_eq!(parse_line("PUT,k,,1700000000,,", &c, "d"), Ok(None));
        assert!(parse_line("GET,k,,soon,,", &c, "d").is_err());
        assert!(parse_line("GET,k,,1,big,", &c, "d").is_err());
        assert!(parse_line("GET,,,1,,", &c, "d").is_err());
        assert!(parse_line("GET", &c, "d").is_err());
        assert!(CsvColumns::from_header("a,b").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,200}") {
            let c = CsvColumns::from_header("ts,key,size,tenant,op").unwrap();
            let _ = parse_line(&line, &c, "");
            let _ = CsvColumns::from_header(&line);
        }

        #[test]
        fn round_trips(
            ts in 0i64..4_000_000_000,
            rfc in any::<bool>(),
            key in "[a-zA-Z0-9 ,\"_.%?#&+=é/-]{1,40}",
            size in 0u64..u64::MAX,
            op in "(GET|HEAD|REST\\.GET\\.OBJECT|pull)",
        ) {
            let c = CsvColumns::from_header("size,op,key,ts").unwrap();
            let ts_text = if rfc { reprieve_core::time::format_rfc3339(ts) } else { ts.to_string() };
            let line = format!("{size},{op},\"{}\",{ts_text}", key.replace('"', "\"\""));
            let e = parse_line(&line, &c, "").unwrap().unwrap();
            prop_assert_eq!(e.ts, ts);
            prop_assert_eq!(e.key, key);
            prop_assert_eq!(e.size, Some(size));
            prop_assert_eq!(e.op.as_deref(), Some(op.as_str()));
        }
    }
}
