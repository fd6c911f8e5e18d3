//! Trace replay for training and evaluation: loads request traces (any log format the batch readers know, plus an
//! optional inventory) into a [`reprieve_model::dataset::Trace`], lays out cut times, and trains a model on the
//! cuts whose label windows have closed.

pub mod error;
pub mod plan;
pub mod trace;

pub use error::EvalError;
pub use plan::{TrainPlan, train_on_trace};
pub use trace::{LoadedTrace, load_trace};
