//! Errors of the model crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model artifact {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write model artifact {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("model artifact is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("model artifact format {found:?} is not supported (expected {expected:?})")]
    Format { found: String, expected: &'static str },
    #[error(
        "model artifact was trained on feature schema {found_version} ({found_hash}), but this build computes \
         {expected_version} ({expected_hash}); retrain it with this version of reprieve"
    )]
    SchemaMismatch {
        found_version: String,
        found_hash: String,
        expected_version: String,
        expected_hash: String,
    },
    #[error("model artifact is inconsistent: {0}")]
    Invalid(String),
    #[error("cannot train: {0}")]
    Training(String),
}
