//! Errors of the container-image front door.

use std::path::{Path, PathBuf};

use reprieve_batch::formats::ReadReport;
use reprieve_batch::{BatchError, LineError, ReadError};

/// Why an image scoring run failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading an input file failed (I/O, or a malformed record with `--strict`).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Scoring or writing the outputs failed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A job setting is unusable; `flag` names the command-line flag.
    #[error("{flag}: {reason}")]
    Usage { flag: &'static str, reason: String },
    /// The run would have let a live-referenced image go: refused, nothing acted on (a bug, never expected).
    #[error("refused: {0}")]
    Safety(String),
}

/// An I/O error reading `path`, in the batch readers' shape.
pub(crate) fn io_error(path: &Path, source: std::io::Error) -> ReadError {
    ReadError::Io {
        path: PathBuf::from(path),
        source,
    }
}

/// A file-level format error.
pub(crate) fn format_error(path: &Path, reason: impl Into<String>) -> ReadError {
    ReadError::Format {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// Counts one malformed record (a line, document or image detail): `lines` and `malformed` both grow.
pub(crate) fn bad(report: &mut ReadReport, line: u64, reason: String, strict: bool) -> Result<(), ReadError> {
    report
        .record::<()>(line, Err(LineError::new(reason)), strict)
        .map(|_| ())
}
