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
pub(crate) const CHUNK_ROWS: usize = 1 << 17;

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

/// Rows of the scores file, every text cell of the block in one buffer: a block is allocated and freed in a few
/// pieces instead of seven strings per row (rows are built on scoring threads and dropped on the writer's).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ScoreRows {
    text: String,
    rows: Vec<RowCells>,
}

/// The text cells of a row, in the order their ends are kept in [`RowCells::text_ends`].
const TENANT: usize = 0;
const KEY: usize = 1;
const OWNER: usize = 2;
const REASONS: usize = 3;
const CONTRIBUTIONS: usize = 4;
const VERDICT_ID: usize = 5;
const MODEL_VERSION: usize = 6;
const TEXT_CELLS: usize = 7;

/// One row of [`ScoreRows`]: where its text cells end in the block's buffer (each starts where the previous one
/// ends, the first where the previous row's last ends), and its other cells.
#[derive(Debug, Clone, PartialEq)]
struct RowCells {
    text_ends: [usize; TEXT_CELLS],
    has_owner: bool,
    size: Option<u64>,
    storage_class: &'static str,
    created: Option<i64>,
    last_read: Option<i64>,
    reads: u64,
    probability: f64,
    class: &'static str,
    scored_at: i64,
}

/// One row of the scores file, its texts borrowed from a [`ScoreRows`] block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScoreRow<'a> {
    tenant: &'a str,
    key: &'a str,
    size: Option<u64>,
    storage_class: &'static str,
    owner: Option<&'a str>,
    created: Option<i64>,
    last_read: Option<i64>,
    reads: u64,
    probability: f64,
    class: &'static str,
    reasons: &'a str,
    top_contributions: &'a str,
    verdict_id: &'a str,
    model_version: &'a str,
    scored_at: i64,
}

impl ScoreRows {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            // Text per row: 262 bytes on average for `reprieve synth`'s objects (key 46, reasons 30, contributions 123,
            // ids 48): room for 320, so that a chunk's text is not copied to a buffer twice its size halfway.
            text: String::with_capacity(rows.saturating_mul(320)),
            rows: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Appends the row of `record`, scored as `verdict`, with `stats` its aggregated reads.
    pub(crate) fn push(&mut self, record: &ObjectRecord, stats: &HistoryStats, verdict: &Verdict) {
        let text = &mut self.text;
        let mut text_ends = [0; TEXT_CELLS];
        text.push_str(&verdict.tenant);
        text_ends[TENANT] = text.len();
        text.push_str(&verdict.key);
        text_ends[KEY] = text.len();
        text.push_str(record.owner.as_deref().unwrap_or_default());
        text_ends[OWNER] = text.len();
        for (i, r) in verdict.reasons.iter().enumerate() {
            if i > 0 {
                text.push('|');
            }
            text.push_str(r.as_str());
        }
        text_ends[REASONS] = text.len();
        for (i, c) in verdict.contributions.iter().enumerate() {
            if i > 0 {
                text.push('|');
            }
            text.push_str(&c.feature);
            text.push(':');
            push_signed_3(text, c.contribution);
        }
        text_ends[CONTRIBUTIONS] = text.len();
        text.push_str(&verdict.verdict_id);
        text_ends[VERDICT_ID] = text.len();
        text.push_str(&verdict.model_version);
        text_ends[MODEL_VERSION] = text.len();
        self.rows.push(RowCells {
            text_ends,
            has_owner: record.owner.is_some(),
            size: record.size,
            storage_class: record.storage_class.s3_name(),
            created: record.created,
            last_read: stats.last,
            reads: stats.count,
            probability: verdict.probability,
            class: verdict.class.as_str(),
            scored_at: verdict.scored_at,
        });
    }

    /// Text cell `cell` of row `i`.
    fn text(&self, i: usize, cell: usize) -> &str {
        let ends = &self.rows[i].text_ends;
        let from = match cell.checked_sub(1) {
            Some(previous) => ends[previous],
            None => i.checked_sub(1).map_or(0, |p| self.rows[p].text_ends[TEXT_CELLS - 1]),
        };
        &self.text[from..ends[cell]]
    }

    /// Row `i`.
    fn get(&self, i: usize) -> ScoreRow<'_> {
        let cells = &self.rows[i];
        let text = |cell: usize| self.text(i, cell);
        ScoreRow {
            tenant: text(TENANT),
            key: text(KEY),
            size: cells.size,
            storage_class: cells.storage_class,
            owner: cells.has_owner.then(|| text(OWNER)),
            created: cells.created,
            last_read: cells.last_read,
            reads: cells.reads,
            probability: cells.probability,
            class: cells.class,
            reasons: text(REASONS),
            top_contributions: text(CONTRIBUTIONS),
            verdict_id: text(VERDICT_ID),
            model_version: text(MODEL_VERSION),
            scored_at: cells.scored_at,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = ScoreRow<'_>> {
        (0..self.rows.len()).map(|i| self.get(i))
    }
}

/// Appends `x` as `format!("{x:+.3}")` would (sign always, three decimals), with integer digits only for the
/// usual values; values whose rounding is a near tie, huge or not finite go through `format!`.
fn push_signed_3(out: &mut String, x: f64) {
    use std::fmt::Write as _;
    let scaled = x.abs() * 1000.0;
    let rounded = scaled.round();
    // Below 1e9, `scaled` is within 2^-53 * 1e9 < 1.2e-7 of the exact decimal value the formatter rounds, so
    // anywhere but within 1e-6 of a tie both round the same way.
    if x.is_finite() && scaled < 1e9 && (scaled - rounded).abs() < 0.5 - 1e-6 {
        let milli = rounded as u64;
        out.push(if x.is_sign_negative() { '-' } else { '+' });
        let mut digits = [0u8; 20];
        let mut start = digits.len() - 4;
        let mut rest = milli / 1000;
        let fraction = milli % 1000;
        digits[start] = b'.';
        digits[start + 1] = b'0' + (fraction / 100) as u8;
        digits[start + 2] = b'0' + (fraction / 10 % 10) as u8;
        digits[start + 3] = b'0' + (fraction % 10) as u8;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        // ASCII digits and a dot, pushed as chars: no UTF-8 check of the slice.
        out.extend(digits[start..].iter().map(|&b| char::from(b)));
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
        /// Blocks waiting for a row group, `rows` rows in all.
        blocks: Vec<ScoreRows>,
        rows: usize,
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
                    blocks: Vec::new(),
                    rows: 0,
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

    /// Writes (or buffers, up to a row group) a block of rows.
    pub(crate) fn push(&mut self, block: ScoreRows) -> Result<(), BatchError> {
        match self.sink.as_mut().expect("not finished") {
            Sink::Csv(w) => block
                .iter()
                .try_for_each(|row| write_csv_row(w, &row))
                .map_err(|e| BatchError::io(&self.partial, e)),
            Sink::Parquet {
                writer,
                blocks,
                rows,
                written,
            } => {
                *rows += block.len();
                blocks.push(block);
                if *rows >= CHUNK_ROWS {
                    write_chunk(writer, blocks, &self.partial)?;
                    *rows = 0;
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
            mut blocks,
            rows,
            written,
        } => {
            // An empty shard still gets a (schema-only) file.
            if rows > 0 || !written {
                write_chunk(&mut writer, &mut blocks, partial)?;
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

/// Writes `blocks` as one row group and empties it.
fn write_chunk(
    writer: &mut BatchedWriter<BufWriter<File>>,
    blocks: &mut Vec<ScoreRows>,
    path: &Path,
) -> Result<(), BatchError> {
    let cells = || blocks.iter().flat_map(|b| b.rows.iter());
    let height = blocks.iter().map(ScoreRows::len).sum();
    // The text columns are filled a block at a time, each reading only its own cell of every row: a block's rows
    // and texts stay in cache for the seven passes.
    let mut texts: [StringChunkedBuilder; TEXT_CELLS] = std::array::from_fn(|cell| {
        let name = match cell {
            TENANT => "tenant",
            KEY => "key",
            OWNER => "owner",
            REASONS => "reasons",
            CONTRIBUTIONS => "top_contributions",
            VERDICT_ID => "verdict_id",
            _ => "model_version",
        };
        StringChunkedBuilder::new(name.into(), height)
    });
    for block in blocks.iter() {
        for (cell, column) in texts.iter_mut().enumerate() {
            for (i, row) in block.rows.iter().enumerate() {
                if cell == OWNER && !row.has_owner {
                    column.append_null();
                } else {
                    column.append_value(block.text(i, cell));
                }
            }
        }
    }
    let [tenant, key, owner, reasons, contributions, verdict_id, model_version] =
        texts.map(|column| column.finish().into_column());
    let statics = |name: &str, f: fn(&RowCells) -> &'static str| {
        StringChunked::from_iter_values(name.into(), cells().map(f)).into_column()
    };
    let columns = vec![
        tenant,
        key,
        Column::new("size".into(), cells().map(|r| r.size).collect::<Vec<Option<u64>>>()),
        statics("storage_class", |r| r.storage_class),
        owner,
        Column::new(
            "created".into(),
            cells().map(|r| r.created).collect::<Vec<Option<i64>>>(),
        ),
        Column::new(
            "last_read".into(),
            cells().map(|r| r.last_read).collect::<Vec<Option<i64>>>(),
        ),
        Column::new("reads".into(), cells().map(|r| r.reads).collect::<Vec<u64>>()),
        Column::new(
            "probability".into(),
            cells().map(|r| r.probability).collect::<Vec<f64>>(),
        ),
        statics("class", |r| r.class),
        reasons,
        contributions,
        verdict_id,
        model_version,
        Column::new("scored_at".into(), cells().map(|r| r.scored_at).collect::<Vec<i64>>()),
    ];
    let df = DataFrame::new(height, columns).map_err(|e| parquet_error(path, e))?;
    writer.write_batch(&df).map_err(|e| parquet_error(path, e))?;
    blocks.clear();
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

fn write_csv_row(w: &mut impl Write, r: &ScoreRow<'_>) -> std::io::Result<()> {
    put_text(w, r.tenant)?;
    w.write_all(b",")?;
    put_text(w, r.key)?;
    w.write_all(b",")?;
    put_opt(w, r.size)?;
    w.write_all(b",")?;
    put_text(w, r.storage_class)?;
    w.write_all(b",")?;
    put_text(w, r.owner.unwrap_or(""))?;
    w.write_all(b",")?;
    put_opt(w, r.created)?;
    w.write_all(b",")?;
    put_opt(w, r.last_read)?;
    write!(w, ",{},{},{},", r.reads, r.probability, r.class)?;
    put_text(w, r.reasons)?;
    w.write_all(b",")?;
    put_text(w, r.top_contributions)?;
    w.write_all(b",")?;
    put_text(w, r.verdict_id)?;
    w.write_all(b",")?;
    put_text(w, r.model_version)?;
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
        // Near ties: halves of a thousandth, and their neighbouring floats, up to the fast path's bound.
        for k in (0..20_000u64).chain((0..2_000).map(|k| 999_990_000 + k)) {
            let tie = (k as f64 + 0.5) / 1000.0;
            for x in [
                tie,
                f64::from_bits(tie.to_bits() - 1),
                f64::from_bits(tie.to_bits() + 1),
            ] {
                values.extend([x, -x]);
            }
        }
        for x in values {
            let mut ours = String::new();
            push_signed_3(&mut ours, x);
            assert_eq!(ours, format!("{x:+.3}"), "{x:e}");
        }
    }
}
