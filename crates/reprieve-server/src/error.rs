//! Server errors, and the one place where domain errors become gRPC statuses.

use std::path::PathBuf;

use reprieve_model::ModelError;
use reprieve_proto::FieldError;
use tonic::Status;

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
}

/// Maps a refused request to its gRPC status (one exhaustive match, the only one).
pub fn to_status(e: RequestError) -> Status {
    match e {
        RequestError::Field(f) => Status::invalid_argument(f.to_string()),
        RequestError::TooMany { .. } => Status::resource_exhausted(e.to_string()),
        RequestError::Model(m) => Status::failed_precondition(m.to_string()),
        RequestError::NoModel => Status::unavailable(e.to_string()),
        RequestError::UnknownModel(_) => Status::not_found(e.to_string()),
        RequestError::DeadlineExceeded { .. } => Status::deadline_exceeded(e.to_string()),
    }
}
