//! Errors of trace replay.

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Read(#[from] reprieve_batch::error::ReadError),
    #[error(transparent)]
    Model(#[from] reprieve_model::ModelError),
    #[error("{0}")]
    Plan(String),
}
