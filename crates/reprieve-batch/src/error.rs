//! Errors of the file readers (log formats and inventories).

use std::path::PathBuf;

/// Why one line (or row) of an input file could not be parsed. Carries only a reason: the reader adds the file
/// and the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LineError {
    pub reason: String,
}

impl LineError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

/// A fatal error while reading an input file. I/O errors name the path; format errors name the file, the line
/// (or row) number and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Malformed { path: PathBuf, line: u64, reason: String },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
}

impl ReadError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: polars::error::PolarsError) -> Self {
        Self::Parquet {
            path: path.into(),
            source,
        }
    }
}
