//! Errors of the batch scorer.

use std::path::PathBuf;

use crate::error::ReadError;

/// Why a batch scoring run failed. I/O errors name the path; usage errors name the flag.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading an inventory or an access log failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing (or creating, renaming) an output file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the Parquet scores file failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    /// A job setting is unusable; `flag` is the command-line flag it comes from (`--out`, `--shard`, ...).
    #[error("{flag}: {reason}")]
    Usage { flag: &'static str, reason: String },
    /// Serialising the JSON report failed.
    #[error("{path}: cannot serialise the report: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The verdict sink (e.g. the feedback store's audit trail) refused the run's verdicts.
    #[error("cannot record the verdicts: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// More objects than the scorer's 32-bit object index can hold.
    #[error("{path}: more than {max} objects in the inventory")]
    TooManyObjects { path: PathBuf, max: u64 },
}

impl BatchError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn usage(flag: &'static str, reason: impl Into<String>) -> Self {
        Self::Usage {
            flag,
            reason: reason.into(),
        }
    }
}
