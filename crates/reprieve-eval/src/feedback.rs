//! The feedback export, writer and reader in one place: this file is the whole contract between
//! `reprieve feedback export` (which writes it from the store) and `reprieve train --feedback` (which learns from it).
//!
//! One Parquet row per acted-on verdict whose label is known: the verdict as issued, the latest action on it, the
//! feature vector the model saw when it decided, and the label `reused` (the object had to be restored within the
//! store's restore window). The columns are [`FIXED_COLUMNS`] followed by one `f64` column per feature, named and
//! ordered as [`reprieve_core::FEATURE_NAMES`].
//!
//! The feature schema travels twice: as file-level key-value metadata ([`META_SCHEMA_VERSION`],
//! [`META_SCHEMA_HASH`], with [`META_FORMAT`] = [`EXPORT_FORMAT`]) and per row (`feature_schema_hash`, the hash the
//! verdict's features were computed with). The reader refuses a file whose metadata or any row names another
//! schema, or that lacks a feature column; tools that rewrite Parquet and drop the metadata still leave the
//! per-row hash to check. Rows of another schema never reach a file: the writer skips and counts them.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use reprieve_batch::formats::BatchPlan;
use reprieve_core::{FEATURE_COUNT, FEATURE_NAMES, FeatureSchema, FeatureVector, UnixSeconds, VerdictClass};
use reprieve_model::train::ExtraRows;

use crate::error::EvalError;

/// The value of [`META_FORMAT`] in every export this code writes and reads.
pub const EXPORT_FORMAT: &str = "reprieve-feedback/1";
/// Key-value metadata: the export format.
pub const META_FORMAT: &str = "reprieve.export_format";
/// Key-value metadata: `FeatureSchema::version` of every row's features.
pub const META_SCHEMA_VERSION: &str = "reprieve.feature_schema_version";
/// Key-value metadata: `FeatureSchema::hash` of every row's features.
pub const META_SCHEMA_HASH: &str = "reprieve.feature_schema_hash";
/// Key-value metadata: the time the labels were read at (Unix seconds).
pub const META_EXPORTED_AT: &str = "reprieve.exported_at";
/// Key-value metadata: the store's restore window in seconds (what `reused` means).
pub const META_RESTORE_WINDOW: &str = "reprieve.restore_window_secs";

/// The columns before the feature columns, in order.
///
/// | column | type | meaning |
/// |---|---|---|
/// | `verdict_id` | text | the verdict's stable id |
/// | `tenant` | text | tenant / bucket (empty: the default tenant) |
/// | `key` | text | object key |
/// | `model_version` | text | the model that issued the verdict |
/// | `class` | text | `RETAIN`, `REVIEW`, `ARCHIVE`, `DELETE_CANDIDATE` |
/// | `probability` | f64 | calibrated P(reuse) the verdict carried |
/// | `scored_at` | i64 | decision time, Unix seconds (the features describe the object then) |
/// | `source` | text | front door that issued it: `grpc` or `batch` |
/// | `action` | text | latest action on it: `ARCHIVED`, `SOFT_DELETED`, `HARD_DELETED` |
/// | `acted_at` | i64 | time of that action, Unix seconds |
/// | `reused` | bool | the label: an action on the verdict was matched by a restore (restored = reused) |
/// | `feature_schema_hash` | text | `FeatureSchema::hash` of this row's features |
pub const FIXED_COLUMNS: [&str; 12] = [
    "verdict_id",
    "tenant",
    "key",
    "model_version",
    "class",
    "probability",
    "scored_at",
    "source",
    "action",
    "acted_at",
    "reused",
    "feature_schema_hash",
];

/// Rows per Parquet row group, and per batch when reading.
const CHUNK_ROWS: usize = 65_536;

/// One row of the export.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub verdict_id: String,
    pub tenant: String,
    pub key: String,
    pub model_version: String,
    pub class: VerdictClass,
    pub probability: f64,
    pub scored_at: UnixSeconds,
    pub source: String,
    /// `ARCHIVED`, `SOFT_DELETED` or `HARD_DELETED`.
    pub action: String,
    pub acted_at: UnixSeconds,
    pub reused: bool,
    pub feature_schema_hash: String,
    /// In schema order; written only if there are [`FEATURE_COUNT`] finite values and the hash is the current one.
    pub features: Vec<f64>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub rows: u64,
    /// Of those, labelled `reused`.
    pub reused: u64,
    /// Rows left out because their features are of another schema (or not a full, finite vector).
    pub skipped_schema: u64,
}

/// What one export file contributed to training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackFile {
    pub path: PathBuf,
    pub rows: u64,
    pub reused: u64,
}

fn parquet_error(path: &Path, source: PolarsError) -> EvalError {
    EvalError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, detail: impl Into<String>) -> EvalError {
    EvalError::Feedback {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn schema() -> Schema {
    let fixed = [
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::Float64,
        DataType::Int64,
        DataType::String,
        DataType::String,
        DataType::Int64,
        DataType::Boolean,
        DataType::String,
    ];
    let fields = FIXED_COLUMNS
        .iter()
        .zip(fixed)
        .map(|(name, dt)| Field::new((*name).into(), dt))
        .chain(FEATURE_NAMES.iter().map(|n| Field::new((*n).into(), DataType::Float64)));
    Schema::from_iter(fields)
}

/// Writes `rows` to `path` (via `<path>.partial`, renamed when complete). `exported_at` and
/// `restore_window_secs` are recorded in the file's metadata.
pub fn write_feedback(
    path: &Path,
    exported_at: UnixSeconds,
    restore_window_secs: i64,
    rows: impl IntoIterator<Item = FeedbackRow>,
) -> Result<ExportSummary, EvalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    let partial = PathBuf::from(name);
    let result = write_to(&partial, exported_at, restore_window_secs, rows).and_then(|s| {
        std::fs::rename(&partial, path)
            .map(|()| s)
            .map_err(|e| io_error(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn io_error(path: &Path, e: std::io::Error) -> EvalError {
    bad(path, e.to_string())
}

fn write_to(
    path: &Path,
    exported_at: UnixSeconds,
    restore_window_secs: i64,
    rows: impl IntoIterator<Item = FeedbackRow>,
) -> Result<ExportSummary, EvalError> {
    let current = FeatureSchema::current();
    let file = File::create(path).map_err(|e| io_error(path, e))?;
    let meta = KeyValueMetadata::from_static(vec![
        (META_FORMAT.to_string(), EXPORT_FORMAT.to_string()),
        (META_SCHEMA_VERSION.to_string(), current.version.clone()),
        (META_SCHEMA_HASH.to_string(), current.hash.clone()),
        (META_EXPORTED_AT.to_string(), exported_at.to_string()),
        (META_RESTORE_WINDOW.to_string(), restore_window_secs.to_string()),
    ]);
    let mut writer = ParquetWriter::new(BufWriter::with_capacity(1 << 20, file))
        .with_row_group_size(Some(CHUNK_ROWS))
        .with_key_value_metadata(Some(meta))
        .batched(&schema())
        .map_err(|e| parquet_error(path, e))?;
    let mut summary = ExportSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK_ROWS.min(4_096));
    let mut written = false;
    for row in rows {
        if row.feature_schema_hash != current.hash || FeatureVector::from_values(&row.features).is_none() {
            summary.skipped_schema += 1;
            continue;
        }
        summary.rows += 1;
        summary.reused += u64::from(row.reused);
        chunk.push(row);
        if chunk.len() >= CHUNK_ROWS {
            write_chunk(&mut writer, &mut chunk, path)?;
            written = true;
        }
    }
    // An empty export still gets a (schema-only) file.
    if !chunk.is_empty() || !written {
        write_chunk(&mut writer, &mut chunk, path)?;
    }
    writer.finish().map_err(|e| parquet_error(path, e))?;
    Ok(summary)
}

fn write_chunk(
    writer: &mut BatchedWriter<BufWriter<File>>,
    rows: &mut Vec<FeedbackRow>,
    path: &Path,
) -> Result<(), EvalError> {
    let strs = |name: &str, f: &dyn Fn(&FeedbackRow) -> &str| {
        StringChunked::from_iter_values(name.into(), rows.iter().map(f)).into_column()
    };
    let mut columns = vec![
        strs("verdict_id", &|r| &r.verdict_id),
        strs("tenant", &|r| &r.tenant),
        strs("key", &|r| &r.key),
        strs("model_version", &|r| &r.model_version),
        strs("class", &|r| r.class.as_str()),
        Column::new(
            "probability".into(),
            rows.iter().map(|r| r.probability).collect::<Vec<f64>>(),
        ),
        Column::new(
            "scored_at".into(),
            rows.iter().map(|r| r.scored_at).collect::<Vec<i64>>(),
        ),
        strs("source", &|r| &r.source),
        strs("action", &|r| &r.action),
        Column::new("acted_at".into(), rows.iter().map(|r| r.acted_at).collect::<Vec<i64>>()),
        Column::new("reused".into(), rows.iter().map(|r| r.reused).collect::<Vec<bool>>()),
        strs("feature_schema_hash", &|r| &r.feature_schema_hash),
    ];
    for (i, name) in FEATURE_NAMES.iter().enumerate() {
        let values: Vec<f64> = rows.iter().map(|r| r.features.get(i).copied().unwrap_or(0.0)).collect();
        columns.push(Column::new((*name).into(), values));
    }
    let df = DataFrame::new_infer_height(columns).map_err(|e| parquet_error(path, e))?;
    writer.write_batch(&df).map_err(|e| parquet_error(path, e))?;
    rows.clear();
    Ok(())
}

/// Reads an export into `extra` (features and `reused`), after checking that its feature schema is this build's.
/// Refused, with nothing added: another export format, another schema in the metadata or in any row, a missing
/// feature column, a null or non-finite value.
pub fn read_feedback(path: &Path, extra: &mut ExtraRows) -> Result<FeedbackFile, EvalError> {
    let current = FeatureSchema::current();
    let open = || File::open(path).map_err(|e| io_error(path, e));
    let mut reader = ParquetReader::new(open()?);
    let metadata = reader.get_metadata().map_err(|e| parquet_error(path, e))?.clone();
    let kv: HashMap<&str, &str> = metadata
        .key_value_metadata()
        .iter()
        .flatten()
        .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_deref()?)))
        .collect();
    if let Some(format) = kv.get(META_FORMAT)
        && *format != EXPORT_FORMAT
    {
        return Err(bad(
            path,
            format!("export format {format:?}, this build reads {EXPORT_FORMAT:?}"),
        ));
    }
    let (meta_version, meta_hash) = (kv.get(META_SCHEMA_VERSION), kv.get(META_SCHEMA_HASH));
    if meta_version.is_some_and(|v| *v != current.version) || meta_hash.is_some_and(|h| *h != current.hash) {
        return Err(EvalError::FeedbackSchema {
            path: path.to_path_buf(),
            found: format!(
                "{} (hash {})",
                meta_version.copied().unwrap_or("?"),
                meta_hash.copied().unwrap_or("?")
            ),
            expected: format!("{} (hash {})", current.version, current.hash),
        });
    }
    let names: Vec<String> = reader
        .schema()
        .map_err(|e| parquet_error(path, e))?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    let missing: Vec<&str> = FEATURE_NAMES
        .iter()
        .chain(["reused", "feature_schema_hash"].iter())
        .filter(|n| !names.iter().any(|c| c == *n))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(EvalError::FeedbackSchema {
            path: path.to_path_buf(),
            found: format!("columns without {}", missing.join(", ")),
            expected: format!(
                "{} (hash {}) with all its feature columns",
                current.version, current.hash
            ),
        });
    }
    let total = reader.num_rows().map_err(|e| parquet_error(path, e))?;
    let columns: Vec<String> = ["reused", "feature_schema_hash"]
        .iter()
        .chain(FEATURE_NAMES.iter())
        .map(|s| s.to_string())
        .collect();
    let mut features = Vec::with_capacity(total);
    let mut reused = Vec::with_capacity(total);
    // Row group by row group: reading slices of the whole file would decode every group before each slice.
    let batches = BatchPlan::new(path, &columns)?;
    let mut offset = 0;
    for i in 0..batches.len() {
        let df = batches.read(i)?;
        read_batch(path, &df, offset, &current, &mut features, &mut reused)?;
        offset += df.height();
    }
    let file = FeedbackFile {
        path: path.to_path_buf(),
        rows: features.len() as u64,
        reused: reused.iter().filter(|&&r| r).count() as u64,
    };
    extra.features.extend(features);
    extra.reused.extend(reused);
    Ok(file)
}

/// Checks and converts one batch; `offset` is the number of rows before it (row numbers in errors are 1-based).
fn read_batch(
    path: &Path,
    df: &DataFrame,
    offset: usize,
    current: &FeatureSchema,
    features: &mut Vec<FeatureVector>,
    reused: &mut Vec<bool>,
) -> Result<(), EvalError> {
    let pe = |e| parquet_error(path, e);
    let labels = df
        .column("reused")
        .and_then(|c| c.cast(&DataType::Boolean))
        .map_err(pe)?;
    let labels = labels.bool().map_err(pe)?;
    let hashes = df
        .column("feature_schema_hash")
        .and_then(|c| c.cast(&DataType::String))
        .map_err(pe)?;
    let hashes = hashes.str().map_err(pe)?;
    let mut values: Vec<Float64Chunked> = Vec::with_capacity(FEATURE_COUNT);
    for name in FEATURE_NAMES {
        let col = df.column(name).and_then(|c| c.cast(&DataType::Float64)).map_err(pe)?;
        values.push(col.f64().map_err(pe)?.clone());
    }
    let mut row = [0.0; FEATURE_COUNT];
    for i in 0..df.height() {
        let n = offset + i + 1;
        match hashes.get(i) {
            Some(h) if h == current.hash => {}
            found => {
                return Err(EvalError::FeedbackSchema {
                    path: path.to_path_buf(),
                    found: format!("row {n}: feature schema hash {:?}", found.unwrap_or("")),
                    expected: format!("{} (hash {})", current.version, current.hash),
                });
            }
        }
        let label = labels
            .get(i)
            .ok_or_else(|| bad(path, format!("row {n}: `reused` is null")))?;
        for (j, (slot, col)) in row.iter_mut().zip(&values).enumerate() {
            *slot = col.get(i).filter(|v| v.is_finite()).ok_or_else(|| {
                bad(
                    path,
                    format!("row {n}: feature {} is null or not finite", FEATURE_NAMES[j]),
                )
            })?;
        }
        let vector =
            FeatureVector::from_values(&row).ok_or_else(|| bad(path, format!("row {n}: not a feature vector")))?;
        features.push(vector);
        reused.push(label);
    }
    Ok(())
}

/// Reads every export into one set of extra training rows; all or nothing.
pub fn read_feedback_files(paths: &[PathBuf]) -> Result<(ExtraRows, Vec<FeedbackFile>), EvalError> {
    let mut extra = ExtraRows::default();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        files.push(read_feedback(path, &mut extra)?);
    }
    Ok((extra, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, reused: bool) -> FeedbackRow {
        FeedbackRow {
            verdict_id: format!("v{i}"),
            tenant: "acme".into(),
            key: format!("img/{i}.png"),
            model_version: "m-1".into(),
            class: VerdictClass::DeleteCandidate,
            probability: 0.01,
            scored_at: 1_000,
            source: "batch".into(),
            action: "SOFT_DELETED".into(),
            acted_at: 2_000,
            reused,
            feature_schema_hash: FeatureSchema::current().hash,
            features: (0..FEATURE_COUNT).map(|j| (i * 100 + j) as f64).collect(),
        }
    }

    #[test]
    fn feature_columns_do_not_collide_with_fixed_ones() {
        for f in FEATURE_NAMES {
            assert!(!FIXED_COLUMNS.contains(f), "{f}");
        }
    }

    #[test]
    fn round_trip_keeps_features_and_labels_and_skips_other_schemas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fb.parquet");
        let mut old = row(9, true);
        old.feature_schema_hash = "0000000000000000".into();
        let mut short = row(10, true);
        short.features.pop();
        let rows = vec![row(0, false), row(1, true), old, short, row(2, false)];
        let summary = write_feedback(&path, 5_000, 30 * 86_400, rows).expect("written");
        assert_eq!(
            summary,
            ExportSummary {
                rows: 3,
                reused: 1,
                skipped_schema: 2
            }
        );
        let mut extra = ExtraRows::default();
        let file = read_feedback(&path, &mut extra).expect("read");
        assert_eq!((file.rows, file.reused), (3, 1));
        assert_eq!(extra.reused, vec![false, true, false]);
        assert_eq!(extra.features[1].values()[..], row(1, true).features[..]);
        assert_eq!(extra.features[2].values()[3], 203.0);
    }

    #[test]
    fn an_empty_export_reads_as_no_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.parquet");
        write_feedback(&path, 0, 0, Vec::new()).expect("written");
        let mut extra = ExtraRows::default();
        assert_eq!(read_feedback(&path, &mut extra).expect("read").rows, 0);
        assert!(extra.features.is_empty());
    }

    /// Writes `df` with the given key-value metadata.
    fn write_df(path: &Path, df: &mut DataFrame, meta: Vec<(String, String)>) {
        let file = File::create(path).expect("create");
        ParquetWriter::new(file)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(meta)))
            .finish(df)
            .expect("write");
    }

    fn export_df(dir: &Path) -> DataFrame {
        let path = dir.join("src.parquet");
        write_feedback(&path, 0, 0, vec![row(0, false), row(1, true)]).expect("written");
        ParquetReader::new(File::open(&path).expect("open"))
            .finish()
            .expect("read")
    }

    fn current_meta() -> Vec<(String, String)> {
        let s = FeatureSchema::current();
        vec![
            (META_FORMAT.into(), EXPORT_FORMAT.into()),
            (META_SCHEMA_VERSION.into(), s.version),
            (META_SCHEMA_HASH.into(), s.hash),
        ]
    }

    #[test]
    fn schema_mismatches_are_refused_with_nothing_added() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut df = export_df(dir.path());
        let mut extra = ExtraRows::default();

        // Another schema version in the metadata.
        let path = dir.path().join("old-meta.parquet");
        let mut meta = current_meta();
        meta[1].1 = "reprieve-features-v0".into();
        write_df(&path, &mut df, meta);
        let e = read_feedback(&path, &mut extra).expect_err("refused");
        assert!(matches!(e, EvalError::FeedbackSchema { .. }), "{e}");
        assert!(e.to_string().contains("reprieve-features-v0"), "{e}");

        // Metadata dropped (a tool rewrote the file) and one row of another schema: the row hash catches it.
        let path = dir.path().join("old-row.parquet");
        let mut hashes: Vec<String> = vec![FeatureSchema::current().hash; 2];
        hashes[1] = "ffffffffffffffff".into();
        let mut df2 = df.clone();
        df2.replace("feature_schema_hash", Column::new("feature_schema_hash".into(), hashes))
            .expect("replace");
        write_df(&path, &mut df2, Vec::new());
        let e = read_feedback(&path, &mut extra).expect_err("refused");
        assert!(e.to_string().contains("row 2"), "{e}");

        // A feature column missing.
        let path = dir.path().join("fewer.parquet");
        let mut df3 = df.drop(FEATURE_NAMES[5]).expect("drop");
        write_df(&path, &mut df3, current_meta());
        let e = read_feedback(&path, &mut extra).expect_err("refused");
        assert!(e.to_string().contains(FEATURE_NAMES[5]), "{e}");

        // Not an export at all.
        let path = dir.path().join("other.parquet");
        let mut meta = current_meta();
        meta[0].1 = "something-else/3".into();
        write_df(&path, &mut df, meta);
        let e = read_feedback(&path, &mut extra).expect_err("refused");
        assert!(e.to_string().contains("something-else/3"), "{e}");

        assert!(extra.features.is_empty() && extra.reused.is_empty());
    }
}
