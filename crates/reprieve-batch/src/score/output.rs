//! The scores file: one row per object of the shard, sorted by (tenant, key), as CSV or Parquet.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use polars_parquet::write::ZstdLevel;
use reprieve_core::{HistoryStats, ObjectRecord, Verdict};

use super::BatchError;

/// The columns of the scores file, in order.
///
/// | column | type | meaning |
/// |---|---|---|
/// | `tenant` | text | tenant / bucket (empty: the default tenant) |
/// | `key` | text | object key |
/// | `size` | u64, null | bytes, from the inventory |
/// | `storage_class` | text | S3 name (`STANDARD`, ...; empty when unknown) |
/// | `owner` | text, null | accountable owner |
/// | `created` | i64, null | creation time, Unix seconds |
/// | `last_read` | i64, null | last logged read before the scoring time |
/// | `reads` | u64 | logged reads before the scoring time |
/// | `probability` | f64 | calibrated P(read again within the model's horizon) |
/// | `class` | text | `RETAIN`, `REVIEW`, `ARCHIVE`, `DELETE_CANDIDATE` |
/// | `reasons` | text | reason codes joined by `\|` |
/// | `top_contributions` | text | `feature:+0.123` joined by `\|` (log-odds contributions) |
/// | `verdict_id` | text | the verdict's stable id |
/// | `model_version` | text | the model that scored |
/// | `scored_at` | i64 | the scoring time, Unix seconds |
pub const SCORE_COLUMNS: [&str; 15] = [
    "tenant",
    "key",
    "size",
    "storage_class",
    "owner",
    "created",
    "last_read",
    "reads",
    "probability",
    "class",
    "reasons",
    "top_contributions",
    "verdict_id",
    "model_version",
    "scored_at",
];

/// Rows per Parquet row group / DataFrame chunk.
const CHUNK_ROWS: usize = 1 << 17;

/// Format of the scores file, chosen by the `--out` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoresFormat {
    Csv,
    Parquet,
}

impl ScoresFormat {
    /// `.csv` or `.parquet` (any case); anything else is a usage error naming `--out`.
    pub fn from_path(path: &Path) -> Result<Self, BatchError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("parquet") => Ok(Self::Parquet),
            _ => Err(BatchError::usage(
                "--out",
                format!("{}: the scores file must end in .parquet or .csv", path.display()),
            )),
        }
    }
}

/// One row of the scores file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScoreRow {
    tenant: String,
    key: String,
    size: Option<u64>,
    storage_class: &'static str,
    owner: Option<String>,
    created: Option<i64>,
    last_read: Option<i64>,
    reads: u64,
    probability: f64,
    class: &'static str,
    reasons: String,
    top_contributions: String,
    verdict_id: String,
    model_version: String,
    scored_at: i64,
}

impl ScoreRow {
    pub(crate) fn new(record: &ObjectRecord, stats: &HistoryStats, verdict: &Verdict) -> Self {
        Self {
            tenant: verdict.tenant.clone(),
            key: verdict.key.clone(),
            size: record.size,
            storage_class: record.storage_class.s3_name(),
            owner: record.owner.clone(),
            created: record.created,
            last_read: stats.last,
            reads: stats.count,
            probability: verdict.probability,
            class: verdict.class.as_str(),
            reasons: reasons_cell(verdict),
            top_contributions: contributions_cell(verdict),
            verdict_id: verdict.verdict_id.clone(),
            model_version: verdict.model_version.clone(),
            scored_at: verdict.scored_at,
        }
    }

    /// [`Self::new`] for a record and verdict that are no longer needed: their texts move into the row.
    pub(crate) fn from_owned(record: ObjectRecord, stats: &HistoryStats, verdict: Verdict) -> Self {
        Self {
            size: record.size,
            storage_class: record.storage_class.s3_name(),
            owner: record.owner,
            created: record.created,
            last_read: stats.last,
            reads: stats.count,
            probability: verdict.probability,
            class: verdict.class.as_str(),
            reasons: reasons_cell(&verdict),
            top_contributions: contributions_cell(&verdict),
            tenant: verdict.tenant,
            key: verdict.key,
            verdict_id: verdict.verdict_id,
            model_version: verdict.model_version,
            scored_at: verdict.scored_at,
        }
    }
}

/// The `reasons` cell: reason codes joined by `|`.
fn reasons_cell(verdict: &Verdict) -> String {
    let mut reasons = String::with_capacity(64);
    for (i, r) in verdict.reasons.iter().enumerate() {
        if i > 0 {
            reasons.push('|');
        }
        reasons.push_str(r.as_str());
    }
    reasons
}

/// The `top_contributions` cell: `feature:+0.123` joined by `|`.
fn contributions_cell(verdict: &Verdict) -> String {
    let mut contributions = String::with_capacity(160);
    for (i, c) in verdict.contributions.iter().enumerate() {
        if i > 0 {
            contributions.push('|');
        }
        contributions.push_str(&c.feature);
        contributions.push(':');
        push_signed_3(&mut contributions, c.contribution);
    }
    contributions
}

/// Appends `x` as `format!("{x:+.3}")` would (sign always, three decimals), without the general float formatter
/// for the usual values; values whose rounding is a near tie, huge or not finite go through `format!`.
fn push_signed_3(out: &mut String, x: f64) {
    use std::fmt::Write as _;
    let scaled = x.abs() * 1000.0;
    let rounded = scaled.round();
    // `scaled` is within a relative 2^-53 of the exact decimal value, so away from a tie (and far below 2^53) it
    // rounds the same way as the exact value the formatter rounds.
    if x.is_finite() && scaled < 1e12 && (scaled - rounded).abs() < 0.49 {
        let milli = rounded as u64;
        let sign = if x.is_sign_negative() { '-' } else { '+' };
        // Integers only: no float formatting.
        let _ = write!(out, "{sign}{}.{:03}", milli / 1000, milli % 1000);
    } else {
        let _ = write!(out, "{x:+.3}");
    }
}

/// Writes the scores to `<out>.partial` and renames it to `out` when complete, so that a failed run never leaves
/// a truncated file under the final name.
pub(crate) struct ScoresWriter {
    out: PathBuf,
    partial: PathBuf,
    /// `None` once finished.
    sink: Option<Sink>,
}

enum Sink {
    Csv(BufWriter<File>),
    Parquet {
        writer: Box<BatchedWriter<BufWriter<File>>>,
        rows: Vec<ScoreRow>,
        written: bool,
    },
}

impl std::fmt::Debug for ScoresWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoresWriter")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

fn schema() -> Schema {
    Schema::from_iter([
        Field::new("tenant".into(), DataType::String),
        Field::new("key".into(), DataType::String),
        Field::new("size".into(), DataType::UInt64),
        Field::new("storage_class".into(), DataType::String),
        Field::new("owner".into(), DataType::String),
        Field::new("created".into(), DataType::Int64),
        Field::new("last_read".into(), DataType::Int64),
        Field::new("reads".into(), DataType::UInt64),
        Field::new("probability".into(), DataType::Float64),
        Field::new("class".into(), DataType::String),
        Field::new("reasons".into(), DataType::String),
        Field::new("top_contributions".into(), DataType::String),
        Field::new("verdict_id".into(), DataType::String),
        Field::new("model_version".into(), DataType::String),
        Field::new("scored_at".into(), DataType::Int64),
    ])
}

impl ScoresWriter {
    pub(crate) fn create(out: &Path, format: ScoresFormat) -> Result<Self, BatchError> {
        let mut name = out.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let file = File::create(&partial).map_err(|e| BatchError::io(&partial, e))?;
        let file = BufWriter::with_capacity(1 << 20, file);
        let sink = match format {
            ScoresFormat::Csv => {
                let mut w = file;
                w.write_all(SCORE_COLUMNS.join(",").as_bytes())
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| BatchError::io(&partial, e))?;
                Sink::Csv(w)
            }
            ScoresFormat::Parquet => {
                // zstd at level 1: about twice as fast to write as the default level 3 for a few percent more
                // bytes (the scores file is written on the thread that also tallies the report).
                let level = ZstdLevel::try_new(1).map_err(|e| parquet_error(&partial, e))?;
                let writer = ParquetWriter::new(file)
                    .with_compression(ParquetCompression::Zstd(Some(level)))
                    .with_row_group_size(Some(CHUNK_ROWS))
                    .batched(&schema())
                    .map_err(|e| parquet_error(&partial, e))?;
                Sink::Parquet {
                    writer: Box::new(writer),
                    rows: Vec::with_capacity(CHUNK_ROWS),
                    written: false,
                }
            }
        };
        Ok(Self {
            out: out.to_path_buf(),
            partial,
            sink: Some(sink),
        })
    }

    pub(crate) fn push(&mut self, row: ScoreRow) -> Result<(), BatchError> {
        match self.sink.as_mut().expect("not finished") {
            Sink::Csv(w) => write_csv_row(w, &row).map_err(|e| BatchError::io(&self.partial, e)),
            Sink::Parquet { writer, rows, written } => {
                rows.push(row);
                if rows.len() >= CHUNK_ROWS {
                    write_chunk(writer, rows, &self.partial)?;
                    *written = true;
                }
                Ok(())
            }
        }
    }

    /// Flushes, closes and renames the file to its final name; on failure the partial file is removed.
    pub(crate) fn finish(mut self) -> Result<PathBuf, BatchError> {
        let Some(sink) = self.sink.take() else {
            return Ok(self.out.clone());
        };
        let result = close(sink, &self.partial)
            .and_then(|()| std::fs::rename(&self.partial, &self.out).map_err(|e| BatchError::io(&self.out, e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        result.map(|()| self.out.clone())
    }
}

fn close(sink: Sink, partial: &Path) -> Result<(), BatchError> {
    match sink {
        Sink::Csv(mut w) => {
            w.flush().map_err(|e| BatchError::io(partial, e))?;
            w.into_inner()
                .map_err(|e| BatchError::io(partial, e.into_error()))?
                .sync_all()
                .map_err(|e| BatchError::io(partial, e))
        }
        Sink::Parquet {
            mut writer,
            mut rows,
            written,
        } => {
            // An empty shard still gets a (schema-only) file.
            if !rows.is_empty() || !written {
                write_chunk(&mut writer, &mut rows, partial)?;
            }
            writer.finish().map_err(|e| parquet_error(partial, e))?;
            Ok(())
        }
    }
}

impl Drop for ScoresWriter {
    /// A writer dropped before [`ScoresWriter::finish`] (an error stopped the run) removes its partial file.
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

fn parquet_error(path: &Path, source: PolarsError) -> BatchError {
    BatchError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

fn write_chunk(
    writer: &mut BatchedWriter<BufWriter<File>>,
    rows: &mut Vec<ScoreRow>,
    path: &Path,
) -> Result<(), BatchError> {
    let strs = |name: &str, f: &dyn Fn(&ScoreRow) -> &str| {
        StringChunked::from_iter_values(name.into(), rows.iter().map(f)).into_column()
    };
    let opt_strs = |name: &str, f: &dyn Fn(&ScoreRow) -> Option<&str>| {
        StringChunked::from_iter_options(name.into(), rows.iter().map(f)).into_column()
    };
    let columns = vec![
        strs("tenant", &|r| &r.tenant),
        strs("key", &|r| &r.key),
        Column::new("size".into(), rows.iter().map(|r| r.size).collect::<Vec<Option<u64>>>()),
        strs("storage_class", &|r| r.storage_class),
        opt_strs("owner", &|r| r.owner.as_deref()),
        Column::new(
            "created".into(),
            rows.iter().map(|r| r.created).collect::<Vec<Option<i64>>>(),
        ),
        Column::new(
            "last_read".into(),
            rows.iter().map(|r| r.last_read).collect::<Vec<Option<i64>>>(),
        ),
        Column::new("reads".into(), rows.iter().map(|r| r.reads).collect::<Vec<u64>>()),
        Column::new(
            "probability".into(),
            rows.iter().map(|r| r.probability).collect::<Vec<f64>>(),
        ),
        strs("class", &|r| r.class),
        strs("reasons", &|r| &r.reasons),
        strs("top_contributions", &|r| &r.top_contributions),
        strs("verdict_id", &|r| &r.verdict_id),
        strs("model_version", &|r| &r.model_version),
        Column::new(
            "scored_at".into(),
            rows.iter().map(|r| r.scored_at).collect::<Vec<i64>>(),
        ),
    ];
    let df = DataFrame::new(rows.len(), columns).map_err(|e| parquet_error(path, e))?;
    writer.write_batch(&df).map_err(|e| parquet_error(path, e))?;
    rows.clear();
    Ok(())
}

/// Writes `text` as a CSV cell, quoted when it holds a comma, a quote or a line break.
fn put_text(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    if text.contains([',', '"', '\n', '\r']) {
        w.write_all(b"\"")?;
        w.write_all(text.replace('"', "\"\"").as_bytes())?;
        w.write_all(b"\"")
    } else {
        w.write_all(text.as_bytes())
    }
}

fn put_opt<T: std::fmt::Display>(w: &mut impl Write, v: Option<T>) -> std::io::Result<()> {
    match v {
        Some(v) => write!(w, "{v}"),
        None => Ok(()),
    }
}

fn write_csv_row(w: &mut impl Write, r: &ScoreRow) -> std::io::Result<()> {
    put_text(w, &r.tenant)?;
    w.write_all(b",")?;
    put_text(w, &r.key)?;
    w.write_all(b",")?;
    put_opt(w, r.size)?;
    w.write_all(b",")?;
    put_text(w, r.storage_class)?;
    w.write_all(b",")?;
    put_text(w, r.owner.as_deref().unwrap_or(""))?;
    w.write_all(b",")?;
    put_opt(w, r.created)?;
    w.write_all(b",")?;
    put_opt(w, r.last_read)?;
    write!(w, ",{},{},{},", r.reads, r.probability, r.class)?;
    put_text(w, &r.reasons)?;
    w.write_all(b",")?;
    put_text(w, &r.top_contributions)?;
    w.write_all(b",")?;
    put_text(w, &r.verdict_id)?;
    w.write_all(b",")?;
    put_text(w, &r.model_version)?;
    writeln!(w, ",{}", r.scored_at)
}

#[cfg(test)]
mod tests {
    use super::push_signed_3;

    #[test]
    fn signed_three_decimals_match_the_formatter() {
        let mut values = vec![
            0.0,
            -0.0,
            0.0005,
            -0.0005,
            0.0015,
            0.0025,
            1.0005,
            -2.4995,
            0.12345,
            -0.0001,
            999.9995,
            1e11,
            1e13,
            -1e20,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ];
        // A deterministic spread of magnitudes and signs.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let scale = [1e-4, 1e-2, 1.0, 30.0, 1e4][(state % 5) as usize];
            values.push((unit - 0.5) * 2.0 * scale);
        }
        for x in values {
            let mut ours = String::new();
            push_signed_3(&mut ours, x);
            assert_eq!(ours, format!("{x:+.3}"), "{x:e}");
        }
    }
}
