//! S3 Inventory: `manifest.json` plus CSV (gzip, no header) or Parquet data files.

use std::path::{Path, PathBuf};

use super::columns::Columns;
use super::{Reader, RowFacts};
use crate::error::ReadError;
use crate::formats::{ReadReport, SourceFormat};

/// Finds a data file named by a manifest key (a bucket path such as
/// `prefix/src-bucket/config/data/1f2e.csv.gz`): the longest suffix of the key's path that exists under the
/// manifest's directory or its parent, falling back to the base name in the manifest's directory.
fn resolve(manifest_dir: &Path, key: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty() && *p != "..").collect();
    let bases: Vec<&Path> = [Some(manifest_dir), manifest_dir.parent()]
        .into_iter()
        .flatten()
        .collect();
    for start in 0..parts.len() {
        let rel: PathBuf = parts[start..].iter().collect();
        for base in &bases {
            let candidate = base.join(&rel);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

pub(super) fn read_manifest(
    path: &Path,
    reader: &Reader<'_>,
    f: &mut dyn FnMut(RowFacts<'_>),
) -> Result<ReadReport, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReadError::io(path, e))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ReadError::format(path, format!("manifest is not JSON: {e}")))?;
    let file_format = manifest
        .get("fileFormat")
        .and_then(|v| v.as_str())
        .unwrap_or("CSV")
        .to_ascii_uppercase();
    let files: Vec<&str> = manifest
        .get("files")
        .and_then(|v| v.as_array())
        .ok_or_else(|| ReadError::format(path, "manifest has no files array"))?
        .iter()
        .map(|f| {
            f.get("key")
                .and_then(|k| k.as_str())
                .ok_or_else(|| ReadError::format(path, "manifest file entry without a key"))
        })
        .collect::<Result<_, _>>()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let resolve_all = || -> Result<Vec<PathBuf>, ReadError> {
        files
            .iter()
            .map(|k| {
                resolve(dir, k).ok_or_else(|| {
                    ReadError::io(
                        dir.join(k.rsplit('/').next().unwrap_or(k)),
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("data file {k:?} named by the manifest not found"),
                        ),
                    )
                })
            })
            .collect()
    };
    match file_format.as_str() {
        "CSV" => {
            let schema = manifest
                .get("fileSchema")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ReadError::format(path, "CSV manifest has no fileSchema"))?;
            let names: Vec<&str> = schema.split(',').map(str::trim).collect();
            let columns =
                Columns::from_names(&names).map_err(|e| ReadError::format(path, format!("fileSchema: {e}")))?;
            let mut report = ReadReport::new(path, SourceFormat::S3InventoryCsv);
            for data in resolve_all()? {
                let label = data
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                reader.csv(&data, Some(&columns), true, &label, &mut report, f)?;
            }
            Ok(report)
        }
        "PARQUET" => {
            let mut report = ReadReport::new(path, SourceFormat::S3InventoryParquet);
            for data in resolve_all()? {
                let label = data
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                reader.parquet(&data, false, &label, &mut report, f)?;
            }
            Ok(report)
        }
        other => Err(ReadError::format(
            path,
            format!("fileFormat {other:?} is not supported (CSV or Parquet; ORC is not)"),
        )),
    }
}
