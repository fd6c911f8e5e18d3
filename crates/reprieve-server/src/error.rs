//! Server errors, and the one place where domain errors become gRPC statuses.

use std::path::PathBuf;

use reprieve_model::ModelError;
use reprieve_proto::FieldError;
use reprieve_store::StoreError;
use tonic::Status;

use crate::writer::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("config file {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The configuration is inconsistent (`store.breaker_target: ...`).
    #[error("configuration: {0}")]
    Settings(String),
    /// The feedback store cannot be opened (locked, corrupt, not a store): the message names the directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the store writer thread: {0}")]
    Thread(std::io::Error),
    /// The `[tls]` settings cannot be honoured (the message names the setting and the file).
    #[error("{0}")]
    Tls(String),
}

/// Why a request is refused (mapped to a status in [`to_status`]).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Field(FieldError),
    #[error("{what} has {count} objects, more than the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{0}")]
    Model(ModelError),
    #[error("no model is loaded")]
    NoModel,
    #[error("model version {0:?} is not loaded")]
    UnknownModel(String),
    #[error("the call's deadline passed after {done} of {total} objects; send smaller batches or allow more time")]
    DeadlineExceeded { done: usize, total: usize },
    #[error("the call's deadline passed while its verdicts were being audited; allow more time")]
    AuditDeadline,
    #[error("this server runs without a feedback store")]
    NoStore,
    /// The store refused or failed a write (of verdicts for the audit trail, or of feedback).
    #[error("{0}")]
    Write(WriteError),
    /// The store failed a read, or a verdict could not be encoded for the audit trail: a server fault.
    #[error("feedback store: {0}")]
    Store(String),
}

/// Maps a refused request to its gRPC status (one exhaustive match, the only one).
pub fn to_status(e: RequestError) -> Status {
    match e {
        RequestError::Field(f) => Status::invalid_argument(f.to_string()),
        RequestError::TooMany { .. } => Status::resource_exhausted(e.to_string()),
        RequestError::Model(m) => Status::failed_precondition(m.to_string()),
        RequestError::NoModel => Status::unavailable(e.to_string()),
        RequestError::UnknownModel(_) => Status::not_found(e.to_string()),
        RequestError::DeadlineExceeded { .. } | RequestError::AuditDeadline => Status::deadline_exceeded(e.to_string()),
        RequestError::NoStore => Status::failed_precondition(e.to_string()),
        RequestError::Write(WriteError::Invalid(_)) => Status::invalid_argument(e.to_string()),
        // Nothing was acknowledged: a retry is safe (writes are idempotent, verdicts are recomputed).
        RequestError::Write(WriteError::Failed(_) | WriteError::Closed) => Status::unavailable(e.to_string()),
        RequestError::Store(_) => Status::internal(e.to_string()),
    }
}
