//! Errors of trace replay, training runs and the feedback export.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Read(#[from] reprieve_batch::error::ReadError),
    #[error(transparent)]
    Model(#[from] reprieve_model::ModelError),
    #[error("{0}")]
    Plan(String),
    /// A feedback export could not be written or read as Parquet.
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    /// A feedback export is unusable (I/O, another format, a null or non-finite value); `detail` says where.
    #[error("{path}: {detail}")]
    Feedback { path: PathBuf, detail: String },
    /// A feedback export's features are of another feature schema than this build's.
    #[error("{path}: feature schema mismatch: the export has {found}, this build computes {expected}")]
    FeedbackSchema {
        path: PathBuf,
        found: String,
        expected: String,
    },
}
